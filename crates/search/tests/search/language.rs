//! Scripts, folding, identifiers, emoji.

use super::helpers::*;

fn corpus() -> hearth_search::Index {
    index_with(vec![
        msg(1, GENERAL, ALICE, "我明天要去東京都看朋友"),
        msg(2, GENERAL, ALICE, "今日は新しいプロジェクトを始めました"),
        msg(3, GENERAL, ALICE, "오늘학교에서친구를만났어요"),
        msg(4, GENERAL, ALICE, "Rendez-vous au Café de Flore"),
        msg(
            5,
            GENERAL,
            ALICE,
            "call parse_query_string from getHTTPServer",
        ),
        msg(6, GENERAL, ALICE, "ship it 🚀🚀 great job👍🏽 ❤️"),
        msg(7, GENERAL, ALICE, "Straße und Größe, ÉCOLE"),
        msg(8, GENERAL, ALICE, "Привет мир"),
        msg(9, GENERAL, ALICE, "猫が好き"),
    ])
}

#[test]
fn chinese_japanese_korean_words_inside_unspaced_sentences() {
    let ix = corpus();
    assert_eq!(ids(&ix, "東京"), vec![1]);
    assert_eq!(ids(&ix, "東京都"), vec![1]);
    assert_eq!(ids(&ix, "朋友"), vec![1]);
    assert_eq!(ids(&ix, "京東"), Vec::<i64>::new());
    assert_eq!(ids(&ix, "プロジェクト"), vec![2]);
    assert_eq!(ids(&ix, "新しい"), vec![2]);
    assert_eq!(ids(&ix, "학교"), vec![3]);
    assert_eq!(ids(&ix, "친구"), vec![3]);
    // A single character is a unigram.
    assert_eq!(ids(&ix, "猫"), vec![9]);
    let page = search_in(&ix, "東京都", hearth_search::Sort::Relevance, &everywhere());
    assert_eq!(
        page.hits[0].highlight.to_html(),
        "我明天要去<mark>東京都</mark>看朋友"
    );
}

#[test]
fn accents_and_case_fold() {
    let ix = corpus();
    assert_eq!(ids(&ix, "cafe"), vec![4]);
    assert_eq!(ids(&ix, "CAFÉ"), vec![4]);
    assert_eq!(ids(&ix, "strasse"), vec![7]);
    assert_eq!(ids(&ix, "grosse"), vec![7]);
    assert_eq!(ids(&ix, "ecole"), vec![7]);
    assert_eq!(ids(&ix, "привет"), vec![8]);
}

#[test]
fn identifiers_by_their_parts() {
    let ix = corpus();
    assert_eq!(ids(&ix, "parse_query_string"), vec![5]);
    assert_eq!(ids(&ix, "query"), vec![5]);
    assert_eq!(ids(&ix, "getHTTPServer"), vec![5]);
    assert_eq!(ids(&ix, "http server"), vec![5]);
    assert_eq!(ids(&ix, "serv*"), vec![5]);
    assert_eq!(ids(&ix, r#""call parse_query_string from""#), vec![5]);
}

#[test]
fn emoji_are_words() {
    let ix = corpus();
    assert_eq!(ids(&ix, "🚀"), vec![6]);
    assert_eq!(ids(&ix, "👍"), vec![6], "the base of a skin-toned emoji");
    assert_eq!(ids(&ix, "👍🏽"), vec![6]);
    assert_eq!(ids(&ix, "❤"), vec![6]);
    assert_eq!(ids(&ix, "❤️"), vec![6]);
    assert_eq!(ids(&ix, "job"), vec![6]);
}
