//! Resume tokens: what lets a client log in again without its password
//! after a reload or a dropped connection (`resume`, docs/protocol.md).
//!
//! A token is 256 random bits, given to the client once (base64url, 43
//! characters). The database keeps only its SHA-256, so a copy of the
//! database lets nobody resume. A token expires after `resume_token_days`
//! without use; `logout`, a password change and disabling or deleting the
//! account revoke it.

use chatd_storage::{now_ms, Database, StorageError};
use ring::digest::{digest, SHA256};
use ring::rand::{SecureRandom, SystemRandom};

/// Characters of an encoded token.
pub const TOKEN_LEN: usize = 43;

/// A token as handed to the client, and when it expires.
#[derive(Debug, Clone)]
pub struct Issued {
    pub token: String,
    pub hash: Vec<u8>,
    pub expires_at: i64,
}

/// The `resume_tokens` table.
#[derive(Clone, Debug)]
pub struct Tokens {
    db: Database,
    rng: SystemRandom,
    lifetime_ms: i64,
}

fn encode(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(TOKEN_LEN);
    let mut acc: u32 = 0;
    let mut bits = 0;
    for &b in bytes {
        acc = (acc << 8) | u32::from(b);
        bits += 8;
        while bits >= 6 {
            bits -= 6;
            out.push(ALPHABET[((acc >> bits) & 63) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(ALPHABET[((acc << (6 - bits)) & 63) as usize] as char);
    }
    out
}

/// Whether `token` has a token's shape (checked before any lookup).
pub fn well_formed(token: &str) -> bool {
    token.len() == TOKEN_LEN
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The stored form of a token.
pub fn hash(token: &str) -> Vec<u8> {
    digest(&SHA256, token.as_bytes()).as_ref().to_vec()
}

impl Tokens {
    pub fn new(db: Database, lifetime_days: u64) -> Tokens {
        Tokens {
            db,
            rng: SystemRandom::new(),
            lifetime_ms: i64::try_from(lifetime_days.saturating_mul(86_400_000))
                .unwrap_or(i64::MAX),
        }
    }

    fn err(&self, e: sqlx::Error) -> StorageError {
        self.db.query_error(e)
    }

    /// A new token for `account_key`.
    pub async fn issue(&self, account_key: &str) -> Result<Issued, StorageError> {
        let mut bytes = [0u8; 32];
        self.rng.fill(&mut bytes).map_err(|_| StorageError::Query {
            database: self.db.name().to_string(),
            reason: "the system's random number generator failed".to_string(),
        })?;
        let token = encode(&bytes);
        let hash = hash(&token);
        let now = now_ms();
        let expires_at = now.saturating_add(self.lifetime_ms);
        sqlx::query(
            "INSERT INTO resume_tokens (token_hash, account_key, created_at, expires_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(&hash)
        .bind(account_key)
        .bind(now)
        .bind(expires_at)
        .execute(self.db.pool())
        .await
        .map_err(|e| self.err(e))?;
        Ok(Issued {
            token,
            hash,
            expires_at,
        })
    }

    /// The account a valid token belongs to; using it extends its life.
    /// Expired tokens are deleted when met.
    pub async fn redeem(&self, token: &str) -> Result<Option<(String, i64)>, StorageError> {
        if !well_formed(token) {
            return Ok(None);
        }
        let hash = hash(token);
        let now = now_ms();
        let expires_at = now.saturating_add(self.lifetime_ms);
        let account: Option<String> = sqlx::query_scalar(
            "UPDATE resume_tokens SET expires_at = $1 WHERE token_hash = $2 AND expires_at > $3 RETURNING account_key",
        )
        .bind(expires_at)
        .bind(&hash)
        .bind(now)
        .fetch_optional(self.db.pool())
        .await
        .map_err(|e| self.err(e))?;
        if account.is_none() {
            sqlx::query("DELETE FROM resume_tokens WHERE token_hash = $1")
                .bind(&hash)
                .execute(self.db.pool())
                .await
                .map_err(|e| self.err(e))?;
        }
        Ok(account.map(|a| (a, expires_at)))
    }

    /// Revokes one token.
    pub async fn revoke(&self, hash: &[u8]) -> Result<(), StorageError> {
        sqlx::query("DELETE FROM resume_tokens WHERE token_hash = $1")
            .bind(hash)
            .execute(self.db.pool())
            .await
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Revokes every token of an account ("log out everywhere").
    pub async fn revoke_all(&self, account_key: &str) -> Result<(), StorageError> {
        sqlx::query("DELETE FROM resume_tokens WHERE account_key = $1")
            .bind(account_key)
            .execute(self.db.pool())
            .await
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Deletes expired tokens.
    pub async fn prune(&self) -> Result<u64, StorageError> {
        sqlx::query("DELETE FROM resume_tokens WHERE expires_at <= $1")
            .bind(now_ms())
            .execute(self.db.pool())
            .await
            .map(|r| r.rows_affected())
            .map_err(|e| self.err(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_43_url_safe_characters() {
        let t = encode(&[0xff; 32]);
        assert_eq!(t.len(), TOKEN_LEN);
        assert!(well_formed(&t));
        assert!(!well_formed("short"));
        assert!(!well_formed(&"a+".repeat(22)[..43]));
        assert_eq!(encode(&[0, 0, 0]), "AAAA");
    }
}
