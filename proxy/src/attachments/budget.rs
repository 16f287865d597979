//! The attachment memory budget (PROTOCOL.md §5.6, `GMP_ATTACHMENT_MEMORY_BUDGET_MB`): a message
//! reserves the size of its attachments before they are read into memory and keeps the
//! reservation until it is built and sent. A message that would exceed the budget waits (the
//! semaphore is fair, first come first served); one larger than the whole budget takes all of it
//! and so proceeds alone. The bytes held are exposed in `gmp_attachment_memory_bytes`.
//!
//! What a message reserves is its peak footprint while it is sent: the raw content, which the
//! send encodes a chunk at a time (`mail::formatted`), plus one encoded chunk and lettre's
//! dot-stuffed copy of it ([`footprint`]). Before the chunked send, one 50 MiB attachment grew
//! the proxy by 136 MiB (two base64 copies of the whole message).
//!
//! Permits are KiB, so a budget up to 4 TiB fits the semaphore's `u32` requests. A budget of 0
//! disables the bound.

use std::sync::Arc;

use prometheus_client::metrics::gauge::Gauge;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The replica's budget.
#[derive(Debug)]
pub struct Budget {
    sem: Option<Arc<Semaphore>>,
    total_kib: u32,
    gauge: Gauge,
}

/// A reservation; released (and the gauge lowered) on drop.
#[derive(Debug)]
pub struct BudgetGuard {
    _permit: Option<OwnedSemaphorePermit>,
    bytes: i64,
    /// The reservation took the whole budget (it was larger): nothing else runs beside it.
    whole: bool,
    gauge: Gauge,
}

impl BudgetGuard {
    /// True when this reservation already covers a footprint of `bytes`, so a message that
    /// reserved before loading its payload needs no second reservation (waiting for a second
    /// one while holding the first could deadlock two messages).
    pub fn covers(&self, bytes: u64) -> bool {
        self.whole || u64::try_from(self.bytes).is_ok_and(|held| held >= bytes)
    }
}

/// The bytes a message with `raw` attachment bytes holds at its peak: the content and a chunk
/// in flight (encoded, and lettre's dot-stuffed copy of it).
pub fn footprint(raw: u64) -> u64 {
    const CHUNK: u64 = 2 * 78 * crate::mail::formatted::CHUNK_LINES as u64;
    if raw == 0 {
        0
    } else {
        raw.saturating_add(CHUNK)
    }
}

impl Budget {
    /// A budget of `mb` MiB reporting into `gauge`.
    pub fn new(mb: u64, gauge: Gauge) -> Self {
        let total_kib = u32::try_from(mb.saturating_mul(1024)).unwrap_or(u32::MAX);
        Budget {
            sem: (total_kib > 0).then(|| Arc::new(Semaphore::new(total_kib as usize))),
            total_kib,
            gauge,
        }
    }

    /// Waits until `bytes` fit in the budget (all of it when larger) and reserves them.
    pub async fn reserve(&self, bytes: u64) -> BudgetGuard {
        let kib = u32::try_from(bytes.div_ceil(1024))
            .unwrap_or(u32::MAX)
            .min(self.total_kib);
        let permit = match &self.sem {
            Some(sem) if kib > 0 => sem.clone().acquire_many_owned(kib).await.ok(),
            _ => None,
        };
        let whole = self.sem.is_none() || kib == self.total_kib;
        let bytes = i64::try_from(bytes).unwrap_or(i64::MAX);
        self.gauge.inc_by(bytes);
        BudgetGuard {
            _permit: permit,
            bytes,
            whole,
            gauge: self.gauge.clone(),
        }
    }
}

impl Drop for BudgetGuard {
    fn drop(&mut self) {
        self.gauge.dec_by(self.bytes);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn the_footprint_is_the_content_and_a_chunk() {
        assert_eq!(footprint(0), 0);
        assert_eq!(footprint(57), 57 + 2 * 78 * 1024);
        let f = footprint(50 * 1024 * 1024) as f64 / (50.0 * 1024.0 * 1024.0);
        assert!((1.0..1.01).contains(&f), "{f}");
    }

    #[tokio::test]
    async fn a_message_over_the_remaining_budget_waits() {
        let gauge = Gauge::default();
        let budget = Arc::new(Budget::new(1, gauge.clone()));
        let first = budget.reserve(700 * 1024).await;
        assert_eq!(gauge.get(), 700 * 1024);
        let b = budget.clone();
        let second = tokio::spawn(async move { b.reserve(400 * 1024).await });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!second.is_finished(), "700 + 400 KiB exceed 1 MiB");
        drop(first);
        let second = second.await.unwrap();
        assert_eq!(gauge.get(), 400 * 1024);
        drop(second);
        assert_eq!(gauge.get(), 0);
    }

    #[tokio::test]
    async fn a_message_larger_than_the_budget_proceeds_alone() {
        let budget = Arc::new(Budget::new(1, Gauge::default()));
        let big = budget.reserve(5 * 1024 * 1024).await;
        let b = budget.clone();
        let small = tokio::spawn(async move { b.reserve(1).await });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(
            !small.is_finished(),
            "the big message holds the whole budget"
        );
        drop(big);
        small.await.unwrap();
    }
}
