//! The figures of a run, folded from what its parts answer (PROTOCOL.md §8): the proxy replicas'
//! `/metrics`, every client's `/stats` and the verifying sink's `/stats`. Counters are summed over
//! proxy replicas, pending is the maximum (it is database-wide), errors are the clients' final
//! error reports, latency is the sink's end-to-end percentiles (or, shown but never judged, the
//! proxy's merged histogram), with per-tenant lines. The operator folds its pods' answers with
//! [`aggregate`], the local runner its processes' answers: the same figures feed the same
//! [`crate::verdict`].

use std::collections::{BTreeMap, BTreeSet};

use mailproxy_proto::prom::{ProxyMetrics, quantile};
use mailproxy_proto::stats::{ClientStatsV1, SinkStatsV1};

use crate::verdict::permille;
use crate::{Figures, LatencySource, TenantFigures};

/// Figures read in one pass, before baseline arithmetic.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Reading {
    /// Totals.
    pub figures: Figures,
    /// Per tenant.
    pub per_tenant: Vec<TenantFigures>,
    /// Whether the proxy answered (its pending count is meaningful).
    pub proxy_seen: bool,
    /// Every tenant's clients hold a final report for every message they generated
    /// ([`pressure_crds::drain`]); false when no client answered.
    pub clients_drained: bool,
    /// Cumulative latency buckets (upper bound in seconds, count): the verifying sink's end-to-end
    /// histogram when it answered, else the proxy replicas' merged. The report's timeline takes
    /// the p99 of each interval from two consecutive readings.
    pub latency_buckets: Vec<(f64, f64)>,
    /// The proxy replicas' attachment cache lookups, summed: (hits, misses).
    pub proxy_cache: (u64, u64),
    /// Proxy replicas that answered this reading.
    pub proxy_replicas: u32,
    /// What Kubernetes says of the proxy's scale at this reading (the operator fills it in; a
    /// local run has none).
    pub proxy_scale: ProxyScale,
}

/// The proxy's scale as Kubernetes sees it: the HorizontalPodAutoscaler's status and the
/// Deployment's ready replicas. Each is unset when not known (no HPA, not reported yet).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ProxyScale {
    /// The HPA's `status.desiredReplicas`.
    pub desired_replicas: Option<u32>,
    /// The Deployment's `status.readyReplicas`.
    pub ready_replicas: Option<u32>,
    /// The HPA's current average CPU utilisation, percent of the request (from metrics-server).
    pub cpu_percent: Option<u32>,
}

/// One [`Reading`] from the parts that answered.
pub fn aggregate(
    proxies: &[ProxyMetrics],
    clients: &[(String, ClientStatsV1)],
    sink: Option<&SinkStatsV1>,
    now: i64,
) -> Reading {
    let sum = |pick: fn(&ProxyMetrics) -> &BTreeMap<String, f64>, tenant: Option<&str>| -> i64 {
        let total: f64 = proxies
            .iter()
            .flat_map(|p| pick(p).iter())
            .filter(|(t, _)| tenant.is_none_or(|want| want == t.as_str()))
            .map(|(_, v)| v)
            .sum();
        total.round() as i64
    };
    let generated: i64 = clients
        .iter()
        .map(|(_, c)| c.messages_generated as i64)
        .sum();
    let delivered = sink.map(|s| s.total.received as i64);
    let duplicates = sink.map(|s| s.total.duplicates as i64);
    let mut fig = Figures {
        observed_at: now,
        generated,
        sent: sum(|p| &p.sent, None),
        errors: clients.iter().map(|(_, c)| c.error_reports() as i64).sum(),
        deferred: proxies
            .iter()
            .flat_map(|p| p.deferred.values())
            .sum::<f64>()
            .round() as i64,
        pending: proxies
            .iter()
            .map(|p| p.pending)
            .fold(0.0, f64::max)
            .round() as i64,
        delivered,
        duplicates,
        attachment_mismatches: sink.map(|s| s.total.attachment_mismatches as i64),
        cache_hit_rate_permille: mean_permille(clients.iter().map(|(_, c)| c.cache_hit_rate)),
        // Distinct deliveries, as the verdict counts them.
        delivered_ratio_permille: delivered
            .and_then(|d| permille(d - duplicates.unwrap_or(0), generated)),
        ..Figures::default()
    };
    let buckets = merged_buckets(proxies);
    set_latency(&mut fig, &buckets, sink);
    let mut tenants: BTreeSet<String> = clients.iter().map(|(t, _)| t.clone()).collect();
    tenants.extend(
        proxies
            .iter()
            .flat_map(|p| p.sent.keys().cloned())
            .filter(|t| !t.is_empty()),
    );
    let per_tenant = tenants
        .into_iter()
        .map(|t| {
            let mine: Vec<&ClientStatsV1> = clients
                .iter()
                .filter(|(n, _)| *n == t)
                .map(|(_, c)| c)
                .collect();
            let sink_t = sink.and_then(|s| s.tenants.get(&t));
            TenantFigures {
                clients: mine.len() as i32,
                generated: mine.iter().map(|c| c.messages_generated as i64).sum(),
                sent: sum(|p| &p.sent, Some(&t)),
                errors: mine.iter().map(|c| c.error_reports() as i64).sum(),
                delivered: sink.map(|_| sink_t.map_or(0, |s| s.received as i64)),
                latency_p99_ms: sink_t
                    .filter(|s| s.latency_ms.count > 0)
                    .map(|s| s.latency_ms.p99.round() as i64),
                cache_hit_rate_permille: mean_permille(mine.iter().map(|c| c.cache_hit_rate)),
                name: t,
            }
        })
        .collect();
    let cache = |pick: fn(&ProxyMetrics) -> f64| proxies.iter().map(pick).sum::<f64>().round();
    Reading {
        figures: fig,
        per_tenant,
        proxy_seen: !proxies.is_empty(),
        proxy_replicas: u32::try_from(proxies.len()).unwrap_or(u32::MAX),
        proxy_scale: ProxyScale::default(),
        latency_buckets: buckets,
        proxy_cache: (
            cache(|p| p.cache_hits) as u64,
            cache(|p| p.cache_misses) as u64,
        ),
        clients_drained: crate::drain::drained(clients.iter().map(|(tenant, c)| {
            crate::drain::ClientCounts {
                tenant,
                generated: c.messages_generated,
                finalized: c.messages_finalized,
            }
        })),
    }
}

/// A mail catcher's message count (Mailpit's `total`) as the delivered figure of `reading`, for a
/// run whose sink is a catcher (no verifying sink's `/stats`): duplicates, attachment mismatches
/// and end-to-end latency stay unmeasured (`None`), and so do the per-tenant deliveries (a
/// catcher counts messages, not tenants). The count includes any duplicate delivery.
pub fn add_catcher_count(reading: &mut Reading, total: i64) {
    let fig = &mut reading.figures;
    fig.delivered = Some(total);
    fig.delivered_ratio_permille = permille(total, fig.generated);
}

/// Latency from the sink's end-to-end percentiles, else from the proxies' merged `buckets`.
fn set_latency(fig: &mut Figures, buckets: &[(f64, f64)], sink: Option<&SinkStatsV1>) {
    if let Some(l) = sink.map(|s| s.total.latency_ms).filter(|l| l.count > 0) {
        fig.latency_p50_ms = Some(l.p50.round() as i64);
        fig.latency_p95_ms = Some(l.p95.round() as i64);
        fig.latency_p99_ms = Some(l.p99.round() as i64);
        fig.latency_max_ms = Some(l.max.round() as i64);
        fig.latency_source = Some(LatencySource::Sink);
        return;
    }
    let ms = |q: f64| quantile(buckets, q).map(|s| (s * 1000.0).round() as i64);
    fig.latency_p50_ms = ms(0.5);
    fig.latency_p95_ms = ms(0.95);
    fig.latency_p99_ms = ms(0.99);
    fig.latency_source = fig.latency_p99_ms.map(|_| LatencySource::Proxy);
}

/// The replicas' latency histograms as one: counts of equal bounds added, sorted by bound.
fn merged_buckets(proxies: &[ProxyMetrics]) -> Vec<(f64, f64)> {
    let mut merged: BTreeMap<u64, (f64, f64)> = BTreeMap::new();
    for (le, n) in proxies.iter().flat_map(|p| p.latency_buckets.iter()) {
        merged.entry(le.to_bits()).or_insert((*le, 0.0)).1 += n;
    }
    let mut buckets: Vec<(f64, f64)> = merged.into_values().collect();
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    buckets
}

fn mean_permille(rates: impl Iterator<Item = f64>) -> Option<i64> {
    let v: Vec<f64> = rates.collect();
    (!v.is_empty()).then(|| (v.iter().sum::<f64>() / v.len() as f64 * 1000.0).round() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use mailproxy_proto::stats::{LatencySummaryV1, SinkTenantStatsV1};

    fn proxy(sent_a: f64, pending: f64) -> ProxyMetrics {
        ProxyMetrics {
            sent: BTreeMap::from([("a".into(), sent_a), (String::new(), 0.0)]),
            errors: BTreeMap::from([("a".into(), 1.0)]),
            pending,
            latency_buckets: vec![(1.0, 10.0), (f64::INFINITY, 10.0)],
            ..ProxyMetrics::default()
        }
    }

    /// A client with one final error report.
    fn client(generated: u64, hit: f64) -> ClientStatsV1 {
        ClientStatsV1 {
            messages_generated: generated,
            cache_hit_rate: hit,
            reports_by_type: BTreeMap::from([("error".into(), 1)]),
            ..ClientStatsV1::default()
        }
    }

    #[test]
    fn sums_replicas_and_takes_max_pending() {
        let r = aggregate(
            &[proxy(10.0, 4.0), proxy(5.0, 6.0)],
            &[("a".into(), client(20, 0.2)), ("a".into(), client(0, 0.4))],
            None,
            7,
        );
        assert_eq!(
            (r.figures.sent, r.figures.errors, r.figures.pending),
            (15, 2, 6)
        );
        assert_eq!(
            (r.figures.generated, r.figures.cache_hit_rate_permille),
            (20, Some(300))
        );
        assert_eq!(r.figures.delivered, None);
        assert_eq!(r.figures.latency_p99_ms, Some(990));
        assert_eq!(r.figures.latency_source, Some(LatencySource::Proxy));
        assert_eq!(r.per_tenant.len(), 1);
        assert_eq!((r.per_tenant[0].clients, r.per_tenant[0].sent), (2, 15));
        assert!(r.proxy_seen);
    }

    #[test]
    fn sink_latency_and_delivery_win() {
        let lat = LatencySummaryV1 {
            count: 3,
            p50: 10.4,
            p95: 20.0,
            p99: 30.6,
            max: 40.0,
        };
        let t = SinkTenantStatsV1 {
            received: 19,
            latency_ms: lat,
            ..SinkTenantStatsV1::default()
        };
        let sink = SinkStatsV1 {
            total: t.clone(),
            tenants: BTreeMap::from([("a".into(), t)]),
            ..SinkStatsV1::default()
        };
        let r = aggregate(
            &[proxy(19.0, 0.0)],
            &[("a".into(), client(20, 0.0))],
            Some(&sink),
            1,
        );
        assert_eq!(r.figures.latency_p99_ms, Some(31));
        assert_eq!(r.figures.latency_source, Some(LatencySource::Sink));
        assert_eq!(r.figures.delivered_ratio_permille, Some(950));
        assert_eq!(r.per_tenant[0].delivered, Some(19));
    }
}
