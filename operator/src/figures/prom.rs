//! Just enough of the Prometheus text format for the proxy's `gmp_*` series: counter and gauge
//! samples with labels, and the cumulative buckets of the delivery-latency histogram.

use std::collections::BTreeMap;

/// The series we use from one proxy replica.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProxySample {
    /// `gmp_sent_total`, by tenant id.
    pub sent: BTreeMap<String, f64>,
    /// `gmp_errors_total`, by tenant id.
    pub errors: BTreeMap<String, f64>,
    /// `gmp_deferred_total`, summed.
    pub deferred: f64,
    /// `gmp_pending_messages`.
    pub pending: f64,
    /// `gmp_delivery_latency_seconds_bucket`, summed over labels: (le, cumulative count).
    pub latency_buckets: Vec<(f64, f64)>,
}

/// One parsed sample line.
fn sample(line: &str) -> Option<(&str, BTreeMap<&str, &str>, f64)> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let (head, value) = line.rsplit_once(' ')?;
    let value: f64 = value.parse().ok()?;
    let (name, labels) = match head.split_once('{') {
        Some((name, rest)) => (name, parse_labels(rest.strip_suffix('}')?)),
        None => (head, BTreeMap::new()),
    };
    Some((name, labels, value))
}

/// `a="x",b="y"` (values without commas or escaped quotes, as the proxy writes them).
fn parse_labels(text: &str) -> BTreeMap<&str, &str> {
    text.split("\",")
        .filter_map(|kv| {
            let (k, v) = kv.split_once('=')?;
            Some((k.trim_start_matches(',').trim(), v.trim_matches('"')))
        })
        .collect()
}

/// Parses one `/metrics` body.
pub fn parse(text: &str) -> ProxySample {
    let mut s = ProxySample::default();
    let mut buckets: BTreeMap<String, f64> = BTreeMap::new();
    for (name, labels, value) in text.lines().filter_map(sample) {
        let tenant = labels
            .get("tenant_id")
            .copied()
            .unwrap_or("default")
            .to_string();
        match name {
            "gmp_sent_total" => *s.sent.entry(tenant).or_default() += value,
            "gmp_errors_total" => *s.errors.entry(tenant).or_default() += value,
            "gmp_deferred_total" => s.deferred += value,
            "gmp_pending_messages" => s.pending = value,
            "gmp_delivery_latency_seconds_bucket" => {
                if let Some(le) = labels.get("le") {
                    *buckets.entry((*le).to_string()).or_default() += value;
                }
            }
            _ => {}
        }
    }
    s.latency_buckets = buckets
        .into_iter()
        .filter_map(|(le, n)| {
            let bound = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().ok()?
            };
            Some((bound, n))
        })
        .collect();
    s.latency_buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    s
}

/// The q-quantile of cumulative buckets, interpolated linearly inside the bucket as Prometheus'
/// `histogram_quantile` does. `None` without samples.
pub fn quantile(buckets: &[(f64, f64)], q: f64) -> Option<f64> {
    let total = buckets.last()?.1;
    if total <= 0.0 {
        return None;
    }
    let rank = q * total;
    let (mut lower, mut below) = (0.0, 0.0);
    for &(bound, count) in buckets {
        if count >= rank {
            if bound.is_infinite() {
                return Some(lower);
            }
            let inside = count - below;
            let frac = if inside > 0.0 {
                (rank - below) / inside
            } else {
                1.0
            };
            return Some(lower + (bound - lower) * frac);
        }
        (lower, below) = (bound, count);
    }
    Some(lower)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = r#"# HELP gmp_sent_total Total sent emails
# TYPE gmp_sent_total counter
gmp_sent_total{tenant_id="a",tenant_name="A",account_id="smtp-a",account_name="smtp-a"} 42.0
gmp_sent_total{tenant_id="b",tenant_name="B",account_id="smtp-b",account_name="smtp-b"} 8
gmp_errors_total{tenant_id="a",tenant_name="A",account_id="smtp-a",account_name="smtp-a"} 2.0
gmp_deferred_total{tenant_id="a",tenant_name="A",account_id="smtp-a",account_name="smtp-a"} 1.0
gmp_pending_messages 7.0
gmp_delivery_latency_seconds_bucket{tenant_id="a",le="0.1"} 50
gmp_delivery_latency_seconds_bucket{tenant_id="a",le="1.0"} 90
gmp_delivery_latency_seconds_bucket{tenant_id="a",le="+Inf"} 100
gmp_delivery_latency_seconds_bucket{tenant_id="b",le="0.1"} 0
gmp_delivery_latency_seconds_bucket{tenant_id="b",le="1.0"} 0
gmp_delivery_latency_seconds_bucket{tenant_id="b",le="+Inf"} 0
"#;

    #[test]
    fn parses_counters_gauge_and_buckets() {
        let s = parse(TEXT);
        assert_eq!(s.sent.get("a"), Some(&42.0));
        assert_eq!(s.sent.get("b"), Some(&8.0));
        assert_eq!(s.errors.get("a"), Some(&2.0));
        assert_eq!((s.deferred, s.pending), (1.0, 7.0));
        assert_eq!(
            s.latency_buckets,
            vec![(0.1, 50.0), (1.0, 90.0), (f64::INFINITY, 100.0)]
        );
    }

    #[test]
    fn quantiles_interpolate_like_prometheus() {
        let b = parse(TEXT).latency_buckets;
        assert!((quantile(&b, 0.5).expect("q") - 0.1).abs() < 1e-9);
        assert!((quantile(&b, 0.7).expect("q") - 0.55).abs() < 1e-9);
        assert_eq!(quantile(&b, 0.99), Some(1.0));
        assert_eq!(quantile(&[], 0.5), None);
    }
}
