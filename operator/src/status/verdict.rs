//! The verdict: each threshold of the spec against the final figures, with the warm-up baseline
//! subtracted from counters. A figure that could not be measured (latency or delivery with MailHog)
//! passes and shows no observed value.

use pressure_crds::{Figures, ThresholdResult, ThresholdsSpec};

pub use pressure_crds::verdict::permille;

/// `errors / (sent + errors)` in permille over the measured window (0 when nothing happened).
pub fn error_rate(fig: &Figures, base: Option<&Figures>) -> i64 {
    let (sent, errors) = deltas(fig, base);
    permille(errors, sent + errors).unwrap_or(0)
}

/// Sent and errors since the baseline.
pub fn deltas(fig: &Figures, base: Option<&Figures>) -> (i64, i64) {
    let (bs, be) = base.map_or((0, 0), |b| (b.sent, b.errors));
    ((fig.sent - bs).max(0), (fig.errors - be).max(0))
}

/// Every threshold's outcome and, when any failed, the `Succeeded=False` reason. The arithmetic
/// is `pressure_crds::verdict`, shared with the local runner.
pub fn evaluate(
    th: &ThresholdsSpec,
    fig: &Figures,
    base: Option<&Figures>,
    measured_seconds: i64,
) -> (Vec<ThresholdResult>, &'static str) {
    let observed = pressure_crds::verdict::Observed::from_figures(fig, base, measured_seconds);
    pressure_crds::verdict::evaluate(th, &observed)
}

#[cfg(test)]
mod tests {
    use super::super::conditions::reason;
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
    fn all_thresholds_pass() {
        let (r, v) = evaluate(
            &ThresholdsSpec::default(),
            &fig(6000, 3, Some(900), Some(1000)),
            None,
            300,
        );
        assert_eq!(v, reason::THRESHOLDS_PASSED);
        assert!(r.iter().all(|x| x.passed));
        assert_eq!(r[2].observed, Some(20));
    }

    #[test]
    fn error_rate_breach_fails() {
        let (r, v) = evaluate(
            &ThresholdsSpec::default(),
            &fig(900, 100, Some(10), Some(1000)),
            None,
            100,
        );
        assert_eq!(v, reason::THRESHOLD_BREACHED);
        assert_eq!(r[0].observed, Some(100));
        assert!(!r[0].passed);
    }

    #[test]
    fn baseline_is_subtracted() {
        let base = fig(1000, 100, None, None);
        // 100 errors happened during warm-up only: measured window is clean.
        let (r, v) = evaluate(
            &ThresholdsSpec::default(),
            &fig(4000, 100, Some(10), Some(995)),
            Some(&base),
            100,
        );
        assert_eq!((r[0].observed, r[2].observed), (Some(0), Some(30)));
        assert_eq!(v, reason::THRESHOLDS_PASSED);
    }

    #[test]
    fn low_delivery_is_a_delivery_mismatch_and_unmeasured_passes() {
        let (_, v) = evaluate(
            &ThresholdsSpec::default(),
            &fig(1000, 0, None, Some(500)),
            None,
            10,
        );
        assert_eq!(v, reason::DELIVERY_MISMATCH);
        let (r, v) = evaluate(
            &ThresholdsSpec::default(),
            &fig(1000, 0, None, None),
            None,
            10,
        );
        assert_eq!(v, reason::THRESHOLDS_PASSED);
        assert_eq!((r[1].observed, r[3].observed), (None, None));
    }

    #[test]
    fn slow_p99_and_low_throughput_breach() {
        let th = ThresholdsSpec {
            max_p99_latency_ms: 100,
            min_throughput_per_second: 50,
            ..ThresholdsSpec::default()
        };
        let (r, v) = evaluate(&th, &fig(100, 0, Some(101), Some(1000)), None, 10);
        assert_eq!(v, reason::THRESHOLD_BREACHED);
        assert!(!r[1].passed && !r[2].passed);
    }
}
