//! Against a real NATS server with JetStream (`HEARTH_NATS_URL`, default
//! `nats://127.0.0.1:4222`). These tests fail, never skip, without one.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use hearth_bus::nats::durable::H_ERROR;
use hearth_bus::nats::{DurableConfig, StatsSnapshot};
use hearth_bus::{Bus, Delivery, Envelope, NatsBus, NatsOptions, Subscription};

const WAIT: Duration = Duration::from_secs(10);

fn url() -> String {
    std::env::var("HEARTH_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into())
}

async fn bus_with(opts: NatsOptions) -> NatsBus {
    NatsBus::connect(&url(), opts)
        .await
        .expect("NATS with JetStream must be running for these tests")
}

async fn bus() -> NatsBus {
    bus_with(NatsOptions::default()).await
}

/// A fresh subject token / name so parallel tests and reruns never collide.
fn uniq(tag: &str) -> String {
    format!("{tag}{:016x}", rand::random::<u64>())
}

fn ev(subject: &str, id: impl ToString, data: &[u8]) -> Envelope {
    Envelope::json(
        id.to_string(),
        "hearth://node/test".into(),
        "hearth.test.event",
        subject,
        data.to_vec(),
    )
}

async fn next_event(sub: &mut Box<dyn Subscription>) -> Envelope {
    match tokio::time::timeout(WAIT, sub.next()).await {
        Ok(Some(Delivery::Event(e))) => e,
        other => panic!("expected an event, got {other:?}"),
    }
}

async fn nothing_more(sub: &mut Box<dyn Subscription>) {
    if let Ok(d) = tokio::time::timeout(Duration::from_millis(300), sub.next()).await {
        panic!("unexpected delivery {d:?}");
    }
}

async fn eventually(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !ok() {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn round_trip_preserves_every_attribute() {
    let bus = bus().await;
    assert_eq!(bus.name(), "nats");
    bus.ping().await.expect("ping");
    let t = uniq("t");
    let mut sub = bus.subscribe(&format!("{t}.")).await.unwrap();
    let mut e = ev(
        &format!("{t}.chat.community.123.channel.456"),
        "987654321",
        b"",
    );
    e.data = Bytes::from_static(&[0, 159, 146, 150, 255, b'\n', b'\r']);
    e.datacontenttype = "application/octet-stream";
    e.time = 1_700_000_000_123;
    bus.publish(e.clone()).await.unwrap();
    assert_eq!(next_event(&mut sub).await, e);
}

#[tokio::test]
async fn subscribers_get_only_their_prefix() {
    let bus = bus().await;
    let t = uniq("t");
    let mut chat = bus.subscribe(&format!("{t}.chat.")).await.unwrap();
    let mut user5 = bus.subscribe(&format!("{t}.chat.user.5")).await.unwrap();
    let mut all = bus.subscribe(&format!("{t}.")).await.unwrap();
    let subjects = [
        "chat.community.1.channel.2",
        "chat.private.9",
        "chat.user.5",
        "chat.user.55",
        "chat.user.6",
        "auth.session.7",
        "presence.5",
        "internal.permissions.3",
    ];
    for (i, s) in subjects.iter().enumerate() {
        bus.publish(ev(&format!("{t}.{s}"), i, b"x")).await.unwrap();
    }
    for want in ["0", "1", "2", "3", "4"] {
        assert_eq!(next_event(&mut chat).await.id, want);
    }
    for want in ["2", "3"] {
        assert_eq!(next_event(&mut user5).await.id, want);
    }
    for i in 0..subjects.len() {
        assert_eq!(next_event(&mut all).await.id, i.to_string());
    }
    nothing_more(&mut chat).await;
    nothing_more(&mut user5).await;
    assert!(bus.subscribe("chat.*").await.is_err());
    assert!(bus.publish(ev("chat.>", 1, b"")).await.is_err());
}

#[tokio::test]
async fn many_messages_on_one_subject_stay_in_order() {
    // Room for all of them: this test reads only after publishing.
    let bus = bus_with(NatsOptions {
        subscriber_capacity: 4096,
        ..Default::default()
    })
    .await;
    let subject = format!("{}.chat.private.9", uniq("t"));
    let mut sub = bus.subscribe(&subject).await.unwrap();
    for i in 0..2000 {
        bus.publish(ev(&subject, i, &u32::to_be_bytes(i)))
            .await
            .unwrap();
    }
    for i in 0..2000u32 {
        let e = next_event(&mut sub).await;
        assert_eq!(e.id, i.to_string());
        assert_eq!(&e.data[..], &i.to_be_bytes());
    }
}

#[tokio::test]
async fn a_slow_subscriber_lags_instead_of_blocking() {
    let bus = bus_with(NatsOptions {
        subscriber_capacity: 16,
        ..Default::default()
    })
    .await;
    let subject = format!("{}.presence.5", uniq("t"));
    let mut slow = bus.subscribe(&subject).await.unwrap();
    let mut fast = bus.subscribe(&subject).await.unwrap();
    let mut fast_seen = 0;
    for i in 0..200 {
        bus.publish(ev(&subject, i, b"")).await.unwrap();
        // The fast reader keeps up: publishing never waited on `slow`.
        if i % 8 == 7 {
            bus.ping().await.unwrap();
            while let Ok(Some(Delivery::Event(_))) =
                tokio::time::timeout(Duration::from_millis(50), fast.next()).await
            {
                fast_seen += 1;
            }
        }
    }
    bus.ping().await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    while let Ok(Some(Delivery::Event(_))) =
        tokio::time::timeout(Duration::from_millis(200), fast.next()).await
    {
        fast_seen += 1;
    }
    assert_eq!(fast_seen, 200);
    // The slow one holds the first 16, then learns how many it missed, then
    // gets an event that was published after the gap.
    let mut ids = Vec::new();
    let mut lagged = 0;
    loop {
        match tokio::time::timeout(Duration::from_millis(300), slow.next()).await {
            Ok(Some(Delivery::Event(e))) => ids.push(e.id.parse::<u64>().unwrap()),
            Ok(Some(Delivery::Lagged(n))) => {
                assert_eq!(ids, (0..16).collect::<Vec<_>>());
                lagged += n;
            }
            Ok(Some(other)) => panic!("{other:?}"),
            Ok(None) => panic!("closed"),
            Err(_) => break,
        }
    }
    assert!(lagged > 0, "a lag must be reported");
    assert_eq!(
        ids.len() as u64 + lagged,
        200,
        "every event is delivered or counted"
    );
}

/// One stream + durable consumer per test, deleted at the end.
struct Fixture {
    bus: NatsBus,
    stream: String,
    topic: String,
    consumer: String,
}

impl Fixture {
    async fn new() -> Fixture {
        let bus = bus().await;
        let t = uniq("t");
        Fixture {
            bus,
            stream: t.to_uppercase(),
            topic: t.clone(),
            consumer: format!("c{t}"),
        }
    }

    fn config(&self, max_in_flight: usize) -> DurableConfig {
        DurableConfig::new(
            &self.stream,
            &[&format!("{}.>", self.topic)],
            &self.consumer,
            max_in_flight,
        )
        .retry_delay(Duration::from_millis(100))
    }

    async fn done(self) {
        self.bus.delete_stream(&self.stream).await.unwrap();
    }
}

#[tokio::test]
async fn durable_consumer_processes_each_event_once_within_max_in_flight() {
    let f = Fixture::new().await;
    const N: usize = 60;
    const MAX: usize = 4;
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let (now, peak) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let consumer = {
        let (seen, now, peak) = (seen.clone(), now.clone(), peak.clone());
        f.bus
            .durable(f.config(MAX), move |e: Envelope| {
                let (seen, now, peak) = (seen.clone(), now.clone(), peak.clone());
                async move {
                    let n = now.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(n, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    seen.lock().unwrap().push(e.id);
                    now.fetch_sub(1, Ordering::SeqCst);
                    Ok::<_, String>(())
                }
            })
            .await
            .unwrap()
    };
    for i in 0..N {
        // Half through core publish (captured by the stream), half durable.
        let e = ev(&format!("{}.chat.user.{i}", f.topic), i, b"{}");
        if i % 2 == 0 {
            f.bus.publish(e).await.unwrap();
        } else {
            f.bus.publish_durable(e).await.unwrap();
        }
    }
    eventually("all processed", || consumer.stats().processed == N as u64).await;
    tokio::time::sleep(Duration::from_millis(500)).await; // no redeliveries
    let mut ids: Vec<usize> = seen
        .lock()
        .unwrap()
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
    ids.sort_unstable();
    assert_eq!(ids, (0..N).collect::<Vec<_>>(), "each event exactly once");
    assert!(peak.load(Ordering::SeqCst) <= MAX, "peak {peak:?}");
    assert!(peak.load(Ordering::SeqCst) > 1, "events ran concurrently");
    assert_eq!(
        consumer.stats(),
        StatsSnapshot {
            processed: N as u64,
            retried: 0,
            dead_lettered: 0
        }
    );
    drop(consumer);
    f.done().await;
}

#[tokio::test]
async fn a_failing_event_is_retried_once_then_dead_lettered() {
    let f = Fixture::new().await;
    let calls = Arc::new(AtomicUsize::new(0));
    let flaky_calls = Arc::new(AtomicUsize::new(0));
    let mut dlq = f
        .bus
        .client()
        .subscribe(f.bus.dlq_subject(&f.consumer))
        .await
        .unwrap();
    f.bus.client().flush().await.unwrap();
    let consumer = {
        let (calls, flaky_calls) = (calls.clone(), flaky_calls.clone());
        f.bus
            .durable(f.config(2), move |e: Envelope| {
                let (calls, flaky_calls) = (calls.clone(), flaky_calls.clone());
                async move {
                    match e.id.as_str() {
                        "poison" => {
                            calls.fetch_add(1, Ordering::SeqCst);
                            Err(format!("cannot index {}", e.id))
                        }
                        // Fails once, succeeds on the retry.
                        "flaky" if flaky_calls.fetch_add(1, Ordering::SeqCst) == 0 => {
                            Err("transient".to_string())
                        }
                        _ => Ok(()),
                    }
                }
            })
            .await
            .unwrap()
    };
    let poison = ev(&format!("{}.chat.private.9", f.topic), "poison", b"bad");
    f.bus.publish_durable(poison.clone()).await.unwrap();
    f.bus
        .publish_durable(ev(&format!("{}.chat.private.9", f.topic), "flaky", b""))
        .await
        .unwrap();
    f.bus
        .publish_durable(ev(&format!("{}.chat.private.9", f.topic), "fine", b""))
        .await
        .unwrap();

    use futures::StreamExt;
    let msg = tokio::time::timeout(WAIT, dlq.next())
        .await
        .expect("DLQ message within timeout")
        .expect("subscription open");
    let h = msg.headers.as_ref().expect("headers");
    assert_eq!(
        h.get(H_ERROR).map(|v| v.as_str()),
        Some("cannot index poison")
    );
    assert_eq!(h.get("ce-id").map(|v| v.as_str()), Some("poison"));
    assert_eq!(
        h.get("ce-type").map(|v| v.as_str()),
        Some("hearth.test.event")
    );
    assert_eq!(
        h.get("ce-subject").map(|v| v.as_str()),
        Some(poison.subject.as_str())
    );
    assert_eq!(h.get("ce-specversion").map(|v| v.as_str()), Some("1.0"));
    assert_eq!(&msg.payload[..], b"bad");

    eventually("stats settle", || {
        consumer.stats()
            == StatsSnapshot {
                processed: 2,
                retried: 2,
                dead_lettered: 1,
            }
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(calls.load(Ordering::SeqCst), 2, "first try + one retry");
    assert_eq!(flaky_calls.load(Ordering::SeqCst), 2);
    assert_eq!(
        consumer.stats(),
        StatsSnapshot {
            processed: 2,
            retried: 2,
            dead_lettered: 1
        }
    );
    drop(consumer);
    f.done().await;
}

#[tokio::test]
async fn replay_returns_later_events_in_order() {
    let f = Fixture::new().await;
    f.bus
        .ensure_stream(&f.stream, &[&format!("{}.>", f.topic)])
        .await
        .unwrap();
    let room = format!("{}.chat.community.1.channel.2", f.topic);
    let other = format!("{}.chat.private.3", f.topic);
    let mut seqs = Vec::new();
    for i in 0..10 {
        seqs.push(
            f.bus
                .publish_durable(ev(&room, i, &[i as u8]))
                .await
                .unwrap(),
        );
        f.bus
            .publish_durable(ev(&other, 100 + i, b""))
            .await
            .unwrap();
    }
    // Same id again inside the duplicate window: stored once.
    assert_eq!(
        f.bus.publish_durable(ev(&room, 0, &[0])).await.unwrap(),
        seqs[0]
    );

    let got = f.bus.replay(&f.stream, &room, seqs[3], 100).await.unwrap();
    let ids: Vec<String> = got.iter().map(|(_, e)| e.id.clone()).collect();
    assert_eq!(ids, (4..10).map(|i| i.to_string()).collect::<Vec<_>>());
    assert_eq!(got.iter().map(|(s, _)| *s).collect::<Vec<_>>(), seqs[4..]);
    assert_eq!(got[0].1.data, Bytes::from_static(&[4]));

    let bounded = f.bus.replay(&f.stream, "", 0, 5).await.unwrap();
    assert_eq!(bounded.len(), 5);
    assert!(bounded.windows(2).all(|w| w[0].0 < w[1].0));
    assert!(
        f.bus
            .replay(&f.stream, &room, seqs[9], 10)
            .await
            .unwrap()
            .is_empty()
    );
    f.done().await;
}

#[tokio::test]
async fn the_log_orders_appends_for_every_follower_and_warms_from_a_backlog() {
    let root = uniq("log");
    let bus = bus_with(NatsOptions {
        subject_root: root.clone(),
        log_subjects: vec!["chat.>".into()],
        ..Default::default()
    })
    .await;
    bus.open_log().await.unwrap();
    let other_node = bus_with(bus.options().clone()).await;
    // Two events before anyone follows: a follower with backlog 1 sees the last.
    for i in 0..2 {
        bus.append(ev("chat.community.1", format!("early{i}"), b""))
            .await
            .unwrap()
            .await
            .unwrap();
    }
    let (mut a, head_a) = bus.follow(1).await.unwrap();
    let (mut b, head_b) = other_node.follow(0).await.unwrap();
    assert_eq!((head_a, head_b), (2, 2));
    let mut acks = Vec::new();
    for i in 0..20 {
        // Appends from two connections: one order, the same for everyone.
        let node = if i % 2 == 0 { &bus } else { &other_node };
        acks.push(
            node.append(ev("chat.community.1.channel.2", i, &[i as u8]))
                .await
                .unwrap(),
        );
    }
    let mut stored = Vec::new();
    for a in acks {
        stored.push(a.await.unwrap());
    }
    // A retried append (same id) is stored once.
    let again = bus
        .append(ev("chat.community.1.channel.2", 0, &[0]))
        .await
        .unwrap()
        .await
        .unwrap();
    assert_eq!(again, stored[0]);
    async fn take(sub: &mut Box<dyn Subscription>, n: usize) -> Vec<(u64, String)> {
        let mut out = Vec::new();
        while out.len() < n {
            match tokio::time::timeout(Duration::from_secs(5), sub.next()).await {
                Ok(Some(Delivery::Logged(p, e))) => out.push((p, e.id)),
                other => panic!("{other:?}"),
            }
        }
        out
    }
    let from_a = take(&mut a, 21).await;
    let from_b = take(&mut b, 20).await;
    assert_eq!(
        from_a[0],
        (2, "early1".to_string()),
        "the backlog comes first"
    );
    assert_eq!(from_a[1..], from_b[..], "every follower sees one order");
    assert!(
        from_b.windows(2).all(|w| w[1].0 == w[0].0 + 1),
        "positions are dense"
    );
    let mut by_pos: Vec<u64> = from_b.iter().map(|(p, _)| *p).collect();
    by_pos.sort();
    stored.sort();
    assert_eq!(by_pos, stored, "acks name the positions followers see");
    // Real-time publishes do not enter the log.
    bus.publish(ev("presence.1", "live", b"")).await.unwrap();
    bus.append(ev("chat.community.9", "last", b""))
        .await
        .unwrap()
        .await
        .unwrap();
    assert_eq!(take(&mut b, 1).await[0].1, "last");
    bus.delete_stream(&bus.log_stream()).await.unwrap();
}

#[tokio::test]
async fn reading_the_log_from_a_position_and_a_shared_durable_consumer() {
    let root = uniq("rd");
    let opts = NatsOptions {
        subject_root: root.clone(),
        log_subjects: vec!["chat.>".into()],
        ..Default::default()
    };
    let bus = bus_with(opts.clone()).await;
    bus.open_log().await.unwrap();
    for i in 1..=4 {
        bus.append(ev("chat.community.1", format!("e{i}"), b""))
            .await
            .unwrap()
            .await
            .unwrap();
    }
    async fn logged(sub: &mut Box<dyn Subscription>) -> (u64, String) {
        match tokio::time::timeout(WAIT, sub.next()).await {
            Ok(Some(Delivery::Logged(p, e))) => (p, e.id),
            other => panic!("expected a logged event, got {other:?}"),
        }
    }
    // After a position: what follows it, then what is appended later.
    let mut r = bus.read_from(2).await.unwrap();
    assert_eq!(logged(&mut r).await, (3, "e3".into()));
    assert_eq!(logged(&mut r).await, (4, "e4".into()));
    bus.append(ev("chat.community.1", "e5", b""))
        .await
        .unwrap()
        .await
        .unwrap();
    assert_eq!(logged(&mut r).await, (5, "e5".into()));
    assert_eq!(bus.log_head().await.unwrap(), Some(5));
    // A position past the log's end (the log was reset): rebuild.
    let mut r = bus.read_from(1_000).await.unwrap();
    assert!(matches!(r.next().await, Some(Delivery::Lagged(_))));

    // A shared consumer: two nodes with the same name split the work, and
    // every wanted event is handled once; others are skipped.
    struct Seen(parking_lot::Mutex<Vec<(u64, String)>>);
    #[async_trait::async_trait]
    impl hearth_bus::journal::Handler for Seen {
        async fn handle(&self, position: u64, event: &Envelope) -> Result<(), String> {
            self.0.lock().push((position, event.id.clone()));
            Ok(())
        }
    }
    let seen = Arc::new(Seen(Default::default()));
    let other = bus_with(opts).await;
    let cfg = hearth_bus::journal::ConsumerConfig::new("audit", &["chat.community.1"]);
    let _a = bus.consume(cfg.clone(), seen.clone()).await.unwrap();
    let _b = other.consume(cfg, seen.clone()).await.unwrap();
    bus.append(ev("chat.community.2", "skip", b""))
        .await
        .unwrap()
        .await
        .unwrap();
    eventually("five events once", || seen.0.lock().len() >= 5).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut got = seen.0.lock().clone();
    got.sort();
    let want: Vec<(u64, String)> = (1..=5).map(|i| (i, format!("e{i}"))).collect();
    assert_eq!(got, want, "positions are the stream's, each event once");
    bus.delete_stream(&bus.log_stream()).await.unwrap();
}
