//! Reading the proxy's `/metrics` (§8) and the sink's latency histogram: samples of the
//! Prometheus text format and OpenMetrics (labels with escapes, optional timestamps and exemplars
//! ignored) for the `gmp_*` series, summed by tenant, and histogram quantiles. The operator's live
//! figures and the local runner both read through here.
//!
//! Hand-written on purpose (issue 16 item 5 asked for a crate): `prometheus-parse` 0.2.5, the
//! text parser on crates.io, reads a sample with the regex `\{(?P<labels>[^}]+)\}`, so a label value
//! holding `}` or `",` (tenant names are free text) is cut, and it brings `chrono`, `regex` and
//! `itertools` into every crate that reads figures, the client simulator included (none of them
//! has those today: `cargo tree -p client-sim -e normal | grep -cE 'regex |chrono |itertools '`
//! gave 0). These 60 lines read what we emit, escapes included, with the tests below.

use std::collections::BTreeMap;

/// The proxy series a run reads.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProxyMetrics {
    /// `gmp_sent_total` by tenant id.
    pub sent: BTreeMap<String, f64>,
    /// `gmp_errors_total` by tenant id.
    pub errors: BTreeMap<String, f64>,
    /// `gmp_deferred_total` by tenant id.
    pub deferred: BTreeMap<String, f64>,
    /// `gmp_pending_messages`.
    pub pending: f64,
    /// `gmp_attachment_cache_requests_total{result="hit"}`, all tiers.
    pub cache_hits: f64,
    /// `gmp_attachment_cache_requests_total{result="miss"}`, all tiers.
    pub cache_misses: f64,
    /// `gmp_delivery_latency_seconds_bucket`, summed over tenants: (le, cumulative count).
    pub latency_buckets: Vec<(f64, f64)>,
}

/// One sample line: name, labels (values unescaped), value. Comments (`# HELP`, `# TYPE`,
/// `# EOF`), blank lines and lines that are not samples give `None`; a timestamp or an
/// OpenMetrics exemplar after the value is ignored.
pub fn sample(line: &str) -> Option<(&str, BTreeMap<String, String>, f64)> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let name_end = line
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .unwrap_or(line.len());
    let (name, mut rest) = line.split_at(name_end);
    if name.is_empty() {
        return None;
    }
    let mut labels = BTreeMap::new();
    if let Some(after) = rest.strip_prefix('{') {
        rest = parse_labels(after, &mut labels)?;
    }
    let value = rest.split_whitespace().next()?;
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse().ok()?,
    };
    Some((name, labels, value))
}

/// Reads `k="v",…}` (escapes `\"`, `\\`, `\n` in values) into `labels`; the text after `}`.
fn parse_labels<'a>(mut text: &'a str, labels: &mut BTreeMap<String, String>) -> Option<&'a str> {
    loop {
        text = text.trim_start_matches([',', ' ']);
        if let Some(after) = text.strip_prefix('}') {
            return Some(after);
        }
        let (key, after) = text.split_once('=')?;
        let mut chars = after.strip_prefix('"')?.char_indices();
        let mut value = String::new();
        let end = loop {
            match chars.next()? {
                (i, '"') => break i,
                (_, '\\') => match chars.next()?.1 {
                    'n' => value.push('\n'),
                    c => value.push(c),
                },
                (_, c) => value.push(c),
            }
        };
        labels.insert(key.trim().to_string(), value);
        text = &after[end + 2..];
    }
}

/// Parses the proxy's `/metrics`.
pub fn parse_proxy(text: &str) -> ProxyMetrics {
    let mut m = ProxyMetrics::default();
    let mut buckets = Buckets::default();
    for (name, labels, value) in text.lines().filter_map(sample) {
        let tenant = || labels.get("tenant_id").cloned().unwrap_or_default();
        match name {
            "gmp_sent_total" => *m.sent.entry(tenant()).or_default() += value,
            "gmp_errors_total" => *m.errors.entry(tenant()).or_default() += value,
            "gmp_deferred_total" => *m.deferred.entry(tenant()).or_default() += value,
            "gmp_pending_messages" => m.pending = value,
            "gmp_attachment_cache_requests_total" => match labels.get("result").map(String::as_str)
            {
                Some("hit") => m.cache_hits += value,
                Some("miss") => m.cache_misses += value,
                _ => {}
            },
            "gmp_delivery_latency_seconds_bucket" => buckets.add(&labels, value),
            _ => {}
        }
    }
    m.latency_buckets = buckets.sorted();
    m
}

/// The sink's `sink_latency_seconds` buckets, summed over tenants.
pub fn parse_sink_latency(text: &str) -> Vec<(f64, f64)> {
    let mut buckets = Buckets::default();
    for (name, labels, value) in text.lines().filter_map(sample) {
        if name == "sink_latency_seconds_bucket" {
            buckets.add(&labels, value);
        }
    }
    buckets.sorted()
}

#[derive(Default)]
struct Buckets(BTreeMap<String, f64>);

impl Buckets {
    fn add(&mut self, labels: &BTreeMap<String, String>, value: f64) {
        if let Some(le) = labels.get("le") {
            *self.0.entry(le.clone()).or_default() += value;
        }
    }

    fn sorted(self) -> Vec<(f64, f64)> {
        let mut v: Vec<(f64, f64)> = self
            .0
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
        v.sort_by(|a, b| a.0.total_cmp(&b.0));
        v
    }
}

/// Bucket counts of `now` minus those of `before` (the same bounds), for a windowed quantile.
pub fn bucket_delta(now: &[(f64, f64)], before: &[(f64, f64)]) -> Vec<(f64, f64)> {
    now.iter()
        .map(|&(le, n)| {
            let b = before
                .iter()
                .find(|(l, _)| l.to_bits() == le.to_bits())
                .map_or(0.0, |x| x.1);
            (le, (n - b).max(0.0))
        })
        .collect()
}

/// The q-quantile of cumulative buckets, interpolated inside the bucket as Prometheus'
/// `histogram_quantile` does; `None` without samples.
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

    const PROXY: &str = r#"# TYPE gmp_sent_total counter
gmp_sent_total{tenant_id="a",tenant_name="A",account_id="smtp-a",account_name="smtp-a"} 42.0
gmp_errors_total{tenant_id="a",tenant_name="A",account_id="smtp-a",account_name="smtp-a"} 2
gmp_deferred_total{tenant_id="b",tenant_name="B",account_id="smtp-b",account_name="smtp-b"} 1
gmp_pending_messages 7
gmp_attachment_cache_requests_total{tier="memory",result="hit"} 3
gmp_attachment_cache_requests_total{tier="disk",result="hit"} 1
gmp_attachment_cache_requests_total{tier="memory",result="miss"} 5
gmp_delivery_latency_seconds_bucket{tenant_id="a",le="0.1"} 50
gmp_delivery_latency_seconds_bucket{tenant_id="a",le="1.0"} 90
gmp_delivery_latency_seconds_bucket{tenant_id="a",le="+Inf"} 100
"#;

    #[test]
    fn parses_proxy_series() {
        let m = parse_proxy(PROXY);
        assert_eq!(m.sent.get("a"), Some(&42.0));
        assert_eq!(m.errors.get("a"), Some(&2.0));
        assert_eq!(m.deferred.get("b"), Some(&1.0));
        assert_eq!((m.pending, m.cache_hits, m.cache_misses), (7.0, 4.0, 5.0));
        assert_eq!(m.latency_buckets.len(), 3);
        assert!((quantile(&m.latency_buckets, 0.7).expect("q") - 0.55).abs() < 1e-9);
    }

    #[test]
    fn quantiles_interpolate_like_prometheus() {
        let b = parse_proxy(PROXY).latency_buckets;
        assert!((quantile(&b, 0.5).expect("q") - 0.1).abs() < 1e-9);
        assert_eq!(quantile(&b, 0.99), Some(1.0));
        assert_eq!(quantile(&[], 0.5), None);
    }

    #[test]
    fn sums_replicas_of_a_tenant_and_keeps_untagged_series_apart() {
        let text = "gmp_sent_total{tenant_id=\"a\",account_id=\"x\"} 2\n\
                    gmp_sent_total{tenant_id=\"a\",account_id=\"y\"} 3\n\
                    gmp_sent_total 1\n\
                    not a sample\n";
        let m = parse_proxy(text);
        assert_eq!(m.sent.get("a"), Some(&5.0));
        assert_eq!(m.sent.get(""), Some(&1.0));
    }

    #[test]
    fn label_values_with_quotes_braces_and_commas_are_read_whole() {
        let line = r#"gmp_sent_total{tenant_id="a\"b},c\\d",le="1"} 3 1700000000"#;
        let (name, labels, value) = sample(line).expect("a sample");
        assert_eq!((name, value), ("gmp_sent_total", 3.0));
        assert_eq!(labels["tenant_id"], r#"a"b},c\d"#);
        assert_eq!(labels["le"], "1");
        let exemplar = r#"x_bucket{le="+Inf"} 5 # {trace_id="t"} 1.0"#;
        assert_eq!(sample(exemplar).map(|s| s.2), Some(5.0));
        for not_a_sample in ["# EOF", "# TYPE x counter", "", "{a=\"b\"} 1", "x{a=\"b} 1"] {
            assert!(sample(not_a_sample).is_none(), "{not_a_sample}");
        }
        assert_eq!(sample("x +Inf").map(|s| s.2), Some(f64::INFINITY));
    }

    #[test]
    fn windowed_quantile_from_deltas() {
        let before = vec![(0.1, 10.0), (1.0, 10.0), (f64::INFINITY, 10.0)];
        let now = vec![(0.1, 10.0), (1.0, 20.0), (f64::INFINITY, 20.0)];
        let d = bucket_delta(&now, &before);
        assert_eq!(d, vec![(0.1, 0.0), (1.0, 10.0), (f64::INFINITY, 10.0)]);
        let p99 = quantile(&d, 0.99).expect("q");
        assert!(p99 > 0.9 && p99 <= 1.0, "{p99}");
        assert_eq!(quantile(&bucket_delta(&before, &before), 0.99), None);
    }
}
