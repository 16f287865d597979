//! A replica that starts before its PostgreSQL answers (a pod scheduled before its database's,
//! as on a real node): it waits for `GMP_DB_WAIT_SECONDS` instead of exiting, then serves; with
//! the wait at 0 it fails at once, naming the database, as before.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::{Api, Db, database};
use tokio::net::{TcpListener, TcpStream};

/// A port that nothing listens on (yet).
async fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    l.local_addr().unwrap().port()
}

/// Starts forwarding `port` to `target` (host:port): the database "comes up" on `port`.
async fn forward(port: u16, target: String) {
    let listener = TcpListener::bind(("127.0.0.1", port)).await.unwrap();
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            let target = target.clone();
            tokio::spawn(async move {
                if let Ok(mut outbound) = TcpStream::connect(target).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
            });
        }
    });
}

/// `postgres://user@host:port/db` → (`host:port`, the URL with `port` instead).
fn redirect(url: &str, port: u16) -> (String, String) {
    let (scheme, rest) = url.split_once("://").unwrap();
    let (auth_host, path) = rest.split_once('/').unwrap();
    let (auth, hostport) = match auth_host.rsplit_once('@') {
        Some((a, h)) => (format!("{a}@"), h),
        None => (String::new(), auth_host),
    };
    let host = hostport.rsplit_once(':').map_or(hostport, |(h, _)| h);
    (
        hostport.to_string(),
        format!("{scheme}://{auth}{host}:{port}/{path}"),
    )
}

#[tokio::test]
async fn a_replica_waits_for_a_database_that_is_not_up_yet() {
    let db = database(Db::Postgres).await;
    let port = closed_port().await;
    let (target, url) = redirect(&db.url, port);
    let mut config = common::config(&url);
    config.db_wait_seconds = 60;
    let started = Instant::now();
    let replica = tokio::spawn(common::start(config));
    // Longer than the pool's 10-second acquire timeout: one try alone would have failed.
    tokio::time::sleep(Duration::from_secs(12)).await;
    assert!(
        !replica.is_finished(),
        "the replica gave up (or started) while its database was still down"
    );
    forward(port, target).await;
    let server = tokio::time::timeout(Duration::from_secs(30), replica)
        .await
        .expect("the replica started within 30 s of its database")
        .unwrap();
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(12),
        "started after {waited:?}"
    );
    let (status, body) = Api::new(&server).get("/health").await;
    assert!(status.is_success(), "{status} {body}");
    println!("the replica waited {waited:?} for its database, then served /health");
}

#[tokio::test]
async fn without_a_wait_a_missing_database_fails_the_start_at_once() {
    let db = database(Db::Postgres).await;
    let (_, url) = redirect(&db.url, closed_port().await);
    let mut config = common::config(&url);
    config.db_wait_seconds = 0;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let started = Instant::now();
    let err = match mailproxy::Server::start(config, listener, None).await {
        Ok(_) => panic!("started without a database"),
        Err(e) => format!("{e:#}"),
    };
    assert!(err.contains("opening the postgresql database"), "{err}");
    assert!(
        !err.contains(&db.url),
        "the URL leaked into the error: {err}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn an_upstream_setting_we_do_not_implement_stops_the_start_with_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("mail.db");
    let run = |extra: &[(&str, &str)]| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_mailproxy"));
        cmd.arg("validate")
            .env("GMP_DB_PATH", &db)
            .env_remove("GMP_CONFIG")
            .env_remove("GMP_CLIENT_SYNC_URL");
        for (k, v) in extra {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    };
    let out = run(&[
        ("GMP_CONFIG", "/etc/genro/mail.ini"),
        ("GMP_CLIENT_SYNC_URL", "http://app.example/sync"),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("GMP_CONFIG is set but not supported: configuration files are not read"),
        "{stderr}"
    );
    assert!(
        stderr.contains("GMP_CLIENT_SYNC_URL is set but not supported"),
        "{stderr}"
    );
    assert!(!db.exists(), "the database was opened before the refusal");
    // Without them the same command opens, migrates and exits 0.
    let out = run(&[]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(db.exists());
}
