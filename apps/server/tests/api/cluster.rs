//! Several nodes on one Postgres, NATS and Redis: what one node does, the
//! others' clients see, with the same permission rules, at once.

use std::time::Duration;

use serde_json::{Value, json};

use crate::gateway::Gw;
use crate::{Db, TestServer};

pub struct Cluster {
    pub nodes: Vec<TestServer>,
    admin: String,
    db: String,
    root: String,
}

pub fn nats_url() -> String {
    std::env::var("HEARTH_TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into())
}

pub fn redis_url() -> String {
    std::env::var("HEARTH_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// Deletes the bus log stream a test cluster created under `root`.
pub async fn drop_log(root: &str) {
    let bus = hearth_bus::NatsBus::connect(
        &nats_url(),
        hearth_bus::NatsOptions {
            subject_root: root.to_string(),
            ..Default::default()
        },
    )
    .await
    .expect("NATS");
    let _ = bus.delete_stream(&bus.log_stream()).await;
}

impl Cluster {
    async fn start(n: usize) -> Cluster {
        Self::start_with(n, |_| {}).await
    }

    pub async fn start_with(
        n: usize,
        tweak: impl Fn(&mut hearth_server::config::Config) + Clone + Send + 'static,
    ) -> Cluster {
        let admin = hearth_store::testing::admin_url();
        let db = format!(
            "hearth_cluster_{}_{}",
            std::process::id(),
            rand::random::<u32>()
        );
        let url = hearth_store::testing::create_database(&admin, &db)
            .await
            .expect("Postgres must be running");
        let root = format!("t{}", rand::random::<u32>());
        let mut nodes = Vec::new();
        for _ in 0..n {
            let (url, root, tweak) = (url.clone(), root.clone(), tweak.clone());
            nodes.push(
                TestServer::start_with(Db::Shared(url), move |c| {
                    tweak(c);
                    c.nats_url = nats_url();
                    c.redis_url = hearth_server::config::Secret(redis_url());
                    c.nats_subject_root = root;
                    // Load from one address and one user: limits are tested elsewhere.
                    c.rate_limit.enabled = false;
                    c.jwt_secret = hearth_server::config::Secret(
                        "a shared secret for every node of this cluster".into(),
                    );
                })
                .await,
            );
        }
        Cluster {
            nodes,
            admin,
            db,
            root,
        }
    }

    pub async fn stop(self) {
        for n in self.nodes {
            n.stop().await;
        }
        drop_log(&self.root).await;
        hearth_store::testing::drop_database(&self.admin, &self.db)
            .await
            .expect("drop");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_share_events_permissions_and_revocations() {
    let c = Cluster::start(3).await;
    let (n1, n2, n3) = (&c.nodes[0], &c.nodes[1], &c.nodes[2]);
    let owner = n1.register("clo").await;
    let member = n2.register("clm").await;
    let (cid, general) = n1.community(&owner, "Cluster").await;
    n1.join(&owner, &cid, &member).await;
    // Node ids are distinct (IDs never collide across nodes).
    let mut ids = Vec::new();
    for n in [n1, n2, n3] {
        ids.push(
            n.call(reqwest::Method::GET, "/readyz", None, None).await.1["checks"]["node_id"]
                .as_u64()
                .unwrap(),
        );
    }
    assert!(
        ids[0] != ids[1] && ids[1] != ids[2] && ids[0] != ids[2],
        "{ids:?}"
    );
    assert_eq!(
        n2.call(reqwest::Method::GET, "/readyz", None, None).await.1["checks"]["bus"]["backend"],
        "nats"
    );

    // A client on each node receives a message posted on another.
    let (mut on2, _) = Gw::identify(n2, &member).await;
    let (mut on3, _) = Gw::identify(n3, &owner).await;
    let sent = n1.send(&owner, &general, "from node 1").await;
    assert_eq!(on2.expect("MESSAGE_CREATE").await["id"], sent["id"]);
    assert_eq!(on3.expect("MESSAGE_CREATE").await["id"], sent["id"]);
    let back = n3.send(&member, &general, "from node 3").await;
    assert_eq!(on2.expect("MESSAGE_CREATE").await["id"], back["id"]);
    assert_eq!(on3.expect("MESSAGE_CREATE").await["id"], back["id"]);

    // A permission change made on node 1 stops delivery on node 2 at once.
    n1.put(
        &format!("/api/v1/channels/{general}/overwrites/{cid}"),
        &owner.token,
        Some(json!({"target_type": "role", "deny": ["VIEW_CHANNEL"]})),
    )
    .await;
    assert_eq!(on2.expect("CHANNEL_DELETE").await["id"], general.as_str());
    let (st, _) = n2
        .get(
            &format!("/api/v1/channels/{general}/messages"),
            &member.token,
        )
        .await;
    assert_eq!(
        st.as_u16(),
        404,
        "node 2's permission cache was invalidated"
    );
    n1.send(&owner, &general, "hidden").await;
    assert_eq!(on3.expect("MESSAGE_CREATE").await["content"], "hidden");
    on2.never("MESSAGE_CREATE", Duration::from_millis(500))
        .await;

    // A logout on node 1 closes that session's socket on node 2 within 1 s,
    // and its token stops working on node 3.
    let start = std::time::Instant::now();
    n1.call(
        reqwest::Method::POST,
        "/api/v1/auth/logout",
        Some(&member.token),
        None,
    )
    .await;
    assert_eq!(on2.closed_with(Duration::from_secs(2)).await, 4010);
    assert!(start.elapsed() < Duration::from_secs(1));
    assert_eq!(
        n3.get("/api/v1/users/@me", &member.token).await.0.as_u16(),
        401
    );

    drop((on2, on3));
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_resumes_on_any_node_with_every_missed_event_in_order() {
    let c = Cluster::start(3).await;
    let (n1, n2, n3) = (&c.nodes[0], &c.nodes[1], &c.nodes[2]);
    let owner = n1.register("rso").await;
    let member = n1.register("rsm").await;
    let (cid, general) = n1.community(&owner, "Resume").await;
    n1.join(&owner, &cid, &member).await;

    let (mut gw, ready) = Gw::identify(n2, &member).await;
    let session = ready["session_id"].as_str().unwrap().to_string();
    let first = n1.send(&owner, &general, "before").await;
    assert_eq!(gw.expect("MESSAGE_CREATE").await["id"], first["id"]);
    let seen = gw.last_s;
    drop(gw); // the connection drops

    let mut missed = Vec::new();
    for i in 0..5 {
        missed.push(n1.send(&owner, &general, &format!("missed {i}")).await["id"].clone());
    }
    // Resumed on node 3, which never held the session.
    let (mut gw, got) = Gw::resume(n3, &member, &session, seen).await;
    let got = got.expect("node 3 resumes the session");
    let ids: Vec<Value> = got
        .iter()
        .filter(|f| f["t"] == "MESSAGE_CREATE")
        .map(|f| f["d"]["id"].clone())
        .collect();
    assert_eq!(ids, missed, "every missed message, once, in order");
    assert_eq!(got.first().unwrap()["s"].as_u64(), Some(seen + 1));
    // Live again, from node 3.
    let live = n2.send(&member, &general, "live").await;
    assert_eq!(gw.expect("MESSAGE_CREATE").await["id"], live["id"]);
    let seen = gw.last_s;
    drop(gw);

    // And back on node 2 (which let the session go when node 3 took it).
    let later = n3.send(&owner, &general, "later").await;
    let (mut gw, got) = Gw::resume(n2, &member, &session, seen).await;
    let got = got.expect("node 2 resumes it back");
    assert_eq!(
        got.iter()
            .filter(|f| f["t"] == "MESSAGE_CREATE")
            .map(|f| f["d"]["id"].clone())
            .collect::<Vec<_>>(),
        vec![later["id"].clone()]
    );
    // A sequence never sent, another user's session and an unknown one:
    // invalid_session, never a crash.
    let (_, bad) = Gw::resume(n1, &member, &session, gw.last_s + 50).await;
    assert!(bad.is_err());
    let (_, bad) = Gw::resume(n1, &owner, &session, 1).await;
    assert!(bad.is_err());
    let (_, bad) = Gw::resume(n1, &member, "0123456789abcdef0123456789abcdef", 1).await;
    assert!(bad.is_err());
    let still = n1.send(&owner, &general, "still here").await;
    assert_eq!(gw.expect("MESSAGE_CREATE").await["id"], still["id"]);

    // A change of what the user may see while away is not replayed onto a
    // stale view: the node answers invalid_session and the client reloads.
    let seen = gw.last_s;
    drop(gw);
    n1.put(
        &format!("/api/v1/channels/{general}/overwrites/{cid}"),
        &owner.token,
        Some(json!({"target_type": "role", "deny": ["VIEW_CHANNEL"]})),
    )
    .await;
    let (_, after_change) = Gw::resume(n1, &member, &session, seen).await;
    assert!(after_change.is_err(), "{after_change:?}");
    c.stop().await;
}

/// Redis restarted empty loses every session record. The node that holds a
/// live session learns it on its next write and records the session again
/// from its replay window, so the client can still move to another node
/// (a rolling restart after a Redis restart) without identifying anew.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_whose_record_was_lost_is_recorded_again() {
    use hearth_state::SessionLog;
    let c = Cluster::start(2).await;
    let (n1, n2) = (&c.nodes[0], &c.nodes[1]);
    let owner = n1.register("rlo").await;
    let member = n1.register("rlm").await;
    let (cid, general) = n1.community(&owner, "Lost records").await;
    n1.join(&owner, &cid, &member).await;
    let (mut gw, ready) = Gw::identify(n1, &member).await;
    let session = ready["session_id"].as_str().unwrap().to_string();
    let first = n2.send(&owner, &general, "before").await;
    assert_eq!(gw.expect("MESSAGE_CREATE").await["id"], first["id"]);

    // The shared state forgets the record, as a Redis restarted empty would.
    let conn = hearth_state::RedisConnection::connect(&redis_url(), &format!("{}:", c.root))
        .await
        .expect("Redis");
    let records = hearth_state::RedisSessionLog::new(conn);
    assert!(records.load(&session).await.unwrap().is_some());
    records.remove(&session).await.unwrap();

    // The next frame's write finds it gone and records the session again.
    let second = n2.send(&owner, &general, "after the loss").await;
    assert_eq!(gw.expect("MESSAGE_CREATE").await["id"], second["id"]);
    let started = std::time::Instant::now();
    loop {
        if let Some(r) = records.load(&session).await.unwrap()
            && r.last_seq() >= gw.last_s
        {
            break;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(5),
            "the lost record was not written again"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let seen = gw.last_s;
    drop(gw);
    let missed = n2.send(&owner, &general, "missed").await;
    let (_, got) = Gw::resume(n2, &member, &session, seen).await;
    let got = got.expect("the session resumes on the other node after its record was lost");
    let ids: Vec<Value> = got
        .iter()
        .filter(|f| f["t"] == "MESSAGE_CREATE")
        .map(|f| f["d"]["id"].clone())
        .collect();
    assert_eq!(ids, vec![missed["id"].clone()]);
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_sends_through_two_nodes_arrive_in_id_order_everywhere() {
    let c = Cluster::start(3).await;
    let (n1, n2, n3) = (&c.nodes[0], &c.nodes[1], &c.nodes[2]);
    let owner = n1.register("ordo").await;
    let member = n1.register("ordm").await;
    let (cid, general) = n1.community(&owner, "Order").await;
    n1.join(&owner, &cid, &member).await;
    let (mut on3, _) = Gw::identify(n3, &member).await;
    let (mut on1, _) = Gw::identify(n1, &owner).await;

    // Four senders at once, two through node 1 and two through node 2.
    let mut tasks = Vec::new();
    for (i, node) in [n1, n2, n1, n2].into_iter().enumerate() {
        let (http, base, token, ch) = (
            node.http.clone(),
            node.base.clone(),
            owner.token.clone(),
            general.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            for k in 0..60 {
                let r = http
                    .post(format!("{base}/api/v1/channels/{ch}/messages"))
                    .bearer_auth(&token)
                    .json(&json!({"content": format!("s{i} m{k}")}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status().as_u16(), 201);
                let m: Value = r.json().await.unwrap();
                ids.push(m["id"].as_str().unwrap().parse::<i64>().unwrap());
            }
            ids
        }));
    }
    let mut sent = Vec::new();
    for t in tasks {
        sent.extend(t.await.unwrap());
    }
    sent.sort();
    for gw in [&mut on3, &mut on1] {
        let mut got = Vec::new();
        while got.len() < sent.len() {
            got.push(
                gw.expect("MESSAGE_CREATE").await["id"]
                    .as_str()
                    .unwrap()
                    .parse::<i64>()
                    .unwrap(),
            );
        }
        assert!(
            got.windows(2).all(|w| w[0] < w[1]),
            "MESSAGE_CREATE in ID order on every node"
        );
        assert_eq!(got, sent, "each once");
    }
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_per_user_are_capped_across_nodes() {
    let c = Cluster::start_with(2, |c| c.gateway_max_sessions_per_user = 2).await;
    let (n1, n2) = (&c.nodes[0], &c.nodes[1]);
    let u = n1.register("capx").await;
    let (a, _) = Gw::identify(n1, &u).await;
    let (_b, _) = Gw::identify(n2, &u).await;
    for n in [n1, n2] {
        let mut third = Gw::connect(n).await;
        third
            .send(json!({"op": "identify", "d": {"token": u.token}}))
            .await;
        assert_eq!(
            third.closed_with(Duration::from_secs(3)).await,
            4008,
            "the count holds across nodes"
        );
    }
    // A connection that ends on one node frees a place on the other.
    drop(a);
    let mut ok = false;
    for _ in 0..50 {
        let mut gw = Gw::connect(n2).await;
        gw.send(json!({"op": "identify", "d": {"token": u.token}}))
            .await;
        if let crate::gateway::Got::Frame(f) = gw.next(Duration::from_secs(3)).await
            && f["t"] == "READY"
        {
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(ok, "the place came free");
    c.stop().await;
}

/// A call across two nodes: the room lives on the first joiner's node and
/// the other node relays its session's ops and the host's dispatches; when
/// the host dies, the other node takes the room over and tells its session
/// to reconnect within 5 s, with no user action.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn voice_across_nodes_and_a_dead_host() {
    use crate::voice::{Caller, WAIT, grows, voice_channel};
    let mut c = Cluster::start(2).await;
    let owner = c.nodes[0].register("vco").await;
    let (cid, _) = c.nodes[0].community(&owner, "Voice cluster").await;
    let room = voice_channel(&c.nodes[0], &owner, &cid, "Hall", 0).await;
    let ann = c.nodes[0].register("vcann").await;
    let bob = c.nodes[1].register("vcbob").await;
    for u in [&ann, &bob] {
        c.nodes[0].join(&owner, &cid, u).await;
    }
    let a = Caller::connect(&c.nodes[0], ann).await;
    let b = Caller::connect(&c.nodes[1], bob).await;
    a.join(&room).await;
    b.join(&room).await;
    grows("ann hears bob across nodes", WAIT, 25, || {
        a.packets(&b.user, "audio")
    })
    .await;
    grows("bob hears ann across nodes", WAIT, 25, || {
        b.packets(&a.user, "audio")
    })
    .await;
    grows("bob sees ann across nodes", WAIT, 5, || {
        b.packets(&a.user, "video")
    })
    .await;
    // Bob's own flags, relayed to the host, reach ann.
    b.op("voice_state", json!({"self_mute": true}));
    a.dispatch("VOICE_STATE_UPDATE", WAIT, |d| {
        d["user_id"] == b.user.id.as_str() && d["self_mute"] == true
    })
    .await
    .expect("bob's mute, relayed");
    // Both nodes list both callers.
    for n in &c.nodes {
        let (_, list) = n
            .get(
                &format!("/api/v1/communities/{cid}/voice-states"),
                &owner.token,
            )
            .await;
        assert_eq!(list.as_array().map(Vec::len), Some(2), "{list}");
    }
    // The host dies: bob's node re-hosts the room and bob reconnects.
    let died = std::time::Instant::now();
    let host = c.nodes.remove(0);
    a.stop().await;
    host.stop().await;
    b.dispatch("VOICE_SIGNAL", Duration::from_secs(8), |d| {
        d["type"] == "reconnect"
    })
    .await
    .expect("bob is told to reconnect");
    let until = std::time::Instant::now() + Duration::from_secs(2);
    while b.count("VOICE_SERVER") < 2 {
        assert!(std::time::Instant::now() < until, "no second VOICE_SERVER");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        died.elapsed() < Duration::from_secs(7),
        "re-hosted after {:?}",
        died.elapsed()
    );
    let (_, list) = c.nodes[0]
        .get(
            &format!("/api/v1/communities/{cid}/voice-states"),
            &owner.token,
        )
        .await;
    assert!(
        list.as_array()
            .unwrap()
            .iter()
            .any(|s| s["user_id"] == b.user.id.as_str()),
        "bob is in the call on the new host: {list}"
    );
    b.stop().await;
    c.stop().await;
}

/// A rolling restart of one node: its gateway clients are told to
/// reconnect, resume on another node from the shared record, and end with
/// every acknowledged message once, in order, without identifying again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_draining_node_moves_its_clients_to_another_without_loss() {
    use crate::gateway::Got;
    const TOTAL: usize = 150;
    let mut c = Cluster::start(2).await;
    let n1 = c.nodes.remove(0);
    let n2 = &c.nodes[0];
    let owner = n2.register("dro").await;
    let (cid, general) = n2.community(&owner, "Drain").await;
    let mut members = Vec::new();
    for i in 0..4 {
        let m = n2.register(&format!("drm{i}")).await;
        n2.join(&owner, &cid, &m).await;
        members.push(m);
    }
    let mut clients = Vec::new();
    for m in &members {
        let (gw, ready) = Gw::identify(&n1, m).await;
        clients.push((gw, ready["session_id"].as_str().unwrap().to_string()));
    }
    let (n1_base, n1_addr) = (n1.base.clone(), n1.addr);
    let (drain_tx, drain_rx) = tokio::sync::oneshot::channel::<()>();

    // Messages keep coming through the other node, before, during and
    // after the drain.
    let sender = async {
        let mut drain_tx = Some(drain_tx);
        let mut acked = Vec::new();
        for i in 0..TOTAL {
            if i == 40 {
                let _ = drain_tx.take().unwrap().send(());
            }
            let m = n2.send(&owner, &general, &format!("m{i}")).await;
            acked.push(m["id"].as_str().unwrap().to_string());
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        acked
    };
    // SIGTERM's path: the node drains, then stops.
    let drainer = async move {
        drain_rx.await.unwrap();
        n1.stop().await;
    };
    let readers = futures::future::join_all(clients.into_iter().zip(&members).map(
        |((mut gw, session), m)| {
            let n1_base = n1_base.clone();
            async move {
                let mut ids = Vec::new();
                let mut told = false;
                let code = loop {
                    match gw.next(Duration::from_secs(10)).await {
                        Got::Frame(f) if f["op"] == "reconnect" => told = true,
                        Got::Frame(f) if f["t"] == "MESSAGE_CREATE" => {
                            ids.push(f["d"]["id"].as_str().unwrap().to_string())
                        }
                        Got::Frame(_) => {}
                        Got::Closed(code) => break code,
                        Got::Nothing => panic!("the draining node never told the client"),
                    }
                };
                assert!(told, "op reconnect before the close");
                assert_eq!(code, 1012, "closed as a service restart");
                // From now on the draining node is not ready and opens no
                // gateway (or is gone altogether).
                if let Ok(r) = reqwest::get(format!("{n1_base}/readyz")).await {
                    assert_eq!(r.status(), 503);
                    let body: Value = r.json().await.unwrap();
                    assert_eq!(body["checks"]["draining"], true, "{body}");
                }
                // The orchestrator's probe (node scope) says so too.
                if let Ok(r) = reqwest::get(format!("{n1_base}/readyz?scope=node")).await {
                    assert_eq!(r.status(), 503, "a draining node is out of rotation");
                }
                let again =
                    tokio_tungstenite::connect_async(format!("ws://{n1_addr}/api/v1/gateway"))
                        .await;
                assert!(again.is_err(), "a draining node takes no new gateway");
                // The client resumes on the other node: no identify.
                let (mut gw, missed) = Gw::resume(n2, m, &session, gw.last_s).await;
                let missed = missed.expect("the session resumes on the other node");
                ids.extend(
                    missed
                        .iter()
                        .filter(|f| f["t"] == "MESSAGE_CREATE")
                        .map(|f| f["d"]["id"].as_str().unwrap().to_string()),
                );
                while ids.len() < TOTAL {
                    match gw.next(Duration::from_secs(10)).await {
                        Got::Frame(f) if f["t"] == "MESSAGE_CREATE" => {
                            ids.push(f["d"]["id"].as_str().unwrap().to_string())
                        }
                        Got::Frame(_) => {}
                        Got::Closed(c) => panic!("closed with {c} after resuming"),
                        Got::Nothing => break,
                    }
                }
                ids
            }
        },
    ));
    let (acked, (), seen) = tokio::join!(sender, drainer, readers);
    for ids in seen {
        assert_eq!(ids, acked, "every acknowledged message once, in order");
    }
    c.stop().await;
}

/// Staff policy edits and suspensions made on one node hold on the others
/// at once: a role granted on node 1 works on node 2, and an account
/// suspended on node 1 loses its socket on node 2 within a second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staff_policy_and_suspensions_reach_every_node() {
    let c = Cluster::start(2).await;
    let (n1, n2) = (&c.nodes[0], &c.nodes[1]);
    let admin = n1.register("cadm").await;
    n1.make_admin(&admin).await;
    let tns = n1.register("ctns").await;
    let victim = n1.register("cvic").await;
    // Loaded by node 2 before the edit, so it must hear of it.
    let (st, _) = n2.get("/api/v1/admin/stats", &tns.token).await;
    assert_eq!(st, 403);
    let (st, _) = n1
        .put(
            &format!(
                "/api/v1/admin/staff/roles/trust_and_safety/members/{}",
                tns.id
            ),
            &admin.token,
            None,
        )
        .await;
    assert_eq!(st, 204);
    let start = std::time::Instant::now();
    loop {
        let (st, _) = n2.get("/api/v1/admin/stats", &tns.token).await;
        if st == 200 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(1),
            "node 2 still refuses a second after the grant on node 1"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (mut gw, _) = Gw::identify(n2, &victim).await;
    let (st, _) = n1
        .put(
            &format!("/api/v1/admin/users/{}/suspension", victim.id),
            &tns.token,
            Some(json!({"reason": "cluster"})),
        )
        .await;
    assert_eq!(st, 204);
    assert_eq!(gw.closed_with(Duration::from_secs(1)).await, 4010);
    let (st, _) = n2.get("/api/v1/users/@me", &victim.token).await;
    assert_eq!(st, 401);
    c.stop().await;
}
