//! Secrets at rest (PROTOCOL.md §7.2): SMTP passwords, tenant `client_auth` and other secrets are
//! stored as `ENC:` + base64(12-byte nonce ‖ ciphertext ‖ 16-byte tag) with AES-256-GCM, the
//! upstream format. Values without the prefix (written by upstream without a key) are read as
//! plaintext and encrypted on their next write.

use std::path::Path;

use aes_gcm::{
    Aes256Gcm, Key, Nonce,
    aead::{Aead, KeyInit},
};
use base64::{Engine, engine::general_purpose::STANDARD};
use rand::RngCore;

const PREFIX: &str = "ENC:";

/// Failures of key loading and decryption.
#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    /// The configured key is not base64 of 32 bytes.
    #[error("encryption key must be base64 of exactly 32 bytes ({0})")]
    BadKey(String),
    /// No key is configured and the backend cannot generate one.
    #[error(
        "no encryption key: set MAIL_PROXY_ENCRYPTION_KEY (base64 of 32 bytes) or \
         GMP_ENCRYPTION_KEY_FILE; PostgreSQL replicas must share one key"
    )]
    Missing,
    /// A stored value does not decrypt with this key.
    #[error("stored secret does not decrypt with the configured key")]
    Decrypt,
    /// Reading or writing the key file failed.
    #[error("key file {path}: {source}")]
    Io {
        /// The key file.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// AES-256-GCM with the replica's key.
pub struct Cipher {
    cipher: Aes256Gcm,
}

impl std::fmt::Debug for Cipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Cipher(<redacted>)")
    }
}

impl Cipher {
    /// A cipher from raw key bytes.
    pub fn from_bytes(key: &[u8]) -> Result<Self, CryptoError> {
        if key.len() != 32 {
            return Err(CryptoError::BadKey(format!("{} bytes", key.len())));
        }
        Ok(Cipher {
            cipher: Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(key)),
        })
    }

    /// A cipher from base64 text.
    pub fn from_base64(text: &str) -> Result<Self, CryptoError> {
        let bytes = STANDARD
            .decode(text.trim())
            .map_err(|e| CryptoError::BadKey(format!("not base64: {e}")))?;
        Self::from_bytes(&bytes)
    }

    /// A cipher with a fresh random key (private in-memory databases).
    pub fn random() -> Self {
        let mut key = [0u8; 32];
        rand::rng().fill_bytes(&mut key);
        Cipher {
            cipher: Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&key)),
        }
    }

    /// Loads the key from a file of 32 raw bytes, creating it (mode 0600) when `create` is set
    /// and the file does not exist.
    pub fn from_file(path: &Path, create: bool) -> Result<Self, CryptoError> {
        let io = |source| CryptoError::Io {
            path: path.display().to_string(),
            source,
        };
        match std::fs::read(path) {
            Ok(bytes) => Self::from_bytes(&bytes),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && create => {
                let mut key = [0u8; 32];
                rand::rng().fill_bytes(&mut key);
                write_private(path, &key).map_err(io)?;
                Self::from_bytes(&key)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(CryptoError::Missing),
            Err(e) => Err(io(e)),
        }
    }

    /// Encrypts a secret into the stored form.
    pub fn encrypt(&self, plain: &str) -> String {
        let mut nonce = [0u8; 12];
        rand::rng().fill_bytes(&mut nonce);
        // Encryption with a valid key and a 12-byte nonce cannot fail.
        let ct = self
            .cipher
            .encrypt(Nonce::from_slice(&nonce), plain.as_bytes())
            .unwrap_or_default();
        let mut out = Vec::with_capacity(12 + ct.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        format!("{PREFIX}{}", STANDARD.encode(out))
    }

    /// Decrypts a stored value; values without the prefix are plaintext.
    pub fn decrypt(&self, stored: &str) -> Result<String, CryptoError> {
        let Some(b64) = stored.strip_prefix(PREFIX) else {
            return Ok(stored.to_string());
        };
        let raw = STANDARD.decode(b64).map_err(|_| CryptoError::Decrypt)?;
        if raw.len() < 12 + 16 {
            return Err(CryptoError::Decrypt);
        }
        let (nonce, ct) = raw.split_at(12);
        let plain = self
            .cipher
            .decrypt(Nonce::from_slice(nonce), ct)
            .map_err(|_| CryptoError::Decrypt)?;
        String::from_utf8(plain).map_err(|_| CryptoError::Decrypt)
    }
}

#[cfg(unix)]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::{io::Write, os::unix::fs::OpenOptionsExt};
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(bytes)
}

#[cfg(not(unix))]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::write(path, bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_plaintext_passthrough() {
        let c = Cipher::random();
        let enc = c.encrypt("s3cret");
        assert!(enc.starts_with("ENC:"));
        assert!(!enc.contains("s3cret"));
        assert_eq!(c.decrypt(&enc).unwrap(), "s3cret");
        assert_eq!(c.decrypt("legacy").unwrap(), "legacy");
        assert!(matches!(
            Cipher::random().decrypt(&enc),
            Err(CryptoError::Decrypt)
        ));
    }

    #[test]
    fn bad_keys_are_refused() {
        assert!(Cipher::from_base64("c2hvcnQ=").is_err());
        assert!(Cipher::from_base64("!!").is_err());
    }

    #[test]
    fn key_file_is_created_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        let a = Cipher::from_file(&path, true).unwrap();
        let b = Cipher::from_file(&path, false).unwrap();
        assert_eq!(b.decrypt(&a.encrypt("x")).unwrap(), "x");
        assert!(matches!(
            Cipher::from_file(&dir.path().join("none"), false),
            Err(CryptoError::Missing)
        ));
    }
}
