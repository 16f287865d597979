//! The disk tier of the MD5 cache (PROTOCOL.md §5.5, `GMP_CACHE_DISK_*`): files
//! `{dir}/{md5[0:2]}/{md5}`, a total size cap with the oldest files (by mtime) evicted first, a
//! TTL by mtime, sizes tracked in memory (scanned at startup) and expired files swept every 60 s
//! by a task that ends with the tier. A spilled download enters the cache by a hard link when the
//! spool folder is on the same file system, else by a copy; either way it is renamed into place,
//! so readers never see a partial file.

use std::{
    collections::HashMap,
    fs, io,
    path::{Path, PathBuf},
    sync::{Arc, Mutex, Weak},
    time::{Duration, SystemTime},
};

use tracing::warn;

use super::spool::{Spool, SpoolFile};

/// The disk tier.
pub struct DiskTier {
    dir: PathBuf,
    max: u64,
    ttl: Duration,
    index: Mutex<Index>,
}

#[derive(Default)]
struct Index {
    files: HashMap<String, (u64, SystemTime)>,
    total: u64,
}

fn is_md5(key: &str) -> bool {
    key.len() == 32
        && key
            .bytes()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
}

impl DiskTier {
    /// Opens (creating if needed) and scans the folder; starts the sweeper when in a runtime.
    pub fn open(dir: PathBuf, max: u64, ttl: Duration) -> Arc<Self> {
        if let Err(e) = fs::create_dir_all(&dir) {
            warn!(dir = %dir.display(), error = %e, "Cannot create the disk cache folder.");
        }
        let index = Mutex::new(scan(&dir));
        let tier = Arc::new(DiskTier {
            dir,
            max,
            ttl,
            index,
        });
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(sweeper(Arc::downgrade(&tier)));
        }
        tier
    }

    fn path(&self, md5: &str) -> PathBuf {
        self.dir.join(&md5[..2]).join(md5)
    }

    fn expired(&self, mtime: SystemTime) -> bool {
        mtime.elapsed().is_ok_and(|age| age > self.ttl)
    }

    /// The file stored under `key`, open, unless missing or expired.
    pub async fn get(&self, key: &str) -> Option<Spool> {
        if !is_md5(key) {
            return None;
        }
        let (len, mtime) = *self.index.lock().ok()?.files.get(key)?;
        if self.expired(mtime) {
            self.forget(&[key.to_string()]).await;
            return None;
        }
        let path = self.path(key);
        match tokio::task::spawn_blocking(move || fs::File::open(path)).await {
            Ok(Ok(file)) => Some(Spool::File(Arc::new(SpoolFile {
                file,
                len,
                temp: None,
            }))),
            _ => {
                self.forget(&[key.to_string()]).await;
                None
            }
        }
    }

    /// Stores content under its MD5, then evicts the oldest files beyond the cap.
    pub async fn put(&self, md5: &str, spool: &Spool) {
        let len = spool.len();
        if !is_md5(md5) || len > self.max {
            return;
        }
        let (dest, spool) = (self.path(md5), spool.clone());
        let stored = tokio::task::spawn_blocking(move || write_into(&dest, &spool)).await;
        match stored {
            Ok(Ok(true)) => {}
            Ok(Ok(false)) => return,
            Ok(Err(e)) => {
                warn!(md5, error = %e, "Cannot store an attachment in the disk cache.");
                return;
            }
            Err(_) => return,
        }
        let evict = {
            let Ok(mut ix) = self.index.lock() else {
                return;
            };
            if let Some((old, _)) = ix.files.insert(md5.to_string(), (len, SystemTime::now())) {
                ix.total -= old;
            }
            ix.total += len;
            let mut by_age: Vec<(SystemTime, String, u64)> = ix
                .files
                .iter()
                .map(|(k, (l, t))| (*t, k.clone(), *l))
                .collect();
            by_age.sort();
            let mut evict = Vec::new();
            let mut total = ix.total;
            for (_, k, l) in by_age {
                if total <= self.max {
                    break;
                }
                total -= l;
                evict.push(k);
            }
            evict
        };
        self.forget(&evict).await;
    }

    /// Drops entries from the index and deletes their files.
    async fn forget(&self, keys: &[String]) {
        if keys.is_empty() {
            return;
        }
        let paths: Vec<PathBuf> = {
            let Ok(mut ix) = self.index.lock() else {
                return;
            };
            keys.iter()
                .filter_map(|k| {
                    let (l, _) = ix.files.remove(k)?;
                    ix.total -= l;
                    Some(self.path(k))
                })
                .collect()
        };
        let _ = tokio::task::spawn_blocking(move || {
            for p in paths {
                let _ = fs::remove_file(p);
            }
        })
        .await;
    }

    /// Deletes expired files.
    pub async fn sweep(&self) {
        let expired: Vec<String> = match self.index.lock() {
            Ok(ix) => ix
                .files
                .iter()
                .filter(|(_, (_, t))| self.expired(*t))
                .map(|(k, _)| k.clone())
                .collect(),
            Err(_) => return,
        };
        self.forget(&expired).await;
    }

    /// Bytes stored.
    pub fn total(&self) -> u64 {
        self.index.lock().map(|ix| ix.total).unwrap_or(0)
    }
}

async fn sweeper(tier: Weak<DiskTier>) {
    loop {
        tokio::time::sleep(Duration::from_secs(60)).await;
        let Some(t) = tier.upgrade() else {
            return;
        };
        t.sweep().await;
    }
}

/// Writes a spool to `dest` through a temporary name. False when there is nothing to write
/// (the spool is itself a cache file).
fn write_into(dest: &Path, spool: &Spool) -> io::Result<bool> {
    let parent = dest.parent().ok_or_else(|| io::Error::other("no parent"))?;
    fs::create_dir_all(parent)?;
    let part = parent.join(format!(".part-{}", uuid::Uuid::new_v4().simple()));
    match spool {
        Spool::Memory(b) => fs::write(&part, b)?,
        Spool::File(f) => match &f.temp {
            Some(src) => {
                if fs::hard_link(src, &part).is_err() {
                    fs::copy(src, &part)?;
                }
            }
            None => return Ok(false),
        },
    }
    fs::File::options()
        .write(true)
        .open(&part)?
        .set_modified(SystemTime::now())?;
    fs::rename(&part, dest)?;
    Ok(true)
}

/// Sizes and mtimes of the files already in the folder; leftover partial files are removed.
fn scan(dir: &Path) -> Index {
    let mut ix = Index::default();
    let Ok(subdirs) = fs::read_dir(dir) else {
        return ix;
    };
    for sub in subdirs.flatten() {
        let Ok(files) = fs::read_dir(sub.path()) else {
            continue;
        };
        for f in files.flatten() {
            let name = f.file_name().to_string_lossy().into_owned();
            if name.starts_with(".part-") {
                let _ = fs::remove_file(f.path());
            } else if is_md5(&name)
                && let Ok(m) = f.metadata()
                && m.is_file()
            {
                let mtime = m.modified().unwrap_or_else(|_| SystemTime::now());
                ix.total += m.len();
                ix.files.insert(name, (m.len(), mtime));
            }
        }
    }
    ix
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    fn key(i: u8) -> String {
        format!("{:032x}", u128::from(i) + 0xab00)
    }

    #[tokio::test]
    async fn oldest_files_are_evicted_beyond_the_cap_and_the_index_survives_restarts() {
        let dir = tempfile::tempdir().unwrap();
        let tier = DiskTier::open(dir.path().into(), 250, Duration::from_secs(60));
        for i in 0..3 {
            tier.put(&key(i), &Spool::Memory(Bytes::from(vec![i; 100])))
                .await;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(tier.get(&key(0)).await.is_none(), "oldest evicted");
        assert!(!tier.path(&key(0)).exists());
        let hit = tier.get(&key(2)).await.unwrap();
        assert_eq!(hit.to_bytes().await.unwrap(), Bytes::from(vec![2u8; 100]));
        assert_eq!(tier.total(), 200);
        let reopened = DiskTier::open(dir.path().into(), 250, Duration::from_secs(60));
        assert_eq!(reopened.total(), 200, "sizes scanned at startup");
        assert!(reopened.get(&key(1)).await.is_some());
    }

    #[tokio::test]
    async fn a_spilled_download_enters_by_link_and_outlives_its_spool() {
        let dir = tempfile::tempdir().unwrap();
        let tier = DiskTier::open(dir.path().join("cache"), u64::MAX, Duration::from_secs(60));
        let data = vec![9u8; 3 * super::super::spool::SPILL_BYTES];
        let mut w = super::super::spool::SpoolWriter::new(Some(dir.path().into()), u64::MAX);
        w.write(&data).await.unwrap();
        let fetched = w.finish().await.unwrap();
        assert!(matches!(fetched.spool, Spool::File(_)));
        tier.put(&fetched.md5, &fetched.spool).await;
        drop(fetched.spool);
        let hit = tier.get(&fetched.md5).await.unwrap();
        assert_eq!(hit.to_bytes().await.unwrap(), Bytes::from(data));
        let spools = fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(spools, 1, "only the cache folder is left");
    }

    #[tokio::test]
    async fn expired_files_miss_and_are_swept() {
        let dir = tempfile::tempdir().unwrap();
        let tier = DiskTier::open(dir.path().into(), 1000, Duration::ZERO);
        tier.put(&key(1), &Spool::Memory(Bytes::from_static(b"x")))
            .await;
        tier.put(&key(2), &Spool::Memory(Bytes::from_static(b"y")))
            .await;
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(tier.get(&key(1)).await.is_none());
        tier.sweep().await;
        assert_eq!(tier.total(), 0);
        assert!(!tier.path(&key(2)).exists());
        assert!(tier.get("not-a-key").await.is_none());
    }
}
