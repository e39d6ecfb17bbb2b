//! TLS: loading (and reloading) the server certificate, and `chatd gen-cert`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::ArcSwap;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio::net::TcpStream;

use super::tls_stream::TlsStream;

/// A TLS setup problem; the message names the file and what to do.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read TLS certificate {path}: {message}; run `chatd gen-cert --out DIR` for a development certificate")]
    Cert { path: PathBuf, message: String },
    #[error("cannot read TLS private key {path}: {message}")]
    Key { path: PathBuf, message: String },
    #[error("TLS certificate {cert} and key {key} do not form a usable pair: {message}")]
    Config {
        cert: PathBuf,
        key: PathBuf,
        message: String,
    },
    #[error("cannot write {path}: {error}")]
    Write {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("cannot generate a certificate: {0}")]
    Generate(String),
}

/// The crypto provider chatd uses everywhere (pure Rust, no system libraries).
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Builds an acceptor from PEM files (TLS 1.2 and 1.3).
pub fn acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor, TlsError> {
    Ok(CertStore::load(cert, key)?.acceptor())
}

/// The server's certificate and key, replaceable while the server runs
/// (`chatd reload`): handshakes started after [`CertStore::reload`] get the
/// new pair; connections already established keep theirs.
#[derive(Debug)]
pub struct CertStore {
    current: ArcSwap<CertifiedKey>,
}

impl CertStore {
    /// Reads the certificate chain and key from PEM files.
    pub fn load(cert: &Path, key: &Path) -> Result<Arc<CertStore>, TlsError> {
        Ok(Arc::new(CertStore {
            current: ArcSwap::from(load_certified_key(cert, key)?),
        }))
    }

    /// Serves `pair` (see [`load_certified_key`]) from the next handshake on.
    pub fn replace(&self, pair: Arc<CertifiedKey>) {
        self.current.store(pair);
    }

    /// An acceptor (TLS 1.2 and 1.3) serving whatever pair is current.
    pub fn acceptor(self: &Arc<Self>) -> TlsAcceptor {
        let config = rustls::ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .expect("the ring provider supports TLS 1.2 and 1.3")
            .with_no_client_auth()
            .with_cert_resolver(self.clone());
        TlsAcceptor(Arc::new(config))
    }
}

/// Runs the server side of TLS handshakes with one configuration.
#[derive(Clone)]
pub struct TlsAcceptor(Arc<rustls::ServerConfig>);

impl TlsAcceptor {
    /// The handshake on an accepted socket (the caller bounds its time).
    pub async fn accept(&self, tcp: TcpStream) -> std::io::Result<TlsStream> {
        TlsStream::accept(self.0.clone(), tcp).await
    }
}

impl ResolvesServerCert for CertStore {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.load_full())
    }
}

/// Reads a PEM certificate chain and private key and checks they belong
/// together (blocking file reads).
pub fn load_certified_key(cert: &Path, key: &Path) -> Result<Arc<CertifiedKey>, TlsError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| TlsError::Cert {
            path: cert.to_path_buf(),
            message: describe_pem(&e),
        })?;
    if certs.is_empty() {
        return Err(TlsError::Cert {
            path: cert.to_path_buf(),
            message: "no CERTIFICATE block found".to_string(),
        });
    }
    let private_key = PrivateKeyDer::from_pem_file(key).map_err(|e| TlsError::Key {
        path: key.to_path_buf(),
        message: describe_pem(&e),
    })?;
    let certified =
        CertifiedKey::from_der(certs, private_key, &provider()).map_err(|e| TlsError::Config {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
            message: e.to_string(),
        })?;
    Ok(Arc::new(certified))
}

/// A PEM parsing error in words (the library's own message shows the
/// marker lines as lists of byte values).
fn describe_pem(error: &rustls::pki_types::pem::Error) -> String {
    use rustls::pki_types::pem::Error;
    match error {
        Error::MissingSectionEnd { end_marker } => format!(
            "a PEM block is not finished: the line '-----END {}-----' is missing",
            String::from_utf8_lossy(end_marker).trim()
        ),
        Error::IllegalSectionStart { line } => format!(
            "a PEM block starts with a malformed line: '{}'",
            String::from_utf8_lossy(line).trim()
        ),
        Error::NoItemsFound => {
            "the file holds no PEM block of the expected kind (is it the right file?)".to_string()
        }
        other => other.to_string(),
    }
}

/// Writes a self-signed certificate (`cert.pem`) and key (`key.pem`) for the
/// given names into `dir`. Returns the two paths.
pub fn generate_self_signed(dir: &Path, names: &[String]) -> Result<(PathBuf, PathBuf), TlsError> {
    let certified = rcgen::generate_simple_self_signed(names.to_vec())
        .map_err(|e| TlsError::Generate(e.to_string()))?;
    std::fs::create_dir_all(dir).map_err(|source| TlsError::Write {
        path: dir.to_path_buf(),
        error: source,
    })?;
    let cert_path = dir.join("cert.pem");
    let key_path = dir.join("key.pem");
    std::fs::write(&cert_path, certified.cert.pem()).map_err(|source| TlsError::Write {
        path: cert_path.clone(),
        error: source,
    })?;
    write_private(&key_path, certified.signing_key.serialize_pem().as_bytes()).map_err(
        |source| TlsError::Write {
            path: key_path.clone(),
            error: source,
        },
    )?;
    Ok((cert_path, key_path))
}

/// Writes a file readable by its owner only.
fn write_private(path: &Path, data: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    options.mode(0o600);
    options.open(path)?.write_all(data)
}

#[cfg(test)]
mod pem_tests {
    use super::*;

    #[test]
    fn a_broken_certificate_is_described_in_words() {
        let dir = tempfile::tempdir().unwrap();
        let cert = dir.path().join("cert.pem");
        let key = dir.path().join("key.pem");
        std::fs::write(&cert, "-----BEGIN CERTIFICATE-----\nAAAA\n").unwrap();
        std::fs::write(&key, "").unwrap();
        let Err(error) = acceptor(&cert, &key) else {
            panic!("a broken certificate was accepted");
        };
        let text = error.to_string();
        assert!(
            text.contains("'-----END CERTIFICATE-----' is missing") && !text.contains("[45,"),
            "{text}"
        );
    }
}
