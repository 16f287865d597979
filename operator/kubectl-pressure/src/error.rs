//! What can go wrong, each with what to do about it.

/// An error of a `kubectl pressure` command.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The cluster could not be reached or refused a call.
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    /// No kubeconfig or in-cluster configuration.
    #[error("no cluster configuration ({0}); set KUBECONFIG or pass a valid kubeconfig")]
    Config(String),
    /// The PressureTest does not exist.
    #[error(
        "PressureTest {name} not found in namespace {ns}; `kubectl get pressuretests -n {ns}` lists them"
    )]
    NotFound {
        /// Its name.
        name: String,
        /// The namespace searched.
        ns: String,
    },
    /// The run has no report to show (yet).
    #[error("{0}")]
    NoReport(String),
    /// A local file could not be read or written.
    #[error("{path}: {reason}")]
    File {
        /// The path.
        path: String,
        /// Why.
        reason: String,
    },
}

/// The result of a command step.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// A file error for `path`.
    pub fn file(path: &std::path::Path, reason: impl std::fmt::Display) -> Self {
        Error::File {
            path: path.display().to_string(),
            reason: reason.to_string(),
        }
    }
}
