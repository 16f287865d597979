//! The seeded draws of each seed profile converge to the configured rates: messages per sync,
//! DND share, attachment share, marker and reuse shares, size mix and priority weights. The draws
//! are tested on `plan_sync` directly (hashing content adds nothing to these figures); the HTTP
//! tests check that answers carry what the plans say.

use client_sim::serve::content::{ContentRef, Registry};
use client_sim::serve::generate::{self, AttachmentPlan, IdGenerator, SyncPlan};
use client_sim::serve::{Profile, ServeConfig};
use rand::SeedableRng;
use rand::rngs::StdRng;

/// Complementary error function (Abramowitz & Stegun 7.1.26, error < 1.5e-7).
fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.327_591_1 * z);
    let poly = t
        * (0.254_829_592
            + t * (-0.284_496_736
                + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
    let r = poly * (-z * z).exp();
    if x >= 0.0 { r } else { 2.0 - r }
}

/// E[max(0, trunc(X))] for X ~ N(r, r/2) = sum over k >= 1 of P(X >= k).
fn expected_messages(r: f64) -> f64 {
    let sd = r / 2.0;
    (1..1000)
        .map(|k| 0.5 * erfc((k as f64 - r) / (sd * std::f64::consts::SQRT_2)))
        .sum()
}

/// Asserts |observed - expected| <= 5 standard errors of a share over n trials.
fn assert_share(what: &str, hits: u64, n: u64, p: f64) {
    let observed = hits as f64 / n as f64;
    let se = (p * (1.0 - p) / n as f64).sqrt().max(1e-9);
    assert!(
        (observed - p).abs() <= 5.0 * se,
        "{what}: observed {observed:.4} over {n}, expected {p:.4} (se {se:.5})"
    );
}

#[derive(Default, Debug)]
struct Tally {
    syncs: u64,
    messages: u64,
    dnd: u64,
    attachments: u64,
    markers: u64,
    reused: u64,
    reuse_eligible: u64,
    fresh: u64,
    sizes: [u64; 5],
    priorities: [u64; 4],
}

fn run(cfg: &ServeConfig, syncs: u64) -> (Tally, Vec<SyncPlan>) {
    let mut rng = StdRng::seed_from_u64(cfg.seed);
    let mut registry = Registry::new(cfg.cache_max_bytes);
    let ids = IdGenerator::new(cfg.seed, &cfg.run_id);
    let mut t = Tally::default();
    let mut plans = Vec::new();
    for _ in 0..syncs {
        let non_empty = !registry.is_empty();
        let plan = generate::plan_sync(&mut rng, cfg, &registry, &ids, 100.0);
        tally(&mut t, &plan, non_empty);
        for m in &plan.messages {
            if let Some(AttachmentPlan::Fresh { content, .. }) = &m.attachment {
                registry.insert(&format!("{:032x}", content.seed), *content);
            }
        }
        plans.push(plan);
    }
    (t, plans)
}

fn tally(t: &mut Tally, plan: &SyncPlan, registry_non_empty: bool) {
    t.syncs += 1;
    t.messages += plan.messages.len() as u64;
    t.dnd += u64::from(plan.dnd_seconds.is_some());
    for m in &plan.messages {
        t.priorities[m.priority as usize] += 1;
        match &m.attachment {
            None => {}
            Some(AttachmentPlan::Reused { .. }) => {
                t.attachments += 1;
                t.markers += 1;
                t.reused += 1;
                t.reuse_eligible += 1;
            }
            Some(AttachmentPlan::Fresh { content, marker }) => {
                t.attachments += 1;
                t.fresh += 1;
                t.markers += u64::from(*marker);
                t.reuse_eligible += u64::from(registry_non_empty);
                t.sizes[size_index(*content)] += 1;
            }
        }
    }
}

fn size_index(c: ContentRef) -> usize {
    match c.size {
        generate::SIZE_10K => 0,
        generate::SIZE_500K => 1,
        generate::SIZE_2M => 2,
        generate::SIZE_10M => 3,
        generate::SIZE_50M => 4,
        other => panic!("unexpected size {other}"),
    }
}

fn check_profile(profile: Profile, syncs: u64) {
    let cfg = ServeConfig::for_profile(Some(profile), 20_260_202);
    let (t, _) = run(&cfg, syncs);
    let r = cfg.msg_rate_per_sync;
    let mean = t.messages as f64 / t.syncs as f64;
    let expected = expected_messages(r);
    let se = (r / 2.0) / (t.syncs as f64).sqrt();
    assert!(
        (mean - expected).abs() <= 5.0 * se,
        "{profile:?}: mean {mean} vs {expected}"
    );
    assert_share("DND", t.dnd, t.syncs, cfg.dnd_probability);
    assert_share("attachment", t.attachments, t.messages, 0.6);
    let hit = cfg.attachment_cache_hit_rate;
    assert_share("marker", t.markers, t.attachments, hit);
    assert_share("reuse", t.reused, t.reuse_eligible, hit * hit);
    let l = cfg.large_attachment_rate;
    let mix = [0.30, 0.15 + 0.05 * (1.0 - l), 0.10, 0.04 * l, 0.01 * l];
    for (i, p) in mix.iter().enumerate() {
        assert_share(&format!("size class {i}"), t.sizes[i], t.fresh, p / 0.6);
    }
    for (i, p) in [0.05, 0.15, 0.50, 0.30].iter().enumerate() {
        assert_share(&format!("priority {i}"), t.priorities[i], t.messages, *p);
    }
}

#[test]
fn high_volume_profile_converges() {
    check_profile(Profile::HighVolume, 5_000);
}

#[test]
fn standard_profile_converges() {
    check_profile(Profile::Standard, 20_000);
}

#[test]
fn newsletter_profile_converges() {
    check_profile(Profile::Newsletter, 2_000);
}

#[test]
fn documents_profile_converges() {
    check_profile(Profile::Documents, 40_000);
}

#[test]
fn documents_mean_is_about_one_and_a_half() {
    // The spec's worked figure: R = 2 gives about 1.5 messages per sync.
    assert!(
        (expected_messages(2.0) - 1.5).abs() < 0.05,
        "{}",
        expected_messages(2.0)
    );
}

#[test]
fn same_seed_same_draws() {
    let cfg = ServeConfig::for_profile(Some(Profile::Standard), 77);
    let strip = |plans: Vec<SyncPlan>| {
        plans
            .into_iter()
            .map(|p| {
                let m: Vec<_> = p
                    .messages
                    .into_iter()
                    .map(|m| (m.priority, m.recipient, m.attachment))
                    .collect();
                (m, p.dnd_seconds)
            })
            .collect::<Vec<_>>()
    };
    let a = strip(run(&cfg, 300).1);
    let b = strip(run(&cfg, 300).1);
    assert_eq!(a, b);
    let other = ServeConfig { seed: 78, ..cfg };
    assert_ne!(a, strip(run(&other, 300).1));
}

#[test]
fn ids_are_unique_and_prefixed() {
    let ids = IdGenerator::new(1, "run");
    let mut seen = std::collections::HashSet::new();
    for _ in 0..200_000 {
        let id = ids.next();
        assert_eq!(id.len(), 12);
        assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
        assert!(seen.insert(id));
    }
}

#[test]
fn a_stage_scales_the_rate_of_every_sync() {
    let cfg = ServeConfig::for_profile(Some(Profile::Standard), 11);
    let count = |percent: f64| {
        let mut rng = StdRng::seed_from_u64(cfg.seed);
        let registry = Registry::new(cfg.cache_max_bytes);
        let ids = IdGenerator::new(cfg.seed, &cfg.run_id);
        (0..2_000)
            .map(|_| {
                generate::plan_sync(&mut rng, &cfg, &registry, &ids, percent)
                    .messages
                    .len()
            })
            .sum::<usize>() as f64
    };
    let (none, full, double) = (count(0.0), count(100.0), count(200.0));
    assert_eq!(none, 0.0, "0 %: nothing");
    assert!(full > 1_000.0, "{full}");
    assert!(
        (double / full - 2.0).abs() < 0.15,
        "200 % ≈ twice 100 %: {double} / {full}"
    );
}
