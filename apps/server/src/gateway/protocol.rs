//! The gateway's wire protocol: ops, close codes, limits and frame decoding.
//! Pure functions, so the decoder can be tested (and fuzzed) without sockets.

use hearth_types::{ChannelId, CommunityId, UserId};
use serde::Deserialize;
use serde_json::Value;

/// Close codes from the contract.
pub mod close {
    pub const UNKNOWN_ERROR: u16 = 4000;
    pub const UNKNOWN_OP: u16 = 4001;
    pub const DECODE_ERROR: u16 = 4002;
    pub const NOT_AUTHENTICATED: u16 = 4003;
    pub const AUTHENTICATION_FAILED: u16 = 4004;
    pub const ALREADY_AUTHENTICATED: u16 = 4005;
    pub const INVALID_SEQUENCE: u16 = 4007;
    pub const RATE_LIMITED: u16 = 4008;
    pub const SESSION_TIMED_OUT: u16 = 4009;
    pub const SESSION_REVOKED: u16 = 4010;
    pub const MESSAGE_TOO_BIG: u16 = 1009;
    /// "Service restart" (RFC 6455's registry): sent after the `reconnect`
    /// op when the node drains; the session resumes on another node.
    pub const RECONNECT: u16 = 1012;
}

/// Largest client frame accepted; larger closes with 1009.
pub const MAX_FRAME_BYTES: usize = 64 * 1024;
/// Client frames allowed per rolling minute; more closes with 4008.
pub const MAX_FRAMES_PER_MINUTE: usize = 120;

#[derive(Debug, PartialEq)]
pub enum ClientOp {
    Heartbeat {
        s: Option<u64>,
    },
    Identify {
        token: String,
    },
    Resume {
        token: String,
        session_id: String,
        s: u64,
    },
    PresenceUpdate {
        status: Presence,
    },
    /// A page of a community's members (answered by `MEMBERS_CHUNK`).
    RequestMembers {
        community_id: CommunityId,
        after: Option<UserId>,
        limit: u32,
    },
    /// The users whose presence the client shows (replaces the last list).
    SubscribePresence {
        user_ids: Vec<UserId>,
    },
    /// Joins a voice channel (leaving any other one).
    VoiceJoin {
        channel_id: ChannelId,
        self_mute: bool,
        self_deaf: bool,
    },
    VoiceLeave,
    /// The user's own voice flags; absent ones stay.
    VoiceState(VoiceFlags),
    /// SDP and ICE for the call's peer connection.
    VoiceSignal(hearth_voice::Signal),
    /// The highest simulcast layer wanted of a user's video (thumbnail or spotlight).
    VoiceLayer {
        user_id: UserId,
        layer: hearth_voice::Layer,
    },
}

/// What `voice_state` may change.
#[derive(Debug, Default, PartialEq, Eq, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VoiceFlags {
    pub self_mute: Option<bool>,
    pub self_deaf: Option<bool>,
    pub self_video: Option<bool>,
    pub self_stream: Option<bool>,
}

/// Users one `subscribe_presence` may list.
pub const MAX_PRESENCE_SUBSCRIPTIONS: usize = 1000;

/// Members per `MEMBERS_CHUNK` unless asked otherwise, and at most.
pub const MEMBERS_CHUNK_DEFAULT: u32 = 100;
pub const MEMBERS_CHUNK_MAX: u32 = 1000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Presence {
    Online,
    Idle,
    Dnd,
    Invisible,
}

impl Presence {
    /// What others see: invisible looks offline.
    pub fn public(self) -> &'static str {
        match self {
            Presence::Online => "online",
            Presence::Idle => "idle",
            Presence::Dnd => "dnd",
            Presence::Invisible => "offline",
        }
    }
}

/// Why a frame was refused, with the close code it earns.
#[derive(Debug, PartialEq, Eq)]
pub struct Refusal {
    pub code: u16,
    pub reason: &'static str,
}

#[derive(Deserialize)]
struct Frame {
    op: String,
    #[serde(default)]
    d: Value,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IdentifyD {
    token: String,
    #[serde(default)]
    #[allow(dead_code)] // accepted for client compatibility, not used
    properties: Option<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ResumeD {
    token: String,
    session_id: String,
    s: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PresenceD {
    status: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RequestMembersD {
    community_id: String,
    #[serde(default)]
    after: Option<String>,
    #[serde(default)]
    limit: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SubscribePresenceD {
    user_ids: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VoiceJoinD {
    channel_id: String,
    #[serde(default)]
    self_mute: bool,
    #[serde(default)]
    self_deaf: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VoiceLayerD {
    user_id: String,
    layer: hearth_voice::Layer,
}

fn decode_err(reason: &'static str) -> Refusal {
    Refusal {
        code: close::DECODE_ERROR,
        reason,
    }
}

/// Decodes one client text frame.
pub fn decode(text: &str) -> Result<ClientOp, Refusal> {
    if text.len() > MAX_FRAME_BYTES {
        return Err(Refusal {
            code: close::MESSAGE_TOO_BIG,
            reason: "frame over 64 KiB",
        });
    }
    let frame: Frame =
        serde_json::from_str(text).map_err(|_| decode_err("not a JSON {op, d} frame"))?;
    match frame.op.as_str() {
        "heartbeat" => {
            let s = match &frame.d {
                Value::Null => None,
                Value::Object(m) => match m.get("s") {
                    None | Some(Value::Null) => None,
                    Some(v) => Some(
                        v.as_u64()
                            .ok_or(decode_err("heartbeat s must be a sequence number"))?,
                    ),
                },
                _ => return Err(decode_err("heartbeat d must be an object")),
            };
            Ok(ClientOp::Heartbeat { s })
        }
        "identify" => {
            let d: IdentifyD = serde_json::from_value(frame.d)
                .map_err(|_| decode_err("identify needs {token}"))?;
            Ok(ClientOp::Identify { token: d.token })
        }
        "resume" => {
            let d: ResumeD = serde_json::from_value(frame.d)
                .map_err(|_| decode_err("resume needs {token, session_id, s}"))?;
            Ok(ClientOp::Resume {
                token: d.token,
                session_id: d.session_id,
                s: d.s,
            })
        }
        "presence_update" => {
            let d: PresenceD = serde_json::from_value(frame.d)
                .map_err(|_| decode_err("presence_update needs {status}"))?;
            let status = match d.status.as_str() {
                "online" => Presence::Online,
                "idle" => Presence::Idle,
                "dnd" => Presence::Dnd,
                "invisible" => Presence::Invisible,
                _ => return Err(decode_err("status is online, idle, dnd or invisible")),
            };
            Ok(ClientOp::PresenceUpdate { status })
        }
        "request_members" => {
            const NEEDS: &str = "request_members needs {community_id, after?, limit?} (ids as decimal strings, limit 1-1000)";
            let d: RequestMembersD =
                serde_json::from_value(frame.d).map_err(|_| decode_err(NEEDS))?;
            let community_id = d.community_id.parse().map_err(|_| decode_err(NEEDS))?;
            let after = d
                .after
                .map(|a| a.parse())
                .transpose()
                .map_err(|_| decode_err(NEEDS))?;
            let limit = d.limit.unwrap_or(MEMBERS_CHUNK_DEFAULT);
            if !(1..=MEMBERS_CHUNK_MAX).contains(&limit) {
                return Err(decode_err(NEEDS));
            }
            Ok(ClientOp::RequestMembers {
                community_id,
                after,
                limit,
            })
        }
        "subscribe_presence" => {
            const NEEDS: &str =
                "subscribe_presence needs {user_ids} (at most 1000 ids as decimal strings)";
            let d: SubscribePresenceD =
                serde_json::from_value(frame.d).map_err(|_| decode_err(NEEDS))?;
            if d.user_ids.len() > MAX_PRESENCE_SUBSCRIPTIONS {
                return Err(decode_err(NEEDS));
            }
            let user_ids = d
                .user_ids
                .iter()
                .map(|u| u.parse())
                .collect::<Result<_, _>>()
                .map_err(|_| decode_err(NEEDS))?;
            Ok(ClientOp::SubscribePresence { user_ids })
        }
        "voice_join" => {
            const NEEDS: &str = "voice_join needs {channel_id, self_mute?, self_deaf?}";
            let d: VoiceJoinD = serde_json::from_value(frame.d).map_err(|_| decode_err(NEEDS))?;
            Ok(ClientOp::VoiceJoin {
                channel_id: d.channel_id.parse().map_err(|_| decode_err(NEEDS))?,
                self_mute: d.self_mute,
                self_deaf: d.self_deaf,
            })
        }
        "voice_leave" => Ok(ClientOp::VoiceLeave),
        "voice_state" => serde_json::from_value(frame.d)
            .map(ClientOp::VoiceState)
            .map_err(|_| decode_err("voice_state takes {self_mute?, self_deaf?, self_video?, self_stream?}")),
        "voice_signal" => serde_json::from_value(frame.d)
            .map(ClientOp::VoiceSignal)
            .map_err(|_| decode_err("voice_signal is {type: offer, sdp, tracks?} | {type: answer, sdp} | {type: candidate, candidate, sdp_mid?, sdp_mline_index?}")),
        "voice_layer" => {
            const NEEDS: &str = "voice_layer needs {user_id, layer: low|medium|high}";
            let d: VoiceLayerD = serde_json::from_value(frame.d).map_err(|_| decode_err(NEEDS))?;
            Ok(ClientOp::VoiceLayer {
                user_id: d.user_id.parse().map_err(|_| decode_err(NEEDS))?,
                layer: d.layer,
            })
        }
        _ => Err(Refusal {
            code: close::UNKNOWN_OP,
            reason: "unknown op",
        }),
    }
}

/// What a dispatch frame holds before the shared `"t"`/`"d"` part, which
/// is encoded once per event: only the sequence differs per connection.
pub fn dispatch_head(out: &mut Vec<u8>, seq: u64) {
    use std::io::Write;
    let _ = write!(out, "{{\"op\":\"dispatch\",\"s\":{seq},");
}

/// The tail of `{"t":..,"d":..}` without its opening brace.
pub fn tail_of(event_json: &str) -> Option<&str> {
    event_json.strip_prefix('{').filter(|t| t.ends_with('}'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn decodes_every_op() {
        assert_eq!(
            decode(r#"{"op":"heartbeat","d":{"s":3}}"#),
            Ok(ClientOp::Heartbeat { s: Some(3) })
        );
        assert_eq!(
            decode(r#"{"op":"heartbeat","d":null}"#),
            Ok(ClientOp::Heartbeat { s: None })
        );
        assert_eq!(
            decode(r#"{"op":"identify","d":{"token":"t"}}"#),
            Ok(ClientOp::Identify { token: "t".into() })
        );
        assert_eq!(
            decode(r#"{"op":"resume","d":{"token":"t","session_id":"x","s":9}}"#),
            Ok(ClientOp::Resume {
                token: "t".into(),
                session_id: "x".into(),
                s: 9
            })
        );
        assert_eq!(
            decode(r#"{"op":"presence_update","d":{"status":"idle"}}"#),
            Ok(ClientOp::PresenceUpdate {
                status: Presence::Idle
            })
        );
    }

    #[test]
    fn decodes_member_requests() {
        assert_eq!(
            decode(r#"{"op":"request_members","d":{"community_id":"12"}}"#),
            Ok(ClientOp::RequestMembers {
                community_id: CommunityId(12),
                after: None,
                limit: MEMBERS_CHUNK_DEFAULT
            })
        );
        assert_eq!(
            decode(
                r#"{"op":"request_members","d":{"community_id":"12","after":"40","limit":1000}}"#
            ),
            Ok(ClientOp::RequestMembers {
                community_id: CommunityId(12),
                after: Some(UserId(40)),
                limit: 1000
            })
        );
        for bad in [
            r#"{"op":"request_members","d":{}}"#,
            r#"{"op":"request_members","d":{"community_id":12}}"#,
            r#"{"op":"request_members","d":{"community_id":"x"}}"#,
            r#"{"op":"request_members","d":{"community_id":"1","limit":0}}"#,
            r#"{"op":"request_members","d":{"community_id":"1","limit":1001}}"#,
            r#"{"op":"request_members","d":{"community_id":"1","extra":1}}"#,
        ] {
            assert_eq!(decode(bad).unwrap_err().code, close::DECODE_ERROR, "{bad}");
        }
    }

    #[test]
    fn decodes_presence_subscriptions() {
        assert_eq!(
            decode(r#"{"op":"subscribe_presence","d":{"user_ids":["1","2"]}}"#),
            Ok(ClientOp::SubscribePresence {
                user_ids: vec![UserId(1), UserId(2)]
            })
        );
        let many: Vec<String> = (1..=1001).map(|i| format!("\"{i}\"")).collect();
        let too_many = format!(
            r#"{{"op":"subscribe_presence","d":{{"user_ids":[{}]}}}}"#,
            many.join(",")
        );
        assert_eq!(decode(&too_many).unwrap_err().code, close::DECODE_ERROR);
        assert_eq!(
            decode(r#"{"op":"subscribe_presence","d":{"user_ids":[1]}}"#)
                .unwrap_err()
                .code,
            close::DECODE_ERROR
        );
    }

    #[test]
    fn refuses_with_the_right_code() {
        assert_eq!(decode("nope").unwrap_err().code, close::DECODE_ERROR);
        assert_eq!(
            decode(r#"{"op":"dance"}"#).unwrap_err().code,
            close::UNKNOWN_OP
        );
        assert_eq!(
            decode(r#"{"op":"identify","d":{}}"#).unwrap_err().code,
            close::DECODE_ERROR
        );
        assert_eq!(
            decode(r#"{"op":"presence_update","d":{"status":"away"}}"#)
                .unwrap_err()
                .code,
            close::DECODE_ERROR
        );
        assert_eq!(
            decode(&"x".repeat(MAX_FRAME_BYTES + 1)).unwrap_err().code,
            close::MESSAGE_TOO_BIG
        );
    }

    #[test]
    fn frames_share_the_tail() {
        let tail = tail_of(r#"{"d":{"id":"1"},"t":"MESSAGE_CREATE"}"#).unwrap();
        let mut head = Vec::new();
        dispatch_head(&mut head, 7);
        let f = String::from_utf8(head).unwrap() + tail;
        let v: Value = serde_json::from_str(&f).unwrap();
        assert_eq!(
            (v["op"].as_str(), v["s"].as_u64(), v["t"].as_str()),
            (Some("dispatch"), Some(7), Some("MESSAGE_CREATE"))
        );
    }

    proptest! {
        // The decoder never panics and only ever refuses with a contract code.
        #[test]
        fn decoder_never_panics(s in ".{0,300}") {
            if let Err(r) = decode(&s) {
                prop_assert!([close::DECODE_ERROR, close::UNKNOWN_OP, close::MESSAGE_TOO_BIG].contains(&r.code));
            }
        }

        #[test]
        fn decoder_survives_json_shaped_noise(op in "[a-z_]{0,20}", d in prop_oneof![Just("null".to_string()), Just("{}".to_string()), "\\{\"[a-z]{1,5}\":[0-9a-z\"]{0,8}\\}", "[0-9]{1,5}"]) {
            let _ = decode(&format!("{{\"op\":\"{op}\",\"d\":{d}}}"));
        }
    }
}
