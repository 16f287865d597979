//! `ttlSecondsAfterFinished`: when a finished run is deleted. A pure decision from the spec, the
//! final status and the clock; the controller carries it out (an event, then the delete, which
//! takes every child with it through their owner references).

use std::time::Duration;

use chrono::{DateTime, Utc};
use pressure_crds::{ConditionStatus, PressureTestSpec, PressureTestStatus, TtlScope};

use crate::status::conditions::SUCCEEDED;

/// What to do with a finished PressureTest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    /// No TTL applies to it: keep it until someone deletes it.
    Keep,
    /// Its TTL runs out after this long.
    In(Duration),
    /// Its TTL has run out: delete it now.
    Due,
}

/// The TTL decision for a finished run: counted from `completionTime` (or, if that is missing,
/// from when the final phase was entered).
pub fn expiry(spec: &PressureTestSpec, status: &PressureTestStatus, now: DateTime<Utc>) -> Expiry {
    let Some(ttl) = spec.ttl_seconds_after_finished else {
        return Expiry::Keep;
    };
    let succeeded = status
        .condition(SUCCEEDED)
        .is_some_and(|c| c.status == ConditionStatus::True);
    if spec.ttl_applies_to == TtlScope::OnSuccess && !succeeded {
        return Expiry::Keep;
    }
    let since = status
        .completion_time
        .as_deref()
        .or(status.phase_since.as_deref());
    let Some(finished) = since.and_then(|s| DateTime::parse_from_rfc3339(s).ok()) else {
        // No time to count from: the TTL starts now (the next look will find one).
        return Expiry::In(Duration::from_secs(u64::try_from(ttl).unwrap_or(0)));
    };
    let due = finished.with_timezone(&Utc) + chrono::Duration::seconds(i64::from(ttl));
    match (due - now).to_std() {
        Ok(left) if !left.is_zero() => Expiry::In(left),
        _ => Expiry::Due,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pressure_crds::{Condition, Phase};

    fn finished(succeeded: bool) -> PressureTestStatus {
        let status = if succeeded {
            ConditionStatus::True
        } else {
            ConditionStatus::False
        };
        PressureTestStatus {
            phase: Some(if succeeded {
                Phase::Succeeded
            } else {
                Phase::Failed
            }),
            completion_time: Some("2030-01-01T00:00:00Z".into()),
            conditions: vec![Condition {
                type_: SUCCEEDED.into(),
                status,
                reason: "R".into(),
                message: String::new(),
                last_transition_time: "2030-01-01T00:00:00Z".into(),
                observed_generation: None,
            }],
            ..PressureTestStatus::default()
        }
    }

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("time")
            .with_timezone(&Utc)
    }

    #[test]
    fn the_ttl_counts_from_the_verdict_and_respects_its_scope() {
        let mut spec = PressureTestSpec::seed_default();
        let now = at("2030-01-01T00:01:00Z");
        assert_eq!(expiry(&spec, &finished(true), now), Expiry::Keep);
        spec.ttl_seconds_after_finished = Some(300);
        assert_eq!(
            expiry(&spec, &finished(true), now),
            Expiry::In(Duration::from_secs(240))
        );
        assert_eq!(
            expiry(&spec, &finished(false), at("2030-01-01T00:05:00Z")),
            Expiry::Due
        );
        spec.ttl_applies_to = TtlScope::OnSuccess;
        assert_eq!(
            expiry(&spec, &finished(false), at("2030-01-01T01:00:00Z")),
            Expiry::Keep,
            "a failed run stays"
        );
        assert_eq!(
            expiry(&spec, &finished(true), at("2030-01-01T01:00:00Z")),
            Expiry::Due
        );
        spec.ttl_seconds_after_finished = Some(0);
        assert_eq!(
            expiry(&spec, &finished(true), at("2030-01-01T00:00:00Z")),
            Expiry::Due
        );
    }
}
