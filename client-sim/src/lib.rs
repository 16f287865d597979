//! The pressure test's traffic ends: a simulated tenant application that the mail proxy syncs
//! with, an SMTP sink that receives and verifies what the proxy delivers, and the tools around
//! them.
//!
//! Layout:
//! - [`serve`]: the simulated tenant application (`POST /sync`, `POST /attachments`, `/stats`),
//!   the seed's client (README, `serve`), with seeded draws and streamed, regenerable attachment content.
//! - [`sink`]: a verifying SMTP sink: counts, checks attachment MD5s, duplicate Message-IDs and
//!   end-to-end latency; optional fault injection.
//! - [`setup`]: registers tenants and SMTP accounts with the proxy's classic REST API.
//! - [`blast`]: an SMTP load generator that measures the sink's headroom.
//! - [`cli`]: the command-line surface that wires the above to sockets and signals.
//!
//! Servers take an already-bound listener and a shutdown future, so tests bind port 0 and other
//! crates can start a sink or a client in-process (`client_sim::sink::run`,
//! `client_sim::serve::run`).

pub mod blast;
pub mod cli;
pub mod serve;
pub mod setup;
pub mod sink;

/// Failures at the library boundary.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A configuration value is out of range or inconsistent; the text says what to fix.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// A listener or connection failed.
    #[error("I/O failure while {context}")]
    Io {
        /// What was being done.
        context: &'static str,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// An HTTP call to the proxy failed or was refused.
    #[error("{0}")]
    Http(String),
}

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Wraps an I/O error with what was being done.
    pub fn io(context: &'static str, source: std::io::Error) -> Self {
        Error::Io { context, source }
    }
}

/// Current Unix time in microseconds (0 if the clock is before 1970).
pub fn unix_micros() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// A latency histogram in microseconds: 1 µs to 1 hour at three significant figures; larger
/// values saturate at the top.
pub fn latency_histogram() -> hdrhistogram::Histogram<u64> {
    hdrhistogram::Histogram::new_with_bounds(1, 3_600_000_000, 3)
        .unwrap_or_else(|_| unreachable!("the bounds and precision are valid constants"))
}
