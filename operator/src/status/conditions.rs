//! Condition types, reasons and the upsert that keeps `lastTransitionTime` unless the status
//! actually changes.

use pressure_crds::{Condition, ConditionStatus};

/// Proxy, PostgreSQL, sink and observability are ready.
pub const ENVIRONMENT_READY: &str = "EnvironmentReady";
/// Every client pod is ready.
pub const CLIENTS_READY: &str = "ClientsReady";
/// No pod is failing to start.
pub const PODS_HEALTHY: &str = "PodsHealthy";
/// True once terminal, whatever the verdict (the `kubectl wait` target).
pub const COMPLETE: &str = "Complete";
/// The verdict: Unknown while running, then True or False.
pub const SUCCEEDED: &str = "Succeeded";
/// With `spec.baseline`, set with the verdict: True when a figure is beyond its tolerance of the
/// baseline run's, False when none is, Unknown when the baseline's report cannot be read.
pub const REGRESSED: &str = "Regressed";

/// Reasons of the `Succeeded` condition; the verdict's own (passed, breached, delivery mismatch,
/// not measured) are `pressure_crds::verdict`'s.
pub mod reason {
    pub use pressure_crds::verdict::{
        ABORTED, DELIVERY_MISMATCH, NOT_MEASURED, THRESHOLD_BREACHED, THRESHOLDS_PASSED,
    };
    /// A wait ran past its deadline.
    pub const DEADLINE_EXCEEDED: &str = "DeadlineExceeded";
    /// The setup Job failed.
    pub const SETUP_FAILED: &str = "SetupFailed";
    /// A pod could not start.
    pub const PODS_UNHEALTHY: &str = "PodsUnhealthy";
    /// Still running.
    pub const IN_PROGRESS: &str = "InProgress";
    /// `Regressed=True`: a figure is beyond its tolerance.
    pub const REGRESSED: &str = "Regressed";
    /// `Regressed=False`: every compared figure is within its tolerance.
    pub const WITHIN_TOLERANCE: &str = "WithinTolerance";
    /// `Regressed=Unknown`: the baseline's report could not be read.
    pub const BASELINE_UNAVAILABLE: &str = "BaselineUnavailable";
}

/// Sets a condition, keeping its transition time when the status is unchanged.
pub fn set(
    conditions: &mut Vec<Condition>,
    type_: &str,
    status: ConditionStatus,
    reason: &str,
    message: impl Into<String>,
    now: &str,
    generation: Option<i64>,
) {
    let message = message.into();
    if let Some(c) = conditions.iter_mut().find(|c| c.type_ == type_) {
        if c.status != status {
            c.last_transition_time = now.to_string();
        }
        c.status = status;
        c.reason = reason.to_string();
        c.message = message;
        c.observed_generation = generation;
        return;
    }
    conditions.push(Condition {
        type_: type_.into(),
        status,
        reason: reason.into(),
        message,
        last_transition_time: now.into(),
        observed_generation: generation,
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transition_time_changes_only_with_status() {
        let mut c = Vec::new();
        set(
            &mut c,
            COMPLETE,
            ConditionStatus::False,
            "InProgress",
            "",
            "t1",
            Some(1),
        );
        set(
            &mut c,
            COMPLETE,
            ConditionStatus::False,
            "InProgress",
            "still",
            "t2",
            Some(2),
        );
        assert_eq!(c[0].last_transition_time, "t1");
        assert_eq!(c[0].observed_generation, Some(2));
        set(
            &mut c,
            COMPLETE,
            ConditionStatus::True,
            "Finished",
            "",
            "t3",
            Some(2),
        );
        assert_eq!((c.len(), c[0].last_transition_time.as_str()), (1, "t3"));
    }
}
