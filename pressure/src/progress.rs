//! The live progress of a local run: a bar over the planned seconds and the running figures
//! (phase, generated, sent, delivered, errors, delivered per second, p99). On a terminal it is an
//! `indicatif` bar redrawn in place, with the planned time left; messages print above it. When
//! stderr is not a terminal (a CI log, a pipe) the same figures go out as a plain line every ten
//! seconds, with no carriage return or escape code.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{HumanDuration, ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};

/// The running figures shown each second.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Live {
    /// Phase word (`warm-up`, `load`, `drain`).
    pub phase: &'static str,
    /// Seconds since the load started.
    pub elapsed: f64,
    /// Planned load seconds (warm-up plus measured).
    pub total: f64,
    /// Messages generated.
    pub generated: u64,
    /// Messages sent by the proxy.
    pub sent: u64,
    /// Messages delivered.
    pub delivered: u64,
    /// Error reports.
    pub errors: u64,
    /// Delivered per second over the last second.
    pub rate: f64,
    /// p99 of the last second's deliveries, ms.
    pub p99_ms: Option<f64>,
}

/// Bar cells of the plain line, as many as the terminal bar's (`{bar:30}` in [`TEMPLATE`]).
const WIDTH: usize = 30;

/// The terminal bar: the cells, the seconds (position over length), the figures, the time left.
const TEMPLATE: &str = "[{bar:30}] {pos:>4}/{len}s {msg} {left} left";

/// Seconds between two plain lines.
const PLAIN_EVERY: f64 = 10.0;

/// The figures after the seconds: phase, counts, delivery rate and p99.
pub fn figures(live: &Live) -> String {
    format!(
        "{:<7} gen {} sent {} deliv {} err {} {:.1} msg/s p99 {}",
        live.phase,
        live.generated,
        live.sent,
        live.delivered,
        live.errors,
        live.rate,
        live.p99_ms.map_or("-".into(), |v| format!("{v:.0} ms")),
    )
}

/// The plain progress line for `live` (what a log gets), `width` bar cells.
pub fn line(live: &Live, width: usize) -> String {
    let frac = if live.total > 0.0 {
        (live.elapsed / live.total).clamp(0.0, 1.0)
    } else {
        1.0
    };
    // Whole cells only, as the terminal bar draws them.
    let filled = ((frac * width as f64).floor() as usize).min(width);
    format!(
        "[{}{}] {:>4.0}/{:.0}s {}",
        "#".repeat(filled),
        ".".repeat(width - filled),
        live.elapsed.max(0.0),
        live.total,
        figures(live),
    )
}

/// The bar's length and position for `live`: planned and elapsed whole seconds.
fn seconds(live: &Live) -> (u64, u64) {
    (
        live.total.max(0.0).round() as u64,
        live.elapsed.max(0.0).round() as u64,
    )
}

/// A terminal bar drawing `live` to `target`.
fn bar(target: ProgressDrawTarget, live: &Live) -> ProgressBar {
    // The template is a constant; the default bar is only a fallback should it ever not parse.
    let style = ProgressStyle::with_template(TEMPLATE)
        .map_or_else(|_| ProgressStyle::default_bar(), |s| s.progress_chars("#."))
        // The planned seconds left, exact: indicatif's `{eta}` estimates a rate of progress,
        // which the seconds of waiting before the load starts would skew.
        .with_key("left", |s: &ProgressState, w: &mut dyn std::fmt::Write| {
            let left = s.len().unwrap_or(0).saturating_sub(s.pos());
            let _ = write!(w, "{:#}", HumanDuration(Duration::from_secs(left)));
        });
    let (len, pos) = seconds(live);
    // The builders do not draw: the first frame already has the figures.
    let b = ProgressBar::with_draw_target(Some(len), target)
        .with_style(style)
        .with_position(pos)
        .with_message(figures(live));
    b.tick();
    b
}

/// Moves `bar` to `live`: the seconds are the position, the figures the message.
fn show(bar: &ProgressBar, live: &Live) {
    let (len, pos) = seconds(live);
    if bar.length() != Some(len) {
        bar.set_length(len);
    }
    bar.set_position(pos);
    // Last: the message redraws with the new position.
    bar.set_message(figures(live));
}

#[derive(Debug)]
enum Mode {
    Quiet,
    /// Stderr is a terminal; the bar appears with the first figures.
    Bar(Option<ProgressBar>),
    /// Not a terminal: the elapsed second of the last plain line.
    Plain(f64),
}

/// Draws the progress on stderr.
#[derive(Debug)]
pub struct Progress {
    mode: Mode,
}

impl Progress {
    /// A display; `quiet` draws nothing.
    pub fn new(quiet: bool) -> Self {
        let mode = if quiet {
            Mode::Quiet
        } else if std::io::stderr().is_terminal() {
            Mode::Bar(None)
        } else {
            Mode::Plain(f64::NEG_INFINITY)
        };
        Self { mode }
    }

    /// Shows `live`.
    pub fn update(&mut self, live: &Live) {
        match &mut self.mode {
            Mode::Quiet => {}
            Mode::Bar(Some(b)) => show(b, live),
            Mode::Bar(b) => *b = Some(bar(ProgressDrawTarget::stderr(), live)),
            Mode::Plain(last) => {
                if live.elapsed - *last >= PLAIN_EVERY {
                    eprintln!("{}", line(live, WIDTH));
                    *last = live.elapsed;
                }
            }
        }
    }

    /// Prints a message on its own line (above the bar, which stays).
    pub fn say(&mut self, text: &str) {
        match &self.mode {
            Mode::Quiet => {}
            Mode::Bar(Some(b)) => b.suspend(|| eprintln!("{text}")),
            Mode::Bar(None) | Mode::Plain(_) => eprintln!("{text}"),
        }
    }

    /// Leaves the bar as last drawn; what follows prints below it.
    pub fn finish(&mut self) {
        if let Mode::Bar(b) = &mut self.mode
            && let Some(b) = b.take()
        {
            b.abandon();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use indicatif::TermLike;

    use super::*;

    fn live() -> Live {
        Live {
            phase: "load",
            elapsed: 15.0,
            total: 60.0,
            generated: 120,
            sent: 110,
            delivered: 109,
            errors: 1,
            rate: 7.25,
            p99_ms: Some(1234.4),
        }
    }

    #[test]
    fn bar_and_figures() {
        let live = live();
        let s = line(&live, 8);
        assert!(s.starts_with("[##......]"), "{s}");
        assert!(s.contains("15/60s"), "{s}");
        assert!(
            s.contains("gen 120 sent 110 deliv 109 err 1 7.2 msg/s p99 1234 ms"),
            "{s}"
        );
        assert!(!s.contains(['\r', '\x1b']), "{s}");
        let done = Live {
            elapsed: 90.0,
            ..live
        };
        assert!(line(&done, 4).starts_with("[####]   90/60s load"));
        assert!(line(&live, 30).starts_with(&format!("[{}{}]", "#".repeat(7), ".".repeat(23))));
    }

    /// A terminal that records what is written to it.
    #[derive(Debug, Clone, Default)]
    struct Screen(Arc<Mutex<String>>);

    impl Screen {
        fn write(&self, s: &str) -> std::io::Result<()> {
            self.0.lock().expect("screen").push_str(s);
            Ok(())
        }

        /// The last line drawn, without the filler spaces.
        fn last_line(&self) -> String {
            let all = self.0.lock().expect("screen").clone();
            all.split(['\r', '\n'])
                .map(str::trim_end)
                .rfind(|l| !l.is_empty())
                .unwrap_or_default()
                .to_string()
        }
    }

    impl TermLike for Screen {
        fn width(&self) -> u16 {
            200
        }
        fn move_cursor_up(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn move_cursor_down(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn move_cursor_right(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn move_cursor_left(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn write_line(&self, s: &str) -> std::io::Result<()> {
            self.write(&format!("{s}\n"))
        }
        fn write_str(&self, s: &str) -> std::io::Result<()> {
            self.write(s)
        }
        fn clear_line(&self) -> std::io::Result<()> {
            self.write("\r")
        }
        fn flush(&self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// The bar's line on a terminal after `lives`.
    fn drawn(lives: &[Live]) -> String {
        let screen = Screen::default();
        let target = || ProgressDrawTarget::term_like(Box::new(screen.clone()));
        let Some((first, rest)) = lives.split_first() else {
            return String::new();
        };
        let b = bar(target(), first);
        for live in rest {
            show(&b, live);
        }
        b.abandon();
        screen.last_line()
    }

    #[test]
    fn terminal_bar_shows_the_same_figures_and_the_time_left() {
        let s = drawn(&[live()]);
        assert!(
            s.starts_with(&format!("[{}{}]", "#".repeat(7), ".".repeat(23))),
            "{s}"
        );
        assert!(
            s.contains(
                "  15/60s load    gen 120 sent 110 deliv 109 err 1 7.2 msg/s p99 1234 ms 45s left"
            ),
            "{s}"
        );
        // Then draining past the planned seconds: a full bar, the real seconds, nothing left.
        let drain = Live {
            phase: "drain",
            elapsed: 75.0,
            delivered: 120,
            ..live()
        };
        let s = drawn(&[live(), drain]);
        assert!(s.starts_with(&format!("[{}]", "#".repeat(30))), "{s}");
        assert!(
            s.contains("  75/60s drain   gen 120 sent 110 deliv 120 ") && s.ends_with("ms 0s left"),
            "{s}"
        );
    }
}
