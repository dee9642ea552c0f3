//! Web Push: queueing pushes for away users, and the worker that sends
//! them (RFC 8030 requests, RFC 8291 bodies, RFC 8292 authorization).
//!
//! Pushes wait in `push_outbox`, one per subscription and channel: a newer
//! notification in the same channel replaces one not yet sent (and the
//! `Topic` header asks the push service to do the same), so a busy channel
//! is one notification on the phone, not fifty. Every node runs a worker;
//! a claim is a one-minute lease, so a node that dies mid-send leaves its
//! pushes to the others.
//!
//! What each answer means:
//! - 2xx: delivered, the row goes;
//! - 404 or 410: the browser unsubscribed; the subscription goes (and its
//!   queued pushes with it);
//! - 429, 5xx, a timeout or no connection: tried again after
//!   `push_retry_base_ms` × 1, 4, 16, then dropped and counted `failed`;
//! - anything else (400, 401, 403, 413, a redirect: never followed): the
//!   push service refuses it for good; dropped and counted `rejected`.

use std::collections::HashMap;
use std::sync::Weak;
use std::time::Duration;

use hearth_mail::retry::{Next, after_failure};
use hearth_notify::webpush::{SubscriptionKeys, ece};
use hearth_state::Status;
use hearth_store::{NotificationRecord, PushRecord};
use hearth_types::{UserId, now_ms};

use super::MessageEvent;
use crate::state::{AppState, Inner};

/// How long a worker holds a claimed push.
const CLAIM_MS: i64 = 60_000;
/// Pushes claimed (and sent concurrently) per round.
const BATCH: u32 = 32;
/// How long a push service keeps an undelivered push (seconds).
const TTL_SECS: u32 = 86_400;

/// Queues a push per subscription of each notified user who is away
/// (idle or offline: not `online`, and never `dnd`).
pub(super) async fn queue(
    state: &AppState,
    m: &MessageEvent,
    created: &[NotificationRecord],
    title: &str,
    previews: &HashMap<UserId, bool>,
) {
    // Read already: nothing to tell a phone.
    let created: Vec<&NotificationRecord> =
        created.iter().filter(|n| n.read_at.is_none()).collect();
    if created.is_empty() {
        return;
    }
    let users: Vec<i64> = created.iter().map(|n| n.user_id.0).collect();
    let statuses = match state.presence.get(&users).await {
        Ok(s) => s,
        Err(e) => {
            // Unknown presence: better no push than pushes to people at
            // their screens; the inbox has it either way.
            tracing::warn!(error = %e, "presence unknown; no pushes for this message");
            return;
        }
    };
    let away: HashMap<UserId, &NotificationRecord> = created
        .iter()
        .zip(statuses)
        .filter(|(_, s)| matches!(s, Status::Offline | Status::Idle))
        .map(|(n, _)| (n.user_id, *n))
        .collect();
    if away.is_empty() {
        return;
    }
    let ids: Vec<UserId> = away.keys().copied().collect();
    let subs = match state.store.push_subscriptions_of(&ids).await {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "reading push subscriptions");
            return;
        }
    };
    let notify = &state.notify;
    let now = now_ms();
    let mut queued = 0u64;
    for sub in subs {
        let Some(n) = away.get(&sub.user_id) else {
            continue;
        };
        let payload = notify.payload(
            n,
            title,
            &m.content,
            previews.get(&sub.user_id).copied().unwrap_or(true),
        );
        let Ok(json) = serde_json::to_string(&payload) else {
            continue;
        };
        match state
            .store
            .enqueue_push(notify.ids.next().0, sub.id, &payload.tag, &json, now)
            .await
        {
            Ok(()) => queued += 1,
            Err(e) => tracing::warn!(error = %e, "queueing a push"),
        }
    }
    if queued > 0 {
        notify
            .metrics
            .pushes
            .with_label_values(&["queued"])
            .inc_by(queued);
        notify.wake.notify_one();
    }
}

/// The worker: a round whenever a push is queued here, and at least every
/// second (pushes queued elsewhere, retries coming due).
pub(super) fn spawn_worker(state: Weak<Inner>) {
    tokio::spawn(async move {
        let mut failures = 0u32;
        loop {
            let Some(inner) = state.upgrade() else { return };
            let st = AppState(inner);
            // Held apart from the state so the wait does not keep the server alive.
            let notify = st.notify.clone();
            let notified = notify.wake.notified();
            match st.store.claim_push(now_ms(), CLAIM_MS, BATCH).await {
                Ok(due) if due.is_empty() => failures = 0,
                Ok(due) => {
                    failures = 0;
                    futures::future::join_all(due.into_iter().map(|p| deliver(&st, p))).await;
                    continue;
                }
                Err(e) => {
                    failures += 1;
                    if failures == 1 || failures.is_multiple_of(60) {
                        tracing::warn!(error = %e, "the push outbox is unreachable");
                    }
                }
            }
            let poll = Duration::from_millis(st.notify.cfg.push_retry_base_ms.clamp(50, 1_000));
            drop(st);
            let _ = tokio::time::timeout(poll, notified).await;
        }
    });
}

/// What came of one request.
#[derive(Debug)]
enum Outcome {
    Delivered,
    /// 404/410: the subscription is gone.
    Gone,
    /// Worth another try.
    Transient(String),
    /// Refused for good.
    Rejected(String),
}

#[tracing::instrument(skip_all, fields(push = p.id, subscription = p.subscription.id, attempt = p.attempts))]
async fn deliver(state: &AppState, p: PushRecord) {
    let outcome = send(state, &p).await;
    let notify = &state.notify;
    let count = |o: &str| notify.metrics.pushes.with_label_values(&[o]).inc();
    let stored = match outcome {
        Outcome::Delivered => {
            count("sent");
            state.store.push_done(p.id, p.version).await
        }
        Outcome::Gone => {
            tracing::info!("the browser unsubscribed; subscription removed");
            count("gone");
            state
                .store
                .delete_push_subscription(None, p.subscription.id)
                .await
                .map(|_| ())
        }
        Outcome::Rejected(why) => {
            tracing::warn!(%why, "push refused by the push service; dropped");
            count("rejected");
            state.store.push_done(p.id, p.version).await
        }
        Outcome::Transient(why) => {
            let attempts = u32::try_from(p.attempts).unwrap_or(u32::MAX);
            let base = Duration::from_millis(notify.cfg.push_retry_base_ms);
            match after_failure(attempts, false, base) {
                Next::RetryIn(wait) => {
                    tracing::info!(%why, ?wait, "push not delivered; will retry");
                    count("retried");
                    state
                        .store
                        .push_retry(p.id, p.version, now_ms() + wait.as_millis() as i64)
                        .await
                }
                Next::Fail | Next::Bounce => {
                    tracing::warn!(%why, "push failed after its retries; dropped");
                    count("failed");
                    state.store.push_done(p.id, p.version).await
                }
            }
        }
    };
    if let Err(e) = stored {
        // The claim runs out and the push is tried again.
        tracing::warn!(error = %e, "recording a push's outcome");
    }
}

async fn send(state: &AppState, p: &PushRecord) -> Outcome {
    let notify = &state.notify;
    let url =
        match crate::netguard::check_url(&p.subscription.endpoint, notify.cfg.push_allow_private) {
            Ok(u) => u,
            // Registered under other rules, or never valid: it cannot be sent to.
            Err(e) => return Outcome::Rejected(format!("endpoint {e}")),
        };
    let keys = match SubscriptionKeys::parse(&p.subscription.p256dh, &p.subscription.auth) {
        Ok(k) => k,
        Err(e) => return Outcome::Gone.tap_log(&e.to_string()),
    };
    let body = match ece::encrypt(&keys, p.payload.as_bytes()) {
        Ok(b) => b,
        Err(e) => return Outcome::Rejected(e.to_string()),
    };
    let audience = url.origin().ascii_serialization();
    let exp = now_ms() / 1000 + hearth_notify::webpush::vapid::TOKEN_LIFETIME_SECS;
    let auth = match notify.vapid.authorization(&audience, &notify.subject, exp) {
        Ok(a) => a,
        Err(e) => return Outcome::Transient(e.to_string()),
    };
    let urgency = if p.payload.contains("\"kind\":\"message\"") {
        "normal"
    } else {
        "high"
    };
    let sent = notify
        .http
        .post(url)
        .header("authorization", auth)
        .header("ttl", TTL_SECS.to_string())
        .header("topic", &p.topic)
        .header("urgency", urgency)
        .header("content-encoding", "aes128gcm")
        .header("content-type", "application/octet-stream")
        .body(body)
        .send()
        .await;
    match sent {
        Err(e) => Outcome::Transient(error_chain(&e)),
        Ok(r) => {
            let s = r.status().as_u16();
            match s {
                200..=299 => Outcome::Delivered,
                404 | 410 => Outcome::Gone,
                429 | 500..=599 => Outcome::Transient(format!("HTTP {s}")),
                _ => Outcome::Rejected(format!("HTTP {s}")),
            }
        }
    }
}

impl Outcome {
    /// A subscription with keys that cannot be used is as good as gone.
    fn tap_log(self, why: &str) -> Outcome {
        tracing::warn!(%why, "a push subscription's keys are unusable");
        self
    }
}

fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}
