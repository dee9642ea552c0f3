//! Core-NATS subscriptions behind the [`Subscription`] trait.
//!
//! A pump task drains the NATS subscriber promptly and `try_send`s into a
//! bounded channel (`NatsOptions::subscriber_capacity`). When the channel is
//! full the event is dropped and counted, never awaited, so one slow reader
//! cannot back up the connection (which would stall every other subscriber on
//! it and eventually make the server cut us off as a slow consumer). The
//! count is queued as `Delivery::Lagged(n)` as soon as there is room again,
//! so the reader sees it exactly where the gap is.

use async_trait::async_trait;
use futures::StreamExt;
use tokio::sync::mpsc;

use super::codec;
use crate::{Delivery, Envelope, Subscription};

/// How a bus-level prefix becomes a NATS subscription.
///
/// Bus prefixes are plain string prefixes of the subject (the in-process
/// bus's semantics). The longest token-aligned part goes to the server as
/// `<root>.<tokens>.>`; a trailing partial token is filtered client-side:
///
/// | prefix         | NATS subject            | client filter          |
/// |----------------|-------------------------|------------------------|
/// | `""`           | `hearth.>`              | none                   |
/// | `"chat."`      | `hearth.chat.>`         | none                   |
/// | `"chat.user.5"`| `hearth.chat.user.>`    | starts with `chat.user.5` (so also `chat.user.55`) |
///
/// Prefer prefixes ending in `.`: they are filtered by the server.
pub fn plan(root: &str, prefix: &str) -> (String, Option<String>) {
    let (aligned, rest) = match prefix.rfind('.') {
        Some(i) => (&prefix[..=i], &prefix[i + 1..]),
        None => ("", prefix),
    };
    let subject = format!("{root}.{aligned}>");
    let filter = (!rest.is_empty()).then(|| prefix.to_string());
    (subject, filter)
}

/// Whether `prefix` can be subscribed: no NATS wildcards, no whitespace, no
/// empty tokens (`a..b`, leading `.`).
pub fn valid_prefix(prefix: &str) -> bool {
    !prefix.contains(['*', '>', ' ', '\t', '\r', '\n'])
        && !prefix.starts_with('.')
        && !prefix.contains("..")
}

enum Item {
    Event(Envelope),
    Lagged(u64),
}

pub struct NatsSubscription {
    rx: mpsc::Receiver<Item>,
}

#[async_trait]
impl Subscription for NatsSubscription {
    async fn next(&mut self) -> Option<Delivery> {
        Some(match self.rx.recv().await? {
            Item::Event(e) => Delivery::Event(e),
            Item::Lagged(n) => Delivery::Lagged(n),
        })
    }
}

/// Starts the pump; it ends when the reader is dropped or the connection
/// closes (the reader then gets `None`).
pub fn spawn(
    root_len: usize,
    mut sub: async_nats::Subscriber,
    filter: Option<String>,
    capacity: usize,
) -> NatsSubscription {
    let (tx, rx) = mpsc::channel(capacity.max(1));
    tokio::spawn(async move {
        // Events dropped since the last lag report that got through.
        let mut dropped: u64 = 0;
        loop {
            let msg = tokio::select! {
                m = sub.next() => match m { Some(m) => m, None => break },
                () = tx.closed() => break,
                // Report a gap as soon as the reader makes room, even if no
                // further event arrives.
                permit = tx.reserve(), if dropped > 0 => match permit {
                    Ok(p) => { p.send(Item::Lagged(dropped)); dropped = 0; continue }
                    Err(_) => break,
                },
            };
            let event = match codec::from_message(msg.headers.as_ref(), msg.payload) {
                Ok(e) => e,
                Err(why) => {
                    tracing::warn!(subject = %msg.subject, %why, "dropping non-CloudEvent message");
                    continue;
                }
            };
            // The subject header is authoritative; the NATS subject minus the
            // root must agree or the message was not published by a bus.
            if msg.subject.get(root_len + 1..) != Some(event.subject.as_str()) {
                tracing::warn!(subject = %msg.subject, ce_subject = %event.subject, "subject mismatch; dropped");
                continue;
            }
            if filter
                .as_ref()
                .is_some_and(|f| !event.subject.starts_with(f.as_str()))
            {
                continue;
            }
            if dropped > 0 {
                match tx.try_send(Item::Lagged(dropped)) {
                    Ok(()) => dropped = 0,
                    Err(mpsc::error::TrySendError::Full(_)) => {}
                    Err(mpsc::error::TrySendError::Closed(_)) => break,
                }
            }
            match tx.try_send(Item::Event(event)) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(_)) => dropped += 1,
                Err(mpsc::error::TrySendError::Closed(_)) => break,
            }
        }
        let _ = sub.unsubscribe().await;
    });
    NatsSubscription { rx }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_map_to_subjects() {
        assert_eq!(plan("hearth", ""), ("hearth.>".into(), None));
        assert_eq!(plan("hearth", "chat."), ("hearth.chat.>".into(), None));
        assert_eq!(
            plan("hearth", "chat.user.5"),
            ("hearth.chat.user.>".into(), Some("chat.user.5".into()))
        );
        assert_eq!(plan("h", "chat"), ("h.>".into(), Some("chat".into())));
        assert!(valid_prefix("chat.community.1."));
        assert!(!valid_prefix("chat.*"));
        assert!(!valid_prefix(".chat"));
        assert!(!valid_prefix("a..b"));
    }
}
