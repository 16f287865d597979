//! Walks the phase machine through a whole run and through each way it can fail.

use chrono::{DateTime, Duration, Utc};
use pressure_crds::{
    ConditionStatus, Figures, LatencySource, Phase, PressureTestSpec, PressureTestStatus,
};

use super::super::{JobState, Observed, PodIssue, PodProblem, Reading};
use super::advance;

fn t0() -> DateTime<Utc> {
    DateTime::from_timestamp(1_800_000_000, 0).expect("valid time")
}

fn obs(at: i64) -> Observed {
    Observed {
        now: t0() + Duration::seconds(at),
        generation: Some(1),
        env_waiting: vec![],
        setup: JobState::Absent,
        clients_ready: 0,
        clients_desired: 1,
        pod_problem: None,
        reading: None,
        fresh_run_id: "run-1".into(),
    }
}

fn cond<'a>(s: &'a PressureTestStatus, t: &str) -> (ConditionStatus, &'a str) {
    let c = s.condition(t).expect("condition set");
    (c.status, c.reason.as_str())
}

fn reading(sent: i64, pending: i64, at: i64) -> Reading {
    let figures = Figures {
        observed_at: t0().timestamp() + at,
        sent,
        generated: sent + pending,
        pending,
        delivered: Some(sent),
        delivered_ratio_permille: Some(if sent + pending > 0 {
            sent * 1000 / (sent + pending)
        } else {
            0
        }),
        latency_p99_ms: Some(500),
        latency_source: Some(LatencySource::Sink),
        duplicates: Some(0),
        attachment_mismatches: Some(0),
        ..Figures::default()
    };
    Reading {
        figures,
        per_tenant: vec![],
        proxy_seen: true,
        clients_drained: pending == 0,
        ..Reading::default()
    }
}

#[test]
fn first_reconcile_starts_provisioning_with_unknown_verdict() {
    let spec = PressureTestSpec::seed_default();
    let (s, t) = advance(&spec, &PressureTestStatus::default(), &obs(0));
    assert_eq!(s.phase, Some(Phase::Provisioning));
    assert_eq!(s.observed_generation, Some(1));
    assert_eq!(s.run_id.as_deref(), Some("run-1"));
    assert_eq!(s.tenants, Some(4));
    assert_eq!(
        cond(&s, "Succeeded"),
        (ConditionStatus::Unknown, "InProgress")
    );
    assert_eq!(cond(&s, "Complete"), (ConditionStatus::False, "InProgress"));
    assert_eq!(t.expect("transition").to, Phase::Provisioning);
}

#[test]
fn a_full_run_succeeds() {
    let mut spec = PressureTestSpec::seed_default();
    spec.warmup_seconds = 10;
    spec.duration_seconds = 100;
    spec.start_delay_seconds = 5;
    let (mut s, _) = advance(&spec, &PressureTestStatus::default(), &obs(0));
    let mut o = obs(1);
    o.env_waiting = vec!["proxy".into()];
    s = advance(&spec, &s, &o).0;
    assert_eq!(s.phase, Some(Phase::Provisioning));
    assert_eq!(cond(&s, "EnvironmentReady").0, ConditionStatus::False);
    s = advance(&spec, &s, &obs(2)).0;
    assert_eq!(s.phase, Some(Phase::SettingUp));
    let mut o = obs(3);
    o.setup = JobState::Succeeded;
    s = advance(&spec, &s, &o).0;
    assert_eq!(s.load_start_at, Some(t0().timestamp() + 8));
    assert_eq!(s.load_stop_at, Some(t0().timestamp() + 8 + 110));
    let mut o = obs(9);
    o.clients_ready = 1;
    s = advance(&spec, &s, &o).0;
    assert_eq!(s.phase, Some(Phase::Running));
    let mut o = obs(20);
    o.clients_ready = 1;
    o.reading = Some(reading(100, 5, 20));
    s = advance(&spec, &s, &o).0;
    assert_eq!(s.baseline.as_ref().map(|b| b.sent), Some(100));
    let mut o = obs(118);
    o.clients_ready = 1;
    o.reading = Some(reading(5100, 3, 118));
    s = advance(&spec, &s, &o).0;
    assert_eq!(s.phase, Some(Phase::Analyzing));
    assert_eq!(
        s.figures.as_ref().map(|f| f.rate_per_second),
        Some(5000 / 98)
    );
    let mut o = obs(130);
    o.reading = Some(reading(5103, 0, 130));
    let (s, t) = advance(&spec, &s, &o);
    assert_eq!(s.phase, Some(Phase::Succeeded), "{:?}", s.thresholds);
    assert_eq!(
        cond(&s, "Succeeded"),
        (ConditionStatus::True, "ThresholdsPassed")
    );
    assert_eq!(cond(&s, "Complete").0, ConditionStatus::True);
    assert!(s.completion_time.is_some());
    assert_eq!(s.thresholds.len(), 7);
    assert_eq!(
        s.load_end.as_ref().map(|f| f.sent),
        Some(5100),
        "the measured window ends at the load's stop"
    );
    assert!(!t.expect("transition").is_warning());
}

#[test]
fn a_failing_pod_fails_the_run_with_its_reason() {
    let spec = PressureTestSpec::seed_default();
    let (s, _) = advance(&spec, &PressureTestStatus::default(), &obs(0));
    let mut o = obs(200);
    o.env_waiting = vec!["proxy".into()];
    o.pod_problem = Some(PodProblem {
        pod: "t-proxy-1".into(),
        issue: PodIssue::ImagePullError,
        detail: "not found".into(),
    });
    let (s, t) = advance(&spec, &s, &o);
    assert_eq!(s.phase, Some(Phase::Failed));
    assert_eq!(
        cond(&s, "PodsHealthy"),
        (ConditionStatus::False, "ImagePullError")
    );
    assert_eq!(
        cond(&s, "Succeeded"),
        (ConditionStatus::False, "PodsUnhealthy")
    );
    assert_eq!(cond(&s, "Complete").0, ConditionStatus::True);
    assert!(t.expect("transition").is_warning());
}

#[test]
fn provisioning_has_a_deadline() {
    let spec = PressureTestSpec::seed_default();
    let (s, _) = advance(&spec, &PressureTestStatus::default(), &obs(0));
    let mut o = obs(601);
    o.env_waiting = vec!["postgres".into()];
    let (s, _) = advance(&spec, &s, &o);
    assert_eq!(
        cond(&s, "Succeeded"),
        (ConditionStatus::False, "DeadlineExceeded")
    );
    assert!(s.message.unwrap_or_default().contains("postgres"));
}

#[test]
fn setup_failure_and_terminal_states_stick() {
    let spec = PressureTestSpec::seed_default();
    let (s, _) = advance(&spec, &PressureTestStatus::default(), &obs(0));
    let s = advance(&spec, &s, &obs(1)).0;
    let mut o = obs(2);
    o.setup = JobState::Failed;
    let s = advance(&spec, &s, &o).0;
    assert_eq!(
        cond(&s, "Succeeded"),
        (ConditionStatus::False, "SetupFailed")
    );
    let (again, t) = advance(&spec, &s, &obs(500));
    assert_eq!((again.phase, t), (Some(Phase::Failed), None));
}

#[test]
fn a_run_without_any_figures_fails() {
    let spec = PressureTestSpec::seed_default();
    let s = PressureTestStatus {
        phase: Some(Phase::Analyzing),
        phase_since: Some(crate::status::rfc3339(t0())),
        ..PressureTestStatus::default()
    };
    let (s, _) = advance(&spec, &s, &obs(301));
    assert_eq!(
        cond(&s, "Succeeded"),
        (ConditionStatus::False, "ThresholdBreached")
    );
    assert!(s.message.unwrap_or_default().contains("no figures"));
}

#[test]
fn analyzing_waits_until_every_client_holds_its_final_reports() {
    let spec = PressureTestSpec::seed_default();
    let s = PressureTestStatus {
        phase: Some(Phase::Analyzing),
        phase_since: Some(crate::status::rfc3339(t0() + Duration::seconds(118))),
        load_start_at: Some(t0().timestamp() + 8),
        load_stop_at: Some(t0().timestamp() + 118),
        ..PressureTestStatus::default()
    };
    // The proxy's queue is empty, but messages the clients generated have no final report yet
    // (not fetched while the database was away, or in flight).
    let mut held = reading(5100, 0, 130);
    held.clients_drained = false;
    let mut o = obs(130);
    o.reading = Some(held.clone());
    let (s, _) = advance(&spec, &s, &o);
    assert_eq!(s.phase, Some(Phase::Analyzing), "not drained yet");
    let past = 118 + i64::from(spec.timeouts.drain_seconds) + 1;
    let mut o = obs(past);
    o.reading = Some(held);
    let (s, _) = advance(&spec, &s, &o);
    assert_ne!(
        s.phase,
        Some(Phase::Analyzing),
        "the drain timeout ends the wait"
    );
    assert!(
        s.message.unwrap_or_default().contains("not drained"),
        "the verdict says the queue did not drain"
    );
}

#[test]
fn an_abort_while_running_drains_and_ends_aborted_with_partial_figures() {
    let mut spec = PressureTestSpec::seed_default();
    spec.warmup_seconds = 10;
    spec.duration_seconds = 3600;
    spec.start_delay_seconds = 5;
    let (mut s, _) = advance(&spec, &PressureTestStatus::default(), &obs(0));
    s = advance(&spec, &s, &obs(1)).0;
    let mut o = obs(2);
    o.setup = JobState::Succeeded;
    s = advance(&spec, &s, &o).0;
    let mut o = obs(8);
    o.clients_ready = 1;
    s = advance(&spec, &s, &o).0;
    assert_eq!(s.phase, Some(Phase::Running));
    let mut o = obs(20);
    o.clients_ready = 1;
    o.reading = Some(reading(100, 5, 20));
    s = advance(&spec, &s, &o).0;
    // The user sets spec.abort 40 s into the load.
    spec.abort = true;
    let mut o = obs(47);
    o.clients_ready = 1;
    o.reading = Some(reading(2000, 9, 47));
    let (next, t) = advance(&spec, &s, &o);
    s = next;
    let t = t.expect("transition");
    assert_eq!((t.to, t.reason.as_str()), (Phase::Analyzing, "Aborted"));
    assert_eq!(s.aborted_at, Some(t0().timestamp() + 47));
    assert_eq!(
        s.load_end, None,
        "the window ends at the first reading after the abort"
    );
    // Still draining: no verdict yet.
    let mut o = obs(52);
    o.reading = Some(reading(2006, 3, 52));
    s = advance(&spec, &s, &o).0;
    assert_eq!(s.phase, Some(Phase::Analyzing));
    assert_eq!(s.load_end.as_ref().map(|f| f.sent), Some(2006));
    let mut o = obs(60);
    o.reading = Some(reading(2009, 0, 60));
    let (s, t) = advance(&spec, &s, &o);
    assert_eq!(s.phase, Some(Phase::Failed));
    assert_eq!(cond(&s, "Succeeded"), (ConditionStatus::False, "Aborted"));
    assert_eq!(cond(&s, "Complete").0, ConditionStatus::True);
    assert_eq!(
        s.thresholds.len(),
        7,
        "each threshold's outcome on the partial figures"
    );
    assert!(
        s.message
            .as_deref()
            .is_some_and(|m| m.contains("aborted 40s into the load")),
        "{:?}",
        s.message
    );
    assert_eq!(s.figures.as_ref().map(|f| f.sent), Some(2009));
    assert!(t.expect("transition").is_warning());
}

#[test]
fn an_abort_before_the_load_ends_the_run_at_once() {
    let mut spec = PressureTestSpec::seed_default();
    let (s, _) = advance(&spec, &PressureTestStatus::default(), &obs(0));
    spec.abort = true;
    let (s, t) = advance(&spec, &s, &obs(1));
    assert_eq!(s.phase, Some(Phase::Failed));
    assert_eq!(cond(&s, "Succeeded"), (ConditionStatus::False, "Aborted"));
    assert_eq!(t.expect("transition").reason, "Aborted");
}
