//! The READY payload: who you are and everything you can see.

use serde_json::{Value, json};

use super::hub::Session;
use crate::http::wire;
use crate::state::AppState;

/// Loads what the session can see (communities, their visible channels,
/// DMs) without building READY: for a session resumed from another node.
pub async fn load_view(state: &AppState, s: &Session) -> Result<(), String> {
    let mut communities = std::collections::HashSet::new();
    let mut visible = std::collections::HashMap::new();
    for c in state
        .chat
        .communities(s.user)
        .await
        .map_err(|e| e.to_string())?
    {
        let channels = state
            .chat
            .channels(c.id, s.user)
            .await
            .map_err(|e| e.to_string())?;
        communities.insert(c.id);
        visible.insert(c.id, channels.iter().map(|ch| ch.id).collect());
    }
    let dms = state.chat.dms(s.user).await.map_err(|e| e.to_string())?;
    let mut g = s.inner.lock();
    g.communities = communities;
    g.visible = visible;
    g.private = dms.iter().map(|(c, _)| c.id).collect();
    Ok(())
}

pub async fn build(state: &AppState, s: &std::sync::Arc<Session>) -> Result<Value, String> {
    let user = state
        .accounts
        .user(s.user)
        .await
        .map_err(|e| e.to_string())?;
    let mut communities = Vec::new();
    let mut members = std::collections::BTreeSet::new();
    for c in state
        .chat
        .communities(s.user)
        .await
        .map_err(|e| e.to_string())?
    {
        let channels = state
            .chat
            .channels(c.id, s.user)
            .await
            .map_err(|e| e.to_string())?;
        let roles = state
            .chat
            .roles(c.id, s.user)
            .await
            .map_err(|e| e.to_string())?;
        let me = state
            .chat
            .member(c.id, s.user, s.user)
            .await
            .map_err(|e| e.to_string())?;
        {
            let mut g = s.inner.lock();
            g.communities.insert(c.id);
            g.visible
                .insert(c.id, channels.iter().map(|ch| ch.id).collect());
        }
        let mut v = serde_json::to_value(wire::Community::from(&c)).map_err(|e| e.to_string())?;
        v["channels"] = json!(channels.iter().map(wire::Channel::from).collect::<Vec<_>>());
        v["roles"] = json!(roles.iter().map(wire::Role::from).collect::<Vec<_>>());
        v["me"] = json!(wire::Member::from(&me));
        for u in state
            .store
            .member_ids(c.id)
            .await
            .map_err(|e| e.to_string())?
        {
            members.insert(u.0);
        }
        communities.push(v);
    }
    let dms = state.chat.dms(s.user).await.map_err(|e| e.to_string())?;
    {
        let mut g = s.inner.lock();
        g.private.extend(dms.iter().map(|(c, _)| c.id));
    }
    // Routing finds the session by the communities and DMs just read.
    state.hub.reindex(s);
    let read_states = state
        .chat
        .read_states(s.user)
        .await
        .map_err(|e| e.to_string())?;
    let members: Vec<i64> = members.into_iter().collect();
    let presences = super::presence::of(state, &members).await;
    Ok(json!({
        "session_id": s.id,
        "user": wire::Me::from(&user),
        "communities": communities,
        "dms": dms.iter().map(|(c, r)| wire::Channel::new(c, Some(r))).collect::<Vec<_>>(),
        "read_states": read_states.iter().map(wire::ReadState::from).collect::<Vec<_>>(),
        "presences": presences.iter().map(|(u, st)| json!({ "user_id": u.to_string(), "status": st })).collect::<Vec<_>>(),
    }))
}
