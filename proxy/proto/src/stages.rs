//! The load's stages as the clients receive them (`LOAD_STAGES`, a JSON array of
//! `{"durationSeconds", "ratePercent"}`, the PressureTest's `spec.stages`), and the one rule that
//! turns them into a rate: each stage moves the rate linearly, over its duration, from where the
//! previous stage ended (0 % before the first) to its `ratePercent`; after the last stage its
//! rate holds. No stages: 100 % throughout.

use serde::{Deserialize, Serialize};

/// One stage of the load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Stage {
    /// Seconds the stage lasts (at least 1).
    pub duration_seconds: u32,
    /// The rate at the stage's end, percent of the configured rate.
    pub rate_percent: u32,
}

/// Parses `LOAD_STAGES`; the error says what is wrong.
pub fn parse(text: &str) -> Result<Vec<Stage>, String> {
    let stages: Vec<Stage> = serde_json::from_str(text).map_err(|e| {
        format!("not a JSON array of {{\"durationSeconds\": N, \"ratePercent\": N}}: {e}")
    })?;
    if let Some(s) = stages.iter().find(|s| s.duration_seconds == 0) {
        return Err(format!("a stage lasts at least 1 second: {s:?}"));
    }
    Ok(stages)
}

/// The rate, in percent of the configured rate, `elapsed` seconds after the load's start.
pub fn rate_percent_at(stages: &[Stage], elapsed: f64) -> f64 {
    let mut from = if stages.is_empty() { 100.0 } else { 0.0 };
    let mut start = 0.0;
    for s in stages {
        let to = f64::from(s.rate_percent);
        let length = f64::from(s.duration_seconds.max(1));
        if elapsed < start + length {
            let done = ((elapsed - start) / length).clamp(0.0, 1.0);
            return from + (to - from) * done;
        }
        from = to;
        start += length;
    }
    from
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stage(duration_seconds: u32, rate_percent: u32) -> Stage {
        Stage {
            duration_seconds,
            rate_percent,
        }
    }

    #[test]
    fn ramp_hold_spike_and_ramp_down() {
        let s = [stage(10, 100), stage(20, 100), stage(5, 300), stage(10, 0)];
        assert_eq!(rate_percent_at(&s, 0.0), 0.0);
        assert_eq!(rate_percent_at(&s, 5.0), 50.0);
        assert_eq!(rate_percent_at(&s, 20.0), 100.0);
        assert_eq!(rate_percent_at(&s, 32.5), 200.0);
        assert_eq!(rate_percent_at(&s, 40.0), 150.0);
        assert_eq!(rate_percent_at(&s, 45.0), 0.0);
        assert_eq!(rate_percent_at(&s, 1_000.0), 0.0, "the last rate holds");
        assert_eq!(rate_percent_at(&s, -3.0), 0.0, "before the start");
        assert_eq!(
            rate_percent_at(&[], 12.0),
            100.0,
            "no stages: the full rate"
        );
    }

    #[test]
    fn parse_checks_the_shape() {
        let s = parse(r#"[{"durationSeconds": 5, "ratePercent": 200}]"#).expect("stages");
        assert_eq!(s, vec![stage(5, 200)]);
        assert!(parse("[]").expect("empty").is_empty());
        assert!(parse(r#"[{"duration": 5}]"#).is_err());
        assert!(parse(r#"[{"durationSeconds": 0, "ratePercent": 1}]"#).is_err());
        assert!(parse(r#"[{"durationSeconds": -1, "ratePercent": 1}]"#).is_err());
    }
}
