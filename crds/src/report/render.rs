//! The human-readable report: one table row per tenant and the total, the proxy's cache and
//! memory, throughput by proxy replicas (a cluster run's), then one line per threshold, the verdict and the comparison with a baseline. The
//! local run prints it; `kubectl pressure report` prints it for a run in a cluster.

use std::fmt::Write;

use super::{Line, Report};
use crate::ThresholdOutcome;
use crate::compare::Comparison;

/// Renders the report as text.
pub fn human(r: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Pressure run {}: {} ({} database, delivered counted by the {})",
        r.run_id,
        r.source,
        r.database,
        if r.delivered_source == "sink" {
            "verifying sink"
        } else {
            "proxy: external SMTP, NOT verified by a sink"
        }
    );
    let _ = writeln!(
        out,
        "Measured {:.1} s after a {} s warm-up; drain {:.1} s ({}){}",
        r.measured_seconds,
        r.warmup_seconds,
        r.drain_seconds,
        if r.drained {
            "every message has a final report"
        } else if r.interrupted {
            "skipped"
        } else {
            "deadline reached"
        },
        if r.interrupted {
            "\nINTERRUPTED: partial figures; `lost` includes messages still in flight when stopped"
        } else {
            ""
        }
    );
    out.push('\n');
    out.push_str(&table(r));
    out.push('\n');
    let _ = writeln!(
        out,
        "Proxy attachment cache: {} hits, {} misses ({}); proxy peak memory (VmHWM): {}",
        r.proxy_cache.hits,
        r.proxy_cache.misses,
        r.proxy_cache
            .hit_rate_permille
            .map_or("no lookups".into(), |p| format!(
                "{:.1}% hit",
                p as f64 / 10.0
            )),
        r.proxy_peak_memory_bytes
            .map_or("unknown".into(), |b| format!(
                "{:.1} MiB",
                b as f64 / 1048576.0
            ))
    );
    if !r.by_replicas.is_empty() {
        let parts: Vec<String> = r
            .by_replicas
            .iter()
            .map(|l| {
                format!(
                    "{} replica{}: {:.1} msg/s over {:.0} s",
                    l.replicas,
                    if l.replicas == 1 { "" } else { "s" },
                    l.delivered_per_second,
                    l.seconds
                )
            })
            .collect();
        let _ = writeln!(out, "Throughput by proxy replicas: {}", parts.join("; "));
    }
    if !r.cpu_seconds.is_empty() {
        let parts: Vec<String> = r
            .cpu_seconds
            .iter()
            .map(|(k, v)| format!("{k} {v:.1}"))
            .collect();
        let _ = writeln!(out, "CPU seconds: {}", parts.join(", "));
    }
    out.push('\n');
    out.push_str(&verdict(r));
    out
}

const HEADER: [&str; 14] = [
    "tenant", "gen", "sent", "deliv", "MiB", "err", "defer", "lost", "dup", "cache", "msg/s",
    "p50ms", "p95ms", "p99ms",
];

fn table(r: &Report) -> String {
    let mut rows: Vec<Vec<String>> = vec![HEADER.iter().map(|s| (*s).to_string()).collect()];
    rows.extend(r.tenants.iter().map(row));
    rows.push(row(&r.total));
    let widths: Vec<usize> = (0..HEADER.len())
        .map(|i| rows.iter().map(|row| row[i].len()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for (n, row) in rows.iter().enumerate() {
        if n == rows.len() - 1 {
            let _ = writeln!(
                out,
                "{}",
                "-".repeat(widths.iter().sum::<usize>() + 2 * (HEADER.len() - 1))
            );
        }
        let cells: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(i, c)| {
                if i == 0 {
                    format!("{c:<w$}", w = widths[i])
                } else {
                    format!("{c:>w$}", w = widths[i])
                }
            })
            .collect();
        let _ = writeln!(out, "{}", cells.join("  "));
    }
    let max = r.total.latency_ms.and_then(|l| l.max);
    let _ = writeln!(
        out,
        "latency: {}; max {}",
        if r.latency_source == "proxy" {
            "the proxy's own histogram (enqueue to SMTP acceptance, bucket-interpolated)"
        } else {
            "end to end (client creation to sink acceptance)"
        },
        max.map_or("unknown".into(), |m| format!("{m:.0} ms"))
    );
    out
}

fn row(l: &Line) -> Vec<String> {
    let opt = |v: Option<u64>| v.map_or("-".into(), |x| x.to_string());
    let lat = |f: fn(&crate::report::Latency) -> f64| {
        l.latency_ms.map_or("-".into(), |x| format!("{:.0}", f(&x)))
    };
    vec![
        l.name.clone(),
        l.generated.to_string(),
        l.sent.to_string(),
        l.delivered.to_string(),
        l.bytes_delivered
            .map_or("-".into(), |b| format!("{:.1}", b as f64 / 1_048_576.0)),
        l.errors.to_string(),
        l.deferred.to_string(),
        l.lost.to_string(),
        opt(l.duplicates),
        l.cache_hit_rate_permille
            .map_or("-".into(), |p| format!("{:.1}%", p as f64 / 10.0)),
        format!("{:.1}", l.throughput_per_second),
        lat(|x| x.p50),
        lat(|x| x.p95),
        lat(|x| x.p99),
    ]
}

fn verdict(r: &Report) -> String {
    let mut out = String::from("Thresholds:\n");
    for t in &r.thresholds {
        let _ = writeln!(
            out,
            "  {:<4} {:<28} limit {:>9}  observed {}",
            match t.outcome {
                ThresholdOutcome::Passed => "ok",
                ThresholdOutcome::Disabled => "off",
                ThresholdOutcome::Breached | ThresholdOutcome::NotMeasured => "FAIL",
            },
            t.name,
            t.limit,
            t.observed.map_or("not measured".into(), |v| v.to_string())
        );
    }
    let _ = writeln!(
        out,
        "Verdict: {} ({})",
        if r.passed { "PASS" } else { "FAIL" },
        r.verdict
    );
    if !r.passed && !r.message.is_empty() {
        let _ = writeln!(out, "  {}", r.message);
    }
    if let Some(c) = &r.comparison {
        out.push_str(&comparison(c));
    }
    out
}

/// The comparison with the baseline run: one line per figure, then the outcome.
pub fn comparison(c: &Comparison) -> String {
    let mut out = format!(
        "Compared with run {} ({}):\n",
        c.baseline_run_id, c.baseline_source
    );
    let num = |v: Option<f64>| v.map_or("unmeasured".to_string(), |v| format!("{v:.1}"));
    for d in &c.deltas {
        let _ = writeln!(
            out,
            "  {:<4} {:<24} {:>10} -> {:<10} {:>9}  {}",
            if d.regressed { "FAIL" } else { "ok" },
            d.name,
            num(d.baseline),
            num(d.current),
            d.change_percent
                .map_or(String::new(), |p| format!("{p:+.1} %")),
            d.limit
                .map_or("not judged".to_string(), |l| format!("limit {l:.1}"))
        );
    }
    let _ = writeln!(
        out,
        "Baseline: {}",
        if c.regressed {
            "REGRESSED"
        } else {
            "within tolerance"
        }
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ThresholdResult;

    #[test]
    fn shows_every_tenant_threshold_and_verdict() {
        let line = |name: &str, gen_: u64| Line {
            name: name.into(),
            generated: gen_,
            delivered: gen_,
            duplicates: Some(0),
            throughput_per_second: 2.5,
            ..Line::default()
        };
        let r = Report {
            run_id: "r1".into(),
            delivered_source: "sink".into(),
            tenants: vec![line("standard", 40)],
            total: line("total", 40),
            thresholds: vec![ThresholdResult {
                name: "minThroughputPerSecond".into(),
                limit: 1000,
                observed: Some(2),
                passed: false,
                outcome: ThresholdOutcome::Breached,
            }],
            verdict: "ThresholdBreached".into(),
            ..Report::default()
        };
        let text = human(&r);
        assert!(text.contains("standard"), "{text}");
        assert!(text.contains("FAIL minThroughputPerSecond"), "{text}");
        assert!(text.contains("Verdict: FAIL (ThresholdBreached)"), "{text}");
        assert!(text.contains("verifying sink"), "{text}");
        assert!(
            !text.contains("by proxy replicas"),
            "a local run has no such line"
        );
        let scaled = Report {
            by_replicas: vec![
                super::super::replicas::ReplicaFigures {
                    replicas: 1,
                    seconds: 30.0,
                    delivered: 1_500,
                    delivered_per_second: 50.0,
                },
                super::super::replicas::ReplicaFigures {
                    replicas: 2,
                    seconds: 60.0,
                    delivered: 5_400,
                    delivered_per_second: 90.0,
                },
            ],
            ..r
        };
        let text = human(&scaled);
        assert!(
            text.contains(
                "Throughput by proxy replicas: 1 replica: 50.0 msg/s over 30 s; 2 replicas: 90.0 msg/s over 60 s"
            ),
            "{text}"
        );
    }

    #[test]
    fn shows_the_comparison_with_the_baseline() {
        let mut base = Report {
            run_id: "old".into(),
            ..Report::default()
        };
        base.total.throughput_per_second = 100.0;
        let mut now = base.clone();
        now.run_id = "new".into();
        now.total.throughput_per_second = 50.0;
        let c = crate::compare::compare(
            &now,
            &base,
            "old/report.json",
            &crate::ToleranceSpec::default(),
        );
        now.comparison = Some(c);
        let text = human(&now);
        assert!(
            text.contains("Compared with run old (old/report.json)"),
            "{text}"
        );
        assert!(text.contains("FAIL throughputPerSecond"), "{text}");
        assert!(text.contains("-50.0 %"), "{text}");
        assert!(text.contains("Baseline: REGRESSED"), "{text}");
    }
}
