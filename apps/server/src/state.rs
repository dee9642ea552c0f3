//! What every request handler can reach.

use std::ops::Deref;
use std::sync::Arc;

use hearth_accounts::Accounts;
use hearth_bus::Bus;
use hearth_chat::Chat;
use hearth_state::RateLimiter;
use hearth_store::Store;

use crate::config::Config;
use crate::events::Publisher;
use crate::metrics::Metrics;
use crate::web::WebAssets;

#[derive(Clone)]
pub struct AppState(pub Arc<Inner>);

pub struct Inner {
    pub cfg: Config,
    pub store: Arc<dyn Store>,
    pub accounts: Accounts,
    pub chat: Chat,
    pub bus: Arc<dyn Bus>,
    pub publisher: Publisher,
    pub limiter: Arc<dyn RateLimiter>,
    /// Closed while the database is surely down: API calls answer 503 at once.
    pub db_gate: Arc<crate::db_gate::DbGate>,
    /// The shared Redis, when configured (for readiness and shared state).
    pub redis: Option<hearth_state::RedisConnection>,
    pub metrics: Metrics,
    pub node_id: u16,
    pub web: Option<WebAssets>,
    pub hub: Arc<crate::gateway::hub::Hub>,
    /// Who is online, shared by every node (Redis) or this node's (memory).
    pub presence: Arc<dyn hearth_state::Presence>,
    /// This process's presence key (unique per process, never reused).
    pub node_key: String,
    pub watched: Arc<crate::gateway::presence::Watched>,
    /// Voice and video calls hosted here (the SFU) and everyone's voice states.
    pub voice: crate::voice::Voice,
    /// The audit log and automod.
    pub moderation: crate::moderation::Moderation,
    /// The instance's staff policy (the admin API).
    pub admin: crate::admin::Admin,
    /// This node's message search; `None` when off or its index could not
    /// be opened (the search endpoints answer 503).
    pub search: Option<Arc<crate::search::Search>>,
    /// Uploads, the blob store and the image pipeline.
    pub media: crate::media::Media,
    /// Link previews: the guarded fetcher and its consumer.
    pub unfurl: crate::unfurl::Unfurler,
    /// The mail outbox; `None` when `smtp_url` is empty (the endpoints
    /// that need mail answer 503).
    pub mail: Option<Arc<crate::mail::Mail>>,
    /// Notifications: the VAPID key, the push client and the consumer.
    pub notify: Arc<crate::notify::Notify>,
    /// OpenID Connect providers (discovery and keys cached).
    pub oidc: crate::oidc::Oidc,
}

impl Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}
