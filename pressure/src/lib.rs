//! `pressure run`: the whole pressure test on one machine, from the same PressureTest file the
//! operator takes. The mail proxy (embedded SQLite or PostgreSQL), one simulated client per
//! tenant replica and the verifying SMTP sink (or an external SMTP server) run on loopback as
//! separate processes; the run drives the spec's load window, drains, and reports per tenant and
//! in total, with the threshold verdict, a JSON file and the chart as SVG and PNG.
//!
//! Modules, in the order a run uses them:
//! - [`cli`]: flags; [`input`]: the spec and the pre-flight checks; [`bins`]: finding programs;
//! - [`layout`]: ports, arguments, environment and the setup plan; [`children`]: processes;
//!   [`start`]: starting and awaiting them; [`forward`]: round-robin for multi-replica tenants;
//! - [`collect`]: reading figures (parsed by `mailproxy_proto::prom`); [`progress`]: the live line;
//! - [`report`]: the report as data (the types, the text and the SVG chart are `pressure_crds::report`, shared with the operator); [`chart_png`]: the same chart as PNG; [`run`]: the driver.

pub mod bins;
pub mod chart_png;
pub mod children;
pub mod cli;
pub mod collect;
pub mod forward;
pub mod input;
pub mod layout;
pub mod progress;
pub mod report;
pub mod run;
pub mod start;

/// Exit code: every threshold held and nothing was lost.
pub const EXIT_PASS: i32 = 0;
/// Exit code: a threshold failed, messages were lost, or the run was interrupted.
pub const EXIT_FAIL: i32 = 1;
/// Exit code: bad input or an infrastructure error.
pub const EXIT_ERROR: i32 = 2;

/// Seconds since the Unix epoch.
pub fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}
