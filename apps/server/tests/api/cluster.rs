//! Several nodes on one Postgres, NATS and Redis: what one node does, the
//! others' clients see, with the same permission rules, at once.

use std::time::Duration;

use serde_json::json;

use crate::gateway::Gw;
use crate::{Db, TestServer};

struct Cluster {
    nodes: Vec<TestServer>,
    admin: String,
    db: String,
}

impl Cluster {
    async fn start(n: usize) -> Cluster {
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
            let (url, root) = (url.clone(), root.clone());
            nodes.push(
                TestServer::start_with(Db::Shared(url), move |c| {
                    c.nats_url = std::env::var("HEARTH_TEST_NATS_URL")
                        .unwrap_or_else(|_| "nats://127.0.0.1:4222".into());
                    c.redis_url = hearth_server::config::Secret(
                        std::env::var("HEARTH_TEST_REDIS_URL")
                            .unwrap_or_else(|_| "redis://127.0.0.1:6379".into()),
                    );
                    c.nats_subject_root = root;
                    c.jwt_secret = hearth_server::config::Secret(
                        "a shared secret for every node of this cluster".into(),
                    );
                })
                .await,
            );
        }
        Cluster { nodes, admin, db }
    }

    async fn stop(self) {
        for n in self.nodes {
            n.stop().await;
        }
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
