//! The Grafana dashboard "Mail Proxy - Pressure Test" (uid `mailproxy-pressure`): the seed's
//! panels over the `gmp_*` series (protocol §8.3) plus delivery latency and per-tenant pending.

use serde_json::{Value, json};

/// One PromQL target with a legend.
fn target(expr: &str, legend: &str, ref_id: &str) -> Value {
    json!({ "expr": expr, "legendFormat": legend, "refId": ref_id,
            "datasource": { "type": "prometheus", "uid": "prometheus" } })
}

/// A panel at grid position (x, y) of size (w, h).
fn panel(id: u32, kind: &str, title: &str, pos: [u32; 4], targets: Vec<Value>) -> Value {
    json!({
        "id": id, "type": kind, "title": title,
        "gridPos": { "x": pos[0], "y": pos[1], "w": pos[2], "h": pos[3] },
        "datasource": { "type": "prometheus", "uid": "prometheus" },
        "targets": targets,
    })
}

/// A stat panel with colour steps `[(colour, from)]` over a green base.
fn stat(id: u32, title: &str, x: u32, expr: &str, steps: &[(&str, u32)]) -> Value {
    let mut p = panel(id, "stat", title, [x, 8, 4, 4], vec![target(expr, "", "A")]);
    let mut s = vec![json!({ "color": "green", "value": null })];
    s.extend(steps.iter().map(|(c, v)| json!({ "color": c, "value": v })));
    p["fieldConfig"] = json!({ "defaults": { "thresholds": { "mode": "absolute", "steps": s } } });
    p
}

/// The dashboard JSON for the PressureTest `name`.
pub fn dashboard(name: &str) -> Value {
    let panels = vec![
        panel(
            1,
            "timeseries",
            "Send Rate (per second)",
            [0, 0, 16, 8],
            vec![
                target(
                    "sum by (account_id) (rate(gmp_sent_total[1m]))",
                    "sent/s {{account_id}}",
                    "A",
                ),
                target(
                    "sum by (account_id) (rate(gmp_errors_total[1m]))",
                    "errors/s {{account_id}}",
                    "B",
                ),
            ],
        ),
        stat(
            2,
            "Pending Messages",
            16,
            "max(gmp_pending_messages)",
            &[("yellow", 100), ("red", 500)],
        ),
        stat(3, "Total Sent", 0, "sum(gmp_sent_total)", &[]),
        stat(4, "Total Errors", 4, "sum(gmp_errors_total)", &[("red", 1)]),
        stat(
            5,
            "Total Deferred",
            8,
            "sum(gmp_deferred_total)",
            &[("orange", 1)],
        ),
        stat(
            6,
            "Rate Limited",
            12,
            "sum(gmp_rate_limited_total)",
            &[("yellow", 1)],
        ),
        panel(
            7,
            "timeseries",
            "Cumulative Sent by Account",
            [0, 12, 12, 8],
            vec![target(
                "sum by (account_id) (gmp_sent_total)",
                "{{account_id}}",
                "A",
            )],
        ),
        panel(
            8,
            "timeseries",
            "Deferrals & Rate Limits",
            [12, 12, 12, 8],
            vec![
                target(
                    "sum by (account_id) (rate(gmp_deferred_total[1m]))",
                    "deferred {{account_id}}",
                    "A",
                ),
                target(
                    "sum by (account_id) (rate(gmp_rate_limited_total[1m]))",
                    "rate_limited {{account_id}}",
                    "B",
                ),
            ],
        ),
        panel(
            9,
            "timeseries",
            "Delivery latency p50/p99 (s)",
            [0, 20, 12, 8],
            vec![
                target(
                    "histogram_quantile(0.5, sum by (le) (rate(gmp_delivery_latency_seconds_bucket[1m])))",
                    "p50",
                    "A",
                ),
                target(
                    "histogram_quantile(0.99, sum by (le) (rate(gmp_delivery_latency_seconds_bucket[1m])))",
                    "p99",
                    "B",
                ),
            ],
        ),
        panel(
            10,
            "timeseries",
            "Pending by tenant",
            [12, 20, 12, 8],
            vec![target(
                "max by (tenant_id) (gmp_pending_messages_by_tenant)",
                "{{tenant_id}}",
                "A",
            )],
        ),
    ];
    json!({
        "uid": "mailproxy-pressure",
        "title": "Mail Proxy - Pressure Test",
        "tags": ["mailproxy", "pressure-test", name],
        "refresh": "5s",
        "time": { "from": "now-15m", "to": "now" },
        "schemaVersion": 39,
        "panels": panels,
    })
}
