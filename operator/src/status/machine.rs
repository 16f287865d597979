//! The phase machine: Pending → Provisioning → SettingUp → Running → Analyzing → Succeeded or
//! Failed. Every wait has a deadline from the spec's `timeouts`; a failing pod ends the run at once.
//! `spec.abort` ends the load early: while running, the run drains and is judged on its partial
//! figures but always ends `Aborted`; before the load, it ends at once.

use pressure_crds::verdict::Measured;
use pressure_crds::{
    ConditionStatus as S, Figures, Phase, PressureTestSpec, PressureTestStatus, SinkKind,
};

use super::conditions::{self as c, reason};
use super::{JobState, Observed, Reading, Transition, rfc3339, seconds_since, verdict};

/// What a phase handler decided.
enum Step {
    /// Stay in the current phase.
    Stay,
    /// Move on, with a reason and message for the event.
    To(Phase, &'static str, String),
    /// End the run as Failed.
    Fail(&'static str, String),
}

/// The next status and the transition to announce, if the phase changed.
pub fn advance(
    spec: &PressureTestSpec,
    prev: &PressureTestStatus,
    obs: &Observed,
) -> (PressureTestStatus, Option<Transition>) {
    let mut s = prev.clone();
    let now = rfc3339(obs.now);
    let from = s.phase.unwrap_or_default();
    s.observed_generation = obs.generation;
    s.tenants = Some(spec.tenants.len() as i32);
    if from.is_terminal() {
        return (s, None);
    }
    let step = match from {
        Phase::Pending => {
            s.run_number = Some(spec.run_number);
            start(&mut s, obs, &now)
        }
        Phase::Provisioning | Phase::SettingUp if spec.abort => Step::Fail(
            reason::ABORTED,
            "aborted (spec.abort) before the load started".into(),
        ),
        _ if obs.pod_problem.is_some() => pods_failed(&mut s, obs, &now),
        Phase::Provisioning => provisioning(spec, &mut s, obs),
        Phase::SettingUp => setting_up(spec, &mut s, obs),
        Phase::Running => running(spec, &mut s, obs),
        Phase::Analyzing => analyzing(spec, &mut s, obs, &now),
        Phase::Succeeded | Phase::Failed => Step::Stay,
    };
    if from != Phase::Pending {
        health_conditions(&mut s, obs, &now);
    }
    let (to, why, message) = match step {
        Step::Stay => return (s, None),
        Step::To(to, why, message) => (to, why, message),
        Step::Fail(why, message) => {
            finish(&mut s, S::False, why, &message, &now, obs.generation);
            (Phase::Failed, why, message)
        }
    };
    s.phase = Some(to);
    s.phase_since = Some(now);
    s.message = Some(message.clone());
    (
        s,
        Some(Transition {
            from,
            to,
            reason: why.into(),
            message,
        }),
    )
}

fn start(s: &mut PressureTestStatus, obs: &Observed, now: &str) -> Step {
    s.run_id = Some(obs.fresh_run_id.clone());
    s.start_time = Some(now.to_string());
    let g = obs.generation;
    c::set(
        &mut s.conditions,
        c::ENVIRONMENT_READY,
        S::Unknown,
        "Provisioning",
        "creating the environment",
        now,
        g,
    );
    c::set(
        &mut s.conditions,
        c::CLIENTS_READY,
        S::Unknown,
        "NotStarted",
        "clients start after setup",
        now,
        g,
    );
    c::set(
        &mut s.conditions,
        c::PODS_HEALTHY,
        S::Unknown,
        "PodsStarting",
        "pods are starting",
        now,
        g,
    );
    c::set(
        &mut s.conditions,
        c::COMPLETE,
        S::False,
        reason::IN_PROGRESS,
        "the run is in progress",
        now,
        g,
    );
    c::set(
        &mut s.conditions,
        c::SUCCEEDED,
        S::Unknown,
        reason::IN_PROGRESS,
        "no verdict yet",
        now,
        g,
    );
    Step::To(
        Phase::Provisioning,
        "Provisioning",
        format!("run {} started; creating the environment", obs.fresh_run_id),
    )
}

fn pods_failed(s: &mut PressureTestStatus, obs: &Observed, now: &str) -> Step {
    let Some(p) = &obs.pod_problem else {
        return Step::Stay;
    };
    c::set(
        &mut s.conditions,
        c::PODS_HEALTHY,
        S::False,
        p.issue.reason(),
        p.message(),
        now,
        obs.generation,
    );
    Step::Fail(reason::PODS_UNHEALTHY, p.message())
}

fn health_conditions(s: &mut PressureTestStatus, obs: &Observed, now: &str) {
    let g = obs.generation;
    if obs.pod_problem.is_none() {
        c::set(
            &mut s.conditions,
            c::PODS_HEALTHY,
            S::True,
            "PodsHealthy",
            "no pod is failing to start",
            now,
            g,
        );
    }
    if obs.env_waiting.is_empty() {
        c::set(
            &mut s.conditions,
            c::ENVIRONMENT_READY,
            S::True,
            "Ready",
            "postgres, proxy, sink and observability are ready",
            now,
            g,
        );
    } else {
        let msg = format!("waiting for {}", obs.env_waiting.join(", "));
        c::set(
            &mut s.conditions,
            c::ENVIRONMENT_READY,
            S::False,
            "Waiting",
            msg,
            now,
            g,
        );
    }
    if s.load_start_at.is_some() {
        let ready = obs.clients_ready >= obs.clients_desired;
        let (st, why) = if ready {
            (S::True, "AllClientsReady")
        } else {
            (S::False, "WaitingForClients")
        };
        let msg = format!(
            "{}/{} client pods ready",
            obs.clients_ready, obs.clients_desired
        );
        c::set(&mut s.conditions, c::CLIENTS_READY, st, why, msg, now, g);
    }
}

fn provisioning(spec: &PressureTestSpec, s: &mut PressureTestStatus, obs: &Observed) -> Step {
    if obs.env_waiting.is_empty() {
        return Step::To(
            Phase::SettingUp,
            "EnvironmentReady",
            "environment ready; registering tenants and accounts".into(),
        );
    }
    let limit = i64::from(spec.timeouts.provisioning_seconds);
    if seconds_since(s.phase_since.as_deref(), obs.now) > limit {
        let msg = format!(
            "environment not ready after {limit}s: waiting for {}",
            obs.env_waiting.join(", ")
        );
        return Step::Fail(reason::DEADLINE_EXCEEDED, msg);
    }
    Step::Stay
}

fn setting_up(spec: &PressureTestSpec, s: &mut PressureTestStatus, obs: &Observed) -> Step {
    let now = obs.now.timestamp();
    if let Some(start) = s.load_start_at {
        if now >= start {
            return Step::To(
                Phase::Running,
                "LoadStarted",
                format!("load running until {}", s.load_stop_at.unwrap_or(start)),
            );
        }
        return Step::Stay;
    }
    match obs.setup {
        JobState::Succeeded => {
            let start = now + i64::from(spec.start_delay_seconds);
            s.load_start_at = Some(start);
            s.load_stop_at =
                Some(start + i64::from(spec.warmup_seconds) + i64::from(spec.duration_seconds));
            s.message = Some(format!("tenants registered; load starts at {start}"));
            Step::Stay
        }
        JobState::Failed => Step::Fail(
            reason::SETUP_FAILED,
            "the setup Job failed to register tenants and accounts".into(),
        ),
        JobState::Absent | JobState::Running => {
            let limit = i64::from(spec.timeouts.setup_seconds);
            if seconds_since(s.phase_since.as_deref(), obs.now) > limit {
                return Step::Fail(
                    reason::DEADLINE_EXCEEDED,
                    format!("setup did not finish within {limit}s"),
                );
            }
            Step::Stay
        }
    }
}

fn running(spec: &PressureTestSpec, s: &mut PressureTestStatus, obs: &Observed) -> Step {
    let now = obs.now.timestamp();
    let start = s.load_start_at.unwrap_or(now);
    record(spec, s, obs.reading.as_ref(), now);
    let grace = i64::from(spec.timeouts.pod_start_grace_seconds);
    if obs.clients_ready < obs.clients_desired && now > start + grace {
        let msg = format!(
            "only {}/{} client pods ready {grace}s after the start",
            obs.clients_ready, obs.clients_desired
        );
        return Step::Fail(reason::DEADLINE_EXCEEDED, msg);
    }
    if spec.abort {
        s.aborted_at = Some(now);
        return Step::To(
            Phase::Analyzing,
            reason::ABORTED,
            "aborted (spec.abort): load stopped; waiting for the queue to drain".into(),
        );
    }
    if now >= s.load_stop_at.unwrap_or(now) {
        return Step::To(
            Phase::Analyzing,
            "LoadStopped",
            "load stopped; waiting for the queue to drain".into(),
        );
    }
    Step::Stay
}

fn analyzing(
    spec: &PressureTestSpec,
    s: &mut PressureTestStatus,
    obs: &Observed,
    now_str: &str,
) -> Step {
    let now = obs.now.timestamp();
    record(spec, s, obs.reading.as_ref(), now);
    let waited = seconds_since(s.phase_since.as_deref(), obs.now);
    // Drained: the proxy's queue is empty and every generated message has its final report at
    // its client (the local runner's rule); a message still held by a client is not drained.
    let drained = obs
        .reading
        .as_ref()
        .is_some_and(|r| r.proxy_seen && r.figures.pending == 0 && r.clients_drained)
        && waited >= i64::from(spec.proxy.tuning.sync_interval_seconds);
    if !drained && waited <= i64::from(spec.timeouts.drain_seconds) {
        return Step::Stay;
    }
    let Some(fig) = s.figures.clone() else {
        let msg = "no figures could be read from the proxy, clients or sink; nothing to judge";
        return Step::Fail(reason::THRESHOLD_BREACHED, msg.into());
    };
    let v = verdict::evaluate(
        &spec.thresholds,
        &fig,
        s.baseline.as_ref(),
        s.load_end.as_ref(),
        s.load_start_at.unwrap_or(fig.observed_at),
    );
    s.thresholds = v.results.clone();
    let drain_note = if drained {
        ""
    } else {
        " (queue not drained before drainSeconds)"
    };
    let msg = format!("{}{drain_note}", v.message);
    if let Some(at) = s.aborted_at {
        // Partial figures are shown with each threshold's outcome, never passed.
        let stopped = at - s.load_start_at.unwrap_or(at);
        let msg = format!("aborted {stopped}s into the load (spec.abort); partial figures: {msg}");
        return Step::Fail(reason::ABORTED, msg);
    }
    if v.passed() {
        finish(s, S::True, v.reason, &msg, now_str, obs.generation);
        return Step::To(Phase::Succeeded, v.reason, msg);
    }
    Step::Fail(v.reason, msg)
}

/// Stores a reading: rate and error rate against the warm-up baseline, which is taken from the
/// first reading after the warm-up; the first reading after the load's stop ends the measured
/// window (`loadEnd`).
fn record(
    spec: &PressureTestSpec,
    s: &mut PressureTestStatus,
    reading: Option<&Reading>,
    now: i64,
) {
    // Only a reading the proxy answered counts: without it every counter would read zero.
    let Some(r) = reading.filter(|r| r.proxy_seen) else {
        return;
    };
    let mut fig: Figures = r.figures.clone();
    // With the verifying sink, a reading it did not answer cannot bound the window. (A mail
    // catcher's count is best effort: a reading without it leaves throughput unmeasured.)
    let complete = spec.sink.kind != SinkKind::Verifying || fig.delivered.is_some();
    let warm_end = s.load_start_at.unwrap_or(now) + i64::from(spec.warmup_seconds);
    if s.baseline.is_none() && now >= warm_end && complete {
        s.baseline = Some(fig.clone());
    }
    // The load ends at its planned stop, or earlier at an abort.
    let stop = s.load_stop_at.into_iter().chain(s.aborted_at).min();
    if s.load_end.is_none() && stop.is_some_and(|stop| now >= stop) && complete {
        s.load_end = Some(fig.clone());
    }
    let base = s.baseline.as_ref();
    let since = base.map_or(s.load_start_at.unwrap_or(now), |b| b.observed_at);
    let seconds = (now - since).max(1);
    let w = verdict::window(base, None, &fig, since);
    let m = Measured::from_figures(&fig, w);
    let sent = (fig.sent - base.map_or(0, |b| b.sent)).max(0);
    fig.rate_per_second = m.throughput_per_second.unwrap_or(sent / seconds);
    fig.error_rate_permille = m.error_rate_permille;
    s.figures = Some(fig);
    s.per_tenant = r.per_tenant.clone();
}

fn finish(
    s: &mut PressureTestStatus,
    verdict: S,
    why: &str,
    message: &str,
    now: &str,
    g: Option<i64>,
) {
    s.completion_time = Some(now.to_string());
    c::set(
        &mut s.conditions,
        c::COMPLETE,
        S::True,
        "Finished",
        "the run has a verdict",
        now,
        g,
    );
    c::set(
        &mut s.conditions,
        c::SUCCEEDED,
        verdict,
        why,
        message,
        now,
        g,
    );
}

#[cfg(test)]
#[path = "machine/tests.rs"]
mod tests;
