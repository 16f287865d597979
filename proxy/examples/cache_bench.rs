//! A hand-run benchmark of the attachment cache's memory tier
//! ([`mailproxy::attachments::cache::Cache`], no disk tier), through the interface the loader uses
//! (`get`, then `put` on a miss). It prints figures and asserts nothing.
//!
//! ```text
//! CARGO_TARGET_DIR=/root/.cache/dev-target \
//!   cargo run --release -p mailproxy --example cache_bench -- [ops_per_thread] [threads]
//! ```
//!
//! Scenario `mix` (defaults: 400 000 operations per thread, 2 threads): a population of 10 000
//! items of 4–64 KiB (≈ 332 MiB) is stored first (the tier holds 256 MiB, so filling it evicts);
//! then each operation looks up an item: 90 % pick one of the first 5 000 (≈ 166 MiB, the hot set,
//! re-stored when missing), 10 % pick a never-seen item (a miss, then stored: the churn that makes
//! the tier evict). At the end every item is looked up once to count what stayed resident: the
//! resident bytes must not exceed the capacity, and the hot set should be (almost) all there.
//!
//! Scenario `hits` (same threads): 1 000 items of 4 KiB, all resident, looked up only: the cost of
//! a hit and the contention between threads.
//!
//! Memory is read from `/proc/self/status` (`VmRSS`, `VmHWM`: the process, content included).

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use bytes::Bytes;
use mailproxy::{
    attachments::{cache::Cache, spool::Spool},
    config::Config,
};
use prometheus_client::metrics::family::Family;

const POPULATION: u64 = 10_000;
const HOT: u64 = 5_000;
const CAPACITY_MB: u64 = 256;
/// One-off items are numbered from here, per thread.
const ONE_OFF_BASE: u64 = 1 << 40;

/// SplitMix64: deterministic sizes and choices without a generator crate.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// The item's size: 4–64 KiB.
fn size(id: u64) -> usize {
    4096 + (mix(id) % (60 * 1024 + 1)) as usize
}

/// An MD5-shaped key.
fn key(id: u64) -> String {
    format!("{:016x}{:016x}", mix(id ^ 0xA5A5), id)
}

fn content(id: u64) -> Spool {
    Spool::Memory(Bytes::from(vec![id as u8; size(id)]))
}

/// `VmRSS` and `VmHWM` in MiB.
fn memory() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .map_or(f64::NAN, |kb| kb / 1024.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn cache(max_mb: u64) -> Arc<Cache> {
    let mut c = Config::defaults();
    c.cache_disk_dir = None;
    c.cache_memory_max_mb = max_mb;
    c.cache_memory_ttl_seconds = 3600;
    c.cache_disk_threshold_kb = 65;
    Arc::new(Cache::new(&c, Family::default()))
}

/// Per-thread tallies.
#[derive(Default, Clone, Copy)]
struct Tally {
    hits: u64,
    misses: u64,
    puts: u64,
    get_time: Duration,
    put_time: Duration,
}

impl Tally {
    fn add(mut self, o: Tally) -> Tally {
        self.hits += o.hits;
        self.misses += o.misses;
        self.puts += o.puts;
        self.get_time += o.get_time;
        self.put_time += o.put_time;
        self
    }
}

/// Runs `work` on `threads` OS threads, each with its own current-thread runtime, started
/// together; returns the summed tallies and the wall time.
fn run<F, Fut>(threads: u64, work: F) -> (Tally, Duration)
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Tally>,
{
    let work = Arc::new(work);
    let barrier = Arc::new(std::sync::Barrier::new(threads as usize + 1));
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let work = work.clone();
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_time()
                    .build()
                    .expect("runtime");
                barrier.wait();
                rt.block_on(work(t))
            })
        })
        .collect();
    barrier.wait();
    let started = Instant::now();
    let total = handles
        .into_iter()
        .map(|h| h.join().expect("bench thread"))
        .fold(Tally::default(), Tally::add);
    (total, started.elapsed())
}

/// One lookup, and a store on a miss; timed separately (the content is made outside the timing).
async fn access(cache: &Cache, id: u64, t: &mut Tally) {
    let k = key(id);
    let started = Instant::now();
    let hit = cache.get(&k).await;
    t.get_time += started.elapsed();
    if hit.is_some() {
        t.hits += 1;
        return;
    }
    t.misses += 1;
    let spool = content(id);
    let started = Instant::now();
    cache.put(&k, &spool).await;
    t.put_time += started.elapsed();
    t.puts += 1;
}

fn per_op(d: Duration, n: u64) -> f64 {
    d.as_nanos() as f64 / n.max(1) as f64
}

fn mix_scenario(ops: u64, threads: u64) {
    let (rss0, _) = memory();
    let c = cache(CAPACITY_MB);
    let fill = c.clone();
    let (filled, fill_time) = run(threads, move |t| {
        let c = fill.clone();
        async move {
            let mut tally = Tally::default();
            for id in (t..POPULATION).step_by(threads as usize) {
                let spool = content(id);
                let started = Instant::now();
                c.put(&key(id), &spool).await;
                tally.put_time += started.elapsed();
                tally.puts += 1;
            }
            tally
        }
    });
    let (rss_fill, _) = memory();
    println!(
        "mix fill: {} puts in {:.1} ms, {:.0} ns/put; RSS {:.0} MiB (+{:.0} over start)",
        filled.puts,
        fill_time.as_secs_f64() * 1e3,
        per_op(filled.put_time, filled.puts),
        rss_fill,
        rss_fill - rss0
    );

    let work = c.clone();
    let (t, wall) = run(threads, move |thread| {
        let c = work.clone();
        async move {
            let mut tally = Tally::default();
            let mut one_off = ONE_OFF_BASE + thread * (ONE_OFF_BASE / 16);
            for i in 0..ops {
                let r = mix(thread << 32 | i);
                let id = if r.is_multiple_of(10) {
                    one_off += 1;
                    one_off
                } else {
                    (r >> 8) % HOT
                };
                access(&c, id, &mut tally).await;
            }
            tally
        }
    });
    let (rss, hwm) = memory();
    let gets = t.hits + t.misses;
    println!(
        "mix run: {gets} gets in {:.1} ms = {:.0} ops/s; hit rate {:.1} %; \
         {:.0} ns/get, {:.0} ns/put ({} puts)",
        wall.as_secs_f64() * 1e3,
        gets as f64 / wall.as_secs_f64(),
        100.0 * t.hits as f64 / gets.max(1) as f64,
        per_op(t.get_time, gets),
        per_op(t.put_time, t.puts),
        t.puts
    );
    println!("mix memory: RSS {rss:.0} MiB, peak RSS {hwm:.0} MiB");

    // What stayed resident (this changes recency, so it comes last).
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("runtime");
    let (hot, resident_bytes) = rt.block_on(async {
        let (mut hot, mut bytes) = (0u64, 0u64);
        for id in 0..POPULATION {
            if let Some((s, _)) = c.get(&key(id)).await {
                bytes += s.len();
                hot += u64::from(id < HOT);
            }
        }
        for thread in 0..threads {
            let base = ONE_OFF_BASE + thread * (ONE_OFF_BASE / 16);
            for id in base + 1..=base + ops {
                if let Some((s, _)) = c.get(&key(id)).await {
                    bytes += s.len();
                }
            }
        }
        (hot, bytes)
    });
    println!(
        "mix resident: {:.1} MiB of {CAPACITY_MB} MiB; hot set {hot}/{HOT} resident",
        resident_bytes as f64 / (1024.0 * 1024.0)
    );
}

fn hits_scenario(ops: u64, threads: u64) {
    let c = cache(CAPACITY_MB);
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    rt.block_on(async {
        for id in 0..1000 {
            c.put(&key(id), &Spool::Memory(Bytes::from(vec![0u8; 4096])))
                .await;
        }
    });
    let work = c.clone();
    let (t, wall) = run(threads, move |thread| {
        let c = work.clone();
        async move {
            let mut tally = Tally::default();
            let keys: Vec<String> = (0..1000).map(key).collect();
            let started = Instant::now();
            for i in 0..ops {
                let k = &keys[(mix(thread << 32 | i) % 1000) as usize];
                if c.get(k).await.is_some() {
                    tally.hits += 1;
                } else {
                    tally.misses += 1;
                }
            }
            tally.get_time = started.elapsed();
            tally
        }
    });
    let gets = t.hits + t.misses;
    println!(
        "hits run: {gets} gets in {:.1} ms = {:.0} ops/s ({} hits)",
        wall.as_secs_f64() * 1e3,
        gets as f64 / wall.as_secs_f64(),
        t.hits
    );
}

fn main() {
    let mut args = std::env::args().skip(1);
    let ops = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(400_000u64);
    let threads = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(2u64)
        .max(1);
    println!("cache_bench: {ops} operations per thread, {threads} threads");
    mix_scenario(ops, threads);
    hits_scenario(ops * 5, threads);
}
