//! MD5 of attachment content: OpenSSL's implementation, which hashes about 740 MB/s on one core
//! of the project's 2-core machine against 495 MB/s for RustCrypto's `md-5`
//! (`shared/design/performance.md`, §3). Every attachment byte is hashed twice in a pressure run
//! (the proxy's download spool, the sink's check), so this is a large share of the CPU an
//! attachment costs. Where OpenSSL refuses MD5 (a FIPS-only provider) `md-5` does the work.

use ::md5::Digest;
use openssl::hash::{Hasher, MessageDigest};

/// An MD5 computation fed chunk by chunk.
pub struct Md5(State);

enum State {
    OpenSsl(Hasher),
    Rust(::md5::Md5),
    /// OpenSSL failed part way (not seen; its MD5 update fails only on a broken context):
    /// the digest is unknown.
    Failed,
}

impl Default for Md5 {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Md5 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let engine = match self.0 {
            State::OpenSsl(_) => "openssl",
            State::Rust(_) => "md-5",
            State::Failed => "failed",
        };
        f.debug_tuple("Md5").field(&engine).finish()
    }
}

impl Md5 {
    /// A new computation.
    pub fn new() -> Self {
        match Hasher::new(MessageDigest::md5()) {
            Ok(h) => Md5(State::OpenSsl(h)),
            Err(_) => Md5(State::Rust(::md5::Md5::new())),
        }
    }

    /// A computation by RustCrypto's `md-5` (what [`Md5::new`] falls back to; also the retry
    /// of content that can be read again after OpenSSL failed).
    pub fn with_md5_crate() -> Self {
        Md5(State::Rust(::md5::Md5::new()))
    }

    /// Feeds bytes.
    pub fn update(&mut self, data: &[u8]) {
        match &mut self.0 {
            State::OpenSsl(h) => {
                if h.update(data).is_err() {
                    self.0 = State::Failed;
                }
            }
            State::Rust(h) => h.update(data),
            State::Failed => {}
        }
    }

    /// The digest; None only if OpenSSL failed part way.
    pub fn finalize(self) -> Option<[u8; 16]> {
        match self.0 {
            State::OpenSsl(mut h) => h.finish().ok()?.as_ref().try_into().ok(),
            State::Rust(h) => Some(h.finalize().into()),
            State::Failed => None,
        }
    }

    /// The digest of bytes in memory (with the whole input at hand, `md-5` stands in if OpenSSL
    /// fails).
    pub fn digest(data: &[u8]) -> [u8; 16] {
        let mut h = Self::new();
        h.update(data);
        h.finalize()
            .unwrap_or_else(|| ::md5::Md5::digest(data).into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(d: [u8; 16]) -> String {
        d.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn matches_the_reference_digests_whole_and_in_chunks() {
        // RFC 1321 test suite.
        for (input, want) in [
            ("", "d41d8cd98f00b204e9800998ecf8427e"),
            ("abc", "900150983cd24fb0d6963f7d28e17f72"),
            (
                "12345678901234567890123456789012345678901234567890123456789012345678901234567890",
                "57edf4a22be3c955ac49da2e2107b67a",
            ),
        ] {
            assert_eq!(hex(Md5::digest(input.as_bytes())), want);
            let mut h = Md5::new();
            for chunk in input.as_bytes().chunks(7) {
                h.update(chunk);
            }
            assert_eq!(h.finalize().map(hex).as_deref(), Some(want));
        }
    }

    #[test]
    fn openssl_and_md5_crate_agree() {
        let data: Vec<u8> = (0..300_000u32).map(|i| (i * 31 % 251) as u8).collect();
        let ours = Md5::digest(&data);
        let theirs: [u8; 16] = ::md5::Md5::digest(&data).into();
        assert_eq!(ours, theirs);
        assert!(
            matches!(Md5::new().0, State::OpenSsl(_)),
            "OpenSSL offers MD5 here"
        );
    }
}
