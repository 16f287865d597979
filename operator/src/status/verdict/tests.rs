//! The shared table of verdict cases ([`pressure_crds::verdict::cases`]) through the operator:
//! each case's counts become the proxy's metrics, the clients' and the sink's `/stats`, are
//! aggregated into readings (the baseline at the warm-up's end, then the load's stop) and fed to
//! the phase machine, whose `Succeeded` condition and threshold lines must be the case's verdict.

use chrono::{DateTime, Duration, Utc};
use pressure_crds::verdict::cases::{self, Counts};
use pressure_crds::{ConditionStatus, Phase, PressureTestSpec, PressureTestStatus, TenantSpec};

use super::super::{JobState, Observed, Reading, advance, rfc3339};
use super::*;
use crate::figures::aggregate;

/// What the proxy, one client and the sink report for these counts, aggregated.
fn reading(c: &Counts, at: i64) -> Reading {
    let (proxy, client, sink) = c.sources();
    aggregate(
        &[proxy],
        &[(cases::TENANT.into(), client)],
        sink.as_ref(),
        at,
    )
}

fn t0() -> DateTime<Utc> {
    DateTime::from_timestamp(1_800_000_000, 0).expect("valid time")
}

#[test]
fn the_shared_table_gives_the_same_succeeded_condition() {
    for case in cases::cases() {
        let mut spec = PressureTestSpec::with_tenants(vec![TenantSpec::from_profile(
            "t",
            pressure_crds::Profile::Standard,
        )]);
        spec.thresholds = case.thresholds.clone();
        if case.end.sink.is_none() {
            spec.sink.kind = pressure_crds::SinkKind::MailHog;
        }
        let stop = t0().timestamp();
        let start_at = stop - case.seconds - i64::from(spec.warmup_seconds);
        let mut prev = PressureTestStatus {
            phase: Some(Phase::Analyzing),
            phase_since: Some(rfc3339(t0() - Duration::seconds(600))),
            load_start_at: Some(start_at),
            load_stop_at: Some(stop),
            baseline: Some(reading(&case.start, stop - case.seconds).figures),
            ..PressureTestStatus::default()
        };
        prev.run_id = Some("run".into());
        let obs = Observed {
            now: t0(),
            generation: Some(1),
            env_waiting: vec![],
            setup: JobState::Succeeded,
            clients_ready: 1,
            clients_desired: 1,
            pod_problem: None,
            reading: Some(reading(&case.end, stop)),
            fresh_run_id: "run".into(),
        };
        let (s, _) = advance(&spec, &prev, &obs);
        let c = s.condition("Succeeded").expect("verdict set");
        case.check(&s.thresholds, &c.reason, &c.message);
        let passed = case.reason == pressure_crds::verdict::THRESHOLDS_PASSED;
        assert_eq!(
            (c.status, s.phase),
            if passed {
                (ConditionStatus::True, Some(Phase::Succeeded))
            } else {
                (ConditionStatus::False, Some(Phase::Failed))
            },
            "{}",
            case.name
        );
    }
}

#[test]
fn the_window_runs_from_the_baseline_to_the_load_stop() {
    let fig = |at: i64, delivered: i64| pressure_crds::Figures {
        observed_at: at,
        delivered: Some(delivered),
        ..pressure_crds::Figures::default()
    };
    let (base, end, last) = (fig(100, 10), fig(150, 510), fig(200, 600));
    let w = window(Some(&base), Some(&end), &last, 0);
    assert_eq!((w.end.observed_at, w.seconds), (150, 50.0));
    let m = pressure_crds::verdict::Measured::from_figures(&last, w);
    assert_eq!(
        m.throughput_per_second,
        Some(10),
        "drain deliveries excluded"
    );
    let w = window(None, None, &last, 100);
    assert_eq!((w.end.observed_at, w.seconds), (200, 100.0));
}
