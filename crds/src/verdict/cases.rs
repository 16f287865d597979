//! The one table of verdict cases: figures in, verdict and reasons out. Three suites run it: the
//! pure verdict here, the local runner's report (`pressure/`, from snapshots built of
//! these counts) and the operator's status machine (`operator`, from readings aggregated from
//! these counts), so the same figures give the same verdict locally and in the cluster.
//!
//! The counts are what the three sources report: the clients (`/stats`: generated, final error
//! reports), the proxy (`gmp_sent_total`) and the verifying sink (`/stats`: received,
//! duplicates, attachment mismatches, end-to-end p99), or no sink at all (a mail catcher).

use std::collections::BTreeMap;

use mailproxy_proto::prom::ProxyMetrics;
use mailproxy_proto::stats::{ClientStatsV1, LatencySummaryV1, SinkStatsV1, SinkTenantStatsV1};

use crate::{Figures, LatencySource, ThresholdName, ThresholdOutcome, ThresholdResult};
use crate::{ThresholdsSpec, verdict};

/// The one tenant the sources report for in [`Counts::sources`].
pub const TENANT: &str = "t";

/// Cumulative counts at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counts {
    /// Messages the clients generated.
    pub generated: i64,
    /// Messages the proxy sent (`gmp_sent_total`).
    pub sent: i64,
    /// Final `error`/`bounce` reports the clients received.
    pub errors: i64,
    /// The verifying sink's figures; `None` without them (`--smtp`; a Mailpit count is covered by
    /// `verdict::tests` instead).
    pub sink: Option<SinkCounts>,
}

/// What the verifying sink reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SinkCounts {
    /// Messages received, duplicates included.
    pub delivered: i64,
    /// Duplicate deliveries.
    pub duplicates: i64,
    /// Attachments that failed their MD5 check.
    pub attachment_mismatches: i64,
    /// End-to-end p99, ms; `None` when no message carried a latency stamp.
    pub latency_p99_ms: Option<i64>,
}

impl Counts {
    /// The [`Figures`] an adapter's aggregation makes of these counts at `observed_at`.
    pub fn figures(&self, observed_at: i64) -> Figures {
        let sink = self.sink;
        let p99 = sink.and_then(|s| s.latency_p99_ms);
        Figures {
            observed_at,
            generated: self.generated,
            sent: self.sent,
            errors: self.errors,
            delivered: sink.map(|s| s.delivered),
            duplicates: sink.map(|s| s.duplicates),
            attachment_mismatches: sink.map(|s| s.attachment_mismatches),
            latency_p99_ms: p99,
            latency_source: p99.map(|_| LatencySource::Sink),
            ..Figures::default()
        }
    }

    /// What the sources report for these counts, one tenant ([`TENANT`]): the proxy's metrics,
    /// the client's `/stats` and the verifying sink's `/stats` (`None` without one). Both
    /// adapters' suites feed these to their own aggregation.
    pub fn sources(&self) -> (ProxyMetrics, ClientStatsV1, Option<SinkStatsV1>) {
        let proxy = ProxyMetrics {
            sent: BTreeMap::from([(TENANT.to_string(), self.sent as f64)]),
            ..ProxyMetrics::default()
        };
        let client = ClientStatsV1 {
            messages_generated: self.generated as u64,
            reports_by_type: BTreeMap::from([("error".to_string(), self.errors as u64)]),
            ..ClientStatsV1::default()
        };
        let sink = self.sink.map(|k| {
            let line = SinkTenantStatsV1 {
                received: k.delivered as u64,
                duplicates: k.duplicates as u64,
                attachment_mismatches: k.attachment_mismatches as u64,
                latency_ms: LatencySummaryV1 {
                    count: if k.latency_p99_ms.is_some() {
                        k.delivered as u64
                    } else {
                        0
                    },
                    p99: k.latency_p99_ms.unwrap_or_default() as f64,
                    ..LatencySummaryV1::default()
                },
                ..SinkTenantStatsV1::default()
            };
            SinkStatsV1 {
                total: line.clone(),
                tenants: BTreeMap::from([(TENANT.to_string(), line)]),
                ..SinkStatsV1::default()
            }
        });
        (proxy, client, sink)
    }
}

/// One case: thresholds and counts in, the verdict out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Case {
    /// What the case shows.
    pub name: &'static str,
    /// The spec's thresholds.
    pub thresholds: ThresholdsSpec,
    /// Counts at the warm-up's end.
    pub start: Counts,
    /// Counts at the load's stop; the run is drained, so also the last counts.
    pub end: Counts,
    /// Seconds between `start` and `end`.
    pub seconds: i64,
    /// The `Succeeded` reason.
    pub reason: &'static str,
    /// Thresholds breached.
    pub breached: Vec<ThresholdName>,
    /// Thresholds not measured (and not disabled).
    pub not_measured: Vec<ThresholdName>,
    /// Observed values that must come out exactly.
    pub observed: Vec<(ThresholdName, Option<i64>)>,
}

impl Case {
    /// Panics, naming the case, unless `results`, `reason` and `message` are this case's verdict.
    pub fn check(&self, results: &[ThresholdResult], reason: &str, message: &str) {
        let name = self.name;
        assert_eq!(reason, self.reason, "{name}: reason; {results:?}");
        assert_eq!(
            results.len(),
            ThresholdName::ALL.len(),
            "{name}: one line per threshold"
        );
        for (r, n) in results.iter().zip(ThresholdName::ALL) {
            assert_eq!(r.name, n.as_str(), "{name}: order");
            assert_eq!(
                r.limit,
                i64::from(self.thresholds.limit(n)),
                "{name}: limit"
            );
            let want = if self.thresholds.is_disabled(n) {
                ThresholdOutcome::Disabled
            } else if self.breached.contains(&n) {
                ThresholdOutcome::Breached
            } else if self.not_measured.contains(&n) {
                ThresholdOutcome::NotMeasured
            } else {
                ThresholdOutcome::Passed
            };
            assert_eq!(r.outcome, want, "{name}: {} {r:?}", n.as_str());
            assert_eq!(
                r.passed,
                matches!(want, ThresholdOutcome::Passed | ThresholdOutcome::Disabled),
                "{name}: {r:?}"
            );
        }
        for (n, v) in &self.observed {
            let r = results.iter().find(|r| r.name == n.as_str());
            assert_eq!(r.and_then(|r| r.observed), *v, "{name}: {}", n.as_str());
        }
        for n in self.breached.iter().chain(&self.not_measured) {
            assert!(
                message.contains(n.as_str()),
                "{name}: message {message:?} names {}",
                n.as_str()
            );
        }
        if reason == verdict::NOT_MEASURED {
            assert!(message.contains("not measured"), "{name}: {message:?}");
        }
    }
}

fn sink(delivered: i64, p99: i64) -> Option<SinkCounts> {
    Some(SinkCounts {
        delivered,
        latency_p99_ms: Some(p99),
        ..SinkCounts::default()
    })
}

fn counts(generated: i64, sent: i64, errors: i64, sink: Option<SinkCounts>) -> Counts {
    Counts {
        generated,
        sent,
        errors,
        sink,
    }
}

/// Every threshold whose figure needs the verifying sink.
pub const NEEDS_SINK: [ThresholdName; 6] = [
    ThresholdName::MaxP99LatencyMs,
    ThresholdName::MinThroughputPerSecond,
    ThresholdName::MinDeliveredRatioPermille,
    ThresholdName::MaxLostMessages,
    ThresholdName::MaxDuplicates,
    ThresholdName::MaxAttachmentMismatches,
];

/// The table.
pub fn cases() -> Vec<Case> {
    use ThresholdName as T;
    let start = counts(100, 100, 0, sink(100, 200));
    let base = Case {
        name: "",
        thresholds: ThresholdsSpec::default(),
        start,
        end: counts(1100, 1100, 0, sink(1100, 300)),
        seconds: 100,
        reason: verdict::THRESHOLDS_PASSED,
        breached: vec![],
        not_measured: vec![],
        observed: vec![],
    };
    let no_sink = |c: Counts| Counts { sink: None, ..c };
    vec![
        Case {
            name: "a clean run passes; throughput is delivered per second at the sink",
            observed: vec![
                (T::MaxErrorRatePermille, Some(0)),
                (T::MaxP99LatencyMs, Some(300)),
                (T::MinThroughputPerSecond, Some(10)),
                (T::MinDeliveredRatioPermille, Some(1000)),
                (T::MaxLostMessages, Some(0)),
                (T::MaxDuplicates, Some(0)),
                (T::MaxAttachmentMismatches, Some(0)),
            ],
            ..base.clone()
        },
        Case {
            name: "throughput counts deliveries, not the proxy's sends",
            // The proxy sent 1000 in the window; the sink saw 500 of them by the load's stop.
            thresholds: ThresholdsSpec {
                min_throughput_per_second: 6,
                min_delivered_ratio_permille: 0,
                max_lost_messages: 1000,
                ..ThresholdsSpec::default()
            },
            end: counts(1100, 1100, 0, sink(600, 300)),
            reason: verdict::THRESHOLD_BREACHED,
            breached: vec![T::MinThroughputPerSecond],
            observed: vec![(T::MinThroughputPerSecond, Some(5))],
            ..base.clone()
        },
        Case {
            name: "one lost message fails the run",
            end: counts(1100, 1099, 0, sink(1099, 300)),
            reason: verdict::DELIVERY_MISMATCH,
            breached: vec![T::MaxLostMessages],
            observed: vec![
                (T::MaxLostMessages, Some(1)),
                (T::MinDeliveredRatioPermille, Some(999)),
            ],
            ..base.clone()
        },
        Case {
            name: "one duplicate fails the run",
            end: counts(
                1100,
                1100,
                0,
                Some(SinkCounts {
                    delivered: 1101,
                    duplicates: 1,
                    attachment_mismatches: 0,
                    latency_p99_ms: Some(300),
                }),
            ),
            reason: verdict::DELIVERY_MISMATCH,
            breached: vec![T::MaxDuplicates],
            observed: vec![(T::MaxDuplicates, Some(1)), (T::MaxLostMessages, Some(0))],
            ..base.clone()
        },
        Case {
            name: "a duplicate does not hide a lost message",
            end: counts(
                1100,
                1100,
                0,
                Some(SinkCounts {
                    delivered: 1100,
                    duplicates: 1,
                    attachment_mismatches: 0,
                    latency_p99_ms: Some(300),
                }),
            ),
            reason: verdict::DELIVERY_MISMATCH,
            breached: vec![T::MaxLostMessages, T::MaxDuplicates],
            observed: vec![(T::MaxDuplicates, Some(1)), (T::MaxLostMessages, Some(1))],
            ..base.clone()
        },
        Case {
            name: "an attachment mismatch fails the run",
            end: counts(
                1100,
                1100,
                0,
                Some(SinkCounts {
                    delivered: 1100,
                    duplicates: 0,
                    attachment_mismatches: 2,
                    latency_p99_ms: Some(300),
                }),
            ),
            reason: verdict::DELIVERY_MISMATCH,
            breached: vec![T::MaxAttachmentMismatches],
            observed: vec![(T::MaxAttachmentMismatches, Some(2))],
            ..base.clone()
        },
        Case {
            name: "a loss within an explicit allowance passes",
            thresholds: ThresholdsSpec {
                max_lost_messages: 1,
                ..ThresholdsSpec::default()
            },
            end: counts(1100, 1099, 0, sink(1099, 300)),
            ..base.clone()
        },
        Case {
            name: "a mail catcher measures no delivery figure: NotMeasured, each one named",
            start: no_sink(start),
            end: no_sink(base.end),
            reason: verdict::NOT_MEASURED,
            not_measured: NEEDS_SINK.to_vec(),
            observed: vec![
                (T::MaxErrorRatePermille, Some(0)),
                (T::MaxLostMessages, None),
                (T::MinThroughputPerSecond, None),
            ],
            ..base.clone()
        },
        Case {
            name: "a mail catcher passes when the spec switches the sink's thresholds off",
            thresholds: ThresholdsSpec {
                disabled: NEEDS_SINK.to_vec(),
                ..ThresholdsSpec::default()
            },
            start: no_sink(start),
            end: no_sink(base.end),
            ..base.clone()
        },
        Case {
            name: "no latency stamp: p99 not measured",
            end: counts(
                1100,
                1100,
                0,
                Some(SinkCounts {
                    delivered: 1100,
                    latency_p99_ms: None,
                    ..SinkCounts::default()
                }),
            ),
            reason: verdict::NOT_MEASURED,
            not_measured: vec![T::MaxP99LatencyMs],
            observed: vec![(T::MaxP99LatencyMs, None)],
            ..base.clone()
        },
        Case {
            name: "a breach outranks an unmeasured figure; both are named",
            end: counts(
                1100,
                1099,
                0,
                Some(SinkCounts {
                    delivered: 1099,
                    latency_p99_ms: None,
                    ..SinkCounts::default()
                }),
            ),
            reason: verdict::DELIVERY_MISMATCH,
            breached: vec![T::MaxLostMessages],
            not_measured: vec![T::MaxP99LatencyMs],
            ..base.clone()
        },
        Case {
            name: "a disabled threshold is listed but never fails",
            thresholds: ThresholdsSpec {
                disabled: vec![T::MaxLostMessages],
                ..ThresholdsSpec::default()
            },
            end: counts(1100, 1099, 0, sink(1099, 300)),
            observed: vec![(T::MaxLostMessages, Some(1))],
            ..base.clone()
        },
        Case {
            name: "error reports over the window breach the error rate",
            // 50 error reports against 950 sent in the window: 50 permille.
            end: counts(1100, 1050, 50, sink(1050, 300)),
            reason: verdict::THRESHOLD_BREACHED,
            breached: vec![T::MaxErrorRatePermille, T::MinDeliveredRatioPermille],
            observed: vec![
                (T::MaxErrorRatePermille, Some(50)),
                (T::MinDeliveredRatioPermille, Some(954)),
                (T::MaxLostMessages, Some(0)),
            ],
            ..base.clone()
        },
        Case {
            name: "errors during the warm-up are not in the window",
            thresholds: ThresholdsSpec {
                min_delivered_ratio_permille: 900,
                ..ThresholdsSpec::default()
            },
            start: counts(1000, 900, 100, sink(900, 200)),
            end: counts(2000, 1900, 100, sink(1900, 300)),
            observed: vec![
                (T::MaxErrorRatePermille, Some(0)),
                (T::MinThroughputPerSecond, Some(10)),
                (T::MinDeliveredRatioPermille, Some(950)),
            ],
            ..base.clone()
        },
        Case {
            name: "slow and thin: latency and throughput breach",
            thresholds: ThresholdsSpec {
                max_p99_latency_ms: 250,
                min_throughput_per_second: 50,
                ..ThresholdsSpec::default()
            },
            reason: verdict::THRESHOLD_BREACHED,
            breached: vec![T::MaxP99LatencyMs, T::MinThroughputPerSecond],
            ..base.clone()
        },
    ]
}
