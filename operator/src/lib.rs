//! The PressureTest operator: turns one `PressureTest` into a test environment (PostgreSQL, the
//! mail proxy with its HPA, an SMTP sink, Prometheus, Grafana, per-tenant clients and a setup Job),
//! runs the load between a published start and stop time, reads live figures and sets a verdict.
//!
//! Modules:
//! - [`args`]: command-line flags with `PRESSURE_*` env twins;
//! - [`controller`]: the kube-runtime controller, `reconcile` and `error_policy`;
//! - [`reconcile`]: pure desired-state builders, one file per component;
//! - [`status`]: the pure phase machine, pod-health classification and the verdict;
//! - [`figures`]: reading the proxy's `/metrics` and the clients' and sink's `/stats`;
//! - [`report`]: the run's report (timeline, `report.json`, chart) in a ConfigMap;
//! - [`lease`]: leader election on a `coordination.k8s.io/v1` Lease;
//! - [`rbac`]: every API call the code makes, the source of the shipped RBAC;
//! - [`metrics`], [`health`], [`telemetry`]: the operator's own `/metrics`, probes and logs.

pub mod args;
pub mod controller;
pub mod figures;
pub mod health;
pub mod lease;
pub mod metrics;
pub mod rbac;
pub mod reconcile;
pub mod report;
pub mod status;
pub mod telemetry;

#[cfg(test)]
mod fixtures;

pub use args::Args;

/// What can go wrong while reconciling.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A call to the Kubernetes API failed.
    #[error("kubernetes API call failed: {0}")]
    Kube(#[source] kube::Error),
    /// Building a child object failed (serialising the setup plan or a config file).
    #[error("building {what} failed: {reason}")]
    Build {
        /// The object being built.
        what: &'static str,
        /// The cause.
        reason: String,
    },
    /// The PressureTest lacks a namespace or name.
    #[error("the PressureTest has no {0}")]
    MissingField(&'static str),
    /// Reading figures over HTTP failed.
    #[error("reading figures from {url} failed: {reason}")]
    Figures {
        /// The endpoint.
        url: String,
        /// Why.
        reason: String,
    },
    /// This replica's leadership ran out (its lease was not renewed in time); nothing is written.
    #[error("this replica no longer holds the lease")]
    NotLeader,
    /// An `--endpoint-override` value could not be parsed.
    #[error("invalid endpoint override {0:?}: expected proxy=URL, sink=URL or client/<tenant>=URL")]
    Override(String),
}

impl Error {
    /// A short, fixed label for counting failures by kind.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::Kube(_) => "kube",
            Error::Build { .. } => "build",
            Error::MissingField(_) => "missing_field",
            Error::Figures { .. } => "figures",
            Error::Override(_) => "override",
            Error::NotLeader => "not_leader",
        }
    }
}

impl From<kube::Error> for Error {
    fn from(e: kube::Error) -> Self {
        Error::Kube(e)
    }
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Runs the operator: the HTTP server, leader election and, while leading, the controller.
pub async fn run(args: Args) -> anyhow::Result<()> {
    controller::run(args).await
}
