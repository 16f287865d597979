//! The run's state machine, kept pure: given the previous status, the spec and what the
//! controller observed (readiness, the setup Job, pod health, figures), [`advance`] returns the
//! next status and the transition to announce. Pod classification and the verdict live in
//! `status/`.

pub mod conditions;
pub mod machine;
pub mod pods;
pub mod rerun;
pub mod verdict;

use chrono::{DateTime, Utc};
use pressure_crds::Phase;

pub use machine::advance;
pub use pods::{PodIssue, PodProblem};

/// State of the setup Job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum JobState {
    /// Not created yet.
    #[default]
    Absent,
    /// Created, not finished.
    Running,
    /// Completed successfully.
    Succeeded,
    /// Gave up (retries or deadline exhausted).
    Failed,
}

/// Figures read in one pass (the shared fold of [`pressure_crds::aggregate`]).
pub use pressure_crds::aggregate::Reading;

/// Everything the controller saw during one reconcile.
#[derive(Debug, Clone, PartialEq)]
pub struct Observed {
    /// The clock.
    pub now: DateTime<Utc>,
    /// `metadata.generation`.
    pub generation: Option<i64>,
    /// Components of the environment not ready yet (empty = ready).
    pub env_waiting: Vec<String>,
    /// The setup Job.
    pub setup: JobState,
    /// Ready client pods.
    pub clients_ready: i32,
    /// Desired client pods.
    pub clients_desired: i32,
    /// The first pod that cannot start, past its grace period.
    pub pod_problem: Option<PodProblem>,
    /// Figures, when read this pass.
    pub reading: Option<Reading>,
    /// A run id to use if this is the first reconcile.
    pub fresh_run_id: String,
}

/// A phase change, announced as an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    /// Previous phase.
    pub from: Phase,
    /// New phase.
    pub to: Phase,
    /// CamelCase reason.
    pub reason: String,
    /// One sentence.
    pub message: String,
}

impl Transition {
    /// Whether this transition deserves a Warning event.
    pub fn is_warning(&self) -> bool {
        self.to == Phase::Failed
    }
}

/// RFC 3339 with seconds, as Kubernetes writes times.
pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Seconds since an RFC 3339 time (0 when it cannot be parsed).
pub fn seconds_since(since: Option<&str>, now: DateTime<Utc>) -> i64 {
    since
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map_or(0, |t| (now - t.with_timezone(&Utc)).num_seconds())
}
