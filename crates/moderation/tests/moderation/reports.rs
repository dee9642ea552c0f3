//! Reports: the state machine, notes and evidence.

use hearth_moderation::reports::{MAX_EVIDENCE_CHARS, ReportScope, ReportSubject};
use hearth_moderation::{ModerationError, Report, ReportId, ReportState};
use hearth_types::{ChannelId, CommunityId, MessageId, UserId};

fn message_report() -> Report {
    Report::file(
        ReportId(1),
        ReportScope::Community {
            community_id: CommunityId(7),
        },
        UserId(10),
        ReportSubject::Message {
            message_id: MessageId(99),
            channel_id: ChannelId(5),
            author_id: UserId(20),
            evidence: "buy cheap stuff at evil.example".into(),
        },
        "spam",
        1_000,
    )
    .unwrap()
}

#[test]
fn open_then_actioned_once() {
    let mut r = message_report();
    assert_eq!(r.state, ReportState::Open);
    r.add_note(UserId(30), "looking into it", 2_000).unwrap();
    r.action(UserId(30), 3_000).unwrap();
    assert_eq!(r.state, ReportState::Actioned);
    assert_eq!(
        (r.resolved_by, r.resolved_at),
        (Some(UserId(30)), Some(3_000))
    );
    // Closed is final.
    let err = r.dismiss(UserId(31), 4_000).unwrap_err();
    assert!(matches!(
        err,
        ModerationError::InvalidTransition {
            from: ReportState::Actioned,
            to: ReportState::Dismissed
        }
    ));
    assert_eq!(err.code(), "report_invalid_transition");
    assert!(r.action(UserId(31), 4_000).is_err());
    // Notes may still be added; the evidence is still there.
    r.add_note(UserId(30), "banned the author", 5_000).unwrap();
    assert_eq!(r.notes.len(), 2);
    match &r.subject {
        ReportSubject::Message { evidence, .. } => assert!(evidence.contains("evil.example")),
        s => panic!("{s:?}"),
    }
}

#[test]
fn open_then_dismissed() {
    let mut r = message_report();
    r.dismiss(UserId(30), 2_000).unwrap();
    assert_eq!(r.state, ReportState::Dismissed);
    assert!(matches!(
        r.action(UserId(30), 3_000),
        Err(ModerationError::InvalidTransition { .. })
    ));
}

#[test]
fn bad_reports_are_refused() {
    let file = |subject, scope, reason: &str| {
        Report::file(ReportId(1), scope, UserId(10), subject, reason, 0)
    };
    let community = ReportScope::Community {
        community_id: CommunityId(7),
    };
    let user = |id| ReportSubject::User {
        user_id: UserId(id),
    };
    assert!(
        file(user(10), ReportScope::Instance, "me").is_err(),
        "oneself"
    );
    assert!(
        file(user(11), ReportScope::Instance, "   ").is_err(),
        "no reason"
    );
    assert!(
        file(user(11), ReportScope::Instance, &"x".repeat(2001)).is_err(),
        "long reason"
    );
    assert!(
        file(
            ReportSubject::Community {
                community_id: CommunityId(7)
            },
            community,
            "bad place"
        )
        .is_err(),
        "a community is reported to staff"
    );
    assert!(
        file(
            ReportSubject::Community {
                community_id: CommunityId(7)
            },
            ReportScope::Instance,
            "bad place"
        )
        .is_ok()
    );
    let mut r = file(user(11), community, "harassment").unwrap();
    assert!(r.add_note(UserId(1), "", 0).is_err());
    // Evidence is capped, not refused.
    let long = Report::file(
        ReportId(2),
        community,
        UserId(10),
        ReportSubject::Message {
            message_id: MessageId(1),
            channel_id: ChannelId(1),
            author_id: UserId(2),
            evidence: "é".repeat(5000),
        },
        "spam",
        0,
    )
    .unwrap();
    match long.subject {
        ReportSubject::Message { evidence, .. } => {
            assert_eq!(evidence.chars().count(), MAX_EVIDENCE_CHARS)
        }
        s => panic!("{s:?}"),
    }
}

#[test]
fn reports_serialize() {
    let r = message_report();
    let v = serde_json::to_value(&r).unwrap();
    assert_eq!(v["state"], "open");
    assert_eq!(v["scope"]["to"], "community");
    assert_eq!(v["subject"]["kind"], "message");
    let back: Report = serde_json::from_value(v).unwrap();
    assert_eq!(back, r);
}
