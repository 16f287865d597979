//! The outcome writer: collects finished attempts and writes them in batches, one transaction
//! per batch (events plus message state), then counts them in the metrics and frees the slots
//! they held. A batch holds every outcome that arrived during the previous write and during
//! `LINGER` after its first one, so the number of transactions per message falls as the rate
//! rises. The SMTP server has accepted a message before its outcome gets here: the linger delays
//! the bookkeeping (state row, event, report), never a delivery.
//!
//! While the database does not answer (restarted, failed over, stalled), a batch is kept in
//! memory and retried, growing with the outcomes that arrive meanwhile, until the database takes
//! it; the claims of its messages are kept (and their leases extended) all that time, so no
//! message the SMTP server accepted is sent again. The held outcomes are bounded by the claim
//! size (no new claim is made while they are outstanding) and shown in `gmp_outcomes_unwritten`.
//! Giving up after a few tries, as before, left accepted messages claimed until their lease
//! expired, and then sent them twice. Only an error the database returns about the statement
//! itself (data, integrity, syntax: [`StoreError::connection_lost`](crate::store::StoreError::connection_lost) says which) is given up on after a few
//! tries, and at shutdown held outcomes after [`SHUTDOWN_GRACE`]; those rows are sent again when
//! their lease expires.

use std::{
    sync::{Arc, atomic::Ordering},
    time::Duration,
};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, warn};

use super::Dispatcher;
use crate::{
    metrics::{AccountLabels, TenantAccount, TenantLabel},
    store::{
        now_us,
        queue::{Outcome, OutcomeKind},
    },
};

/// Largest batch per transaction.
const MAX_BATCH: usize = 500;
/// How long a batch waits for more outcomes after its first: at most 100 transactions a second
/// instead of one per outcome or two (measured: 0.43 statements per message at 1,000 msg/s
/// without it).
const LINGER: Duration = Duration::from_millis(10);
/// Longest pause between two tries of a batch the database refused.
const MAX_BACKOFF: Duration = Duration::from_secs(1);
/// Tries of a batch the database answered with an error of its own (not a lost connection).
const STATEMENT_TRIES: u32 = 5;
/// How long a batch is still retried once the replica is shutting down.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

/// A finished attempt with what the metrics need.
#[derive(Debug, Clone)]
pub struct Done {
    /// What to write.
    pub outcome: Outcome,
    /// Account id (labels).
    pub account_id: Option<String>,
    /// Tenant name (labels).
    pub tenant_name: Option<String>,
    /// Enqueue time (delivery latency).
    pub queued_us: i64,
    /// SMTP time, when a send was attempted.
    pub send_seconds: Option<f64>,
    /// The attempt was blocked by a rate limit.
    pub rate_limited: bool,
}

impl Dispatcher {
    pub(super) async fn write_outcomes(
        self: Arc<Self>,
        mut rx: mpsc::UnboundedReceiver<Done>,
        shutdown: CancellationToken,
    ) {
        let mut batch = Vec::with_capacity(MAX_BATCH);
        while let Some(first) = rx.recv().await {
            batch.push(first);
            let until = tokio::time::Instant::now() + LINGER;
            while batch.len() < MAX_BATCH {
                match tokio::time::timeout_at(until, rx.recv()).await {
                    Ok(Some(d)) => batch.push(d),
                    // Closed (shutdown: write what we hold) or the linger is over.
                    Ok(None) | Err(_) => break,
                }
            }
            let stale = self.write_batch(&mut batch, &mut rx, &shutdown).await;
            for d in batch.iter().filter(|d| !stale.contains(&d.outcome.pk)) {
                self.count(d);
            }
            self.forget(batch.iter().map(|d| d.outcome.pk.as_str()));
            self.outstanding.fetch_sub(batch.len(), Ordering::AcqRel);
            batch.clear();
            self.freed.notify_one();
            self.reports_wake.notify_one();
        }
    }

    /// Writes `batch`, retrying while the database is away and taking in the outcomes that
    /// arrive meanwhile (up to [`MAX_BATCH`]). Returns the pks of outcomes discarded because the
    /// claim was lost (or, when the batch is given up, all of them).
    async fn write_batch(
        &self,
        batch: &mut Vec<Done>,
        rx: &mut mpsc::UnboundedReceiver<Done>,
        shutdown: &CancellationToken,
    ) -> std::collections::HashSet<String> {
        let mut statement_errors = 0u32;
        let mut backoff = Duration::from_millis(50);
        let mut deadline: Option<tokio::time::Instant> = None;
        let unwritten = &self.metrics.outcomes_unwritten;
        loop {
            let outcomes: Vec<Outcome> = batch.iter().map(|d| d.outcome.clone()).collect();
            self.metrics.db_round_trips.inc();
            let e = match self.store.record_outcomes(&self.replica, &outcomes).await {
                Ok(stale) => {
                    unwritten.set(0);
                    if !stale.is_empty() {
                        warn!(
                            rows = stale.len(),
                            "Outcomes discarded: another replica took these messages over after their lease expired."
                        );
                        self.metrics.outcomes_stale.inc_by(stale.len() as u64);
                    }
                    return stale.into_iter().collect();
                }
                Err(e) => e,
            };
            if !e.connection_lost() {
                statement_errors += 1;
            }
            if shutdown.is_cancelled() {
                deadline.get_or_insert_with(|| tokio::time::Instant::now() + SHUTDOWN_GRACE);
            }
            if statement_errors >= STATEMENT_TRIES
                || deadline.is_some_and(|d| tokio::time::Instant::now() >= d)
            {
                error!(error = %e, rows = outcomes.len(), "Outcome write failed; giving up: the leases will expire and the messages be retried.");
                unwritten.set(0);
                return outcomes.into_iter().map(|o| o.pk).collect();
            }
            unwritten.set(batch.len() as i64);
            warn!(error = %e, rows = batch.len(), "Outcome write failed; keeping the outcomes and retrying.");
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(d) => batch.push(d),
                    Err(_) => break,
                }
            }
        }
    }

    fn count(&self, d: &Done) {
        let labels = AccountLabels::new(
            &d.outcome.tenant_id,
            d.tenant_name.as_deref(),
            d.account_id.as_deref(),
        );
        let m = &self.metrics;
        if d.rate_limited {
            m.rate_limited.get_or_create(&labels).inc();
        }
        match &d.outcome.kind {
            OutcomeKind::Sent { .. } => {
                m.sent.get_or_create(&labels).inc();
                let latency = (now_us() - d.queued_us).max(0) as f64 / 1e6;
                m.delivery_latency
                    .get_or_create(&TenantLabel {
                        tenant_id: labels.tenant_id.clone(),
                    })
                    .observe(latency);
            }
            OutcomeKind::Deferred { reason, until, .. } => {
                debug!(tenant = %labels.tenant_id, pk = %d.outcome.pk, %reason, until, "Message deferred.");
                m.deferred.get_or_create(&labels).inc();
            }
            OutcomeKind::Error { description, .. } => {
                debug!(tenant = %labels.tenant_id, pk = %d.outcome.pk, error = %description, "Message failed.");
                m.errors.get_or_create(&labels).inc();
            }
        }
        if let Some(s) = d.send_seconds {
            m.send_duration
                .get_or_create(&TenantAccount {
                    tenant_id: labels.tenant_id,
                    account_id: labels.account_id,
                })
                .observe(s);
        }
    }
}
