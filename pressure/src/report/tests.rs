//! Report arithmetic: loss, throughput over the window, delivery source, verdict lines; and the
//! shared table of verdict cases ([`pressure_crds::verdict::cases`]) through the local runner.

use std::collections::BTreeMap;

use mailproxy_proto::stats::{ClientStatsV1, LatencySummaryV1, SinkStatsV1, SinkTenantStatsV1};

use super::*;
use mailproxy_proto::prom::ProxyMetrics;

fn client(generated: u64, errors: u64, hit: f64) -> ClientStatsV1 {
    ClientStatsV1 {
        messages_generated: generated,
        cache_hit_rate: hit,
        reports_by_type: BTreeMap::from([("error".into(), errors), ("sent".into(), 1)]),
        ..ClientStatsV1::default()
    }
}

fn sink_line(received: u64, dup: u64, p99: f64) -> SinkTenantStatsV1 {
    SinkTenantStatsV1 {
        received,
        duplicates: dup,
        latency_ms: LatencySummaryV1 {
            count: received,
            p50: 10.0,
            p95: 20.0,
            p99,
            max: p99 + 1.0,
        },
        ..SinkTenantStatsV1::default()
    }
}

/// Tenant `a` (2 replicas) and `b`; `delivered` at the sink, `sent` at the proxy.
fn snap(t: f64, gen_a: u64, gen_b: u64, del_a: u64, del_b: u64, err_b: u64) -> Snapshot {
    let tenants = BTreeMap::from([
        ("a".to_string(), sink_line(del_a, 0, 100.0)),
        ("b".to_string(), sink_line(del_b, 0, 300.0)),
    ]);
    Snapshot {
        t,
        clients: vec![
            ("a".into(), client(gen_a / 2, 0, 0.2)),
            ("a".into(), client(gen_a - gen_a / 2, 0, 0.4)),
            ("b".into(), client(gen_b, err_b, 0.5)),
        ],
        proxy: ProxyMetrics {
            sent: BTreeMap::from([("a".into(), del_a as f64), ("b".into(), del_b as f64)]),
            errors: BTreeMap::from([("b".into(), err_b as f64)]),
            deferred: BTreeMap::from([("b".into(), 3.0)]),
            cache_hits: 3.0,
            cache_misses: 1.0,
            ..ProxyMetrics::default()
        },
        sink: Some(SinkStatsV1 {
            total: sink_line(del_a + del_b, 0, 300.0),
            tenants,
            ..SinkStatsV1::default()
        }),
        sink_buckets: Vec::new(),
    }
}

fn facts() -> Facts {
    Facts {
        run_id: "r".into(),
        tenants: vec![("a".into(), 2), ("b".into(), 1)],
        duration_seconds: 10,
        warmup_seconds: 2,
        thresholds: ThresholdsSpec::default(),
        drained: true,
        ..Facts::default()
    }
}

#[test]
fn no_loss_run_passes_with_window_throughput() {
    let start = snap(2.0, 10, 5, 10, 5, 0);
    let end = snap(12.0, 110, 55, 110, 50, 5);
    let r = build(&facts(), &end, (Some(&start), &end), Vec::new());
    assert_eq!(r.total.generated, 165);
    assert_eq!(
        (r.total.delivered, r.total.errors, r.total.lost),
        (160, 5, 0)
    );
    assert_eq!(r.measured_seconds, 10.0);
    // (160 - 15) delivered in 10 s.
    assert_eq!(r.total.throughput_per_second, 14.5);
    assert_eq!(r.tenants[0].throughput_per_second, 10.0);
    assert_eq!(r.tenants[0].clients, 2);
    assert_eq!(r.tenants[0].cache_hit_rate_permille, Some(300));
    assert_eq!(r.tenants[1].deferred, 3);
    assert_eq!(r.proxy_cache.hit_rate_permille, Some(750));
    // 5 errors over 145 sent + 5 errors in the window.
    assert_eq!(r.thresholds[0].observed, Some(33));
    assert!(!r.thresholds[0].passed, "33‰ > the default 10‰");
    assert_eq!(r.verdict, verdict::THRESHOLD_BREACHED);
    assert_eq!(r.figures.delivered, Some(160));
    assert_eq!(r.per_tenant.len(), 2);
}

#[test]
fn a_lost_message_fails_as_delivery_mismatch() {
    let end = snap(10.0, 100, 50, 100, 49, 0);
    let r = build(&facts(), &end, (None, &end), Vec::new());
    assert_eq!(r.total.lost, 1);
    assert_eq!(r.tenants[1].lost, 1);
    let lost = r.thresholds.iter().find(|t| t.name == "maxLostMessages");
    assert_eq!(lost.map(|t| (t.observed, t.passed)), Some((Some(1), false)));
    assert_eq!(r.verdict, verdict::DELIVERY_MISMATCH);
    assert!(!r.passed);
}

#[test]
fn clean_run_passes_and_interrupt_aborts() {
    let end = snap(10.0, 100, 50, 100, 50, 0);
    let r = build(&facts(), &end, (None, &end), Vec::new());
    assert!(r.passed, "{:?}", r.thresholds);
    assert_eq!(r.total.latency_ms.map(|l| l.p99), Some(300.0));
    let f = Facts {
        interrupted: true,
        ..facts()
    };
    let r = build(&f, &end, (None, &end), Vec::new());
    assert_eq!((r.verdict.as_str(), r.passed), (ABORTED_BY_USER, false));
}

#[test]
fn external_smtp_counts_proxy_sent_and_skips_sink_checks() {
    let mut end = snap(10.0, 100, 50, 100, 50, 0);
    end.sink = None;
    let f = Facts {
        external_smtp: true,
        ..facts()
    };
    let r = build(&f, &end, (None, &end), Vec::new());
    assert_eq!(r.delivered_source, "proxy");
    assert_eq!(r.total.delivered, 150);
    assert_eq!(r.total.duplicates, None);
    assert_eq!(r.figures.delivered, None);
    let ratio = r
        .thresholds
        .iter()
        .find(|t| t.name == "minDeliveredRatioPermille");
    assert_eq!(ratio.map(|t| t.observed), Some(None));
    // Not measured is not passed: without a verifying sink the run fails unless the spec
    // switches the sink's thresholds off.
    assert_eq!(r.verdict, verdict::NOT_MEASURED);
    assert!(r.message.contains("maxLostMessages"), "{}", r.message);
    let f = Facts {
        external_smtp: true,
        thresholds: ThresholdsSpec {
            disabled: pressure_crds::verdict::cases::NEEDS_SINK.to_vec(),
            ..ThresholdsSpec::default()
        },
        ..facts()
    };
    let r = build(&f, &end, (None, &end), Vec::new());
    assert!(r.passed, "{:?}", r.thresholds);
}

#[test]
fn impossible_throughput_fails() {
    let end = snap(10.0, 100, 50, 100, 50, 0);
    let mut f = facts();
    f.thresholds.min_throughput_per_second = 1_000_000;
    let r = build(&f, &end, (None, &end), Vec::new());
    assert_eq!(r.verdict, verdict::THRESHOLD_BREACHED);
    assert_eq!(r.thresholds[2].observed, Some(15));
}

/// One client, the proxy and the sink (or none, as with `--smtp`) reporting these counts at `t`.
fn snap_of(c: &pressure_crds::verdict::cases::Counts, t: f64) -> Snapshot {
    let (proxy, client, sink) = c.sources();
    Snapshot {
        t,
        clients: vec![(pressure_crds::verdict::cases::TENANT.into(), client)],
        proxy,
        sink,
        sink_buckets: Vec::new(),
    }
}

#[test]
fn the_shared_table_gives_the_same_verdict_locally() {
    for case in pressure_crds::verdict::cases::cases() {
        let f = Facts {
            tenants: vec![("t".into(), 1)],
            thresholds: case.thresholds.clone(),
            // A run without the verifying sink is a run with `--smtp`.
            external_smtp: case.end.sink.is_none(),
            ..facts()
        };
        let start = snap_of(&case.start, 0.0);
        let end = snap_of(&case.end, case.seconds as f64);
        let r = build(&f, &end, (Some(&start), &end), Vec::new());
        case.check(&r.thresholds, &r.verdict, &r.message);
        assert_eq!(
            r.passed,
            case.reason == verdict::THRESHOLDS_PASSED,
            "{}",
            case.name
        );
    }
}
