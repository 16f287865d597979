//! When a run has drained, one definition for the operator and the local runner: every tenant's
//! clients hold a final report (sent or error) for every message they generated. The proxy's
//! pending count alone is not enough: a message the clients generated but the proxy has not
//! fetched yet (its database was away, a replica restarted) is in no queue the proxy can count.

use std::collections::BTreeMap;

/// One client's counts: its tenant, messages generated, distinct messages with a final report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientCounts<'a> {
    /// The tenant the client belongs to.
    pub tenant: &'a str,
    /// Messages the client generated.
    pub generated: u64,
    /// Distinct messages it holds a final report for.
    pub finalized: u64,
}

/// Whether every tenant's clients, summed over replicas, have a final report for every message
/// they generated. No client read means nothing shows the run drained: `false`.
pub fn drained<'a>(clients: impl IntoIterator<Item = ClientCounts<'a>>) -> bool {
    let mut per_tenant: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
    for c in clients {
        let e = per_tenant.entry(c.tenant).or_default();
        e.0 += c.generated;
        e.1 += c.finalized;
    }
    !per_tenant.is_empty() && per_tenant.values().all(|(g, f)| f >= g)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(tenant: &str, generated: u64, finalized: u64) -> ClientCounts<'_> {
        ClientCounts {
            tenant,
            generated,
            finalized,
        }
    }

    #[test]
    fn every_tenant_must_be_finalized_over_its_replicas() {
        assert!(drained([c("a", 10, 4), c("a", 6, 12), c("b", 3, 3)]));
        assert!(!drained([c("a", 10, 10), c("b", 3, 2)]));
    }

    #[test]
    fn one_tenant_cannot_cover_another() {
        assert!(!drained([c("a", 10, 13), c("b", 3, 0)]));
    }

    #[test]
    fn no_clients_is_not_drained() {
        assert!(!drained([]));
    }
}
