//! The READY payload: who you are and everything you can see.

use serde_json::{Value, json};

use super::hub::Session;
use crate::http::wire;
use crate::state::AppState;

type Visible = Vec<(
    hearth_store::CommunityRecord,
    Vec<hearth_store::ChannelRecord>,
)>;

/// The user's communities, each with the channels they can VIEW.
async fn visible(state: &AppState, s: &Session) -> Result<Visible, String> {
    let mut out = Vec::new();
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
        out.push((c, channels));
    }
    Ok(out)
}

/// Records in the session what it can see (for routing).
fn set_view(s: &Session, communities: &Visible, dms: &[hearth_store::ChannelRecord]) {
    let mut g = s.inner.lock();
    g.communities = communities.iter().map(|(c, _)| c.id).collect();
    g.visible = communities
        .iter()
        .map(|(c, chs)| (c.id, chs.iter().map(|ch| ch.id).collect()))
        .collect();
    g.private = dms.iter().map(|c| c.id).collect();
}

/// Loads what the session can see (communities, their visible channels,
/// DMs) without building READY: for a session resumed from another node.
pub async fn load_view(state: &AppState, s: &Session) -> Result<(), String> {
    let communities = visible(state, s).await?;
    let dms = state.chat.dms(s.user).await.map_err(|e| e.to_string())?;
    let dm_channels: Vec<_> = dms.into_iter().map(|(c, _)| c).collect();
    set_view(s, &communities, &dm_channels);
    Ok(())
}

pub async fn build(state: &AppState, s: &std::sync::Arc<Session>) -> Result<Value, String> {
    let user = state
        .accounts
        .user(s.user)
        .await
        .map_err(|e| e.to_string())?;
    let mut communities = Vec::new();
    let view = visible(state, s).await?;
    let dms = state.chat.dms(s.user).await.map_err(|e| e.to_string())?;
    let dm_channels: Vec<_> = dms.iter().map(|(c, _)| c.clone()).collect();
    // Routing finds the session by what was just read, from now on. A
    // change made while the channels were being read can slip between the
    // read and this point (a window of a few queries, as before).
    set_view(s, &view, &dm_channels);
    state.hub.reindex(s);
    for (c, channels) in &view {
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
        let mut v = serde_json::to_value(wire::Community::from(c)).map_err(|e| e.to_string())?;
        v["channels"] = json!(channels.iter().map(wire::Channel::from).collect::<Vec<_>>());
        v["roles"] = json!(roles.iter().map(wire::Role::from).collect::<Vec<_>>());
        v["me"] = json!(wire::Member::from(&me));
        communities.push(v);
    }
    let read_states = state
        .chat
        .read_states(s.user)
        .await
        .map_err(|e| e.to_string())?;
    // No member lists: READY stays bounded whatever the size of the
    // communities (members arrive on request, in pages: `request_members`).
    // Statuses only of the people in the user's DMs.
    let mut people: Vec<i64> = dms
        .iter()
        .flat_map(|(_, r)| r.iter().map(|u| u.id.0))
        .filter(|u| *u != s.user.0)
        .collect();
    people.sort_unstable();
    people.dedup();
    let presences = super::presence::of(state, &people).await;
    Ok(json!({
        "session_id": s.id,
        "user": wire::Me::from(&user),
        "communities": communities,
        "dms": dms.iter().map(|(c, r)| wire::Channel::new(c, Some(r))).collect::<Vec<_>>(),
        "read_states": read_states.iter().map(wire::ReadState::from).collect::<Vec<_>>(),
        "presences": presences.iter().map(|(u, st)| json!({ "user_id": u.to_string(), "status": st })).collect::<Vec<_>>(),
    }))
}
