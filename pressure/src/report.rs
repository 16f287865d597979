//! The report's figures, computed from snapshots by pure functions: per tenant and in total,
//! generated (clients), sent (proxy), delivered (sink), errors (error reports at the clients),
//! deferrals, lost, duplicates, cache hit rate, throughput over the measured window and latency;
//! then the thresholds and the verdict through [`pressure_crds::verdict`], the one the operator
//! uses: each snapshot is folded by [`pressure_crds::aggregate`], as the operator folds its pods'
//! answers, into the same [`Figures`].

use std::collections::BTreeMap;

use pressure_crds::aggregate::aggregate;
pub use pressure_crds::report::{CacheFigures, Latency, Line, Point, Report};
use pressure_crds::verdict::{self, Measured, Verdict, Window, permille};
use pressure_crds::{Figures, TenantFigures, ThresholdsSpec};

use crate::collect::{Snapshot, error_reports};
use mailproxy_proto::prom::quantile;

/// Verdict when the user stopped the run (Ctrl-C): the same reason as an aborted run in a
/// cluster.
pub use pressure_crds::verdict::ABORTED as ABORTED_BY_USER;

/// What the run was, beyond its snapshots.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Facts {
    /// Run id.
    pub run_id: String,
    /// Where the spec came from.
    pub source: String,
    /// `sqlite` or `postgresql`.
    pub database: String,
    /// (tenant, client replicas), in the spec's order.
    pub tenants: Vec<(String, usize)>,
    /// Delivering to an external SMTP server (no sink verification).
    pub external_smtp: bool,
    /// Planned measured seconds.
    pub duration_seconds: i32,
    /// Planned warm-up seconds.
    pub warmup_seconds: i32,
    /// The user stopped the run.
    pub interrupted: bool,
    /// Every generated message got a final report before the drain deadline.
    pub drained: bool,
    /// Seconds spent draining.
    pub drain_seconds: f64,
    /// The proxy's VmHWM, bytes.
    pub proxy_peak_memory_bytes: Option<u64>,
    /// CPU seconds by process.
    pub cpu_seconds: BTreeMap<String, f64>,
    /// The spec's thresholds.
    pub thresholds: ThresholdsSpec,
    /// The spec's load stages.
    pub stages: Vec<pressure_crds::StageSpec>,
}

/// Builds the report from the final snapshot and the measured window's ends.
pub fn build(
    facts: &Facts,
    last: &Snapshot,
    window: (Option<&Snapshot>, &Snapshot),
    timeline: Vec<Point>,
) -> Report {
    let (start, end) = window;
    let t0 = start.map_or(0.0, |s| s.t);
    let measured = (end.t - t0).max(0.0);
    let ext = facts.external_smtp;
    let mut tenants: Vec<Line> = facts
        .tenants
        .iter()
        .map(|(name, n)| {
            let mut l = line(last, Some(name), ext);
            l.clients = *n;
            let d = delivered(end, Some(name), ext)
                - start.map_or(0, |s| delivered(s, Some(name), ext));
            l.throughput_per_second = rate(d, measured);
            l
        })
        .collect();
    tenants.retain(|l| !l.name.is_empty());
    let mut total = line(last, None, ext);
    total.name = "total".into();
    total.clients = facts.tenants.iter().map(|t| t.1).sum();
    let d = delivered(end, None, ext) - start.map_or(0, |s| delivered(s, None, ext));
    total.throughput_per_second = rate(d, measured);
    let mut figures = snapshot_figures(last, ext);
    figures.rate_per_second = total.throughput_per_second.floor() as i64;
    let (judged, m) = judge(&facts.thresholds, &figures, (start, end), measured, ext);
    figures.error_rate_permille = m.error_rate_permille;
    let (verdict_reason, message) = if facts.interrupted {
        (ABORTED_BY_USER, "stopped by the user".to_string())
    } else {
        (judged.reason, judged.message)
    };
    let thresholds = judged.results;
    Report {
        run_id: facts.run_id.clone(),
        source: facts.source.clone(),
        database: facts.database.clone(),
        delivered_source: if ext { "proxy" } else { "sink" }.into(),
        latency_source: if ext { "proxy" } else { "sink" }.into(),
        duration_seconds: facts.duration_seconds,
        warmup_seconds: facts.warmup_seconds,
        measured_seconds: measured,
        drain_seconds: facts.drain_seconds,
        drained: facts.drained,
        interrupted: facts.interrupted,
        per_tenant: tenants.iter().map(tenant_figures).collect(),
        proxy_cache: cache(last),
        proxy_peak_memory_bytes: facts.proxy_peak_memory_bytes,
        cpu_seconds: facts.cpu_seconds.clone(),
        passed: verdict_reason == verdict::THRESHOLDS_PASSED,
        verdict: verdict_reason.into(),
        message,
        thresholds,
        figures,
        total,
        tenants,
        stages: facts.stages.clone(),
        // One proxy process: no throughput by replica count.
        by_replicas: Vec::new(),
        timeline,
        comparison: None,
    }
}

fn rate(count: u64, seconds: f64) -> f64 {
    if seconds > 0.0 {
        (count as f64 / seconds * 10.0).round() / 10.0
    } else {
        0.0
    }
}

/// Delivered messages of a tenant (or all) in a snapshot.
pub fn delivered(s: &Snapshot, tenant: Option<&str>, external: bool) -> u64 {
    if external {
        return pick(&s.proxy.sent, tenant);
    }
    match (&s.sink, tenant) {
        (None, _) => 0,
        (Some(k), None) => k.total.received,
        (Some(k), Some(t)) => k.tenants.get(t).map_or(0, |x| x.received),
    }
}

fn pick(map: &BTreeMap<String, f64>, tenant: Option<&str>) -> u64 {
    let v: f64 = map
        .iter()
        .filter(|(k, _)| tenant.is_none_or(|t| t == k.as_str()))
        .map(|(_, v)| v)
        .sum();
    v.round().max(0.0) as u64
}

fn line(s: &Snapshot, tenant: Option<&str>, ext: bool) -> Line {
    let clients: Vec<_> = s
        .clients
        .iter()
        .filter(|c| tenant.is_none_or(|t| t == c.0))
        .map(|c| &c.1)
        .collect();
    let generated: u64 = clients.iter().map(|c| c.messages_generated).sum();
    let errors: u64 = clients.iter().map(|c| error_reports(c)).sum();
    let delivered = delivered(s, tenant, ext);
    let sink = s.sink.as_ref().filter(|_| !ext).map(|k| match tenant {
        None => k.total.clone(),
        Some(t) => k.tenants.get(t).cloned().unwrap_or_default(),
    });
    let hit: Vec<f64> = clients.iter().map(|c| c.cache_hit_rate).collect();
    Line {
        name: tenant.unwrap_or_default().to_string(),
        clients: clients.len(),
        generated,
        sent: pick(&s.proxy.sent, tenant),
        delivered,
        errors,
        deferred: pick(&s.proxy.deferred, tenant),
        lost: generated.saturating_sub(
            delivered.saturating_sub(sink.as_ref().map_or(0, |k| k.duplicates)) + errors,
        ),
        duplicates: sink.as_ref().map(|k| k.duplicates),
        attachment_mismatches: sink.as_ref().map(|k| k.attachment_mismatches),
        bytes_delivered: sink.as_ref().map(|k| k.bytes),
        cache_hit_rate_permille: (!hit.is_empty())
            .then(|| (hit.iter().sum::<f64>() / hit.len() as f64 * 1000.0).round() as i64),
        throughput_per_second: 0.0,
        latency_ms: match &sink {
            Some(k) => (k.latency_ms.count > 0).then_some(Latency {
                p50: k.latency_ms.p50,
                p95: k.latency_ms.p95,
                p99: k.latency_ms.p99,
                max: Some(k.latency_ms.max),
            }),
            None if tenant.is_none() => proxy_latency(s),
            None => None,
        },
    }
}

fn proxy_latency(s: &Snapshot) -> Option<Latency> {
    let b = &s.proxy.latency_buckets;
    let ms = |q| quantile(b, q).map(|v| v * 1000.0);
    Some(Latency {
        p50: ms(0.5)?,
        p95: ms(0.95)?,
        p99: ms(0.99)?,
        max: None,
    })
}

fn cache(s: &Snapshot) -> CacheFigures {
    let hits = s.proxy.cache_hits.round() as u64;
    let misses = s.proxy.cache_misses.round() as u64;
    CacheFigures {
        hits,
        misses,
        hit_rate_permille: permille(hits as i64, (hits + misses) as i64),
    }
}

/// The verdict of [`pressure_crds::verdict`] on the run's figures: `last` after the drain, the
/// window from its start and end snapshots.
fn judge(
    th: &ThresholdsSpec,
    last: &Figures,
    window: (Option<&Snapshot>, &Snapshot),
    measured_seconds: f64,
    ext: bool,
) -> (Verdict, Measured) {
    let start = window.0.map(|s| snapshot_figures(s, ext));
    let end = snapshot_figures(window.1, ext);
    let w = Window {
        start: start.as_ref(),
        end: &end,
        seconds: measured_seconds,
    };
    let m = Measured::from_figures(last, w);
    (verdict::evaluate(th, &m), m)
}

/// The totals of one snapshot, folded by [`aggregate`] as the operator folds its pods' answers
/// (without the sink's figures when delivering to an external SMTP server).
fn snapshot_figures(s: &Snapshot, ext: bool) -> Figures {
    let sink = s.sink.as_ref().filter(|_| !ext);
    let now = crate::unix_now() as i64;
    aggregate(std::slice::from_ref(&s.proxy), &s.clients, sink, now).figures
}

fn tenant_figures(l: &Line) -> TenantFigures {
    TenantFigures {
        name: l.name.clone(),
        clients: l.clients as i32,
        generated: l.generated as i64,
        sent: l.sent as i64,
        errors: l.errors as i64,
        delivered: l.duplicates.map(|_| l.delivered as i64),
        latency_p99_ms: l.latency_ms.map(|x| x.p99.round() as i64),
        cache_hit_rate_permille: l.cache_hit_rate_permille,
    }
}

#[cfg(test)]
#[path = "report/tests.rs"]
mod tests;
