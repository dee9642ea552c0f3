//! Startup and serving: turns a [`Config`] into a running server.
//! `build` wires the parts; `serve` runs a router on a bound listener until
//! the shutdown future resolves (tests bind port 0 and pass their own).

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use base64::Engine;
use hearth_accounts::{Accounts, AccountsConfig, HashCost, TokenKeys};
use hearth_bus::{Bus, MemoryBus, NatsBus, NatsOptions};
use hearth_chat::{Chat, ChatConfig};
use hearth_state::{
    MemoryRateLimiter, RateLimiter, RedisConnection, RedisRateLimiter, RedisSessionLog,
};
use hearth_store::{Backend, SigningKeyRecord, Store};
use hearth_types::{IdGenerator, now_ms};
use rand::RngCore;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::config::Config;
use crate::events::Publisher;
use crate::metrics::Metrics;
use crate::state::{AppState, Inner};
use crate::web::WebAssets;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("data directory {0}: {1}")]
    DataDir(PathBuf, std::io::Error),
    #[error("database: {0}")]
    Store(#[from] hearth_store::StoreError),
    #[error(
        "all 1024 node ids are leased: is a cluster this large, or are stale nodes holding leases?"
    )]
    NoNodeId,
    #[error("signing key {0}: {1}")]
    Key(PathBuf, String),
    #[error("signing keys: {0}")]
    Keys(String),
    #[error("{0}")]
    Unsupported(&'static str),
    #[error("event bus: {0}")]
    Bus(String),
    #[error("voice: {0}")]
    Voice(String),
    #[error("shared state (Redis): {0}")]
    State(String),
    #[error("staff policy: {0}")]
    StaffPolicy(String),
    #[error("blob store: {0}")]
    Blobs(String),
    #[error("mail: {0}")]
    Mail(#[from] hearth_mail::MailError),
    #[error("OpenID Connect: {0}")]
    Oidc(String),
    #[error("link previews: {0}")]
    Unfurl(String),
    #[error("notifications: {0}")]
    Notify(#[from] crate::notify::NotifyStartError),
    #[error("accounts: {0}")]
    Accounts(#[from] hearth_accounts::AccountsError),
}

/// A built server: its state, its router, and a signal that fires if the
/// node must stop (its node-id lease was lost).
pub struct Server {
    pub state: AppState,
    pub router: Router,
    pub fatal: watch::Receiver<Option<String>>,
    lease: (u16, String),
}

const LEASE_TTL_MS: i64 = 60_000;
const LEASE_RENEW: Duration = Duration::from_secs(15);

pub fn backend(cfg: &Config) -> Backend {
    if cfg.uses_postgres() {
        Backend::Postgres(cfg.database_url.0.clone())
    } else {
        Backend::Sqlite(cfg.data_dir.join("hearth.db"))
    }
}

/// Opens the database and runs migrations (also `hearth migrate`).
pub async fn open_store(cfg: &Config) -> Result<Arc<dyn Store>, StartError> {
    if !cfg.uses_postgres() {
        std::fs::create_dir_all(&cfg.data_dir)
            .map_err(|e| StartError::DataDir(cfg.data_dir.clone(), e))?;
    }
    Ok(hearth_store::connect(&backend(cfg), cfg.db_max_connections).await?)
}

/// The access-token keys: the configured secret, or else the keys in the
/// database, shared by every node on it. The first node to start stores the
/// first key (importing `data_dir/jwt.key` if it has one, so a single node
/// upgraded in place keeps its users signed in); every node then reloads the
/// keys every [`TokenKeys::REFRESH`], which picks up rotations and retires
/// keys whose tokens have all expired.
async fn token_keys(cfg: &Config, store: &Arc<dyn Store>) -> Result<TokenKeys, StartError> {
    if !cfg.jwt_secret.0.is_empty() {
        return Ok(TokenKeys::new(cfg.jwt_secret.0.as_bytes().to_vec()));
    }
    let records = first_keys(cfg, store.as_ref()).await?;
    let keys = TokenKeys::from_records(&records, now_ms())
        .ok_or_else(|| StartError::Keys("no signing key that verifies".into()))?;
    tracing::info!(kid = %keys.signing_kid(), "access tokens are signed with database keys");
    spawn_key_refresh(
        store.clone(),
        keys.clone(),
        Duration::from_secs(cfg.access_token_ttl_secs),
    );
    Ok(keys)
}

/// The database's keys, storing the first one if there is none (race-free:
/// nodes starting together agree on one). Its secret is `data_dir/jwt.key`'s
/// when that file exists (the key of a node from before keys were shared),
/// else a new random one.
async fn first_keys(cfg: &Config, store: &dyn Store) -> Result<Vec<SigningKeyRecord>, StartError> {
    let path = cfg.data_dir.join("jwt.key");
    let file = match std::fs::read_to_string(&path) {
        Ok(text) => Some(
            base64::engine::general_purpose::STANDARD
                .decode(text.trim())
                .map_err(|e| StartError::Key(path.clone(), e.to_string()))?,
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(StartError::Key(path.clone(), e.to_string())),
    };
    let candidate = file.clone().unwrap_or_else(random_secret);
    let keys = store.ensure_signing_key(&candidate, now_ms()).await?;
    if let Some(file) = file {
        match keys.iter().find(|k| k.secret == file) {
            Some(k) => tracing::info!(
                path = %path.display(),
                kid = %k.kid,
                "this signing key file is the database's key (imported); it is no longer needed"
            ),
            None => tracing::warn!(
                path = %path.display(),
                "this signing key file is not used: the database has its own keys"
            ),
        }
    }
    Ok(keys)
}

fn random_secret() -> Vec<u8> {
    let mut key = vec![0u8; 64];
    rand::rng().fill_bytes(&mut key);
    key
}

/// Reloads the database keys every [`TokenKeys::REFRESH`] into `keys` (shared
/// with the accounts service) until nothing else holds them.
fn spawn_key_refresh(store: Arc<dyn Store>, keys: TokenKeys, access_ttl: Duration) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(TokenKeys::REFRESH);
        tick.tick().await;
        loop {
            tick.tick().await;
            if !keys.is_shared() {
                return;
            }
            if let Err(e) = refresh_keys(store.as_ref(), &keys, access_ttl).await {
                tracing::warn!(error = %e, "could not reload the signing keys; retrying");
            }
        }
    });
}

/// One reload: retires keys whose tokens have all expired, then uses what the
/// database holds (a rotation made anywhere starts signing here once it is
/// [`TokenKeys::ACTIVATION`] old).
async fn refresh_keys(
    store: &dyn Store,
    keys: &TokenKeys,
    access_ttl: Duration,
) -> Result<(), hearth_store::StoreError> {
    let now = now_ms();
    let mut records = store.ensure_signing_key(&random_secret(), now).await?;
    for kid in TokenKeys::retirable(&records, now, access_ttl) {
        if store.retire_signing_key(&kid, now).await? {
            tracing::info!(%kid, "retired a signing key: every token it signed has expired");
        }
        if let Some(k) = records.iter_mut().find(|k| k.kid == kid) {
            k.retired_at = Some(now);
        }
    }
    if let Some(next) = TokenKeys::from_records(&records, now) {
        let before = keys.signing_kid();
        keys.replace(&next);
        if next.signing_kid() != before {
            tracing::info!(kid = %next.signing_kid(), "signing access tokens with a new key");
        }
    }
    Ok(())
}

/// `hearth admin rotate-signing-key`: stores a new key after the newest. Every
/// node signs with it from [`TokenKeys::ACTIVATION`] on; older keys keep
/// verifying until their tokens have expired, then nodes retire them.
pub async fn rotate_signing_key(cfg: &Config) -> Result<SigningKeyRecord, StartError> {
    if !cfg.jwt_secret.0.is_empty() {
        return Err(StartError::Unsupported(
            "jwt_secret (HEARTH_JWT_SECRET) is set: that secret signs every token and database \
             keys are not used; rotate it by changing it on every node (which signs everyone out), \
             or unset it to use rotating database keys",
        ));
    }
    let store = open_store(cfg).await?;
    // As a starting node would: the first key (jwt.key imported) comes first.
    first_keys(cfg, store.as_ref()).await?;
    Ok(store.add_signing_key(&random_secret(), now_ms()).await?)
}

/// The web app to serve: `web_dir` when set; else the app compiled into the binary (a
/// release built with `embed-web`); else `./web/out` when it has been built.
fn web_assets(cfg: &Config) -> Option<WebAssets> {
    let dir = if cfg.web_dir.is_empty() {
        if let Some(w) = WebAssets::embedded() {
            tracing::info!(from = %w.describe(), "serving the web app");
            return Some(w);
        }
        PathBuf::from("web/out")
    } else {
        PathBuf::from(&cfg.web_dir)
    };
    let found = WebAssets::open(&dir);
    match &found {
        Some(w) => tracing::info!(from = %w.describe(), "serving the web app"),
        None => tracing::warn!(
            dir = %dir.display(),
            "the web app is not built (no index.html); the API still works. Build it: npm --prefix web ci && npm --prefix web run build"
        ),
    }
    found
}

pub async fn build(cfg: Config) -> Result<Server, StartError> {
    // For servers made in-process (tests, tools) too: see there.
    hearth_blobs::install_tls_provider();
    let store = open_store(&cfg).await?;

    // A distinct node id for this process, so IDs never collide across nodes.
    let holder = format!("{:016x}", rand::random::<u64>());
    let node = store
        .lease_node(&holder, now_ms(), LEASE_TTL_MS)
        .await?
        .ok_or(StartError::NoNodeId)?;
    let (fatal_tx, fatal) = watch::channel(None);
    spawn_lease_renewal(store.clone(), node, holder.clone(), fatal_tx);
    let ids = Arc::new(IdGenerator::new(node));

    let metrics = Metrics::new();
    let bus: Arc<dyn Bus> = if cfg.nats_url.is_empty() {
        // One node: the log's durable copy is a table, for domain services.
        let journal = Arc::new(crate::journal::StoreJournal(store.clone()));
        crate::journal::spawn_retention(store.clone(), cfg.journal_keep_events);
        Arc::new(
            MemoryBus::journaled(65_536, journal)
                .await
                .map_err(|e| StartError::Bus(e.to_string()))?,
        )
    } else {
        let mut opts = NatsOptions {
            subject_root: cfg.nats_subject_root.clone(),
            connection_name: format!("hearth-node-{node}"),
            log_subjects: vec!["chat.>".into()],
            ..Default::default()
        };
        // The log serves resume (minutes) and the domain services reading
        // it from their own position (search: days), within its byte limit.
        opts.log_limits.max_age =
            Duration::from_secs((cfg.log_retention_hours * 3600).max(cfg.gateway_resume_secs * 2));
        opts.log_limits.replicas = cfg.nats_stream_replicas;
        opts.stream_limits.replicas = cfg.nats_stream_replicas;
        let nats = NatsBus::connect(&cfg.nats_url, opts)
            .await
            .map_err(|e| StartError::Bus(e.to_string()))?;
        nats.open_log()
            .await
            .map_err(|e| StartError::Bus(e.to_string()))?;
        Arc::new(nats)
    };
    // Rate-limit counters: per node in memory, or shared by every node in Redis.
    let redis = if cfg.redis_url.0.is_empty() {
        None
    } else {
        Some(
            RedisConnection::connect(&cfg.redis_url.0, &format!("{}:", cfg.nats_subject_root))
                .await
                .map_err(|e| StartError::State(e.to_string()))?,
        )
    };
    // Cross-node order of each channel's messages (a cluster only).
    let node_key = format!("{node}-{holder}");
    let gate = redis.as_ref().map(|conn| {
        crate::channel_gate::ClusterGate::start(
            Arc::new(hearth_state::RedisLeases::new(conn.clone())),
            node_key.clone(),
            bus.clone(),
        )
    });
    let publisher = Publisher::start(
        bus.clone(),
        ids.clone(),
        node,
        metrics.clone(),
        gate.clone(),
    );
    let accounts = Accounts::new(
        store.clone(),
        ids.clone(),
        token_keys(&cfg, &store).await?,
        AccountsConfig {
            access_ttl: Duration::from_secs(cfg.access_token_ttl_secs),
            hash_cost: HashCost {
                memory_kib: cfg.password_hash.memory_kib,
                iterations: cfg.password_hash.iterations,
            },
            hash_parallelism: cfg.password_hash.parallelism,
        },
    )?;
    let mut chat = Chat::new(
        store.clone(),
        ids.clone(),
        Arc::new(publisher.clone()),
        ChatConfig::default(),
    );
    if let Some(g) = gate {
        chat = chat.with_gate(Arc::new(crate::channel_gate::Gate(g)));
    }
    let moderation = crate::moderation::Moderation::new(store.clone(), publisher.clone());
    let admin = crate::admin::Admin::open(store.clone())
        .await
        .map_err(|e| StartError::StaffPolicy(e.to_string()))?;
    chat = chat.with_send_filter(moderation.automod.clone());
    if let Some(conn) = &redis {
        chat = chat.with_cooldowns(Arc::new(crate::cooldowns::SharedCooldowns(
            hearth_state::RedisNonceGuard::new(conn.clone()),
        )));
    }
    let web = web_assets(&cfg);
    let limiter: Arc<dyn RateLimiter> = match &redis {
        None => Arc::new(MemoryRateLimiter::default()),
        Some(conn) => Arc::new(RedisRateLimiter::with_outage(
            conn.clone(),
            match cfg.rate_limit.when_redis_down {
                crate::config::RedisDown::Local => hearth_state::WhenDown::Local,
                crate::config::RedisDown::Allow => hearth_state::WhenDown::Allow,
            },
        )),
    };
    // Session records for resume on any node: shared in Redis, else none
    // (one node: a session it does not hold has expired).
    let window = Duration::from_secs(cfg.gateway_resume_secs);
    let recorder = redis.as_ref().map(|conn| {
        crate::gateway::hub::Recorder::start(
            Arc::new(RedisSessionLog::new(conn.clone())),
            window + Duration::from_secs(30),
        )
    });
    let presence: Arc<dyn hearth_state::Presence> = match &redis {
        None => Arc::new(hearth_state::MemoryPresence::default()),
        Some(conn) => Arc::new(hearth_state::RedisPresence::new(conn.clone())),
    };
    let hub = crate::gateway::hub::Hub::new(recorder, cfg.gateway_window_events, window);
    let voice = voice_service(&cfg, redis.as_ref(), &node_key)?;
    let search = if cfg.search_enabled {
        let (dir, m) = (cfg.data_dir.clone(), metrics.clone());
        tokio::task::spawn_blocking(move || crate::search::Search::open(&dir, &m))
            .await
            .ok()
            .flatten()
    } else {
        None
    };
    let blobs = crate::media::open_blobs(&cfg)
        .await
        .map_err(|e| StartError::Blobs(e.to_string()))?;
    let media = crate::media::Media::new(&cfg, blobs, ids.clone(), &metrics, redis.as_ref());
    let unfurl =
        crate::unfurl::Unfurler::new(&cfg, ids.clone(), &metrics).map_err(StartError::Unfurl)?;
    let mail = crate::mail::Mail::new(
        &cfg,
        store.clone(),
        ids.clone(),
        bus.clone(),
        metrics.clone(),
        node,
    )?;
    let oidc = crate::oidc::Oidc::new(&cfg).map_err(StartError::Oidc)?;
    let notify =
        Arc::new(crate::notify::Notify::new(&cfg, &store, ids.clone(), &metrics, node).await?);
    tracing::info!(
        node,
        backend = store.backend(),
        blobs = media.blobs.kind(),
        "node ready"
    );
    let db_gate = crate::db_gate::DbGate::start(&store);
    let state = AppState(Arc::new(Inner {
        cfg,
        store,
        accounts,
        chat,
        bus,
        publisher,
        limiter,
        db_gate,
        redis,
        metrics,
        node_id: node,
        web,
        hub: Arc::new(hub),
        presence,
        node_key,
        watched: Arc::default(),
        voice,
        moderation,
        admin,
        search,
        media,
        unfurl,
        mail,
        notify,
        oidc,
    }));
    if let Some(m) = &state.mail {
        m.start().await.map_err(StartError::Bus)?;
    }
    crate::moderation::Moderation::start(&state)
        .await
        .map_err(StartError::Bus)?;
    crate::admin::start(&state).await.map_err(StartError::Bus)?;
    crate::notify::Notify::start(&state)
        .await
        .map_err(StartError::Bus)?;
    crate::media::Media::start(&state)
        .await
        .map_err(StartError::Bus)?;
    crate::unfurl::Unfurler::start(&state)
        .await
        .map_err(StartError::Bus)?;
    if let Some(s) = &state.search {
        s.start(
            state.bus.clone(),
            state.store.clone(),
            state.metrics.clone(),
        );
    }
    crate::gateway::start(state.clone());
    state.voice.register_metrics(state.metrics.registry());
    crate::voice::Voice::start(state.clone());
    let router = crate::http::router(state.clone());
    Ok(Server {
        state,
        router,
        fatal,
        lease: (node, holder),
    })
}

/// The SFU and the shared voice states and room leases (Redis in a cluster).
fn voice_service(
    cfg: &Config,
    redis: Option<&RedisConnection>,
    node_key: &str,
) -> Result<crate::voice::Voice, StartError> {
    let bad = |e: crate::config::ConfigError| StartError::Voice(e.to_string());
    let (host_addresses, public_ips) = cfg.voice_addresses().map_err(bad)?;
    let turn = (!cfg.turn_urls.is_empty()).then(|| hearth_voice::TurnConfig {
        urls: cfg.turn_urls.clone(),
        secret: cfg.turn_secret.0.as_bytes().to_vec(),
        ttl: Duration::from_secs(cfg.turn_ttl_secs),
    });
    let sfu = hearth_voice::Sfu::new(hearth_voice::VoiceConfig {
        host_addresses,
        public_ips,
        udp_ports: cfg.voice_ports().map_err(bad)?,
        turn,
        ..Default::default()
    })
    .map_err(|e| StartError::Voice(e.to_string()))?;
    let (states, leases): (
        Arc<dyn hearth_state::VoiceStates>,
        Arc<dyn hearth_state::Leases>,
    ) = match redis {
        None => (
            Arc::new(hearth_state::MemoryVoiceStates::default()),
            Arc::new(hearth_state::MemoryLeases::default()),
        ),
        Some(conn) => (
            Arc::new(hearth_state::RedisVoiceStates::new(conn.clone())),
            Arc::new(hearth_state::RedisLeases::new(conn.clone())),
        ),
    };
    Ok(crate::voice::Voice::new(
        sfu,
        states,
        leases,
        node_key.to_string(),
    ))
}

fn spawn_lease_renewal(
    store: Arc<dyn Store>,
    node: u16,
    holder: String,
    fatal: watch::Sender<Option<String>>,
) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(LEASE_RENEW);
        tick.tick().await;
        loop {
            tick.tick().await;
            match store
                .renew_node(node, &holder, now_ms(), LEASE_TTL_MS)
                .await
            {
                Ok(true) => {}
                Ok(false) => {
                    // Another node took our id after the lease lapsed: minting more
                    // IDs could collide with theirs, so this node must stop.
                    let _ = fatal.send(Some(format!("lost the lease on node id {node}")));
                    return;
                }
                Err(e) => {
                    tracing::warn!(error = %e, node, "could not renew the node-id lease; retrying")
                }
            }
        }
    });
}

/// Drains the node before it stops taking requests: not ready, gateway
/// clients told to reconnect elsewhere, until they are gone and their
/// frames recorded (or `drain_secs` passed).
async fn drain(state: &AppState) {
    let told = state.hub.drain();
    let within = Duration::from_secs(state.cfg.drain_secs);
    tracing::info!(
        connections = told,
        ?within,
        "draining: gateway clients move to other nodes"
    );
    let started = std::time::Instant::now();
    while !state.hub.drained() && started.elapsed() < within {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tracing::info!(
        took_ms = started.elapsed().as_millis() as u64,
        drained = state.hub.drained(),
        "drained; finishing requests in flight"
    );
}

/// Waits (at most 5 s) for what this process published to be in the log's
/// durable copy: the embedded journal writes behind the answer, and a
/// process that exits first would lose the tail (a restarted index or
/// another consumer would never see it).
async fn flush_bus(state: &AppState) {
    if let Err(e) = state.bus.flush(Duration::from_secs(5)).await {
        tracing::error!(error = %e, "stopping with events not yet in the journal");
    }
}

impl Server {
    /// Lets go of the node id without serving: for one-off commands that
    /// built a server (`hearth admin create-user`), so the database is not
    /// held for a minute after they exit.
    pub async fn release(self) {
        flush_bus(&self.state).await;
        let (node, holder) = self.lease;
        if let Err(e) = self.state.store.release_node(node, &holder).await {
            tracing::warn!(error = %e, "releasing the node id");
        }
    }

    /// Serves until `shutdown` resolves or the node must stop, then drains
    /// in-flight requests and releases the node id.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let mut fatal = self.fatal.clone();
        let state = self.state.clone();
        let stop = async move {
            let asked = tokio::select! {
                _ = shutdown => true,
                _ = async { while fatal.changed().await.is_ok() { if let Some(why) = fatal.borrow().clone() { tracing::error!(%why, "stopping"); return; } } } => false,
            };
            // Asked to stop (SIGTERM, a rolling restart): move the gateway's
            // clients to other nodes while still serving. A node that must
            // stop (it lost its node id) stops at once instead.
            if asked {
                drain(&state).await;
            }
        };
        let app = self
            .router
            .into_make_service_with_connect_info::<SocketAddr>();
        // No Nagle: gateway frames and small API answers go out at once
        // instead of waiting up to 40 ms for the peer's delayed ACK.
        let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::debug!(error = %e, "TCP_NODELAY");
            }
        });
        let res = axum::serve(listener, app)
            .with_graceful_shutdown(stop)
            .await;
        self.state.voice.shutdown();
        flush_bus(&self.state).await;
        // Commit the index and let go of it (a restart in this process
        // opens it again).
        if let Some(s) = &self.state.search {
            s.shutdown().await;
        }
        let (node, holder) = self.lease;
        if let Err(e) = self.state.store.release_node(node, &holder).await {
            tracing::warn!(error = %e, "releasing the node id");
        }
        res
    }
}
