//! A whole SMTP session of the sink (`client_sim::sink::smtp::session`) fed arbitrary client
//! bytes through an in-memory pipe: command parsing, AUTH dialogues, DATA terminator search,
//! dot-unstuffing, the size limit, injected faults and the verification of each message. It
//! must never panic or hang, and every reply line it writes must be a well-formed SMTP reply.
#![no_main]

use std::sync::{Arc, OnceLock};

use client_sim::sink::{SinkConfig, SinkState, faults::FaultConfig, smtp};
use libfuzzer_sys::fuzz_target;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
    })
}

fn state() -> Arc<SinkState> {
    static STATE: OnceLock<Arc<SinkState>> = OnceLock::new();
    STATE
        .get_or_init(|| {
            let config = SinkConfig {
                faults: FaultConfig {
                    fail_4xx_permille: 100,
                    fail_5xx_permille: 100,
                    drop_permille: 50,
                    delay_ms: 0,
                    seed: 7,
                },
                max_message_bytes: 4096,
                ..SinkConfig::default()
            };
            runtime()
                .block_on(SinkState::new(config))
                .expect("sink state")
        })
        .clone()
}

fuzz_target!(|data: &[u8]| {
    let state = state();
    runtime().block_on(async move {
        let (mut client, server) = tokio::io::duplex(64 * 1024);
        let input = data.to_vec();
        let talk = async move {
            client.write_all(&input).await?;
            client.shutdown().await?;
            let mut replies = Vec::new();
            client.read_to_end(&mut replies).await?;
            Ok::<_, std::io::Error>(replies)
        };
        let (session, replies) = tokio::join!(smtp::session(server, state), talk);
        let _ = session;
        let replies = replies.unwrap_or_default();
        for line in replies.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            let line = line.strip_suffix(b"\r").expect("replies end in CRLF");
            assert!(line.len() >= 3 && line[..3].iter().all(u8::is_ascii_digit), "{line:?}");
            assert!(matches!(line.get(3), None | Some(b' ') | Some(b'-')), "{line:?}");
        }
    });
});
