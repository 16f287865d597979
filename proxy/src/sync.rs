//! The sync scheduler (PROTOCOL.md §4): calls every active tenant's application with its pending
//! delivery reports, enqueues the messages it answers with, and honours `queued`,
//! `next_sync_after` (do not disturb), failures with backoff, and the per-tenant lease that lets
//! one replica at a time call a tenant.
//!
//! The loop wakes at least every 250 ms, on run-now and on every batch of dispatch outcomes (so
//! reports travel promptly); calls to different tenants run concurrently, up to
//! `GMP_SYNC_CONCURRENCY`, and a slow or failing tenant never delays the others.

pub mod call;
pub mod failure_log;
pub mod reports;

use std::{
    collections::HashSet,
    sync::{Arc, Mutex},
    time::Duration,
};

use mailproxy_proto::sync::SyncRequestV1;
use tokio::{sync::Notify, time::Instant};
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use crate::{
    config::Config,
    intake::Scope,
    metrics::{Metrics, TenantLabel, TenantOutcome, TenantSource},
    store::{Store, now_ts, sync_state::SyncDone},
};

/// Why one sync call failed, as counted in `gmp_sync_calls_total{outcome}`.
#[derive(Debug)]
enum SyncError {
    /// The call itself failed (HTTP status, timeout, refused address, an answer not understood).
    Call(call::CallFailure),
    /// The proxy's own database failed while preparing or settling the call.
    Database(crate::store::StoreError),
}

impl SyncError {
    /// The `outcome` label.
    fn label(&self) -> &'static str {
        match self {
            SyncError::Call(kind) => kind.label(),
            SyncError::Database(_) => "database_error",
        }
    }
}

/// Sync settings from the process configuration.
#[derive(Debug, Clone)]
struct Settings {
    interval: i64,
    timeout: Duration,
    concurrency: usize,
    report_batch: i64,
    max_attempts: i64,
    max_bytes: usize,
    default_priority: i64,
    limits: crate::model::submit::Limits,
    report_gap: i64,
    /// Hosts and ranges that may be internal (`GMP_ATTACHMENT_ALLOWED_HOSTS`).
    allowed: crate::config::Hosts,
}

/// How long the messages of one sync answer are held while the database is away.
const INLINE_HOLD: Duration = Duration::from_secs(600);

/// The shortest time between two scheduling rounds.
const ROUND_GAP: Duration = Duration::from_millis(10);

/// The sync loop of one replica.
pub struct Scheduler {
    store: Store,
    metrics: Arc<Metrics>,
    client: reqwest::Client,
    settings: Settings,
    replica: String,
    /// Woken by run-now and by dispatch outcomes.
    wake: Arc<Notify>,
    /// Wakes the dispatcher after inline messages are queued.
    dispatch_wake: Arc<Notify>,
    /// Tenants with a call in flight from this replica.
    in_flight: Mutex<HashSet<String>>,
    /// Warnings about failed calls, at most one a minute per tenant.
    failures: failure_log::FailureLog,
}

impl Scheduler {
    /// A scheduler for `replica`.
    pub fn new(
        store: Store,
        metrics: Arc<Metrics>,
        config: &Config,
        replica: String,
        wake: Arc<Notify>,
        dispatch_wake: Arc<Notify>,
    ) -> anyhow::Result<Arc<Self>> {
        // Tenants set their own endpoint: the same vetted client as attachment downloads.
        let client = crate::attachments::resolve::client(
            &config.attachment_allowed_hosts,
            crate::attachments::resolve::system_lookup(),
        );
        Ok(Arc::new(Scheduler {
            store,
            metrics,
            client,
            settings: Settings {
                interval: config.sync_interval.ceil().max(1.0) as i64,
                timeout: Duration::from_secs(config.sync_timeout_seconds.max(1)),
                concurrency: config.sync_concurrency.max(1),
                report_batch: config.report_batch_size.max(1),
                max_attempts: config.report_max_attempts.max(1),
                max_bytes: config.max_request_bytes,
                default_priority: config.default_priority.clamp(0, 3),
                limits: config.limits(),
                report_gap: config.sync_report_min_interval.max(0),
                allowed: config.attachment_allowed_hosts.clone(),
            },
            replica,
            wake,
            dispatch_wake,
            in_flight: Mutex::new(HashSet::new()),
            failures: failure_log::FailureLog::default(),
        }))
    }

    /// Runs until `shutdown`. Wakes (run-now, dispatch outcomes, finished calls) start a
    /// scheduling round at once, but rounds are at least [`ROUND_GAP`] apart: under load the
    /// wakes come hundreds of times a second and each round is a query.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        let mut calls = tokio::task::JoinSet::new();
        let mut last_round: Option<Instant> = None;
        while !shutdown.is_cancelled() {
            if let Some(wait) = last_round.and_then(|t| ROUND_GAP.checked_sub(t.elapsed())) {
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = shutdown.cancelled() => break,
                }
            }
            last_round = Some(Instant::now());
            self.start_due(&mut calls).await;
            while calls.try_join_next().is_some() {}
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(Duration::from_millis(250)) => {}
                _ = shutdown.cancelled() => {}
            }
        }
        let _ = tokio::time::timeout(Duration::from_secs(5), async {
            while calls.join_next().await.is_some() {}
        })
        .await;
    }

    async fn start_due(self: &Arc<Self>, calls: &mut tokio::task::JoinSet<()>) {
        let s = &self.settings;
        let now = now_ts();
        let due = match self
            .store
            .due_tenants(
                now,
                s.interval,
                s.max_attempts,
                (s.concurrency * 4) as i64,
                s.report_gap,
            )
            .await
        {
            Ok(d) => d,
            Err(e) => return warn!(error = %e, "Sync scheduling query failed."),
        };
        for id in due {
            {
                let busy = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
                if busy.len() >= s.concurrency || busy.contains(&id) {
                    continue;
                }
            }
            let lease_until = now + s.timeout.as_secs() as i64 + 30;
            match self
                .store
                .claim_sync(&id, &self.replica, now, lease_until)
                .await
            {
                Ok(true) => {
                    self.in_flight
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(id.clone());
                    let me = self.clone();
                    calls.spawn(async move {
                        me.sync_one(&id).await;
                        me.in_flight
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .remove(&id);
                        me.wake.notify_one();
                    });
                }
                Ok(false) => {}
                Err(e) => warn!(tenant = %id, error = %e, "Sync lease failed."),
            }
        }
    }

    /// One call to one tenant, with its bookkeeping; errors end in backoff, never in a panic.
    async fn sync_one(&self, id: &str) {
        let started = Instant::now();
        let outcome = match self.call(id).await {
            Ok(()) => "ok",
            Err(failure) => {
                if let SyncError::Database(e) = &failure {
                    warn!(tenant = %id, error = %e, "Sync bookkeeping failed.");
                }
                if let Err(e) = self.store.sync_failed(id, &self.replica, now_ts()).await {
                    warn!(tenant = %id, error = %e, "Recording a sync failure failed.");
                }
                failure.label()
            }
        };
        let labels = TenantOutcome {
            tenant_id: id.to_string(),
            outcome: outcome.to_string(),
        };
        self.metrics.sync_calls.get_or_create(&labels).inc();
        self.metrics
            .sync_duration
            .get_or_create(&labels)
            .observe(started.elapsed().as_secs_f64());
    }

    async fn call(&self, id: &str) -> Result<(), SyncError> {
        let s = &self.settings;
        let db = SyncError::Database;
        let Some(tenant) = self.store.tenant(id).await.map_err(db)? else {
            return Ok(());
        };
        let pending = self
            .store
            .pending_reports(id, s.report_batch, s.max_attempts)
            .await
            .map_err(db)?;
        let body = SyncRequestV1 {
            delivery_report: pending.iter().map(reports::entry).collect(),
            tenant_id: None,
        };
        let raw = call::post(
            &self.client,
            &tenant,
            &body,
            s.timeout,
            s.max_bytes,
            &s.allowed,
        )
        .await
        .map_err(|e| {
            self.failures.failed(id, e.kind.label(), &e.cause);
            SyncError::Call(e.kind)
        })?;
        let invalid = |cause: &str| {
            let kind = call::CallFailure::Invalid;
            self.failures.failed(id, kind.label(), cause);
            SyncError::Call(kind)
        };
        let resp = call::parse(&raw).ok_or_else(|| invalid("the answer is not a JSON object"))?;
        if !resp.messages.is_empty() {
            self.enqueue_held(id, &resp.messages).await.map_err(db)?;
        }
        if !resp.ok {
            return Err(invalid("the answer's \"ok\" is not true"));
        }
        self.failures.succeeded(id);
        let now = now_ts();
        let refused_ids = resp.error.iter().cloned().collect();
        let (acked, refused) = reports::settle(&pending, &refused_ids);
        let dnd_until = resp
            .next_sync_after
            .filter(|t| *t > now as f64)
            .map(|t| t.ceil() as i64);
        let more_reports = pending.len() as i64 >= s.report_batch;
        let done = SyncDone {
            now,
            dnd_until,
            requested: dnd_until.is_none() && (resp.queued > 0 || more_reports),
            acked: &acked,
            refused: &refused,
        };
        // One transaction settles the reports and releases the lease.
        self.store
            .sync_succeeded(id, &self.replica, &done)
            .await
            .map_err(db)?;
        let label = TenantLabel {
            tenant_id: id.to_string(),
        };
        self.metrics
            .reports_acked
            .get_or_create(&label)
            .inc_by(acked.len() as u64);
        self.metrics
            .reports_refused
            .get_or_create(&label)
            .inc_by(refused.len() as u64);
        if !resp.not_found.is_empty() {
            debug!(tenant = %id, ids = ?resp.not_found, "Client does not know some reported ids.");
        }
        Ok(())
    }

    /// Messages handed over in a sync answer exist nowhere else (their client counts them as
    /// given), so while the database is away they are held here and written once it answers,
    /// for at most [`INLINE_HOLD`]; a statement the database refuses is not retried. Seen on the
    /// real node: PostgreSQL's pod deleted during calls lost the messages of those answers.
    async fn enqueue_held(
        &self,
        id: &str,
        messages: &[serde_json::Value],
    ) -> crate::store::Result<()> {
        let deadline = Instant::now() + INLINE_HOLD;
        let mut wait = Duration::from_millis(250);
        let mut held = false;
        loop {
            match self.enqueue_inline(id, messages).await {
                Ok(()) => {
                    if held {
                        info!(tenant = %id, count = messages.len(), "Held sync messages written.");
                    }
                    return Ok(());
                }
                Err(e) if e.connection_lost() && Instant::now() < deadline => {
                    if !held {
                        warn!(tenant = %id, count = messages.len(), error = %e,
                            "Database away: holding the messages of a sync answer until it answers.");
                        held = true;
                    }
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_secs(5));
                }
                Err(e) => {
                    error!(tenant = %id, count = messages.len(), error = %e,
                        "Messages of a sync answer could not be stored; they are lost.");
                    return Err(e);
                }
            }
        }
    }

    async fn enqueue_inline(
        &self,
        id: &str,
        messages: &[serde_json::Value],
    ) -> crate::store::Result<()> {
        let intake = Scope {
            default_tenant: Some(id),
            forced_tenant: Some(id),
            default_priority: self.settings.default_priority,
            limits: self.settings.limits,
        };
        let out = self.store.enqueue(messages, intake).await?;
        let labels = |source: &str| TenantSource {
            tenant_id: id.to_string(),
            source: source.to_string(),
        };
        self.metrics
            .enqueued
            .get_or_create(&labels("sync"))
            .inc_by(out.queued);
        self.metrics
            .rejected
            .get_or_create(&labels("sync"))
            .inc_by(out.rejected.len() as u64);
        if out.queued > 0 {
            self.dispatch_wake.notify_one();
        }
        Ok(())
    }
}
