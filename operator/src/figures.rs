//! Live figures: the proxy's Prometheus text (`/metrics` of every replica), each client pod's
//! `/stats` and the verifying sink's `/stats`, read over HTTP and folded into one [`Reading`].
//!
//! Endpoints are pod IPs found by label, unless `--endpoint-override` (TEST ONLY) names local
//! processes: pods under kwok run nothing, so the e2e suite points the readers at real binaries.

pub mod aggregate;

use std::collections::BTreeMap;
use std::time::Duration;

use futures_util::future::join_all;
use mailproxy_proto::stats::{ClientStatsV1, SinkStatsV1};

use crate::status::Reading;
use crate::{Error, Result};
pub use aggregate::aggregate;
use mailproxy_proto::prom::{self, ProxyMetrics};

/// Where to read figures for one PressureTest.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Endpoints {
    /// Base URLs of proxy replicas (`http://ip:8000`).
    pub proxy: Vec<String>,
    /// (tenant, base URL) of every client pod.
    pub clients: Vec<(String, String)>,
    /// Base URL of the verifying sink.
    pub sink: Option<String>,
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
        get_text(http, &format!("{url}/metrics"))
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
    let (proxies, clients, sink) = tokio::join!(proxies, clients, sink);
    let proxies: Vec<ProxyMetrics> = proxies.into_iter().flatten().collect();
    let clients: Vec<(String, ClientStatsV1)> = clients.into_iter().flatten().collect();
    aggregate(&proxies, &clients, sink.as_ref(), now)
}

/// An HTTP client with short timeouts, for figure reads.
pub fn http_client() -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .connect_timeout(Duration::from_secs(2))
        .build()
        .map_err(|e| Error::Figures {
            url: String::new(),
            reason: e.to_string(),
        })
}

async fn get_text(http: &reqwest::Client, url: &str) -> Result<String> {
    let err = |e: reqwest::Error| Error::Figures {
        url: url.to_string(),
        reason: e.to_string(),
    };
    http.get(url)
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .map_err(err)?
        .text()
        .await
        .map_err(err)
}

async fn get_json<T: serde::de::DeserializeOwned>(http: &reqwest::Client, url: &str) -> Result<T> {
    let text = get_text(http, url).await?;
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
            sink: None,
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
