//! Voice states and moderators' actions on calls.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use hearth_chat::{ChatError, Permissions};
use hearth_types::{ChannelId, CommunityId, UserId};
use serde::Deserialize;
use utoipa::ToSchema;

use super::error::{ApiError, ApiResult};
use super::extract::{Auth, Body, path_id};
use super::wire::ErrorBody;
use crate::state::AppState;
use crate::voice::{Voice, VoiceState};

#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VoiceModerationRequest {
    /// Server mute (the member's audio is not forwarded).
    pub mute: Option<bool>,
    /// Server deafen (the member receives no audio).
    pub deaf: Option<bool>,
    /// Moves the member to this voice channel of the community (they need
    /// CONNECT there).
    pub channel_id: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/communities/{id}/voice-states", tag = "voice", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 200, body = [VoiceState], description = "who is in the voice channels the caller can view"), (status = 404, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<VoiceState>>> {
    let c: CommunityId = path_id("id", &id)?;
    state.chat.community_permissions(c, p.user_id).await?;
    let mut out = Vec::new();
    for s in state.voice.states_in(c).await {
        let Some(ch) = s
            .channel_id
            .as_deref()
            .and_then(|ch| ch.parse::<ChannelId>().ok())
        else {
            continue;
        };
        if state.chat.visible_channel(ch, p.user_id).await.is_ok() {
            out.push(s);
        }
    }
    Ok(Json(out))
}

/// The call `target` is in, within the community, as hosted here.
async fn moderated(
    state: &AppState,
    c: CommunityId,
    actor: UserId,
    target: UserId,
) -> ApiResult<()> {
    state
        .chat
        .may_moderate(c, actor, target, Permissions::MUTE_MEMBERS)
        .await?;
    Ok(())
}

#[utoipa::path(patch, path = "/api/v1/communities/{id}/voice-states/{user_id}", tag = "voice", security(("bearer" = [])),
    params(("id" = String, Path), ("user_id" = String, Path)), request_body = VoiceModerationRequest,
    responses((status = 204), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody, description = "MUTE_MEMBERS missing, or the member ranks at or above you"), (status = 404, body = ErrorBody, description = "not in a call of this community")))]
pub async fn update(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path((id, user)): Path<(String, String)>,
    Body(req): Body<VoiceModerationRequest>,
) -> ApiResult<StatusCode> {
    let c: CommunityId = path_id("id", &id)?;
    let target: UserId = path_id("user_id", &user)?;
    moderated(&state, c, p.user_id, target).await?;
    if let Some(dest) = req.channel_id.as_deref() {
        let dest: ChannelId = path_id("channel_id", dest)?;
        // The destination must be a voice channel of this community that
        // the mover can see and the member may connect to.
        let (ch, _) = state.chat.visible_channel(dest, p.user_id).await?;
        if ch.community_id != Some(c) || ch.kind != hearth_store::ChannelKind::Voice {
            return Err(ApiError::field(
                "channel_id",
                "a voice channel of this community",
            ));
        }
        let (_, theirs) = state
            .chat
            .visible_channel(dest, target)
            .await
            .map_err(|_| ChatError::Forbidden(Permissions::CONNECT))?;
        if !theirs.contains(Permissions::CONNECT) {
            return Err(ChatError::Forbidden(Permissions::CONNECT).into());
        }
        if !Voice::move_to(&state, c, target, dest).await {
            return Err(ChatError::NotFound.into());
        }
    }
    if (req.mute.is_some() || req.deaf.is_some())
        && !Voice::moderate(&state, c, target, req.mute, req.deaf).await
    {
        return Err(ChatError::NotFound.into());
    }
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(delete, path = "/api/v1/communities/{id}/voice-states/{user_id}", tag = "voice", security(("bearer" = [])),
    params(("id" = String, Path), ("user_id" = String, Path)),
    responses((status = 204, description = "disconnected from the call"), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody, description = "not in a call of this community")))]
pub async fn disconnect(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path((id, user)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let c: CommunityId = path_id("id", &id)?;
    let target: UserId = path_id("user_id", &user)?;
    moderated(&state, c, p.user_id, target).await?;
    if !Voice::disconnect(&state, c, target).await {
        return Err(ChatError::NotFound.into());
    }
    Ok(StatusCode::NO_CONTENT)
}

// The voice ops and dispatches of the gateway, published as schemas in the
// OpenAPI document (components) so clients can generate types for them; the
// gateway decodes them in `gateway/protocol.rs` and the SFU's own types.

/// Gateway op `voice_join` (`d`).
#[derive(ToSchema)]
#[allow(dead_code)] // a schema only
pub struct VoiceJoinOp {
    pub channel_id: String,
    pub self_mute: Option<bool>,
    pub self_deaf: Option<bool>,
}

/// Gateway op `voice_state` (`d`): absent flags stay as they are.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct VoiceStateOp {
    pub self_mute: Option<bool>,
    pub self_deaf: Option<bool>,
    pub self_video: Option<bool>,
    pub self_stream: Option<bool>,
}

/// A sending m-section of an offer and what it carries.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct VoiceTrackLabel {
    pub mid: String,
    /// `audio`, `camera` or `screen`.
    pub kind: String,
}

/// Gateway op `voice_signal` (`d`), and the SDP/candidate kinds of the
/// `VOICE_SIGNAL` dispatch.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct VoiceSignalOp {
    /// `offer`, `answer` or `candidate`.
    #[schema(rename = "type")]
    pub kind: String,
    pub sdp: Option<String>,
    /// Offers: labels for the sending m-sections.
    pub tracks: Option<Vec<VoiceTrackLabel>>,
    pub candidate: Option<String>,
    pub sdp_mid: Option<String>,
    pub sdp_mline_index: Option<u16>,
    pub username_fragment: Option<String>,
}

/// Gateway op `voice_layer` (`d`).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct VoiceLayerOp {
    pub user_id: String,
    /// `low`, `medium` or `high`.
    pub layer: String,
}

/// A STUN/TURN server for the call's peer connection.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct VoiceIceServer {
    pub urls: Vec<String>,
    pub username: String,
    pub credential: String,
}

/// Dispatch `VOICE_SERVER`: make a new peer connection and offer.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct VoiceServerDispatch {
    pub channel_id: String,
    pub community_id: String,
    pub ice_servers: Vec<VoiceIceServer>,
}
