//! The final report of a run in a cluster, built from its status and timeline by pure functions:
//! the local run's document ([`Report`]), filled with what the operator measures. The totals are
//! the status figures, the per-tenant lines the status's `perTenant`; what a cluster run does not
//! measure (per-process CPU, the proxy's peak memory, per-tenant throughput) stays absent.

use chrono::{DateTime, Utc};
use pressure_crds::report::{CacheFigures, Latency, Line, Report, chart};
use pressure_crds::verdict::{self, permille};
use pressure_crds::{ConditionStatus, Figures, PressureTest, PressureTestStatus, SinkKind};

use super::timeline::RunTimeline;
use crate::status::conditions::SUCCEEDED;

/// Largest `report.json` plus `chart.svg` written to the ConfigMap: a ConfigMap holds at most
/// 1 MiB, names and metadata included.
pub const MAX_REPORT_BYTES: usize = 900 * 1024;

/// The report of the finished run `s` of `pt`.
pub fn build(pt: &PressureTest, s: &PressureTestStatus, tl: &RunTimeline) -> Report {
    let spec = &pt.spec;
    // Both sinks count deliveries (the verifying sink, or Mailpit's message count, duplicates
    // included); only the verifying sink times them end to end.
    let sink_counts = true;
    let sink_times = spec.sink.kind == SinkKind::Verifying;
    let figures = s.figures.clone().unwrap_or_default();
    let succeeded = s.condition(SUCCEEDED);
    let reason = succeeded.map_or("Unknown", |c| c.reason.as_str());
    let window_start = s.load_start_at.map(|t| t + i64::from(spec.warmup_seconds));
    let window_end = match (s.load_stop_at, s.aborted_at) {
        (Some(stop), Some(abort)) => Some(stop.min(abort)),
        (stop, abort) => stop.or(abort),
    };
    // The verdict's window when its two readings exist (the status's rate is over it), else the
    // planned one.
    let measured = match (&s.baseline, &s.load_end, window_start, window_end) {
        (Some(b), Some(e), _, _) => (e.observed_at - b.observed_at).max(0) as f64,
        (_, _, Some(a), Some(b)) => (b - a).max(0) as f64,
        _ => 0.0,
    };
    let completed = s
        .completion_time
        .as_deref()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc).timestamp());
    let drain = match (window_end, completed) {
        (Some(end), Some(done)) => (done - end).max(0) as f64,
        _ => 0.0,
    };
    let (hits, misses) = tl.proxy_cache;
    Report {
        run_id: s.run_id.clone().unwrap_or_default(),
        source: format!(
            "PressureTest {}/{}",
            pt.metadata.namespace.as_deref().unwrap_or_default(),
            pt.metadata.name.as_deref().unwrap_or_default()
        ),
        database: "postgresql".into(),
        delivered_source: if sink_times { "sink" } else { "mailpit" }.into(),
        latency_source: if sink_times { "sink" } else { "proxy" }.into(),
        duration_seconds: spec.duration_seconds,
        warmup_seconds: spec.warmup_seconds,
        measured_seconds: measured,
        drain_seconds: drain,
        drained: tl.drained,
        interrupted: reason == verdict::ABORTED,
        total: total(
            &figures,
            s.per_tenant.iter().map(|t| t.clients).sum(),
            sink_counts,
        ),
        // Per-tenant figures are in `perTenant` (the status shape): without per-tenant window
        // readings, a line's throughput would be made up.
        tenants: Vec::new(),
        proxy_cache: CacheFigures {
            hits,
            misses,
            hit_rate_permille: permille(hits as i64, (hits + misses) as i64),
        },
        proxy_peak_memory_bytes: None,
        cpu_seconds: Default::default(),
        thresholds: s.thresholds.clone(),
        verdict: reason.into(),
        message: succeeded.map(|c| c.message.clone()).unwrap_or_default(),
        passed: succeeded.is_some_and(|c| c.status == ConditionStatus::True),
        per_tenant: s.per_tenant.clone(),
        figures,
        stages: spec.stages.clone(),
        by_replicas: pressure_crds::report::replicas::by_replicas(
            &tl.points,
            f64::from(spec.warmup_seconds),
            window_end
                .zip(s.load_start_at)
                .map_or(f64::MAX, |(end, start)| (end - start) as f64),
        ),
        timeline: tl.points.clone(),
        comparison: None,
    }
}

/// The `total` line from the status figures. Delivered is the verifying sink's count, else the
/// proxy's sent count (as the local run with `--smtp`).
fn total(f: &Figures, clients: i32, sink_counts: bool) -> Line {
    let delivered = if sink_counts {
        f.delivered.unwrap_or(0)
    } else {
        f.sent
    };
    let distinct = delivered - f.duplicates.unwrap_or(0);
    let ms = |v: Option<i64>| v.map(|v| v as f64);
    Line {
        name: "total".into(),
        clients: clients.max(0) as usize,
        generated: f.generated.max(0) as u64,
        sent: f.sent.max(0) as u64,
        delivered: delivered.max(0) as u64,
        errors: f.errors.max(0) as u64,
        deferred: f.deferred.max(0) as u64,
        lost: (f.generated - distinct - f.errors).max(0) as u64,
        duplicates: f.duplicates.map(|v| v.max(0) as u64),
        attachment_mismatches: f.attachment_mismatches.map(|v| v.max(0) as u64),
        bytes_delivered: None,
        cache_hit_rate_permille: f.cache_hit_rate_permille,
        throughput_per_second: f.rate_per_second as f64,
        latency_ms: match (
            ms(f.latency_p50_ms),
            ms(f.latency_p95_ms),
            ms(f.latency_p99_ms),
        ) {
            (Some(p50), Some(p95), Some(p99)) => Some(Latency {
                p50,
                p95,
                p99,
                max: ms(f.latency_max_ms),
            }),
            _ => None,
        },
    }
}

/// `report.json` and `chart.svg` of `r`, within [`MAX_REPORT_BYTES`]: a timeline too long for
/// the ConfigMap (a run of many hours) keeps every second point, then every third, and so on,
/// always with its last point.
pub fn files(mut r: Report) -> (String, String) {
    let full = std::mem::take(&mut r.timeline);
    let mut step = 1;
    loop {
        r.timeline = thin(&full, step);
        let json = serde_json::to_string_pretty(&r).unwrap_or_default();
        let svg = chart::svg(&r);
        if json.len() + svg.len() <= MAX_REPORT_BYTES || r.timeline.len() <= 2 {
            return (json, svg);
        }
        step += 1;
    }
}

fn thin<T: Copy>(points: &[T], step: usize) -> Vec<T> {
    let mut kept: Vec<T> = points.iter().step_by(step).copied().collect();
    if step > 1
        && let Some(last) = points.last()
        && !(points.len() - 1).is_multiple_of(step)
    {
        kept.push(*last);
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::Resource;
    use pressure_crds::report::Point;
    use pressure_crds::{Condition, PressureTestSpec, TenantFigures};

    fn finished(reason: &str, passed: bool) -> PressureTestStatus {
        PressureTestStatus {
            run_id: Some("demo-0000abcd".into()),
            load_start_at: Some(1_000),
            load_stop_at: Some(1_070),
            completion_time: Some("1970-01-01T00:18:10Z".into()),
            figures: Some(Figures {
                generated: 1_000,
                sent: 990,
                delivered: Some(992),
                duplicates: Some(2),
                errors: 5,
                rate_per_second: 16,
                latency_p50_ms: Some(40),
                latency_p95_ms: Some(90),
                latency_p99_ms: Some(150),
                latency_max_ms: Some(400),
                ..Figures::default()
            }),
            per_tenant: vec![TenantFigures {
                name: "acme".into(),
                clients: 2,
                ..TenantFigures::default()
            }],
            conditions: vec![Condition {
                type_: SUCCEEDED.into(),
                status: if passed {
                    ConditionStatus::True
                } else {
                    ConditionStatus::False
                },
                reason: reason.into(),
                message: "why".into(),
                last_transition_time: String::new(),
                observed_generation: None,
            }],
            ..PressureTestStatus::default()
        }
    }

    fn pt() -> PressureTest {
        let mut spec = PressureTestSpec::seed_default();
        spec.warmup_seconds = 10;
        spec.duration_seconds = 60;
        let mut pt = PressureTest::new("demo", spec);
        pt.meta_mut().namespace = Some("ns".into());
        pt
    }

    #[test]
    fn the_cluster_report_is_the_status_in_the_local_shape() {
        let mut tl = RunTimeline::resume("demo-0000abcd", Vec::new(), 1_000);
        tl.proxy_cache = (30, 10);
        let r = build(&pt(), &finished(verdict::THRESHOLDS_PASSED, true), &tl);
        assert_eq!(r.source, "PressureTest ns/demo");
        assert_eq!((r.measured_seconds, r.drain_seconds), (60.0, 20.0));
        assert_eq!(
            (r.total.clients, r.total.delivered, r.total.lost),
            (2, 992, 5),
            "1,000 − 990 distinct − 5 errors"
        );
        assert_eq!(
            r.total.latency_ms.map(|l| (l.p99, l.max)),
            Some((150.0, Some(400.0)))
        );
        assert_eq!(r.proxy_cache.hit_rate_permille, Some(750));
        assert!(r.passed && !r.interrupted);
        assert_eq!(r.delivered_source, "sink");
        assert!(r.tenants.is_empty() && r.per_tenant.len() == 1);
    }

    #[test]
    fn the_measured_time_is_the_verdicts_window_when_its_readings_exist() {
        let mut s = finished(verdict::THRESHOLDS_PASSED, true);
        let at = |observed_at| Figures {
            observed_at,
            ..Figures::default()
        };
        s.baseline = Some(at(1_012));
        s.load_end = Some(at(1_073));
        let r = build(&pt(), &s, &RunTimeline::default());
        assert_eq!(
            r.measured_seconds, 61.0,
            "the readings' times, not the plan's 60"
        );
        assert_eq!(
            r.drain_seconds, 20.0,
            "the drain counts from the load's stop"
        );
    }

    #[test]
    fn the_report_gives_the_throughput_by_proxy_replicas_in_the_window() {
        let point = |t: f64, delivered: u64, replicas: u32| Point {
            t,
            delivered,
            proxy_replicas: Some(replicas),
            ..Point::default()
        };
        let points = vec![
            point(0.0, 0, 1),
            point(10.0, 400, 1), // the warm-up (10 s): left out
            point(40.0, 1_600, 1),
            point(70.0, 4_600, 3),
            point(80.0, 4_700, 3), // after the load's stop (70 s): left out
        ];
        let tl = RunTimeline::resume("demo-0000abcd", points, 1_000);
        let r = build(&pt(), &finished(verdict::THRESHOLDS_PASSED, true), &tl);
        let lines: Vec<(u32, f64, f64)> = r
            .by_replicas
            .iter()
            .map(|l| (l.replicas, l.seconds, l.delivered_per_second))
            .collect();
        assert_eq!(lines, [(1, 30.0, 40.0), (3, 30.0, 100.0)]);
    }

    #[test]
    fn an_aborted_run_measures_up_to_the_abort() {
        let mut s = finished(verdict::ABORTED, false);
        s.aborted_at = Some(1_040);
        let r = build(&pt(), &s, &RunTimeline::default());
        assert!(r.interrupted && !r.passed);
        assert_eq!(r.measured_seconds, 30.0);
        assert_eq!(r.verdict, "Aborted");
    }

    #[test]
    fn a_long_timeline_is_thinned_to_fit_the_configmap() {
        let points: Vec<Point> = (0..20_000)
            .map(|i| chart::point(f64::from(i), 1.0, (0, 10), 10, Some(12.5)))
            .collect();
        let r = Report {
            timeline: points.clone(),
            ..Report::default()
        };
        let (json, svg) = files(r);
        assert!(json.len() + svg.len() <= MAX_REPORT_BYTES);
        let back: Report = serde_json::from_str(&json).expect("report.json parses");
        assert!(back.timeline.len() > 1_000 && back.timeline.len() < 20_000);
        assert_eq!(back.timeline.last().map(|p| p.t), Some(19_999.0));
        assert_eq!(back.timeline.first().map(|p| p.t), Some(0.0));
    }

    #[test]
    fn thinning_keeps_the_ends() {
        assert_eq!(thin(&[1, 2, 3, 4, 5, 6], 4), vec![1, 5, 6]);
        assert_eq!(thin(&[1, 2, 3, 4, 5], 2), vec![1, 3, 5]);
    }
}
