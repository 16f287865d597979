//! The one verdict of a run. The operator (`status::verdict`, on the figures it reads from the
//! pods) and the local runner (`pressure run`, on the figures it reads from its processes) both
//! fill a [`Figures`] from the same three sources and call [`Measured::from_figures`] then
//! [`evaluate`]; nothing about a threshold is defined anywhere else.
//!
//! What each threshold measures:
//!
//! | Threshold | Figure | Needs |
//! |---|---|---|
//! | `maxErrorRatePermille` | final `error`/`bounce` reports at the clients ÷ (sent by the proxy + those errors), over the measured window | clients, proxy |
//! | `maxP99LatencyMs` | end-to-end p99: client creation stamp → acceptance at the sink | verifying sink, stamps |
//! | `minThroughputPerSecond` | delivered per second at the sink over the measured window (floor) | verifying sink or Mailpit |
//! | `minDeliveredRatioPermille` | distinct deliveries (received − duplicates) ÷ generated, whole run | verifying sink or Mailpit (its count holds duplicates as deliveries) |
//! | `maxLostMessages` | generated − distinct deliveries − error reports (≥ 0), whole run | verifying sink or Mailpit (idem) |
//! | `maxDuplicates` | duplicate deliveries at the sink | verifying sink |
//! | `maxAttachmentMismatches` | attachments whose content did not match their MD5 at the sink | verifying sink |
//!
//! The measured window runs from the warm-up's end (`start`) to the load's stop (`end`); loss,
//! duplicates and the delivered ratio use the last figures, after the drain.
//!
//! A figure that cannot be measured (`pressure run --smtp`, a sink that saw no latency stamp;
//! with Mailpit, whose message count gives delivery, throughput and loss, latency, duplicates and
//! attachments) is *not measured*: its threshold fails the run
//! with [`NOT_MEASURED`] unless `spec.thresholds.disabled` lists it. A disabled threshold is still
//! listed, with its observed value when there is one, and never fails the run.
//!
//! The `Succeeded` reason: [`THRESHOLD_BREACHED`] when a measured threshold failed, or
//! [`DELIVERY_MISMATCH`] when every measured failure is about delivery (ratio, loss, duplicates,
//! attachments); else [`NOT_MEASURED`] when an enabled threshold could not be measured; else
//! [`THRESHOLDS_PASSED`].

pub mod cases;

use crate::{
    Figures, LatencySource, ThresholdName, ThresholdOutcome, ThresholdResult, ThresholdsSpec,
};

/// `Succeeded=True` reason: every threshold held (or is disabled).
pub const THRESHOLDS_PASSED: &str = "ThresholdsPassed";
/// `Succeeded=False` reason: a threshold other than delivery failed.
pub const THRESHOLD_BREACHED: &str = "ThresholdBreached";
/// `Succeeded=False` reason: only delivery thresholds (ratio, loss, duplicates, attachments) failed.
pub const DELIVERY_MISMATCH: &str = "DeliveryMismatch";
/// `Succeeded=False` reason: nothing measured failed, but an enabled threshold's figure could not
/// be measured.
pub const NOT_MEASURED: &str = "NotMeasured";
/// The run was stopped before its end (`spec.abort` in a cluster, Ctrl-C in a local run): its
/// partial figures are shown, never passed.
pub const ABORTED: &str = "Aborted";

/// Per-mille ratio `num / den`, `None` when `den` is 0.
pub fn permille(num: i64, den: i64) -> Option<i64> {
    (den > 0).then(|| num.saturating_mul(1000) / den)
}

/// The measured window: figures at its start (the warm-up's end; `None` counts from zero), at
/// its end (the load's stop) and its length.
#[derive(Debug, Clone, Copy)]
pub struct Window<'a> {
    /// Figures at the warm-up's end.
    pub start: Option<&'a Figures>,
    /// Figures at the load's stop.
    pub end: &'a Figures,
    /// Seconds between the two.
    pub seconds: f64,
}

/// The value of every threshold's figure; `None` is "not measured".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Measured {
    /// Error reports ÷ (sent + error reports) over the window, permille (0 when nothing happened).
    pub error_rate_permille: i64,
    /// End-to-end p99 latency at the sink, ms.
    pub latency_p99_ms: Option<i64>,
    /// Delivered per second at the sink over the window.
    pub throughput_per_second: Option<i64>,
    /// Distinct deliveries ÷ generated, permille.
    pub delivered_ratio_permille: Option<i64>,
    /// Generated − distinct deliveries − error reports, never negative.
    pub lost_messages: Option<i64>,
    /// Duplicate deliveries.
    pub duplicates: Option<i64>,
    /// Attachments that failed their MD5 check.
    pub attachment_mismatches: Option<i64>,
}

impl Measured {
    /// The figures of a run: `last` (after the drain) for delivery, the window for rates.
    pub fn from_figures(last: &Figures, window: Window<'_>) -> Self {
        let Window {
            start,
            end,
            seconds,
        } = window;
        let distinct = last
            .delivered
            .map(|d| (d - last.duplicates.unwrap_or(0)).max(0));
        let throughput = match (end.delivered, start.map_or(Some(0), |s| s.delivered)) {
            (Some(e), Some(s)) if seconds > 0.0 => {
                Some(((e - s).max(0) as f64 / seconds).floor() as i64)
            }
            _ => None,
        };
        Measured {
            error_rate_permille: error_rate_permille(end, start),
            latency_p99_ms: last
                .latency_p99_ms
                .filter(|_| last.latency_source == Some(LatencySource::Sink)),
            throughput_per_second: throughput,
            delivered_ratio_permille: distinct.and_then(|d| permille(d, last.generated)),
            lost_messages: distinct.map(|d| (last.generated - d - last.errors).max(0)),
            duplicates: last.delivered.and(last.duplicates),
            attachment_mismatches: last.delivered.and(last.attachment_mismatches),
        }
    }

    /// The figure a threshold is judged on.
    pub fn get(&self, name: ThresholdName) -> Option<i64> {
        match name {
            ThresholdName::MaxErrorRatePermille => Some(self.error_rate_permille),
            ThresholdName::MaxP99LatencyMs => self.latency_p99_ms,
            ThresholdName::MinThroughputPerSecond => self.throughput_per_second,
            ThresholdName::MinDeliveredRatioPermille => self.delivered_ratio_permille,
            ThresholdName::MaxLostMessages => self.lost_messages,
            ThresholdName::MaxDuplicates => self.duplicates,
            ThresholdName::MaxAttachmentMismatches => self.attachment_mismatches,
        }
    }
}

/// Error reports ÷ (sent + error reports) between `start` and `end`, permille (0 when nothing
/// happened).
pub fn error_rate_permille(end: &Figures, start: Option<&Figures>) -> i64 {
    let (s0, e0) = start.map_or((0, 0), |b| (b.sent, b.errors));
    let sent = (end.sent - s0).max(0);
    let errors = (end.errors - e0).max(0);
    permille(errors, sent + errors).unwrap_or(0)
}

/// The verdict: one result per threshold (in [`ThresholdName::ALL`] order), the `Succeeded`
/// reason and one sentence naming what failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// One line per threshold.
    pub results: Vec<ThresholdResult>,
    /// [`THRESHOLDS_PASSED`], [`THRESHOLD_BREACHED`], [`DELIVERY_MISMATCH`] or [`NOT_MEASURED`].
    pub reason: &'static str,
    /// `every threshold held`, or which thresholds were breached and which were not measured.
    pub message: String,
}

impl Verdict {
    /// Whether the run passed.
    pub fn passed(&self) -> bool {
        self.reason == THRESHOLDS_PASSED
    }

    /// The thresholds with this outcome.
    pub fn named(&self, outcome: ThresholdOutcome) -> Vec<&str> {
        self.results
            .iter()
            .filter(|r| r.outcome == outcome)
            .map(|r| r.name.as_str())
            .collect()
    }
}

/// Judges every threshold of `th` on `m`.
pub fn evaluate(th: &ThresholdsSpec, m: &Measured) -> Verdict {
    let results: Vec<ThresholdResult> = ThresholdName::ALL
        .iter()
        .map(|&name| {
            let limit = i64::from(th.limit(name));
            let observed = m.get(name);
            let outcome = if th.is_disabled(name) {
                ThresholdOutcome::Disabled
            } else {
                match observed {
                    None => ThresholdOutcome::NotMeasured,
                    Some(v) if holds(name, v, limit) => ThresholdOutcome::Passed,
                    Some(_) => ThresholdOutcome::Breached,
                }
            };
            ThresholdResult {
                name: name.as_str().into(),
                limit,
                observed,
                passed: matches!(
                    outcome,
                    ThresholdOutcome::Passed | ThresholdOutcome::Disabled
                ),
                outcome,
            }
        })
        .collect();
    let breached: Vec<ThresholdName> = ThresholdName::ALL
        .iter()
        .zip(&results)
        .filter(|(_, r)| r.outcome == ThresholdOutcome::Breached)
        .map(|(n, _)| *n)
        .collect();
    let unmeasured: Vec<ThresholdName> = ThresholdName::ALL
        .iter()
        .zip(&results)
        .filter(|(_, r)| r.outcome == ThresholdOutcome::NotMeasured)
        .map(|(n, _)| *n)
        .collect();
    let reason = if !breached.is_empty() {
        if breached.iter().all(|n| n.is_delivery()) {
            DELIVERY_MISMATCH
        } else {
            THRESHOLD_BREACHED
        }
    } else if !unmeasured.is_empty() {
        NOT_MEASURED
    } else {
        THRESHOLDS_PASSED
    };
    let mut parts = Vec::new();
    if !breached.is_empty() {
        let lines: Vec<String> = results
            .iter()
            .filter(|r| r.outcome == ThresholdOutcome::Breached)
            .map(|r| {
                let v = r.observed.unwrap_or_default();
                format!("{} (observed {v}, limit {})", r.name, r.limit)
            })
            .collect();
        parts.push(format!("breached: {}", lines.join(", ")));
    }
    if !unmeasured.is_empty() {
        let names: Vec<String> = unmeasured
            .iter()
            .map(|n| format!("{} ({})", n.as_str(), figure_of(*n)))
            .collect();
        parts.push(format!(
            "not measured: {}; list them in spec.thresholds.disabled to switch them off",
            names.join(", ")
        ));
    }
    let message = if parts.is_empty() {
        "every threshold held".to_string()
    } else {
        parts.join("; ")
    };
    Verdict {
        results,
        reason,
        message,
    }
}

fn holds(name: ThresholdName, v: i64, limit: i64) -> bool {
    match name {
        ThresholdName::MinThroughputPerSecond | ThresholdName::MinDeliveredRatioPermille => {
            v >= limit
        }
        _ => v <= limit,
    }
}

/// The figure behind a threshold, in words, and what measuring it needs.
pub fn figure_of(name: ThresholdName) -> &'static str {
    match name {
        ThresholdName::MaxErrorRatePermille => "error reports at the clients",
        ThresholdName::MaxP99LatencyMs => {
            "end-to-end latency: needs the verifying sink and stamped messages"
        }
        ThresholdName::MinThroughputPerSecond => {
            "delivered per second: needs a sink count (the verifying sink or Mailpit)"
        }
        ThresholdName::MinDeliveredRatioPermille => {
            "delivered ratio: needs a sink count (the verifying sink or Mailpit)"
        }
        ThresholdName::MaxLostMessages => {
            "lost messages: needs a sink count (the verifying sink or Mailpit)"
        }
        ThresholdName::MaxDuplicates => "duplicates: needs the verifying sink",
        ThresholdName::MaxAttachmentMismatches => "attachment mismatches: needs the verifying sink",
    }
}

#[cfg(test)]
mod tests {
    use super::cases::cases;
    use super::*;

    #[test]
    fn the_shared_table_holds_for_the_pure_verdict() {
        for case in cases() {
            let start = case.start.figures(0);
            let end = case.end.figures(case.seconds);
            let m = Measured::from_figures(
                &end,
                Window {
                    start: Some(&start),
                    end: &end,
                    seconds: case.seconds as f64,
                },
            );
            let v = evaluate(&case.thresholds, &m);
            case.check(&v.results, v.reason, &v.message);
        }
    }

    #[test]
    fn permille_and_error_rate() {
        assert_eq!(permille(1, 0), None);
        assert_eq!(permille(999, 1000), Some(999));
        let end = Figures {
            sent: 190,
            errors: 10,
            ..Figures::default()
        };
        assert_eq!(error_rate_permille(&end, None), 50);
        let start = Figures {
            sent: 90,
            errors: 10,
            ..Figures::default()
        };
        assert_eq!(error_rate_permille(&end, Some(&start)), 0);
    }

    #[test]
    fn proxy_latency_is_shown_but_not_judged() {
        let fig = Figures {
            latency_p99_ms: Some(5),
            latency_source: Some(LatencySource::Proxy),
            ..Figures::default()
        };
        let w = Window {
            start: None,
            end: &fig,
            seconds: 10.0,
        };
        assert_eq!(Measured::from_figures(&fig, w).latency_p99_ms, None);
    }

    #[test]
    fn a_catchers_count_measures_delivery_but_not_duplicates_attachments_or_latency() {
        // Mailpit counted every message (its `total`): what it cannot check stays not measured.
        let mut reading = crate::aggregate::Reading::default();
        reading.figures.generated = 50;
        crate::aggregate::add_catcher_count(&mut reading, 50);
        let fig = reading.figures;
        let w = Window {
            start: None,
            end: &fig,
            seconds: 10.0,
        };
        let v = evaluate(&ThresholdsSpec::default(), &Measured::from_figures(&fig, w));
        let outcome = |name: ThresholdName| {
            let line = v.results.iter().find(|r| r.name == name.as_str());
            line.map(|r| r.outcome)
        };
        for name in [
            ThresholdName::MinDeliveredRatioPermille,
            ThresholdName::MaxLostMessages,
            ThresholdName::MinThroughputPerSecond,
        ] {
            assert_eq!(outcome(name), Some(ThresholdOutcome::Passed), "{name:?}");
        }
        for name in [
            ThresholdName::MaxDuplicates,
            ThresholdName::MaxAttachmentMismatches,
            ThresholdName::MaxP99LatencyMs,
        ] {
            assert_eq!(
                outcome(name),
                Some(ThresholdOutcome::NotMeasured),
                "{name:?}"
            );
        }
        assert_eq!(v.reason, NOT_MEASURED);
    }

    #[test]
    fn a_duplicate_does_not_hide_a_loss() {
        // 10 generated, 10 received of which 1 is a duplicate: one message never arrived.
        let fig = Figures {
            generated: 10,
            delivered: Some(10),
            duplicates: Some(1),
            attachment_mismatches: Some(0),
            ..Figures::default()
        };
        let w = Window {
            start: None,
            end: &fig,
            seconds: 1.0,
        };
        let m = Measured::from_figures(&fig, w);
        assert_eq!(
            (m.lost_messages, m.duplicates, m.delivered_ratio_permille),
            (Some(1), Some(1), Some(900))
        );
        assert_eq!(m.throughput_per_second, Some(10));
    }
}
