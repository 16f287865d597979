//! Wire types of the mail proxy's contract (`proxy/PROTOCOL.md`; every "§N" here is a section of it), shared by the proxy,
//! the client simulator (`client-sim`) and the tests.
//!
//! Layout:
//! - [`sync`]: the sync call the proxy makes to each tenant application (§4): delivery reports out,
//!   acknowledgements, `queued`, `next_sync_after` and inline messages back.
//! - [`message`]: the canonical message a tenant submits (§3.6) and its attachments (§5.1).
//! - [`admin`]: the classic REST bodies the setup step sends (tenants and accounts, §3.5).
//! - [`stats`]: the `/stats` bodies of the simulated client and the SMTP sink.
//! - [`headers`]: header names the client stamps and the sink reads.
//! - [`stages`]: the load's stages (`LOAD_STAGES`) and the rate they give at each instant.
//! - [`prom`]: the proxy's `/metrics` series and the sink's latency histogram, parsed, with
//!   histogram quantiles.
//!
//! - `signals` (feature `signals`): the SIGINT/SIGTERM stop signal of every binary.
//! - `md5` (feature `md5`): MD5 of attachment content, for the proxy's download spool and the
//!   client simulator's content and sink.
//!
//! Without features this crate depends on serde alone, so the client simulator compiles neither
//! axum, sqlx nor kube.

pub mod admin;
pub mod headers;
#[cfg(feature = "md5")]
pub mod md5;
pub mod message;
pub mod patch;
pub mod prom;
#[cfg(feature = "signals")]
pub mod signals;
pub mod stages;
pub mod stats;
pub mod sync;
