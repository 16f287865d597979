//! Live figures: the proxy's Prometheus text (`/metrics` of every replica), each client pod's
//! `/stats` and the verifying sink's `/stats` (or Mailpit's message count), read over HTTP and
//! folded into one [`Reading`].
//!
//! Endpoints are pod IPs found by label, unless `--endpoint-override` (TEST ONLY) names local
//! processes: pods under kwok run nothing, so the e2e suite points the readers at real binaries.

use std::collections::BTreeMap;
use std::time::Duration;

use futures_util::future::join_all;
use mailproxy_proto::stats::{ClientStatsV1, SinkStatsV1};

use crate::status::Reading;
use crate::{Error, Result};
use mailproxy_proto::prom::{self, ProxyMetrics};
pub use pressure_crds::aggregate::{add_catcher_count, aggregate};

/// Where to read figures for one PressureTest.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Endpoints {
    /// Base URLs of proxy replicas (`http://ip:8000`).
    pub proxy: Vec<String>,
    /// (tenant, base URL) of every client pod.
    pub clients: Vec<(String, String)>,
    /// Base URL of the verifying sink.
    pub sink: Option<String>,
    /// Base URL of a mail catcher's API (Mailpit, `sink.kind: Mailpit` or `MailHog`).
    pub catcher: Option<String>,
}

/// What Mailpit answers to `GET /api/v1/messages?limit=1`: `total` is every message it holds
/// (the operator runs it with `MP_MAX_MESSAGES=0`, so none is pruned). Other fields ignored.
#[derive(Debug, serde::Deserialize)]
struct CatcherMessages {
    total: u64,
}

/// Test-only replacements for the endpoints found from pods.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Overrides {
    /// Replaces every proxy endpoint.
    pub proxy: Option<String>,
    /// Replaces the sink endpoint.
    pub sink: Option<String>,
    /// Replaces a tenant's client endpoints.
    pub clients: BTreeMap<String, String>,
}

impl Overrides {
    /// Parses `proxy=URL,sink=URL,client/<tenant>=URL`.
    pub fn parse(text: &str) -> Result<Self> {
        let mut o = Overrides::default();
        for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (key, url) = item
                .split_once('=')
                .ok_or_else(|| Error::Override(item.into()))?;
            if !url.starts_with("http://") && !url.starts_with("https://") {
                return Err(Error::Override(item.into()));
            }
            let url = url.trim_end_matches('/').to_string();
            match key {
                "proxy" => o.proxy = Some(url),
                "sink" => o.sink = Some(url),
                _ => match key.strip_prefix("client/") {
                    Some(tenant) if !tenant.is_empty() => {
                        o.clients.insert(tenant.to_string(), url);
                    }
                    _ => return Err(Error::Override(item.into())),
                },
            }
        }
        Ok(o)
    }

    /// `found` with the overrides applied.
    pub fn apply(&self, mut found: Endpoints, tenants: &[String]) -> Endpoints {
        if let Some(p) = &self.proxy {
            found.proxy = vec![p.clone()];
        }
        if let Some(s) = &self.sink {
            found.sink = Some(s.clone());
        }
        for t in tenants {
            if let Some(url) = self.clients.get(t) {
                found.clients.retain(|(tenant, _)| tenant != t);
                found.clients.push((t.clone(), url.clone()));
            }
        }
        found
    }
}

/// Reads every endpoint concurrently (failures are logged and skipped) and aggregates.
pub async fn read(http: &reqwest::Client, ep: &Endpoints, now: i64) -> Reading {
    let proxies = join_all(ep.proxy.iter().map(|url| async move {
        get_text(http, &format!("{url}/metrics"), MAX_METRICS_BYTES)
            .await
            .map(|text| prom::parse_proxy(&text))
            .inspect_err(|e| tracing::warn!(error = %e, "Proxy metrics unavailable."))
            .ok()
    }));
    let clients = join_all(ep.clients.iter().map(|(tenant, url)| async move {
        get_json::<ClientStatsV1>(http, &format!("{url}/stats"))
            .await
            .map(|stats| (tenant.clone(), stats))
            .inspect_err(|e| tracing::warn!(%tenant, error = %e, "Client stats unavailable."))
            .ok()
    }));
    let sink = async {
        let url = ep.sink.as_ref()?;
        get_json::<SinkStatsV1>(http, &format!("{url}/stats"))
            .await
            .inspect_err(|e| tracing::warn!(error = %e, "Sink stats unavailable."))
            .ok()
    };
    // The sink's latency histogram, for the report timeline's p99 per interval.
    let sink_buckets = async {
        let url = ep.sink.as_ref()?;
        get_text(http, &format!("{url}/metrics"), MAX_METRICS_BYTES)
            .await
            .map(|text| prom::parse_sink_latency(&text))
            .inspect_err(|e| tracing::warn!(error = %e, "Sink metrics unavailable."))
            .ok()
    };
    let catcher = async {
        let url = ep.catcher.as_ref()?;
        get_json::<CatcherMessages>(http, &format!("{url}/api/v1/messages?limit=1"))
            .await
            .inspect_err(|e| tracing::warn!(error = %e, "Mail catcher count unavailable."))
            .ok()
    };
    let (proxies, clients, sink, sink_buckets, catcher) =
        tokio::join!(proxies, clients, sink, sink_buckets, catcher);
    let proxies: Vec<ProxyMetrics> = proxies.into_iter().flatten().collect();
    let clients: Vec<(String, ClientStatsV1)> = clients.into_iter().flatten().collect();
    let mut reading = aggregate(&proxies, &clients, sink.as_ref(), now);
    if let Some(m) = catcher {
        add_catcher_count(&mut reading, i64::try_from(m.total).unwrap_or(i64::MAX));
    }
    if ep.sink.is_some() {
        // Never the proxy's histogram in its place: two readings' buckets must be one histogram.
        reading.latency_buckets = sink_buckets.unwrap_or_default();
    }
    reading
}

/// Tells every client pod to stop generating now (`POST /stop`: `spec.abort`). Best effort: a
/// pod that does not answer is asked again at the next reconcile, and asking twice is harmless.
/// Returns how many answered.
pub async fn stop_clients(http: &reqwest::Client, ep: &Endpoints) -> usize {
    let answers = join_all(ep.clients.iter().map(|(tenant, url)| async move {
        let result = http.post(format!("{url}/stop")).send().await;
        match result {
            Ok(r) if r.status().is_success() => true,
            Ok(r) => {
                tracing::warn!(%tenant, status = %r.status(), "A client refused to stop.");
                false
            }
            Err(e) => {
                tracing::warn!(%tenant, error = %e, "A client could not be told to stop.");
                false
            }
        }
    }))
    .await;
    answers.into_iter().filter(|ok| *ok).count()
}

/// Largest `/metrics` answer read from a proxy replica: far above what a proxy with hundreds of
/// tenants and accounts writes, far below what would strain the operator.
pub const MAX_METRICS_BYTES: usize = 8 << 20;
/// Largest `/stats` answer read from a client or the sink (a few KiB in practice).
pub const MAX_STATS_BYTES: usize = 1 << 20;

/// An HTTP client for figure reads from pods, which run images the PressureTest chose and are
/// not trusted: short timeouts, and no redirects (a pod must not point the operator at the API
/// server, a metadata service or anything else in its network). Bodies are capped by the
/// readers below.
pub fn http_client() -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .connect_timeout(Duration::from_secs(2))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| Error::Figures {
            url: String::new(),
            reason: e.to_string(),
        })
}

/// The body of `GET url` as text, refused when the status is not 2xx (redirects included) or the
/// body exceeds `cap` bytes; at most `cap` bytes are ever held.
async fn get_text(http: &reqwest::Client, url: &str, cap: usize) -> Result<String> {
    let fail = |reason: String| Error::Figures {
        url: url.to_string(),
        reason,
    };
    let mut response = http
        .get(url)
        .send()
        .await
        .map_err(|e| fail(e.to_string()))?;
    let status = response.status();
    if !status.is_success() {
        return Err(fail(format!(
            "answered {status}; redirects are not followed"
        )));
    }
    let too_big = || fail(format!("the answer is larger than {cap} bytes"));
    if response.content_length().is_some_and(|n| n > cap as u64) {
        return Err(too_big());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| fail(e.to_string()))? {
        if body.len() + chunk.len() > cap {
            return Err(too_big());
        }
        body.extend_from_slice(&chunk);
    }
    String::from_utf8(body).map_err(|e| fail(e.to_string()))
}

async fn get_json<T: serde::de::DeserializeOwned>(http: &reqwest::Client, url: &str) -> Result<T> {
    let text = get_text(http, url, MAX_STATS_BYTES).await?;
    serde_json::from_str(&text).map_err(|e| Error::Figures {
        url: url.to_string(),
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_parse_and_apply() {
        let o = Overrides::parse(
            "proxy=http://127.0.0.1:1/, sink=http://127.0.0.1:2,client/std=http://127.0.0.1:3",
        )
        .expect("valid");
        let found = Endpoints {
            proxy: vec!["http://10.0.0.1:8000".into()],
            clients: vec![("std".into(), "http://10.0.0.2:8080".into())],
            ..Endpoints::default()
        };
        let ep = o.apply(found, &["std".to_string()]);
        assert_eq!(ep.proxy, ["http://127.0.0.1:1"]);
        assert_eq!(ep.sink.as_deref(), Some("http://127.0.0.1:2"));
        assert_eq!(
            ep.clients,
            [("std".to_string(), "http://127.0.0.1:3".to_string())]
        );
    }

    /// Serves `router` on 127.0.0.1:0 and returns its base URL.
    async fn serve(router: axum::Router) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(listener, router).await });
        format!("http://{addr}")
    }

    #[tokio::test]
    async fn a_catcher_gives_delivered_only() {
        use axum::routing::get;
        // Mailpit's answer to GET /api/v1/messages?limit=1 (fields as in v1.33.1).
        let body = r#"{"total":7,"unread":7,"count":1,"messages_count":7,"messages_unread":7,"start":0,"tags":[],"messages":[]}"#;
        let catcher =
            serve(axum::Router::new().route("/api/v1/messages", get(move || async move { body })))
                .await;
        let ep = Endpoints {
            catcher: Some(catcher),
            ..Endpoints::default()
        };
        let f = read(&http_client().expect("client"), &ep, 5).await.figures;
        assert_eq!(f.delivered, Some(7));
        assert_eq!(
            (f.duplicates, f.attachment_mismatches),
            (None, None),
            "not measured"
        );
        assert_ne!(f.latency_source, Some(pressure_crds::LatencySource::Sink));
    }

    #[tokio::test]
    async fn read_collects_every_source_over_http() {
        use axum::routing::get;
        let metrics = "gmp_sent_total{tenant_id=\"a\",tenant_name=\"A\",account_id=\"x\",account_name=\"x\"} 9\ngmp_pending_messages 2\n";
        let proxy =
            serve(axum::Router::new().route("/metrics", get(move || async move { metrics }))).await;
        let stats = ClientStatsV1 {
            messages_generated: 10,
            ..ClientStatsV1::default()
        };
        let client = serve(
            axum::Router::new().route("/stats", get(move || async move { axum::Json(stats) })),
        )
        .await;
        let mut sink_stats = SinkStatsV1::default();
        sink_stats.total.received = 9;
        let sink = serve(
            axum::Router::new().route("/stats", get(move || async move { axum::Json(sink_stats) })),
        )
        .await;
        let ep = Endpoints {
            // The second proxy refuses connections: it is skipped, not fatal.
            proxy: vec![proxy, "http://127.0.0.1:1".into()],
            clients: vec![("a".into(), client)],
            sink: Some(sink),
            catcher: None,
        };
        let r = read(&http_client().expect("client"), &ep, 5).await;
        assert!(r.proxy_seen);
        assert_eq!(
            (r.figures.sent, r.figures.pending, r.figures.generated),
            (9, 2, 10)
        );
        assert_eq!(
            (r.figures.delivered, r.figures.delivered_ratio_permille),
            (Some(9), Some(900))
        );
    }

    /// A proxy endpoint whose `/metrics` streams `total` bytes of valid Prometheus text, without
    /// a Content-Length, so only a reader that counts what it buffers can stop it.
    fn endless_metrics(total: usize) -> axum::Router {
        use axum::body::Body;
        use axum::routing::get;
        axum::Router::new().route(
            "/metrics",
            get(move || async move {
                let line = "gmp_pending_messages 2\n".repeat(4096);
                let chunks =
                    (0..total / line.len() + 1).map(move |_| Ok::<_, std::io::Error>(line.clone()));
                Body::from_stream(futures_util::stream::iter(chunks))
            }),
        )
    }

    #[tokio::test]
    async fn a_huge_body_is_refused_instead_of_buffered() {
        // 64 MiB: a client image of a PressureTest answering like this must not grow the shared
        // operator by as much.
        let proxy = serve(endless_metrics(64 << 20)).await;
        let http = http_client().expect("client");
        let err = get_text(&http, &format!("{proxy}/metrics"), MAX_METRICS_BYTES)
            .await
            .expect_err("refused");
        assert!(err.to_string().contains("larger than"), "{err}");
        let ep = Endpoints {
            proxy: vec![proxy],
            ..Endpoints::default()
        };
        let r = read(&http, &ep, 5).await;
        assert!(!r.proxy_seen, "the oversized answer is not used");
    }

    #[tokio::test]
    async fn redirects_are_not_followed() {
        use axum::routing::get;
        use std::sync::Arc;
        use std::sync::atomic::{AtomicUsize, Ordering};
        // The target a pod redirects to (e.g. the API server or a cloud metadata service).
        let hits = Arc::new(AtomicUsize::new(0));
        let counted = hits.clone();
        let target = serve(axum::Router::new().route(
            "/metrics",
            get(move || async move {
                counted.fetch_add(1, Ordering::SeqCst);
                "gmp_pending_messages 7\n"
            }),
        ))
        .await;
        let to = format!("{target}/metrics");
        let proxy = serve(axum::Router::new().route(
            "/metrics",
            get(move || async move { axum::response::Redirect::temporary(&to) }),
        ))
        .await;
        let http = http_client().expect("client");
        let ep = Endpoints {
            proxy: vec![proxy.clone()],
            ..Endpoints::default()
        };
        let r = read(&http, &ep, 5).await;
        assert!(!r.proxy_seen, "a redirect is not a reading");
        assert_eq!(
            hits.load(Ordering::SeqCst),
            0,
            "the redirect target was not asked"
        );
        let err = get_text(&http, &format!("{proxy}/metrics"), MAX_METRICS_BYTES)
            .await
            .expect_err("refused");
        assert!(err.to_string().contains("307"), "{err}");
    }

    #[test]
    fn bad_overrides_are_rejected() {
        for bad in [
            "proxy",
            "proxy=127.0.0.1:1",
            "client/=http://x",
            "db=http://x",
        ] {
            assert!(Overrides::parse(bad).is_err(), "{bad}");
        }
    }
}
