//! The bus's event shapes map to ops.

use hearth_search::{Has, IndexedMessage, Op, ops_from_event};
use hearth_types::{ChannelId, CommunityId, MessageId, RoleId, UserId};

const MESSAGE: &str = r#"{
  "id": "500", "channel_id": "100", "community_id": "7",
  "author": {"id": "1", "username": "alice", "display_name": null, "avatar_url": null},
  "content": "see https://x.dev <@2>", "created_at": "2026-03-01T00:00:01.000Z",
  "edited_at": null, "reply_to_id": "499", "mentions": ["2"], "mention_roles": ["70"],
  "mention_everyone": false, "attachments": [{"id": "9"}, {"id": "10", "content_type": "video/mp4"}],
  "reactions": [], "pinned": false, "nonce": "n1"
}"#;

#[test]
fn message_create_and_update_upsert() {
    let want = IndexedMessage {
        id: MessageId(500),
        channel_id: ChannelId(100),
        community_id: Some(CommunityId(7)),
        author_id: UserId(1),
        content: "see https://x.dev <@2>".into(),
        mentions: vec![UserId(2)],
        role_mentions: vec![RoleId(70)],
        mentions_everyone: false,
        has: Has {
            link: true,
            file: true,
            video: true,
            ..Has::default()
        },
        pinned: false,
        reply_to: Some(MessageId(499)),
        created_at_ms: 1_772_323_201_000,
        edited_at_ms: None,
    };
    for kind in ["MESSAGE_CREATE", "MESSAGE_UPDATE"] {
        let ops = ops_from_event(kind, MESSAGE.as_bytes()).expect("parses");
        assert_eq!(ops, vec![Op::Upsert(want.clone())]);
    }
}

#[test]
fn deletions_and_pins() {
    let cases: &[(&str, &str, Vec<Op>)] = &[
        (
            "MESSAGE_DELETE",
            r#"{"id":"5","channel_id":"100","community_id":null}"#,
            vec![Op::Delete { id: MessageId(5) }],
        ),
        (
            "MESSAGE_DELETE_BULK",
            r#"{"ids":["5","6"],"channel_id":"100","community_id":"7"}"#,
            vec![Op::BulkDelete {
                ids: vec![MessageId(5), MessageId(6)],
            }],
        ),
        (
            "CHANNEL_DELETE",
            r#"{"id":"100","community_id":"7","name":"general","kind":"text","topic":null,"position":0,"parent_id":null,"last_message_id":null}"#,
            vec![Op::DeleteChannel {
                channel_id: ChannelId(100),
            }],
        ),
        (
            "CHANNEL_DELETE",
            r#"{"id":"100","community_id":"7","reason":"permissions"}"#,
            vec![],
        ),
        (
            "COMMUNITY_DELETE",
            r#"{"id":"7"}"#,
            vec![Op::DeleteCommunity {
                community_id: CommunityId(7),
            }],
        ),
        (
            "COMMUNITY_DELETE",
            r#"{"id":"7","unavailable":false,"removed":true}"#,
            vec![],
        ),
        (
            "CHANNEL_PINS_UPDATE",
            r#"{"channel_id":"100","message_id":"5","pinned":true}"#,
            vec![Op::SetPinned {
                id: MessageId(5),
                pinned: true,
            }],
        ),
        ("TYPING_START", r#"{"whatever": 1}"#, vec![]),
        ("MESSAGE_REACTION_ADD", "not even json", vec![]),
    ];
    for (kind, data, want) in cases {
        assert_eq!(
            &ops_from_event(kind, data.as_bytes()).expect(kind),
            want,
            "{kind} {data}"
        );
    }
}

#[test]
fn malformed_data_of_a_known_kind_is_an_error() {
    assert!(ops_from_event("MESSAGE_CREATE", b"{}").is_err());
    assert!(ops_from_event("MESSAGE_DELETE", br#"{"id": 5}"#).is_err());
}
