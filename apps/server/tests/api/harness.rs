//! Starting a real server in-process on port 0, and a small JSON client.

use std::net::SocketAddr;

use hearth_server::config::{Config, Secret};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

#[derive(Clone, Debug)]
pub enum Db {
    Sqlite,
    /// A fresh database, dropped at the end.
    Postgres,
    /// An existing database shared by several nodes (the caller drops it).
    Shared(String),
}

pub struct TestServer {
    pub base: String,
    pub addr: SocketAddr,
    pub http: reqwest::Client,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
    pg: Option<(String, String)>,
    /// The database of an in-process server (for [`TestServer::make_admin`]).
    backend: Option<hearth_store::Backend>,
    _dir: tempfile::TempDir,
}

static SEQ: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

/// A config for tests: cheap password hashing, everything else as shipped.
pub fn test_config(dir: &std::path::Path) -> Config {
    let mut cfg = Config::default();
    cfg.data_dir = dir.to_path_buf();
    cfg.listen = "127.0.0.1:0".parse().expect("addr");
    cfg.password_hash.memory_kib = 64;
    cfg.password_hash.iterations = 1;
    cfg.web_dir = dir.join("no-web").display().to_string();
    cfg.log_level = "warn".into();
    // Scenarios send messages quickly from one user; the burst scenario runs
    // with the shipped limits instead.
    cfg.rate_limit.per_user_burst = 1000;
    cfg
}

impl TestServer {
    pub async fn start(db: Db) -> TestServer {
        Self::start_with(db, |_| {}).await
    }

    pub async fn start_with(db: Db, tweak: impl FnOnce(&mut Config)) -> TestServer {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut cfg = test_config(dir.path());
        let mut pg = None;
        if let Db::Shared(url) = &db {
            cfg.database_url = Secret(url.clone());
        }
        if let Db::Postgres = db {
            let admin = hearth_store::testing::admin_url();
            let name = format!(
                "hearth_api_{}_{}_{}",
                std::process::id(),
                SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
                rand::random::<u32>()
            );
            let url = hearth_store::testing::create_database(&admin, &name)
                .await
                .expect("Postgres must be running for the API tests (HEARTH_TEST_DATABASE_URL)");
            cfg.database_url = Secret(url);
            pg = Some((admin, name));
        }
        tweak(&mut cfg);
        let backend = hearth_server::app::backend(&cfg);
        let server = hearth_server::app::build(cfg).await.expect("server builds");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            server
                .serve(listener, async move {
                    let _ = rx.await;
                })
                .await
                .expect("serve");
        });
        TestServer {
            base: format!("http://{addr}"),
            addr,
            http: reqwest::Client::builder().build().expect("client"),
            stop: Some(tx),
            task: Some(task),
            pg,
            backend: Some(backend),
            _dir: dir,
        }
    }

    /// A client for a server running in another process at `addr`.
    pub fn external(addr: SocketAddr) -> TestServer {
        TestServer {
            base: format!("http://{addr}"),
            addr,
            http: reqwest::Client::builder().build().expect("client"),
            stop: None,
            task: None,
            pg: None,
            backend: None,
            _dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
        if let Some((admin, name)) = self.pg.take() {
            hearth_store::testing::drop_database(&admin, &name)
                .await
                .expect("drop test database");
        }
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self.http.request(method, format!("{}{}", self.base, path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.expect("request");
        let status = res.status();
        let text = res.text().await.expect("body");
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, value)
    }

    pub async fn get(&self, path: &str, token: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path, Some(token), None).await
    }

    /// The server's `/metrics` text, read with [`Scrape::value`].
    pub async fn metrics(&self) -> Scrape {
        Scrape(
            self.http
                .get(format!("{}/metrics", self.base))
                .send()
                .await
                .expect("metrics")
                .text()
                .await
                .expect("metrics text"),
        )
    }
    pub async fn post(&self, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, path, Some(token), Some(body)).await
    }
    pub async fn patch(&self, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::PATCH, path, Some(token), Some(body))
            .await
    }
    pub async fn put(&self, path: &str, token: &str, body: Option<Value>) -> (StatusCode, Value) {
        self.call(Method::PUT, path, Some(token), body).await
    }
    pub async fn delete(&self, path: &str, token: &str) -> (StatusCode, Value) {
        self.call(Method::DELETE, path, Some(token), None).await
    }

    /// Registers a user; returns (user id, access token, refresh token).
    pub async fn register(&self, name: &str) -> User {
        let (s, v) = self
            .call(
                Method::POST,
                "/api/v1/auth/register",
                None,
                Some(json!({"username": name, "password": "correct horse battery"})),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "register {name}: {v}");
        User {
            id: v["user"]["id"].as_str().expect("id").to_string(),
            token: v["access_token"].as_str().expect("token").to_string(),
            refresh: v["refresh_token"].as_str().expect("refresh").to_string(),
        }
    }

    /// Makes `u` a platform administrator (the `is_admin` flag, as
    /// `hearth admin create-user --admin` does), straight in the database.
    pub async fn make_admin(&self, u: &User) {
        let backend = self.backend.as_ref().expect("an in-process server");
        let store = hearth_store::connect(backend, 1).await.expect("store");
        let id = hearth_types::UserId(u.id.parse().expect("user id"));
        assert!(store.set_admin(id, true).await.expect("set_admin"));
    }

    /// Creates a community; returns (community id, general channel id).
    pub async fn community(&self, owner: &User, name: &str) -> (String, String) {
        let (s, c) = self
            .post("/api/v1/communities", &owner.token, json!({"name": name}))
            .await;
        assert_eq!(s, StatusCode::CREATED, "{c}");
        let id = c["id"].as_str().expect("id").to_string();
        let (_, chans) = self
            .get(&format!("/api/v1/communities/{id}/channels"), &owner.token)
            .await;
        (id, chans[0]["id"].as_str().expect("channel").to_string())
    }

    /// Makes `who` a member through a fresh invite.
    pub async fn join(&self, owner: &User, community: &str, who: &User) {
        let (s, inv) = self
            .post(
                &format!("/api/v1/communities/{community}/invites"),
                &owner.token,
                json!({}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{inv}");
        let code = inv["code"].as_str().expect("code");
        let (s, v) = self
            .post(&format!("/api/v1/invites/{code}"), &who.token, json!({}))
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
    }

    pub async fn send(&self, who: &User, channel: &str, content: &str) -> Value {
        let (s, m) = self
            .post(
                &format!("/api/v1/channels/{channel}/messages"),
                &who.token,
                json!({"content": content}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{m}");
        m
    }
}

pub struct User {
    pub id: String,
    pub token: String,
    pub refresh: String,
}

/// Asserts an error response has the contract's shape and code.
pub fn assert_error(status: StatusCode, body: &Value, want_status: u16, want_code: &str) {
    assert_eq!(status.as_u16(), want_status, "status for {body}");
    assert_eq!(body["error"]["code"], want_code, "code in {body}");
    assert!(body["error"]["message"].is_string(), "message in {body}");
    assert!(body["error"]["details"].is_object(), "details in {body}");
}

/// One scrape of `/metrics` (Prometheus text).
pub struct Scrape(pub String);

impl Scrape {
    /// The sample of `name` whose labels include every one of `labels`
    /// (`key="value"`, in any order; none for an unlabelled metric).
    pub fn value(&self, name: &str, labels: &[&str]) -> Option<f64> {
        self.0
            .lines()
            .filter(|l| {
                l.strip_prefix(name)
                    .is_some_and(|rest| rest.starts_with(' ') || rest.starts_with('{'))
            })
            .find(|l| labels.iter().all(|want| l.contains(want)))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.trim().parse().ok())
    }
}

impl std::fmt::Display for Scrape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
