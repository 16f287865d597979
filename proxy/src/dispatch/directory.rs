//! A short-lived cache of accounts and tenants for the dispatcher, so the hot path makes no
//! database round trip per message for data that rarely changes. Entries live five seconds: an
//! account change reaches the dispatcher within that time.

use std::{collections::HashMap, sync::Mutex, time::Duration};

use tokio::time::Instant;

use crate::store::{Result, Store, accounts::Account, tenants::Tenant};

const TTL: Duration = Duration::from_secs(5);

type Entry<T> = (Instant, Option<T>);

/// Cached lookups by account `pk` and tenant id.
pub struct Directory {
    store: Store,
    accounts: Mutex<HashMap<String, Entry<Account>>>,
    tenants: Mutex<HashMap<String, Entry<Tenant>>>,
}

impl Directory {
    /// An empty cache over `store`.
    pub fn new(store: Store) -> Self {
        Directory {
            store,
            accounts: Mutex::default(),
            tenants: Mutex::default(),
        }
    }

    /// The account with this primary key, if it exists.
    pub async fn account(&self, pk: &str) -> Result<Option<Account>> {
        if let Some(hit) = fresh(&self.accounts, pk) {
            return Ok(hit);
        }
        let found = self.store.account_by_pk(pk).await?;
        put(&self.accounts, pk, found.clone());
        Ok(found)
    }

    /// The tenant with this id, if it exists.
    pub async fn tenant(&self, id: &str) -> Result<Option<Tenant>> {
        if let Some(hit) = fresh(&self.tenants, id) {
            return Ok(hit);
        }
        let found = self.store.tenant(id).await?;
        put(&self.tenants, id, found.clone());
        Ok(found)
    }
}

fn fresh<T: Clone>(map: &Mutex<HashMap<String, Entry<T>>>, key: &str) -> Option<Option<T>> {
    let map = map.lock().unwrap_or_else(|e| e.into_inner());
    map.get(key)
        .filter(|(at, _)| at.elapsed() < TTL)
        .map(|(_, v)| v.clone())
}

fn put<T>(map: &Mutex<HashMap<String, Entry<T>>>, key: &str, value: Option<T>) {
    map.lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(key.to_string(), (Instant::now(), value));
}
