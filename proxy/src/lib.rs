//! `mailproxy`: a multi-tenant mail proxy, a Rust re-implementation of genro-mail-proxy's core
//! after its protocol reference, [`PROTOCOL.md`](../PROTOCOL.md) in this crate's folder: "the
//! contract" and every "§N" in the comments mean that file.
//!
//! A replica runs an HTTP server (the REST API of both dialects and `/metrics`), the dispatcher
//! that claims queued messages and sends them over pooled SMTP connections, and housekeeping
//! loops (pending gauges, SMTP pool expiry, send-log pruning). State lives in PostgreSQL (shared
//! by replicas) or SQLite (the embedded default).
//!
//! Layout:
//! - [`config`]: flags with `GMP_*` environment twins; [`telemetry`]: logging.
//! - [`api`]: the operations of the REST API, one set for both dialects; [`http`]: the router,
//!   the two dialect adapters, authentication; [`error`]: errors as JSON responses.
//! - [`model`]: pure domain rules (normalisation, addresses, retries, rate limits, names);
//!   [`intake`]: which submitted messages are stored and which refused, and why (pure).
//! - [`store`]: the database; [`crypto`]: secrets at rest.
//! - [`dispatch`]: claims, the per-message pipeline, batched outcomes.
//! - [`mail`]: MIME building and the SMTP pool; [`attachments`]: attachment loading.
//! - [`sync`]: the sync scheduler that calls tenant applications (reports out, messages in).
//! - [`metrics`]: the `gmp_*` series; [`server`]: wiring and lifecycle.

pub mod api;
pub mod attachments;
pub mod config;
pub mod crypto;
pub mod dispatch;
pub mod error;
pub mod http;
pub mod intake;
pub mod mail;
pub mod metrics;
pub mod model;
pub mod server;
pub mod store;
pub mod sync;
pub mod telemetry;

pub use server::{Server, run};
