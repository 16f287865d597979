//! Counters of a simulated client: the resettable figures behind `/stats` (the seed's fields and
//! rounding; README `serve`) and the monotonic Prometheus families behind `/metrics`.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Instant;

use mailproxy_proto::stats::ClientStatsV1;
use mailproxy_proto::sync::DeliveryReportV1;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

use super::profile::ServeConfig;

/// Resettable counters (`POST /reset-stats`).
#[derive(Debug, Default)]
struct Counters {
    sync_calls: AtomicU64,
    reports_received: AtomicU64,
    messages_generated: AtomicU64,
    attachments_served: AtomicU64,
    attachment_bytes_served: AtomicU64,
    cache_hits: AtomicU64,
    cache_misses: AtomicU64,
    dnd_periods: AtomicU64,
    errors: AtomicU64,
    by_type: Mutex<BTreeMap<String, u64>>,
    finalized: Mutex<HashSet<String>>,
}

/// Monotonic Prometheus families, prefixed `client_sim_`.
#[derive(Debug, Default)]
struct Metrics {
    sync_calls: Counter,
    reports: Family<Vec<(String, String)>, Counter>,
    messages_generated: Counter,
    attachments_served: Counter,
    attachment_bytes_served: Counter,
    dnd_periods: Counter,
    errors: Counter,
}

/// Everything a simulated client counts.
#[derive(Debug)]
pub struct ClientStats {
    started: Instant,
    counters: Mutex<std::sync::Arc<Counters>>,
    metrics: Metrics,
    registry: Registry,
}

impl ClientStats {
    /// Fresh counters; the registry carries the tenant as a constant label.
    pub fn new(tenant_id: &str) -> Self {
        let metrics = Metrics::default();
        let labels = [(Cow::Borrowed("tenant"), Cow::Owned(tenant_id.to_owned()))];
        let mut registry = Registry::with_prefix_and_labels("client_sim", labels.into_iter());
        let m = &metrics;
        registry.register("sync_calls", "Sync calls received", m.sync_calls.clone());
        registry.register(
            "reports",
            "Delivery reports received by type",
            m.reports.clone(),
        );
        registry.register(
            "messages_generated",
            "Messages handed out",
            m.messages_generated.clone(),
        );
        registry.register(
            "attachments_served",
            "Attachment fetches",
            m.attachments_served.clone(),
        );
        registry.register(
            "attachment_bytes_served",
            "Attachment bytes served",
            m.attachment_bytes_served.clone(),
        );
        registry.register(
            "dnd_periods",
            "Do-not-disturb answers",
            m.dnd_periods.clone(),
        );
        registry.register("errors", "Bad requests and failures", m.errors.clone());
        ClientStats {
            started: Instant::now(),
            counters: Mutex::default(),
            metrics,
            registry,
        }
    }

    fn counters(&self) -> std::sync::Arc<Counters> {
        self.counters.lock().map(|c| c.clone()).unwrap_or_default()
    }

    /// Zeroes the `/stats` figures (not the metrics, not the content registry).
    pub fn reset(&self) {
        if let Ok(mut c) = self.counters.lock() {
            *c = std::sync::Arc::default();
        }
    }

    /// One `/sync` call arrived.
    pub fn on_sync(&self) {
        self.counters().sync_calls.fetch_add(1, Relaxed);
        self.metrics.sync_calls.inc();
    }

    /// A bad request or failure.
    pub fn on_error(&self) {
        self.counters().errors.fetch_add(1, Relaxed);
        self.metrics.errors.inc();
    }

    /// Counts delivery reports by type and the messages they finalise.
    pub fn on_reports(&self, reports: &[DeliveryReportV1]) {
        let c = self.counters();
        c.reports_received.fetch_add(reports.len() as u64, Relaxed);
        for r in reports {
            self.metrics
                .reports
                .get_or_create(&vec![("type".into(), r.kind().into())])
                .inc();
        }
        if let Ok(mut by_type) = c.by_type.lock() {
            for r in reports {
                *by_type.entry(r.kind().to_owned()).or_default() += 1;
            }
        }
        if let Ok(mut fin) = c.finalized.lock() {
            fin.extend(
                reports
                    .iter()
                    .filter(|r| r.is_final())
                    .map(|r| r.id.clone()),
            );
        }
    }

    /// A sync generated `messages`, with reuse hits/misses and whether it answered DND.
    pub fn on_generated(&self, messages: u64, hits: u64, misses: u64, dnd: bool) {
        let c = self.counters();
        c.messages_generated.fetch_add(messages, Relaxed);
        c.cache_hits.fetch_add(hits, Relaxed);
        c.cache_misses.fetch_add(misses, Relaxed);
        self.metrics.messages_generated.inc_by(messages);
        if dnd {
            c.dnd_periods.fetch_add(1, Relaxed);
            self.metrics.dnd_periods.inc();
        }
    }

    /// An attachment of `bytes` was served; `hit` when the registry knew its hash.
    pub fn on_served(&self, bytes: u64, hit: bool) {
        let c = self.counters();
        c.attachments_served.fetch_add(1, Relaxed);
        c.attachment_bytes_served.fetch_add(bytes, Relaxed);
        let counter = if hit { &c.cache_hits } else { &c.cache_misses };
        counter.fetch_add(1, Relaxed);
        self.metrics.attachments_served.inc();
        self.metrics.attachment_bytes_served.inc_by(bytes);
    }

    /// The `/stats` body, rounded as the seed rounds.
    pub fn snapshot(&self, cfg: &ServeConfig) -> ClientStatsV1 {
        let c = self.counters();
        let get = |a: &AtomicU64| a.load(Relaxed);
        let (hits, misses) = (get(&c.cache_hits), get(&c.cache_misses));
        let (calls, generated) = (get(&c.sync_calls), get(&c.messages_generated));
        ClientStatsV1 {
            client_id: cfg.client_id.clone(),
            tenant_id: cfg.tenant_id.clone(),
            uptime_seconds: round(self.started.elapsed().as_secs_f64(), 1),
            sync_calls: calls,
            reports_received: get(&c.reports_received),
            messages_generated: generated,
            attachments_served: get(&c.attachments_served),
            attachment_mb_served: round(get(&c.attachment_bytes_served) as f64 / 1_048_576.0, 2),
            cache_hit_rate: round(hits as f64 / (hits + misses).max(1) as f64, 3),
            dnd_periods: get(&c.dnd_periods),
            errors: get(&c.errors),
            msg_per_sync: round(generated as f64 / calls.max(1) as f64, 2),
            reports_by_type: c.by_type.lock().map(|m| m.clone()).unwrap_or_default(),
            messages_finalized: c.finalized.lock().map(|s| s.len() as u64).unwrap_or(0),
        }
    }

    /// Prometheus text exposition.
    pub fn encode_metrics(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// Rounds to `digits` decimals.
pub fn round(v: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (v * f).round() / f
}
