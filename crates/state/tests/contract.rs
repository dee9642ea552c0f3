//! The backend contract suite: every test here runs once against the memory
//! implementations and once against Redis, and both must behave the same.
//! Redis comes from `HEARTH_TEST_REDIS_URL` (default: the local server);
//! when it is absent these tests fail, they never skip. Each Redis test uses
//! its own random key prefix and deletes its keys afterwards (and every key
//! has a TTL, so a failed test leaves nothing behind for long).

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use hearth_state::*;

/// One backend's implementation of every trait, plus a second "node" for
/// revocations (sharing the state, through its own connection on Redis).
struct Env {
    limiter: Arc<dyn RateLimiter>,
    presence: Arc<dyn Presence>,
    typing: Arc<dyn Typing>,
    nonces: Arc<dyn NonceGuard>,
    revocations: Arc<dyn Revocations>,
    other_node_revocations: Arc<dyn Revocations>,
    sessions: Arc<dyn SessionLog>,
    leases: Arc<dyn Leases>,
    slots: Arc<dyn Slots>,
    voice: Arc<dyn VoiceStates>,
    files: Arc<dyn FileCache>,
    redis: Option<RedisConnection>,
}

/// Short, so expiry is testable.
const RETENTION: Duration = Duration::from_millis(600);

impl Env {
    fn memory() -> Env {
        let revocations = Arc::new(MemoryRevocations::new(RETENTION));
        Env {
            limiter: Arc::new(MemoryRateLimiter::default()),
            presence: Arc::new(MemoryPresence::default()),
            typing: Arc::new(MemoryTyping::default()),
            nonces: Arc::new(MemoryNonceGuard::default()),
            revocations: revocations.clone(),
            other_node_revocations: revocations,
            sessions: Arc::new(MemorySessionLog::default()),
            leases: Arc::new(MemoryLeases::default()),
            slots: Arc::new(MemorySlots::default()),
            voice: Arc::new(MemoryVoiceStates::default()),
            files: Arc::new(MemoryFileCache::new(1024 * 1024)),
            redis: None,
        }
    }

    async fn redis() -> Env {
        let url = std::env::var("HEARTH_TEST_REDIS_URL")
            .unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
        let prefix = format!("hearth-test:{:016x}:", rand::random::<u64>());
        let connect = || async {
            RedisConnection::connect(&url, &prefix)
                .await
                .expect("Redis must be running for the contract suite (HEARTH_TEST_REDIS_URL)")
        };
        let redis = connect().await;
        let other = connect().await;
        Env {
            limiter: Arc::new(RedisRateLimiter::new(redis.clone())),
            presence: Arc::new(RedisPresence::new(redis.clone())),
            typing: Arc::new(RedisTyping::new(redis.clone())),
            nonces: Arc::new(RedisNonceGuard::new(redis.clone())),
            revocations: Arc::new(
                RedisRevocations::new(redis.clone(), RETENTION)
                    .await
                    .expect("subscribe"),
            ),
            other_node_revocations: Arc::new(
                RedisRevocations::new(other, RETENTION)
                    .await
                    .expect("subscribe"),
            ),
            sessions: Arc::new(RedisSessionLog::new(redis.clone())),
            leases: Arc::new(RedisLeases::new(redis.clone())),
            slots: Arc::new(RedisSlots::new(&url, &prefix).expect("redis url")),
            voice: Arc::new(RedisVoiceStates::new(redis.clone())),
            files: Arc::new(RedisFileCache::new(redis.clone())),
            redis: Some(redis),
        }
    }

    /// Deletes every key under the test's prefix.
    async fn finish(self) {
        let Some(redis) = self.redis else { return };
        let url = std::env::var("HEARTH_TEST_REDIS_URL")
            .unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
        let client = ::redis::Client::open(url).expect("redis url");
        let mut conn = client
            .get_multiplexed_async_connection()
            .await
            .expect("connect for cleanup");
        let mut cursor: u64 = 0;
        loop {
            let (next, keys): (u64, Vec<String>) = ::redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(format!("{}*", redis.prefix()))
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut conn)
                .await
                .expect("scan");
            if !keys.is_empty() {
                let _: i64 = ::redis::cmd("DEL")
                    .arg(&keys)
                    .query_async(&mut conn)
                    .await
                    .expect("del");
            }
            if next == 0 {
                break;
            }
            cursor = next;
        }
    }
}

macro_rules! contract {
    ($($name:ident),* $(,)?) => {
        mod memory {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $name() {
                let env = super::Env::memory();
                super::$name(&env).await;
                env.finish().await;
            })*
        }
        mod redis {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $name() {
                let env = super::Env::redis().await;
                super::$name(&env).await;
                env.finish().await;
            })*
        }
    };
}

contract!(
    gcra_burst_then_steady_rate,
    gcra_600_in_a_burst_are_mostly_refused,
    presence_online_and_offline,
    presence_expires_without_heartbeat,
    typing_expires,
    revocations_reach_other_nodes,
    revocations_expire_after_retention,
    nonce_claims,
    nonce_claim_race_has_one_winner,
    session_records_append_and_load,
    session_take_over_fences_the_old_generation,
    session_records_expire_and_can_be_removed,
    leases_pass_a_floor_and_expire,
    slots_are_counted_and_lapse,
    voice_states_move_and_expire,
    files_are_kept_replaced_removed_and_expire,
);

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

async fn gcra_burst_then_steady_rate(env: &Env) {
    let rl = &env.limiter;
    let q = Quota {
        per_second: 10.0,
        burst: 5,
    };
    for _ in 0..5 {
        assert_eq!(rl.check("k", q).await, Decision::Allowed);
    }
    let Decision::Limited { retry_after } = rl.check("k", q).await else {
        panic!("6th in a burst of 5")
    };
    assert!(retry_after <= ms(100) && retry_after > Duration::ZERO);
    assert_eq!(
        rl.check("other", q).await,
        Decision::Allowed,
        "keys are independent"
    );
    tokio::time::sleep(retry_after + ms(5)).await;
    assert_eq!(rl.check("k", q).await, Decision::Allowed);
    assert!(matches!(rl.check("k", q).await, Decision::Limited { .. }));

    // Then a steady 10/s: over ~1 s of asking every 20 ms, about 10 pass.
    let start = Instant::now();
    let mut allowed = 0;
    while start.elapsed() < Duration::from_secs(1) {
        if rl.check("k", q).await == Decision::Allowed {
            allowed += 1;
        }
        tokio::time::sleep(ms(20)).await;
    }
    assert!(
        (8..=12).contains(&allowed),
        "{allowed} allowed in 1 s at 10/s"
    );

    // After a full rest the whole burst is back.
    tokio::time::sleep(ms(600)).await;
    for _ in 0..5 {
        assert_eq!(rl.check("k", q).await, Decision::Allowed);
    }
}

async fn gcra_600_in_a_burst_are_mostly_refused(env: &Env) {
    let q = Quota {
        per_second: 20.0,
        burst: 40,
    };
    let start = Instant::now();
    // All at once, so the decision must be atomic per request.
    let checks = (0..600).map(|_| {
        let rl = env.limiter.clone();
        tokio::spawn(async move { rl.check("ip:1.2.3.4", q).await })
    });
    let decisions = futures::future::join_all(checks).await;
    let elapsed = start.elapsed().as_secs_f64();
    let allowed = decisions
        .into_iter()
        .filter(|d| *d.as_ref().expect("task") == Decision::Allowed)
        .count();
    let most = 40 + (elapsed * 20.0).ceil() as usize + 1;
    assert!(
        (40..=most).contains(&allowed),
        "{allowed} of 600 allowed in {elapsed:.3} s (burst 40, 20/s)"
    );
}

async fn presence_online_and_offline(env: &Env) {
    let p = &env.presence;
    let ttl = Duration::from_secs(5);
    p.set(1, "node-a", Status::Online, ttl).await.expect("set");
    p.set(2, "node-b", Status::Idle, ttl).await.expect("set");
    assert_eq!(
        p.get(&[1, 2, 3]).await.expect("get"),
        [Status::Online, Status::Idle, Status::Offline]
    );
    assert_eq!(p.get(&[]).await.expect("get"), []);

    // Several nodes: do-not-disturb wins, then online, then idle.
    p.set(1, "node-b", Status::DoNotDisturb, ttl)
        .await
        .expect("set");
    p.set(2, "node-a", Status::Online, ttl).await.expect("set");
    assert_eq!(
        p.get(&[1, 2]).await.expect("get"),
        [Status::DoNotDisturb, Status::Online]
    );

    // Online while any node holds an entry.
    p.clear(1, "node-b").await.expect("clear");
    p.set(2, "node-a", Status::Offline, ttl)
        .await
        .expect("set offline");
    assert_eq!(
        p.get(&[1, 2]).await.expect("get"),
        [Status::Online, Status::Idle]
    );
    p.clear(1, "node-a").await.expect("clear");
    p.clear(2, "node-b").await.expect("clear");
    p.clear(2, "node-b").await.expect("clearing twice is fine");
    assert_eq!(
        p.get(&[1, 2]).await.expect("get"),
        [Status::Offline, Status::Offline]
    );
}

async fn presence_expires_without_heartbeat(env: &Env) {
    let p = &env.presence;
    let ttl = ms(400);
    p.set(1, "alive", Status::Online, ttl).await.expect("set");
    p.set(2, "dead", Status::Online, ttl).await.expect("set");
    p.set(3, "alive", Status::Idle, ttl).await.expect("set");
    p.set(3, "dead", Status::Online, ttl).await.expect("set");
    // "alive" heartbeats; "dead" does not.
    for _ in 0..8 {
        tokio::time::sleep(ms(100)).await;
        assert_eq!(
            p.refresh("alive", ttl).await.expect("refresh"),
            2,
            "the heartbeat counts the node's live entries"
        );
    }
    assert_eq!(
        p.get(&[1, 2, 3]).await.expect("get"),
        [Status::Online, Status::Offline, Status::Idle],
        "a dead node's users go offline within one TTL"
    );
    // A late heartbeat does not revive expired entries, and says none were live
    // (how a node learns its entries were lost and sets them again).
    assert_eq!(p.refresh("dead", ttl).await.expect("refresh"), 0);
    assert_eq!(p.get(&[2]).await.expect("get"), [Status::Offline]);
    // Once the heartbeat stops, everyone goes.
    tokio::time::sleep(ms(500)).await;
    assert_eq!(p.get(&[1, 2, 3]).await.expect("get"), [Status::Offline; 3]);
}

async fn typing_expires(env: &Env) {
    let t = &env.typing;
    t.start(10, 2, ms(1500)).await.expect("start");
    t.start(10, 1, ms(300)).await.expect("start");
    t.start(11, 3, ms(1500)).await.expect("start");
    assert_eq!(t.active(10).await.expect("active"), [1, 2]);
    assert_eq!(t.active(11).await.expect("active"), [3]);
    assert_eq!(t.active(12).await.expect("active"), Vec::<i64>::new());
    tokio::time::sleep(ms(450)).await;
    assert_eq!(t.active(10).await.expect("active"), [2], "1 expired");
    // Typing again renews.
    t.start(10, 1, ms(1500)).await.expect("start");
    assert_eq!(t.active(10).await.expect("active"), [1, 2]);
    t.stop(10, 2).await.expect("stop");
    t.stop(10, 9).await.expect("stopping a non-typist is fine");
    assert_eq!(t.active(10).await.expect("active"), [1]);
}

async fn revocations_reach_other_nodes(env: &Env) {
    let mut here = env.revocations.subscribe().await.expect("subscribe");
    let mut there = env
        .other_node_revocations
        .subscribe()
        .await
        .expect("subscribe");
    assert!(!env.revocations.is_revoked(77).await.expect("check"));

    env.revocations.revoke(77).await.expect("revoke");
    let heard = tokio::time::timeout(Duration::from_secs(1), there.next())
        .await
        .expect("another node hears of a revocation within 1 s");
    assert_eq!(heard, Some(77));
    let heard = tokio::time::timeout(Duration::from_secs(1), here.next())
        .await
        .expect("the revoking node hears too");
    assert_eq!(heard, Some(77));
    assert!(
        env.other_node_revocations
            .is_revoked(77)
            .await
            .expect("check")
    );
    assert!(
        !env.other_node_revocations
            .is_revoked(78)
            .await
            .expect("check")
    );

    // And the other way round.
    env.other_node_revocations.revoke(78).await.expect("revoke");
    let heard = tokio::time::timeout(Duration::from_secs(1), here.next())
        .await
        .expect("within 1 s");
    assert_eq!(heard, Some(78));
    assert!(env.revocations.is_revoked(78).await.expect("check"));
}

async fn revocations_expire_after_retention(env: &Env) {
    env.revocations.revoke(5).await.expect("revoke");
    assert!(env.revocations.is_revoked(5).await.expect("check"));
    tokio::time::sleep(RETENTION + ms(200)).await;
    assert!(!env.revocations.is_revoked(5).await.expect("check"));
}

async fn nonce_claims(env: &Env) {
    let n = &env.nonces;
    let day = Duration::from_secs(24 * 3600);
    let key = "chan:1:author:2:nonce:abc";
    assert_eq!(n.claim(key, "m1", day).await.expect("claim"), Claim::New);
    assert_eq!(
        n.claim(key, "m2", day).await.expect("claim"),
        Claim::Existing("m1".into())
    );
    assert_eq!(
        n.claim("chan:1:author:2:nonce:abd", "m3", day)
            .await
            .expect("claim"),
        Claim::New,
        "keys are independent"
    );
    assert!(!n.release(key, "m2").await.expect("release"), "not ours");
    assert!(n.release(key, "m1").await.expect("release"));
    assert!(!n.release(key, "m1").await.expect("release twice"));
    assert_eq!(n.claim(key, "m4", day).await.expect("claim"), Claim::New);

    // Claims expire.
    assert_eq!(
        n.claim("short", "a", ms(200)).await.expect("claim"),
        Claim::New
    );
    tokio::time::sleep(ms(300)).await;
    assert_eq!(
        n.claim("short", "b", ms(200)).await.expect("claim"),
        Claim::New
    );
}

async fn nonce_claim_race_has_one_winner(env: &Env) {
    let claims = (0..20).map(|i| {
        let n = env.nonces.clone();
        tokio::spawn(async move {
            let value = format!("message-{i}");
            let claim = n
                .claim("race", &value, Duration::from_secs(60))
                .await
                .expect("claim");
            (value, claim)
        })
    });
    let results: Vec<_> = futures::future::join_all(claims)
        .await
        .into_iter()
        .map(|r| r.expect("task"))
        .collect();
    let winners: Vec<&String> = results
        .iter()
        .filter(|(_, c)| *c == Claim::New)
        .map(|(v, _)| v)
        .collect();
    assert_eq!(winners.len(), 1, "exactly one New: {results:?}");
    for (_, claim) in &results {
        if let Claim::Existing(held) = claim {
            assert_eq!(held, winners[0], "losers see the winner's value");
        }
    }
}

fn meta() -> SessionMeta {
    SessionMeta {
        user: 42,
        auth_session: 7,
    }
}

async fn session_records_append_and_load(env: &Env) {
    let ttl = Duration::from_secs(60);
    let s = &env.sessions;
    assert_eq!(s.load("nope").await.unwrap(), None);
    let g = s
        .open("a", &meta(), 1, &[Frame::Marker(10)], ttl)
        .await
        .unwrap();
    let batch = |first_seq, frames: Vec<Frame>| Append {
        session: "a".into(),
        generation: g,
        first_seq,
        frames,
        replace: false,
    };
    s.append(
        &[batch(
            2,
            vec![
                Frame::Log(11),
                Frame::Inline("\"t\":\"PRESENCE_UPDATE\",\"d\":{}}".into()),
            ],
        )],
        ttl,
    )
    .await
    .unwrap();
    s.append(&[batch(4, vec![Frame::Log(15)])], ttl)
        .await
        .unwrap();
    let r = s.load("a").await.unwrap().expect("recorded");
    assert_eq!(r.meta, meta());
    assert_eq!((r.generation, r.first_seq, r.last_seq()), (g, 1, 4));
    assert_eq!(
        r.frames,
        vec![
            Frame::Marker(10),
            Frame::Log(11),
            Frame::Inline("\"t\":\"PRESENCE_UPDATE\",\"d\":{}}".into()),
            Frame::Log(15)
        ]
    );
    // Trimming replaces the record with its tail.
    s.append(
        &[Append {
            replace: true,
            ..batch(4, vec![Frame::Log(15)])
        }],
        ttl,
    )
    .await
    .unwrap();
    let r = s.load("a").await.unwrap().unwrap();
    assert_eq!((r.first_seq, r.frames.clone()), (4, vec![Frame::Log(15)]));
}

async fn session_take_over_fences_the_old_generation(env: &Env) {
    let ttl = Duration::from_secs(60);
    let s = &env.sessions;
    let old = s
        .open("b", &meta(), 1, &[Frame::Marker(1)], ttl)
        .await
        .unwrap();
    // Another node resumes the session after sequence 1.
    let new = s
        .open("b", &meta(), 2, &[Frame::Marker(5)], ttl)
        .await
        .unwrap();
    assert!(new > old);
    // The old node, not yet told, keeps writing: nothing of it lands.
    let stale = Append {
        session: "b".into(),
        generation: old,
        first_seq: 2,
        frames: vec![Frame::Log(3)],
        replace: false,
    };
    assert!(
        s.append(&[stale.clone()], ttl).await.unwrap().is_empty(),
        "a stale generation is ignored, not reported lost"
    );
    let r = s.load("b").await.unwrap().unwrap();
    assert_eq!(
        (r.generation, r.first_seq, r.frames),
        (new, 2, vec![Frame::Marker(5)])
    );
    // A record that is gone (the shared state restarted empty) is reported,
    // so its holder can open it again; the others in the batch still land.
    s.remove("b").await.unwrap();
    let g = s
        .open("b2", &meta(), 1, &[Frame::Marker(1)], ttl)
        .await
        .unwrap();
    let fine = Append {
        session: "b2".into(),
        generation: g,
        first_seq: 2,
        frames: vec![Frame::Log(2)],
        replace: false,
    };
    assert_eq!(s.append(&[fine, stale], ttl).await.unwrap(), vec![1]);
    assert_eq!(s.load("b2").await.unwrap().unwrap().last_seq(), 2);
}

async fn session_records_expire_and_can_be_removed(env: &Env) {
    let s = &env.sessions;
    s.open("c", &meta(), 1, &[Frame::Marker(1)], ms(300))
        .await
        .unwrap();
    s.open(
        "d",
        &meta(),
        1,
        &[Frame::Marker(1)],
        Duration::from_secs(60),
    )
    .await
    .unwrap();
    s.remove("d").await.unwrap();
    assert_eq!(s.load("d").await.unwrap(), None);
    assert!(s.load("c").await.unwrap().is_some());
    tokio::time::sleep(ms(400)).await;
    assert_eq!(s.load("c").await.unwrap(), None, "expired with its TTL");
}

async fn leases_pass_a_floor_and_expire(env: &Env) {
    let l = &env.leases;
    let ttl = Duration::from_secs(10);
    assert_eq!(l.acquire("ch1", "a", ttl).await.unwrap(), Some(0));
    assert_eq!(
        l.acquire("ch1", "a", ttl).await.unwrap(),
        Some(0),
        "re-entrant"
    );
    assert_eq!(l.acquire("ch1", "b", ttl).await.unwrap(), None, "held by a");
    assert!(!l.requested("ch1").await.unwrap());
    l.request("ch1", ms(500)).await.unwrap();
    assert!(l.requested("ch1").await.unwrap(), "a sees b's ask");
    assert!(!l.requested("ch1").await.unwrap(), "once");
    // Released with a 63-bit floor, which must survive exactly.
    let big = 250_023_269_015_486_464_i64;
    assert!(l.release("ch1", "a", big).await.unwrap());
    assert!(!l.release("ch1", "a", 1).await.unwrap(), "no longer held");
    assert_eq!(l.acquire("ch1", "b", ttl).await.unwrap(), Some(big));
    // A lower floor never lowers it.
    assert!(l.release("ch1", "b", 5).await.unwrap());
    assert_eq!(l.acquire("ch1", "c", ms(200)).await.unwrap(), Some(big));
    // c dies holding it: the lease expires by itself.
    tokio::time::sleep(ms(300)).await;
    assert_eq!(l.acquire("ch1", "d", ttl).await.unwrap(), Some(big));
}

async fn slots_are_counted_and_lapse(env: &Env) {
    let s = &env.slots;
    let ttl = Duration::from_secs(10);
    assert!(s.acquire("u1", "a", 2, ttl).await.unwrap());
    assert!(s.acquire("u1", "a", 2, ttl).await.unwrap(), "re-entrant");
    assert!(s.acquire("u1", "b", 2, ttl).await.unwrap());
    assert!(!s.acquire("u1", "c", 2, ttl).await.unwrap(), "full");
    assert!(s.acquire("u2", "c", 2, ttl).await.unwrap(), "per key");
    assert_eq!(s.count("u1").await.unwrap(), 2);
    s.release("u1", "a").await.unwrap();
    s.release("u1", "nobody").await.unwrap();
    assert!(
        s.acquire("u1", "c", 2, ttl).await.unwrap(),
        "a's slot is free"
    );
    // Concurrent takers of the last slot: exactly one wins.
    let mut racers = Vec::new();
    for i in 0..8 {
        let s = s.clone();
        racers.push(tokio::spawn(async move {
            s.acquire("u3", &format!("r{i}"), 1, Duration::from_secs(10))
                .await
                .unwrap()
        }));
    }
    let mut won = 0;
    for r in racers {
        won += usize::from(r.await.unwrap());
    }
    assert_eq!(won, 1, "one winner");
    // A holder that stops renewing lapses; one that renews stays.
    assert!(s.acquire("u4", "dies", 2, ms(300)).await.unwrap());
    assert!(s.acquire("u4", "lives", 2, ms(300)).await.unwrap());
    tokio::time::sleep(ms(150)).await;
    s.renew(&[("u4".into(), "lives".into())], ms(600))
        .await
        .unwrap();
    tokio::time::sleep(ms(300)).await;
    assert_eq!(s.count("u4").await.unwrap(), 1, "the silent one lapsed");
    assert!(s.acquire("u4", "new", 2, ttl).await.unwrap());
    assert!(!s.acquire("u4", "more", 2, ttl).await.unwrap());
    // A renewal brings back a slot that lapsed.
    s.renew(&[("u5".into(), "x".into())], ttl).await.unwrap();
    assert_eq!(s.count("u5").await.unwrap(), 1);
}

async fn voice_states_move_and_expire(env: &Env) {
    let v = &env.voice;
    let entry = |user: i64, community: i64, channel: i64, state: &[u8]| VoiceEntry {
        user,
        community,
        channel,
        host: "node-1".into(),
        state: state.to_vec(),
    };
    let ttl = Duration::from_secs(10);
    assert_eq!(v.put(&entry(1, 10, 100, b"m"), ttl).await.unwrap(), None);
    v.put(&entry(2, 10, 101, b""), ttl).await.unwrap();
    v.put(&entry(3, 20, 200, b"x\ny"), ttl).await.unwrap();
    let users = |es: Vec<VoiceEntry>| es.iter().map(|e| e.user).collect::<Vec<_>>();
    assert_eq!(users(v.in_community(10).await.unwrap()), [1, 2]);
    assert_eq!(
        v.of_user(3).await.unwrap().unwrap().state,
        b"x\ny",
        "the state is opaque bytes, newlines included"
    );
    // Moving to another community's channel: listed only there.
    let old = v.put(&entry(1, 20, 201, b""), ttl).await.unwrap().unwrap();
    assert_eq!(
        (old.community, old.channel, old.state),
        (10, 100, b"m".to_vec())
    );
    assert_eq!(users(v.in_community(10).await.unwrap()), [2]);
    assert_eq!(users(v.in_community(20).await.unwrap()), [1, 3]);
    // A leave naming an old channel does not undo the newer join.
    assert_eq!(v.remove(1, Some(100)).await.unwrap(), None);
    assert!(v.of_user(1).await.unwrap().is_some());
    assert_eq!(v.remove(1, Some(201)).await.unwrap().unwrap().channel, 201);
    assert_eq!(v.remove(1, None).await.unwrap(), None);
    assert_eq!(users(v.in_community(20).await.unwrap()), [3]);
    // Entries lapse unless their host puts them again.
    v.put(&entry(4, 30, 300, b""), ms(200)).await.unwrap();
    assert_eq!(users(v.in_community(30).await.unwrap()), [4]);
    tokio::time::sleep(ms(350)).await;
    assert!(v.in_community(30).await.unwrap().is_empty());
    assert_eq!(v.of_user(4).await.unwrap(), None);
}

async fn files_are_kept_replaced_removed_and_expire(env: &Env) {
    let f = &env.files;
    let bytes = bytes::Bytes::from((0..=255u8).cycle().take(5000).collect::<Vec<u8>>());
    assert_eq!(f.get("prev/1.webp").await.expect("get"), None);
    f.put("prev/1.webp", bytes.clone(), Duration::from_secs(60))
        .await
        .expect("put");
    assert_eq!(
        f.get("prev/1.webp").await.expect("get"),
        Some(bytes.clone())
    );
    f.put("prev/1.webp", bytes.slice(..10), Duration::from_secs(60))
        .await
        .expect("replace");
    assert_eq!(
        f.get("prev/1.webp").await.expect("get"),
        Some(bytes.slice(..10))
    );
    f.remove("prev/1.webp").await.expect("remove");
    f.remove("prev/1.webp").await.expect("removing twice");
    assert_eq!(f.get("prev/1.webp").await.expect("get"), None);
    f.put("att/2", bytes.clone(), ms(150)).await.expect("put");
    assert!(f.get("att/2").await.expect("get").is_some());
    tokio::time::sleep(ms(300)).await;
    assert_eq!(f.get("att/2").await.expect("get"), None, "expired");
}
