//! The MD5 cache (PROTOCOL.md §5.5), per replica: a memory tier (LRU by bytes, TTL, items under the
//! disk threshold) in front of an optional disk tier ([`super::disk`]). Lookups are counted in
//! `gmp_attachment_cache_requests_total{tier,result}`.

use std::{
    collections::{BTreeMap, HashMap},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use bytes::Bytes;
use prometheus_client::metrics::{counter::Counter, family::Family};

use super::{disk::DiskTier, spool::Spool};
use crate::{config::Config, metrics::CacheLabels};

/// Where a hit came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tier {
    /// The memory tier.
    Memory,
    /// The disk tier.
    Disk,
}

/// Both tiers.
pub struct Cache {
    memory: Mutex<MemoryTier>,
    disk: Option<Arc<DiskTier>>,
    threshold: u64,
    requests: Family<CacheLabels, Counter>,
}

impl Cache {
    /// The tiers configured by `GMP_CACHE_*`; the disk tier only with `GMP_CACHE_DISK_DIR`.
    pub fn new(config: &Config, requests: Family<CacheLabels, Counter>) -> Self {
        let disk = config.cache_disk_dir.as_ref().map(|dir| {
            DiskTier::open(
                dir.clone(),
                config.cache_disk_max_mb.saturating_mul(1024 * 1024),
                Duration::from_secs(config.cache_disk_ttl_seconds),
            )
        });
        Cache {
            memory: Mutex::new(MemoryTier::new(
                config.cache_memory_max_mb.saturating_mul(1024 * 1024),
                Duration::from_secs(config.cache_memory_ttl_seconds),
            )),
            disk,
            threshold: config.cache_disk_threshold_kb.saturating_mul(1024),
            requests,
        }
    }

    fn count(&self, tier: &str, hit: bool) {
        self.requests
            .get_or_create(&CacheLabels {
                tier: tier.into(),
                result: if hit { "hit" } else { "miss" }.into(),
            })
            .inc();
    }

    /// Content stored under `key`, memory first.
    pub async fn get(&self, key: &str) -> Option<(Spool, Tier)> {
        let hit = self.memory.lock().ok().and_then(|mut m| m.get(key));
        self.count("memory", hit.is_some());
        if let Some(b) = hit {
            return Some((Spool::Memory(b), Tier::Memory));
        }
        let disk = self.disk.as_ref()?;
        let hit = disk.get(key).await;
        self.count("disk", hit.is_some());
        let spool = hit?;
        if spool.len() < self.threshold {
            // A small item on disk (the threshold changed): promote it.
            if let Ok(b) = spool.to_bytes().await {
                self.put_memory(key, b.clone());
                return Some((Spool::Memory(b), Tier::Disk));
            }
        }
        Some((spool, Tier::Disk))
    }

    /// Stores content under its MD5: small items in memory, the others on disk (if enabled).
    pub async fn put(&self, md5: &str, spool: &Spool) {
        if spool.len() < self.threshold {
            if let Ok(b) = spool.to_bytes().await {
                self.put_memory(md5, b);
            }
        } else if let Some(disk) = &self.disk {
            disk.put(md5, spool).await;
        }
    }

    fn put_memory(&self, key: &str, b: Bytes) {
        if let Ok(mut m) = self.memory.lock() {
            m.put(key, b);
        }
    }
}

struct Entry {
    bytes: Bytes,
    stored: Instant,
    tick: u64,
}

/// LRU by total bytes, with a TTL.
struct MemoryTier {
    map: HashMap<String, Entry>,
    order: BTreeMap<u64, String>,
    total: u64,
    next: u64,
    max: u64,
    ttl: Duration,
}

impl MemoryTier {
    fn new(max: u64, ttl: Duration) -> Self {
        MemoryTier {
            map: HashMap::new(),
            order: BTreeMap::new(),
            total: 0,
            next: 0,
            max,
            ttl,
        }
    }

    fn get(&mut self, key: &str) -> Option<Bytes> {
        let expired = self.map.get(key)?.stored.elapsed() > self.ttl;
        if expired {
            self.remove(key);
            return None;
        }
        self.next += 1;
        let tick = self.next;
        let e = self.map.get_mut(key)?;
        self.order.remove(&e.tick);
        e.tick = tick;
        self.order.insert(tick, key.to_string());
        Some(e.bytes.clone())
    }

    fn put(&mut self, key: &str, bytes: Bytes) {
        let len = bytes.len() as u64;
        if len > self.max {
            return;
        }
        self.remove(key);
        self.next += 1;
        self.order.insert(self.next, key.to_string());
        self.map.insert(
            key.to_string(),
            Entry {
                bytes,
                stored: Instant::now(),
                tick: self.next,
            },
        );
        self.total += len;
        while self.total > self.max {
            let Some((_, oldest)) = self.order.pop_first() else {
                break;
            };
            if let Some(e) = self.map.remove(&oldest) {
                self.total -= e.bytes.len() as u64;
            }
        }
    }

    fn remove(&mut self, key: &str) {
        if let Some(e) = self.map.remove(key) {
            self.order.remove(&e.tick);
            self.total -= e.bytes.len() as u64;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn memory_tier_evicts_least_recently_used_and_expires() {
        let mut m = MemoryTier::new(10, Duration::from_secs(60));
        m.put("a", Bytes::from_static(b"aaaa"));
        m.put("b", Bytes::from_static(b"bbbb"));
        assert!(m.get("a").is_some(), "a is now the most recent");
        m.put("c", Bytes::from_static(b"cccc"));
        assert!(m.get("b").is_none(), "b was least recently used");
        assert!(m.get("a").is_some() && m.get("c").is_some());
        m.put("big", Bytes::from(vec![0u8; 11]));
        assert!(m.get("big").is_none(), "over the tier maximum: not cached");
        assert_eq!(m.total, 8);

        let mut m = MemoryTier::new(10, Duration::ZERO);
        m.put("a", Bytes::from_static(b"a"));
        tokio::time::sleep(Duration::from_millis(5)).await;
        assert!(m.get("a").is_none(), "expired");
        assert_eq!(m.total, 0);
    }

    #[tokio::test]
    async fn small_items_go_to_memory_and_large_ones_to_disk() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = Config::defaults();
        c.cache_disk_dir = Some(dir.path().into());
        c.cache_disk_threshold_kb = 1;
        let cache = Cache::new(&c, Family::default());
        let small = Spool::Memory(Bytes::from_static(b"small"));
        cache.put("k1", &small).await;
        assert_eq!(cache.get("k1").await.map(|h| h.1), Some(Tier::Memory));
        let big = Spool::Memory(Bytes::from(vec![7u8; 2048]));
        let md5 = super::super::spool::md5_hex(&[7u8; 2048]);
        cache.put(&md5, &big).await;
        let (spool, tier) = cache.get(&md5).await.unwrap();
        assert_eq!(tier, Tier::Disk);
        assert_eq!(spool.to_bytes().await.unwrap().len(), 2048);
        assert!(dir.path().join(&md5[..2]).join(&md5).is_file());
        assert!(
            cache
                .get("0123456789abcdef0123456789abcdef")
                .await
                .is_none()
        );
    }
}
