//! A new run on a finished PressureTest (`spec.runNumber` changed): the finished run's summary
//! goes to the front of `status.history` (at most [`HISTORY_LENGTH`] kept), and the status
//! starts over (no phase, so the machine starts the run afresh under a new run id). Pure.

use pressure_crds::{ConditionStatus, HISTORY_LENGTH, PressureTestStatus, RunSummary};

use super::conditions::{REGRESSED, SUCCEEDED};

/// Whether the spec asks for a run other than the one `status` describes.
pub fn wanted(run_number: i32, status: &PressureTestStatus) -> bool {
    run_number != status.run_number.unwrap_or(0)
}

/// The summary of the finished run `s`.
pub fn summary(s: &PressureTestStatus) -> RunSummary {
    let succeeded = s.condition(SUCCEEDED);
    let f = s.figures.clone().unwrap_or_default();
    RunSummary {
        run_number: s.run_number.unwrap_or(0),
        run_id: s.run_id.clone().unwrap_or_default(),
        start_time: s.start_time.clone(),
        completion_time: s.completion_time.clone(),
        verdict: succeeded.map_or("Unknown".into(), |c| c.reason.clone()),
        succeeded: succeeded.is_some_and(|c| c.status == ConditionStatus::True),
        regressed: s.condition(REGRESSED).and_then(|c| match c.status {
            ConditionStatus::True => Some(true),
            ConditionStatus::False => Some(false),
            ConditionStatus::Unknown => None,
        }),
        report: s.report.clone(),
        sent: f.sent,
        delivered: f.delivered,
        rate_per_second: f.rate_per_second,
        latency_p99_ms: f.latency_p99_ms,
        error_rate_permille: f.error_rate_permille,
    }
}

/// The status of a new run `run_number` after the finished run `prev`.
pub fn start_over(prev: &PressureTestStatus, run_number: i32) -> PressureTestStatus {
    let mut history = prev.history.clone();
    history.insert(0, summary(prev));
    history.truncate(HISTORY_LENGTH);
    PressureTestStatus {
        observed_generation: prev.observed_generation,
        run_number: Some(run_number),
        history,
        tenants: prev.tenants,
        message: Some(format!(
            "run {run_number} requested; run {} is in status.history",
            prev.run_id.as_deref().unwrap_or("?")
        )),
        ..PressureTestStatus::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pressure_crds::{Condition, Figures, Phase};

    fn finished(run: i32, id: &str) -> PressureTestStatus {
        PressureTestStatus {
            phase: Some(Phase::Succeeded),
            run_number: Some(run),
            run_id: Some(id.into()),
            report: Some(format!("t-report-{id}")),
            figures: Some(Figures {
                sent: 100,
                rate_per_second: 7,
                ..Figures::default()
            }),
            conditions: vec![Condition {
                type_: SUCCEEDED.into(),
                status: ConditionStatus::True,
                reason: "ThresholdsPassed".into(),
                message: String::new(),
                last_transition_time: String::new(),
                observed_generation: None,
            }],
            ..PressureTestStatus::default()
        }
    }

    #[test]
    fn a_new_run_starts_over_and_keeps_the_last_one_in_history() {
        let prev = finished(0, "a");
        assert!(wanted(1, &prev) && !wanted(0, &prev));
        let next = start_over(&prev, 1);
        assert_eq!((next.phase, next.run_id.clone()), (None, None));
        assert!(next.conditions.is_empty() && next.figures.is_none() && next.report.is_none());
        assert_eq!(next.run_number, Some(1));
        let h = &next.history[0];
        assert_eq!((h.run_number, h.run_id.as_str()), (0, "a"));
        assert_eq!(
            (h.verdict.as_str(), h.succeeded),
            ("ThresholdsPassed", true)
        );
        assert_eq!((h.sent, h.rate_per_second), (100, 7));
        assert_eq!(h.report.as_deref(), Some("t-report-a"));
    }

    #[test]
    fn history_is_bounded_newest_first() {
        let mut s = finished(0, "r0");
        for n in 1..=15 {
            let mut next = start_over(&s, n);
            next.run_id = Some(format!("r{n}"));
            next.run_number = Some(n);
            s = next;
        }
        assert_eq!(s.history.len(), HISTORY_LENGTH);
        assert_eq!(s.history[0].run_id, "r14");
        assert_eq!(s.history[HISTORY_LENGTH - 1].run_id, "r5");
    }
}
