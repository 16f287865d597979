//! The sink's figures: per-tenant and total counts, end-to-end latency histograms (HdrHistogram,
//! microseconds), the set of Message-IDs seen (as 64-bit hashes) for duplicate detection, and the
//! faults injected; plus the Prometheus families behind `/metrics`. `POST /reset` clears the
//! figures (not the metrics).

use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::sync::Mutex;
use std::time::Instant;

use hdrhistogram::Histogram;
use mailproxy_proto::stats::{LatencySummaryV1, SinkStatsV1, SinkTenantStatsV1};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram as PromHistogram;
use prometheus_client::registry::Registry;

use super::verify::Verdict;

/// Most tenant names with figures of their own.
pub const MAX_TENANTS: usize = 256;
/// Where messages of further tenant names are counted.
pub const OTHER_TENANTS: &str = "other";

type Labels = Vec<(String, String)>;

/// Per-tenant accumulator.
#[derive(Debug, Clone)]
struct Acc {
    received: u64,
    bytes: u64,
    verified: u64,
    mismatches: u64,
    duplicates: u64,
    latency_us: Histogram<u64>,
}

impl Default for Acc {
    fn default() -> Self {
        let latency_us = crate::latency_histogram();
        Acc {
            received: 0,
            bytes: 0,
            verified: 0,
            mismatches: 0,
            duplicates: 0,
            latency_us,
        }
    }
}

impl Acc {
    fn add(&mut self, v: &Verdict, duplicate: bool, latency_us: Option<u64>) {
        self.received += 1;
        self.bytes += v.bytes;
        self.verified += v.verified;
        self.mismatches += v.mismatches;
        self.duplicates += u64::from(duplicate);
        if let Some(l) = latency_us {
            self.latency_us.saturating_record(l);
        }
    }

    fn summary(&self) -> SinkTenantStatsV1 {
        let h = &self.latency_us;
        let ms = |us: u64| us as f64 / 1000.0;
        SinkTenantStatsV1 {
            received: self.received,
            bytes: self.bytes,
            attachment_mismatches: self.mismatches,
            attachments_verified: self.verified,
            duplicates: self.duplicates,
            latency_ms: LatencySummaryV1 {
                count: h.len(),
                p50: ms(h.value_at_quantile(0.5)),
                p95: ms(h.value_at_quantile(0.95)),
                p99: ms(h.value_at_quantile(0.99)),
                max: ms(h.max()),
            },
        }
    }
}

#[derive(Debug, Default)]
struct Inner {
    tenants: HashMap<String, Acc>,
    total: Acc,
    seen_ids: HashSet<u64>,
    faults: BTreeMap<String, u64>,
}

#[derive(Debug)]
struct Metrics {
    received: Family<Labels, Counter>,
    bytes: Family<Labels, Counter>,
    verified: Family<Labels, Counter>,
    mismatches: Family<Labels, Counter>,
    duplicates: Family<Labels, Counter>,
    faults: Family<Labels, Counter>,
    latency: Family<Labels, PromHistogram, fn() -> PromHistogram>,
}

/// Upper bounds of the latency histogram, in seconds: 1, 1.25, 1.5, 2, 2.5, 3, 4, 5, 6, 8 per
/// decade from 1 ms to 100 s (neighbours at most a third apart). The per-second p99 of the local
/// run's timeline and of the operator's report is read from these buckets, interpolated within
/// one; with doubling buckets (1 ms × 2^k) it came out as about 128, 256 or 512 ms whatever the
/// deliveries' real spread, up to 28 % off.
pub fn latency_bounds() -> Vec<f64> {
    const STEPS: [f64; 10] = [1.0, 1.25, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0];
    // Milliseconds divided by 1,000 (exact operands, one rounding): the `le` labels read 0.003,
    // not 0.0030000000000000005.
    let mut bounds: Vec<f64> = (0..5)
        .flat_map(|decade| STEPS.iter().map(move |s| s * 10f64.powi(decade) / 1000.0))
        .collect();
    bounds.push(100.0);
    bounds
}

fn latency_histogram() -> PromHistogram {
    PromHistogram::new(latency_bounds())
}

/// Everything the sink counts.
#[derive(Debug)]
pub struct SinkStats {
    started: Instant,
    inner: Mutex<Inner>,
    metrics: Metrics,
    registry: Registry,
}

impl Default for SinkStats {
    fn default() -> Self {
        Self::new()
    }
}

impl SinkStats {
    /// Empty figures and a registry prefixed `sink_`.
    pub fn new() -> Self {
        let metrics = Metrics {
            received: Family::default(),
            bytes: Family::default(),
            verified: Family::default(),
            mismatches: Family::default(),
            duplicates: Family::default(),
            faults: Family::default(),
            latency: Family::new_with_constructor(latency_histogram),
        };
        let mut r = Registry::with_prefix("sink");
        let m = &metrics;
        r.register(
            "received",
            "Messages accepted, by tenant",
            m.received.clone(),
        );
        r.register(
            "received_bytes",
            "Message bytes accepted, by tenant",
            m.bytes.clone(),
        );
        r.register(
            "attachments_verified",
            "Attachments checked",
            m.verified.clone(),
        );
        r.register(
            "attachment_mismatches",
            "Attachments failing MD5",
            m.mismatches.clone(),
        );
        r.register(
            "duplicates",
            "Messages with a Message-ID seen before",
            m.duplicates.clone(),
        );
        r.register(
            "faults_injected",
            "Injected faults by class",
            m.faults.clone(),
        );
        r.register(
            "latency_seconds",
            "Creation to acceptance, by tenant",
            m.latency.clone(),
        );
        SinkStats {
            started: Instant::now(),
            inner: Mutex::default(),
            metrics,
            registry: r,
        }
    }

    /// Records an accepted message, received at `now_us` (Unix microseconds). Figures are kept
    /// for at most [`MAX_TENANTS`] tenant names; messages naming further ones count under
    /// [`OTHER_TENANTS`], so a sender cannot grow the sink's memory with made-up tenant headers.
    pub fn record(&self, v: &Verdict, now_us: u64) {
        let latency_us = v.created_us.map(|c| now_us.saturating_sub(c));
        let mut tenant = v.tenant.clone();
        let duplicate = {
            let Ok(mut inner) = self.inner.lock() else {
                return;
            };
            if !inner.tenants.contains_key(&tenant) && inner.tenants.len() >= MAX_TENANTS {
                tenant = OTHER_TENANTS.to_owned();
            }
            let duplicate = v
                .message_id
                .as_deref()
                .is_some_and(|id| !inner.seen_ids.insert(hash(id)));
            inner.total.add(v, duplicate, latency_us);
            inner
                .tenants
                .entry(tenant.clone())
                .or_default()
                .add(v, duplicate, latency_us);
            duplicate
        };
        let labels = vec![("tenant".to_owned(), tenant)];
        self.metrics.received.get_or_create(&labels).inc();
        self.metrics.bytes.get_or_create(&labels).inc_by(v.bytes);
        self.metrics
            .verified
            .get_or_create(&labels)
            .inc_by(v.verified);
        self.metrics
            .mismatches
            .get_or_create(&labels)
            .inc_by(v.mismatches);
        // A zero series from a tenant's first message on, as for mismatches: the dashboard's
        // "Sink Verification Failures" panel shows 0, not "No data", in a run without duplicates.
        let duplicates = self.metrics.duplicates.get_or_create(&labels);
        if duplicate {
            duplicates.inc();
        }
        if let Some(l) = latency_us {
            self.metrics
                .latency
                .get_or_create(&labels)
                .observe(l as f64 / 1e6);
        }
    }

    /// Records an injected fault of `class` (`4xx`, `5xx`, `drop`).
    pub fn record_fault(&self, class: &str) {
        if let Ok(mut inner) = self.inner.lock() {
            *inner.faults.entry(class.to_owned()).or_default() += 1;
        }
        self.metrics
            .faults
            .get_or_create(&vec![("class".to_owned(), class.to_owned())])
            .inc();
    }

    /// Clears the figures and the seen Message-IDs.
    pub fn reset(&self) {
        if let Ok(mut inner) = self.inner.lock() {
            *inner = Inner::default();
        }
    }

    /// The `/stats` body.
    pub fn snapshot(&self) -> SinkStatsV1 {
        let Ok(inner) = self.inner.lock() else {
            return SinkStatsV1::default();
        };
        SinkStatsV1 {
            uptime_seconds: (self.started.elapsed().as_secs_f64() * 10.0).round() / 10.0,
            total: inner.total.summary(),
            tenants: inner
                .tenants
                .iter()
                .map(|(k, v)| (k.clone(), v.summary()))
                .collect(),
            faults_injected: inner.faults.clone(),
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

fn hash(id: &str) -> u64 {
    let mut h = DefaultHasher::new();
    id.hash(&mut h);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_p99_read_from_the_buckets_is_close_to_the_real_one() {
        let stats = SinkStats::new();
        // 100 deliveries 100..=199 ms late: the real p99 is 198-199 ms.
        for (i, ms) in (100..200u64).enumerate() {
            let v = Verdict {
                tenant: "t".into(),
                bytes: 10,
                verified: 0,
                mismatches: 0,
                created_us: Some(1_000_000),
                message_id: Some(format!("<{i}@x>")),
            };
            stats.record(&v, 1_000_000 + ms * 1000);
        }
        let buckets = mailproxy_proto::prom::parse_sink_latency(&stats.encode_metrics());
        let p99 = mailproxy_proto::prom::quantile(&buckets, 0.99).unwrap() * 1000.0;
        assert!(
            (190.0..=205.0).contains(&p99),
            "p99 {p99:.1} ms from {buckets:?}"
        );
        let b = latency_bounds();
        assert_eq!((b.len(), b[0], b[50]), (51, 0.001, 100.0));
        assert!(
            b.windows(2).all(|w| w[1] > w[0] && w[1] / w[0] <= 1.34),
            "{b:?}"
        );
        let labels: Vec<String> = b.iter().map(f64::to_string).collect();
        assert!(
            labels.iter().all(|l| l.len() <= 7),
            "round labels: {labels:?}"
        );
    }

    #[test]
    fn a_tenant_has_zero_duplicate_and_mismatch_series_from_its_first_message() {
        let stats = SinkStats::new();
        let v = Verdict {
            tenant: "t".into(),
            bytes: 10,
            verified: 0,
            mismatches: 0,
            created_us: None,
            message_id: Some("<1@x>".into()),
        };
        stats.record(&v, 1);
        let text = stats.encode_metrics();
        for series in [
            "sink_duplicates_total{tenant=\"t\"} 0",
            "sink_attachment_mismatches_total{tenant=\"t\"} 0",
        ] {
            assert!(text.contains(series), "{series} missing in\n{text}");
        }
        stats.record(&v, 2);
        assert!(
            stats
                .encode_metrics()
                .contains("sink_duplicates_total{tenant=\"t\"} 1")
        );
    }

    #[test]
    fn made_up_tenant_names_are_capped() {
        let stats = SinkStats::new();
        for i in 0..MAX_TENANTS + 50 {
            let v = Verdict {
                tenant: format!("t{i}"),
                bytes: 10,
                verified: 0,
                mismatches: 0,
                created_us: None,
                message_id: Some(format!("<{i}@x>")),
            };
            stats.record(&v, 0);
        }
        let s = stats.snapshot();
        assert_eq!(s.tenants.len(), MAX_TENANTS + 1);
        assert_eq!(s.tenants[OTHER_TENANTS].received, 50);
        assert_eq!(s.total.received as usize, MAX_TENANTS + 50);
    }
}
