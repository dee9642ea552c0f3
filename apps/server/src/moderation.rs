//! Moderation in the server: the audit log and automod, wired from the
//! pure pieces of `hearth-moderation` to the store, the bus and the chat
//! domain.
//!
//! **Audit log.** The chat domain announces each configuration or
//! moderation change as a [`ChatEvent::Audit`](hearth_chat::ChatEvent)
//! (actor, action, target, reason, the records before and after).
//! `events.rs` encodes it once ([`audit_payload`]) onto the log under
//! `chat.audit.<community>`, a subject the gateway keeps in its window but
//! never delivers. One durable consumer per cluster (`audit`, on the
//! embedded journal or a JetStream durable) turns each event into an
//! [`AuditEntry`] whose id is the event's id, with the changes diffed from
//! the two records, and stores it through [`StoreAuditLog`]
//! (`audit_log`, insert-if-absent: a redelivered event is stored once).
//! Entries older than `audit_retention_days` are pruned hourly.
//!
//! **Automod.** Each community's rules are stored as one JSON list of
//! [`RuleSpec`]s (`automod_rules`). [`Automod`] is the chat domain's
//! [`SendFilter`]: it keeps each community's compiled [`RuleSet`] (loaded on
//! first use, dropped when the rules change here or, through the
//! `internal.automod.<c>` nudge, on another node) and one [`FloodTracker`],
//! and refuses a message a rule blocks before anything is stored.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use hearth_bus::Envelope;
use hearth_bus::journal::{ConsumerConfig, Handler};
use hearth_chat::audit::{AuditDraft, AuditRecord};
use hearth_chat::{ChatError, Outgoing, Permissions, SendFilter};
use hearth_moderation::automod::Mentions as RuleMentions;
use hearth_moderation::{
    AuditAction, AuditEntry, AuditEntryId, AuditFilter, AuditStore, FloodTracker, MessageContext,
    ModerationError, RuleSet, RuleSpec, StoreError, TargetKind, Verdict,
};
use hearth_store::{AuditQuery, Store};
use hearth_types::{CommunityId, UserId, now_ms};
use parking_lot::Mutex;
use serde_json::{Value, json};

use crate::http::wire;

/// The audit-log consumer's name (its cursor and dead letters).
pub const AUDIT_CONSUMER: &str = "audit";

fn to_value<T: serde::Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

/// A record as the audit log shows it: the API's shape of the thing, without
/// fields that change by themselves (a channel's `last_message_id`).
fn record_json(r: &AuditRecord) -> Value {
    match r {
        AuditRecord::Role(r) => to_value(&wire::Role::from(r)),
        AuditRecord::Channel(c) => {
            let mut v = to_value(&wire::Channel::from(c));
            if let Some(o) = v.as_object_mut() {
                o.remove("last_message_id");
            }
            v
        }
        AuditRecord::Community(c) => to_value(&wire::Community::from(c)),
        AuditRecord::Overwrite(o) => to_value(&wire::Overwrite::from(o)),
        AuditRecord::Invite(i) => to_value(&wire::Invite::from(i)),
        AuditRecord::MemberRoles(roles) => {
            json!({ "roles": roles.iter().map(ToString::to_string).collect::<Vec<_>>() })
        }
        AuditRecord::Timeout(until) => {
            json!({ "timed_out_until": until.map(hearth_types::format_rfc3339) })
        }
        AuditRecord::Message {
            author_id,
            channel_id,
        } => json!({ "author_id": author_id.to_string(), "channel_id": channel_id.to_string() }),
        AuditRecord::Messages { channel_id, count } => {
            json!({ "channel_id": channel_id.to_string(), "count": count })
        }
    }
}

/// The `d` of an `AUDIT_LOG_ENTRY` event on the log.
pub fn audit_payload(d: &AuditDraft) -> Value {
    json!({
        "community_id": d.community_id.to_string(),
        "actor_id": d.actor.to_string(),
        "action": d.action.as_str(),
        "target_kind": d.target_kind.as_str(),
        "target_id": d.target_id.map(|t| t.to_string()),
        "reason": d.reason,
        "before": d.before.as_ref().map(record_json),
        "after": d.after.as_ref().map(record_json),
        "at": d.at_ms,
    })
}

fn opt_id(v: &Value) -> Option<i64> {
    v.as_str().and_then(|s| s.parse().ok())
}

/// The entry an `AUDIT_LOG_ENTRY` event records (its id is the event's).
pub fn entry_from_event(event: &Envelope) -> Result<AuditEntry, String> {
    let id: i64 = event
        .id
        .parse()
        .map_err(|_| format!("event id {:?} is not a number", event.id))?;
    let v: Value = serde_json::from_slice(&event.data).map_err(|e| e.to_string())?;
    let d = &v["d"];
    let action: AuditAction = d["action"]
        .as_str()
        .unwrap_or_default()
        .parse()
        .map_err(|e: ModerationError| e.to_string())?;
    let target_kind: TargetKind = d["target_kind"]
        .as_str()
        .unwrap_or_default()
        .parse()
        .map_err(|e: ModerationError| e.to_string())?;
    let changes = hearth_moderation::audit::diff(&d["before"], &d["after"]);
    let entry = AuditEntry {
        id: AuditEntryId(id),
        community_id: opt_id(&d["community_id"]).map(CommunityId),
        actor_id: opt_id(&d["actor_id"]).map(UserId),
        action,
        target_kind,
        target_id: opt_id(&d["target_id"]),
        reason: None,
        changes,
        created_at: d["at"].as_i64().unwrap_or(event.time),
    };
    Ok(entry.with_reason(d["reason"].as_str()))
}

/// [`AuditStore`] over the database's `audit_log`.
pub struct StoreAuditLog(pub Arc<dyn Store>);

fn store_err(e: hearth_store::StoreError) -> StoreError {
    StoreError::new(e)
}

fn audit_record(e: &AuditEntry) -> Result<hearth_store::AuditRecord, StoreError> {
    Ok(hearth_store::AuditRecord {
        id: e.id.0,
        community_id: e.community_id,
        actor_id: e.actor_id,
        action: e.action.as_str().to_string(),
        target_kind: e.target_kind.as_str().to_string(),
        target_id: e.target_id,
        reason: e.reason.clone(),
        changes: serde_json::to_string(&e.changes).map_err(StoreError::new)?,
        created_at: e.created_at,
    })
}

#[async_trait]
impl AuditStore for StoreAuditLog {
    async fn record(&self, e: &AuditEntry) -> Result<bool, StoreError> {
        self.0
            .insert_audit(&audit_record(e)?)
            .await
            .map_err(store_err)
    }

    async fn record_many(&self, entries: &[AuditEntry]) -> Result<u64, StoreError> {
        let records = entries
            .iter()
            .map(audit_record)
            .collect::<Result<Vec<_>, _>>()?;
        self.0.insert_audits(&records).await.map_err(store_err)
    }

    async fn list(&self, f: &AuditFilter, limit: usize) -> Result<Vec<AuditEntry>, StoreError> {
        let q = AuditQuery {
            community_id: f.community_id,
            actor_id: f.actor_id,
            action: f.action.map(|a| a.as_str().to_string()),
            target_id: f.target_id,
            before: f.before.map(|b| b.0),
            after: f.after.map(|a| a.0),
        };
        let limit = limit.clamp(1, hearth_moderation::audit::MAX_PAGE) as u32;
        let rows = self.0.audit_entries(&q, limit).await.map_err(store_err)?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            // A row written by a newer binary with names this one does not
            // know is skipped rather than failing the page.
            let (Ok(action), Ok(target_kind)) = (r.action.parse(), r.target_kind.parse()) else {
                continue;
            };
            out.push(AuditEntry {
                id: AuditEntryId(r.id),
                community_id: r.community_id,
                actor_id: r.actor_id,
                action,
                target_kind,
                target_id: r.target_id,
                reason: r.reason,
                changes: serde_json::from_str(&r.changes).unwrap_or_default(),
                created_at: r.created_at,
            });
        }
        Ok(out)
    }
}

/// The durable consumer's handler: one entry per audit event, once.
pub struct AuditConsumer {
    pub log: Arc<dyn AuditStore>,
}

#[async_trait]
impl Handler for AuditConsumer {
    async fn handle(&self, _position: u64, event: &Envelope) -> Result<(), String> {
        if !event.subject.starts_with("chat.audit.") {
            return Ok(());
        }
        let entry = match entry_from_event(event) {
            Ok(e) => e,
            Err(e) => {
                // Retrying cannot fix a malformed event: logged and skipped.
                tracing::warn!(id = %event.id, error = %e, "an audit event that cannot be read");
                return Ok(());
            }
        };
        self.log
            .record(&entry)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    fn batched(&self) -> bool {
        true
    }

    /// A batch in one transaction: on Postgres a commit per entry capped
    /// the consumer well below a thousand moderation actions a second.
    async fn handle_batch(&self, events: &[(u64, &Envelope)]) -> Result<(), String> {
        let mut entries = Vec::with_capacity(events.len());
        for (_, event) in events {
            if !event.subject.starts_with("chat.audit.") {
                continue;
            }
            match entry_from_event(event) {
                Ok(e) => entries.push(e),
                Err(e) => {
                    tracing::warn!(id = %event.id, error = %e, "an audit event that cannot be read")
                }
            }
        }
        if entries.is_empty() {
            return Ok(());
        }
        self.log
            .record_many(&entries)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}

/// Everything moderation keeps for the life of the server.
pub struct Moderation {
    pub audit: Arc<dyn AuditStore>,
    pub automod: Arc<Automod>,
    /// The running audit consumer (dropping it stops it).
    consumer: Mutex<Option<hearth_bus::Consumer>>,
}

impl Moderation {
    pub fn new(store: Arc<dyn Store>, publisher: crate::events::Publisher) -> Moderation {
        Moderation {
            audit: Arc::new(StoreAuditLog(store.clone())),
            automod: Arc::new(Automod::new(store, Some(publisher))),
            consumer: Mutex::new(None),
        }
    }

    /// Starts the audit consumer, the retention task and the automod nudges.
    pub async fn start(state: &crate::state::AppState) -> Result<(), String> {
        let handler = Arc::new(AuditConsumer {
            log: state.moderation.audit.clone(),
        });
        let consumer = state
            .bus
            .consume(
                ConsumerConfig::new(AUDIT_CONSUMER, &["chat.audit."]),
                handler,
            )
            .await
            .map_err(|e| e.to_string())?;
        *state.moderation.consumer.lock() = Some(consumer);
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        *state.moderation.automod.followups.lock() = Some(tx);
        spawn_followups(Arc::downgrade(&state.0), rx);
        spawn_retention(Arc::downgrade(&state.0), state.cfg.audit_retention_days);
        let mut sub = state
            .bus
            .subscribe("internal.automod.")
            .await
            .map_err(|e| e.to_string())?;
        let automod = Arc::downgrade(&state.moderation.automod);
        tokio::spawn(async move {
            while let Some(d) = sub.next().await {
                let Some(automod) = automod.upgrade() else {
                    return;
                };
                match d {
                    hearth_bus::Delivery::Event(env) | hearth_bus::Delivery::Logged(_, env) => {
                        if let Ok(crate::events::Subject::Automod(c)) =
                            env.subject.parse::<crate::events::Subject>()
                        {
                            automod.forget(c);
                        }
                    }
                    // Nudges were lost: every cached rule set may be stale.
                    hearth_bus::Delivery::Lagged(_) => automod.forget_all(),
                }
            }
        });
        Ok(())
    }
}

/// Prunes entries older than `days` every hour while the server lives.
fn spawn_retention(state: std::sync::Weak<crate::state::Inner>, days: u64) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(3600));
        loop {
            tick.tick().await;
            let Some(state) = state.upgrade() else { return };
            let before = now_ms() - i64::try_from(days).unwrap_or(i64::MAX / 2) * 86_400_000;
            match state.store.prune_audit(before).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(entries = n, "pruned the audit log"),
                Err(e) => tracing::warn!(error = %e, "pruning the audit log"),
            }
        }
    });
}

/// Most (community, author) pairs the flood tracker remembers.
const FLOOD_AUTHORS: usize = 100_000;

/// What a verdict leaves to do after the send path answered.
pub struct FollowUp {
    pub community_id: CommunityId,
    pub channel_id: hearth_types::ChannelId,
    pub author: UserId,
    pub verdict: Verdict,
    /// The message's text, quoted in a flag's notice (empty without flags).
    pub content: String,
    /// Whether the message was blocked (a flag's notice says so).
    pub blocked: bool,
}

/// Automod on the send path: compiled rule sets per community, cached.
pub struct Automod {
    store: Arc<dyn Store>,
    sets: Mutex<HashMap<CommunityId, Arc<RuleSet>>>,
    flood: FloodTracker,
    /// Announces automod's own audit entries (blocks, flags, timeouts).
    publisher: Option<crate::events::Publisher>,
    /// Where follow-ups go (set when the server starts).
    followups: Mutex<Option<tokio::sync::mpsc::UnboundedSender<FollowUp>>>,
}

impl Automod {
    pub fn new(store: Arc<dyn Store>, publisher: Option<crate::events::Publisher>) -> Automod {
        Automod {
            store,
            sets: Mutex::new(HashMap::new()),
            flood: FloodTracker::new(FLOOD_AUTHORS),
            publisher,
            followups: Mutex::new(None),
        }
    }

    /// An audit entry of automod's own (no actor: the rule is the reason).
    fn audit(
        &self,
        c: CommunityId,
        action: AuditAction,
        author: UserId,
        rule: &hearth_moderation::RuleRef,
        after: Value,
    ) {
        let Some(p) = &self.publisher else { return };
        p.publish_event(
            crate::events::EventKind::AuditLogEntry,
            crate::events::Subject::Audit(c),
            json!({
                "community_id": c.to_string(),
                "actor_id": null,
                "action": action.as_str(),
                "target_kind": "user",
                "target_id": author.to_string(),
                "reason": format!("automod {rule}"),
                "before": null,
                "after": after,
                "at": now_ms(),
            }),
        );
    }

    /// A community's rules as stored (none: empty).
    pub async fn specs(&self, c: CommunityId) -> Result<Vec<RuleSpec>, hearth_store::StoreError> {
        Ok(match self.store.automod_rules(c).await? {
            Some(text) => serde_json::from_str(&text).unwrap_or_else(|e| {
                tracing::error!(community = %c, error = %e, "stored automod rules do not parse");
                Vec::new()
            }),
            None => Vec::new(),
        })
    }

    /// Validates and stores a community's rules, and uses them at once here.
    pub async fn replace(&self, c: CommunityId, specs: &[RuleSpec]) -> Result<(), ReplaceError> {
        let set = RuleSet::compile(specs).map_err(ReplaceError::Invalid)?;
        let text =
            serde_json::to_string(specs).map_err(|e| ReplaceError::Internal(e.to_string()))?;
        self.store
            .set_automod_rules(c, &text, now_ms())
            .await
            .map_err(ReplaceError::Store)?;
        self.sets.lock().insert(c, Arc::new(set));
        Ok(())
    }

    /// The community's compiled rules (loaded and compiled on first use).
    pub async fn rules(&self, c: CommunityId) -> Result<Arc<RuleSet>, hearth_store::StoreError> {
        if let Some(s) = self.sets.lock().get(&c) {
            return Ok(s.clone());
        }
        let specs = self.specs(c).await?;
        let set = Arc::new(RuleSet::compile(&specs).unwrap_or_else(|e| {
            tracing::error!(community = %c, error = %e, "stored automod rules do not compile");
            RuleSet::empty()
        }));
        let mut sets = self.sets.lock();
        if sets.len() > 10_000 {
            sets.clear();
        }
        sets.insert(c, set.clone());
        Ok(set)
    }

    pub fn forget(&self, c: CommunityId) {
        self.sets.lock().remove(&c);
    }

    pub fn forget_all(&self) {
        self.sets.lock().clear();
    }

    /// Checks a message against the community's rules.
    pub async fn verdict(
        &self,
        set: &RuleSet,
        msg: &Outgoing<'_>,
        record_flood: bool,
    ) -> Result<Verdict, hearth_store::StoreError> {
        let (roles, joined) = if set.needs_member() {
            self.store
                .member(msg.community_id, msg.author.id)
                .await?
                .map(|m| (m.role_ids, m.joined_at))
                .unwrap_or_default()
        } else {
            Default::default()
        };
        let ctx = MessageContext {
            community_id: msg.community_id,
            channel_id: msg.channel_id,
            author_id: msg.author.id,
            author_roles: &roles,
            content: msg.content,
            mentions: RuleMentions {
                users: &msg.mentions.users,
                roles: &msg.mentions.roles,
                everyone: msg.mentions.everyone,
            },
            account_created_at: msg.author.created_at,
            member_joined_at: joined,
            now: now_ms(),
        };
        if record_flood {
            Ok(set.check(&ctx, &self.flood))
        } else {
            // A dry run must not count towards the author's flood state.
            Ok(set.check(&ctx, &FloodTracker::new(1)))
        }
    }
}

#[derive(Debug)]
pub enum ReplaceError {
    Invalid(ModerationError),
    Store(hearth_store::StoreError),
    Internal(String),
}

#[async_trait]
impl SendFilter for Automod {
    async fn check(&self, msg: &Outgoing<'_>) -> Result<(), ChatError> {
        // Like Discord: members who manage the community are not checked.
        if msg.permissions.contains(Permissions::MANAGE_COMMUNITY) {
            return Ok(());
        }
        let set = self.rules(msg.community_id).await?;
        if set.is_empty() {
            return Ok(());
        }
        let verdict = self.verdict(&set, msg, true).await?;
        if verdict.has_followups() {
            let followup = FollowUp {
                community_id: msg.community_id,
                channel_id: msg.channel_id,
                author: msg.author.id,
                verdict: verdict.clone(),
                content: if verdict.flags.is_empty() {
                    String::new()
                } else {
                    msg.content.to_string()
                },
                blocked: verdict.blocked_by.is_some(),
            };
            if let Some(tx) = self.followups.lock().as_ref() {
                let _ = tx.send(followup);
            }
        }
        if let Some(rule) = verdict.blocked_by {
            self.audit(
                msg.community_id,
                AuditAction::AutomodBlock,
                msg.author.id,
                &rule,
                json!({ "channel_id": msg.channel_id.to_string(), "rule_id": rule.id.to_string() }),
            );
            return Err(ChatError::Blocked {
                rule_id: rule.id.0,
                rule_name: rule.name.to_string(),
            });
        }
        Ok(())
    }
}

/// Carries out verdicts' follow-ups, one at a time, while the server lives:
/// a timeout (the longest asked for, never shortening a longer one), the
/// deletion of the author's recent messages, and flags, which are written
/// to the audit log (`automod_flag`) for the moderators.
fn spawn_followups(
    state: std::sync::Weak<crate::state::Inner>,
    mut rx: tokio::sync::mpsc::UnboundedReceiver<FollowUp>,
) {
    tokio::spawn(async move {
        while let Some(f) = rx.recv().await {
            let Some(state) = state.upgrade() else { return };
            if let Err(e) = followup(&state, &f).await {
                tracing::warn!(community = %f.community_id, author = %f.author, error = %e, "an automod follow-up failed");
            }
        }
    });
}

/// The username of the account automod's notices are posted as: with a
/// `-`, which sign-up refuses, so nobody can pass for it.
pub const AUTOMOD_USERNAME: &str = "hearth-automod";

/// The account automod posts as, made on first use (by whichever node gets
/// there first). Nobody can sign in as it: its password hash starts with
/// `!`, which no password matches.
async fn automod_account(state: &crate::state::Inner) -> Result<hearth_store::UserRecord, String> {
    if let Some(u) = state
        .store
        .user_by_login(AUTOMOD_USERNAME)
        .await
        .map_err(|e| e.to_string())?
    {
        return Ok(u);
    }
    let u = hearth_store::UserRecord {
        id: UserId(state.publisher.next_id()),
        username: AUTOMOD_USERNAME.to_string(),
        email: None,
        display_name: Some("Automod".to_string()),
        avatar_id: None,
        password_hash: "!system".to_string(),
        is_admin: false,
        plan: "free".to_string(),
        totp_secret: None,
        allow_dms_from: hearth_store::DmPolicy::Nobody,
        created_at: now_ms(),
        email_verified_at: None,
        email_bounced_at: None,
    };
    if let Err(e) = state.store.create_user(&u).await {
        // Another node made it a moment ago.
        return match state.store.user_by_login(AUTOMOD_USERNAME).await {
            Ok(Some(u)) => Ok(u),
            _ => Err(e.to_string()),
        };
    }
    Ok(u)
}

/// What a flag posts in the moderators' channel: who, where, which rule,
/// and the message quoted (cut at 1,000 characters).
fn flag_notice(f: &FollowUp, rule: &str) -> String {
    let mut quoted: String = f.content.chars().take(1000).collect();
    if quoted.len() < f.content.len() {
        quoted.push('…');
    }
    let quoted = quoted
        .lines()
        .map(|l| format!("> {l}"))
        .collect::<Vec<_>>()
        .join("\n");
    format!(
        "Automod flagged a message from <@{}> in <#{}> (rule \"{rule}\"){}:\n{quoted}",
        f.author,
        f.channel_id,
        if f.blocked { "; it was blocked" } else { "" }
    )
}

async fn followup(state: &crate::state::Inner, f: &FollowUp) -> Result<(), String> {
    use hearth_chat::EventSink as _;
    let automod = &state.moderation.automod;
    let c = f.community_id;
    for flag in &f.verdict.flags {
        automod.audit(
            c,
            AuditAction::AutomodFlag,
            f.author,
            &flag.rule,
            json!({ "channel_id": f.channel_id.to_string(), "flag_channel_id": flag.channel_id.to_string() }),
        );
        let notice = flag_notice(f, &flag.rule.name);
        let posted = match automod_account(state).await {
            Ok(system) => state
                .chat
                .post_notice(c, flag.channel_id, &system, &notice)
                .await
                .map_err(|e| e.to_string()),
            Err(e) => Err(e),
        };
        if let Err(e) = posted {
            // The audit entry stands; the channel may be gone since.
            tracing::warn!(community = %c, channel = %flag.channel_id, error = %e, "posting an automod flag");
        }
    }
    if let (Some(secs), Some(t)) = (f.verdict.timeout_secs(), f.verdict.timeouts.first()) {
        let until = now_ms() + i64::from(secs) * 1000;
        let member = state
            .store
            .member(c, f.author)
            .await
            .map_err(|e| e.to_string())?;
        if let Some(m) = member
            && m.timed_out_until.is_none_or(|u| u < until)
        {
            let patch = hearth_store::MemberPatch {
                nickname: None,
                timed_out_until: Some(Some(until)),
            };
            if let Some(m) = state
                .store
                .update_member(c, f.author, &patch)
                .await
                .map_err(|e| e.to_string())?
            {
                state.chat.invalidate_community(c);
                state
                    .publisher
                    .emit(hearth_chat::ChatEvent::PermissionsChanged { community_id: c });
                state
                    .publisher
                    .emit(hearth_chat::ChatEvent::MemberUpdate(m));
                automod.audit(
                    c,
                    AuditAction::AutomodTimeout,
                    f.author,
                    &t.rule,
                    json!({ "timed_out_until": hearth_types::format_rfc3339(until) }),
                );
            }
        }
    }
    if let (Some(secs), Some(d)) = (f.verdict.delete_secs(), f.verdict.deletes.first()) {
        let n = state
            .chat
            .delete_recent(c, f.author, secs)
            .await
            .map_err(|e| e.to_string())?;
        automod.audit(
            c,
            AuditAction::AutomodDelete,
            f.author,
            &d.rule,
            json!({ "deleted": n }),
        );
    }
    Ok(())
}
