//! `resume`: on the node that holds the session, from its own frames; on
//! any other node, from the session's shared record and this node's window
//! of the log. Anything that cannot be reproduced exactly answers
//! `invalid_session`, and the client catches up over REST instead: a
//! resume either delivers every missed frame in order or does not happen.

use std::sync::Arc;
use std::time::Duration;

use hearth_accounts::Principal;
use hearth_state::{Frame, SessionMeta};
use serde_json::json;

use super::hub::{Kind, Link, Session};
use crate::events::{EventKind, Subject};
use crate::state::AppState;

fn resumed_tail() -> Arc<str> {
    Arc::from("\"t\":\"RESUMED\",\"d\":{}}")
}

/// Resumes a session this node holds: the connection takes every frame
/// after `s` from the session's own. `false` if it cannot resume.
pub fn local(session: &Arc<Session>, s: u64, link: Arc<Link>) -> bool {
    {
        let g = session.inner.lock();
        let oldest = g.replay.front().map_or(g.seq + 1, |f| f.seq);
        if g.closed || s > g.sent || s + 1 < oldest {
            return false;
        }
    }
    session.attach(link, s);
    session.finish(Vec::new(), Some(resumed_tail()));
    true
}

/// How long a remote resume waits for this node's routing to reach the
/// last position the old node recorded for the session.
const ROUTED_WAIT: Duration = Duration::from_secs(8);

/// Takes over a session recorded by another node (alive or dead).
pub async fn remote(
    state: &AppState,
    p: &Principal,
    id: &str,
    s: u64,
    link: Arc<Link>,
) -> Option<Arc<Session>> {
    let recorder = state.hub.recorder.clone()?;
    let rec = match recorder.log.load(id).await {
        Ok(r) => r?,
        Err(e) => {
            tracing::warn!(error = %e, "loading a session record");
            return None;
        }
    };
    if rec.meta.user != p.user_id.0 || s > rec.last_seq() || s + 1 < rec.first_seq {
        return None;
    }
    let newest = rec
        .frames
        .iter()
        .filter_map(|f| match f {
            Frame::Log(p) | Frame::Marker(p) => Some(*p),
            Frame::Inline(_) => None,
        })
        .max()
        .unwrap_or(0);
    // This node routes the log behind the old one by however far it lags:
    // under load that can be seconds, and a session answered
    // `invalid_session` for it loses its live stream, so wait a while.
    if !state.hub.wait_routed(newest, ROUTED_WAIT).await {
        tracing::warn!(
            newest,
            routed = state.hub.routed(),
            "a remote resume waited too long for routing"
        );
        return None;
    }
    // What the client missed, rebuilt from the window; and where the old
    // node had got to in the log.
    let mut resend = Vec::new();
    let mut from_pos = 0;
    {
        let ring = state.hub.ring.lock();
        for (i, f) in rec.frames.iter().enumerate() {
            let seq = rec.first_seq + i as u64;
            match f {
                Frame::Log(pos) => {
                    from_pos = from_pos.max(*pos);
                    if seq > s {
                        let ev = ring.get(*pos)?;
                        if super::route::changes_view_of(&ev, p.user_id) {
                            return None;
                        }
                        resend.push((Kind::Log(*pos), ev.tail.clone()));
                    }
                }
                Frame::Marker(pos) => from_pos = from_pos.max(*pos),
                Frame::Inline(t) if seq > s => resend.push((Kind::Inline, Arc::from(t.as_str()))),
                Frame::Inline(_) => {}
            }
        }
    }
    let session = state
        .hub
        .new_session(id.to_string(), p.user_id, p.session_id);
    // Until routing adopts the session the hub does not know it: without
    // this the reaper could drop the views loaded next, and routing would
    // then hide every message from it.
    let _preparing = state.hub.preparing(p.user_id);
    if let Err(e) = super::ready::load_view(state, &session).await {
        tracing::warn!(error = %e, "loading a resumed session's view");
        return None;
    }
    // A new generation: the old node, if alive, can no longer write it.
    let meta = SessionMeta {
        user: p.user_id.0,
        auth_session: p.session_id.0,
    };
    let generation = recorder
        .log
        .open(id, &meta, s + 1, &[], recorder.ttl)
        .await
        .ok()?;
    {
        let mut g = session.inner.lock();
        g.seq = s;
        g.recorded = s;
        g.sent = s;
        g.generation = generation;
        g.record_first = s + 1;
    }
    if !state.hub.adopt(session.clone(), from_pos).await {
        return None;
    }
    session.attach(link, s);
    session.finish(resend, Some(resumed_tail()));
    state.publisher.publish_event(
        EventKind::SessionMoved,
        Subject::Moved(id.to_string()),
        json!({ "session_id": id }),
    );
    Some(session)
}
