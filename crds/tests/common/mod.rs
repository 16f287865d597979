//! Helpers shared by the crate's integration tests.

use std::path::PathBuf;

/// This crate's folder, read at run time (`cargo test` sets it): a test binary reused from a
/// shared target folder may have been built from another clone of the same sources, whose path
/// `env!` would have baked in.
pub fn manifest_dir() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")))
}
