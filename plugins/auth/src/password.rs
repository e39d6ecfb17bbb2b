//! Password rules and argon2id hashing.
//!
//! Everything here is synchronous and CPU-heavy by design: callers in async
//! code go through [`HashPool`](crate::hash_pool::HashPool), which runs it on
//! the blocking pool behind a concurrency limit.

use argon2::{Algorithm, Argon2, Params, PasswordHash, PasswordHasher, PasswordVerifier, Version};

use crate::config::Argon2Config;

/// Longest password accepted, in bytes. Long enough for any passphrase or
/// password manager; short enough that nobody can make us hash megabytes.
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// Why a new password was refused (the text is shown to the user).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    #[error("the password is empty")]
    Empty,
    #[error("the password is too short: use at least {0} characters")]
    TooShort(usize),
    #[error("the password is too long: at most {MAX_PASSWORD_BYTES} bytes")]
    TooLong,
    #[error(
        "the password contains control characters; use letters, digits, spaces and punctuation"
    )]
    ControlCharacters,
}

/// Checks a password chosen at registration or when changing it.
pub fn check_new(password: &str, min_length: usize) -> Result<(), PasswordError> {
    if password.is_empty() {
        return Err(PasswordError::Empty);
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(PasswordError::TooLong);
    }
    if password.chars().count() < min_length {
        return Err(PasswordError::TooShort(min_length));
    }
    if password.chars().any(char::is_control) {
        return Err(PasswordError::ControlCharacters);
    }
    Ok(())
}

/// Hashes and verifies with the configured argon2id cost.
#[derive(Clone)]
pub struct Passwords {
    params: Params,
}

impl std::fmt::Debug for Passwords {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Passwords")
            .field("m_cost", &self.params.m_cost())
            .field("t_cost", &self.params.t_cost())
            .finish()
    }
}

/// The cost parameters were refused by argon2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ParamsError(String);

impl Passwords {
    pub fn new(config: &Argon2Config) -> Result<Passwords, ParamsError> {
        let params = Params::new(
            config.memory_kib,
            config.iterations,
            config.parallelism,
            None,
        )
        .map_err(|e| {
            ParamsError(format!(
                "invalid cost (memory_kib, iterations, parallelism): {e}"
            ))
        })?;
        Ok(Passwords { params })
    }

    fn argon2(&self) -> Argon2<'static> {
        Argon2::new(Algorithm::Argon2id, Version::V0x13, self.params.clone())
    }

    /// A PHC string (`$argon2id$v=19$m=...,t=...,p=...$salt$hash`) with a
    /// fresh random salt. Slow on purpose.
    pub fn hash(&self, password: &str) -> Result<String, HashError> {
        self.argon2()
            .hash_password(password.as_bytes())
            .map(|h| h.to_string())
            .map_err(|e| HashError(e.to_string()))
    }

    /// Whether `password` matches the PHC string. The cost is the one stored
    /// in the string. A malformed string never matches.
    pub fn verify(&self, password: &str, phc: &str) -> bool {
        if password.len() > MAX_PASSWORD_BYTES {
            return false;
        }
        match PasswordHash::new(phc) {
            Ok(parsed) => self
                .argon2()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok(),
            Err(e) => {
                tracing::error!(error = %e, "stored password hash is not a valid PHC string");
                false
            }
        }
    }

    /// Whether a stored hash was made with another algorithm or cost than
    /// the configured one; such hashes are replaced at the next successful
    /// login, so raising the cost in the configuration takes effect.
    pub fn needs_rehash(&self, phc: &str) -> bool {
        let Ok(parsed) = PasswordHash::new(phc) else {
            return false;
        };
        let same = parsed.algorithm.as_str() == "argon2id"
            && Params::try_from(&parsed).is_ok_and(|p| {
                (p.m_cost(), p.t_cost(), p.p_cost())
                    == (
                        self.params.m_cost(),
                        self.params.t_cost(),
                        self.params.p_cost(),
                    )
            });
        !same
    }
}

/// Hashing failed (it only does for absurd parameters or no randomness).
#[derive(Debug, thiserror::Error)]
#[error("password hashing failed: {0}")]
pub struct HashError(String);

#[cfg(test)]
mod tests {
    use super::*;

    fn cheap() -> Passwords {
        Passwords::new(&Argon2Config {
            memory_kib: 1024,
            iterations: 1,
            ..Argon2Config::default()
        })
        .unwrap()
    }

    #[test]
    fn hashes_are_salted_argon2id_phc_strings_that_verify() {
        let p = cheap();
        let a = p.hash("correct horse").unwrap();
        let b = p.hash("correct horse").unwrap();
        assert!(a.starts_with("$argon2id$v=19$m=1024,t=1,p=1$"), "{a}");
        assert_ne!(a, b, "salts differ");
        assert!(!a.contains("correct"));
        assert!(p.verify("correct horse", &a));
        assert!(!p.verify("correct horsf", &a));
        assert!(!p.verify("correct horse", "not a hash"));
    }

    #[test]
    fn hashes_of_another_cost_are_renewed() {
        let cheap = cheap();
        let other = Passwords::new(&Argon2Config {
            memory_kib: 2048,
            iterations: 1,
            ..Argon2Config::default()
        })
        .unwrap();
        let hash = cheap.hash("pw").unwrap();
        assert!(!cheap.needs_rehash(&hash));
        assert!(other.needs_rehash(&hash));
        assert!(!other.needs_rehash("garbage"), "nothing to renew from");
    }

    #[test]
    fn default_cost_is_owasp() {
        let p = Passwords::new(&Argon2Config::default()).unwrap();
        let h = p.hash("x").unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
    }

    #[test]
    fn new_password_rules() {
        assert_eq!(check_new("", 8), Err(PasswordError::Empty));
        assert_eq!(check_new("short", 8), Err(PasswordError::TooShort(8)));
        assert_eq!(check_new("ünïcödé!", 8), Ok(()));
        assert_eq!(
            check_new("tab\there!", 8),
            Err(PasswordError::ControlCharacters)
        );
        assert_eq!(
            check_new(&"x".repeat(MAX_PASSWORD_BYTES + 1), 8),
            Err(PasswordError::TooLong)
        );
        assert_eq!(check_new("'; DROP TABLE accounts; --", 8), Ok(()));
    }
}
