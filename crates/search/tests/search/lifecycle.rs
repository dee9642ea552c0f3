//! On disk: positions survive restarts, old schemas are rebuilt, rebuilds
//! resume from their checkpoint.

use hearth_search::{Index, IndexConfig, Op, Sort};
use hearth_types::MessageId;

use super::helpers::*;

fn open(dir: &std::path::Path) -> Index {
    Index::open(dir, IndexConfig::default()).expect("opens")
}

#[test]
fn a_restart_resumes_from_the_committed_position() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let ix = open(dir.path());
        assert!(
            ix.needs_rebuild(),
            "a new index must be filled from the store"
        );
        assert_eq!(ix.position(), 0);
        ix.begin_rebuild().expect("begin");
        ix.finish_rebuild().expect("finish");
        ix.apply(
            vec![Op::Upsert(msg(1, GENERAL, ALICE, "persisted words"))],
            41,
        )
        .expect("apply");
        ix.apply(vec![], 42).expect("apply");
        ix.close().expect("close");
    }
    let ix = open(dir.path());
    assert!(!ix.needs_rebuild());
    assert_eq!(ix.position(), 42);
    assert_eq!(ids(&ix, "persisted"), vec![1]);
    let stats = ix.stats();
    assert_eq!((stats.docs, stats.position), (1, 42));
    assert!(stats.size_bytes > 0);
}

#[test]
fn dropping_the_index_commits_too() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let ix = open(dir.path());
        ix.apply(vec![Op::Upsert(msg(1, GENERAL, ALICE, "dropped"))], 7)
            .expect("apply");
    }
    let ix = open(dir.path());
    assert_eq!(ix.position(), 7);
    assert_eq!(ids(&ix, "dropped"), vec![1]);
}

/// After many small commits (each its own segment, which the merge policy
/// starts merging), closing after the merges leaves a committed index
/// with fewer segments and every message.
#[test]
fn closing_after_merges_keeps_everything() {
    let dir = tempfile::tempdir().expect("tempdir");
    let segments_before;
    {
        let ix = open(dir.path());
        for batch in 0..12i64 {
            let messages = (0..50)
                .map(|i| Op::Upsert(msg(batch * 50 + i + 1, GENERAL, ALICE, "merged words")))
                .collect();
            ix.apply(messages, (batch + 1) as u64).expect("apply");
            ix.commit().expect("commit");
        }
        segments_before = ix.stats().segments;
        ix.close_after_merges().expect("close");
    }
    let ix = open(dir.path());
    let stats = ix.stats();
    assert_eq!((stats.docs, stats.position), (600, 12));
    // Twelve commits made twelve segments; the merges under way at the
    // close were waited for, not dropped.
    assert!(
        stats.segments < 12 && stats.segments <= segments_before,
        "{} segments after merging, {segments_before} before",
        stats.segments
    );
    let page = search_in(&ix, "merged", Sort::Newest, &everywhere());
    assert_eq!(page.total, 600);
}

#[test]
fn another_schema_version_is_wiped_and_flagged() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let ix = open(dir.path());
        ix.begin_rebuild().expect("begin");
        ix.finish_rebuild().expect("finish");
        ix.apply(vec![Op::Upsert(msg(1, GENERAL, ALICE, "old schema"))], 9)
            .expect("apply");
        ix.close().expect("close");
    }
    std::fs::write(dir.path().join("hearth-search.version"), "0\n").expect("write");
    let ix = open(dir.path());
    assert!(ix.needs_rebuild());
    assert_eq!(ix.position(), 0);
    assert_eq!(ix.stats().docs, 0);
    drop(ix);
    let ix = open(dir.path());
    assert_eq!(ix.stats().docs, 0);
}

#[test]
fn a_rebuild_resumes_from_its_checkpoint() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store: Vec<_> = (1..=30)
        .map(|i| msg(i, GENERAL, ALICE, &format!("stored {i}")))
        .collect();
    {
        let ix = open(dir.path());
        ix.begin_rebuild().expect("begin");
        assert_eq!(ix.rebuild_checkpoint(), Some(MessageId(0)));
        ix.backfill(store[..10].to_vec(), MessageId(10))
            .expect("backfill");
        ix.close().expect("close");
    }
    let ix = open(dir.path());
    assert!(ix.needs_rebuild(), "an unfinished rebuild is reported");
    let after = ix.rebuild_checkpoint().expect("still rebuilding");
    assert_eq!(after, MessageId(10));
    let rest: Vec<_> = store.iter().filter(|m| m.id > after).cloned().collect();
    ix.backfill(rest, MessageId(30)).expect("backfill");
    ix.finish_rebuild().expect("finish");
    assert_eq!(ix.rebuild_checkpoint(), None);
    assert_eq!(
        search_in(&ix, "stored", Sort::Newest, &everywhere()).total,
        30
    );
}

#[test]
fn events_during_a_rebuild_win_over_older_store_rows() {
    let ix = index();
    ix.apply(
        vec![Op::Upsert(msg(1, GENERAL, ALICE, "before rebuild"))],
        1,
    )
    .expect("apply");
    ix.begin_rebuild().expect("begin");
    // Read from the store before these events were applied:
    let stale = vec![
        msg(1, GENERAL, ALICE, "before rebuild"),
        msg(2, GENERAL, ALICE, "deleted meanwhile"),
        msg(3, GENERAL, ALICE, "old text"),
        msg(4, RANDOM, ALICE, "channel deleted meanwhile"),
    ];
    ix.apply(
        vec![
            Op::Delete { id: MessageId(2) },
            Op::Upsert(msg(3, GENERAL, ALICE, "edited text")),
            Op::DeleteChannel { channel_id: RANDOM },
        ],
        2,
    )
    .expect("apply");
    ix.backfill(stale, MessageId(4)).expect("backfill");
    ix.finish_rebuild().expect("finish");
    assert_eq!(ids(&ix, "before"), vec![1]);
    assert_eq!(ids(&ix, "deleted"), Vec::<i64>::new());
    assert_eq!(ids(&ix, "text"), vec![3]);
    assert_eq!(ids(&ix, "edited"), vec![3]);
    assert_eq!(ix.stats().docs, 2);
}

#[test]
fn one_writer_per_directory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let _ix = open(dir.path());
    assert!(Index::open(dir.path(), IndexConfig::default()).is_err());
}
