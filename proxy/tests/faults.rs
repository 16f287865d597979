//! The mail path under faults (issue 10), over real processes, PostgreSQL and SMTP. Each test
//! prints what was generated, delivered, reported, lost and duplicated, and asserts that nothing
//! accepted is lost:
//! - the verifying sink of client-sim refuses a share of messages with 451 and 550, answers
//!   slowly and drops connections: temporary failures are retried until delivered, permanent
//!   ones reported as errors, and the tenant receives exactly one final report per message;
//! - PostgreSQL (a throwaway cluster of this test) is restarted mid-run: the proxy reconnects by
//!   itself and delivers every accepted message;
//! - a replica killed with SIGKILL and restarted rejoins: it sends again, nothing is lost;
//! - SIGTERM while sends are in flight: the process exits within 15 s, leaves no message
//!   claimed, and a restarted replica delivers the rest.

#![allow(clippy::unwrap_used)]

mod common;

use std::{
    collections::{HashMap, HashSet},
    time::{Duration, Instant},
};

use client_sim::sink::{SinkConfig, SinkState, faults::FaultConfig};
use common::{
    Api, Db, database,
    process::Proxy,
    sink::{Sink, header},
    tenant_app::TenantApp,
    wait_for,
};
use reqwest::StatusCode;
use serde_json::{Value, json};

fn messages(prefix: &str, range: std::ops::Range<usize>) -> Vec<Value> {
    range
        .map(|i| json!({"id": format!("{prefix}{i:04}"), "to": ["r@x.io"], "subject": format!("s{i}")}))
        .collect()
}

/// Queues `msgs` for `tenant`, retrying while the proxy answers 5xx (database down); true when
/// accepted.
async fn enqueue(api: &Api, tenant: &str, msgs: Vec<Value>) -> bool {
    for _ in 0..100 {
        let r = tokio::time::timeout(
            Duration::from_secs(10),
            api.post(
                "/commands/add-messages",
                json!({"tenant_id": tenant, "messages": msgs}),
            ),
        )
        .await;
        if let Ok((s, b)) = r {
            if s.is_success() {
                assert_eq!(b["queued"].as_u64(), Some(msgs.len() as u64), "{b}");
                return true;
            }
            assert!(s.is_server_error(), "{s} {b}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    false
}

/// Statuses of a tenant's messages by id.
async fn statuses(api: &Api, tenant: &str) -> HashMap<String, String> {
    let (s, b) = api
        .get(&format!("/messages/list?tenant_id={tenant}&limit=10000"))
        .await;
    if !s.is_success() {
        return HashMap::new();
    }
    b.as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["id"].as_str().unwrap().to_string(),
                m["status"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

async fn setup(api: &Api, tenant: &str, smtp_port: u16, app: Option<&TenantApp>) {
    let mut t = json!({"id": tenant, "name": tenant});
    if let Some(app) = app {
        t["client_base_url"] = json!(app.url);
        t["client_sync_path"] = json!("/sync");
    }
    let (s, b) = api.post("/tenant", t).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (s, b) = api
        .post(
            "/account",
            json!({"id": "smtp1", "tenant_id": tenant, "host": "127.0.0.1",
            "port": smtp_port, "sender_email": format!("noreply@{tenant}.test"), "use_tls": false}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sink_faults_are_retried_or_reported_once() {
    const N: usize = 300;
    let smtp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let http = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let smtp_port = smtp.local_addr().unwrap().port();
    let sink = SinkState::new(SinkConfig {
        faults: FaultConfig {
            fail_4xx_permille: 150,
            fail_5xx_permille: 50,
            drop_permille: 50,
            delay_ms: 20,
            seed: 10,
        },
        ..SinkConfig::default()
    })
    .await
    .unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(client_sim::sink::run_with_state(
        smtp,
        http,
        sink.clone(),
        async move {
            let _ = stop_rx.await;
        },
    ));
    let app = TenantApp::start().await;
    let (tdb, dir) = (database(Db::Postgres).await, tempfile::tempdir().unwrap());
    let proxy = Proxy::start(
        &tdb.url,
        &[
            ("GMP_RETRY_DELAYS", "1,1,1"),
            ("GMP_MAX_RETRIES", "12"),
            ("GMP_SYNC_INTERVAL", "1"),
        ],
        dir.path(),
    )
    .await;
    let api = proxy.api.clone();
    setup(&api, "flt", smtp_port, Some(&app)).await;
    assert!(enqueue(&api, "flt", messages("f", 0..N)).await);
    let finals = |reports: &[Value]| -> HashMap<String, Vec<Value>> {
        let mut by_id: HashMap<String, Vec<Value>> = HashMap::new();
        for r in reports {
            if r.get("sent_ts").is_some() || r.get("error_ts").is_some() {
                by_id
                    .entry(r["id"].as_str().unwrap().to_string())
                    .or_default()
                    .push(r.clone());
            }
        }
        by_id
    };
    let done = wait_for(90, || async { finals(&app.reports()).len() == N }).await;
    // Settle: any late duplicate report would arrive now.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let reports = app.reports();
    let by_id = finals(&reports);
    let sent: Vec<&String> = by_id
        .iter()
        .filter(|(_, r)| r[0].get("sent_ts").is_some())
        .map(|(id, _)| id)
        .collect();
    let errors: Vec<&Value> = by_id
        .values()
        .filter(|r| r[0].get("error_ts").is_some())
        .map(|r| &r[0])
        .collect();
    let deferred = reports
        .iter()
        .filter(|r| r.get("deferred_ts").is_some())
        .count();
    let stats = sink.stats.snapshot();
    let twice = by_id.values().filter(|r| r.len() > 1).count();
    println!(
        "sink faults: generated {N}, delivered {} (sink duplicates {}), reported sent {} / error {} / deferred {deferred}, \
         lost {}, final reports twice {twice}; faults injected {:?}",
        stats.total.received,
        stats.total.duplicates,
        sent.len(),
        errors.len(),
        N - by_id.len(),
        stats.faults_injected
    );
    assert!(done, "every message got a final report");
    assert_eq!(twice, 0, "one final report per message");
    assert_eq!(
        stats.total.received as usize,
        sent.len(),
        "delivered = reported sent"
    );
    assert_eq!(stats.total.duplicates, 0);
    for e in &errors {
        let text = e["error"].as_str().unwrap();
        assert!(
            text.contains("550"),
            "only permanent refusals are errors: {text}"
        );
    }
    for class in ["4xx", "5xx", "drop"] {
        assert!(
            stats.faults_injected.get(class).copied().unwrap_or(0) > 0,
            "{class} injected"
        );
    }
    assert!(deferred > 0, "temporary failures were retried");
    let st = statuses(&api, "flt").await;
    assert_eq!(st.values().filter(|s| *s == "sent").count(), sent.len());
    assert_eq!(st.values().filter(|s| *s == "error").count(), errors.len());
    proxy.terminate().await;
    let _ = stop_tx.send(());
    let _ = running.await;
}

/// A PostgreSQL cluster of this test alone (restarting the shared one would break the others).
struct Cluster {
    dir: tempfile::TempDir,
    url: String,
}

fn pg(cmd: &str, dir: &std::path::Path) -> String {
    let lib = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/lib/postgres.sh");
    let out = std::process::Command::new("bash")
        .arg("-c")
        .arg(format!("set -e; source {lib}; {cmd}"))
        .env("D", dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{cmd}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

impl Cluster {
    fn up() -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let out = pg(r#"pg_up "$D/pg" >&2; echo "$GMP_TEST_PG_URL""#, dir.path());
        Cluster {
            url: out.trim().to_string(),
            dir,
        }
    }

    fn restart(&self) -> Duration {
        let t = Instant::now();
        pg(
            r#"pg_as_owner "$PG_BIN/pg_ctl" -D "$D/pg/data" -m fast -w -t 60 restart >/dev/null"#,
            self.dir.path(),
        );
        t.elapsed()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = std::panic::catch_unwind(|| pg(r#"pg_down "$D/pg""#, self.dir.path()));
    }
}

fn distinct_ids(sink: &Sink) -> (usize, usize) {
    let all = sink.messages();
    let ids: HashSet<String> = all
        .iter()
        .filter_map(|m| header(&m.data, "X-Genro-Mail-ID"))
        .collect();
    (ids.len(), all.len())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restart_loses_nothing() {
    let cluster = Cluster::up();
    let sink = Sink::start().await;
    *sink.data_delay.lock().unwrap() = Duration::from_millis(10);
    let dir = tempfile::tempdir().unwrap();
    let proxy = Proxy::start(
        &cluster.url,
        &[("GMP_CLAIM_LEASE_SECONDS", "6"), ("GMP_RETRY_DELAYS", "1")],
        dir.path(),
    )
    .await;
    let api = proxy.api.clone();
    setup(&api, "pgr", sink.port, None).await;
    let mut accepted = 0;
    for batch in 0..3 {
        let range = batch * 100..(batch + 1) * 100;
        assert!(enqueue(&api, "pgr", messages("p", range)).await);
        accepted += 100;
    }
    assert!(wait_for(30, || async { sink.count() >= 50 }).await);
    let before = sink.count();
    let took = cluster.restart();
    // Intake resumes by itself (5xx while the pool reconnects are retried by `enqueue`).
    for batch in 3..5 {
        let range = batch * 100..(batch + 1) * 100;
        assert!(
            enqueue(&api, "pgr", messages("p", range)).await,
            "intake recovers"
        );
        accepted += 100;
    }
    let delivered = wait_for(60, || async { distinct_ids(&sink).0 == accepted }).await;
    let all_sent = wait_for(20, || async {
        let st = statuses(&api, "pgr").await;
        st.len() == accepted && st.values().all(|s| s == "sent")
    })
    .await;
    let (distinct, total) = distinct_ids(&sink);
    println!(
        "postgres restart ({took:?}) after {before} deliveries: accepted {accepted}, delivered {distinct}, \
         duplicates {}, lost {}",
        total - distinct,
        accepted - distinct
    );
    assert!(
        delivered,
        "every accepted message delivered: {distinct}/{accepted}"
    );
    assert!(all_sent, "every message recorded as sent");
    assert!(
        total - distinct <= 50,
        "duplicates bounded by the sends in flight"
    );
    let log = proxy.output();
    let (elapsed, _) = proxy.terminate().await;
    assert!(elapsed < Duration::from_secs(15), "{log}");
}

async fn claimed(url: &str) -> i64 {
    let pool = sqlx::PgPool::connect(url).await.unwrap();
    let n: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM messages WHERE smtp_ts IS NULL AND claimed_by IS NOT NULL",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    pool.close().await;
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_or_releases_in_flight_sends() {
    const N: usize = 60;
    let (sink, tdb) = (Sink::start().await, database(Db::Postgres).await);
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("GMP_MAX_CONCURRENT_SENDS", "5"),
        ("GMP_CLAIM_LEASE_SECONDS", "120"),
        ("GMP_LOG_LEVEL", "INFO"),
    ];
    for (round, delay) in [
        (0, Duration::from_millis(1500)),
        (1, Duration::from_secs(40)),
    ] {
        *sink.data_delay.lock().unwrap() = delay;
        let proxy = Proxy::start(&tdb.url, &env, dir.path()).await;
        let tenant = format!("term{round}");
        setup(&proxy.api, &tenant, sink.port, None).await;
        assert!(enqueue(&proxy.api, &tenant, messages(&format!("{tenant}-"), 0..N)).await);
        assert!(wait_for(20, || async { claimed(&tdb.url).await > 0 }).await);
        tokio::time::sleep(Duration::from_millis(800)).await;
        let before = distinct_ids(&sink).0;
        let log = proxy.log.clone();
        let (elapsed, status) = proxy.terminate().await;
        let log = std::fs::read_to_string(log).unwrap_or_default();
        for line in log
            .lines()
            .filter(|l| l.contains("Shutting") || l.contains("claims") || l.contains("in flight"))
        {
            println!("  proxy: {line}");
        }
        let left = claimed(&tdb.url).await;
        println!(
            "SIGTERM with sends of {delay:?} in flight: exit {status} after {elapsed:?}, \
             {before} delivered before, {left} left claimed"
        );
        assert!(
            elapsed <= Duration::from_secs(15),
            "bounded shutdown: {elapsed:?}"
        );
        assert_eq!(left, 0, "no message left claimed");
        // A restarted replica delivers the rest at once (no lease to wait for).
        *sink.data_delay.lock().unwrap() = Duration::ZERO;
        let next = Proxy::start(&tdb.url, &env, dir.path()).await;
        let done = wait_for(30, || async {
            let st = statuses(&next.api, &tenant).await;
            st.len() == N && st.values().all(|s| s == "sent")
        })
        .await;
        let (distinct, total) = distinct_ids(&sink);
        println!(
            "  restarted replica: {distinct} distinct delivered in all, {} duplicates so far",
            total - distinct
        );
        assert!(done, "the restarted replica delivered every message");
        if round == 0 {
            assert_eq!(
                total, distinct,
                "sends in flight at SIGTERM finished: none repeated"
            );
        }
        next.terminate().await;
    }
    let (distinct, _) = distinct_ids(&sink);
    assert_eq!(distinct, 2 * N, "nothing lost");
}

/// `gmp_sent_total` of one replica for `tenant`.
async fn sent_by(api: &Api, tenant: &str) -> f64 {
    let prefix = format!("gmp_sent_total{{tenant_id=\"{tenant}\"");
    api.get("/metrics")
        .await
        .1
        .as_str()
        .unwrap_or_default()
        .lines()
        .filter(|l| l.starts_with(&prefix))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_replica_restarts_and_rejoins() {
    const N: usize = 600;
    let (sink, tdb) = (Sink::start().await, database(Db::Postgres).await);
    *sink.data_delay.lock().unwrap() = Duration::from_millis(5);
    let dir = tempfile::tempdir().unwrap();
    let env = [("GMP_CLAIM_LEASE_SECONDS", "3")];
    let a = Proxy::start(&tdb.url, &env, dir.path()).await;
    let b = Proxy::start(&tdb.url, &env, dir.path()).await;
    setup(&a.api, "rj", sink.port, None).await;
    assert!(enqueue(&a.api, "rj", messages("k", 0..N / 2)).await);
    assert!(wait_for(30, || async { sink.count() >= 100 }).await);
    a.signal("KILL");
    let port = a.port;
    let mut a = a;
    a.child.wait().await.unwrap();
    let killed_at = sink.count();
    // Restarted where it was; then more work arrives, which both replicas share.
    let a = Proxy::start_on(port, &tdb.url, &env, dir.path()).await;
    assert!(enqueue(&a.api, "rj", messages("k", N / 2..N)).await);
    let delivered = wait_for(60, || async { distinct_ids(&sink).0 == N }).await;
    let (distinct, total) = distinct_ids(&sink);
    let (by_a, by_b) = (sent_by(&a.api, "rj").await, sent_by(&b.api, "rj").await);
    println!(
        "SIGKILL after {killed_at} deliveries, restarted: generated {N}, delivered {distinct}, \
         duplicates {}, lost {}; sent by the restarted replica {by_a}, by the survivor (whole run) {by_b}",
        total - distinct,
        N - distinct
    );
    assert!(delivered, "nothing lost: {distinct}/{N}");
    assert!(by_a > 0.0, "the restarted replica rejoined and sends");
    assert!(
        total - distinct <= 200,
        "duplicates bounded by in-flight work"
    );
    a.terminate().await;
    b.terminate().await;
}
