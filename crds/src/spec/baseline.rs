//! `spec.baseline`: an earlier run this one is compared with, and how much worse it may be before
//! it counts as regressed. The operator reads the earlier run's report from its ConfigMap (named
//! directly, or through the PressureTest that wrote it); the local run takes a `report.json`
//! with `--baseline FILE` and uses the same tolerances. [`crate::compare`] does the arithmetic.

use kube::KubeSchema;
use serde::{Deserialize, Serialize};

/// The run to compare with, and the tolerances.
#[derive(KubeSchema, Serialize, Deserialize, Debug, Clone, PartialEq, Eq, Default)]
#[x_kube(validation = Rule::new("has(self.report) != has(self.pressureTest)").message("name the baseline by exactly one of report (a report ConfigMap) and pressureTest"))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BaselineSpec {
    /// A report ConfigMap in this namespace (`<pressuretest>-report-<run>`, retained or not).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub report: Option<String>,
    /// A PressureTest in this namespace: the report of its latest run (`status.report`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub pressure_test: Option<String>,
    /// How much worse than the baseline this run may be.
    #[serde(default)]
    pub tolerance: ToleranceSpec,
}

/// How much worse than its baseline a run may be, figure by figure. A figure either run did not
/// measure is shown and not judged.
#[derive(KubeSchema, Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ToleranceSpec {
    /// Delivered per second may be this many percent below the baseline's.
    #[serde(default = "d_throughput")]
    #[schemars(range(min = 0, max = 100))]
    pub throughput_drop_percent: i32,
    /// The p99 latency may be this many percent above the baseline's.
    #[serde(default = "d_p99")]
    #[schemars(range(min = 0, max = 100_000))]
    pub p99_rise_percent: i32,
    /// The error rate may be this many permille points above the baseline's.
    #[serde(default = "d_errors")]
    #[schemars(range(min = 0, max = 1000))]
    pub error_rate_rise_permille: i32,
    /// The proxy's CPU seconds per 1,000 delivered messages may be this many percent above the
    /// baseline's (measured by the local run).
    #[serde(default = "d_cpu")]
    #[schemars(range(min = 0, max = 100_000))]
    pub cpu_rise_percent: i32,
}

fn d_throughput() -> i32 {
    10
}
fn d_p99() -> i32 {
    25
}
fn d_errors() -> i32 {
    1
}
fn d_cpu() -> i32 {
    20
}

impl Default for ToleranceSpec {
    fn default() -> Self {
        Self {
            throughput_drop_percent: d_throughput(),
            p99_rise_percent: d_p99(),
            error_rate_rise_permille: d_errors(),
            cpu_rise_percent: d_cpu(),
        }
    }
}
