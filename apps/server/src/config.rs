//! Typed configuration, read once at start: defaults < `hearth.toml` <
//! `HEARTH_*` environment (plus `DATABASE_URL`, `NATS_URL`, `REDIS_URL`,
//! `OTEL_EXPORTER_OTLP_ENDPOINT`, `OTEL_SERVICE_NAME`) <
//! command-line flags. Validated once; secrets never print.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A string that must not reach logs or Debug output.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            f.write_str("\"\"")
        } else {
            f.write_str("\"<redacted>\"")
        }
    }
}

impl FromStr for Secret {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Secret(s.to_string()))
    }
}

/// The shortest `jwt_secret` accepted: HS256 keys shorter than its 32-byte
/// output weaken it, and short secrets are guessable offline from one token.
pub const MIN_JWT_SECRET_BYTES: usize = 32;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Where the SQLite database, the signing key and other local state live.
    pub data_dir: PathBuf,
    /// `postgres://...` to use Postgres; empty for SQLite in `data_dir`.
    pub database_url: Secret,
    /// NATS for a cluster's event bus (a comma-separated list of a NATS
    /// cluster's servers); empty for the in-process bus.
    pub nats_url: String,
    /// First token of every NATS subject, so deployments can share a NATS account.
    pub nats_subject_root: String,
    /// Copies of the JetStream streams this node creates (the log, dead
    /// letters): 1 for one NATS server, 3 for a three-server cluster.
    pub nats_stream_replicas: usize,
    /// How long the log (the JetStream stream in a cluster) keeps events for
    /// domain services that read it from their own position (search on
    /// every node): a service further behind rebuilds from the database.
    pub log_retention_hours: u64,
    /// On one node, most events the log's durable copy (the `event_journal`
    /// table) keeps; older ones are trimmed every minute.
    pub journal_keep_events: u64,
    /// Message search: this node keeps an index in `data_dir/search`, fed
    /// from the log (off: the search endpoints answer 503).
    pub search_enabled: bool,
    /// Redis for a cluster's shared state; empty for in-memory.
    pub redis_url: Secret,
    /// The address people reach this server at (e.g. `https://chat.example.org`);
    /// `https` makes cookies `Secure`.
    pub public_url: String,
    /// The built web app (`web/out`); empty: `./web/out` when present.
    pub web_dir: String,
    /// HS256 signing secret for access tokens (at least [`MIN_JWT_SECRET_BYTES`]
    /// bytes), the same on every node; empty: keys kept in the database, shared
    /// by every node on it, rotated with `hearth admin rotate-signing-key`.
    pub jwt_secret: Secret,
    /// Access token lifetime.
    pub access_token_ttl_secs: u64,
    /// Largest request body accepted (bytes); larger gets 413.
    pub max_body_bytes: usize,
    /// Database pool size.
    pub db_max_connections: u32,
    /// Take the client address from `X-Forwarded-For` (only behind a trusted proxy).
    pub trust_forwarded_for: bool,
    /// Browser origins allowed to open the gateway (e.g. `https://chat.example.org`);
    /// empty: only the server's own origin. Clients that send no Origin are not browsers and pass.
    pub allowed_origins: Vec<String>,
    /// Gateway heartbeat interval; a client silent for 1.5 intervals is closed with 4009.
    pub gateway_heartbeat_ms: u64,
    /// How long a disconnected gateway session stays resumable.
    pub gateway_resume_secs: u64,
    /// On SIGTERM, how long the node keeps serving while its gateway
    /// clients move to other nodes (it answers `/readyz` 503 meanwhile),
    /// before it stops taking requests and finishes the ones in flight.
    pub drain_secs: u64,
    /// Most bus-log events each node keeps for resume (the window is also
    /// bounded by `gateway_resume_secs`).
    pub gateway_window_events: usize,
    /// Concurrent gateway sessions one user may hold, on all nodes together;
    /// an identify beyond it closes with 4008.
    pub gateway_max_sessions_per_user: usize,
    /// Open gateway connections from one client address (IPv6 by /64) on a
    /// node; more are refused with 429. The address is the socket peer, or
    /// `X-Forwarded-For` with `trust_forwarded_for`.
    pub gateway_max_connections_per_address: usize,
    /// Communities with more members than this are "large": a status
    /// change reaches only the sessions that subscribed to that user
    /// (`subscribe_presence`), not every member.
    pub gateway_presence_threshold: usize,
    /// Voice and video: addresses the SFU binds and offers as host
    /// candidates (one UDP port per voice room in use).
    pub voice_host_addresses: Vec<String>,
    /// Public addresses announced instead of the bound ones (a 1:1 NAT).
    pub voice_public_ips: Vec<String>,
    /// The SFU's UDP ports, `first-last` (e.g. `50000-50999`); empty: any.
    pub voice_udp_ports: String,
    /// TURN servers handed to clients (coturn with `use-auth-secret`), e.g.
    /// `turn:turn.example.org:3478?transport=udp`; empty: none.
    pub turn_urls: Vec<String>,
    /// coturn's `static-auth-secret`: clients get short-lived credentials.
    pub turn_secret: Secret,
    /// How long handed-out TURN credentials stay valid.
    pub turn_ttl_secs: u64,
    /// `text` or `json` logs.
    pub log_format: String,
    /// A tracing filter, e.g. `info` or `hearth=debug,info`.
    pub log_level: String,
    /// OTLP/HTTP collector base URL (e.g. `http://127.0.0.1:4318`): spans go to
    /// `<endpoint>/v1/traces` as protobuf. Plain `http://` only (no TLS client);
    /// empty: no trace export.
    pub otlp_endpoint: String,
    /// The `service.name` the exported spans carry.
    pub otlp_service_name: String,
    /// How long audit-log entries are kept (days); older ones are pruned hourly.
    pub audit_retention_days: u64,
    /// The mail server (`smtp://host:port`, `smtp://host?tls=required` for
    /// STARTTLS, `smtps://host`; credentials as `smtp://user:pass@host`);
    /// empty: mail is off and the endpoints that need it answer 503.
    pub smtp_url: Secret,
    /// The sender of every mail, `Name <address>` or an address.
    pub mail_from: String,
    /// The first wait before a failed mail is retried; each of the three
    /// retries waits four times longer than the one before.
    pub mail_retry_base_ms: u64,
    /// How long a password-reset link works.
    pub password_reset_ttl_secs: u64,
    pub rate_limit: RateLimitConfig,
    pub password_hash: PasswordHashConfig,
    pub media: MediaConfig,
    pub notify: NotifyConfig,
    /// "Sign in with …": OpenID Connect providers (env
    /// `HEARTH_OIDC_PROVIDERS`, a JSON array of the same tables).
    pub oidc_providers: Vec<OidcProviderConfig>,
    /// Accept OIDC issuers over plain http or on private addresses (a
    /// provider on your own network; tests).
    pub oidc_allow_private: bool,
}

/// One OpenID Connect provider.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcProviderConfig {
    /// A short name for URLs (`/api/v1/auth/oidc/<name>/start`): a-z, 0-9, `-`, `_`.
    pub name: String,
    /// What the button says ("Sign in with <display_name>").
    pub display_name: String,
    /// The issuer; discovery is `<issuer>/.well-known/openid-configuration`.
    pub issuer: String,
    pub client_id: String,
    pub client_secret: Secret,
    /// Only these email domains may sign in (empty: any).
    #[serde(default)]
    pub allowed_email_domains: Vec<String>,
    /// Whether a first sign-in creates an account.
    #[serde(default = "yes")]
    pub allow_signup: bool,
}

fn yes() -> bool {
    true
}

/// Notifications: the inbox, Web Push and the email digest.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NotifyConfig {
    /// Run the notification consumer (one per cluster) and the push and
    /// digest workers on this node.
    pub enabled: bool,
    /// The contact push services see in VAPID tokens (`mailto:` or
    /// `https:`); empty: `public_url` when it is https, else
    /// `mailto:hearth@localhost`.
    pub push_subject: String,
    /// Accept push endpoints over plain http or on private, loopback and
    /// link-local addresses (for a push service on your own network, and
    /// for tests). Off, such endpoints are refused (server-side request
    /// forgery).
    pub push_allow_private: bool,
    /// How long one push request may take.
    pub push_timeout_ms: u64,
    /// The first wait before a failed push is retried; each of the three
    /// retries waits four times longer.
    pub push_retry_base_ms: u64,
    /// Unread mentions older than this are mailed in a digest to users who
    /// are not online (0: no digests).
    pub digest_after_secs: u64,
}

impl Default for NotifyConfig {
    fn default() -> Self {
        NotifyConfig {
            enabled: true,
            push_subject: String::new(),
            push_allow_private: false,
            push_timeout_ms: 10_000,
            push_retry_base_ms: 5_000,
            digest_after_secs: 3_600,
        }
    }
}

/// Uploads and where their bytes live.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MediaConfig {
    /// Largest file accepted (bytes); larger gets 413 payload_too_large.
    pub max_upload_bytes: u64,
    /// Uploads not attached to a message (or used as an avatar) within this
    /// many seconds are deleted.
    pub upload_ttl_secs: u64,
    /// Files of a deleted message, channel or community are deleted this
    /// many seconds after it (a grace period for mistakes and caches).
    pub deleted_file_grace_secs: u64,
    /// `disk` (`data_dir/blobs`) or `s3`.
    pub blob_backend: String,
    pub s3_bucket: String,
    /// Empty for AWS; the URL of an S3-compatible service otherwise.
    pub s3_endpoint: String,
    pub s3_region: String,
    pub s3_access_key_id: String,
    pub s3_secret_access_key: Secret,
    /// Allow a plain-HTTP `s3_endpoint`.
    pub s3_allow_http: bool,
    /// ffmpeg (a path, or a name on `PATH`; ffprobe is looked for beside
    /// it) for audio and video durations and video posters. Empty: off;
    /// missing: those files stay plain files.
    pub ffmpeg: String,
    /// Unfurl URLs in messages (title, description, image), fetched by the
    /// server through the SSRF guard.
    pub link_previews: bool,
    /// How long one fetch for a preview may take (connect and whole body).
    pub link_preview_timeout_ms: u64,
    /// Addresses exempt from the rule that previews never reach private,
    /// loopback or reserved addresses (tests; a wiki on your own network).
    pub link_preview_allow_addresses: Vec<std::net::IpAddr>,
    /// What one user may store (bytes): their files not deleted plus the
    /// declared sizes of their resumable uploads in progress. 0: no limit.
    pub user_quota_bytes: u64,
    /// The largest chunk one `PATCH /uploads/{id}` may carry (bytes).
    pub upload_chunk_max_bytes: u64,
    /// This node's in-memory cache of hot small files (previews, avatars,
    /// icons), in bytes. 0: off.
    pub hot_cache_bytes: u64,
    /// Files larger than this are never cached (in memory or Redis).
    pub hot_cache_max_file_bytes: u64,
    /// How long a cached file is kept (memory and Redis).
    pub hot_cache_ttl_secs: u64,
}

impl Default for MediaConfig {
    fn default() -> Self {
        MediaConfig {
            max_upload_bytes: 25 * 1024 * 1024,
            upload_ttl_secs: 86_400,
            deleted_file_grace_secs: 86_400,
            blob_backend: "disk".into(),
            s3_bucket: String::new(),
            s3_endpoint: String::new(),
            s3_region: "us-east-1".into(),
            s3_access_key_id: String::new(),
            s3_secret_access_key: Secret::default(),
            s3_allow_http: false,
            ffmpeg: "ffmpeg".into(),
            link_previews: true,
            link_preview_timeout_ms: 5000,
            link_preview_allow_addresses: Vec::new(),
            user_quota_bytes: 10 * 1024 * 1024 * 1024,
            upload_chunk_max_bytes: 8 * 1024 * 1024,
            hot_cache_bytes: 64 * 1024 * 1024,
            hot_cache_max_file_bytes: 256 * 1024,
            hot_cache_ttl_secs: 3600,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimitConfig {
    pub enabled: bool,
    /// Every API request, per client address.
    pub per_ip_per_second: f64,
    pub per_ip_burst: u32,
    /// Every authenticated request, per user.
    pub per_user_per_second: f64,
    pub per_user_burst: u32,
    /// Sign-up and sign-in, per client address (password guessing).
    pub auth_per_ip_per_second: f64,
    pub auth_per_ip_burst: u32,
    /// Sign-in attempts per account, from any address (password guessing
    /// spread over many addresses).
    pub auth_per_account_per_second: f64,
    pub auth_per_account_burst: u32,
    /// While the cluster's Redis is unreachable: `local` counts on each node alone
    /// (limits keep working, each node allowing the whole quota), `allow` lets
    /// everything through (fail open).
    pub when_redis_down: RedisDown,
}

/// `rate_limit.when_redis_down`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RedisDown {
    #[default]
    Local,
    Allow,
}

impl FromStr for RedisDown {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        match s {
            "local" => Ok(RedisDown::Local),
            "allow" => Ok(RedisDown::Allow),
            _ => Err(()),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PasswordHashConfig {
    /// Argon2id memory cost in KiB (OWASP: 19456).
    pub memory_kib: u32,
    pub iterations: u32,
    /// How many hashes may run at once.
    pub parallelism: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("./data"),
            database_url: Secret::default(),
            nats_url: String::new(),
            nats_subject_root: "hearth".into(),
            nats_stream_replicas: 1,
            log_retention_hours: 168,
            journal_keep_events: 1_000_000,
            search_enabled: true,
            redis_url: Secret::default(),
            public_url: String::new(),
            web_dir: String::new(),
            jwt_secret: Secret::default(),
            access_token_ttl_secs: 900,
            max_body_bytes: 1024 * 1024,
            db_max_connections: 16,
            trust_forwarded_for: false,
            allowed_origins: Vec::new(),
            gateway_heartbeat_ms: 30_000,
            gateway_resume_secs: 120,
            drain_secs: 10,
            gateway_window_events: 50_000,
            gateway_max_sessions_per_user: 16,
            gateway_max_connections_per_address: 256,
            gateway_presence_threshold: 1_000,
            voice_host_addresses: vec!["127.0.0.1".into()],
            voice_public_ips: Vec::new(),
            voice_udp_ports: String::new(),
            turn_urls: Vec::new(),
            turn_secret: Secret::default(),
            turn_ttl_secs: 3600,
            log_format: "text".into(),
            log_level: "info".into(),
            otlp_endpoint: String::new(),
            otlp_service_name: "hearth".into(),
            audit_retention_days: 365,
            smtp_url: Secret::default(),
            mail_from: "Hearth <hearth@localhost>".into(),
            mail_retry_base_ms: 30_000,
            password_reset_ttl_secs: 1800,
            rate_limit: RateLimitConfig::default(),
            password_hash: PasswordHashConfig::default(),
            media: MediaConfig::default(),
            notify: NotifyConfig::default(),
            oidc_providers: Vec::new(),
            oidc_allow_private: false,
        }
    }
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        RateLimitConfig {
            enabled: true,
            per_ip_per_second: 50.0,
            per_ip_burst: 200,
            per_user_per_second: 20.0,
            per_user_burst: 100,
            auth_per_ip_per_second: 0.5,
            auth_per_ip_burst: 20,
            auth_per_account_per_second: 0.1,
            auth_per_account_burst: 10,
            when_redis_down: RedisDown::Local,
        }
    }
}

impl Default for PasswordHashConfig {
    fn default() -> Self {
        PasswordHashConfig {
            memory_kib: 19 * 1024,
            iterations: 2,
            parallelism: 2,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("reading {0}: {1}")]
    Read(PathBuf, std::io::Error),
    #[error("in {0}: {1}")]
    Parse(PathBuf, String),
    #[error("environment variable {0}: cannot read {1:?}")]
    Env(&'static str, String),
    #[error("invalid setting {0}: {1}")]
    Invalid(&'static str, String),
}

/// Values given on the command line (highest precedence).
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    pub listen: Option<SocketAddr>,
    pub data_dir: Option<PathBuf>,
}

fn set<T: FromStr>(
    field: &mut T,
    name: &'static str,
    value: Option<String>,
) -> Result<(), ConfigError> {
    if let Some(v) = value {
        *field = v.parse().map_err(|_| ConfigError::Env(name, v))?;
    }
    Ok(())
}

impl Config {
    /// Layers file, environment and flags over the defaults. `file` None means
    /// `./hearth.toml` if it exists.
    pub fn load(
        file: Option<&Path>,
        env: impl Fn(&str) -> Option<String>,
        flags: &Overrides,
    ) -> Result<Config, ConfigError> {
        let mut cfg = match file {
            Some(p) => Self::from_file(p)?,
            None if Path::new("hearth.toml").exists() => Self::from_file(Path::new("hearth.toml"))?,
            None => Config::default(),
        };
        cfg.apply_env(&env)?;
        if let Some(l) = flags.listen {
            cfg.listen = l;
        }
        if let Some(d) = &flags.data_dir {
            cfg.data_dir = d.clone();
        }
        cfg.validate()?;
        Ok(cfg)
    }

    pub fn from_file(p: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(p).map_err(|e| ConfigError::Read(p.to_path_buf(), e))?;
        toml::from_str(&text).map_err(|e| ConfigError::Parse(p.to_path_buf(), e.to_string()))
    }

    fn apply_env(&mut self, env: &impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        // The bare names are what every hosting platform sets; HEARTH_* wins over them.
        let either = |ours: &str, common: &str| env(ours).or_else(|| env(common));
        set(&mut self.listen, "HEARTH_LISTEN", env("HEARTH_LISTEN"))?;
        set(
            &mut self.data_dir,
            "HEARTH_DATA_DIR",
            env("HEARTH_DATA_DIR"),
        )?;
        set(
            &mut self.database_url,
            "HEARTH_DATABASE_URL",
            either("HEARTH_DATABASE_URL", "DATABASE_URL"),
        )?;
        set(
            &mut self.nats_url,
            "HEARTH_NATS_URL",
            either("HEARTH_NATS_URL", "NATS_URL"),
        )?;
        set(
            &mut self.redis_url,
            "HEARTH_REDIS_URL",
            either("HEARTH_REDIS_URL", "REDIS_URL"),
        )?;
        set(
            &mut self.public_url,
            "HEARTH_PUBLIC_URL",
            env("HEARTH_PUBLIC_URL"),
        )?;
        set(&mut self.web_dir, "HEARTH_WEB_DIR", env("HEARTH_WEB_DIR"))?;
        set(
            &mut self.jwt_secret,
            "HEARTH_JWT_SECRET",
            env("HEARTH_JWT_SECRET"),
        )?;
        set(
            &mut self.access_token_ttl_secs,
            "HEARTH_ACCESS_TOKEN_TTL_SECS",
            env("HEARTH_ACCESS_TOKEN_TTL_SECS"),
        )?;
        set(
            &mut self.max_body_bytes,
            "HEARTH_MAX_BODY_BYTES",
            env("HEARTH_MAX_BODY_BYTES"),
        )?;
        set(
            &mut self.db_max_connections,
            "HEARTH_DB_MAX_CONNECTIONS",
            env("HEARTH_DB_MAX_CONNECTIONS"),
        )?;
        set(
            &mut self.trust_forwarded_for,
            "HEARTH_TRUST_FORWARDED_FOR",
            env("HEARTH_TRUST_FORWARDED_FOR"),
        )?;
        set(
            &mut self.nats_subject_root,
            "HEARTH_NATS_SUBJECT_ROOT",
            env("HEARTH_NATS_SUBJECT_ROOT"),
        )?;
        set(
            &mut self.nats_stream_replicas,
            "HEARTH_NATS_STREAM_REPLICAS",
            env("HEARTH_NATS_STREAM_REPLICAS"),
        )?;
        set(
            &mut self.voice_udp_ports,
            "HEARTH_VOICE_UDP_PORTS",
            env("HEARTH_VOICE_UDP_PORTS"),
        )?;
        set(
            &mut self.turn_secret,
            "HEARTH_TURN_SECRET",
            env("HEARTH_TURN_SECRET"),
        )?;
        let list = |v: String| -> Vec<String> {
            v.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect()
        };
        if let Some(v) = env("HEARTH_VOICE_HOST_ADDRESSES") {
            self.voice_host_addresses = list(v);
        }
        if let Some(v) = env("HEARTH_VOICE_PUBLIC_IPS") {
            self.voice_public_ips = list(v);
        }
        if let Some(v) = env("HEARTH_TURN_URLS") {
            self.turn_urls = list(v);
        }
        set(
            &mut self.log_retention_hours,
            "HEARTH_LOG_RETENTION_HOURS",
            env("HEARTH_LOG_RETENTION_HOURS"),
        )?;
        set(
            &mut self.journal_keep_events,
            "HEARTH_JOURNAL_KEEP_EVENTS",
            env("HEARTH_JOURNAL_KEEP_EVENTS"),
        )?;
        set(
            &mut self.search_enabled,
            "HEARTH_SEARCH_ENABLED",
            env("HEARTH_SEARCH_ENABLED"),
        )?;
        set(
            &mut self.gateway_heartbeat_ms,
            "HEARTH_GATEWAY_HEARTBEAT_MS",
            env("HEARTH_GATEWAY_HEARTBEAT_MS"),
        )?;
        set(
            &mut self.drain_secs,
            "HEARTH_DRAIN_SECS",
            env("HEARTH_DRAIN_SECS"),
        )?;
        set(
            &mut self.gateway_resume_secs,
            "HEARTH_GATEWAY_RESUME_SECS",
            env("HEARTH_GATEWAY_RESUME_SECS"),
        )?;
        set(
            &mut self.gateway_window_events,
            "HEARTH_GATEWAY_WINDOW_EVENTS",
            env("HEARTH_GATEWAY_WINDOW_EVENTS"),
        )?;
        set(
            &mut self.gateway_max_sessions_per_user,
            "HEARTH_GATEWAY_MAX_SESSIONS_PER_USER",
            env("HEARTH_GATEWAY_MAX_SESSIONS_PER_USER"),
        )?;
        set(
            &mut self.gateway_max_connections_per_address,
            "HEARTH_GATEWAY_MAX_CONNECTIONS_PER_ADDRESS",
            env("HEARTH_GATEWAY_MAX_CONNECTIONS_PER_ADDRESS"),
        )?;
        set(
            &mut self.gateway_presence_threshold,
            "HEARTH_GATEWAY_PRESENCE_THRESHOLD",
            env("HEARTH_GATEWAY_PRESENCE_THRESHOLD"),
        )?;
        set(
            &mut self.log_format,
            "HEARTH_LOG_FORMAT",
            env("HEARTH_LOG_FORMAT"),
        )?;
        set(
            &mut self.log_level,
            "HEARTH_LOG_LEVEL",
            env("HEARTH_LOG_LEVEL").or_else(|| env("RUST_LOG")),
        )?;
        set(
            &mut self.otlp_endpoint,
            "HEARTH_OTLP_ENDPOINT",
            either("HEARTH_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"),
        )?;
        set(
            &mut self.otlp_service_name,
            "HEARTH_OTLP_SERVICE_NAME",
            either("HEARTH_OTLP_SERVICE_NAME", "OTEL_SERVICE_NAME"),
        )?;
        set(
            &mut self.audit_retention_days,
            "HEARTH_AUDIT_RETENTION_DAYS",
            env("HEARTH_AUDIT_RETENTION_DAYS"),
        )?;
        if let Some(v) = env("HEARTH_OIDC_PROVIDERS") {
            self.oidc_providers = serde_json::from_str(&v).map_err(|e| {
                ConfigError::Invalid(
                    "HEARTH_OIDC_PROVIDERS",
                    format!("a JSON array of providers: {e}"),
                )
            })?;
        }
        set(
            &mut self.oidc_allow_private,
            "HEARTH_OIDC_ALLOW_PRIVATE",
            env("HEARTH_OIDC_ALLOW_PRIVATE"),
        )?;
        let n = &mut self.notify;
        set(
            &mut n.enabled,
            "HEARTH_NOTIFY_ENABLED",
            env("HEARTH_NOTIFY_ENABLED"),
        )?;
        set(
            &mut n.push_subject,
            "HEARTH_NOTIFY_PUSH_SUBJECT",
            env("HEARTH_NOTIFY_PUSH_SUBJECT"),
        )?;
        set(
            &mut n.push_allow_private,
            "HEARTH_NOTIFY_PUSH_ALLOW_PRIVATE",
            env("HEARTH_NOTIFY_PUSH_ALLOW_PRIVATE"),
        )?;
        set(
            &mut n.push_timeout_ms,
            "HEARTH_NOTIFY_PUSH_TIMEOUT_MS",
            env("HEARTH_NOTIFY_PUSH_TIMEOUT_MS"),
        )?;
        set(
            &mut n.push_retry_base_ms,
            "HEARTH_NOTIFY_PUSH_RETRY_BASE_MS",
            env("HEARTH_NOTIFY_PUSH_RETRY_BASE_MS"),
        )?;
        set(
            &mut n.digest_after_secs,
            "HEARTH_NOTIFY_DIGEST_AFTER_SECS",
            env("HEARTH_NOTIFY_DIGEST_AFTER_SECS"),
        )?;
        let m = &mut self.media;
        for (field, name) in [
            (&mut m.blob_backend, "HEARTH_MEDIA_BLOB_BACKEND"),
            (&mut m.s3_bucket, "HEARTH_MEDIA_S3_BUCKET"),
            (&mut m.s3_endpoint, "HEARTH_MEDIA_S3_ENDPOINT"),
            (&mut m.s3_region, "HEARTH_MEDIA_S3_REGION"),
            (&mut m.s3_access_key_id, "HEARTH_MEDIA_S3_ACCESS_KEY_ID"),
            (&mut m.ffmpeg, "HEARTH_MEDIA_FFMPEG"),
        ] {
            set(field, name, env(name))?;
        }
        set(
            &mut m.s3_secret_access_key,
            "HEARTH_MEDIA_S3_SECRET_ACCESS_KEY",
            env("HEARTH_MEDIA_S3_SECRET_ACCESS_KEY"),
        )?;
        set(
            &mut m.s3_allow_http,
            "HEARTH_MEDIA_S3_ALLOW_HTTP",
            env("HEARTH_MEDIA_S3_ALLOW_HTTP"),
        )?;
        set(
            &mut m.max_upload_bytes,
            "HEARTH_MEDIA_MAX_UPLOAD_BYTES",
            env("HEARTH_MEDIA_MAX_UPLOAD_BYTES"),
        )?;
        set(
            &mut m.upload_ttl_secs,
            "HEARTH_MEDIA_UPLOAD_TTL_SECS",
            env("HEARTH_MEDIA_UPLOAD_TTL_SECS"),
        )?;
        set(
            &mut m.deleted_file_grace_secs,
            "HEARTH_MEDIA_DELETED_FILE_GRACE_SECS",
            env("HEARTH_MEDIA_DELETED_FILE_GRACE_SECS"),
        )?;
        for (field, name) in [
            (&mut m.user_quota_bytes, "HEARTH_MEDIA_USER_QUOTA_BYTES"),
            (
                &mut m.upload_chunk_max_bytes,
                "HEARTH_MEDIA_UPLOAD_CHUNK_MAX_BYTES",
            ),
            (&mut m.hot_cache_bytes, "HEARTH_MEDIA_HOT_CACHE_BYTES"),
            (
                &mut m.hot_cache_max_file_bytes,
                "HEARTH_MEDIA_HOT_CACHE_MAX_FILE_BYTES",
            ),
            (&mut m.hot_cache_ttl_secs, "HEARTH_MEDIA_HOT_CACHE_TTL_SECS"),
        ] {
            set(field, name, env(name))?;
        }
        set(
            &mut m.link_previews,
            "HEARTH_MEDIA_LINK_PREVIEWS",
            env("HEARTH_MEDIA_LINK_PREVIEWS"),
        )?;
        set(
            &mut m.link_preview_timeout_ms,
            "HEARTH_MEDIA_LINK_PREVIEW_TIMEOUT_MS",
            env("HEARTH_MEDIA_LINK_PREVIEW_TIMEOUT_MS"),
        )?;
        // Comma-separated addresses (e.g. the browser tests' local site).
        if let Some(v) = env("HEARTH_MEDIA_LINK_PREVIEW_ALLOW_ADDRESSES") {
            m.link_preview_allow_addresses = v
                .split(',')
                .map(str::trim)
                .filter(|a| !a.is_empty())
                .map(|a| a.parse())
                .collect::<Result<_, _>>()
                .map_err(|_| {
                    ConfigError::Env("HEARTH_MEDIA_LINK_PREVIEW_ALLOW_ADDRESSES", v.clone())
                })?;
        }
        set(
            &mut self.smtp_url,
            "HEARTH_SMTP_URL",
            env("HEARTH_SMTP_URL"),
        )?;
        set(
            &mut self.mail_from,
            "HEARTH_MAIL_FROM",
            env("HEARTH_MAIL_FROM"),
        )?;
        set(
            &mut self.mail_retry_base_ms,
            "HEARTH_MAIL_RETRY_BASE_MS",
            env("HEARTH_MAIL_RETRY_BASE_MS"),
        )?;
        set(
            &mut self.password_reset_ttl_secs,
            "HEARTH_PASSWORD_RESET_TTL_SECS",
            env("HEARTH_PASSWORD_RESET_TTL_SECS"),
        )?;
        let rl = &mut self.rate_limit;
        set(
            &mut rl.enabled,
            "HEARTH_RATE_LIMIT_ENABLED",
            env("HEARTH_RATE_LIMIT_ENABLED"),
        )?;
        set(
            &mut rl.per_ip_per_second,
            "HEARTH_RATE_LIMIT_PER_IP_PER_SECOND",
            env("HEARTH_RATE_LIMIT_PER_IP_PER_SECOND"),
        )?;
        set(
            &mut rl.per_ip_burst,
            "HEARTH_RATE_LIMIT_PER_IP_BURST",
            env("HEARTH_RATE_LIMIT_PER_IP_BURST"),
        )?;
        set(
            &mut rl.per_user_per_second,
            "HEARTH_RATE_LIMIT_PER_USER_PER_SECOND",
            env("HEARTH_RATE_LIMIT_PER_USER_PER_SECOND"),
        )?;
        set(
            &mut rl.per_user_burst,
            "HEARTH_RATE_LIMIT_PER_USER_BURST",
            env("HEARTH_RATE_LIMIT_PER_USER_BURST"),
        )?;
        set(
            &mut rl.auth_per_ip_per_second,
            "HEARTH_RATE_LIMIT_AUTH_PER_IP_PER_SECOND",
            env("HEARTH_RATE_LIMIT_AUTH_PER_IP_PER_SECOND"),
        )?;
        set(
            &mut rl.auth_per_ip_burst,
            "HEARTH_RATE_LIMIT_AUTH_PER_IP_BURST",
            env("HEARTH_RATE_LIMIT_AUTH_PER_IP_BURST"),
        )?;
        set(
            &mut rl.auth_per_account_per_second,
            "HEARTH_RATE_LIMIT_AUTH_PER_ACCOUNT_PER_SECOND",
            env("HEARTH_RATE_LIMIT_AUTH_PER_ACCOUNT_PER_SECOND"),
        )?;
        set(
            &mut rl.auth_per_account_burst,
            "HEARTH_RATE_LIMIT_AUTH_PER_ACCOUNT_BURST",
            env("HEARTH_RATE_LIMIT_AUTH_PER_ACCOUNT_BURST"),
        )?;
        set(
            &mut rl.when_redis_down,
            "HEARTH_RATE_LIMIT_WHEN_REDIS_DOWN",
            env("HEARTH_RATE_LIMIT_WHEN_REDIS_DOWN"),
        )?;
        let ph = &mut self.password_hash;
        set(
            &mut ph.memory_kib,
            "HEARTH_PASSWORD_HASH_MEMORY_KIB",
            env("HEARTH_PASSWORD_HASH_MEMORY_KIB"),
        )?;
        set(
            &mut ph.iterations,
            "HEARTH_PASSWORD_HASH_ITERATIONS",
            env("HEARTH_PASSWORD_HASH_ITERATIONS"),
        )?;
        set(
            &mut ph.parallelism,
            "HEARTH_PASSWORD_HASH_PARALLELISM",
            env("HEARTH_PASSWORD_HASH_PARALLELISM"),
        )?;
        Ok(())
    }

    /// The SFU's UDP port range, if one is set.
    pub fn voice_ports(&self) -> Result<Option<(u16, u16)>, ConfigError> {
        let bad = || {
            ConfigError::Invalid(
                "voice_udp_ports",
                "first-last, e.g. 50000-50999 (first <= last, not 0)".into(),
            )
        };
        if self.voice_udp_ports.trim().is_empty() {
            return Ok(None);
        }
        let (a, b) = self.voice_udp_ports.split_once('-').ok_or_else(bad)?;
        let (a, b): (u16, u16) = (
            a.trim().parse().map_err(|_| bad())?,
            b.trim().parse().map_err(|_| bad())?,
        );
        if a == 0 || a > b {
            return Err(bad());
        }
        Ok(Some((a, b)))
    }

    /// `voice_host_addresses` and `voice_public_ips`, parsed.
    pub fn voice_addresses(
        &self,
    ) -> Result<(Vec<std::net::IpAddr>, Vec<std::net::IpAddr>), ConfigError> {
        let parse = |field: &'static str, list: &[String]| {
            list.iter()
                .map(|a| {
                    a.parse().map_err(|_| {
                        ConfigError::Invalid(field, format!("{a:?} is not an IP address"))
                    })
                })
                .collect::<Result<Vec<_>, _>>()
        };
        Ok((
            parse("voice_host_addresses", &self.voice_host_addresses)?,
            parse("voice_public_ips", &self.voice_public_ips)?,
        ))
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        self.voice_ports()?;
        if self.voice_addresses()?.0.is_empty() {
            return Err(ConfigError::Invalid(
                "voice_host_addresses",
                "at least one address".into(),
            ));
        }
        if !self.turn_urls.is_empty() && self.turn_secret.0.is_empty() {
            return Err(ConfigError::Invalid(
                "turn_secret",
                "needed with turn_urls (coturn's static-auth-secret)".into(),
            ));
        }
        if !(60..=86_400).contains(&self.turn_ttl_secs) {
            return Err(ConfigError::Invalid("turn_ttl_secs", "60 to 86400".into()));
        }
        let url = &self.database_url.0;
        if !url.is_empty() && !(url.starts_with("postgres://") || url.starts_with("postgresql://"))
        {
            return Err(ConfigError::Invalid(
                "database_url",
                "must be a postgres:// URL or empty (SQLite)".into(),
            ));
        }
        let secret = self.jwt_secret.0.len();
        if secret > 0 && secret < MIN_JWT_SECRET_BYTES {
            return Err(ConfigError::Invalid(
                "jwt_secret",
                format!(
                    "at least {MIN_JWT_SECRET_BYTES} bytes (this one has {secret}; \
                     HEARTH_JWT_SECRET sets it too), or empty to keep signing keys in the database"
                ),
            ));
        }
        if !matches!(self.log_format.as_str(), "text" | "json") {
            return Err(ConfigError::Invalid(
                "log_format",
                "\"text\" or \"json\"".into(),
            ));
        }
        let mut names = std::collections::HashSet::new();
        for p in &self.oidc_providers {
            let ok_name = !p.name.is_empty()
                && p.name.len() <= 32
                && p.name.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_'
                });
            if !ok_name || !names.insert(p.name.as_str()) {
                return Err(ConfigError::Invalid(
                    "oidc_providers.name",
                    format!("{:?}: unique, 1-32 of a-z, 0-9, - and _", p.name),
                ));
            }
            if crate::netguard::check_url(&p.issuer, self.oidc_allow_private).is_err() {
                return Err(ConfigError::Invalid(
                    "oidc_providers.issuer",
                    format!(
                        "{:?}: an https URL (plain http and private addresses need oidc_allow_private)",
                        p.issuer
                    ),
                ));
            }
            if p.client_id.is_empty() || p.display_name.is_empty() {
                return Err(ConfigError::Invalid(
                    "oidc_providers",
                    format!("{}: client_id and display_name are needed", p.name),
                ));
            }
        }
        let subject = &self.notify.push_subject;
        if !subject.is_empty()
            && !(subject.starts_with("mailto:") || subject.starts_with("https://"))
        {
            return Err(ConfigError::Invalid(
                "notify.push_subject",
                "a mailto: or https: URL (push services contact the operator there), or empty"
                    .into(),
            ));
        }
        if !(100..=120_000).contains(&self.notify.push_timeout_ms) {
            return Err(ConfigError::Invalid(
                "notify.push_timeout_ms",
                "100 to 120000".into(),
            ));
        }
        if !self.otlp_endpoint.is_empty() && !self.otlp_endpoint.starts_with("http://") {
            return Err(ConfigError::Invalid(
                "otlp_endpoint",
                "an http:// URL (no TLS: send to a local collector) or empty".into(),
            ));
        }
        if !(1..=36_500).contains(&self.audit_retention_days) {
            return Err(ConfigError::Invalid(
                "audit_retention_days",
                "1 to 36500".into(),
            ));
        }
        if !self.smtp_url.0.is_empty()
            && !(self.smtp_url.0.starts_with("smtp://") || self.smtp_url.0.starts_with("smtps://"))
        {
            // Never echo the URL: it may carry the mail server's password.
            return Err(ConfigError::Invalid(
                "smtp_url",
                "an smtp:// or smtps:// URL, or empty to turn mail off".into(),
            ));
        }
        if !self.mail_from.contains('@') {
            return Err(ConfigError::Invalid(
                "mail_from",
                "an address, e.g. \"Hearth <hearth@example.org>\"".into(),
            ));
        }
        if !(10..=3_600_000).contains(&self.mail_retry_base_ms) {
            return Err(ConfigError::Invalid(
                "mail_retry_base_ms",
                "10 to 3600000".into(),
            ));
        }
        if !(1..=86_400).contains(&self.password_reset_ttl_secs) {
            return Err(ConfigError::Invalid(
                "password_reset_ttl_secs",
                "1 to 86400".into(),
            ));
        }
        if self.otlp_service_name.is_empty() {
            return Err(ConfigError::Invalid(
                "otlp_service_name",
                "must not be empty".into(),
            ));
        }
        if self.access_token_ttl_secs < 30 || self.access_token_ttl_secs > 24 * 3600 {
            return Err(ConfigError::Invalid(
                "access_token_ttl_secs",
                "30 to 86400".into(),
            ));
        }
        if self.nats_subject_root.is_empty()
            || !self
                .nats_subject_root
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return Err(ConfigError::Invalid(
                "nats_subject_root",
                "letters, digits, _ and -".into(),
            ));
        }
        if !(1..=5).contains(&self.nats_stream_replicas) {
            return Err(ConfigError::Invalid(
                "nats_stream_replicas",
                "1 to 5 (JetStream's limit)".into(),
            ));
        }
        if !(1..=24 * 365).contains(&self.log_retention_hours) {
            return Err(ConfigError::Invalid(
                "log_retention_hours",
                "1 to 8760".into(),
            ));
        }
        if self.journal_keep_events < 10_000 {
            return Err(ConfigError::Invalid(
                "journal_keep_events",
                "at least 10000".into(),
            ));
        }
        if self.drain_secs > 600 {
            return Err(ConfigError::Invalid("drain_secs", "0 to 600".into()));
        }
        if !(1_000..=300_000).contains(&self.gateway_heartbeat_ms) {
            return Err(ConfigError::Invalid(
                "gateway_heartbeat_ms",
                "1000 to 300000".into(),
            ));
        }
        if self.gateway_max_sessions_per_user == 0 || self.gateway_max_connections_per_address == 0
        {
            return Err(ConfigError::Invalid(
                "gateway_max_sessions_per_user",
                "gateway limits must be at least 1".into(),
            ));
        }
        if self.max_body_bytes < 1024 {
            return Err(ConfigError::Invalid(
                "max_body_bytes",
                "at least 1024".into(),
            ));
        }
        if self.password_hash.memory_kib < 8 || self.password_hash.iterations < 1 {
            return Err(ConfigError::Invalid(
                "password_hash",
                "memory_kib >= 8, iterations >= 1".into(),
            ));
        }
        let m = &self.media;
        if m.link_preview_timeout_ms == 0 {
            return Err(ConfigError::Invalid(
                "media.link_preview_timeout_ms",
                "must be at least 1".into(),
            ));
        }
        if m.max_upload_bytes == 0 || m.upload_ttl_secs == 0 || m.upload_chunk_max_bytes == 0 {
            return Err(ConfigError::Invalid(
                "media",
                "max_upload_bytes, upload_ttl_secs and upload_chunk_max_bytes must be at least 1"
                    .into(),
            ));
        }
        match m.blob_backend.as_str() {
            "disk" => {}
            "s3" if !m.s3_bucket.is_empty() => {}
            "s3" => {
                return Err(ConfigError::Invalid(
                    "media.s3_bucket",
                    "needed for s3".into(),
                ));
            }
            _ => {
                return Err(ConfigError::Invalid(
                    "media.blob_backend",
                    "disk or s3".into(),
                ));
            }
        }
        let rl = &self.rate_limit;
        if rl.per_ip_per_second <= 0.0
            || rl.per_user_per_second <= 0.0
            || rl.auth_per_ip_per_second <= 0.0
            || rl.auth_per_account_per_second <= 0.0
        {
            return Err(ConfigError::Invalid(
                "rate_limit",
                "rates must be positive".into(),
            ));
        }
        Ok(())
    }

    pub fn uses_postgres(&self) -> bool {
        !self.database_url.0.is_empty()
    }

    pub fn secure_cookies(&self) -> bool {
        self.public_url.starts_with("https://")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documented_example_is_current() {
        // hearth.example.toml must list every setting with its default value,
        // so the file people copy never drifts from the code.
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../hearth.example.toml");
        let text = std::fs::read_to_string(&path).expect("hearth.example.toml at the repo root");
        let example: toml::Value = toml::from_str(&text).expect("example parses");
        let defaults = toml::Value::try_from(Config::default()).expect("defaults serialize");
        assert_eq!(
            example, defaults,
            "hearth.example.toml differs from Config::default()"
        );
        assert_eq!(
            Config::from_file(&path).expect("example loads"),
            Config::default()
        );
    }

    #[test]
    fn layers_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("hearth.toml");
        std::fs::write(
            &f,
            "listen = \"127.0.0.1:9000\"\nlog_level = \"debug\"\n[rate_limit]\nper_ip_burst = 7\n",
        )
        .unwrap();
        let env = |k: &str| match k {
            "HEARTH_LOG_LEVEL" => Some("warn".to_string()),
            "DATABASE_URL" => Some("postgres://x@y/z".to_string()),
            "HEARTH_RATE_LIMIT_ENABLED" => Some("false".to_string()),
            "HEARTH_RATE_LIMIT_WHEN_REDIS_DOWN" => Some("allow".to_string()),
            "OTEL_EXPORTER_OTLP_ENDPOINT" => Some("http://otel:4318".to_string()),
            "HEARTH_OTLP_SERVICE_NAME" => Some("chat".to_string()),
            "OTEL_SERVICE_NAME" => Some("ignored".to_string()),
            _ => None,
        };
        let flags = Overrides {
            listen: Some("0.0.0.0:1".parse().unwrap()),
            data_dir: None,
        };
        let c = Config::load(Some(&f), env, &flags).unwrap();
        assert_eq!(
            c.listen,
            "0.0.0.0:1".parse::<std::net::SocketAddr>().unwrap(),
            "flags beat the file"
        );
        assert_eq!(c.log_level, "warn", "environment beats the file");
        assert_eq!(c.rate_limit.per_ip_burst, 7, "the file beats defaults");
        assert!(!c.rate_limit.enabled);
        assert_eq!(c.rate_limit.when_redis_down, RedisDown::Allow);
        assert!(c.uses_postgres());
        assert_eq!(
            c.otlp_endpoint, "http://otel:4318",
            "the OTel variable applies"
        );
        assert_eq!(
            c.otlp_service_name, "chat",
            "HEARTH_* beats the OTel variable"
        );
        assert!(!format!("{c:?}").contains("x@y"), "secrets never print");
    }

    #[test]
    fn bad_settings_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("hearth.toml");
        std::fs::write(&f, "lsiten = \"x\"\n").unwrap();
        assert!(matches!(
            Config::load(Some(&f), |_| None, &Overrides::default()),
            Err(ConfigError::Parse(..))
        ));
        let env = |k: &str| (k == "HEARTH_LISTEN").then(|| "nowhere".to_string());
        assert!(matches!(
            Config::load(None, env, &Overrides::default()),
            Err(ConfigError::Env("HEARTH_LISTEN", _))
        ));
        let env = |k: &str| (k == "DATABASE_URL").then(|| "mysql://a".to_string());
        assert!(matches!(
            Config::load(None, env, &Overrides::default()),
            Err(ConfigError::Invalid("database_url", _))
        ));
        let env = |k: &str| (k == "HEARTH_JWT_SECRET").then(|| "0123456789".to_string());
        match Config::load(None, env, &Overrides::default()) {
            Err(e @ ConfigError::Invalid("jwt_secret", _)) => {
                let said = e.to_string();
                assert!(said.contains("jwt_secret") && said.contains("32"), "{said}");
                assert!(
                    !said.contains("0123456789"),
                    "the secret never prints: {said}"
                );
            }
            other => panic!("a 10-byte secret: {other:?}"),
        }
        let env = |k: &str| (k == "HEARTH_JWT_SECRET").then(|| "x".repeat(32));
        assert!(Config::load(None, env, &Overrides::default()).is_ok());
        let env = |k: &str| (k == "HEARTH_OTLP_ENDPOINT").then(|| "https://x:4318".to_string());
        assert!(matches!(
            Config::load(None, env, &Overrides::default()),
            Err(ConfigError::Invalid("otlp_endpoint", _))
        ));
    }
}
