//! The resolver policy on fake answers (the one mock: the lookup), then the real attachment
//! client on a real HTTP server on 127.0.0.1, reached by a made-up name that only the fake lookup
//! knows, so a pass proves the client resolves through [`VettedResolver`].

use std::sync::atomic::{AtomicUsize, Ordering};

use axum::{Router, routing::get};

use super::*;

fn ips(list: &[&str]) -> Vec<IpAddr> {
    list.iter().map(|ip| ip.parse().unwrap()).collect()
}

fn hosts(list: &[&str]) -> Hosts {
    Hosts(list.iter().map(|h| h.to_string()).collect())
}

/// A lookup that answers `answers[i]` to its i-th call (the last one after that).
fn fake(answers: Vec<Vec<IpAddr>>) -> (Lookup, Arc<AtomicUsize>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let lookup: Lookup = Arc::new(move |_host: String| {
        let i = counter.fetch_add(1, Ordering::SeqCst);
        let answer = answers[i.min(answers.len() - 1)].clone();
        Box::pin(async move { Ok(answer) })
    });
    (lookup, calls)
}

async fn resolved(r: &VettedResolver, host: &str) -> Result<Vec<SocketAddr>, String> {
    r.resolve(host.parse().unwrap())
        .await
        .map(Iterator::collect)
        .map_err(|e| e.to_string())
}

#[test]
fn internal_answers_are_dropped_unless_the_host_or_range_is_listed() {
    let none = hosts(&[]);
    let mixed = ips(&[
        "169.254.169.254",
        "127.0.0.1",
        "93.184.215.14",
        "fe80::1",
        "::1",
    ]);
    assert_eq!(
        vet("files.test", mixed.clone(), &none).unwrap(),
        ips(&["93.184.215.14"])
    );
    let err = vet("meta.test", ips(&["169.254.169.254", "fe80::2"]), &none).unwrap_err();
    assert_eq!(err.to_string(), "Link-local address not allowed: meta.test");
    let err = vet("svc.test", ips(&["10.96.0.10", "fd00::1"]), &none).unwrap_err();
    assert_eq!(err.to_string(), "Private address not allowed: svc.test");
    let listed = hosts(&["meta.test"]);
    assert_eq!(vet("meta.test", mixed.clone(), &listed).unwrap(), mixed);
    let range = hosts(&["10.96.0.0/12"]);
    assert_eq!(
        vet("svc.test", ips(&["10.96.0.10", "127.0.0.1"]), &range).unwrap(),
        ips(&["10.96.0.10"])
    );
    assert!(vet("empty.test", Vec::new(), &none).unwrap().is_empty());
}

#[tokio::test]
async fn a_rebinding_answer_is_refused_at_connection_time() {
    // First answer safe, second the metadata address: each answer is vetted as it is used.
    let (lookup, calls) = fake(vec![ips(&["93.184.215.14"]), ips(&["169.254.169.254"])]);
    let r = VettedResolver::new(hosts(&[]), lookup);
    assert_eq!(
        resolved(&r, "files.test").await.unwrap(),
        vec![SocketAddr::from(([93, 184, 215, 14], 0))]
    );
    assert_eq!(
        resolved(&r, "files.test").await.unwrap_err(),
        "Link-local address not allowed: files.test"
    );
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

async fn serve_hello() -> u16 {
    let app = Router::new().route("/f", get(|| async { "hello" }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await });
    port
}

#[tokio::test]
async fn the_client_connects_only_to_vetted_addresses() {
    let port = serve_hello().await;
    let url = format!("http://files.test:{port}/f");
    // The test server is on loopback: the range is listed, as a deployment lists its own.
    let (lookup, calls) = fake(vec![ips(&["127.0.0.1"])]);
    let loopback = hosts(&["127.0.0.0/8"]);
    let ok = client(&loopback, lookup).get(&url).send().await.unwrap();
    assert_eq!(ok.text().await.unwrap(), "hello");
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    // Unlisted, the same answer is refused.
    let (lookup, _) = fake(vec![ips(&["127.0.0.1"])]);
    let err = client(&hosts(&[]), lookup)
        .get(&url)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        refusal(&err).map(ToString::to_string).as_deref(),
        Some("Loopback address not allowed: files.test"),
        "{err:?}"
    );
    // A link-local answer (IPv6 without a zone: no packet could leave even if it were tried).
    let (lookup, _) = fake(vec![ips(&["fe80::1"])]);
    let err = client(&hosts(&[]), lookup)
        .get(&url)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        refusal(&err).map(|r| r.host.as_str()),
        Some("files.test"),
        "{err:?}"
    );
}
