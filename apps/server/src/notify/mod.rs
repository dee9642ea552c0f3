//! Notifications (issue #13): one durable consumer per cluster (`notify`)
//! reads every MESSAGE_CREATE from the event log, never the send path, and
//! decides who is told (`hearth-notify`), stores the notifications (one per
//! user and message, so a redelivered event adds nothing), tells the
//! users' sessions (NOTIFICATION_CREATE on `chat.user.<u>`, in the log like
//! every user event, so a resumed session gets it) and queues Web Pushes
//! for users none of whose sessions is `online`.
//!
//! - [`push`]: the push outbox's worker (every node), the request it makes
//!   and what each answer means;
//! - [`digest`]: mails of unread mentions for users away a while;
//! - `http/notifications.rs`: the inbox, settings and subscriptions API.
//!
//! Deciding needs who can see the channel: the community's rules (roles,
//! channels, overwrites) are loaded once per message and every candidate's
//! view is resolved in memory from their roles, so an `@everyone` in a
//! community of 10,000 costs a few queries, not 10,000.

pub mod digest;
pub mod push;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Weak};
use std::time::Instant;

use async_trait::async_trait;
use hearth_bus::Envelope;
use hearth_bus::journal::{ConsumerConfig, Handler};
use hearth_notify::webpush::vapid::VapidKey;
use hearth_notify::webpush::{PushPayload, preview};
use hearth_notify::{AccountSettings, Effective, Level, MessageFacts, ScopeSetting, reason_for};
use hearth_store::{
    ACCOUNT_SCOPE, NewNotification, NotificationRecord, NotifySettingRecord, Store, StoreError,
};
use hearth_types::{ChannelId, CommunityId, IdGenerator, MessageId, RoleId, UserId, now_ms};
use parking_lot::Mutex;
use prometheus::{Histogram, HistogramOpts, IntCounterVec, Opts};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::config::{Config, NotifyConfig};
use crate::metrics::Metrics;
use crate::state::{AppState, Inner};

/// The consumer's name (its cursor and dead letters).
pub const CONSUMER: &str = "notify";
/// Browsers kept per account (the oldest registration goes first).
pub const MAX_SUBSCRIPTIONS: u32 = 20;
/// Candidates above which members are read in pages rather than one by one.
const PAGED_MEMBERS: usize = 64;

/// What the notification service keeps for the life of the server.
pub struct Notify {
    pub cfg: NotifyConfig,
    pub vapid: VapidKey,
    /// The VAPID `sub` claim.
    subject: String,
    ids: Arc<IdGenerator>,
    source: String,
    base_url: String,
    http: reqwest13::Client,
    metrics: NotifyMetrics,
    /// Wakes this node's push worker when a push is queued here.
    wake: tokio::sync::Notify,
    consumer: Mutex<Option<hearth_bus::Consumer>>,
}

#[derive(Clone)]
struct NotifyMetrics {
    /// Notifications stored, by kind.
    created: IntCounterVec,
    /// Pushes by outcome (queued, sent, retried, gone, rejected, failed).
    pushes: IntCounterVec,
    /// Time to handle one message event (decide, store, announce, queue).
    handle: Histogram,
}

impl NotifyMetrics {
    fn new(metrics: &Metrics) -> NotifyMetrics {
        let created = IntCounterVec::new(
            Opts::new(
                "hearth_notifications_total",
                "Notifications stored, by kind",
            ),
            &["kind"],
        )
        .unwrap_or_else(|e| unreachable!("static metric definition: {e}"));
        let pushes = IntCounterVec::new(
            Opts::new("hearth_push_total", "Web Pushes by outcome"),
            &["outcome"],
        )
        .unwrap_or_else(|e| unreachable!("static metric definition: {e}"));
        let handle = Histogram::with_opts(
            HistogramOpts::new(
                "hearth_notify_event_seconds",
                "Time the notification consumer takes per message event",
            )
            .buckets(vec![0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0]),
        )
        .unwrap_or_else(|e| unreachable!("static metric definition: {e}"));
        for c in [
            Box::new(created.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(pushes.clone()),
            Box::new(handle.clone()),
        ] {
            if let Err(e) = metrics.registry().register(c) {
                tracing::warn!(error = %e, "registering a notification metric");
            }
        }
        NotifyMetrics {
            created,
            pushes,
            handle,
        }
    }
}

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum NotifyStartError {
    #[error("the VAPID key: {0}")]
    Key(String),
    #[error("the database: {0}")]
    Store(#[from] StoreError),
    #[error("the HTTP client: {0}")]
    Client(String),
}

impl Notify {
    /// Loads (or, on a new database, makes) the VAPID key every node shares.
    pub async fn new(
        cfg: &Config,
        store: &Arc<dyn Store>,
        ids: Arc<IdGenerator>,
        metrics: &Metrics,
        node: u16,
    ) -> Result<Notify, NotifyStartError> {
        let key = |e: hearth_notify::webpush::PushError| NotifyStartError::Key(e.to_string());
        let candidate = VapidKey::generate().map_err(key)?;
        let (private, _) = store
            .ensure_vapid_key(&candidate.pkcs8(), &candidate.public_key(), now_ms())
            .await?;
        let pkcs8 =
            base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, &private)
                .map_err(|e| NotifyStartError::Key(e.to_string()))?;
        let vapid = VapidKey::from_pkcs8(&pkcs8).map_err(key)?;
        let n = &cfg.notify;
        let subject = if !n.push_subject.is_empty() {
            n.push_subject.clone()
        } else if cfg.public_url.starts_with("https://") {
            cfg.public_url.trim_end_matches('/').to_string()
        } else {
            "mailto:hearth@localhost".into()
        };
        let http = crate::netguard::client(
            n.push_allow_private,
            std::time::Duration::from_millis(n.push_timeout_ms),
        )
        .map_err(NotifyStartError::Client)?;
        let base_url = if cfg.public_url.is_empty() {
            format!("http://{}", cfg.listen)
        } else {
            cfg.public_url.trim_end_matches('/').to_string()
        };
        Ok(Notify {
            cfg: n.clone(),
            vapid,
            subject,
            ids,
            source: format!("hearth://node/{node}"),
            base_url,
            http,
            metrics: NotifyMetrics::new(metrics),
            wake: tokio::sync::Notify::new(),
            consumer: Mutex::new(None),
        })
    }

    /// Starts the cluster's consumer and this node's push and digest workers.
    pub async fn start(state: &AppState) -> Result<(), String> {
        if !state.notify.cfg.enabled {
            return Ok(());
        }
        let consumer = state
            .bus
            .consume(
                ConsumerConfig::new(CONSUMER, &["chat.community.", "chat.private."]),
                Arc::new(MessageConsumer(Arc::downgrade(&state.0))),
            )
            .await
            .map_err(|e| e.to_string())?;
        *state.notify.consumer.lock() = Some(consumer);
        push::spawn_worker(Arc::downgrade(&state.0));
        digest::spawn(Arc::downgrade(&state.0));
        Ok(())
    }

    /// The settings a user has in force for an account scope (defaults for
    /// what is not stored).
    pub fn account_settings(row: Option<&NotifySettingRecord>) -> AccountSettings {
        let d = AccountSettings::default();
        let Some(r) = row else { return d };
        AccountSettings {
            level: r.level.as_deref().and_then(Level::parse).unwrap_or(d.level),
            suppress_everyone: r.suppress_everyone.unwrap_or(d.suppress_everyone),
            push_previews: r.push_previews.unwrap_or(d.push_previews),
            email_digest: r.email_digest.unwrap_or(d.email_digest),
        }
    }

    pub fn scope_setting(row: &NotifySettingRecord) -> ScopeSetting {
        ScopeSetting {
            level: row.level.as_deref().and_then(Level::parse),
            muted_until: row.muted_until,
            suppress_everyone: row.suppress_everyone,
        }
    }
}

/// A MESSAGE_CREATE's payload, as far as notifications need it.
#[derive(Debug, Deserialize)]
struct MessageEvent {
    id: MessageId,
    channel_id: ChannelId,
    community_id: Option<CommunityId>,
    author: EventAuthor,
    #[serde(default)]
    content: String,
    reply_to_id: Option<MessageId>,
    #[serde(default)]
    mentions: Vec<UserId>,
    #[serde(default)]
    mention_roles: Vec<RoleId>,
    #[serde(default)]
    mention_everyone: bool,
}

#[derive(Debug, Deserialize)]
struct EventAuthor {
    id: UserId,
    username: String,
    display_name: Option<String>,
}

/// The durable consumer's handler.
struct MessageConsumer(Weak<Inner>);

#[async_trait]
impl Handler for MessageConsumer {
    async fn handle(&self, _position: u64, event: &Envelope) -> Result<(), String> {
        if event.ty != "hearth.MESSAGE_CREATE" {
            return Ok(());
        }
        let Some(inner) = self.0.upgrade() else {
            return Err("the server is stopping".into());
        };
        let state = AppState(inner);
        let v: Value = match serde_json::from_slice(&event.data) {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!(id = %event.id, error = %e, "a MESSAGE_CREATE that cannot be read");
                return Ok(());
            }
        };
        let m: MessageEvent = match serde_json::from_value(v["d"].clone()) {
            Ok(m) => m,
            Err(e) => {
                // Retrying cannot fix a malformed event: logged and skipped.
                tracing::warn!(id = %event.id, error = %e, "a MESSAGE_CREATE that cannot be read");
                return Ok(());
            }
        };
        let started = Instant::now();
        let out = on_message(&state, &m, &v["d"]).await;
        state
            .notify
            .metrics
            .handle
            .observe(started.elapsed().as_secs_f64());
        out.map_err(|e| e.to_string())
    }
}

/// A candidate, as far as deciding goes.
struct Candidate {
    roles: Vec<RoleId>,
}

/// Decides, stores, announces and queues pushes for one new message.
#[tracing::instrument(skip_all, fields(message = m.id.0, channel = m.channel_id.0))]
async fn on_message(state: &AppState, m: &MessageEvent, wire: &Value) -> Result<(), StoreError> {
    let store = &state.store;
    let author = m.author.id;
    let reply_to_author = match m.reply_to_id {
        Some(r) => store.message(m.channel_id, r).await?.map(|x| x.author.id),
        None => None,
    };
    let is_dm = m.community_id.is_none();
    let mut candidates: HashMap<UserId, Candidate> = HashMap::new();
    let mut rules = None;
    match m.community_id {
        None => {
            for u in store.recipients(m.channel_id).await? {
                candidates.insert(u.id, Candidate { roles: Vec::new() });
            }
        }
        Some(c) => {
            let mut wanted: HashSet<UserId> = m.mentions.iter().copied().collect();
            wanted.extend(reply_to_author);
            wanted.extend(store.notify_all_subscribers(Some(c), m.channel_id).await?);
            for role in &m.mention_roles {
                wanted.extend(store.role_member_ids(c, *role).await?);
            }
            let everyone = m.mention_everyone;
            wanted.remove(&author);
            // Most messages address nobody: one indexed query, and done.
            if wanted.is_empty() && !everyone {
                return Ok(());
            }
            let Some(r) = state.chat.community_rules(c).await.map_err(chat_err)? else {
                return Ok(());
            };
            // Members with their roles: all of them in pages for a big
            // audience, else one by one. Non-members drop out here.
            if everyone || wanted.len() > PAGED_MEMBERS {
                let mut after = None;
                loop {
                    let page = store.members(c, after, 1000).await?;
                    let Some(last) = page.last() else { break };
                    after = Some(last.user.id);
                    for mem in page {
                        if everyone || wanted.contains(&mem.user.id) {
                            candidates.insert(
                                mem.user.id,
                                Candidate {
                                    roles: mem.role_ids,
                                },
                            );
                        }
                    }
                }
            } else {
                for u in wanted {
                    if let Some(mem) = store.member(c, u).await? {
                        candidates.insert(
                            u,
                            Candidate {
                                roles: mem.role_ids,
                            },
                        );
                    }
                }
            }
            // Only those who may see the channel now.
            candidates.retain(|u, cand| r.can_view(*u, &cand.roles, m.channel_id));
            rules = Some(r);
        }
    }
    candidates.remove(&author);
    if candidates.is_empty() {
        return Ok(());
    }
    for b in store.users_blocking(author).await? {
        candidates.remove(&b);
    }
    let users: Vec<UserId> = candidates.keys().copied().collect();
    let mut scopes = vec![ACCOUNT_SCOPE, m.channel_id.0];
    if let Some(c) = m.community_id {
        scopes.push(c.0);
    }
    let mut settings: HashMap<UserId, Vec<NotifySettingRecord>> = HashMap::new();
    for row in store.notify_settings_of(&users, &scopes).await? {
        settings.entry(row.user_id).or_default().push(row);
    }
    let facts = MessageFacts {
        author,
        users: &m.mentions,
        roles: &m.mention_roles,
        everyone: m.mention_everyone,
        reply_to_author,
        is_dm,
    };
    let now = now_ms();
    let mut rows = Vec::new();
    let mut previews: HashMap<UserId, bool> = HashMap::new();
    for (u, cand) in &candidates {
        let mine = settings.get(u).map(Vec::as_slice).unwrap_or_default();
        let find = |scope: i64| mine.iter().find(|r| r.scope_id == scope);
        let account = Notify::account_settings(find(ACCOUNT_SCOPE));
        let community = m
            .community_id
            .and_then(|c| find(c.0))
            .map(Notify::scope_setting);
        let channel = find(m.channel_id.0).map(Notify::scope_setting);
        let eff = Effective::resolve(&account, community.as_ref(), channel.as_ref(), is_dm, now);
        if let Some(reason) = reason_for(&facts, *u, &cand.roles, eff) {
            previews.insert(*u, account.push_previews);
            rows.push(NewNotification {
                id: state.notify.ids.next().0,
                user_id: *u,
                kind: reason.as_str().into(),
            });
        }
    }
    if rows.is_empty() {
        return Ok(());
    }
    let created = store
        .add_notifications(m.id, m.channel_id, m.community_id, now, &rows)
        .await?;
    if created.is_empty() {
        // Handled before (a redelivery): nothing new to tell or push.
        return Ok(());
    }
    for n in &created {
        state
            .notify
            .metrics
            .created
            .with_label_values(&[n.kind.as_str()])
            .inc();
    }
    announce(state, &created, wire).await;
    let Some(ch) = store.channel(m.channel_id).await? else {
        return Ok(());
    };
    let title = push_title(m, &ch, rules.as_ref());
    push::queue(state, m, &created, &title, &previews).await;
    Ok(())
}

fn chat_err(e: hearth_chat::ChatError) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

/// A notification in the API's shape; `message` is the message (`null`
/// when it is gone or hidden).
pub fn wire(n: &NotificationRecord, message: Option<Value>) -> Value {
    json!({
        "id": n.id.to_string(),
        "kind": n.kind,
        "channel_id": n.channel_id.to_string(),
        "community_id": n.community_id.map(|c| c.to_string()),
        "message": message,
        "created_at": hearth_types::format_rfc3339(n.created_at),
        "read": n.read_at.is_some(),
    })
}

/// NOTIFICATION_CREATE to each user's sessions, in the log (appended here
/// and awaited: a big fan-out must not overflow the publisher's queue).
async fn announce(state: &AppState, created: &[NotificationRecord], message: &Value) {
    let users: Vec<UserId> = created.iter().map(|n| n.user_id).collect();
    let counts: HashMap<UserId, i64> = match state.store.unread_notification_counts(&users).await {
        Ok(v) => v.into_iter().collect(),
        Err(e) => {
            tracing::warn!(error = %e, "counting unread notifications");
            HashMap::new()
        }
    };
    let mut acks = Vec::with_capacity(created.len());
    for n in created {
        let mut d = wire(n, Some(message.clone()));
        d["unread_count"] = json!(counts.get(&n.user_id).copied().unwrap_or(1));
        let data = json!({ "t": "NOTIFICATION_CREATE", "d": d }).to_string();
        // The notification's id: a repeated append is the same log entry.
        let env = Envelope::json(
            format!("notification-{}", n.id),
            state.notify.source.clone(),
            "hearth.NOTIFICATION_CREATE",
            crate::events::Subject::User(n.user_id).to_string(),
            data,
        );
        match state.bus.append(env).await {
            Ok(ack) => acks.push(ack),
            Err(e) => tracing::warn!(error = %e, "announcing a notification"),
        }
    }
    for r in futures::future::join_all(acks).await {
        if let Err(e) = r {
            tracing::warn!(error = %e, "announcing a notification");
        }
    }
}

/// "ann in #general (Town)", "ann" (a DM), "ann in Weekend plans" (a
/// group DM with a name).
fn push_title(
    m: &MessageEvent,
    ch: &hearth_store::ChannelRecord,
    rules: Option<&hearth_chat::view::CommunityRules>,
) -> String {
    let who = m
        .author
        .display_name
        .clone()
        .unwrap_or_else(|| m.author.username.clone());
    match (rules, ch.name.as_deref()) {
        (Some(r), Some(name)) => format!("{who} in #{name} ({})", r.community().name),
        (None, Some(name)) => format!("{who} in {name}"),
        _ => who,
    }
}

impl Notify {
    /// A link into the web app.
    pub fn app_url(&self) -> &str {
        &self.base_url
    }

    pub(crate) fn payload(
        &self,
        n: &NotificationRecord,
        title: &str,
        content: &str,
        previews: bool,
    ) -> PushPayload {
        PushPayload {
            notification_id: n.id.to_string(),
            kind: n.kind.clone(),
            channel_id: n.channel_id.to_string(),
            community_id: n.community_id.map(|c| c.to_string()),
            title: title.to_string(),
            body: preview(content, previews),
            tag: n.channel_id.to_string(),
        }
    }
}

/// Unread notifications the user may still see (READY, the inbox).
pub async fn unread_count(state: &AppState, user: UserId) -> Result<i64, StoreError> {
    let mut total = 0;
    for (ch, c, n) in state.store.unread_notification_channels(user).await? {
        let visible = match c {
            Some(c) => state.chat.can_view_in(c, ch, user).await,
            None => state.chat.is_participant(ch, user).await,
        };
        if visible {
            total += n;
        }
    }
    Ok(total)
}
