//! The live progress line: a bar over the planned seconds and the running figures, redrawn in
//! place with `\r` on a terminal, printed as plain lines every ten seconds otherwise.

use std::io::{IsTerminal, Write};

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

/// The progress line for `live`, `width` bar cells.
pub fn line(live: &Live, width: usize) -> String {
    let frac = if live.total > 0.0 {
        (live.elapsed / live.total).clamp(0.0, 1.0)
    } else {
        1.0
    };
    let filled = (frac * width as f64).round() as usize;
    format!(
        "[{}{}] {:>4.0}/{:.0}s {:<7} gen {} sent {} deliv {} err {} {:.1} msg/s p99 {}",
        "#".repeat(filled),
        ".".repeat(width - filled.min(width)),
        live.elapsed.max(0.0),
        live.total,
        live.phase,
        live.generated,
        live.sent,
        live.delivered,
        live.errors,
        live.rate,
        live.p99_ms.map_or("-".into(), |v| format!("{v:.0} ms")),
    )
}

/// Draws progress lines on stderr.
#[derive(Debug)]
pub struct Progress {
    quiet: bool,
    tty: bool,
    last_plain: f64,
    drawn: bool,
}

impl Progress {
    /// A display; `quiet` draws nothing.
    pub fn new(quiet: bool) -> Self {
        Self {
            quiet,
            tty: std::io::stderr().is_terminal(),
            last_plain: f64::NEG_INFINITY,
            drawn: false,
        }
    }

    /// Shows `live`.
    pub fn update(&mut self, live: &Live) {
        if self.quiet {
            return;
        }
        let mut err = std::io::stderr().lock();
        if self.tty {
            let _ = write!(err, "\r\x1b[2K{}", line(live, 30));
            let _ = err.flush();
            self.drawn = true;
        } else if live.elapsed - self.last_plain >= 10.0 {
            let _ = writeln!(err, "{}", line(live, 30));
            self.last_plain = live.elapsed;
        }
    }

    /// Prints a message on its own line (keeping the progress line intact).
    pub fn say(&mut self, text: &str) {
        if self.quiet {
            return;
        }
        self.finish();
        eprintln!("{text}");
    }

    /// Ends the in-place line.
    pub fn finish(&mut self) {
        if self.drawn {
            eprintln!();
            self.drawn = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bar_and_figures() {
        let live = Live {
            phase: "load",
            elapsed: 15.0,
            total: 60.0,
            generated: 120,
            sent: 110,
            delivered: 109,
            errors: 1,
            rate: 7.25,
            p99_ms: Some(1234.4),
        };
        let s = line(&live, 8);
        assert!(s.starts_with("[##......]"), "{s}");
        assert!(s.contains("15/60s"), "{s}");
        assert!(
            s.contains("gen 120 sent 110 deliv 109 err 1 7.2 msg/s p99 1234 ms"),
            "{s}"
        );
        let done = Live {
            elapsed: 90.0,
            ..live
        };
        assert!(line(&done, 4).starts_with("[####]"));
    }
}
