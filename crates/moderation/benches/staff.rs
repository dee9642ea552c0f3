//! Staff policy checks at 1,000 policies: cached (the admin-call path) and
//! uncached (the first check of a (user, object, action) after a change).
//!
//! `cargo bench -p hearth-moderation --bench staff`

use std::sync::Arc;
use std::time::{Duration, Instant};

use hearth_moderation::staff::all_pairs;
use hearth_moderation::{Actor, MemoryPolicyStore, PolicyRule, StaffPolicy, StaffRole};
use hearth_types::UserId;

fn report(name: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let pct = |p: f64| samples[((samples.len() as f64 * p) as usize).min(samples.len() - 1)];
    println!(
        "{name}: n={} p50={:.2?} p99={:.2?} p99.9={:.2?} max={:.2?}",
        samples.len(),
        pct(0.50),
        pct(0.99),
        pct(0.999),
        samples[samples.len() - 1]
    );
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime");
    // 100 permission rules over 34 custom roles, 900 users holding them and
    // one admin: 1,001 stored policies (the store is not empty, so no
    // defaults are seeded), plus the built-in admin rule.
    let pairs: Vec<_> = all_pairs().collect();
    let mut rules = Vec::new();
    let roles: Vec<StaffRole> = (0..34)
        .map(|i| StaffRole::new(&format!("team_{i}")).expect("valid name"))
        .collect();
    for i in 0..100 {
        // Distinct (role, pair): role i % 34 gets pairs r, r + 5, r + 10 of the catalog.
        let (o, a) = pairs[(i % roles.len() + 5 * (i / roles.len())) % pairs.len()];
        rules.push(
            PolicyRule::permission(roles[i % roles.len()].clone(), o.as_str(), a.as_str())
                .expect("valid"),
        );
    }
    for u in 0..900 {
        rules.push(PolicyRule::Member {
            user: UserId(u + 10),
            role: roles[u as usize % roles.len()].clone(),
        });
    }
    let store = Arc::new(MemoryPolicyStore::with_rules(rules));
    let policy = rt.block_on(async {
        let p = StaffPolicy::open(store).await.expect("policy");
        p.grant(Actor::Operator, UserId(1), &StaffRole::admin())
            .await
            .expect("grant");
        p
    });
    let stored = policy.rules();
    println!(
        "policies: {} ({} permissions, {} role grants)",
        stored.len(),
        stored
            .iter()
            .filter(|r| matches!(r, PolicyRule::Permission { .. }))
            .count(),
        stored
            .iter()
            .filter(|r| matches!(r, PolicyRule::Member { .. }))
            .count()
    );

    // Uncached: every (user, pair) once.
    let keys: Vec<(UserId, usize)> = (0..1000)
        .flat_map(|u| (0..pairs.len()).map(move |p| (UserId(u + 1), p)))
        .collect();
    let mut cold = Vec::with_capacity(keys.len());
    let mut allowed = 0;
    for (u, p) in &keys {
        let (o, a) = pairs[*p];
        let start = Instant::now();
        allowed += usize::from(policy.check(*u, o, a));
        cold.push(start.elapsed());
    }
    report("uncached check (casbin enforce)", cold);
    println!("allowed: {allowed} of {}", keys.len());

    // Cached: 1,000,000 checks over the same keys, after a warm-up pass.
    let mut x = 0x9E37_79B9_7F4A_7C15_u64;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for _ in 0..100_000 {
        let (u, p) = keys[(next() % keys.len() as u64) as usize];
        std::hint::black_box(policy.check(u, pairs[p].0, pairs[p].1));
    }
    let mut hot = Vec::with_capacity(1_000_000);
    for _ in 0..1_000_000 {
        let (u, p) = keys[(next() % keys.len() as u64) as usize];
        let (o, a) = pairs[p];
        let start = Instant::now();
        std::hint::black_box(policy.check(u, o, a));
        hot.push(start.elapsed());
    }
    report("cached check", hot);

    // An edit rebuilds the enforcer.
    let start = Instant::now();
    rt.block_on(policy.grant(Actor::Operator, UserId(5000), &roles[0]))
        .expect("grant");
    println!(
        "grant (store + rebuild at 1,000 policies): {:.2?}",
        start.elapsed()
    );
}
