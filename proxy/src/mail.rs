//! Outgoing mail: building the MIME message ([`build`]), kept as [`formatted`] pieces whose
//! attachments are encoded while they are sent, and sending it over pooled SMTP
//! connections ([`pool`]). The dispatcher talks to a [`Transport`] trait object, so a unit test can
//! plug in a stand-in; every feature test runs over real SMTP.

pub mod build;
pub mod formatted;
pub mod pool;

use futures_util::future::BoxFuture;
use lettre::address::Envelope;

use self::formatted::Formatted;
use crate::model::retry::Failure;

/// Where and how to deliver: the SMTP side of an account.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SmtpTarget {
    /// Host name or address.
    pub host: String,
    /// Port.
    pub port: u16,
    /// Login (only used when both user and password are non-empty).
    pub user: Option<String>,
    /// Password.
    pub password: Option<String>,
    /// TLS mode.
    pub tls: TlsMode,
    /// Idle lifetime of pooled connections, seconds.
    pub ttl_seconds: u64,
}

/// TLS of a connection (PROTOCOL.md §6.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TlsMode {
    /// Plain text.
    Plain,
    /// STARTTLS, required.
    StartTls,
    /// Implicit TLS from the first byte.
    Implicit,
}

impl TlsMode {
    /// The mode of an account: `use_ssl` → implicit; `use_tls` null → implicit on 465, plain
    /// otherwise; true → implicit on 465, STARTTLS otherwise; false → plain.
    pub fn of(use_ssl: bool, use_tls: Option<bool>, port: u16) -> Self {
        match (use_ssl, use_tls, port) {
            (true, _, _) => TlsMode::Implicit,
            (false, None | Some(true), 465) => TlsMode::Implicit,
            (false, Some(true), _) => TlsMode::StartTls,
            _ => TlsMode::Plain,
        }
    }
}

/// A recipient the server refused while others were accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefusedRecipient {
    /// Address.
    pub address: String,
    /// Reply code.
    pub code: u16,
    /// Reply text.
    pub reason: String,
}

/// Delivers formatted messages.
pub trait Transport: Send + Sync {
    /// Sends one message; Ok lists recipients refused while others were accepted.
    fn send<'a>(
        &'a self,
        target: &'a SmtpTarget,
        envelope: &'a Envelope,
        message: &'a Formatted,
    ) -> BoxFuture<'a, Result<Vec<RefusedRecipient>, Failure>>;
}
