//! The sink over real SMTP: counting, attachment verification (lettre-built MIME), corrupted
//! attachments, duplicate Message-IDs, latency from the creation header, pipelining, AUTH,
//! dot-unstuffing into a Maildir.

mod common;

use base64::Engine;
use client_sim::sink::SinkConfig;
use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::{Attachment, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use md5::{Digest, Md5};
use serde_json::Value;

fn header(name: &'static str, value: String) -> HeaderValue {
    HeaderValue::new(HeaderName::new_from_ascii_str(name), value)
}

fn lettre_message(id: &str, tenant: &str, content: &[u8], md5_header: &str) -> Message {
    let mut builder = Message::builder()
        .from("noreply@x.test".parse().expect("from"))
        .to("user-1@example.com".parse().expect("to"))
        .subject("hello")
        .message_id(Some(format!("<{id}@x.test>")));
    let created = client_sim::unix_micros() - 5_000; // created 5 ms ago
    builder = builder.raw_header(header("X-Pressure-Created-Us", created.to_string()));
    builder = builder.raw_header(header("X-Pressure-Tenant", tenant.to_owned()));
    builder = builder.raw_header(header("X-Pressure-Attachment-Md5", md5_header.to_owned()));
    let attachment = Attachment::new("document.bin".to_owned()).body(
        content.to_vec(),
        ContentType::parse("application/octet-stream").expect("ct"),
    );
    builder
        .multipart(
            MultiPart::mixed()
                .singlepart(SinglePart::plain("body".to_owned()))
                .singlepart(attachment),
        )
        .expect("build")
}

async fn stats(sink: &common::Sink) -> Value {
    reqwest::get(sink.http.url("/stats"))
        .await
        .expect("stats")
        .json()
        .await
        .expect("json")
}

#[tokio::test]
async fn lettre_messages_are_counted_and_verified() {
    let sink = common::start_sink(SinkConfig::default()).await;
    let transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous("127.0.0.1")
        .port(sink.smtp.port())
        .credentials(Credentials::new("test".to_owned(), "test".to_owned()))
        .build();
    for i in 0..3u8 {
        let content: Vec<u8> = (0..300_000u32)
            .map(|b| (b as u8).wrapping_mul(i + 7))
            .collect();
        let md5 = hex::encode(Md5::digest(&content));
        transport
            .send(lettre_message(&format!("m{i}"), "acme", &content, &md5))
            .await
            .expect("send");
    }
    // One corrupted: the header names a different MD5.
    let content = vec![1u8; 1000];
    let wrong = hex::encode(Md5::digest(b"other"));
    transport
        .send(lettre_message("bad", "acme", &content, &wrong))
        .await
        .expect("send");

    let s = stats(&sink).await;
    let acme = &s["tenants"]["acme"];
    assert_eq!(acme["received"], 4);
    assert_eq!(acme["attachments_verified"], 4);
    assert_eq!(acme["attachment_mismatches"], 1);
    assert_eq!(acme["duplicates"], 0);
    assert_eq!(s["total"]["received"], 4);
    let latency = &acme["latency_ms"];
    assert_eq!(latency["count"], 4);
    let p50 = latency["p50"].as_f64().expect("p50");
    assert!(
        (5.0..5_000.0).contains(&p50),
        "latency from the header: {latency}"
    );
    let metrics = reqwest::get(sink.http.url("/metrics"))
        .await
        .expect("m")
        .text()
        .await
        .expect("t");
    assert!(
        metrics.contains("sink_received_total{tenant=\"acme\"} 4"),
        "{metrics}"
    );
    assert!(metrics.contains("sink_attachment_mismatches_total{tenant=\"acme\"} 1"));
}

#[tokio::test]
async fn duplicate_message_ids_and_unknown_tenants_are_flagged() {
    let sink = common::start_sink(SinkConfig {
        allow_reset: true,
        ..SinkConfig::default()
    })
    .await;
    let mut c = common::RawSmtp::connect(sink.smtp).await;
    assert!(c.cmd("EHLO t").await.contains("PIPELINING"));
    let abc = base64::engine::general_purpose::STANDARD.encode("abc");
    let md5 = hex::encode(Md5::digest(b"abc"));
    let now = client_sim::unix_micros();
    for _ in 0..2 {
        let reply = c
            .message(&common::mail("same@x", "t1", now, &md5, &abc))
            .await;
        assert!(reply.starts_with("250"), "{reply}");
    }
    let plain = "Subject: no headers\r\nMessage-ID: <other@x>\r\n\r\nbody";
    assert!(c.message(plain).await.starts_with("250"));
    let s = stats(&sink).await;
    assert_eq!(s["tenants"]["t1"]["duplicates"], 1);
    assert_eq!(s["tenants"]["t1"]["received"], 2);
    assert_eq!(s["tenants"]["t1"]["attachment_mismatches"], 0);
    assert_eq!(s["tenants"]["unknown"]["received"], 1);
    assert_eq!(s["total"]["duplicates"], 1);
    // A reset forgets the seen ids too.
    reqwest::Client::new()
        .post(sink.http.url("/reset"))
        .send()
        .await
        .expect("reset");
    assert!(
        c.message(&common::mail("same@x", "t1", now, &md5, &abc))
            .await
            .starts_with("250")
    );
    assert_eq!(stats(&sink).await["total"]["duplicates"], 0);
    assert!(c.cmd("QUIT").await.starts_with("221"));
}

#[tokio::test]
async fn pipelined_commands_are_answered_in_order() {
    let sink = common::start_sink(SinkConfig::default()).await;
    let mut c = common::RawSmtp::connect(sink.smtp).await;
    c.send(b"EHLO p\r\nMAIL FROM:<a@x> SIZE=100\r\nRCPT TO:<b@y>\r\nRCPT TO:<c@y>\r\nDATA\r\n")
        .await;
    assert!(c.reply().await.contains("250 AUTH PLAIN LOGIN"));
    for expected in ["250", "250", "250", "354"] {
        let r = c.reply().await;
        assert!(r.starts_with(expected), "expected {expected}, got {r}");
    }
    // Body, then a whole second transaction and QUIT, in one write.
    c.send(
        b"Subject: one\r\n\r\nfirst\r\n.\r\nRSET\r\nMAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\n\
          Subject: two\r\n\r\nsecond\r\n.\r\nNOOP\r\nQUIT\r\n",
    )
    .await;
    for expected in ["250", "250", "250", "250", "354", "250", "250", "221"] {
        let r = c.reply().await;
        assert!(r.starts_with(expected), "expected {expected}, got {r}");
    }
    assert_eq!(stats(&sink).await["total"]["received"], 2);
}

#[tokio::test]
async fn protocol_errors_and_auth_flows() {
    let sink = common::start_sink(SinkConfig::default()).await;
    let mut c = common::RawSmtp::connect(sink.smtp).await;
    assert!(c.cmd("HELO x").await.starts_with("250"));
    assert!(c.cmd("RCPT TO:<b@y>").await.starts_with("503"));
    assert!(c.cmd("DATA").await.starts_with("503"));
    assert!(c.cmd("BOGUS").await.starts_with("500"));
    assert!(
        c.cmd("AUTH PLAIN AHRlc3QAdGVzdA==")
            .await
            .starts_with("235")
    );
    assert!(c.cmd("AUTH LOGIN").await.starts_with("334 VXNlcm5hbWU6"));
    assert!(c.cmd("dGVzdA==").await.starts_with("334 UGFzc3dvcmQ6"));
    assert!(c.cmd("dGVzdA==").await.starts_with("235"));
    assert!(c.cmd("AUTH CRAM-MD5").await.starts_with("504"));
    assert!(
        c.cmd("MAIL FROM:<a@x> SIZE=999999999999")
            .await
            .starts_with("552")
    );
    assert!(c.cmd("MAIL FROM:<a@x>").await.starts_with("250"));
    assert!(c.cmd("MAIL FROM:<a@x>").await.starts_with("503"));
}

#[tokio::test]
async fn maildir_keeps_unstuffed_messages() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = SinkConfig {
        maildir: Some(dir.path().to_owned()),
        ..SinkConfig::default()
    };
    let sink = common::start_sink(config).await;
    let mut c = common::RawSmtp::connect(sink.smtp).await;
    c.cmd("EHLO m").await;
    // "..dot" is a stuffed ".dot"; a body starting with a dot is stuffed too.
    let reply = c
        .message("Subject: dots\r\n\r\n..dot line\r\nplain\r\n...two")
        .await;
    assert!(reply.starts_with("250"), "{reply}");
    let files: Vec<_> = std::fs::read_dir(dir.path().join("new"))
        .expect("new")
        .collect();
    assert_eq!(files.len(), 1);
    let path = files[0].as_ref().expect("entry").path();
    let stored = std::fs::read_to_string(path).expect("read");
    assert_eq!(
        stored,
        "Subject: dots\r\n\r\n.dot line\r\nplain\r\n..two\r\n"
    );
    assert_eq!(stats(&sink).await["total"]["bytes"], stored.len());
}

#[tokio::test]
async fn big_attachments_are_verified_off_the_async_workers() {
    let sink = common::start_sink(SinkConfig::default()).await;
    let content: Vec<u8> = (0..12 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    let md5 = hex::encode(Md5::digest(&content));
    let b64 = base64::engine::general_purpose::STANDARD.encode(&content);
    let lines: Vec<&str> = b64
        .as_bytes()
        .chunks(76)
        .map(|l| std::str::from_utf8(l).expect("b64"))
        .collect();
    let body = lines.join("\r\n");
    let mut c = common::RawSmtp::connect(sink.smtp).await;
    c.cmd("EHLO big").await;
    let now = client_sim::unix_micros();
    assert!(
        c.message(&common::mail("big1@x", "docs", now, &md5, &body))
            .await
            .starts_with("250")
    );
    let wrong = hex::encode(Md5::digest(b"x"));
    assert!(
        c.message(&common::mail("big2@x", "docs", now, &wrong, &body))
            .await
            .starts_with("250")
    );
    let s = stats(&sink).await;
    assert_eq!(s["tenants"]["docs"]["attachments_verified"], 2);
    assert_eq!(s["tenants"]["docs"]["attachment_mismatches"], 1);
    assert!(s["tenants"]["docs"]["bytes"].as_u64().expect("bytes") > 2 * 16_000_000);
}

#[tokio::test]
async fn oversize_messages_are_refused_and_the_session_goes_on() {
    let config = SinkConfig {
        max_message_bytes: 1000,
        ..SinkConfig::default()
    };
    let sink = common::start_sink(config).await;
    let mut c = common::RawSmtp::connect(sink.smtp).await;
    assert!(c.cmd("EHLO o").await.contains("SIZE 1000"));
    let big = format!("Subject: big\r\n\r\n{}", "x".repeat(100_000));
    assert!(c.message(&big).await.starts_with("552"));
    assert!(
        c.message("Subject: small\r\n\r\nok")
            .await
            .starts_with("250")
    );
    assert_eq!(stats(&sink).await["total"]["received"], 1);
}
