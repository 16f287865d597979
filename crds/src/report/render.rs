//! The human-readable report: one table row per tenant and the total, the proxy's cache and
//! memory, throughput by proxy replicas (a cluster run's), then one line per threshold, the
//! verdict and the comparison with a baseline. The local run prints it; `kubectl pressure report`
//! prints it for a run in a cluster. The three tables (tenants, thresholds, comparison) are laid
//! out by `comfy-table` without borders, colour or terminal detection: plain text whose columns
//! widen to fit their longest cell, the same on a terminal, in a log or in a file.

use std::fmt::Write;

use comfy_table::{CellAlignment, Table, TableStyle};

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
        match r.delivered_source.as_str() {
            "sink" => "verifying sink",
            "mailpit" => "Mailpit's message count: duplicates and attachments NOT verified",
            _ => "proxy: external SMTP, NOT verified by a sink",
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

/// Left-aligned column after `gap` spaces.
const fn left(gap: u16) -> (CellAlignment, u16) {
    (CellAlignment::Left, gap)
}

/// Right-aligned column after `gap` spaces.
const fn right(gap: u16) -> (CellAlignment, u16) {
    (CellAlignment::Right, gap)
}

/// An outcome word as wide as `FAIL`, so that a run where all pass lines up as one that fails.
fn outcome(word: &str) -> String {
    format!("{word:<4}")
}

/// The lines of a borderless table, one per row: `columns` gives each column's alignment and the
/// spaces before it (the first one's is the indent). No rules, no colour, no trailing spaces;
/// control characters in a cell (a newline in a name read from a report) become spaces.
fn grid(
    header: Option<&[&str]>,
    rows: Vec<Vec<String>>,
    columns: &[(CellAlignment, u16)],
) -> Vec<String> {
    let mut t = Table::new();
    t.load_style(TableStyle::new());
    if let Some(h) = header {
        t.set_header(h.to_vec());
    }
    t.add_rows(rows.into_iter().map(|row| {
        row.into_iter()
            .map(|c| c.replace(char::is_control, " "))
            .collect::<Vec<_>>()
    }));
    for (i, (align, gap)) in columns.iter().enumerate() {
        if let Some(c) = t.column_mut(i) {
            c.set_cell_alignment(*align);
            c.set_padding((*gap, 0));
        }
    }
    t.lines().map(|l| l.trim_end().to_string()).collect()
}

fn table(r: &Report) -> String {
    let mut rows: Vec<Vec<String>> = r.tenants.iter().map(row).collect();
    rows.push(row(&r.total));
    let columns: Vec<_> = (0..HEADER.len())
        .map(|i| if i == 0 { left(0) } else { right(2) })
        .collect();
    let mut lines = grid(Some(&HEADER), rows, &columns);
    // A rule as wide as the table between the tenants and the total (the last line).
    let width = lines.iter().map(|l| l.chars().count()).max().unwrap_or(0);
    lines.insert(lines.len().saturating_sub(1), "-".repeat(width));
    let mut out = String::new();
    for l in &lines {
        let _ = writeln!(out, "{l}");
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
    let rows = r
        .thresholds
        .iter()
        .map(|t| {
            vec![
                outcome(match t.outcome {
                    ThresholdOutcome::Passed => "ok",
                    ThresholdOutcome::Disabled => "off",
                    ThresholdOutcome::Breached | ThresholdOutcome::NotMeasured => "FAIL",
                }),
                t.name.clone(),
                "limit".into(),
                t.limit.to_string(),
                "observed".into(),
                t.observed.map_or("not measured".into(), |v| v.to_string()),
            ]
        })
        .collect();
    let columns = [left(2), left(1), left(1), right(1), left(2), left(1)];
    for l in grid(None, rows, &columns) {
        let _ = writeln!(out, "{l}");
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
    let rows = c
        .deltas
        .iter()
        .map(|d| {
            vec![
                outcome(if d.regressed { "FAIL" } else { "ok" }),
                d.name.clone(),
                num(d.baseline),
                "->".into(),
                num(d.current),
                d.change_percent
                    .map_or(String::new(), |p| format!("{p:+.1} %")),
                d.limit
                    .map_or("not judged".to_string(), |l| format!("limit {l:.1}")),
            ]
        })
        .collect();
    let columns = [
        left(2),
        left(1),
        right(1),
        left(1),
        left(1),
        right(1),
        left(2),
    ];
    for l in grid(None, rows, &columns) {
        let _ = writeln!(out, "{l}");
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
            text.is_ascii() && !text.contains('\x1b'),
            "plain text: {text}"
        );
        // The table's lines (header, tenant, rule, total) are as wide as each other.
        let widths: Vec<usize> = text
            .lines()
            .skip_while(|l| !l.starts_with("tenant"))
            .take(4)
            .map(str::len)
            .collect();
        assert!(
            widths.len() == 4 && widths.iter().all(|w| *w == widths[0]),
            "{text}"
        );
        assert!(
            text.contains("standard   40     0     40    -    0      0     0    0      -    2.5      -      -      -"),
            "{text}"
        );
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
    fn a_name_with_a_newline_keeps_the_table_one_line_a_row() {
        let r = Report {
            tenants: vec![Line {
                name: "a\nb".into(),
                ..Line::default()
            }],
            total: Line {
                name: "total".into(),
                ..Line::default()
            },
            ..Report::default()
        };
        let text = table(&r);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 5, "{text}");
        assert!(
            lines[1].starts_with("a b  ") && lines[2].starts_with("---"),
            "{text}"
        );
        assert!(lines[3].starts_with("total"), "{text}");
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
