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
//!   claimed, and a restarted replica delivers the rest;
//! - PostgreSQL away for 10 s under steady load (issue 15), frozen (postmaster and backends
//!   stopped with SIGSTOP: connections hang) or down (stopped: connections refused): nothing is
//!   lost, nothing is delivered twice, and the backlog drains as soon as it is back;
//! - PostgreSQL stopped while a sync answer with messages is on its way: they are held and
//!   delivered once it is back.

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
    // Read at run time: a test binary reused from a shared target folder may come from another
    // clone, whose path `env!` would have baked in.
    let root = std::env::var("CARGO_MANIFEST_DIR")
        .unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").to_owned());
    let lib = format!("{root}/../scripts/lib/postgres.sh");
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

    /// The postmaster's pid and its children's (backends and background workers).
    fn processes(&self) -> Vec<String> {
        let pidfile = self.dir.path().join("pg/data/postmaster.pid");
        let main = std::fs::read_to_string(pidfile).unwrap();
        let main = main.lines().next().unwrap().trim().to_string();
        let children = std::process::Command::new("pgrep")
            .args(["-P", &main])
            .output()
            .unwrap();
        let mut all = vec![main];
        all.extend(
            String::from_utf8_lossy(&children.stdout)
                .split_whitespace()
                .map(str::to_string),
        );
        all
    }

    /// Sends `signal` to the postmaster and every child it has now.
    fn signal_all(&self, signal: &str) {
        for pid in self.processes() {
            let _ = std::process::Command::new("kill")
                .arg(format!("-{signal}"))
                .arg(&pid)
                .status();
        }
    }

    /// Stops the server (connections refused until [`Cluster::start`]).
    fn stop(&self) {
        pg(
            r#"pg_as_owner "$PG_BIN/pg_ctl" -D "$D/pg/data" -m fast -w -t 60 stop >/dev/null"#,
            self.dir.path(),
        );
    }

    /// Starts the stopped server on its port with the settings of `pg_up`.
    fn start(&self) {
        let port = self
            .url
            .rsplit(':')
            .next()
            .unwrap()
            .split('/')
            .next()
            .unwrap();
        pg(
            &format!(
                r#"pg_as_owner "$PG_BIN/pg_ctl" -D "$D/pg/data" -w -t 60 -l "$D/pg/postgres.log" \
                -o "-p {port} -k $D/pg -c listen_addresses=127.0.0.1 -c fsync=off \
                -c synchronous_commit=off -c full_page_writes=off -c max_connections=400 \
                -c shared_buffers=256MB" start >/dev/null"#
            ),
            self.dir.path(),
        );
    }

    /// Runs `sql` on `template1` (the proxy uses `postgres`).
    async fn admin(&self, sql: &str) {
        use sqlx::{Connection, Executor};
        let base = self.url.rsplit_once('/').unwrap().0;
        let mut conn = sqlx::PgConnection::connect(&format!("{base}/template1"))
            .await
            .unwrap();
        conn.execute(sql).await.unwrap();
        conn.close().await.unwrap();
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

/// Messages stored and messages not yet sent, straight from the database.
async fn unsent(url: &str) -> (i64, i64) {
    let pool = sqlx::PgPool::connect(url).await.unwrap();
    let counts: (i64, i64) =
        sqlx::query_as("SELECT count(*), count(*) FILTER (WHERE smtp_ts IS NULL) FROM messages")
            .fetch_one(&pool)
            .await
            .unwrap();
    pool.close().await;
    counts
}

/// An unsent row: id, claimed_by, claimed_until, deferred_ts, retries, events.
type UnsentRow = (String, Option<String>, Option<i64>, Option<i64>, i64, i64);

/// How PostgreSQL goes away.
#[derive(Debug, Clone, Copy)]
enum Away {
    /// SIGSTOP to the postmaster and its backends: every statement and connection attempt hangs
    /// (a stalled server or a network partition without resets).
    Frozen,
    /// Stopped: connections are refused or reset at once (a restart, a failover).
    Down,
    /// Up, but every connection is cut and every new one answered with a FATAL error at once
    /// (`ALLOW_CONNECTIONS false`), as while a server starts up, shuts down or recovers.
    Refusing,
}

/// Messages of one run: the ids accepted, and the requests that had to be sent again.
#[derive(Default)]
struct Produced {
    accepted: HashSet<String>,
    requests_failed: usize,
}

/// Posts batches of `batch` messages every `every` until `stop`, each batch retried until the
/// proxy answers 2xx (a database outage is a 5xx or a hung request). A message counts as accepted
/// when queued, or rejected as `in progress` / `already sent` (an earlier attempt stored it).
async fn produce(
    api: Api,
    tenant: &'static str,
    batch: usize,
    every: Duration,
    stop: tokio_util::sync::CancellationToken,
) -> Produced {
    let mut out = Produced::default();
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut next = 0usize;
    while !stop.is_cancelled() {
        tick.tick().await;
        let msgs = messages("w", next..next + batch);
        next += batch;
        loop {
            let r = tokio::time::timeout(
                Duration::from_secs(30),
                api.post(
                    "/commands/add-messages",
                    json!({"tenant_id": tenant, "messages": msgs}),
                ),
            )
            .await;
            match r {
                Ok((s, b)) if s.is_success() => {
                    let refused: HashSet<&str> = b["rejected"]
                        .as_array()
                        .map(|a| {
                            a.iter()
                                .inspect(|r| {
                                    let reason = r["reason"].as_str().unwrap_or_default();
                                    assert!(
                                        reason == "in progress" || reason == "already sent",
                                        "{b}"
                                    );
                                })
                                .filter_map(|r| r["id"].as_str())
                                .collect()
                        })
                        .unwrap_or_default();
                    assert!(refused.is_empty() || out.requests_failed > 0, "{b}");
                    for m in &msgs {
                        out.accepted.insert(m["id"].as_str().unwrap().to_string());
                    }
                    break;
                }
                Ok((s, b)) => {
                    assert!(s.is_server_error(), "{s} {b}");
                    out.requests_failed += 1;
                }
                Err(_) => out.requests_failed += 1,
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    out
}

/// Steady load; PostgreSQL away for 10 s in the middle; the load goes on for a while after.
/// Every accepted message must be delivered exactly once, long before a lease could expire (the
/// lease is 10 minutes here: a message whose outcome was dropped would wait for it).
async fn postgres_away_loses_nothing_and_sends_once(away: Away) {
    let rate: usize = std::env::var("GMP_TEST_FAULT_RATE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500);
    let cluster = Cluster::up();
    let sink = Sink::start().await;
    // Each send takes 200 ms at the SMTP server, 100 at a time: sends are always in flight,
    // so outcomes arrive while the database is away (with instant sends, none did).
    *sink.data_delay.lock().unwrap() = Duration::from_millis(200);
    let dir = tempfile::tempdir().unwrap();
    let proxy = Proxy::start(
        &cluster.url,
        &[
            ("GMP_CLAIM_LEASE_SECONDS", "600"),
            ("GMP_RETRY_DELAYS", "1"),
            ("GMP_MAX_CONCURRENT_SENDS", "100"),
            ("GMP_MAX_SENDS_PER_ACCOUNT", "100"),
            ("GMP_POOL_SIZE", "100"),
        ],
        dir.path(),
    )
    .await;
    let api = proxy.api.clone();
    setup(&api, "away", sink.port, None).await;
    let stop = tokio_util::sync::CancellationToken::new();
    // Batches of 50 every 50_000/rate ms.
    let every = Duration::from_micros(50_000_000 / rate as u64);
    let producer = tokio::spawn(produce(api.clone(), "away", 50, every, stop.clone()));
    tokio::time::sleep(Duration::from_secs(5)).await;
    let before = sink.count();
    match away {
        Away::Frozen => cluster.signal_all("STOP"),
        Away::Down => cluster.stop(),
        Away::Refusing => {
            cluster
                .admin(
                    "ALTER DATABASE postgres ALLOW_CONNECTIONS false; \
                     SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                     WHERE datname = 'postgres'",
                )
                .await;
        }
    }
    tokio::time::sleep(Duration::from_secs(10)).await;
    let during = sink.count() - before;
    match away {
        Away::Frozen => cluster.signal_all("CONT"),
        Away::Down => cluster.start(),
        Away::Refusing => {
            cluster
                .admin("ALTER DATABASE postgres ALLOW_CONNECTIONS true")
                .await;
        }
    }
    let back = Instant::now();
    tokio::time::sleep(Duration::from_secs(8)).await;
    stop.cancel();
    let produced = producer.await.unwrap();
    let accepted = produced.accepted.len();
    let delivered = wait_for(60, || async {
        sink.count() >= accepted && distinct_ids(&sink).0 >= accepted
    })
    .await;
    let drained = back.elapsed();
    let all_sent = wait_for(60, || async {
        unsent(&cluster.url).await == (accepted as i64, 0)
    })
    .await;
    // Settle: a late duplicate would arrive now.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (distinct, total) = distinct_ids(&sink);
    let metrics = api.get("/metrics").await.1;
    let held: Vec<&str> = metrics
        .as_str()
        .unwrap_or_default()
        .lines()
        .filter(|l| l.starts_with("gmp_outcome"))
        .collect();
    println!(
        "PostgreSQL {away:?} for 10 s at {rate} msg/s offered: accepted {accepted} \
         ({} requests retried), delivered {distinct} ({during} while away), duplicates {}, \
         lost {}; all delivered {drained:?} after it came back; {held:?}",
        produced.requests_failed,
        total - distinct,
        accepted.saturating_sub(distinct)
    );
    if !delivered || !all_sent {
        let pool = sqlx::PgPool::connect(&cluster.url).await.unwrap();
        let rows: Vec<UnsentRow> = sqlx::query_as(
            "SELECT id, claimed_by, claimed_until, deferred_ts, retry_count, \
             (SELECT count(*) FROM message_events e WHERE e.message_pk = m.pk) \
             FROM messages m WHERE smtp_ts IS NULL ORDER BY id LIMIT 20",
        )
        .fetch_all(&pool)
        .await
        .unwrap();
        println!("unsent (id, claimed_by, claimed_until, deferred_ts, retries, events): {rows:?}");
        let log = proxy.output();
        for l in log
            .lines()
            .filter(|l| l.contains("giving up") || l.contains("discarded") || l.contains("Claim"))
            .take(30)
        {
            println!("  proxy: {l}");
        }
    }
    assert!(
        delivered,
        "every accepted message delivered: {distinct}/{accepted}"
    );
    assert!(all_sent, "every message recorded as sent");
    assert_eq!(total, distinct, "no message delivered twice");
    let log = proxy.output();
    let (elapsed, _) = proxy.terminate().await;
    assert!(elapsed < Duration::from_secs(15), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_frozen_for_10_s_loses_nothing_and_sends_once() {
    postgres_away_loses_nothing_and_sends_once(Away::Frozen).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_down_for_10_s_loses_nothing_and_sends_once() {
    postgres_away_loses_nothing_and_sends_once(Away::Down).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_refusing_for_10_s_loses_nothing_and_sends_once() {
    postgres_away_loses_nothing_and_sends_once(Away::Refusing).await;
}

/// Messages handed over in a sync answer exist only in that answer. PostgreSQL stops while an
/// answer is on its way (the tenant application answers 2 s late): the proxy holds those messages
/// until the database is back and delivers each once. Found on the real node: 96 messages lost
/// when PostgreSQL's pod was deleted during sync calls.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_answers_that_arrive_while_postgres_is_down_are_kept() {
    use std::sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    };
    let cluster = Cluster::up();
    let sink = Sink::start().await;
    let app = TenantApp::start().await;
    let handed: Arc<Mutex<HashSet<String>>> = Arc::default();
    let giving = Arc::new(AtomicBool::new(true));
    let next = Arc::new(AtomicUsize::new(0));
    {
        let (handed, giving, next) = (handed.clone(), giving.clone(), next.clone());
        app.script(move |_| {
            if !giving.load(Ordering::SeqCst) {
                return (StatusCode::OK, r#"{"ok":true}"#.to_string());
            }
            let start = next.fetch_add(5, Ordering::SeqCst);
            let msgs = messages("s", start..start + 5);
            let mut h = handed.lock().unwrap();
            for m in &msgs {
                h.insert(m["id"].as_str().unwrap().to_string());
            }
            let answer = json!({"ok": true, "messages": msgs});
            (StatusCode::OK, answer.to_string())
        });
    }
    let dir = tempfile::tempdir().unwrap();
    let proxy = Proxy::start(&cluster.url, &[("GMP_SYNC_INTERVAL", "1")], dir.path()).await;
    let api = proxy.api.clone();
    setup(&api, "held", sink.port, Some(&app)).await;
    assert!(
        wait_for(20, || async { sink.count() >= 10 }).await,
        "sync messages delivered before the fault"
    );
    // The next call's answer comes 2 s late; PostgreSQL stops as soon as that call has arrived.
    app.delay(Duration::from_secs(2));
    let calls = app.calls().len();
    assert!(wait_for(10, || async { app.calls().len() > calls }).await);
    // Longer than the pool's 10 s wait for a connection, so the answer's write fails.
    cluster.stop();
    tokio::time::sleep(Duration::from_secs(15)).await;
    let during = handed.lock().unwrap().len();
    cluster.start();
    app.delay(Duration::ZERO);
    tokio::time::sleep(Duration::from_secs(3)).await;
    giving.store(false, Ordering::SeqCst);
    let handed = handed.lock().unwrap().clone();
    let delivered = wait_for(60, || async { distinct_ids(&sink).0 >= handed.len() }).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (distinct, total) = distinct_ids(&sink);
    let log = proxy.output();
    println!(
        "sync answers with PostgreSQL down: handed over {} ({during} by the time it was back), \
         delivered {distinct}, duplicates {}, held: {}",
        handed.len(),
        total - distinct,
        log.lines()
            .filter(|l| l.contains("holding the messages"))
            .count()
    );
    assert!(
        log.contains("holding the messages of a sync answer"),
        "an answer arrived while the database was down: {log}"
    );
    assert!(
        delivered,
        "every message handed over is delivered: {distinct}/{}\n{log}",
        handed.len()
    );
    assert_eq!(total, distinct, "no message delivered twice");
}
