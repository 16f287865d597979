//! The threshold verdict as a pure function: the spec's [`ThresholdsSpec`] against the observed
//! values of a run, one [`ThresholdResult`] per threshold and the `Succeeded` reason. The local
//! runner (`pressure run`) uses it; the operator computes the same arithmetic in its own
//! `status::verdict` and can switch to this one.
//!
//! A value that could not be measured (latency or delivery without the verifying sink) passes and
//! shows no observed value.

use crate::{Figures, ThresholdResult, ThresholdsSpec};

/// `Succeeded=True` reason: every threshold held.
pub const THRESHOLDS_PASSED: &str = "ThresholdsPassed";
/// `Succeeded=False` reason: a threshold other than delivery failed.
pub const THRESHOLD_BREACHED: &str = "ThresholdBreached";
/// `Succeeded=False` reason: only delivery (ratio, loss, duplicates) failed.
pub const DELIVERY_MISMATCH: &str = "DeliveryMismatch";

/// The values thresholds are checked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Observed {
    /// errors / (sent + errors) over the measured window, permille.
    pub error_rate_permille: i64,
    /// End-to-end p99 latency, ms.
    pub latency_p99_ms: Option<i64>,
    /// Average messages per second over the measured window.
    pub throughput_per_second: i64,
    /// delivered / generated, permille.
    pub delivered_ratio_permille: Option<i64>,
}

/// Per-mille ratio `num / den`, `None` when `den` is 0.
pub fn permille(num: i64, den: i64) -> Option<i64> {
    (den > 0).then(|| num.saturating_mul(1000) / den)
}

impl Observed {
    /// The operator's arithmetic: counters since `base` (the warm-up's end), throughput from the
    /// proxy's sent counter over `measured_seconds`.
    pub fn from_figures(fig: &Figures, base: Option<&Figures>, measured_seconds: i64) -> Self {
        let (bs, be) = base.map_or((0, 0), |b| (b.sent, b.errors));
        let sent = (fig.sent - bs).max(0);
        let errors = (fig.errors - be).max(0);
        Observed {
            error_rate_permille: permille(errors, sent + errors).unwrap_or(0),
            latency_p99_ms: fig.latency_p99_ms,
            throughput_per_second: sent / measured_seconds.max(1),
            delivered_ratio_permille: fig.delivered_ratio_permille,
        }
    }
}

/// Every threshold's outcome, in the spec's order, and the `Succeeded` reason.
pub fn evaluate(th: &ThresholdsSpec, obs: &Observed) -> (Vec<ThresholdResult>, &'static str) {
    let line = |name: &str, limit: i32, observed: Option<i64>, passed: bool| ThresholdResult {
        name: name.into(),
        limit: i64::from(limit),
        observed,
        passed,
    };
    let err = obs.error_rate_permille;
    let p99 = obs.latency_p99_ms;
    let tput = obs.throughput_per_second;
    let ratio = obs.delivered_ratio_permille;
    let results = vec![
        line(
            "maxErrorRatePermille",
            th.max_error_rate_permille,
            Some(err),
            err <= i64::from(th.max_error_rate_permille),
        ),
        line(
            "maxP99LatencyMs",
            th.max_p99_latency_ms,
            p99,
            p99.is_none_or(|v| v <= i64::from(th.max_p99_latency_ms)),
        ),
        line(
            "minThroughputPerSecond",
            th.min_throughput_per_second,
            Some(tput),
            tput >= i64::from(th.min_throughput_per_second),
        ),
        line(
            "minDeliveredRatioPermille",
            th.min_delivered_ratio_permille,
            ratio,
            ratio.is_none_or(|v| v >= i64::from(th.min_delivered_ratio_permille)),
        ),
    ];
    let reason = reason_of(&results, &["minDeliveredRatioPermille"]);
    (results, reason)
}

/// The reason for a list of results: passed, a delivery mismatch when only the `delivery` lines
/// failed, else a breach.
pub fn reason_of(results: &[ThresholdResult], delivery: &[&str]) -> &'static str {
    if results.iter().all(|r| r.passed) {
        THRESHOLDS_PASSED
    } else if results
        .iter()
        .filter(|r| !r.passed)
        .all(|r| delivery.contains(&r.name.as_str()))
    {
        DELIVERY_MISMATCH
    } else {
        THRESHOLD_BREACHED
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fig(sent: i64, errors: i64, p99: Option<i64>, ratio: Option<i64>) -> Figures {
        Figures {
            sent,
            errors,
            latency_p99_ms: p99,
            delivered_ratio_permille: ratio,
            ..Figures::default()
        }
    }

    #[test]
    fn all_pass_and_throughput_is_per_second() {
        let obs = Observed::from_figures(&fig(6000, 3, Some(900), Some(1000)), None, 300);
        let (r, v) = evaluate(&ThresholdsSpec::default(), &obs);
        assert_eq!(v, THRESHOLDS_PASSED);
        assert_eq!(r[2].observed, Some(20));
        assert!(r.iter().all(|x| x.passed));
    }

    #[test]
    fn baseline_is_subtracted() {
        let base = fig(1000, 100, None, None);
        let obs = Observed::from_figures(&fig(4000, 100, Some(10), Some(995)), Some(&base), 100);
        assert_eq!(
            (obs.error_rate_permille, obs.throughput_per_second),
            (0, 30)
        );
    }

    #[test]
    fn breaches_and_delivery_mismatch() {
        let th = ThresholdsSpec {
            max_p99_latency_ms: 100,
            ..ThresholdsSpec::default()
        };
        let obs = Observed::from_figures(&fig(100, 0, Some(101), Some(1000)), None, 10);
        let (r, v) = evaluate(&th, &obs);
        assert_eq!(v, THRESHOLD_BREACHED);
        assert!(!r[1].passed);
        let obs = Observed::from_figures(&fig(1000, 0, None, Some(500)), None, 10);
        assert_eq!(evaluate(&th, &obs).1, DELIVERY_MISMATCH);
        let obs = Observed::from_figures(&fig(1000, 0, None, None), None, 10);
        let (r, v) = evaluate(&th, &obs);
        assert_eq!(v, THRESHOLDS_PASSED);
        assert_eq!((r[1].observed, r[3].observed), (None, None));
    }
}
