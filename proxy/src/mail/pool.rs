//! Pooled SMTP connections (PROTOCOL.md §6.5) on top of lettre's `AsyncSmtpConnection`.
//!
//! Why our own pool: lettre's pool never sets `TCP_NODELAY`, so every pooled send stalls about
//! 44 ms on Nagle plus delayed ACK (measured), sends a `NOOP` before each use, and does not
//! bound concurrency. Here each connection is opened on a tokio `TcpStream` with
//! `set_nodelay(true)`; a semaphore per pool key (`host:port:user:tls`) bounds open
//! connections to `GMP_POOL_SIZE`; idle connections are reused without a `NOOP` unless they were
//! idle more than 30 s; a failed transaction is followed by `RSET`, and a broken connection is
//! dropped. Implicit TLS uses lettre's own connector (no `TCP_NODELAY` there; TLS records are
//! written whole, which avoids the split terminator write).

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use futures_util::future::BoxFuture;
use lettre::transport::smtp::{
    authentication::{Credentials, Mechanism},
    client::{AsyncSmtpConnection, TlsParameters},
    commands::{Data, Mail, Rcpt, Rset},
    extension::ClientId,
};
use tokio::{
    net::TcpStream,
    sync::{OwnedSemaphorePermit, Semaphore},
    time::{Instant, timeout},
};

use super::{RefusedRecipient, SmtpTarget, TlsMode, Transport, formatted::Formatted};
use crate::model::retry::Failure;

/// Idle time after which a connection is checked with `NOOP` before reuse.
const CHECK_AFTER_IDLE: Duration = Duration::from_secs(30);
/// Longest wait for a free connection slot.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(30);
/// Connect, TLS and login.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// One SMTP transaction.
const SEND_TIMEOUT: Duration = Duration::from_secs(30);

struct Idle {
    conn: AsyncSmtpConnection,
    since: Instant,
    permit: OwnedSemaphorePermit,
}

struct Slot {
    limit: Arc<Semaphore>,
    idle: Mutex<Vec<Idle>>,
}

/// SMTP connection pools, one per server and login.
pub struct SmtpPool {
    size: usize,
    hello: ClientId,
    slots: Mutex<HashMap<SmtpTarget, Arc<Slot>>>,
}

impl SmtpPool {
    /// A pool keeping at most `size` connections per server and login.
    pub fn new(size: usize) -> Self {
        let host = std::env::var("HOSTNAME")
            .ok()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "localhost".into());
        SmtpPool {
            size: size.max(1),
            hello: ClientId::Domain(host),
            slots: Mutex::new(HashMap::new()),
        }
    }

    fn slot(&self, target: &SmtpTarget) -> Arc<Slot> {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        slots
            .entry(target.clone())
            .or_insert_with(|| {
                Arc::new(Slot {
                    limit: Arc::new(Semaphore::new(self.size)),
                    idle: Mutex::new(Vec::new()),
                })
            })
            .clone()
    }

    /// Quits idle connections older than their account's `ttl`.
    pub async fn sweep(&self) {
        let slots: Vec<(SmtpTarget, Arc<Slot>)> = {
            let slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
            slots.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
        };
        for (target, slot) in slots {
            let ttl = Duration::from_secs(target.ttl_seconds.max(1));
            let expired: Vec<Idle> = {
                let mut idle = slot.idle.lock().unwrap_or_else(|e| e.into_inner());
                let (old, keep) = idle.drain(..).partition(|i| i.since.elapsed() > ttl);
                *idle = keep;
                old
            };
            for mut i in expired {
                let _ = timeout(Duration::from_secs(5), i.conn.quit()).await;
            }
        }
    }

    async fn checkout(
        &self,
        target: &SmtpTarget,
        slot: &Arc<Slot>,
    ) -> Result<(AsyncSmtpConnection, OwnedSemaphorePermit), Failure> {
        loop {
            let reused = slot.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
            match reused {
                Some(mut i) => {
                    if i.since.elapsed() > CHECK_AFTER_IDLE
                        && !timeout(Duration::from_secs(5), i.conn.test_connected())
                            .await
                            .unwrap_or(false)
                    {
                        continue; // Dropping the connection frees its permit.
                    }
                    return Ok((i.conn, i.permit));
                }
                None => break,
            }
        }
        let permit = timeout(ACQUIRE_TIMEOUT, slot.limit.clone().acquire_owned())
            .await
            .map_err(|_| io_failure("Timeout waiting for SMTP connection"))?
            .map_err(|_| io_failure("SMTP pool closed"))?;
        // A connection may have been parked while we waited for the permit.
        if let Some(i) = slot.idle.lock().unwrap_or_else(|e| e.into_inner()).pop() {
            drop(permit);
            return Ok((i.conn, i.permit));
        }
        let conn = timeout(CONNECT_TIMEOUT, self.connect(target))
            .await
            .map_err(|_| {
                io_failure(&format!(
                    "timeout connecting to {}:{}",
                    target.host, target.port
                ))
            })??;
        Ok((conn, permit))
    }

    async fn connect(&self, t: &SmtpTarget) -> Result<AsyncSmtpConnection, Failure> {
        let mut conn = if t.tls == TlsMode::Implicit {
            let tls = TlsParameters::new(t.host.clone()).map_err(lettre_failure)?;
            AsyncSmtpConnection::connect_tokio1(
                (t.host.as_str(), t.port),
                Some(Duration::from_secs(10)),
                &self.hello,
                Some(tls),
                None,
            )
            .await
            .map_err(lettre_failure)?
        } else {
            let stream = TcpStream::connect((t.host.as_str(), t.port))
                .await
                .map_err(|e| io_failure(&format!("connect to {}:{}: {e}", t.host, t.port)))?;
            stream
                .set_nodelay(true)
                .map_err(|e| io_failure(&format!("set TCP_NODELAY: {e}")))?;
            AsyncSmtpConnection::connect_with_transport(Box::new(stream), &self.hello)
                .await
                .map_err(lettre_failure)?
        };
        if t.tls == TlsMode::StartTls {
            if !conn.can_starttls() {
                return Err(Failure {
                    tls: true,
                    text: "STARTTLS required but not offered".into(),
                    ..Failure::default()
                });
            }
            let tls = TlsParameters::new(t.host.clone()).map_err(lettre_failure)?;
            conn.starttls(tls, &self.hello)
                .await
                .map_err(lettre_failure)?;
        }
        if let (Some(user), Some(pass)) = (
            t.user.as_deref().filter(|u| !u.is_empty()),
            t.password.as_deref().filter(|p| !p.is_empty()),
        ) {
            let creds = Credentials::new(user.to_string(), pass.to_string());
            conn.auth(&[Mechanism::Plain, Mechanism::Login], &creds)
                .await
                .map_err(lettre_failure)?;
        }
        Ok(conn)
    }

    async fn transaction(
        conn: &mut AsyncSmtpConnection,
        envelope: &lettre::address::Envelope,
        message: &Formatted,
    ) -> Result<Vec<RefusedRecipient>, Failure> {
        conn.command(Mail::new(envelope.from().cloned(), vec![]))
            .await
            .map_err(lettre_failure)?;
        let mut refused = Vec::new();
        let mut last_failure = None;
        for rcpt in envelope.to() {
            if let Err(e) = conn.command(Rcpt::new(rcpt.clone(), vec![])).await {
                let f = lettre_failure(e);
                if f.code.is_none() {
                    return Err(f);
                }
                refused.push(RefusedRecipient {
                    address: rcpt.to_string(),
                    code: f.code.unwrap_or(0),
                    reason: f.text.clone(),
                });
                last_failure = Some(f);
            }
        }
        if refused.len() == envelope.to().len() {
            // All refused: permanent only when every refusal was 5xx (PROTOCOL.md §6.4).
            let mut f = last_failure.unwrap_or_default();
            let temporary = refused.iter().find(|r| r.code < 500);
            f.code = Some(temporary.map_or(f.code.unwrap_or(550), |r| r.code));
            if refused.len() > 1 {
                let all: Vec<String> = refused
                    .iter()
                    .map(|r| format!("{} {}", r.address, r.code))
                    .collect();
                f.text = format!("all recipients refused ({})", all.join(", "));
            }
            return Err(f);
        }
        conn.command(Data).await.map_err(lettre_failure)?;
        // Chunk by chunk: lettre dot-stuffs each into a copy, so a whole message would be copied.
        conn.message_iter(message.chunks())
            .await
            .map_err(lettre_failure)?;
        Ok(refused)
    }
}

impl Transport for SmtpPool {
    fn send<'a>(
        &'a self,
        target: &'a SmtpTarget,
        envelope: &'a lettre::address::Envelope,
        message: &'a Formatted,
    ) -> BoxFuture<'a, Result<Vec<RefusedRecipient>, Failure>> {
        Box::pin(async move {
            let slot = self.slot(target);
            let (mut conn, permit) = self.checkout(target, &slot).await?;
            let result = match timeout(
                SEND_TIMEOUT,
                Self::transaction(&mut conn, envelope, message),
            )
            .await
            {
                Ok(r) => r,
                Err(_) => Err(io_failure("SMTP transaction timeout")),
            };
            let reusable = match &result {
                Ok(_) => !conn.has_broken(),
                // A refused transaction leaves the connection usable after RSET.
                Err(f) if f.code.is_some() && !conn.has_broken() => {
                    timeout(Duration::from_secs(5), conn.command(Rset))
                        .await
                        .is_ok_and(|r| r.is_ok())
                }
                Err(_) => false,
            };
            if reusable {
                slot.idle
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(Idle {
                        conn,
                        since: Instant::now(),
                        permit,
                    });
            }
            result
        })
    }
}

fn io_failure(text: &str) -> Failure {
    Failure {
        io: true,
        text: text.into(),
        ..Failure::default()
    }
}

/// Maps a lettre error onto the contract's classification inputs.
fn lettre_failure(e: lettre::transport::smtp::Error) -> Failure {
    let code = e.status().and_then(|c| c.to_string().parse::<u16>().ok());
    let text = {
        let t = e.to_string();
        // lettre prefixes "permanent error (550): " style texts; keep the server's words.
        t.split_once("): ")
            .map(|(_, rest)| rest.to_string())
            .unwrap_or(t)
    };
    Failure {
        code,
        tls: e.is_tls(),
        io: code.is_none()
            && !e.is_tls()
            && (e.is_timeout()
                || e.is_transport_shutdown()
                || std::error::Error::source(&e).is_some()),
        text,
    }
}
