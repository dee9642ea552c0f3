//! Mail (issue #13): the outbox and its worker, and the welcome consumer.
//!
//! Every mail is first a row in `mail_outbox` (`MailStore::enqueue_mail`,
//! idempotent by a dedupe key), so a request that mails answers at once
//! whether or not the mail server is up, and nothing is sent twice for one
//! key. Each node runs a worker that claims due mails (a claim is a
//! two-minute lease, so a node that dies mid-send leaves its mails to the
//! others), hands them to the [`Mailer`] and records the outcome:
//! - sent: done, bodies cleared (they may hold a token's link);
//! - a transient failure (4xx, no connection, a timeout): queued again
//!   after a growing wait (`hearth_mail::retry`: three retries, waits of
//!   `mail_retry_base_ms` × 1, 4, 16), then failed;
//! - failed or a permanent refusal (5xx): given up, counted in
//!   `hearth_mail_total`, written to the dead letters (consumer `mail`, the
//!   table the journal's consumers use, shared by every node) and published
//!   on `dlq.mail` (a cluster's dead-letter stream); a 5xx also marks the
//!   address (`users.email_bounced_at`): nothing more is mailed there until
//!   the user changes it.
//!
//! A node killed between the mail server's acceptance and the row's update
//! sends that mail again when its lease runs out: at least once, as close
//! to once as SMTP allows.
//!
//! The welcome mail rides the bus: registration appends `USER_CREATED` on
//! `chat.account.<user>` (in the log, never delivered to clients), and one
//! durable consumer per cluster (`mail-welcome`) queues the mail with the
//! key `welcome:<user>`, so a redelivered event queues nothing new.

use std::sync::{Arc, Weak};
use std::time::Duration;

use async_trait::async_trait;
use hearth_bus::journal::{ConsumerConfig, Handler};
use hearth_bus::{Bus, Envelope};
use hearth_mail::retry::{Next, after_failure};
use hearth_mail::{Mailer, OutgoingMail, SmtpMailer, Template};
use hearth_store::{
    DeadLetterRecord, JournalRecord, MailRecord, MailStatus, Store, StoreError, UserRecord,
};
use hearth_types::{IdGenerator, UserId, now_ms};
use parking_lot::Mutex;
use serde_json::json;
use tokio::sync::Notify;

use crate::config::Config;
use crate::metrics::Metrics;

/// The welcome consumer's name (its cursor and dead letters).
pub const WELCOME_CONSUMER: &str = "mail-welcome";
/// The dead letters' consumer name for mails given up on.
pub const DEAD_LETTERS: &str = "mail";
/// How long a worker holds a claimed mail before others may take it.
const CLAIM_MS: i64 = 120_000;
/// Mails claimed per round.
const BATCH: u32 = 16;
const SITE: &str = "Hearth";

pub struct Mail {
    store: Arc<dyn Store>,
    mailer: Arc<dyn Mailer>,
    ids: Arc<IdGenerator>,
    bus: Arc<dyn Bus>,
    metrics: Metrics,
    retry_base: Duration,
    /// How long a password-reset link works.
    pub reset_ttl: Duration,
    /// Where links in mails point (`public_url`, else the listen address).
    base_url: String,
    source: String,
    /// Wakes the worker when a mail is queued here.
    wake: Notify,
    consumer: Mutex<Option<hearth_bus::Consumer>>,
}

impl Mail {
    /// `None` when `smtp_url` is empty (mail off).
    pub fn new(
        cfg: &Config,
        store: Arc<dyn Store>,
        ids: Arc<IdGenerator>,
        bus: Arc<dyn Bus>,
        metrics: Metrics,
        node: u16,
    ) -> Result<Option<Arc<Mail>>, hearth_mail::MailError> {
        if cfg.smtp_url.0.is_empty() {
            return Ok(None);
        }
        let mailer = Arc::new(SmtpMailer::new(&cfg.smtp_url.0, &cfg.mail_from)?);
        Ok(Some(Arc::new(Mail::with_mailer(
            cfg, store, ids, bus, metrics, node, mailer,
        ))))
    }

    pub fn with_mailer(
        cfg: &Config,
        store: Arc<dyn Store>,
        ids: Arc<IdGenerator>,
        bus: Arc<dyn Bus>,
        metrics: Metrics,
        node: u16,
        mailer: Arc<dyn Mailer>,
    ) -> Mail {
        let base_url = if cfg.public_url.is_empty() {
            format!("http://{}", cfg.listen)
        } else {
            cfg.public_url.trim_end_matches('/').to_string()
        };
        Mail {
            store,
            mailer,
            ids,
            bus,
            metrics,
            retry_base: Duration::from_millis(cfg.mail_retry_base_ms),
            reset_ttl: Duration::from_secs(cfg.password_reset_ttl_secs),
            base_url,
            source: format!("hearth://node/{node}"),
            wake: Notify::new(),
            consumer: Mutex::new(None),
        }
    }

    /// A link into the web app carrying a token (`/verify-email?token=…`).
    pub fn link(&self, page: &str, token: &str) -> String {
        format!("{}/{page}?token={token}", self.base_url)
    }

    /// Queues `template` for `to` under `key` (once per key); true if queued now.
    #[tracing::instrument(skip(self, template, to), fields(kind = template.kind()))]
    pub async fn enqueue(
        &self,
        key: String,
        user: Option<UserId>,
        to: &str,
        template: Template,
    ) -> Result<bool, StoreError> {
        let r = template.render(SITE);
        let now = now_ms();
        let queued = self
            .store
            .enqueue_mail(&MailRecord {
                id: self.ids.next().0,
                dedupe_key: key,
                user_id: user,
                kind: template.kind().into(),
                recipient: to.to_string(),
                subject: r.subject,
                text_body: r.text,
                html_body: r.html,
                status: MailStatus::Queued,
                attempts: 0,
                next_attempt_at: now,
                last_error: None,
                created_at: now,
                done_at: None,
            })
            .await?;
        if queued {
            self.count(template.kind(), "queued");
            self.wake.notify_one();
        }
        Ok(queued)
    }

    fn count(&self, kind: &str, outcome: &str) {
        self.metrics.mail.with_label_values(&[kind, outcome]).inc();
    }

    /// Starts this node's worker and the cluster's welcome consumer.
    pub async fn start(self: &Arc<Self>) -> Result<(), String> {
        let consumer = self
            .bus
            .consume(
                ConsumerConfig::new(WELCOME_CONSUMER, &["chat.account."]),
                Arc::new(WelcomeConsumer(Arc::downgrade(self))),
            )
            .await
            .map_err(|e| e.to_string())?;
        *self.consumer.lock() = Some(consumer);
        spawn_worker(Arc::downgrade(self));
        Ok(())
    }

    /// One round: claims what is due and sends it; returns how many.
    async fn round(&self) -> Result<usize, StoreError> {
        let due = self.store.claim_mail(now_ms(), CLAIM_MS, BATCH).await?;
        let n = due.len();
        for m in due {
            self.deliver(m).await;
        }
        Ok(n)
    }

    #[tracing::instrument(skip_all, fields(mail = m.id, kind = %m.kind, attempt = m.attempts))]
    async fn deliver(&self, m: MailRecord) {
        let out = OutgoingMail {
            to: m.recipient.clone(),
            subject: m.subject.clone(),
            text: m.text_body.clone(),
            html: m.html_body.clone(),
        };
        let result = self.mailer.send(&out).await;
        let now = now_ms();
        let stored = match result {
            Ok(()) => {
                tracing::info!("mail sent");
                self.count(&m.kind, "sent");
                self.store.mail_sent(m.id, now).await
            }
            Err(e) => {
                let attempts = u32::try_from(m.attempts).unwrap_or(u32::MAX);
                let error: String = e.to_string().chars().take(500).collect();
                match after_failure(attempts, e.is_permanent(), self.retry_base) {
                    Next::RetryIn(wait) => {
                        tracing::warn!(%error, ?wait, "mail not sent; will retry");
                        self.count(&m.kind, "retried");
                        self.store
                            .mail_retry(m.id, now + wait.as_millis() as i64, &error)
                            .await
                    }
                    Next::Fail => {
                        tracing::warn!(%error, "mail failed after its retries");
                        self.give_up(&m, MailStatus::Failed, &error, now).await
                    }
                    Next::Bounce => {
                        tracing::warn!(%error, "mail refused for good; the address is marked");
                        if let Err(e) = self.store.mark_email_bounced(&m.recipient, now).await {
                            tracing::warn!(error = %e, "marking a bounced address");
                        }
                        self.give_up(&m, MailStatus::Bounced, &error, now).await
                    }
                }
            }
        };
        if let Err(e) = stored {
            // The claim runs out and the mail is tried again: at least once.
            tracing::warn!(error = %e, "recording a mail's outcome");
        }
    }

    async fn give_up(
        &self,
        m: &MailRecord,
        status: MailStatus,
        error: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        self.count(&m.kind, status.as_str());
        // What operators need, never the body (it may hold a token).
        let data = json!({
            "mail_id": m.id.to_string(),
            "kind": m.kind,
            "user_id": m.user_id.map(|u| u.to_string()),
            "status": status.as_str(),
            "attempts": m.attempts,
            "error": error,
        })
        .to_string();
        let id = format!("mail-{}", m.id);
        let ty = "hearth.MAIL_FAILED";
        self.store
            .add_dead_letter(&DeadLetterRecord {
                consumer: DEAD_LETTERS.into(),
                event: JournalRecord {
                    position: m.id,
                    id: id.clone(),
                    source: self.source.clone(),
                    ty: ty.into(),
                    subject: format!("dlq.{DEAD_LETTERS}"),
                    time: now,
                    content_type: "application/json".into(),
                    data: data.clone().into_bytes(),
                },
                error: error.to_string(),
                created_at: now,
            })
            .await?;
        let env = Envelope::json(
            id,
            self.source.clone(),
            ty,
            format!("dlq.{DEAD_LETTERS}"),
            data,
        );
        if let Err(e) = self.bus.publish(env).await {
            tracing::warn!(error = %e, "publishing a mail's dead letter");
        }
        self.store.mail_given_up(m.id, status, error, now).await
    }

    /// Whether mail may go to this user's address now.
    pub fn mailable(u: &UserRecord) -> Option<&str> {
        u.email.as_deref().filter(|_| u.email_bounced_at.is_none())
    }
}

/// The worker: a round whenever a mail is queued here, and at least every
/// poll interval (mails queued on other nodes, retries coming due). It
/// holds the service only for a round and one wait, so it ends within a
/// poll interval of the server being dropped.
fn spawn_worker(mail: Weak<Mail>) {
    tokio::spawn(async move {
        let mut failures = 0u32;
        loop {
            let Some(m) = mail.upgrade() else { return };
            let poll = m.retry_base.min(Duration::from_secs(1));
            // Registered before the round, so a mail queued during it is not missed.
            let notified = m.wake.notified();
            match m.round().await {
                Ok(0) => failures = 0,
                // More may be due right away.
                Ok(_) => continue,
                Err(e) => {
                    failures += 1;
                    if failures == 1 || failures.is_multiple_of(60) {
                        tracing::warn!(error = %e, "the mail outbox is unreachable");
                    }
                }
            }
            let _ = tokio::time::timeout(poll, notified).await;
        }
    });
}

/// The durable consumer that queues welcome mails.
struct WelcomeConsumer(Weak<Mail>);

#[async_trait]
impl Handler for WelcomeConsumer {
    async fn handle(&self, _position: u64, event: &Envelope) -> Result<(), String> {
        if event.ty != "hearth.USER_CREATED" {
            return Ok(());
        }
        let Some(mail) = self.0.upgrade() else {
            return Err("the server is stopping".into());
        };
        let user: Option<UserId> = serde_json::from_slice::<serde_json::Value>(&event.data)
            .ok()
            .and_then(|v| v["d"]["user_id"].as_str().and_then(|s| s.parse().ok()));
        let Some(user) = user else {
            // Retrying cannot fix a malformed event: logged and skipped.
            tracing::warn!(id = %event.id, "a USER_CREATED event that cannot be read");
            return Ok(());
        };
        let Some(u) = mail.store.user(user).await.map_err(|e| e.to_string())? else {
            return Ok(());
        };
        let Some(to) = Mail::mailable(&u) else {
            return Ok(());
        };
        mail.enqueue(
            format!("welcome:{}", u.id),
            Some(u.id),
            to,
            Template::Welcome {
                username: u.display_name.clone().unwrap_or_else(|| u.username.clone()),
                app_url: mail.base_url.clone(),
            },
        )
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
    }
}
