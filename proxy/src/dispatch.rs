//! The dispatcher (PROTOCOL.md §6): claims eligible messages in batches, sends each through the
//! pipeline of [`pipeline`] under a per-replica and a per-account concurrency limit, and writes
//! outcomes in batches ([`outcomes`]). Messages with attachments get only part of the replica's
//! slots, so that small messages never queue behind downloads.
//!
//! There is no batch barrier: a slow message holds only its own slot, and the next claim is made
//! as soon as fewer than half a claim's worth of messages are outstanding. Leases of the rows in
//! flight (claimed, outcome not yet written) are extended every third of the lease, so a replica
//! that dies loses nothing: its leases expire and another replica (or itself, restarted) sends
//! the rows.

pub mod directory;
pub mod outcomes;
pub mod pipeline;

use std::{
    collections::{HashMap, HashSet},
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, mpsc};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::{
    attachments::Loader,
    config::{Config, Delays},
    mail::Transport,
    metrics::Metrics,
    store::{Store, now_ts, queue::Claimed},
};

/// Dispatcher settings, taken from [`Config`].
#[derive(Debug, Clone)]
pub struct DispatchSettings {
    /// Concurrent sends per replica.
    pub max_concurrent_sends: usize,
    /// Of these, how many may send messages with attachments at once (the rest are kept for
    /// small messages: `GMP_SMALL_MESSAGE_SLOTS`).
    pub attachment_sends: usize,
    /// Concurrent sends per account.
    pub max_sends_per_account: usize,
    /// Rows outstanding (claimed, not yet written back) per replica.
    pub claim_batch_size: usize,
    /// Claim cap per account and pass.
    pub batch_size_per_account: i64,
    /// Lease of claimed rows.
    pub lease_seconds: i64,
    /// Idle poll.
    pub idle_interval: Duration,
    /// Retries before an error.
    pub max_retries: i64,
    /// Retry delays.
    pub retry_delays: Delays,
    /// Starts of a large message without an outcome before it is parked.
    pub max_starts_without_outcome: i64,
}

impl DispatchSettings {
    /// Settings from the process configuration.
    pub fn from_config(c: &Config) -> Self {
        let sends = c.max_concurrent_sends.max(1);
        DispatchSettings {
            max_concurrent_sends: sends,
            attachment_sends: attachment_sends(sends, c.small_message_slots),
            max_sends_per_account: c.max_sends_per_account.max(1),
            claim_batch_size: c.claim_batch_size.max(1) as usize,
            batch_size_per_account: i64::from(c.batch_size_per_account.max(1)),
            lease_seconds: i64::try_from(c.claim_lease_seconds.max(3)).unwrap_or(120),
            idle_interval: c.send_loop_interval(),
            max_retries: c.max_retries.max(0),
            retry_delays: c.retry_delays.clone(),
            max_starts_without_outcome: c.max_starts_without_outcome.max(1),
        }
    }
}

/// Send slots for messages with attachments: all of them but those kept for small messages
/// (`reserved`, else a quarter rounded up), and always at least one.
fn attachment_sends(sends: usize, reserved: Option<usize>) -> usize {
    let reserved = reserved.unwrap_or(sends.div_ceil(4));
    sends.saturating_sub(reserved).max(1)
}

/// Shortest gap between two claims when the previous one came back short but not empty.
const RECLAIM_GAP: Duration = Duration::from_millis(20);

/// The send loop of one replica.
pub struct Dispatcher {
    store: Store,
    transport: Arc<dyn Transport>,
    loader: Arc<Loader>,
    metrics: Arc<Metrics>,
    settings: DispatchSettings,
    /// `<hostname>-<8 hex>`: owner of this replica's claims.
    replica: String,
    /// Woken by intake and run-now: the database may hold new work.
    wake: Arc<Notify>,
    /// Woken when a send ends or outcomes are written: a slot or claim room is free again.
    freed: Notify,
    /// Woken after each batch of outcomes, so the sync delivers their reports promptly.
    reports_wake: Arc<Notify>,
    /// Bounds sends per replica.
    global: Arc<Semaphore>,
    /// Bounds the sends of messages with attachments, under `global`: the difference is the
    /// small messages' lane.
    with_attachments: Arc<Semaphore>,
    /// Bounds sends per account `pk`.
    per_account: Mutex<HashMap<String, Arc<Semaphore>>>,
    /// Claimed rows whose outcome is not yet written.
    outstanding: AtomicUsize,
    /// Their pks: the rows whose leases are extended.
    in_flight: Mutex<HashSet<String>>,
    directory: directory::Directory,
}

impl Dispatcher {
    /// A dispatcher; `wake` is shared with the intake paths.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        store: Store,
        transport: Arc<dyn Transport>,
        loader: Arc<Loader>,
        metrics: Arc<Metrics>,
        settings: DispatchSettings,
        replica: String,
        wake: Arc<Notify>,
        reports_wake: Arc<Notify>,
    ) -> Arc<Self> {
        Arc::new(Dispatcher {
            directory: directory::Directory::new(store.clone()),
            global: Arc::new(Semaphore::new(settings.max_concurrent_sends)),
            with_attachments: Arc::new(Semaphore::new(settings.attachment_sends)),
            store,
            transport,
            loader,
            metrics,
            settings,
            replica,
            wake,
            freed: Notify::new(),
            reports_wake,
            per_account: Mutex::new(HashMap::new()),
            outstanding: AtomicUsize::new(0),
            in_flight: Mutex::default(),
        })
    }

    /// Runs until `shutdown`; then stops claiming, lets sends in flight finish for up to 10 s,
    /// aborts the rest and releases the claims of messages not started or aborted.
    ///
    /// Claimed rows wait in a local queue ordered by priority and enqueue time; a row starts when
    /// both a replica slot and a slot of its account are free, so a busy account never blocks the
    /// others and priorities hold within the replica.
    ///
    /// Claims are paced by what the previous one found: after a full claim, or one in which an
    /// account filled its per-account cap, the loop claims again at once (a single account's
    /// burst once waited 20 ms per 50 rows: 2,200 msg/s at most); after a short one that found
    /// rows, no sooner than `RECLAIM_GAP`; after an empty one, at the idle interval (retries
    /// coming due, expired leases). Intake and run-now wake it for an immediate claim; a finished
    /// send only starts queued rows. Claiming on every finished send cost a statement or two per
    /// message.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        let (tx, rx) = mpsc::unbounded_channel();
        let writer = tokio::spawn(self.clone().write_outcomes(rx, shutdown.clone()));
        let leases = tokio::spawn(self.clone().extend_leases(shutdown.clone()));
        let mut queue: Vec<Claimed> = Vec::new();
        let mut tasks = tokio::task::JoinSet::new();
        // Pks of the sends started and not yet joined, by task.
        let mut running: HashMap<tokio::task::Id, String> = HashMap::new();
        // When the next claim may run (see above).
        let mut claim_at = Instant::now();
        while !shutdown.is_cancelled() {
            let now = Instant::now();
            let outstanding = self.outstanding.load(Ordering::Acquire);
            // Rows waiting for the attachment lane do not hold back the claims of small messages,
            // up to a claim's worth of them: a replica holds at most twice the claim size.
            let waiting = queue.iter().filter(|c| c.has_attachments).count();
            let counted = outstanding.saturating_sub(waiting.min(self.settings.claim_batch_size));
            let room = self.settings.claim_batch_size.saturating_sub(counted);
            let mut full = false;
            if now >= claim_at && counted <= self.settings.claim_batch_size / 2 && room > 0 {
                match self.claim(room).await {
                    Ok(rows) => {
                        // Full, or an account filled its cap: more rows may be waiting now.
                        full = rows.len() == room
                            || filled_an_account_cap(&rows, self.settings.batch_size_per_account);
                        claim_at = if full {
                            now
                        } else if rows.is_empty() {
                            now + self.settings.idle_interval
                        } else {
                            now + RECLAIM_GAP
                        };
                        self.outstanding.fetch_add(rows.len(), Ordering::AcqRel);
                        self.lock_in_flight()
                            .extend(rows.iter().map(|c| c.pk.clone()));
                        queue.extend(rows);
                        queue.sort_by_key(|c| (c.priority, c.queued_us));
                    }
                    Err(e) => {
                        warn!(error = %e, "Claim failed; retrying after the idle interval.");
                        claim_at = now + self.settings.idle_interval;
                    }
                }
            }
            self.start_ready(&mut queue, &mut tasks, &mut running, &tx);
            while let Some(joined) = tasks.try_join_next_with_id() {
                running.remove(&joined_id(&joined));
            }
            if !full || queue.len() >= self.settings.claim_batch_size / 2 {
                // A claim due but held back by outstanding rows waits for them to be written.
                let now = Instant::now();
                let until = if claim_at > now {
                    claim_at
                } else {
                    now + self.settings.idle_interval
                };
                tokio::select! {
                    _ = self.wake.notified() => claim_at = Instant::now(),
                    _ = self.freed.notified() => {}
                    _ = tokio::time::sleep_until(until) => {}
                    _ = shutdown.cancelled() => {}
                }
            }
        }
        let drained = tokio::time::timeout(Duration::from_secs(10), async {
            while let Some(joined) = tasks.join_next_with_id().await {
                running.remove(&joined_id(&joined));
            }
        })
        .await;
        if drained.is_err() {
            warn!(
                in_flight = tasks.len(),
                "Sends still in flight after 10 s; aborting them and releasing their claims."
            );
            tasks.abort_all();
            while tasks.join_next().await.is_some() {}
        }
        drop(tx);
        let _ = writer.await;
        leases.abort();
        // Rows never started, and rows whose send was aborted (their outcome was never handed
        // to the writer): released, so a restarted or surviving replica sends them at once.
        let pks: Vec<String> = queue
            .iter()
            .map(|c| c.pk.clone())
            .chain(running.into_values())
            .collect();
        self.forget(pks.iter().map(String::as_str));
        if !pks.is_empty() {
            match self.store.release_claims(&self.replica, &pks).await {
                Ok(()) => info!(
                    released = pks.len(),
                    "Released claims of messages not sent."
                ),
                Err(e) => warn!(error = %e, "Could not release claims; they will expire."),
            }
        }
    }

    /// Starts every queued row, in order, whose account has a free slot, while replica slots last.
    /// A row with attachments also needs a slot of their lane: downloads can hold a send for
    /// seconds, and small messages keep the slots that lane leaves over.
    fn start_ready(
        self: &Arc<Self>,
        queue: &mut Vec<Claimed>,
        tasks: &mut tokio::task::JoinSet<()>,
        running: &mut HashMap<tokio::task::Id, String>,
        tx: &mpsc::UnboundedSender<outcomes::Done>,
    ) {
        let mut i = 0;
        while i < queue.len() {
            if self.global.available_permits() == 0 {
                break;
            }
            let lane = if queue[i].has_attachments {
                match self.with_attachments.clone().try_acquire_owned() {
                    Ok(p) => Some(p),
                    Err(_) => {
                        i += 1;
                        continue;
                    }
                }
            } else {
                None
            };
            let Ok(global) = self.global.clone().try_acquire_owned() else {
                break;
            };
            let account = self.account_semaphore(queue[i].account_pk.as_deref().unwrap_or(""));
            match account.try_acquire_owned() {
                Ok(slot) => {
                    let row = queue.remove(i);
                    let pk = row.pk.clone();
                    let (me, tx) = (self.clone(), tx.clone());
                    let permits = Permits {
                        _global: global,
                        _account: slot,
                        _lane: lane,
                    };
                    let handle = tasks.spawn(async move { me.process(row, tx, permits).await });
                    running.insert(handle.id(), pk);
                }
                Err(_) => i += 1,
            }
        }
    }

    async fn claim(&self, room: usize) -> Result<Vec<Claimed>, crate::store::StoreError> {
        let (rows, statements) = self
            .store
            .claim(
                &self.replica,
                room as i64,
                self.settings.batch_size_per_account,
                now_ts(),
                self.settings.lease_seconds,
            )
            .await?;
        self.metrics.db_round_trips.inc_by(statements);
        Ok(rows)
    }

    fn account_semaphore(&self, account_pk: &str) -> Arc<Semaphore> {
        let mut map = self.per_account.lock().unwrap_or_else(|e| e.into_inner());
        map.entry(account_pk.to_string())
            .or_insert_with(|| Arc::new(Semaphore::new(self.settings.max_sends_per_account)))
            .clone()
    }

    async fn extend_leases(self: Arc<Self>, shutdown: CancellationToken) {
        let every = Duration::from_secs((self.settings.lease_seconds / 3).max(1) as u64);
        loop {
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = shutdown.cancelled() => return,
            }
            let pks: Vec<String> = self.lock_in_flight().iter().cloned().collect();
            if pks.is_empty() {
                continue;
            }
            let until = now_ts() + self.settings.lease_seconds;
            if let Err(e) = self.store.extend_leases(&self.replica, &pks, until).await {
                warn!(error = %e, "Lease extension failed.");
            }
        }
    }

    fn lock_in_flight(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.in_flight.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Drops rows from the in-flight set: their outcome is written, given up or released.
    fn forget<'a>(&self, pks: impl Iterator<Item = &'a str>) {
        let mut set = self.lock_in_flight();
        for pk in pks {
            set.remove(pk);
        }
    }

    /// The replica id.
    pub fn replica(&self) -> &str {
        &self.replica
    }
}

/// True when some account has `cap` rows or more in this claim: the per-account cap, not the
/// supply, may have cut the claim short. (An account with a smaller `batch_size` of its own is
/// not seen here; its rows wait for the next paced claim, as before.)
fn filled_an_account_cap(rows: &[Claimed], cap: i64) -> bool {
    let mut per_account: HashMap<&str, i64> = HashMap::new();
    rows.iter().any(|r| {
        let n = per_account
            .entry(r.account_pk.as_deref().unwrap_or(""))
            .or_default();
        *n += 1;
        *n >= cap
    })
}

/// The slots one send holds until it ends: the replica's, its account's and, for a message with
/// attachments, one of their lane.
pub(crate) struct Permits {
    _global: OwnedSemaphorePermit,
    _account: OwnedSemaphorePermit,
    _lane: Option<OwnedSemaphorePermit>,
}

/// The task id of a joined send, finished or failed.
fn joined_id(joined: &Result<(tokio::task::Id, ()), tokio::task::JoinError>) -> tokio::task::Id {
    match joined {
        Ok((id, ())) => *id,
        Err(e) => e.id(),
    }
}

#[cfg(test)]
mod tests {
    use super::{attachment_sends, filled_an_account_cap};
    use crate::store::queue::Claimed;

    fn row(account: &str) -> Claimed {
        Claimed {
            pk: String::new(),
            id: String::new(),
            tenant_id: "t".into(),
            account_id: Some(account.into()),
            account_pk: Some(account.into()),
            priority: 2,
            payload: Some("{}".into()),
            payload_bytes: 2,
            has_attachments: false,
            retry_count: 0,
            queued_us: 0,
        }
    }

    #[test]
    fn a_claim_cut_by_an_account_cap_is_seen() {
        let rows: Vec<Claimed> = ["a", "b", "a", "a"].iter().map(|a| row(a)).collect();
        assert!(filled_an_account_cap(&rows, 3), "three rows of `a`");
        assert!(!filled_an_account_cap(&rows, 4));
        assert!(!filled_an_account_cap(&[], 1));
    }

    #[test]
    fn the_attachment_lane_leaves_a_quarter_of_the_slots_and_keeps_one() {
        assert_eq!(attachment_sends(10, None), 7);
        assert_eq!(attachment_sends(16, None), 12);
        assert_eq!(attachment_sends(1, None), 1, "a single slot is shared");
        assert_eq!(attachment_sends(4, Some(0)), 4, "0 keeps none");
        assert_eq!(
            attachment_sends(4, Some(9)),
            1,
            "attachments always get one"
        );
    }
}
