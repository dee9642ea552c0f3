//! The READY payload: who you are and everything you can see.
//!
//! Bounded whatever the size of the user's communities: no member lists
//! (they arrive in pages, `request_members`), and statuses only of the
//! people in the user's DMs and of the members of small communities (at
//! most `gateway_presence_threshold` each).
//!
//! What each community shows comes from the node's shared views
//! ([`super::views`]): a community's rules are loaded once per node, and a
//! user's view once per node (READY reuses the one routing keeps current
//! when another session of the user is here). Each READY still reads the
//! user's memberships (for `me`), a few communities at a time.

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;

use futures::StreamExt;
use hearth_chat::view::CommunityRules;
use hearth_store::{CommunityRecord, MemberRecord};
use hearth_types::ChannelId;
use serde_json::{Value, json};

use super::hub::Session;
use super::views::Fresh;
use crate::http::wire;
use crate::state::AppState;

/// Communities loaded at once for one READY.
const PARALLEL: usize = 8;

struct Shown {
    community: CommunityRecord,
    me: MemberRecord,
    rules: Arc<CommunityRules>,
    visible: HashSet<ChannelId>,
}

/// One community as the user sees it, through the node's shared views.
/// `None`: no longer a member (or the community is gone).
async fn community(
    state: &AppState,
    s: &Session,
    c: CommunityRecord,
) -> Result<Option<Shown>, String> {
    let Some(me) = state
        .chat
        .membership(c.id, s.user)
        .await
        .map_err(|e| e.to_string())?
    else {
        return Ok(None);
    };
    let views = &state.hub.views;
    // The node's rules for the community, or a fresh load if it has none
    // (or dropped them between the check and the install).
    let mut known = views.has(c.id);
    let (rules, visible) = loop {
        let fresh = if known {
            None
        } else {
            match state
                .chat
                .community_rules(c.id)
                .await
                .map_err(|e| e.to_string())?
            {
                Some(rules) => Some(Fresh {
                    rules,
                    members: state
                        .chat
                        .member_ids(c.id)
                        .await
                        .map_err(|e| e.to_string())?,
                }),
                None => return Ok(None),
            }
        };
        match views.install(c.id, s.user, fresh, me.role_ids.clone()) {
            Some(view) => break view,
            None if known => known = false,
            None => return Ok(None),
        }
    };
    Ok(Some(Shown {
        community: c,
        me,
        rules,
        visible,
    }))
}

/// The user's communities as they see them, in the store's order.
async fn communities(state: &AppState, s: &Session) -> Result<Vec<Shown>, String> {
    let list = state
        .chat
        .communities(s.user)
        .await
        .map_err(|e| e.to_string())?;
    let shown: Vec<Result<Option<Shown>, String>> = futures::stream::iter(list)
        .map(|c| community(state, s, c))
        .buffered(PARALLEL)
        .collect()
        .await;
    Ok(shown
        .into_iter()
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .flatten()
        .collect())
}

/// Records in the session what it is routed for.
fn set_view(s: &Session, communities: &[Shown], dms: &[hearth_store::ChannelRecord]) {
    let mut g = s.inner.lock();
    g.communities = communities.iter().map(|x| x.community.id).collect();
    g.private = dms.iter().map(|c| c.id).collect();
}

/// Loads what the session can see (communities, their visible channels,
/// DMs) without building READY: for a session resumed from another node.
pub async fn load_view(state: &AppState, s: &Session) -> Result<(), String> {
    let shown = communities(state, s).await?;
    let dms = state.chat.dms(s.user).await.map_err(|e| e.to_string())?;
    let dm_channels: Vec<_> = dms.into_iter().map(|(c, _)| c).collect();
    set_view(s, &shown, &dm_channels);
    Ok(())
}

pub async fn build(state: &AppState, s: &Arc<Session>) -> Result<Value, String> {
    let user = state
        .accounts
        .user(s.user)
        .await
        .map_err(|e| e.to_string())?;
    let shown = communities(state, s).await?;
    let dms = state.chat.dms(s.user).await.map_err(|e| e.to_string())?;
    let dm_channels: Vec<_> = dms.iter().map(|(c, _)| c.clone()).collect();
    // Routing finds the session by what was just read, from now on. A
    // change made while the views were being read can slip between the
    // read and this point (a window of a few queries).
    set_view(s, &shown, &dm_channels);
    state.hub.reindex(s);
    // Statuses of the people in the user's DMs and small communities.
    let mut people: BTreeSet<i64> = dms
        .iter()
        .flat_map(|(_, r)| r.iter().map(|u| u.id.0))
        .collect();
    let mut out = Vec::with_capacity(shown.len());
    for x in &shown {
        if let Some(members) = state.hub.views.small_members(x.community.id) {
            people.extend(members.iter().map(|u| u.0));
        }
        let mut v =
            serde_json::to_value(wire::Community::from(&x.community)).map_err(|e| e.to_string())?;
        v["channels"] = json!(
            x.rules
                .channels()
                .iter()
                .filter(|ch| x.visible.contains(&ch.id))
                .map(wire::Channel::from)
                .collect::<Vec<_>>()
        );
        v["roles"] = json!(
            x.rules
                .roles()
                .iter()
                .map(wire::Role::from)
                .collect::<Vec<_>>()
        );
        v["me"] = json!(wire::Member::from(&x.me));
        v["large"] = json!(state.hub.views.is_large(x.community.id));
        out.push(v);
    }
    people.remove(&s.user.0);
    let read_states = state
        .chat
        .read_states(s.user)
        .await
        .map_err(|e| e.to_string())?;
    let notifications_unread = crate::notify::unread_count(state, s.user)
        .await
        .map_err(|e| e.to_string())?;
    let people: Vec<i64> = people.into_iter().collect();
    let presences = super::presence::of(state, &people).await;
    Ok(json!({
        "session_id": s.id,
        "user": wire::Me::from(&user),
        "communities": out,
        "dms": dms.iter().map(|(c, r)| wire::Channel::new(c, Some(r))).collect::<Vec<_>>(),
        "read_states": read_states.iter().map(wire::ReadState::from).collect::<Vec<_>>(),
        "notifications_unread": notifications_unread,
        "presences": presences.iter().map(|(u, st)| json!({ "user_id": u.to_string(), "status": st })).collect::<Vec<_>>(),
    }))
}
