//! The per-message pipeline (PROTOCOL.md §6.2): parse the payload, resolve the account, apply the
//! rate limit, load attachments, build the MIME message, send, and classify the result into an
//! outcome (§6.4). Every failure becomes an outcome; nothing here can leave a message stuck.

use std::sync::{Arc, atomic::Ordering};

use serde_json::json;
use tokio::{sync::mpsc, time::Instant};

use tracing::warn;

use super::{Dispatcher, outcomes::Done};
use crate::{
    attachments::BudgetGuard,
    mail::{SmtpTarget, TlsMode, build},
    model::{
        ratelimit,
        retry::{self, Class, Failure},
        stored::StoredMessage,
    },
    store::{
        accounts::Account,
        now_ts,
        queue::{Claimed, Outcome, OutcomeKind},
    },
};

impl Dispatcher {
    /// Sends one claimed message, holding a replica slot and an account slot, and hands its
    /// outcome to the writer.
    pub(super) async fn process(
        self: Arc<Self>,
        row: Claimed,
        tx: mpsc::UnboundedSender<Done>,
        permits: super::Permits,
    ) {
        let done = self.attempt(&row).await;
        drop(permits);
        self.freed.notify_one();
        if let Err(lost) = tx.send(done) {
            self.forget(std::iter::once(lost.0.outcome.pk.as_str()));
            self.outstanding.fetch_sub(1, Ordering::AcqRel);
        }
    }

    async fn attempt(&self, row: &Claimed) -> Done {
        let now = now_ts();
        let mut done = Done {
            outcome: Outcome {
                pk: row.pk.clone(),
                tenant_id: row.tenant_id.clone(),
                ts: now,
                kind: OutcomeKind::Sent { metadata: None },
            },
            account_id: row.account_id.clone(),
            tenant_name: None,
            queued_us: row.queued_us,
            send_seconds: None,
            rate_limited: false,
        };
        done.outcome.kind = match self.attempt_inner(row, &mut done).await {
            Ok(kind) => kind,
            Err(f) => self.failure_outcome(row, &f),
        };
        done
    }

    async fn attempt_inner(&self, row: &Claimed, done: &mut Done) -> Result<OutcomeKind, Failure> {
        let internal = |e: crate::store::StoreError| Failure {
            io: true,
            text: format!("Internal error: {e}"),
            ..Failure::default()
        };
        let (mut msg, held) = match self.payload(row).await? {
            Ok(loaded) => loaded,
            Err(parked) => return Ok(parked),
        };
        self.store
            .open_attachment_auth(&mut msg.attachments)
            .map_err(internal)?;
        let tenant = self
            .directory
            .tenant(&row.tenant_id)
            .await
            .map_err(internal)?;
        done.tenant_name = tenant.as_ref().and_then(|t| t.name.clone());
        if msg.from.is_empty() {
            return Ok(error_kind("missing 'from'"));
        }
        let account_id = row.account_id.clone().unwrap_or_default();
        let account = match row.account_pk.as_deref() {
            Some(pk) => self.directory.account(pk).await.map_err(internal)?,
            None => None,
        };
        let Some(account) = account else {
            return Ok(error_kind(&format!(
                "Account '{account_id}' not found for tenant '{}'",
                row.tenant_id
            )));
        };
        let windows = ratelimit::windows(
            account.limit_per_minute,
            account.limit_per_hour,
            account.limit_per_day,
        );
        if !windows.is_empty() {
            self.metrics.db_round_trips.inc();
            let now = now_ts();
            if let Some(w) = self
                .store
                .reserve_send(&account.pk, &windows, &row.pk, now)
                .await
                .map_err(internal)?
            {
                done.rate_limited = true;
                let boundary = ratelimit::boundary(now, w);
                return Ok(if account.limit_behavior == "reject" {
                    OutcomeKind::Error {
                        description: "rate_limit_exceeded".into(),
                        metadata: Some(json!({"error_code": 429})),
                    }
                } else {
                    OutcomeKind::Deferred {
                        until: boundary,
                        reason: "rate_limit".into(),
                        retry_count: row.retry_count,
                        metadata: json!({"deferred_ts": boundary}),
                    }
                });
            }
        }
        let result = self
            .load_build_send(row, msg, held, tenant.as_ref(), &account, done)
            .await;
        if result.is_err() && !windows.is_empty() {
            let _ = self.store.cancel_reservation(&row.pk).await;
        }
        result
    }

    /// The message's payload, parsed. A payload the claim left out (larger than
    /// `CLAIMED_PAYLOAD_MAX`: inline attachments) is read now, after reserving three times its
    /// size in the memory budget (its text, the parsed copy and the decoded content), and the
    /// start is counted: past `GMP_MAX_STARTS_WITHOUT_OUTCOME` starts the message is parked with
    /// an error (the inner `Err`) instead of being sent again.
    async fn payload(
        &self,
        row: &Claimed,
    ) -> Result<Result<(StoredMessage, Option<BudgetGuard>), OutcomeKind>, Failure> {
        let parse = |text: &str| {
            serde_json::from_str::<StoredMessage>(text)
                .map_err(|e| permanent(&format!("invalid payload: {e}")))
        };
        if let Some(text) = &row.payload {
            return Ok(Ok((parse(text)?, None)));
        }
        let bytes = u64::try_from(row.payload_bytes).unwrap_or(0);
        let held = self.loader.reserve(bytes.saturating_mul(3)).await;
        self.metrics.db_round_trips.inc();
        let max = self.settings.max_starts_without_outcome;
        let started = self.store.start_large(&row.pk, &self.replica, max).await;
        match started.map_err(|e| temporary(&format!("Internal error: {e}")))? {
            Some((_, Some(text))) => Ok(Ok((parse(&text)?, Some(held)))),
            Some((starts, None)) => {
                self.metrics.parked.inc();
                warn!(tenant = %row.tenant_id, pk = %row.pk, starts, "Message parked: its send started too often without an outcome.");
                Ok(Err(error_kind(&format!(
                    "Message parked: its send started {} times without an outcome \
                     (the proxy stopped while sending it each time)",
                    starts - 1
                ))))
            }
            // Another replica holds the message now: the writer discards this attempt's
            // deferral (the claim guard), and that replica sends it.
            None => Err(temporary("claim lost before the send started")),
        }
    }

    async fn load_build_send(
        &self,
        row: &Claimed,
        mut msg: StoredMessage,
        held: Option<BudgetGuard>,
        tenant: Option<&crate::store::tenants::Tenant>,
        account: &Account,
        done: &mut Done,
    ) -> Result<OutcomeKind, Failure> {
        let loaded = match self.loader.load_all(tenant, &msg.attachments, held).await {
            Ok(a) => a,
            Err(e) if e.temporary => {
                return Err(Failure {
                    io: true,
                    text: e.text,
                    ..Failure::default()
                });
            }
            Err(e) => return Ok(error_kind(&e.text)),
        };
        // The memory-budget reservation is held until the send ends (§5.6).
        let (attachments, _budget) = loaded.into_parts();
        // Inline content is decoded now: its text need not stay in memory during the send.
        msg.attachments = Vec::new();
        let built = match build::build(&msg, &row.pk, attachments) {
            Ok(b) => b,
            Err(e) => return Ok(error_kind(&e.0)),
        };
        let port = u16::try_from(account.port).unwrap_or(25);
        let target = SmtpTarget {
            host: account.host.clone(),
            port,
            user: account.user.clone(),
            password: account.password.clone(),
            tls: TlsMode::of(account.use_ssl, account.use_tls, port),
            ttl_seconds: u64::try_from(account.ttl).unwrap_or(300),
        };
        let started = Instant::now();
        let refused = self
            .transport
            .send(&target, &built.envelope, &built.message)
            .await;
        done.send_seconds = Some(started.elapsed().as_secs_f64());
        let refused = refused?;
        let metadata = (!refused.is_empty()).then(|| {
            json!({"rejected_recipients": refused.iter().map(|r| json!({"address": r.address, "code": r.code, "reason": r.reason})).collect::<Vec<_>>()})
        });
        Ok(OutcomeKind::Sent { metadata })
    }

    /// Temporary failures with retries left are deferred; the rest become errors (§6.4).
    fn failure_outcome(&self, row: &Claimed, f: &Failure) -> OutcomeKind {
        let info = retry::describe(f);
        let code = f.code.map(i64::from);
        match retry::classify(f) {
            Class::Temporary if row.retry_count < self.settings.max_retries => {
                let n = row.retry_count + 1;
                let until = now_ts() + self.settings.retry_delays.for_retry(n);
                OutcomeKind::Deferred {
                    until,
                    reason: info,
                    retry_count: n,
                    metadata: json!({"deferred_ts": until, "retry_count": n}),
                }
            }
            Class::Temporary => OutcomeKind::Error {
                description: format!(
                    "Max retries ({}) exceeded: {info}",
                    self.settings.max_retries
                ),
                metadata: Some(json!({"smtp_code": code, "retry_count": row.retry_count})),
            },
            Class::Permanent => OutcomeKind::Error {
                description: info,
                metadata: Some(json!({"smtp_code": code, "retry_count": row.retry_count})),
            },
        }
    }
}

fn temporary(text: &str) -> Failure {
    Failure {
        io: true,
        text: text.into(),
        ..Failure::default()
    }
}

fn permanent(text: &str) -> Failure {
    Failure {
        code: Some(550),
        text: text.into(),
        ..Failure::default()
    }
}

fn error_kind(text: &str) -> OutcomeKind {
    OutcomeKind::Error {
        description: text.into(),
        metadata: None,
    }
}
