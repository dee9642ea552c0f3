//! Edits, deletions of every kind, pins, idempotency and freshness.

use std::time::{Duration, Instant};

use hearth_search::{Op, Query, Sort};
use hearth_types::{ChannelId, CommunityId, MessageId};

use super::helpers::*;

#[test]
fn edits_replace_the_old_text() {
    let ix = index_with(vec![msg(1, GENERAL, ALICE, "old words")]);
    let mut edited = msg(1, GENERAL, ALICE, "new words");
    edited.edited_at_ms = Some(MARCH_1 + 60_000);
    ix.apply(vec![Op::Upsert(edited)], 2).expect("apply");
    ix.commit().expect("commit");
    assert_eq!(ids(&ix, "old"), Vec::<i64>::new());
    assert_eq!(ids(&ix, "new"), vec![1]);
    assert_eq!(
        search_in(&ix, "words", Sort::Newest, &everywhere()).total,
        1
    );
}

#[test]
fn deletions() {
    let mut other = msg(9, ChannelId(300), BOB, "gone with the community");
    other.community_id = Some(CommunityId(8));
    let ix = index_with(vec![
        msg(1, GENERAL, ALICE, "gone one"),
        msg(2, GENERAL, ALICE, "gone two"),
        msg(3, GENERAL, ALICE, "gone three"),
        msg(4, RANDOM, ALICE, "gone four"),
        msg(5, SECRET, ALICE, "gone five"),
        msg(6, DM, ALICE, "gone six"),
        other,
    ]);
    let all = hearth_search::Scope::new([GENERAL, RANDOM, SECRET, DM, ChannelId(300)]);
    let count = |ix: &hearth_search::Index| search_in(ix, "gone", Sort::Newest, &all).total;
    assert_eq!(count(&ix), 7);
    ix.apply(vec![Op::Delete { id: MessageId(1) }], 2)
        .expect("apply");
    ix.commit().expect("commit");
    assert_eq!(count(&ix), 6, "a deleted message disappears at once");
    ix.apply(
        vec![Op::BulkDelete {
            ids: vec![MessageId(2), MessageId(3)],
        }],
        3,
    )
    .expect("apply");
    ix.commit().expect("commit");
    assert_eq!(count(&ix), 4);
    ix.apply(vec![Op::DeleteChannel { channel_id: RANDOM }], 4)
        .expect("apply");
    ix.commit().expect("commit");
    assert_eq!(count(&ix), 3);
    ix.apply(
        vec![Op::DeleteCommunity {
            community_id: COMMUNITY,
        }],
        5,
    )
    .expect("apply");
    ix.commit().expect("commit");
    // The DM and the other community stay.
    assert_eq!(ids(&ix, "gone"), vec![6]);
    assert_eq!(count(&ix), 2);
}

#[test]
fn the_same_ops_twice_change_nothing() {
    let ops = vec![
        Op::Upsert(msg(1, GENERAL, ALICE, "twice told")),
        Op::Upsert(msg(2, GENERAL, ALICE, "twice more")),
        Op::SetPinned {
            id: MessageId(2),
            pinned: true,
        },
        Op::Delete { id: MessageId(1) },
        Op::Upsert(msg(3, RANDOM, ALICE, "twice again")),
    ];
    let ix = index();
    ix.apply(ops.clone(), 5).expect("apply");
    ix.commit().expect("commit");
    let once = (ids(&ix, "twice"), ids(&ix, "pinned:true"), ix.stats().docs);
    ix.apply(ops.clone(), 5).expect("apply");
    ix.commit().expect("commit");
    ix.apply(ops, 5).expect("apply");
    ix.commit().expect("commit");
    let thrice = (ids(&ix, "twice"), ids(&ix, "pinned:true"), ix.stats().docs);
    assert_eq!(once, thrice);
    assert_eq!(once.0, vec![3, 2]);
    assert_eq!(once.1, vec![2]);
    assert_eq!(once.2, 2);
}

#[test]
fn pins_rewrite_committed_and_uncommitted_documents() {
    let ix = index_with(vec![msg(1, GENERAL, ALICE, "pin me")]);
    ix.apply(
        vec![
            Op::SetPinned {
                id: MessageId(1),
                pinned: true,
            },
            Op::Upsert(msg(2, GENERAL, ALICE, "pin me too")),
            Op::SetPinned {
                id: MessageId(2),
                pinned: true,
            },
            // Unknown messages are ignored.
            Op::SetPinned {
                id: MessageId(77),
                pinned: true,
            },
        ],
        2,
    )
    .expect("apply");
    ix.commit().expect("commit");
    assert_eq!(ids(&ix, "pinned:true"), vec![2, 1]);
    assert_eq!(
        ids(&ix, "pin me pinned:true"),
        vec![2, 1],
        "text survives the rewrite"
    );
    ix.apply(
        vec![Op::SetPinned {
            id: MessageId(1),
            pinned: false,
        }],
        3,
    )
    .expect("apply");
    ix.commit().expect("commit");
    assert_eq!(ids(&ix, "pinned:true"), vec![2]);
    assert_eq!(ix.stats().docs, 2);
}

#[test]
fn a_message_is_searchable_within_a_second() {
    // The default config, without calling commit: the committer does it.
    let ix =
        hearth_search::Index::open_in_ram(hearth_search::IndexConfig::default()).expect("index");
    let q = Query::parse("fresh", Sort::Newest, 20, None).expect("parses");
    let mut worst = Duration::ZERO;
    for i in 1..=20 {
        let start = Instant::now();
        ix.apply(
            vec![Op::Upsert(msg(i, GENERAL, ALICE, "fresh news"))],
            i as u64,
        )
        .expect("apply");
        loop {
            let page = ix.search(&q, &everywhere()).expect("searches");
            if page.total == i as usize {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(1),
                "message {i} not searchable in 1 s"
            );
            std::thread::sleep(Duration::from_millis(2));
        }
        worst = worst.max(start.elapsed());
        std::thread::sleep(Duration::from_millis(37));
    }
    assert!(worst < Duration::from_secs(1), "{worst:?}");
}

#[test]
fn deletes_are_searchable_within_a_second_too() {
    let ix =
        hearth_search::Index::open_in_ram(hearth_search::IndexConfig::default()).expect("index");
    ix.apply(vec![Op::Upsert(msg(1, GENERAL, ALICE, "soon gone"))], 1)
        .expect("apply");
    ix.commit().expect("commit");
    let start = Instant::now();
    ix.apply(vec![Op::Delete { id: MessageId(1) }], 2)
        .expect("apply");
    while !ids(&ix, "gone").is_empty() {
        assert!(start.elapsed() < Duration::from_secs(1));
        std::thread::sleep(Duration::from_millis(2));
    }
}
