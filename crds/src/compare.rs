//! A run compared with a baseline run, figure by figure, for the operator (`spec.baseline`,
//! `status.comparison` and the `Regressed` condition) and the local run (`--baseline FILE`)
//! alike: delivered per second, p99 latency, error rate and the proxy's CPU seconds per 1,000
//! delivered messages. A figure is judged against its tolerance only when both runs measured
//! it; otherwise it is listed without a judgement.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::report::Report;
use crate::spec::baseline::ToleranceSpec;

/// Delivered per second.
pub const THROUGHPUT: &str = "throughputPerSecond";
/// p99 latency, ms.
pub const P99: &str = "latencyP99Ms";
/// Error rate, permille.
pub const ERROR_RATE: &str = "errorRatePermille";
/// The proxy's CPU seconds per 1,000 delivered messages.
pub const CPU: &str = "proxyCpuSecondsPer1000";

/// One figure of both runs.
#[derive(JsonSchema, Serialize, Deserialize, Debug, Clone, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct Delta {
    /// [`THROUGHPUT`], [`P99`], [`ERROR_RATE`] or [`CPU`].
    pub name: String,
    /// The baseline's value; absent when it did not measure it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<f64>,
    /// This run's value; absent when it did not measure it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current: Option<f64>,
    /// The change in percent of the baseline (absent when either is, or the baseline is 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change_percent: Option<f64>,
    /// The worst value the tolerance allows (absent when not judged).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<f64>,
    /// Beyond the tolerance.
    pub regressed: bool,
}

/// This run against its baseline.
#[derive(JsonSchema, Serialize, Deserialize, Debug, Clone, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct Comparison {
    /// The baseline's run id.
    pub baseline_run_id: String,
    /// Where the baseline came from (a ConfigMap, a file).
    pub baseline_source: String,
    /// One line per figure.
    pub deltas: Vec<Delta>,
    /// Whether any figure is beyond its tolerance.
    pub regressed: bool,
    /// The comparison in one sentence.
    pub message: String,
}

/// The four compared figures of a report.
fn figures(r: &Report) -> [(&'static str, Option<f64>); 4] {
    let delivered = r.total.delivered;
    let cpu = r
        .cpu_seconds
        .get("proxy")
        .filter(|_| delivered > 0)
        .map(|s| s / delivered as f64 * 1000.0);
    [
        (THROUGHPUT, Some(r.total.throughput_per_second)),
        (P99, r.total.latency_ms.map(|l| l.p99)),
        (ERROR_RATE, Some(r.figures.error_rate_permille as f64)),
        (CPU, cpu),
    ]
}

/// `current` against `baseline` (found at `source`) with tolerances `tol`.
pub fn compare(
    current: &Report,
    baseline: &Report,
    source: &str,
    tol: &ToleranceSpec,
) -> Comparison {
    let deltas: Vec<Delta> = figures(current)
        .into_iter()
        .zip(figures(baseline))
        .map(|((name, now), (_, base))| delta(name, base, now, tol))
        .collect();
    let regressed = deltas.iter().any(|d| d.regressed);
    Comparison {
        baseline_run_id: baseline.run_id.clone(),
        baseline_source: source.to_string(),
        message: message(&baseline.run_id, &deltas, regressed),
        deltas,
        regressed,
    }
}

fn delta(name: &str, base: Option<f64>, now: Option<f64>, tol: &ToleranceSpec) -> Delta {
    let pct = |p: i32| f64::from(p) / 100.0;
    let limit = base.map(|b| match name {
        THROUGHPUT => b * (1.0 - pct(tol.throughput_drop_percent)),
        P99 => b * (1.0 + pct(tol.p99_rise_percent)),
        ERROR_RATE => b + f64::from(tol.error_rate_rise_permille),
        _ => b * (1.0 + pct(tol.cpu_rise_percent)),
    });
    let judged = now.zip(limit);
    let regressed = judged.is_some_and(|(v, l)| if name == THROUGHPUT { v < l } else { v > l });
    Delta {
        name: name.to_string(),
        baseline: base,
        current: now,
        change_percent: now
            .zip(base)
            .filter(|(_, b)| *b != 0.0)
            .map(|(v, b)| ((v - b) / b * 1000.0).round() / 10.0),
        limit: judged.map(|(_, l)| (l * 10.0).round() / 10.0),
        regressed,
    }
}

fn message(run: &str, deltas: &[Delta], regressed: bool) -> String {
    let show = |d: &Delta| {
        let (base, now) = (fmt(d.baseline), fmt(d.current));
        let change = d
            .change_percent
            .map_or(String::new(), |p| format!(" ({p:+.1} %)"));
        let limit = d
            .limit
            .filter(|_| d.regressed)
            .map_or(String::new(), |l| format!(", limit {}", fmt(Some(l))));
        format!("{} {base} → {now}{change}{limit}", d.name)
    };
    let worse: Vec<String> = deltas.iter().filter(|d| d.regressed).map(show).collect();
    if regressed {
        format!("regressed against run {run}: {}", worse.join("; "))
    } else {
        let all: Vec<String> = deltas
            .iter()
            .filter(|d| d.current.is_some() && d.baseline.is_some())
            .map(show)
            .collect();
        format!("within tolerance of run {run}: {}", all.join("; "))
    }
}

fn fmt(v: Option<f64>) -> String {
    v.map_or("unmeasured".into(), |v| {
        if v == v.round() {
            format!("{v:.0}")
        } else {
            format!("{v:.1}")
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{Latency, Line};

    fn report(run: &str, tput: f64, p99: Option<f64>, err: i64, cpu: Option<f64>) -> Report {
        let mut r = Report {
            run_id: run.into(),
            total: Line {
                delivered: 2_000,
                throughput_per_second: tput,
                latency_ms: p99.map(|p99| Latency {
                    p99,
                    ..Latency::default()
                }),
                ..Line::default()
            },
            ..Report::default()
        };
        r.figures.error_rate_permille = err;
        if let Some(c) = cpu {
            r.cpu_seconds.insert("proxy".into(), c);
        }
        r
    }

    #[test]
    fn within_tolerance() {
        let base = report("a", 100.0, Some(1_000.0), 0, Some(10.0));
        let now = report("b", 95.0, Some(1_200.0), 1, Some(11.0));
        let c = compare(&now, &base, "report.json", &ToleranceSpec::default());
        assert!(!c.regressed, "{c:?}");
        assert_eq!(c.deltas.len(), 4);
        assert_eq!(c.deltas[0].change_percent, Some(-5.0));
        assert_eq!(
            c.deltas[3].current,
            Some(5.5),
            "11 s per 2,000 = 5.5 s per 1,000"
        );
        assert!(
            c.message.starts_with("within tolerance of run a"),
            "{}",
            c.message
        );
    }

    #[test]
    fn each_figure_can_regress() {
        let base = report("a", 100.0, Some(1_000.0), 2, Some(10.0));
        let tol = ToleranceSpec::default();
        for (now, which) in [
            (report("b", 89.0, Some(1_000.0), 2, Some(10.0)), THROUGHPUT),
            (report("b", 100.0, Some(1_300.0), 2, Some(10.0)), P99),
            (report("b", 100.0, Some(1_000.0), 4, Some(10.0)), ERROR_RATE),
            (report("b", 100.0, Some(1_000.0), 2, Some(12.5)), CPU),
        ] {
            let c = compare(&now, &base, "cm", &tol);
            let bad: Vec<&str> = c
                .deltas
                .iter()
                .filter(|d| d.regressed)
                .map(|d| d.name.as_str())
                .collect();
            assert_eq!(bad, vec![which], "{c:?}");
            assert!(c.regressed && c.message.contains(which), "{}", c.message);
        }
    }

    #[test]
    fn a_figure_one_run_lacks_is_shown_not_judged() {
        let base = report("a", 100.0, None, 0, Some(10.0));
        let now = report("b", 100.0, Some(9_000.0), 0, None);
        let c = compare(&now, &base, "cm", &ToleranceSpec::default());
        assert!(!c.regressed, "{c:?}");
        let p99 = &c.deltas[1];
        assert_eq!(
            (p99.baseline, p99.current, p99.limit),
            (None, Some(9_000.0), None)
        );
        assert_eq!(c.deltas[3].current, None);
    }

    #[test]
    fn a_zero_baseline_has_no_percentage_but_is_judged() {
        let base = report("a", 0.0, Some(0.0), 0, None);
        let now = report("b", 0.0, Some(5.0), 0, None);
        let c = compare(&now, &base, "cm", &ToleranceSpec::default());
        assert_eq!(c.deltas[1].change_percent, None);
        assert!(c.deltas[1].regressed, "5 ms above a p99 of 0");
    }
}
