//! A node whose database, bus or shared cache goes away: `/readyz` answers
//! 503 naming the dead part, API calls answer 503 `unavailable` (never a
//! 500, never a hang), and everything recovers by itself when the part comes
//! back. The parts are the real Postgres, NATS and Redis, reached through a
//! TCP forwarder that the test can cut and restore, so stopping "the
//! database" here does not disturb other tests sharing the real servers.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::cluster::{drop_log, nats_url, redis_url};
use crate::{Db, TestServer};

/// Forwards one local port to an upstream address; `cut` drops every
/// connection and refuses new ones, `restore` listens again on the same
/// port.
pub struct Forwarder {
    pub addr: SocketAddr,
    upstream: String,
    /// Bumped by `cut`. Every task holds a receiver taken when its listener
    /// started, so a connection accepted while `cut` runs still sees the cut
    /// and closes (aborting a list of tasks could miss one pushed late).
    cuts: watch::Sender<u64>,
}

impl Forwarder {
    pub async fn start(upstream: &str) -> Forwarder {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let f = Forwarder {
            addr: listener.local_addr().expect("addr"),
            upstream: upstream.to_string(),
            cuts: watch::channel(0).0,
        };
        f.serve(listener);
        f
    }

    fn serve(&self, listener: TcpListener) {
        let upstream = self.upstream.clone();
        let mut cut = self.cuts.subscribe();
        tokio::spawn(async move {
            loop {
                let mut down = tokio::select! {
                    accepted = listener.accept() => match accepted {
                        Ok((down, _)) => down,
                        Err(_) => return,
                    },
                    _ = cut.changed() => return,
                };
                let (upstream, mut cut) = (upstream.clone(), cut.clone());
                tokio::spawn(async move {
                    tokio::select! {
                        _ = async {
                            if let Ok(mut up) = TcpStream::connect(&upstream).await {
                                let _ = tokio::io::copy_bidirectional(&mut down, &mut up).await;
                            }
                        } => {}
                        _ = cut.changed() => {}
                    }
                });
            }
        });
    }

    /// The part is gone: open connections drop, new ones are refused.
    pub fn cut(&self) {
        self.cuts.send_modify(|n| *n += 1);
    }

    pub async fn restore(&self) {
        let listener = loop {
            match TcpListener::bind(self.addr).await {
                Ok(l) => break l,
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        };
        self.serve(listener);
    }
}

fn host_port(url: &str) -> String {
    // scheme://[user@]host:port[/path]
    let rest = url.split("://").nth(1).unwrap_or(url);
    let rest = rest.rsplit('@').next().unwrap_or(rest);
    rest.split('/').next().unwrap_or(rest).to_string()
}

fn through(url: &str, f: &Forwarder) -> String {
    url.replacen(&host_port(url), &f.addr.to_string(), 1)
}

/// `/readyz` with `query` ("" or, say, "?scope=node").
async fn readyz(s: &TestServer, query: &str) -> (StatusCode, Value) {
    let r = s
        .http
        .get(format!("{}/readyz{query}", s.base))
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .expect("readyz answers");
    let st = r.status();
    (st, r.json().await.unwrap_or(Value::Null))
}

/// Polls until `/readyz{query}` says `part` is `ok`, within `within`.
async fn wait_part(
    s: &TestServer,
    query: &str,
    part: &str,
    ok: bool,
    within: Duration,
) -> (StatusCode, Value) {
    let start = Instant::now();
    loop {
        let (st, v) = readyz(s, query).await;
        if v["checks"][part]["ok"] == ok {
            return (st, v);
        }
        assert!(
            start.elapsed() < within,
            "/readyz never said {part}.ok = {ok} within {within:?}: {st} {v}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// An API call while a part is down: 503 `unavailable` or (for parts the
/// call does not need) a success, answered in bounded time, never a 500.
async fn call_during_outage(
    s: &TestServer,
    method: reqwest::Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> StatusCode {
    let started = Instant::now();
    let mut req = s
        .http
        .request(method, format!("{}{path}", s.base))
        .bearer_auth(token)
        .timeout(Duration::from_secs(20));
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req
        .send()
        .await
        .expect("the server answers during an outage");
    let st = r.status();
    let v: Value = r.json().await.unwrap_or(Value::Null);
    eprintln!("during outage: {path} -> {st} in {:?}", started.elapsed());
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{path} took {:?}",
        started.elapsed()
    );
    assert!(
        !st.is_server_error() || st == StatusCode::SERVICE_UNAVAILABLE,
        "{path}: {st} {v}"
    );
    if st == StatusCode::SERVICE_UNAVAILABLE {
        assert_eq!(v["error"]["code"], "unavailable", "{v}");
    }
    st
}

pub async fn dependencies_down_answer_503() {
    let admin = hearth_store::testing::admin_url();
    let db = format!(
        "hearth_faults_{}_{}",
        std::process::id(),
        rand::random::<u32>()
    );
    let pg_url = hearth_store::testing::create_database(&admin, &db)
        .await
        .expect("Postgres must be running");
    let pg = Forwarder::start(&host_port(&pg_url)).await;
    let nats = Forwarder::start(&host_port(&nats_url())).await;
    let redis = Forwarder::start(&host_port(&redis_url())).await;
    let root = format!("f{}", rand::random::<u32>());
    let (pg_via, nats_via, redis_via) = (
        through(&pg_url, &pg),
        through(&nats_url(), &nats),
        through(&redis_url(), &redis),
    );
    let root_for_node = root.clone();
    let s = TestServer::start_with(Db::Shared(pg_via), move |c| {
        c.nats_url = nats_via;
        c.redis_url = hearth_server::config::Secret(redis_via);
        c.nats_subject_root = root_for_node;
        c.jwt_secret =
            hearth_server::config::Secret("a secret for the faults test, long enough".into());
        c.rate_limit.per_user_burst = 1000;
    })
    .await;
    let (st, v) = readyz(&s, "").await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let u = s.register("faulty").await;
    let (_, general) = s.community(&u, "Faults").await;
    s.send(&u, &general, "before").await;
    let send = |n: u32| json!({"content": format!("during {n}")});
    let msgs = format!("/api/v1/channels/{general}/messages");

    // Redis: readiness names the cache; calls keep answering (limits fail
    // open) or say unavailable, never 500.
    redis.cut();
    let (st, v) = wait_part(&s, "", "cache", false, Duration::from_secs(10)).await;
    assert_eq!(st, StatusCode::SERVICE_UNAVAILABLE, "{v}");
    assert_eq!(v["checks"]["database"]["ok"], true, "{v}");
    call_during_outage(
        &s,
        reqwest::Method::GET,
        "/api/v1/communities",
        &u.token,
        None,
    )
    .await;
    call_during_outage(&s, reqwest::Method::POST, &msgs, &u.token, Some(send(1))).await;
    // Limits keep working on the node's own counts (rate_limit.when_redis_down =
    // local, the default): the sign-in quota per account (burst 10) refuses the
    // eleventh wrong password though Redis, where the counts live, is gone.
    // (A request must not wait on the unreachable Redis for every key it checks,
    // or the quota refills between attempts: eleven take well under its 10 s.)
    let mut statuses = Vec::new();
    let attempts = Instant::now();
    for _ in 0..11 {
        let (st, _) = s
            .call(
                reqwest::Method::POST,
                "/api/v1/auth/login",
                None,
                Some(json!({"login": "faulty", "password": "not the password"})),
            )
            .await;
        statuses.push(st.as_u16());
    }
    assert_eq!(&statuses[..10], &[401; 10], "{statuses:?}");
    assert_eq!(statuses[10], 429, "limited without Redis: {statuses:?}");
    assert!(
        attempts.elapsed() < Duration::from_secs(5),
        "eleven sign-ins took {:?} without Redis",
        attempts.elapsed()
    );
    redis.restore().await;
    wait_part(&s, "", "cache", true, Duration::from_secs(30)).await;

    // NATS: readiness names the bus; a send that cannot be stored in the
    // log answers 503 in bounded time.
    nats.cut();
    let (st, v) = wait_part(&s, "", "bus", false, Duration::from_secs(15)).await;
    assert_eq!(st, StatusCode::SERVICE_UNAVAILABLE, "{v}");
    call_during_outage(
        &s,
        reqwest::Method::GET,
        "/api/v1/communities",
        &u.token,
        None,
    )
    .await;
    call_during_outage(&s, reqwest::Method::POST, &msgs, &u.token, Some(send(2))).await;
    nats.restore().await;
    wait_part(&s, "", "bus", true, Duration::from_secs(30)).await;

    // Postgres: readiness names the database; calls answer 503.
    pg.cut();
    let (st, v) = wait_part(&s, "", "database", false, Duration::from_secs(15)).await;
    assert_eq!(st, StatusCode::SERVICE_UNAVAILABLE, "{v}");
    // An orchestrator's probe asks only about the node: the database every
    // node shares being down must not take every node out of rotation. It
    // still reports the database, once the gate's probe (every 2 s) has
    // seen it gone: until then a ping that waits on the pool counts as a
    // loaded database, not a dead one, so poll rather than ask once.
    let (st, v) = wait_part(
        &s,
        "?scope=node",
        "database",
        false,
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["checks"]["scope"], "node", "{v}");
    let st = call_during_outage(
        &s,
        reqwest::Method::GET,
        "/api/v1/communities",
        &u.token,
        None,
    )
    .await;
    assert_eq!(st, StatusCode::SERVICE_UNAVAILABLE);
    call_during_outage(&s, reqwest::Method::POST, &msgs, &u.token, Some(send(3))).await;
    pg.restore().await;
    wait_part(&s, "", "database", true, Duration::from_secs(30)).await;

    // Whole again, by itself: sends work and nothing stored before is lost.
    let started = Instant::now();
    loop {
        let (st, v) = s.post(&msgs, &u.token, json!({"content": "after"})).await;
        if st == StatusCode::CREATED {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no recovery: {st} {v}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Live delivery is back too: the gateway follows the log again after
    // the bus outage (readiness said so), and a new message reaches a socket.
    let (_, v) = readyz(&s, "").await;
    assert_eq!(v["checks"]["bus"]["following_log"], true, "{v}");
    let (mut gw, _) = crate::gateway::Gw::identify(&s, &u).await;
    s.send(&u, &general, "live again").await;
    let started = Instant::now();
    loop {
        let d = gw.expect("MESSAGE_CREATE").await;
        if d["content"] == "live again" {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no live delivery"
        );
    }
    let (_, page) = s.get(&format!("{msgs}?limit=100"), &u.token).await;
    let contents: Vec<&str> = page
        .as_array()
        .expect("a page of messages")
        .iter()
        .map(|m| m["content"].as_str().expect("content"))
        .collect();
    assert!(
        contents.contains(&"before") && contents.contains(&"after"),
        "{contents:?}"
    );
    s.stop().await;
    drop_log(&root).await;
    let _ = hearth_store::testing::drop_database(&admin, &db).await;
}
