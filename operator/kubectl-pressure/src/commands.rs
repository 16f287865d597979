//! The commands, each a few calls to [`Cluster`] and the shared report code of
//! `pressure_crds::report` and `pressure_crds::compare`.

use std::path::{Path, PathBuf};

use pressure_crds::compare;
use pressure_crds::report::{CHART_KEY, REPORT_KEY, Report, TIMELINE_KEY, render};

use crate::cli::{Cli, Command};
use crate::cluster::{Cluster, Stored};
use crate::error::{Error, Result};

/// How a command ended, when it did not fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Done {
    /// Done.
    Ok,
    /// A comparison found a regression.
    Regressed,
}

/// Runs the command of `cli`.
pub async fn run(cli: Cli) -> Result<Done> {
    let cluster = Cluster::connect(cli.namespace).await?;
    match cli.command {
        Command::Report {
            pressuretest,
            run,
            out,
            open,
        } => report(&cluster, &pressuretest, run, out, open).await,
        Command::Compare {
            pressuretest,
            with,
            throughput_drop_percent,
            p99_rise_percent,
            error_rate_rise_permille,
        } => {
            let pt = cluster.pt(&pressuretest).await?;
            let current = finished(cluster.report_of(&pt, None).await?)?;
            let (source, base) = baseline(&cluster, &with).await?;
            let mut tol = pt.spec.baseline.clone().unwrap_or_default().tolerance;
            if let Some(v) = throughput_drop_percent {
                tol.throughput_drop_percent = v;
            }
            if let Some(v) = p99_rise_percent {
                tol.p99_rise_percent = v;
            }
            if let Some(v) = error_rate_rise_permille {
                tol.error_rate_rise_permille = v;
            }
            let c = compare::compare(&current, &base, &source, &tol);
            println!("Run {} of PressureTest {pressuretest}", current.run_id);
            print!("{}", render::comparison(&c));
            Ok(if c.regressed {
                Done::Regressed
            } else {
                Done::Ok
            })
        }
        Command::Rerun { pressuretest } => {
            let pt = cluster.pt(&pressuretest).await?;
            let next = pt.spec.run_number + 1;
            cluster
                .patch_spec(
                    &pressuretest,
                    serde_json::json!({"runNumber": next, "abort": false}),
                )
                .await?;
            println!("pressuretest/{pressuretest}: run {next} requested");
            Ok(Done::Ok)
        }
        Command::Abort { pressuretest } => {
            cluster
                .patch_spec(&pressuretest, serde_json::json!({"abort": true}))
                .await?;
            println!("pressuretest/{pressuretest}: abort requested");
            Ok(Done::Ok)
        }
        Command::Bundle {
            pressuretest,
            output,
            log_lines,
        } => {
            let path =
                output.unwrap_or_else(|| PathBuf::from(format!("{pressuretest}-bundle.tar.gz")));
            let files = crate::bundle::collect(&cluster, &pressuretest, log_lines).await?;
            let bytes = crate::bundle::tarball(&files).map_err(|e| Error::file(&path, e))?;
            std::fs::write(&path, bytes).map_err(|e| Error::file(&path, e))?;
            println!("{} ({} files)", path.display(), files.len());
            Ok(Done::Ok)
        }
    }
}

/// `kubectl pressure report`.
async fn report(
    cluster: &Cluster,
    name: &str,
    run: Option<i32>,
    out: Option<PathBuf>,
    open: bool,
) -> Result<Done> {
    let pt = cluster.pt(name).await?;
    let stored = cluster.report_of(&pt, run).await?;
    let Some(r) = stored.report.clone() else {
        let points = stored.timeline.clone().unwrap_or_else(|| "[]".into());
        let dir = out.unwrap_or_else(|| PathBuf::from(&stored.name));
        write(&dir, TIMELINE_KEY, &points)?;
        println!(
            "The run is still going: its timeline so far is in {}",
            dir.join(TIMELINE_KEY).display()
        );
        return Ok(Done::Ok);
    };
    let dir = out.unwrap_or_else(|| PathBuf::from(&r.run_id));
    write(&dir, REPORT_KEY, &pretty(&r)?)?;
    let chart = dir.join(CHART_KEY);
    write(&dir, CHART_KEY, stored.chart.as_deref().unwrap_or_default())?;
    print!("{}", render::human(&r));
    println!(
        "Report: {}  Chart: {}",
        dir.join(REPORT_KEY).display(),
        chart.display()
    );
    if open {
        let opener = if cfg!(target_os = "macos") {
            "open"
        } else {
            "xdg-open"
        };
        if let Err(e) = std::process::Command::new(opener).arg(&chart).spawn() {
            eprintln!("cannot open the chart with {opener}: {e}");
        }
    }
    Ok(Done::Ok)
}

/// The baseline named by `--with`: a file, a report ConfigMap (`cm/NAME`) or a PressureTest.
async fn baseline(cluster: &Cluster, with: &str) -> Result<(String, Report)> {
    let path = Path::new(with);
    if path.is_file() {
        let text = std::fs::read_to_string(path).map_err(|e| Error::file(path, e))?;
        let r = serde_json::from_str(&text)
            .map_err(|e| Error::file(path, format!("not a report.json: {e}")))?;
        return Ok((with.to_string(), r));
    }
    if let Some(cm) = with
        .strip_prefix("cm/")
        .or_else(|| with.strip_prefix("configmap/"))
    {
        let r = finished(cluster.report_cm(cm).await?)?;
        return Ok((format!("ConfigMap {cm}"), r));
    }
    let other = cluster.pt(with).await?;
    let stored = cluster.report_of(&other, None).await?;
    let source = format!("ConfigMap {}", stored.name);
    Ok((source, finished(stored)?))
}

/// The report of a finished run.
fn finished(s: Stored) -> Result<Report> {
    s.report.ok_or_else(|| {
        Error::NoReport(format!(
            "{} holds no report.json yet: that run has no verdict",
            s.name
        ))
    })
}

fn pretty(r: &Report) -> Result<String> {
    serde_json::to_string_pretty(r).map_err(|e| Error::NoReport(e.to_string()))
}

fn write(dir: &Path, name: &str, text: &str) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::file(dir, e))?;
    let path = dir.join(name);
    std::fs::write(&path, text).map_err(|e| Error::file(&path, e))
}
