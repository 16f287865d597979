//! The SVG chart, written by hand: two panels over the same time axis, delivered messages per
//! second on top and the p99 latency of each second's deliveries below, with the warm-up shaded,
//! the end of each load stage and the load's end marked.

use std::fmt::Write;

use super::{Point, Report};

const W: f64 = 900.0;
const PANEL_H: f64 = 200.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 50.0;
const GAP: f64 = 60.0;

/// Renders the report's timeline as an SVG document.
pub fn svg(r: &Report) -> String {
    let pts = &r.timeline;
    let t_max = pts.iter().map(|p| p.t).fold(1.0_f64, f64::max);
    let h = TOP + 2.0 * PANEL_H + GAP + 50.0;
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{h}" viewBox="0 0 {W} {h}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(out, r#"<rect width="{W}" height="{h}" fill="white"/>"#);
    let _ = writeln!(
        out,
        r#"<text x="{LEFT}" y="24" font-size="16">Pressure run {}: {:.1} msg/s delivered, p99 {}, verdict {}</text>"#,
        esc(&r.run_id),
        r.total.throughput_per_second,
        r.total
            .latency_ms
            .map_or("unknown".into(), |l| format!("{:.0} ms", l.p99)),
        esc(&r.verdict)
    );
    let tput: Vec<(f64, f64)> = pts.iter().map(|p| (p.t, p.delivered_per_second)).collect();
    let lat: Vec<(f64, f64)> = pts
        .iter()
        .filter_map(|p| p.latency_p99_ms.map(|v| (p.t, v)))
        .collect();
    let panels = [
        ("delivered msg/s", tput, "#1f77b4", TOP),
        ("p99 latency (ms)", lat, "#d62728", TOP + PANEL_H + GAP),
    ];
    for (label, series, color, y0) in panels {
        panel(&mut out, r, t_max, y0, label, &series, color);
    }
    out.push_str("</svg>\n");
    out
}

fn panel(
    out: &mut String,
    r: &Report,
    t_max: f64,
    y0: f64,
    label: &str,
    series: &[(f64, f64)],
    color: &str,
) {
    let plot_w = W - LEFT - RIGHT;
    let y_max = nice_max(series.iter().map(|p| p.1).fold(0.0, f64::max));
    let x = |t: f64| LEFT + (t / t_max).clamp(0.0, 1.0) * plot_w;
    let y = |v: f64| y0 + PANEL_H - (v / y_max).clamp(0.0, 1.0) * PANEL_H;
    let warm = f64::from(r.warmup_seconds).min(t_max);
    let _ = writeln!(
        out,
        r##"<rect x="{LEFT}" y="{y0}" width="{:.1}" height="{PANEL_H}" fill="#eeeeee"><title>warm-up (excluded)</title></rect>"##,
        x(warm) - LEFT
    );
    let stop = f64::from(r.warmup_seconds + r.duration_seconds);
    if stop < t_max {
        let (label_x, anchor) = label_place(x(stop));
        let _ = writeln!(
            out,
            r##"<line x1="{0:.1}" y1="{y0}" x2="{0:.1}" y2="{1}" stroke="#888" stroke-dasharray="4 3"/><text x="{2:.1}" y="{3}" fill="#666" text-anchor="{4}">load stops</text>"##,
            x(stop),
            y0 + PANEL_H,
            label_x,
            y0 + 12.0,
            anchor
        );
    }
    let mut end = 0.0;
    for stage in &r.stages {
        end += f64::from(stage.duration_seconds);
        if end < t_max {
            let _ = writeln!(
                out,
                r##"<line x1="{0:.1}" y1="{y0}" x2="{0:.1}" y2="{1}" stroke="#9467bd" stroke-dasharray="2 3"/><text x="{2:.1}" y="{3}" fill="#9467bd" text-anchor="end">{4} %</text>"##,
                x(end),
                y0 + PANEL_H,
                x(end) - 3.0,
                y0 + 24.0,
                stage.rate_percent
            );
        }
    }
    axes(out, y0, y_max, t_max, &x, &y);
    let _ = writeln!(
        out,
        r#"<text x="{LEFT}" y="{:.1}" font-weight="bold">{}</text>"#,
        y0 - 8.0,
        esc(label)
    );
    let pts: Vec<String> = series
        .iter()
        .map(|(t, v)| format!("{:.1},{:.1}", x(*t), y(*v)))
        .collect();
    let _ = writeln!(
        out,
        r#"<polyline fill="none" stroke="{color}" stroke-width="1.8" points="{}"/>"#,
        pts.join(" ")
    );
}

fn axes(
    out: &mut String,
    y0: f64,
    y_max: f64,
    t_max: f64,
    x: &dyn Fn(f64) -> f64,
    y: &dyn Fn(f64) -> f64,
) {
    let bottom = y0 + PANEL_H;
    let _ = writeln!(
        out,
        r#"<path d="M{LEFT},{y0} V{bottom} H{:.1}" fill="none" stroke="black"/>"#,
        W - RIGHT
    );
    for i in 0..=4 {
        let v = y_max * f64::from(i) / 4.0;
        let _ = writeln!(
            out,
            r##"<line x1="{LEFT}" y1="{0:.1}" x2="{1:.1}" y2="{0:.1}" stroke="#ddd"/><text x="{2:.1}" y="{3:.1}" text-anchor="end">{4}</text>"##,
            y(v),
            W - RIGHT,
            LEFT - 6.0,
            y(v) + 4.0,
            fmt_num(v)
        );
    }
    let step = nice_max(t_max / 8.0).max(1.0);
    let mut t = 0.0;
    while t <= t_max + 1e-9 {
        let _ = writeln!(
            out,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}s</text>"#,
            x(t),
            bottom + 16.0,
            fmt_num(t)
        );
        t += step;
    }
}

/// Room a marker's label takes (about ten characters of the 12 px font).
const LABEL_W: f64 = 70.0;

/// Where a marker's label goes, and its `text-anchor`: right of its line, or left of it when it
/// would leave the picture.
fn label_place(line_x: f64) -> (f64, &'static str) {
    if line_x + 4.0 + LABEL_W > W {
        (line_x - 4.0, "end")
    } else {
        (line_x + 4.0, "start")
    }
}

/// A round upper bound (1, 2, 5 × 10^n) at or above `v`.
pub fn nice_max(v: f64) -> f64 {
    if !(v.is_finite() && v > 0.0) {
        return 1.0;
    }
    let mag = 10f64.powf(v.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|c| *c >= v)
        .unwrap_or(10.0 * mag)
}

fn fmt_num(v: f64) -> String {
    if v >= 10.0 || v == v.round() {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Timeline points from consecutive (t, delivered, generated, windowed p99) readings.
pub fn point(t: f64, dt: f64, delivered: (u64, u64), generated: u64, p99_ms: Option<f64>) -> Point {
    let (before, now) = delivered;
    Point {
        t,
        delivered_per_second: if dt > 0.0 {
            (now.saturating_sub(before) as f64 / dt * 10.0).round() / 10.0
        } else {
            0.0
        },
        latency_p99_ms: p99_ms,
        generated,
        delivered: now,
        proxy_replicas: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nice_bounds() {
        assert_eq!(nice_max(0.0), 1.0);
        assert_eq!(nice_max(7.0), 10.0);
        assert_eq!(nice_max(130.0), 200.0);
        assert_eq!(nice_max(2.0), 2.0);
    }

    #[test]
    fn renders_both_series_and_the_warm_up() {
        let r = Report {
            run_id: "r<1>".into(),
            warmup_seconds: 2,
            duration_seconds: 4,
            verdict: "ThresholdsPassed".into(),
            timeline: (1..=8)
                .map(|i| point(f64::from(i), 1.0, (0, 10 * i as u64), 0, Some(50.0)))
                .collect(),
            ..Report::default()
        };
        let s = svg(&r);
        assert!(s.starts_with("<svg") && s.trim_end().ends_with("</svg>"));
        assert_eq!(s.matches("<polyline").count(), 2);
        assert!(s.contains("warm-up"));
        assert!(s.contains(r#"text-anchor="start">load stops"#));
        assert!(s.contains("r&lt;1&gt;"));
        // A load that stops near the right edge (a short drain) keeps its label inside.
        let mut timeline = r.timeline[..6].to_vec();
        timeline.push(point(6.3, 0.3, (60, 63), 0, Some(50.0)));
        let late = Report {
            timeline,
            ..r.clone()
        };
        assert!(svg(&late).contains(r#"text-anchor="end">load stops"#));
        let staged = Report {
            stages: vec![crate::StageSpec {
                duration_seconds: 3,
                rate_percent: 250,
            }],
            ..r.clone()
        };
        assert_eq!(
            svg(&staged).matches("250 %").count(),
            2,
            "the stage's end, in both panels"
        );
        assert!(s.contains("80.0,") || s.contains("points=\""));
        assert_eq!(
            point(2.0, 0.5, (10, 15), 3, None).delivered_per_second,
            10.0
        );
    }
}
