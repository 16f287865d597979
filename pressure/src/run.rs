//! `pressure run`: check the input, start everything, publish the load window, sample the
//! figures every second (progress and timeline), drain, stop everything, report. Ctrl-C or
//! SIGTERM at any point stops the children and still reports what was measured.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use tokio::sync::watch;

use crate::cli::{Output, RunArgs};
use crate::collect::{Collector, Endpoints, Snapshot};
use crate::input::{self, InputError};
use crate::layout::{self, Database, Window};
use crate::progress::{Live, Progress};
use crate::report::{self, Facts, Point, Report};
use crate::start::{self, Plan, Started};
use crate::unix_now;
use pressure_crds::compare;
use pressure_crds::report::{chart, render};

/// Seconds between the end of setup and `START_AT`.
const LEAD_SECONDS: u64 = 3;

/// How a run ended.
#[derive(Debug)]
pub enum Outcome {
    /// A report (pass or fail).
    Report(Box<Report>),
    /// Bad input: nothing was started.
    Input(InputError),
    /// Something broke while running.
    Infra(anyhow::Error),
}

/// Runs the test; the caller maps the outcome to an exit code.
pub async fn run(args: RunArgs) -> Outcome {
    let (spec, source) = match input::load_spec(&args) {
        Ok(s) => s,
        Err(e) => return Outcome::Input(e),
    };
    let checks = || -> Result<_, InputError> {
        input::check_port("--proxy-port", args.proxy_port)?;
        input::check_port("--sink-port", args.sink_port)?;
        if let Some(url) = &args.database_url {
            input::check_database_url(url)?;
        }
        let smtp = args.smtp.as_deref().map(input::check_smtp).transpose()?;
        let bins = crate::bins::locate(args.bin_dir.as_deref(), args.quiet)?;
        Ok((smtp, bins))
    };
    let (smtp, bins) = match checks() {
        Ok(c) => c,
        Err(e) => return Outcome::Input(e),
    };
    let baseline = match args
        .baseline
        .as_deref()
        .map(input::load_baseline)
        .transpose()
    {
        Ok(b) => b.map(|r| (args.baseline.clone().unwrap_or_default(), r)),
        Err(e) => return Outcome::Input(e),
    };
    let run_id = format!("local-{}", unix_now() as u64);
    let out_dir = args
        .output_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from("pressure-results").join(&run_id));
    if let Err(e) = std::fs::create_dir_all(&out_dir) {
        return Outcome::Input(InputError::Flag {
            flag: "--output-dir",
            reason: format!("cannot create {}: {e}", out_dir.display()),
        });
    }
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(async move {
        mailproxy_proto::signals::stop_signal().await;
        let _ = stop_tx.send(true);
    });
    let ctx = Ctx {
        args,
        spec,
        source,
        smtp,
        run_id,
        out_dir,
        stop: stop_rx,
    };
    match drive(&ctx, &bins).await {
        Ok(mut r) => {
            if let Some((path, base)) = &baseline {
                let tol = ctx.spec.baseline.clone().unwrap_or_default().tolerance;
                let c = compare::compare(&r, base, &path.display().to_string(), &tol);
                r.comparison = Some(c);
            }
            match ctx.write_outputs(&r) {
                Ok(()) => Outcome::Report(Box::new(r)),
                Err(e) => Outcome::Infra(e),
            }
        }
        Err(e) => Outcome::Infra(e),
    }
}

struct Ctx {
    args: RunArgs,
    spec: pressure_crds::PressureTestSpec,
    source: String,
    smtp: Option<std::net::SocketAddr>,
    run_id: String,
    out_dir: PathBuf,
    stop: watch::Receiver<bool>,
}

async fn drive(ctx: &Ctx, bins: &crate::bins::Binaries) -> anyhow::Result<Report> {
    let tmp = tempfile::Builder::new()
        .prefix("pressure-run-")
        .tempdir()
        .context("cannot create a temporary directory")?;
    let mut progress = Progress::new(ctx.args.quiet);
    let port = |p: u16| if p == 0 { layout::free_port() } else { Ok(p) };
    let plan = Plan {
        spec: &ctx.spec,
        bins,
        tmp: tmp.path(),
        db: ctx
            .args
            .database_url
            .clone()
            .map_or(Database::Sqlite, Database::Postgres),
        smtp: ctx.smtp,
        proxy_port: port(ctx.args.proxy_port)?,
        sink_port: port(ctx.args.sink_port)?,
        token: format!("{:032x}", rand::random::<u128>()),
        run_id: ctx.run_id.clone(),
    };
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .no_proxy()
        .build()?;
    progress.say(&format!(
        "Starting {} on loopback (logs in {})...",
        if ctx.smtp.is_some() {
            "the proxy"
        } else {
            "the sink and the proxy"
        },
        tmp.path().display()
    ));
    for note in input::local_notes(&ctx.spec, ctx.smtp.is_some()) {
        progress.say(&format!("Note: {note}."));
    }
    let mut started = interruptible(ctx, start::infrastructure(&plan, &http)).await?;
    let tenants = layout::tenants(&ctx.spec)?;
    let load = (ctx.spec.warmup_seconds + ctx.spec.duration_seconds).max(1) as u64;
    let start_at = unix_now().ceil() as u64 + LEAD_SECONDS + 2;
    let w = Window {
        start_at,
        stop_at: start_at + load,
        dnd_max: layout::dnd_max_seconds(load),
    };
    let n: usize = tenants.iter().map(|t| t.clients.len()).sum();
    progress.say(&format!(
        "Starting {n} simulated clients and registering {} tenants...",
        tenants.len()
    ));
    let setup = async {
        start::clients(&plan, &mut started, &tenants, &w, &http, &ctx.stop).await?;
        start::setup(&plan, &started, &tenants).await
    };
    let result = interruptible(ctx, setup).await;
    let result = match result {
        Ok(()) => measure(ctx, &mut started, &tenants, &w, &mut progress).await,
        Err(e) => Err(e),
    };
    started.children.stop_all().await;
    progress.finish();
    if ctx.args.keep_temp {
        let kept = tmp.keep();
        eprintln!("Kept the run's temporary directory: {}", kept.display());
    }
    result
}

async fn interruptible<T>(
    ctx: &Ctx,
    fut: impl std::future::Future<Output = anyhow::Result<T>>,
) -> anyhow::Result<T> {
    let mut stop = ctx.stop.clone();
    tokio::select! {
        r = fut => r,
        _ = stop.wait_for(|s| *s) => anyhow::bail!("interrupted before the load started; everything was stopped"),
    }
}

/// The sampling loop through load and drain, then the report.
async fn measure(
    ctx: &Ctx,
    started: &mut Started,
    tenants: &[layout::TenantSlot],
    w: &Window,
    progress: &mut Progress,
) -> anyhow::Result<Report> {
    let collector = Collector::new(Endpoints {
        proxy: started.proxy_url.clone(),
        clients: tenants
            .iter()
            .flat_map(|t| {
                t.clients
                    .iter()
                    .map(|c| (c.tenant.clone(), format!("http://127.0.0.1:{}", c.port)))
            })
            .collect(),
        sink: started.sink_http.clone(),
        token: started.token.clone(),
    })?;
    let warm = f64::from(ctx.spec.warmup_seconds);
    let load = (w.stop_at - w.start_at) as f64;
    let drain_limit = f64::from(ctx.spec.timeouts.drain_seconds.max(10));
    let mut s = Sampler::new(ctx.smtp.is_some());
    let mut stop = ctx.stop.clone();
    let mut interrupted = false;
    let mut drained = false;
    loop {
        let t = unix_now() - w.start_at as f64;
        let snap = collector.read(t, s.prev.as_ref()).await;
        if t >= warm && s.window_start.is_none() {
            s.window_start = Some(snap.clone());
        }
        if t >= load && s.window_end.is_none() {
            s.window_end = Some(snap.clone());
        }
        let phase = if t < 0.0 {
            "waiting"
        } else if t < warm {
            "warm-up"
        } else if t < load {
            "load"
        } else {
            "drain"
        };
        let live = s.push(snap, phase, load);
        progress.update(&live);
        if let Some(why) = started.children.exited() {
            anyhow::bail!("{why}");
        }
        if t >= load {
            let last = s.prev.as_ref().map(Snapshot::drained).unwrap_or(false);
            if last || t - load >= drain_limit {
                drained = last;
                break;
            }
        }
        let next = tokio::time::sleep(Duration::from_secs(1));
        tokio::select! {
            _ = next => {},
            _ = stop.wait_for(|s| *s) => { interrupted = true; break; }
        }
    }
    let t = unix_now() - w.start_at as f64;
    let last = collector.read(t, s.prev.as_ref()).await;
    let facts = Facts {
        run_id: ctx.run_id.clone(),
        source: ctx.source.clone(),
        database: if ctx.args.database_url.is_some() {
            "postgresql"
        } else {
            "sqlite"
        }
        .into(),
        tenants: tenants
            .iter()
            .map(|t| (t.name.clone(), t.clients.len()))
            .collect(),
        external_smtp: ctx.smtp.is_some(),
        duration_seconds: ctx.spec.duration_seconds,
        warmup_seconds: ctx.spec.warmup_seconds,
        interrupted,
        drained,
        drain_seconds: (t - load).max(0.0),
        proxy_peak_memory_bytes: crate::children::peak_rss_bytes(started.proxy_pid),
        cpu_seconds: cpu(started),
        thresholds: ctx.spec.thresholds.clone(),
        stages: ctx.spec.stages.clone(),
    };
    let end = s.window_end.clone().unwrap_or_else(|| last.clone());
    Ok(report::build(
        &facts,
        &last,
        (s.window_start.as_ref(), &end),
        s.timeline,
    ))
}

fn cpu(started: &Started) -> std::collections::BTreeMap<String, f64> {
    let mut m = std::collections::BTreeMap::new();
    if let Some(c) = crate::children::cpu_seconds(started.proxy_pid) {
        m.insert("proxy".to_string(), c);
    }
    if let Some(c) = started.sink_pid.and_then(crate::children::cpu_seconds) {
        m.insert("sink".to_string(), c);
    }
    m
}

/// Consecutive snapshots folded into the timeline and the live line.
struct Sampler {
    external: bool,
    prev: Option<Snapshot>,
    window_start: Option<Snapshot>,
    window_end: Option<Snapshot>,
    timeline: Vec<Point>,
}

impl Sampler {
    fn new(external: bool) -> Self {
        Self {
            external,
            prev: None,
            window_start: None,
            window_end: None,
            timeline: Vec::new(),
        }
    }

    fn push(&mut self, snap: Snapshot, phase: &'static str, load: f64) -> Live {
        let deliv = |s: &Snapshot| report::delivered(s, None, self.external);
        let buckets = |s: &Snapshot| {
            if self.external {
                s.proxy.latency_buckets.clone()
            } else {
                s.sink_buckets.clone()
            }
        };
        let (d0, t0, b0) = self
            .prev
            .as_ref()
            .map_or((deliv(&snap), snap.t, Vec::new()), |p| {
                (deliv(p), p.t, buckets(p))
            });
        let window = mailproxy_proto::prom::bucket_delta(&buckets(&snap), &b0);
        let p99 = mailproxy_proto::prom::quantile(&window, 0.99).map(|v| (v * 1000.0).round());
        let point = chart::point(
            snap.t,
            snap.t - t0,
            (d0, deliv(&snap)),
            snap.generated(),
            p99,
        );
        if snap.t >= 0.0 {
            self.timeline.push(point);
        }
        let live = Live {
            phase,
            elapsed: snap.t,
            total: load,
            generated: snap.generated(),
            sent: snap.sent().round() as u64,
            delivered: deliv(&snap),
            errors: snap.error_reports(),
            rate: point.delivered_per_second,
            p99_ms: p99,
        };
        self.prev = Some(snap);
        live
    }
}

impl Ctx {
    fn write_outputs(&self, r: &Report) -> anyhow::Result<()> {
        let json = serde_json::to_string_pretty(r)?;
        let default_json = self.out_dir.join("report.json");
        std::fs::write(&default_json, &json)
            .with_context(|| format!("cannot write {}", default_json.display()))?;
        if let Some(p) = &self.args.json {
            std::fs::write(p, &json).with_context(|| format!("cannot write {}", p.display()))?;
        }
        let chart_path = self
            .args
            .chart
            .clone()
            .unwrap_or_else(|| self.out_dir.join("pressure-report.svg"));
        std::fs::write(&chart_path, chart::svg(r))
            .with_context(|| format!("cannot write {}", chart_path.display()))?;
        let png_path = crate::chart_png::path_beside(&chart_path);
        crate::chart_png::write(r, &png_path)?;
        match self.args.output {
            Output::Json => println!("{json}"),
            Output::Human => {
                print!("{}", render::human(r));
                println!(
                    "Report: {}  Chart: {} ({})",
                    self.args.json.as_ref().unwrap_or(&default_json).display(),
                    chart_path.display(),
                    png_path.display()
                );
            }
        }
        Ok(())
    }
}
