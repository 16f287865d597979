//! The operator's adapter over [`pressure_crds::verdict`], the one verdict shared with the local
//! runner: the status's figures (the baseline at the warm-up's end, the figures at the load's
//! stop, the last figures after the drain) become its [`Window`] and [`Measured`] figures.

use pressure_crds::verdict::{Measured, Verdict, Window};
use pressure_crds::{Figures, ThresholdsSpec};

pub use pressure_crds::verdict::permille;

/// The measured window: from the baseline (or, without one, from zero at `load_start_at`) to
/// the load's stop (or the last figures when no reading came after it).
pub fn window<'a>(
    baseline: Option<&'a Figures>,
    load_end: Option<&'a Figures>,
    last: &'a Figures,
    load_start_at: i64,
) -> Window<'a> {
    let end = load_end.unwrap_or(last);
    let since = baseline.map_or(load_start_at, |b| b.observed_at);
    Window {
        start: baseline,
        end,
        seconds: (end.observed_at - since) as f64,
    }
}

/// Every threshold's outcome, the `Succeeded` reason and its message.
pub fn evaluate(
    th: &ThresholdsSpec,
    last: &Figures,
    baseline: Option<&Figures>,
    load_end: Option<&Figures>,
    load_start_at: i64,
) -> Verdict {
    let w = window(baseline, load_end, last, load_start_at);
    pressure_crds::verdict::evaluate(th, &Measured::from_figures(last, w))
}

#[cfg(test)]
#[path = "verdict/tests.rs"]
mod tests;
