//! Only the caller's channels are matched, counted and shown.

use hearth_search::{Query, Scope, Sort};

use super::helpers::*;

fn corpus() -> hearth_search::Index {
    let mut ms = vec![
        msg(1, GENERAL, ALICE, "launch plan for monday"),
        msg(2, SECRET, BOB, "launch codes are hunter2 secretword"),
        msg(3, SECRET, BOB, "launch secretword again"),
        msg(4, DM, BOB, "launch party in the dm"),
    ];
    // Enough secret matches that counting them would show.
    ms.extend((10..60).map(|i| msg(i, SECRET, BOB, "launch")));
    index_with(ms)
}

#[test]
fn hits_and_totals_leave_out_other_channels() {
    let ix = corpus();
    for sort in [Sort::Relevance, Sort::Newest, Sort::Oldest] {
        let page = search_in(&ix, "launch", sort, &public());
        assert_eq!(page.total, 1, "{sort}");
        assert_eq!(page.hits.len(), 1);
        assert_eq!(page.hits[0].channel_id, GENERAL);
        assert!(page.next_cursor.is_none());
    }
    let page = search_in(&ix, "secretword", Sort::Relevance, &public());
    assert_eq!((page.total, page.hits.len()), (0, 0));
    // With the secret channel in scope, it is all there.
    assert_eq!(
        search_in(&ix, "launch", Sort::Newest, &everywhere()).total,
        54
    );
}

#[test]
fn in_outside_the_scope_is_empty() {
    let ix = corpus();
    let page = search_in(&ix, "launch in:102", Sort::Newest, &public());
    assert_eq!((page.total, page.hits.len()), (0, 0));
    let page = search_in(&ix, "in:102", Sort::Newest, &public());
    assert_eq!(page.total, 0);
}

#[test]
fn dms_only_for_their_participants() {
    let ix = corpus();
    let page = search_in(&ix, "party", Sort::Newest, &Scope::new([DM]));
    assert_eq!(page.total, 1);
    let page = search_in(&ix, "party", Sort::Newest, &public());
    assert_eq!(page.total, 0);
}

#[test]
fn an_empty_scope_finds_nothing() {
    let ix = corpus();
    let q = Query::parse("launch", Sort::Relevance, 20, None).expect("parses");
    let page = ix.search(&q, &Scope::new([])).expect("searches");
    assert_eq!((page.total, page.hits.len()), (0, 0));
}

#[test]
fn wide_scopes_are_checked_per_document() {
    // More channels than become a query clause: the collector still filters.
    let ix = corpus();
    let wide = Scope::new((1000..1100).map(hearth_types::ChannelId).chain([GENERAL]));
    let page = search_in(&ix, "launch", Sort::Relevance, &wide);
    assert_eq!(page.total, 1);
    let page = search_in(&ix, "-nothing", Sort::Newest, &wide);
    assert_eq!(page.total, 1);
}

#[test]
fn snippets_come_only_from_hits_in_scope() {
    let ix = corpus();
    let page = search_in(&ix, "launch", Sort::Relevance, &public());
    for h in &page.hits {
        assert!(!h.highlight.text.contains("secretword"));
    }
}
