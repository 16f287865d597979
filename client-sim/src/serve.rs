//! The simulated tenant application (README, `serve`): the mail proxy syncs with it,
//! receives generated messages and fetches their attachments from it.
//!
//! Parts:
//! - [`profile`]: the four seed profiles, the flags and their resolution into a [`ServeConfig`].
//! - [`generate`]: the seeded draws (messages per sync, priorities, sizes, markers, DND) and the
//!   message bodies.
//! - [`message`]: builds the canonical or upstream-form messages with the measurement headers.
//! - [`content`]: attachment content derived from `(seed, size)`, hashed and streamed in chunks,
//!   and the bounded `md5 → (seed, size)` registry.
//! - [`stats`]: counters behind `/stats` and the Prometheus families behind `/metrics`.
//! - [`http`]: the router and handlers.
//!
//! Run it with `client-sim serve --profile standard`, or start it in-process with [`run`].

pub mod content;
pub mod generate;
pub mod http;
pub mod message;
pub mod profile;
pub mod stats;

use std::future::Future;

use tokio::net::TcpListener;

pub use profile::{MessageFormat, Profile, ServeArgs, ServeConfig};

/// Serves the simulated client on `listener` until `shutdown` resolves.
pub async fn run(
    listener: TcpListener,
    config: ServeConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> crate::Result<()> {
    let addr = listener.local_addr().ok();
    tracing::info!(
        ?addr,
        client_id = %config.client_id,
        tenant_id = %config.tenant_id,
        seed = config.seed,
        "Simulated client listening."
    );
    let state = http::AppState::new(config);
    axum::serve(listener, http::router(state))
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(|e| crate::Error::io("serving the simulated client", e))
}
