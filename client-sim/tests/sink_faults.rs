//! Fault injection over real SMTP: the configured shares of 451, 550 and dropped connections
//! appear (statistically, seeded), are counted in `faults_injected`, and faulted messages are
//! not counted as received.

mod common;

use std::time::Instant;

use client_sim::sink::SinkConfig;
use client_sim::sink::faults::FaultConfig;
use serde_json::Value;

fn within_five_se(what: &str, count: u64, n: u64, permille: u32) {
    let p = f64::from(permille) / 1000.0;
    let observed = count as f64 / n as f64;
    let se = (p * (1.0 - p) / n as f64).sqrt();
    assert!(
        (observed - p).abs() <= 5.0 * se,
        "{what}: {observed:.4} vs {p} over {n}"
    );
}

#[tokio::test]
async fn configured_shares_of_faults_are_injected() {
    let faults = FaultConfig {
        fail_4xx_permille: 150,
        fail_5xx_permille: 100,
        drop_permille: 50,
        delay_ms: 0,
        seed: 2026,
    };
    let sink = common::start_sink(SinkConfig {
        faults,
        ..SinkConfig::default()
    })
    .await;
    let n = 1500u64;
    let (mut ok, mut temp, mut perm, mut dropped) = (0u64, 0u64, 0u64, 0u64);
    let mut c = common::RawSmtp::connect(sink.smtp).await;
    c.cmd("EHLO f").await;
    for i in 0..n {
        let reply = c
            .message(&format!("Subject: {i}\r\nMessage-ID: <{i}@f>\r\n\r\nbody"))
            .await;
        match reply.get(..3) {
            Some("250") => ok += 1,
            Some("451") => temp += 1,
            Some("550") => perm += 1,
            None => {
                dropped += 1;
                c = common::RawSmtp::connect(sink.smtp).await;
                c.cmd("EHLO f").await;
            }
            Some(other) => panic!("unexpected reply {other}"),
        }
    }
    within_five_se("4xx", temp, n, 150);
    within_five_se("5xx", perm, n, 100);
    within_five_se("drop", dropped, n, 50);
    let s: Value = reqwest::get(sink.http.url("/stats"))
        .await
        .expect("s")
        .json()
        .await
        .expect("j");
    assert_eq!(s["faults_injected"]["4xx"].as_u64(), Some(temp));
    assert_eq!(s["faults_injected"]["5xx"].as_u64(), Some(perm));
    assert_eq!(s["faults_injected"]["drop"].as_u64(), Some(dropped));
    assert_eq!(
        s["total"]["received"].as_u64(),
        Some(ok),
        "faulted messages are not received"
    );
}

#[tokio::test]
async fn delay_slows_the_reply_to_message_data() {
    let faults = FaultConfig {
        delay_ms: 200,
        ..FaultConfig::default()
    };
    let sink = common::start_sink(SinkConfig {
        faults,
        ..SinkConfig::default()
    })
    .await;
    let mut c = common::RawSmtp::connect(sink.smtp).await;
    c.cmd("EHLO d").await;
    let start = Instant::now();
    assert!(
        c.message("Subject: slow\r\n\r\nbody")
            .await
            .starts_with("250")
    );
    assert!(start.elapsed().as_millis() >= 200);
}
