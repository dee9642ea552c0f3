//! The email digest: unread mentions and DMs for users who stayed away.
//!
//! Every node looks, every minute (or sooner when the configured delay is
//! short), for users with unread notifications older than
//! `notify.digest_after_secs` that no mail has covered yet. A user who is
//! online now is skipped (they will see the inbox); the others get one
//! mail listing them, queued in the outbox with a key naming the newest
//! notification it covers, so two nodes finding the same user at once
//! queue one mail. The covered notifications are marked mailed either way
//! (also for users who turned digests off or have no address), so nobody
//! is mailed twice about one mention.

use std::sync::Weak;
use std::time::Duration;

use hearth_mail::{DigestItem, Template};
use hearth_state::Status;
use hearth_store::{ACCOUNT_SCOPE, StoreError};
use hearth_types::{UserId, now_ms};

use crate::state::{AppState, Inner};

/// Mentions listed in one mail (the rest are counted).
const LISTED: usize = 10;
/// Users handled per round.
const USERS_PER_ROUND: u32 = 100;

pub(super) fn spawn(state: Weak<Inner>) {
    tokio::spawn(async move {
        loop {
            let Some(inner) = state.upgrade() else { return };
            let st = AppState(inner);
            let after = st.notify.cfg.digest_after_secs;
            if after == 0 || st.mail.is_none() {
                return;
            }
            if let Err(e) = round(&st, after).await {
                tracing::warn!(error = %e, "email digest round");
            }
            drop(st);
            tokio::time::sleep(Duration::from_secs(after.clamp(1, 60))).await;
        }
    });
}

async fn round(state: &AppState, after_secs: u64) -> Result<(), StoreError> {
    let before = now_ms() - i64::try_from(after_secs.saturating_mul(1000)).unwrap_or(i64::MAX);
    let users = state.store.digest_due(before, USERS_PER_ROUND).await?;
    if users.is_empty() {
        return Ok(());
    }
    let ids: Vec<i64> = users.iter().map(|u| u.0).collect();
    let statuses = match state.presence.get(&ids).await {
        Ok(s) => s,
        Err(e) => {
            tracing::debug!(error = %e, "presence unknown; digests wait");
            return Ok(());
        }
    };
    for (user, status) in users.into_iter().zip(statuses) {
        if status == Status::Online {
            continue;
        }
        mail_one(state, user, before).await?;
    }
    Ok(())
}

#[tracing::instrument(skip(state, before))]
async fn mail_one(state: &AppState, user: UserId, before: i64) -> Result<(), StoreError> {
    let Some(mail) = &state.mail else {
        return Ok(());
    };
    let pending = state.store.undigested(user, before, 500).await?;
    let Some(newest) = pending.last().map(|n| n.id) else {
        return Ok(());
    };
    let covered: Vec<i64> = pending.iter().map(|n| n.id).collect();
    let account = state
        .store
        .notify_settings_of(&[user], &[ACCOUNT_SCOPE])
        .await?;
    let wants = super::Notify::account_settings(account.first()).email_digest;
    let u = state.store.user(user).await?;
    let to = u.as_ref().and_then(crate::mail::Mail::mailable);
    if let (true, Some(u), Some(to)) = (wants, &u, to) {
        let mut items = Vec::new();
        let mut visible = 0usize;
        for n in &pending {
            // Only what the user may still read.
            let Ok(v) = state.chat.message(n.channel_id, user, n.message_id).await else {
                continue;
            };
            visible += 1;
            if items.len() >= LISTED {
                continue;
            }
            items.push(DigestItem {
                headline: headline(state, &n.kind, &v).await,
                excerpt: hearth_notify::webpush::preview(&v.record.content, true),
            });
        }
        if visible > 0 {
            let more = visible - items.len();
            mail.enqueue(
                format!("digest:{}:{newest}", u.id),
                Some(u.id),
                to,
                Template::Digest {
                    username: u.display_name.clone().unwrap_or_else(|| u.username.clone()),
                    items,
                    more,
                    app_url: state.notify.app_url().to_string(),
                },
            )
            .await?;
        }
    }
    state
        .store
        .mark_notifications_emailed(user, &covered, now_ms())
        .await
}

/// "bob mentioned you in #general (Town)", "bob sent you a direct message".
async fn headline(state: &AppState, kind: &str, v: &hearth_chat::MessageView) -> String {
    let who = v
        .record
        .author
        .display_name
        .clone()
        .unwrap_or_else(|| v.record.author.username.clone());
    let what = match kind {
        "mention" => "mentioned you",
        "role_mention" => "mentioned a role of yours",
        "everyone" => "mentioned @everyone",
        "reply" => "replied to you",
        "dm" => return format!("{who} sent you a direct message"),
        _ => "wrote",
    };
    let place = match v.community_id {
        Some(c) => {
            let channel = state
                .store
                .channel(v.record.channel_id)
                .await
                .ok()
                .flatten()
                .and_then(|ch| ch.name);
            let community = state
                .store
                .community(c)
                .await
                .ok()
                .flatten()
                .map(|c| c.name);
            match (channel, community) {
                (Some(ch), Some(c)) => format!(" in #{ch} ({c})"),
                (Some(ch), None) => format!(" in #{ch}"),
                _ => String::new(),
            }
        }
        None => " in a conversation".into(),
    };
    format!("{who} {what}{place}")
}
