//! The operator's own metrics (prometheus-client, one registry, prefix `pressure_operator`):
//! reconciles, their durations and failures by error label, and finished runs by verdict.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Label of failure counts.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    /// [`crate::Error::metric_label`].
    pub error: String,
}

/// Label of finished runs.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct VerdictLabels {
    /// The `Succeeded` condition's reason.
    pub verdict: String,
}

/// Every metric family of the operator.
#[derive(Clone)]
pub struct Metrics {
    /// Reconciles started.
    pub reconciles: Counter,
    /// Reconcile failures by error label.
    pub failures: Family<ErrorLabels, Counter>,
    /// Reconcile durations, seconds.
    pub duration: Histogram,
    /// Finished runs by verdict (`pressuretest_runs_total`).
    pub runs: Family<VerdictLabels, Counter>,
}

impl Metrics {
    /// Creates the families and registers them.
    pub fn new(registry: &mut Registry) -> Self {
        let m = Self {
            reconciles: Counter::default(),
            failures: Family::default(),
            duration: Histogram::new(exponential_buckets(0.005, 2.0, 12)),
            runs: Family::default(),
        };
        let op = registry.sub_registry_with_prefix("pressure_operator");
        op.register("reconciles", "Reconciles started", m.reconciles.clone());
        op.register(
            "reconcile_failures",
            "Reconcile failures by error kind",
            m.failures.clone(),
        );
        op.register(
            "reconcile_duration_seconds",
            "Reconcile duration",
            m.duration.clone(),
        );
        registry.register(
            "pressuretest_runs",
            "Finished PressureTest runs by verdict",
            m.runs.clone(),
        );
        m
    }

    /// Counts a failure.
    pub fn failed(&self, e: &crate::Error) {
        self.failures
            .get_or_create(&ErrorLabels {
                error: e.metric_label().into(),
            })
            .inc();
    }

    /// Counts a finished run.
    pub fn finished(&self, verdict: &str) {
        self.runs
            .get_or_create(&VerdictLabels {
                verdict: verdict.into(),
            })
            .inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_render_with_their_names() {
        let mut registry = Registry::default();
        let m = Metrics::new(&mut registry);
        m.reconciles.inc();
        m.finished("ThresholdsPassed");
        m.failed(&crate::Error::MissingField("x"));
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &registry).expect("encodes");
        assert!(
            out.contains("pressure_operator_reconciles_total 1"),
            "{out}"
        );
        assert!(
            out.contains("pressuretest_runs_total{verdict=\"ThresholdsPassed\"} 1"),
            "{out}"
        );
        assert!(
            out.contains("pressure_operator_reconcile_failures_total{error=\"missing_field\"} 1"),
            "{out}"
        );
    }
}
