//! Free text, filters, sorting, pagination, totals and snippets.

use hearth_search::{Has, Op, Query, Sort};
use hearth_types::{MessageId, UserId};

use super::helpers::*;

fn corpus() -> hearth_search::Index {
    let mut pinned = msg(5, RANDOM, BOB, "the deploy is pinned here");
    pinned.pinned = true;
    let mut mention = msg(6, GENERAL, BOB, "hey <@1> the deploy broke");
    mention.mentions = vec![ALICE];
    let mut image = msg(7, GENERAL, ALICE, "screenshot of the deploy");
    image.has = Has::detect(&image.content, [(Some("image/png"), Some("a.png"))], false);
    index_with(vec![
        msg(
            1,
            GENERAL,
            ALICE,
            "The quick brown fox jumps over the lazy dog",
        ),
        msg(2, GENERAL, BOB, "a quick deploy to production"),
        msg(3, RANDOM, ALICE, "brown bread and quick coffee"),
        msg(
            4,
            RANDOM,
            BOB,
            "see https://example.com/deploy for the runbook",
        ),
        pinned,
        mention,
        image,
    ])
}

#[test]
fn words_are_anded_and_case_insensitive() {
    let ix = corpus();
    assert_eq!(ids(&ix, "QUICK brown"), vec![3, 1]);
    assert_eq!(ids(&ix, "quick"), vec![3, 2, 1]);
    assert_eq!(ids(&ix, "nothinglikethis"), Vec::<i64>::new());
}

#[test]
fn phrases_keep_word_order() {
    let ix = corpus();
    assert_eq!(ids(&ix, r#""quick brown""#), vec![1]);
    assert_eq!(ids(&ix, r#""brown quick""#), Vec::<i64>::new());
}

/// Two adjacent words are one term of the index's `pairs` field; longer
/// phrases narrow by their pairs and check positions. Either way a phrase
/// matches exactly what a check of positions alone matches, through
/// punctuation, folding, identifiers, unspaced scripts and emoji.
#[test]
fn phrases_match_the_same_through_pairs() {
    let ix = index_with(vec![
        msg(1, GENERAL, ALICE, "Good morning team"),
        msg(2, GENERAL, ALICE, "morning good"),
        msg(3, GENERAL, BOB, "good, morning! good morning"),
        msg(4, GENERAL, BOB, "good big morning"),
        msg(5, RANDOM, ALICE, "call snake_case now"),
        msg(6, RANDOM, ALICE, "Café Crème please"),
        msg(7, RANDOM, BOB, "東京 tower 🎉 party"),
        msg(8, RANDOM, BOB, "big tower 🎉 party time"),
    ]);
    let cases: &[(&str, &[i64])] = &[
        (r#""good morning""#, &[3, 1]),
        (r#""GOOD   Morning""#, &[3, 1]),
        (r#""morning good""#, &[3, 2]),
        (r#""good morning team""#, &[1]),
        (r#""good morning good""#, &[3]),
        (r#""good big morning""#, &[4]),
        (r#""big morning team""#, &[]),
        (r#"good -"good morning""#, &[4, 2]),
        (r#""cafe creme""#, &[6]),
        // An identifier pairs as a whole and by its parts; its parts are
        // not a phrase of their own.
        (r#""snake_case now""#, &[5]),
        (r#""case now""#, &[5]),
        (r#""call snake""#, &[5]),
        (r#""call snake_case now""#, &[5]),
        (r#""snake case""#, &[]),
        // Unspaced scripts and emoji make no pairs: positions decide.
        (r#""東京 tower""#, &[7]),
        (r#""tower 🎉 party""#, &[8, 7]),
        (r#""big tower 🎉""#, &[8]),
        (r#""🎉 party time""#, &[8]),
        (r#""tower party""#, &[]),
    ];
    for (q, want) in cases {
        assert_eq!(ids(&ix, q), want.to_vec(), "{q}");
        // The total agrees with the page, by relevance too.
        let page = search_in(&ix, q, Sort::Relevance, &everywhere());
        assert_eq!(page.total, want.len(), "{q}");
        let mut got: Vec<i64> = page.hits.iter().map(|h| h.id.0).collect();
        got.sort_unstable_by(|a, b| b.cmp(a));
        assert_eq!(got, want.to_vec(), "{q} by relevance");
    }
    // A message holding the phrase twice ranks above one holding it once.
    let page = search_in(&ix, r#""good morning""#, Sort::Relevance, &everywhere());
    assert_eq!(page.hits[0].id.0, 3);
    // Snippets mark the phrase's words.
    let h = &page.hits[1].highlight;
    assert_eq!(&h.text[h.ranges[0].clone()], "Good");
}

#[test]
fn prefixes_and_exclusions() {
    let ix = corpus();
    assert_eq!(ids(&ix, "depl*"), vec![7, 6, 5, 4, 2]);
    assert_eq!(ids(&ix, "deploy -production -pinned"), vec![7, 6, 4]);
    assert_eq!(ids(&ix, r#""the lazy do*""#), vec![1]);
}

#[test]
fn filters() {
    let ix = corpus();
    assert_eq!(ids(&ix, "from:2"), vec![6, 5, 4, 2]);
    assert_eq!(ids(&ix, "quick from:1"), vec![3, 1]);
    assert_eq!(ids(&ix, "from:1 from:2 in:101"), vec![5, 4, 3]);
    assert_eq!(ids(&ix, "mentions:1"), vec![6]);
    assert_eq!(ids(&ix, "has:link"), vec![4]);
    assert_eq!(ids(&ix, "has:image"), vec![7]);
    assert_eq!(ids(&ix, "has:file deploy"), vec![7]);
    assert_eq!(ids(&ix, "pinned:true"), vec![5]);
    assert_eq!(ids(&ix, "deploy pinned:false in:100"), vec![7, 6, 2]);
}

#[test]
fn dates_are_utc_days() {
    let mut ms = vec![
        msg(1, GENERAL, ALICE, "day one"),
        msg(2, GENERAL, ALICE, "day two"),
        msg(3, GENERAL, ALICE, "day three"),
    ];
    for (i, m) in ms.iter_mut().enumerate() {
        m.created_at_ms = MARCH_1 + i as i64 * DAY + 3_600_000;
    }
    let ix = index_with(ms);
    assert_eq!(ids(&ix, "day during:2026-03-02"), vec![2]);
    assert_eq!(ids(&ix, "day before:2026-03-02"), vec![1]);
    assert_eq!(ids(&ix, "day after:2026-03-01"), vec![3, 2]);
    assert_eq!(ids(&ix, "after:2026-03-01 before:2026-03-03"), vec![2]);
    assert_eq!(
        ids(&ix, "after:2026-03-03 before:2026-03-01"),
        Vec::<i64>::new()
    );
}

#[test]
fn sorts() {
    let ix = index_with(vec![
        msg(1, GENERAL, ALICE, "cat"),
        msg(2, GENERAL, ALICE, "cat cat cat cat"),
        msg(
            3,
            GENERAL,
            ALICE,
            "cat and a very long sentence about many other things",
        ),
    ]);
    let order = |sort| -> Vec<i64> {
        search_in(&ix, "cat", sort, &everywhere())
            .hits
            .iter()
            .map(|h| h.id.0)
            .collect()
    };
    assert_eq!(order(Sort::Newest), vec![3, 2, 1]);
    assert_eq!(order(Sort::Oldest), vec![1, 2, 3]);
    assert_eq!(order(Sort::Relevance), vec![2, 1, 3]);
}

fn all_pages(ix: &hearth_search::Index, sort: Sort, limit: usize) -> (Vec<i64>, usize) {
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut total;
    for _ in 0..100 {
        let q = Query::parse("word", sort, limit, cursor.as_deref()).expect("parses");
        let page = ix.search(&q, &everywhere()).expect("searches");
        total = page.total;
        seen.extend(page.hits.iter().map(|h| h.id.0));
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => return (seen, total),
        }
    }
    panic!("no end of pages");
}

#[test]
fn cursors_page_through_everything_once() {
    let ix = index_with(
        (1..=53)
            .map(|i| msg(i, GENERAL, ALICE, &format!("word {i}")))
            .collect(),
    );
    for sort in [Sort::Newest, Sort::Oldest, Sort::Relevance] {
        let (mut seen, total) = all_pages(&ix, sort, 10);
        assert_eq!(total, 53, "{sort}");
        assert_eq!(seen.len(), 53, "{sort}");
        if sort == Sort::Newest {
            assert_eq!(seen.first(), Some(&53));
        }
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen.len(), 53, "{sort}: no duplicates");
    }
    // A date cursor is stable while new messages arrive.
    let first = ix
        .search(
            &Query::parse("word", Sort::Newest, 10, None).expect("parses"),
            &everywhere(),
        )
        .expect("searches");
    ix.apply(
        vec![hearth_search::Op::Upsert(msg(
            99, GENERAL, ALICE, "word new",
        ))],
        2,
    )
    .expect("apply");
    ix.commit().expect("commit");
    let q = Query::parse("word", Sort::Newest, 10, first.next_cursor.as_deref()).expect("parses");
    let second = ix.search(&q, &everywhere()).expect("searches");
    assert_eq!(second.hits.first().map(|h| h.id), Some(MessageId(43)));
    assert_eq!(second.total, 54);
}

#[test]
fn a_cursor_of_another_sort_is_refused() {
    let ix = index_with((1..=30).map(|i| msg(i, GENERAL, ALICE, "word")).collect());
    let page = search_in(&ix, "word", Sort::Newest, &everywhere());
    let cursor = page.next_cursor.expect("more pages");
    assert!(Query::parse("word", Sort::Relevance, 20, Some(&cursor)).is_err());
    assert!(Query::parse("word", Sort::Newest, 20, Some("garbage!")).is_err());
}

#[test]
fn totals_count_every_match() {
    let ix = index_with((1..=250).map(|i| msg(i, GENERAL, ALICE, "many")).collect());
    let page = search_in(&ix, "many", Sort::Relevance, &everywhere());
    assert_eq!(page.total, 250);
    assert_eq!(page.hits.len(), 20);
}

#[test]
fn snippets_mark_matches_and_escape_html() {
    let ix = index_with(vec![msg(
        1,
        GENERAL,
        ALICE,
        "<script>alert(1)</script> the Deployment of deploy_tool",
    )]);
    let page = search_in(&ix, "deploy*", Sort::Newest, &everywhere());
    let h = &page.hits[0].highlight;
    assert_eq!(
        h.to_html(),
        "&lt;script&gt;alert(1)&lt;/script&gt; the <mark>Deployment</mark> of <mark>deploy_tool</mark>"
    );
    assert_eq!(&h.text[h.ranges[0].clone()], "Deployment");
}

#[test]
fn names_are_resolved_by_the_caller() {
    let ix = corpus();
    let mut q = Query::parse("quick from:@alice", Sort::Newest, 20, None).expect("parses");
    assert!(
        matches!(ix.search(&q, &everywhere()), Err(hearth_search::SearchError::Unresolved(n)) if n == "alice")
    );
    q.resolve(|_, name| (name == "alice").then_some(ALICE.0))
        .expect("resolves");
    let page = ix.search(&q, &everywhere()).expect("searches");
    assert_eq!(
        page.hits.iter().map(|h| h.id.0).collect::<Vec<_>>(),
        vec![3, 1]
    );
    let mut q = Query::parse("from:@nobody", Sort::Newest, 20, None).expect("parses");
    assert!(q.resolve(|_, _| None).is_err());
    let _ = UserId(0);
}

/// Date-ordered pages of a common word are read block by block (only the
/// blocks whose IDs can make the page); paging through must still give
/// exactly the full sort, in both directions, for a whole and a partial
/// scope, with deleted documents, several segments, and IDs that are not
/// in document order (backfills and merges add old IDs after new ones).
#[test]
fn date_pages_over_many_blocks_match_a_full_sort() {
    let ix = index();
    let n: i64 = 30_000;
    // A fixed permutation of 1..=n: runs of ascending IDs in a shuffled
    // order of runs, the shape of a merged segment.
    let mut order: Vec<i64> = Vec::with_capacity(n as usize);
    let runs: Vec<i64> = (0..30).map(|r| (r * 7) % 30).collect();
    for r in runs {
        order.extend((r * 1000 + 1)..=(r * 1000 + 1000));
    }
    let channel = |id: i64| [GENERAL, RANDOM, SECRET][(id % 3) as usize];
    let mut position = 0;
    for chunk in order.chunks(15_000) {
        position += 1;
        ix.apply(
            chunk
                .iter()
                .map(|&id| {
                    let text = if id % 10 == 0 { "other" } else { "word" };
                    Op::Upsert(msg(id, channel(id), ALICE, text))
                })
                .collect(),
            position,
        )
        .expect("apply");
        ix.commit().expect("commit");
    }
    let deleted: Vec<i64> = (1..=n).filter(|id| id % 97 == 0).collect();
    ix.apply(
        vec![Op::BulkDelete {
            ids: deleted.iter().map(|&id| MessageId(id)).collect(),
        }],
        position + 1,
    )
    .expect("apply");
    ix.commit().expect("commit");

    for (scope, in_scope) in [
        (everywhere(), &(|_: i64| true) as &dyn Fn(i64) -> bool),
        (
            public(),
            &(|id: i64| channel(id) != SECRET) as &dyn Fn(i64) -> bool,
        ),
    ] {
        let mut want: Vec<i64> = (1..=n)
            .filter(|&id| id % 10 != 0 && id % 97 != 0 && in_scope(id))
            .collect();
        for sort in [Sort::Oldest, Sort::Newest] {
            if sort == Sort::Newest {
                want.reverse();
            }
            let mut seen = Vec::new();
            let mut cursor: Option<String> = None;
            loop {
                let q = Query::parse("word", sort, 100, cursor.as_deref()).expect("parses");
                let page = ix.search(&q, &scope).expect("searches");
                assert_eq!(page.total, want.len(), "{sort}: the total");
                seen.extend(page.hits.iter().map(|h| h.id.0));
                match page.next_cursor {
                    Some(c) => cursor = Some(c),
                    None => break,
                }
                assert!(seen.len() <= want.len(), "{sort}: pages never end");
            }
            assert!(seen == want, "{sort}: pages differ from the full sort");
        }
    }
}
