//! The seeded draws of a sync (README, `serve`) and the messages they become.
//!
//! A sync is planned under one lock (every random draw, in a fixed order, so a seeded sequential
//! run is reproducible), then materialised outside it: fresh content is hashed chunk by chunk
//! (the only expensive step, run on a blocking thread) and the messages are built
//! ([`super::message`]).

use std::sync::atomic::{AtomicU64, Ordering};

use rand::Rng;

use super::content::{self, ContentRef, Registry};
use super::profile::ServeConfig;

/// Attachment sizes of the draw, in bytes.
pub const SIZE_10K: u64 = 10_240;
/// 500 KiB.
pub const SIZE_500K: u64 = 512_000;
/// 2 MiB.
pub const SIZE_2M: u64 = 2_097_152;
/// 10 MiB.
pub const SIZE_10M: u64 = 10_485_760;
/// 50 MiB.
pub const SIZE_50M: u64 = 52_428_800;

/// One normal draw (Box–Muller).
pub fn gauss(rng: &mut impl Rng, mean: f64, sd: f64) -> f64 {
    let u1: f64 = 1.0 - rng.random::<f64>(); // (0, 1]: ln is finite
    let u2: f64 = rng.random();
    mean + sd * (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// Messages in one sync: max(0, trunc(gauss(R, R/2))).
pub fn messages_per_sync(rng: &mut impl Rng, rate: f64) -> usize {
    gauss(rng, rate, rate / 2.0).trunc().max(0.0) as usize
}

/// Priority 0/1/2/3 with weights 5/15/50/30 %.
pub fn priority(rng: &mut impl Rng) -> i64 {
    match rng.random::<f64>() {
        r if r < 0.05 => 0,
        r if r < 0.20 => 1,
        r if r < 0.70 => 2,
        _ => 3,
    }
}

/// Attachment size of one message, `None` for no attachment (README, `serve`).
pub fn attachment_size(rng: &mut impl Rng, large_rate: f64) -> Option<u64> {
    let r: f64 = rng.random();
    let size = match r {
        r if r < 0.40 => return None,
        r if r < 0.70 => SIZE_10K,
        r if r < 0.85 => SIZE_500K,
        r if r < 0.95 => SIZE_2M,
        r if r < 0.99 => large_or_medium(rng, large_rate, SIZE_10M),
        _ => large_or_medium(rng, large_rate, SIZE_50M),
    };
    Some(size)
}

fn large_or_medium(rng: &mut impl Rng, large_rate: f64, large: u64) -> u64 {
    if rng.random::<f64>() < large_rate {
        large
    } else {
        SIZE_500K
    }
}

/// Unique message ids: a 48-bit counter through a salted bijection, as 12 hex digits.
#[derive(Debug)]
pub struct IdGenerator {
    salt: u64,
    counter: AtomicU64,
}

impl IdGenerator {
    /// Ids salted with the seed, the run id and the process start, so a restart with the same
    /// seed does not repeat ids the proxy already holds.
    pub fn new(seed: u64, run_id: &str) -> Self {
        let mut salt = content::mix64(seed ^ crate::unix_micros().wrapping_mul(31));
        for b in run_id.bytes() {
            salt = content::mix64(salt ^ u64::from(b));
        }
        IdGenerator {
            salt,
            counter: AtomicU64::new(0),
        }
    }

    /// The next id suffix; distinct for the first 2^48 calls.
    pub fn next(&self) -> String {
        const MASK: u64 = (1 << 48) - 1;
        let mut x = self
            .counter
            .fetch_add(1, Ordering::Relaxed)
            .wrapping_add(self.salt)
            & MASK;
        x = x.wrapping_mul(0x5DEE_CE66D) & MASK; // odd multiplier: bijective mod 2^48
        x ^= x >> 24;
        x = x.wrapping_mul(0x9E37_79B9_7F4A_7C15) & MASK;
        x ^= x >> 20;
        format!("{x:012x}")
    }
}

/// The attachment part of a message plan.
#[derive(Debug, Clone, PartialEq)]
pub enum AttachmentPlan {
    /// Reuses remembered content (a cache hit); always carries the marker.
    Reused {
        /// MD5 hex.
        md5: String,
        /// The content.
        content: ContentRef,
    },
    /// New content, hashed when materialised; `marker` puts `{MD5:...}` in the filename.
    Fresh {
        /// The content.
        content: ContentRef,
        /// Whether the filename carries the marker.
        marker: bool,
    },
}

/// Everything drawn for one message.
#[derive(Debug, Clone, PartialEq)]
pub struct MessagePlan {
    /// Message id.
    pub id: String,
    /// Priority 0..3.
    pub priority: i64,
    /// Recipient number, 1..=10000.
    pub recipient: u32,
    /// Attachment, if any.
    pub attachment: Option<AttachmentPlan>,
}

/// Everything drawn for one sync.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SyncPlan {
    /// Messages to generate.
    pub messages: Vec<MessagePlan>,
    /// Do-not-disturb length in seconds, if drawn.
    pub dnd_seconds: Option<u64>,
    /// Reuse draws that hit the registry.
    pub cache_hits: u64,
    /// Attachments with fresh content.
    pub cache_misses: u64,
}

/// Draws one sync, at `rate_percent` of the configured rate (the load's stage).
pub fn plan_sync(
    rng: &mut impl Rng,
    cfg: &ServeConfig,
    registry: &Registry,
    ids: &IdGenerator,
    rate_percent: f64,
) -> SyncPlan {
    let mut plan = SyncPlan::default();
    let rate = cfg.msg_rate_per_sync * rate_percent / 100.0;
    for _ in 0..messages_per_sync(rng, rate) {
        let id = format!("{}-{}", cfg.tenant_id, ids.next());
        let priority = priority(rng);
        let recipient = rng.random_range(1..=10_000);
        let attachment = attachment_size(rng, cfg.large_attachment_rate)
            .map(|size| plan_attachment(rng, cfg, registry, size, &mut plan));
        plan.messages.push(MessagePlan {
            id,
            priority,
            recipient,
            attachment,
        });
    }
    if rng.random::<f64>() < cfg.dnd_probability {
        plan.dnd_seconds = Some(rng.random_range(cfg.dnd_seconds.0..=cfg.dnd_seconds.1));
    }
    plan
}

fn plan_attachment(
    rng: &mut impl Rng,
    cfg: &ServeConfig,
    registry: &Registry,
    size: u64,
    plan: &mut SyncPlan,
) -> AttachmentPlan {
    let rate = cfg.attachment_cache_hit_rate;
    let marker = rng.random::<f64>() < rate;
    if marker
        && !registry.is_empty()
        && rng.random::<f64>() < rate
        && let Some((md5, content)) = registry.pick(rng.random())
    {
        plan.cache_hits += 1;
        return AttachmentPlan::Reused { md5, content };
    }
    plan.cache_misses += 1;
    AttachmentPlan::Fresh {
        content: ContentRef {
            seed: rng.random(),
            size,
        },
        marker,
    }
}
