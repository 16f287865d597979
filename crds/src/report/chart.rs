//! The run report's chart, drawn with `plotters`: a title with the run's figures, then two panels
//! over the same time axis, delivered messages per second on top and the p99 latency of each
//! second's deliveries below, each with its axes and units, the warm-up shaded and labelled, the
//! end of each load stage and the load's end marked with a line and a label kept inside the
//! picture. [`draw`] takes any `plotters` backend; [`svg`] renders it with the SVG backend only
//! (what the local runner writes next to `report.json` and the operator stores as `chart.svg`).
//!
//! The drawing never asks a font for text sizes (the SVG backend writes `<text>` with an anchor
//! and the viewer lays it out): label sides and the title's size come from an estimate of the
//! text's width, so the SVG is the same byte for byte in every build, with or without a font
//! registered, and carries no timestamp or random id.
//!
//! PNG: the local runner draws the same [`draw`] on `plotters`' bitmap backend
//! (`pressure::chart_png`, a 37 KB Latin-1 subset of DejaVu Sans embedded for `ab_glyph`, the
//! `png` crate to encode; 13 more crates in `pressure`'s tree, about 10 s of clean build). This
//! crate, shared with the operator, stays SVG only: `plotters` with `svg_backend` and
//! `line_series`, 3 crates (`plotters`, `plotters-backend`, `plotters-svg`).

use plotters::coord::Shift;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{Point, Report};

/// Size of the picture, pixels.
pub const SIZE: (u32, u32) = (900, 560);
/// Height of the title band above the panels.
const TITLE_H: u32 = 40;
/// Room for the y-axis tick labels and its description.
const Y_LABEL_AREA: u32 = 64;
/// Left edge of the title and of the panels' headings: the plots' left edge.
const LEFT: i32 = Y_LABEL_AREA as i32;
/// Room for the x-axis tick labels and its description.
const X_LABEL_AREA: u32 = 40;
/// Font sizes, CSS pixels.
const TITLE_PX: f64 = 16.0;
const TEXT_PX: f64 = 12.0;
/// `plotters` font size units per CSS pixel (the SVG backend writes `size / 1.24`).
const PX: f64 = 1.24;
/// Estimated width of one character, as a share of the CSS font size (DejaVu/Helvetica-like
/// sans-serif text averages a little under this).
const CHAR_EM: f64 = 0.6;

const THROUGHPUT: RGBColor = RGBColor(0x1f, 0x77, 0xb4);
const LATENCY: RGBColor = RGBColor(0xd6, 0x27, 0x28);
const STAGE: RGBColor = RGBColor(0x94, 0x67, 0xbd);
const MUTED: RGBColor = RGBColor(0x66, 0x66, 0x66);
const WARM_UP: RGBColor = RGBColor(0xee, 0xee, 0xee);
const GRID: RGBColor = RGBColor(0xdd, 0xdd, 0xdd);

type Chart<'a, DB> = ChartContext<'a, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>;
type Drawn<DB> = DrawResult<(), DB>;

/// One panel: its heading, the unit of its y axis, its line's colour and its points.
struct Panel {
    heading: &'static str,
    unit: &'static str,
    color: RGBColor,
    series: Vec<(f64, f64)>,
}

/// Renders the report's timeline as an SVG document.
pub fn svg(r: &Report) -> String {
    let mut out = String::new();
    let drawn = {
        let root = SVGBackend::with_string(&mut out, SIZE).into_drawing_area();
        draw(r, &root).and_then(|()| root.present())
    };
    match drawn {
        Ok(()) => out,
        Err(e) => unavailable(&e.to_string()),
    }
}

/// Draws the report's chart on `root` (of [`SIZE`]), with any `plotters` backend.
pub fn draw<DB: DrawingBackend>(r: &Report, root: &DrawingArea<DB, Shift>) -> Drawn<DB> {
    root.fill(&WHITE)?;
    title(r, root)?;
    let (_, body) = root.split_vertically(TITLE_H);
    let t_max = r
        .timeline
        .iter()
        .map(|p| p.t)
        .filter(|t| t.is_finite())
        .fold(1.0_f64, f64::max);
    for (area, p) in body.split_evenly((2, 1)).iter().zip(panels(&r.timeline)) {
        panel(r, root, area, &p, t_max)?;
    }
    Ok(())
}

fn panels(pts: &[Point]) -> [Panel; 2] {
    let finite = |(t, v): (f64, f64)| (t.is_finite() && v.is_finite()).then_some((t, v));
    [
        Panel {
            heading: "delivered msg/s",
            unit: "msg/s",
            color: THROUGHPUT,
            series: pts
                .iter()
                .filter_map(|p| finite((p.t, p.delivered_per_second)))
                .collect(),
        },
        Panel {
            heading: "p99 latency (ms)",
            unit: "ms",
            color: LATENCY,
            series: pts
                .iter()
                .filter_map(|p| finite((p.t, p.latency_p99_ms?)))
                .collect(),
        },
    ]
}

fn title<DB: DrawingBackend>(r: &Report, root: &DrawingArea<DB, Shift>) -> Drawn<DB> {
    let text = format!(
        "Pressure run {}: {:.1} msg/s delivered, p99 {}, verdict {}",
        r.run_id,
        r.total.throughput_per_second,
        r.total
            .latency_ms
            .map_or("unknown".into(), |l| format!("{:.0} ms", l.p99)),
        r.verdict
    );
    let room = f64::from(SIZE.0) - 2.0 * f64::from(LEFT);
    let px = fit_px(&text, room, TITLE_PX);
    root.draw(&Text::new(text, (LEFT, 12), font(px, &BLACK)))
}

fn panel<DB: DrawingBackend>(
    r: &Report,
    root: &DrawingArea<DB, Shift>,
    area: &DrawingArea<DB, Shift>,
    p: &Panel,
    t_max: f64,
) -> Drawn<DB> {
    let y_max = nice_max(p.series.iter().map(|s| s.1).fold(0.0, f64::max));
    let mut chart = ChartBuilder::on(area)
        .margin_top(26)
        .margin_right(20)
        .margin_bottom(4)
        .x_label_area_size(X_LABEL_AREA)
        .y_label_area_size(Y_LABEL_AREA)
        .build_cartesian_2d(0.0..t_max, 0.0..y_max)?;
    warm_up(
        &mut chart,
        root,
        f64::from(r.warmup_seconds).min(t_max),
        y_max,
    )?;
    mesh(&mut chart, p.unit)?;
    markers(r, &mut chart, root, t_max, y_max)?;
    let heading = ("sans-serif", TEXT_PX * PX, FontStyle::Bold)
        .into_font()
        .color(&BLACK);
    area.draw(&Text::new(p.heading, (LEFT, 6), heading))?;
    let line = p.color.stroke_width(2);
    let clamp = |&(t, v): &(f64, f64)| (t.clamp(0.0, t_max), v.clamp(0.0, y_max));
    chart.draw_series(LineSeries::new(p.series.iter().map(clamp), line))?;
    if p.series.is_empty() {
        let (x, y) = chart.backend_coord(&(t_max / 2.0, y_max / 2.0));
        let style = font(TEXT_PX, &MUTED).pos(Pos::new(HPos::Center, VPos::Center));
        root.draw(&Text::new("no readings", (x, y), style))?;
    }
    Ok(())
}

fn mesh<DB: DrawingBackend>(chart: &mut Chart<'_, DB>, unit: &str) -> Drawn<DB> {
    chart
        .configure_mesh()
        .x_labels(10)
        .y_labels(6)
        .max_light_lines(0)
        .bold_line_style(GRID)
        .x_label_formatter(&|t| format!("{}s", fmt_num(*t)))
        .y_label_formatter(&|v| fmt_num(*v))
        .x_desc("seconds since the load started")
        .y_desc(unit)
        .label_style(font(TEXT_PX, &BLACK))
        .axis_desc_style(font(TEXT_PX, &BLACK))
        .draw()
}

/// The warm-up (excluded from the figures), shaded and labelled.
fn warm_up<DB: DrawingBackend>(
    chart: &mut Chart<'_, DB>,
    root: &DrawingArea<DB, Shift>,
    warm: f64,
    y_max: f64,
) -> Drawn<DB> {
    if warm <= 0.0 {
        return Ok(());
    }
    let shade = Rectangle::new([(0.0, 0.0), (warm, y_max)], WARM_UP.filled());
    chart.draw_series(std::iter::once(shade))?;
    let (x, y) = chart.backend_coord(&(0.0, y_max));
    root.draw(&Text::new("warm-up", (x + 4, y + 4), font(TEXT_PX, &MUTED)))
}

/// The end of each stage (its rate, left of its line) and the load's end ("load stops", right of
/// its line), each label on the other side when it would leave the picture.
fn markers<DB: DrawingBackend>(
    r: &Report,
    chart: &mut Chart<'_, DB>,
    root: &DrawingArea<DB, Shift>,
    t_max: f64,
    y_max: f64,
) -> Drawn<DB> {
    let mut end = 0.0;
    for stage in &r.stages {
        end += f64::from(stage.duration_seconds);
        if end < t_max {
            let label = format!("{} %", stage.rate_percent);
            marker(chart, root, (end, y_max), &label, STAGE, (false, 20))?;
        }
    }
    let stop = f64::from(r.warmup_seconds + r.duration_seconds);
    if stop < t_max {
        marker(chart, root, (stop, y_max), "load stops", MUTED, (true, 4))?;
    }
    Ok(())
}

/// A vertical line at `t` with its label, `place.0` saying whether the label prefers the right
/// side, `place.1` its distance below the top of the panel.
fn marker<DB: DrawingBackend>(
    chart: &mut Chart<'_, DB>,
    root: &DrawingArea<DB, Shift>,
    (t, y_max): (f64, f64),
    label: &str,
    color: RGBColor,
    (right, dy): (bool, i32),
) -> Drawn<DB> {
    let line = PathElement::new(vec![(t, 0.0), (t, y_max)], color.stroke_width(1));
    chart.draw_series(std::iter::once(line))?;
    let (x, y) = chart.backend_coord(&(t, y_max));
    let width = text_width(label, TEXT_PX);
    let (label_x, h) = label_place(x, width, right, (0, SIZE.0 as i32));
    let style = font(TEXT_PX, &color).pos(Pos::new(h, VPos::Top));
    root.draw(&Text::new(label.to_string(), (label_x, y + dy), style))
}

/// Where a label beside a line at `line_x` starts (its anchor) and which way it runs: on the
/// preferred side, or the other when it would leave `bounds` (pixels, left and right).
fn label_place(line_x: i32, width: i32, right: bool, bounds: (i32, i32)) -> (i32, HPos) {
    const GAP: i32 = 4;
    let fits_right = line_x + GAP + width <= bounds.1;
    let fits_left = line_x - GAP - width >= bounds.0;
    if (right && fits_right) || !fits_left {
        (line_x + GAP, HPos::Left)
    } else {
        (line_x - GAP, HPos::Right)
    }
}

/// Estimated width of `text` at `px` pixels.
fn text_width(text: &str, px: f64) -> i32 {
    (text.chars().count() as f64 * CHAR_EM * px).ceil() as i32
}

/// `preferred` pixels, or fewer (whole) so that `text` fits in `room` pixels.
fn fit_px(text: &str, room: f64, preferred: f64) -> f64 {
    let chars = text.chars().count().max(1) as f64;
    (room / (chars * CHAR_EM)).floor().clamp(1.0, preferred)
}

fn font<'a>(px: f64, color: &'a RGBColor) -> TextStyle<'a> {
    ("sans-serif", px * PX).into_font().color(color)
}

/// A small SVG saying the chart could not be drawn (the drawing itself failed).
fn unavailable(why: &str) -> String {
    let why = why
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    let (w, h) = SIZE;
    format!(
        "<svg width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" xmlns=\"http://www.w3.org/2000/svg\">\n\
         <text x=\"{LEFT}\" y=\"40\" font-family=\"sans-serif\">chart unavailable: {why}</text>\n</svg>\n"
    )
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
        ..Point::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `<text>` of the SVG: where it is anchored, which way it runs, its size and content.
    #[derive(Debug)]
    struct SvgText {
        x: f64,
        y: f64,
        anchor: String,
        px: f64,
        rotated: bool,
        content: String,
    }

    fn attr(tag: &str, name: &str) -> Option<String> {
        let start = tag.find(&format!(" {name}=\""))? + name.len() + 3;
        let len = tag[start..].find('"')?;
        Some(tag[start..start + len].to_string())
    }

    fn texts(svg: &str) -> Vec<SvgText> {
        svg.split("<text ")
            .skip(1)
            .filter_map(|rest| {
                let (tag, body) = rest.split_once('>')?;
                let tag = &format!(" {tag}");
                let num = |n| attr(tag, n).and_then(|v| v.parse().ok());
                Some(SvgText {
                    x: num("x")?,
                    y: num("y")?,
                    anchor: attr(tag, "text-anchor")?,
                    px: num("font-size")?,
                    rotated: tag.contains("transform="),
                    content: body.split_once("</text>")?.0.trim().to_string(),
                })
            })
            .collect()
    }

    fn text<'a>(all: &'a [SvgText], content: &str) -> Vec<&'a SvgText> {
        all.iter().filter(|t| t.content == content).collect()
    }

    /// Every text lies inside the viewBox, its width estimated as the chart estimates it.
    fn assert_inside(svg: &str) {
        let (w, h) = (f64::from(SIZE.0), f64::from(SIZE.1));
        assert!(svg.contains(&format!(r#"viewBox="0 0 {w} {h}""#)));
        for t in texts(svg) {
            let width = f64::from(text_width(&t.content, t.px));
            let (left, right) = match (t.rotated, t.anchor.as_str()) {
                (true, _) => (t.x, t.x + t.px),
                (false, "start") => (t.x, t.x + width),
                (false, "end") => (t.x - width, t.x),
                _ => (t.x - width / 2.0, t.x + width / 2.0),
            };
            assert!(left >= 0.0 && right <= w, "{t:?} leaves the picture");
            assert!((0.0..=h).contains(&t.y), "{t:?} leaves the picture");
        }
    }

    /// Polylines drawn in `color` (the series' lines; axes and markers are other colours).
    fn lines_of(svg: &str, color: RGBColor) -> usize {
        let RGBColor(r, g, b) = color;
        let stroke = format!(r##"stroke="#{r:02X}{g:02X}{b:02X}" stroke-width="2""##);
        svg.split("<polyline ")
            .skip(1)
            .filter(|p| {
                p.split_once("/>")
                    .is_some_and(|(tag, _)| tag.contains(&stroke))
            })
            .count()
    }

    fn report() -> Report {
        Report {
            run_id: "r<1>".into(),
            warmup_seconds: 2,
            duration_seconds: 4,
            verdict: "ThresholdsPassed".into(),
            timeline: (1..=8)
                .map(|i| point(f64::from(i), 1.0, (0, 10 * i as u64), 0, Some(50.0)))
                .collect(),
            ..Report::default()
        }
    }

    #[test]
    fn nice_bounds() {
        assert_eq!(nice_max(0.0), 1.0);
        assert_eq!(nice_max(7.0), 10.0);
        assert_eq!(nice_max(130.0), 200.0);
        assert_eq!(nice_max(2.0), 2.0);
        assert_eq!(nice_max(f64::NAN), 1.0);
    }

    #[test]
    fn renders_both_series_axes_and_the_warm_up() {
        let r = report();
        let s = svg(&r);
        assert!(s.starts_with("<svg") && s.trim_end().ends_with("</svg>"));
        assert_eq!(lines_of(&s, THROUGHPUT), 1, "the throughput line");
        assert_eq!(lines_of(&s, LATENCY), 1, "the latency line");
        let all = texts(&s);
        for label in ["delivered msg/s", "p99 latency (ms)", "msg/s", "ms", "8s"] {
            assert!(!text(&all, label).is_empty(), "{label} missing");
        }
        assert_eq!(text(&all, "seconds since the load started").len(), 2);
        assert_eq!(text(&all, "warm-up").len(), 2, "shaded in both panels");
        assert!(s.contains("Pressure run r&lt;1&gt;: 0.0 msg/s delivered"));
        assert_inside(&s);
        assert_eq!(s, svg(&r), "the same report draws the same SVG");
    }

    #[test]
    fn the_load_stops_label_stays_inside() {
        let r = report();
        let s = svg(&r);
        let stops = texts(&s);
        let stops = text(&stops, "load stops");
        assert_eq!(stops.len(), 2, "in both panels");
        assert!(stops.iter().all(|t| t.anchor == "start"));
        // A load that stops near the right edge (a short drain) puts its label left of the line.
        let mut timeline = r.timeline[..6].to_vec();
        timeline.push(point(6.3, 0.3, (60, 63), 0, Some(50.0)));
        let late = svg(&Report { timeline, ..r });
        let all = texts(&late);
        assert!(text(&all, "load stops").iter().all(|t| t.anchor == "end"));
        assert_inside(&late);
    }

    #[test]
    fn marks_the_end_of_each_stage() {
        let staged = Report {
            stages: vec![crate::StageSpec {
                duration_seconds: 3,
                rate_percent: 250,
            }],
            ..report()
        };
        let s = svg(&staged);
        let all = texts(&s);
        assert_eq!(
            text(&all, "250 %").len(),
            2,
            "the stage's end, in both panels"
        );
        assert_inside(&s);
    }

    #[test]
    fn a_long_title_shrinks_and_an_empty_run_still_draws() {
        let r = Report {
            run_id: "a-very-long-run-identifier-from-a-cluster-0123456789".into(),
            verdict: "NotMeasured".into(),
            ..Report::default()
        };
        let s = svg(&r);
        assert_inside(&s);
        assert_eq!(text(&texts(&s), "no readings").len(), 2);
    }

    #[test]
    fn labels_switch_sides_at_the_edges() {
        assert!(matches!(
            label_place(100, 50, true, (0, 900)),
            (104, HPos::Left)
        ));
        assert!(matches!(
            label_place(880, 50, true, (0, 900)),
            (876, HPos::Right)
        ));
        assert!(matches!(
            label_place(100, 50, false, (0, 900)),
            (96, HPos::Right)
        ));
        assert!(matches!(
            label_place(20, 50, false, (0, 900)),
            (24, HPos::Left)
        ));
        assert_eq!(fit_px("abc", 900.0, 16.0), 16.0);
        assert!(fit_px(&"x".repeat(200), 772.0, 16.0) < 7.0);
    }

    #[test]
    fn points_from_readings() {
        assert_eq!(
            point(2.0, 0.5, (10, 15), 3, None).delivered_per_second,
            10.0
        );
        assert_eq!(point(2.0, 0.0, (10, 15), 3, None).delivered_per_second, 0.0);
    }
}
