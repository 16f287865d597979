//! Warnings about failed sync calls: each names the tenant, the kind of failure and its cause,
//! at most one line per tenant per [`EVERY`]; the failures in between are counted and the next
//! line says how many there were. A success clears the tenant's count, so the first failure
//! after a recovery is logged at once.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use tracing::{info, warn};

/// Shortest time between two warnings about one tenant.
pub const EVERY: Duration = Duration::from_secs(60);

/// Per-tenant state: when the last line was written, failures since then not logged.
#[derive(Debug, Default)]
pub struct FailureLog {
    seen: Mutex<HashMap<String, (Instant, u64)>>,
}

impl FailureLog {
    /// Records a failure at `now`; returns `Some(n)` when a line is due, `n` being the failures
    /// since the last line that were not logged.
    pub fn due(&self, tenant: &str, now: Instant) -> Option<u64> {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        match seen.get_mut(tenant) {
            Some((last, quiet)) if now.duration_since(*last) < EVERY => {
                *quiet += 1;
                None
            }
            Some((last, quiet)) => {
                let n = *quiet;
                (*last, *quiet) = (now, 0);
                Some(n)
            }
            None => {
                seen.insert(tenant.to_string(), (now, 0));
                Some(0)
            }
        }
    }

    /// Warns about a failed call when a line is due.
    pub fn failed(&self, tenant: &str, failure: &str, cause: &str) {
        if let Some(unlogged) = self.due(tenant, Instant::now()) {
            warn!(
                tenant,
                failure,
                cause,
                unlogged,
                "Sync call failed (further failures of this tenant are logged at most once a minute)."
            );
        }
    }

    /// Clears the tenant's state after a successful call, saying so if it had failed.
    pub fn succeeded(&self, tenant: &str) {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if seen.remove(tenant).is_some() {
            info!(tenant, "Sync calls succeed again.");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_tenant_per_minute_counting_the_rest() {
        let log = FailureLog::default();
        let t0 = Instant::now();
        assert_eq!(log.due("a", t0), Some(0), "the first failure is logged");
        assert_eq!(log.due("a", t0 + Duration::from_secs(5)), None);
        assert_eq!(log.due("a", t0 + Duration::from_secs(30)), None);
        assert_eq!(
            log.due("b", t0 + Duration::from_secs(30)),
            Some(0),
            "tenants apart"
        );
        assert_eq!(log.due("a", t0 + EVERY), Some(2), "two went unlogged");
        assert_eq!(log.due("a", t0 + EVERY + Duration::from_secs(1)), None);
        log.succeeded("a");
        assert_eq!(
            log.due("a", t0 + EVERY + Duration::from_secs(2)),
            Some(0),
            "after a success the next failure is logged at once"
        );
    }
}
