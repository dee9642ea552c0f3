//! Automod: every trigger, exemptions, evasion, limits and hostile input.

use std::time::{Duration, Instant};

use hearth_moderation::automod::{Action, AutomodConfig, Mentions, RuleSet, RuleSpec, Trigger};
use hearth_moderation::{AutomodRuleId, FloodTracker, MessageContext, ModerationError, Verdict};
use hearth_types::{ChannelId, CommunityId, RoleId, UserId};

const NOW: i64 = 1_800_000_000_000;
const DAY_MS: i64 = 86_400_000;

fn rule(id: i64, trigger: Trigger) -> RuleSpec {
    RuleSpec {
        id: AutomodRuleId(id),
        name: format!("rule {id}"),
        enabled: true,
        trigger,
        actions: vec![Action::Block],
        exempt_channels: vec![],
        exempt_roles: vec![],
    }
}

fn keywords(id: i64, words: &[&str]) -> RuleSpec {
    rule(
        id,
        Trigger::Keywords {
            words: words.iter().map(|s| s.to_string()).collect(),
            allow: vec![],
        },
    )
}

fn ctx(content: &str) -> MessageContext<'_> {
    MessageContext {
        community_id: CommunityId(1),
        channel_id: ChannelId(10),
        author_id: UserId(100),
        author_roles: &[],
        content,
        mentions: Mentions::default(),
        account_created_at: NOW - 365 * DAY_MS,
        member_joined_at: NOW - 30 * DAY_MS,
        now: NOW,
    }
}

fn check(set: &RuleSet, content: &str) -> Verdict {
    set.check(&ctx(content), &FloodTracker::new(1000))
}

fn blocked(set: &RuleSet, content: &str) -> bool {
    check(set, content).blocked_by.is_some()
}

#[test]
fn keywords_are_whole_words_unless_wildcarded() {
    let set = RuleSet::compile(&[keywords(
        1,
        &["bad", "grape*", "*fruit", "*melon*", "bad thing"],
    )])
    .unwrap();
    for hit in [
        "this is bad",
        "bad!",
        "(bad)",
        "grapes are nice",
        "grapefruit",
        "a starfruit",
        "watermelons",
        "MeLoN",
        "such a bad thing",
    ] {
        assert!(blocked(&set, hit), "{hit}");
    }
    for miss in [
        "badge",
        "abad",
        "a grap",
        "fruity",
        "melo n",
        "nothing here",
        "",
    ] {
        assert!(!blocked(&set, miss), "{miss}");
    }
}

#[test]
fn keywords_see_through_case_width_and_invisible_characters() {
    let set = RuleSet::compile(&[keywords(1, &["scam"])]).unwrap();
    for evasion in [
        "SCAM",
        "ScAm",
        "ｓｃａｍ", // fullwidth (NFKC)
        "ＳＣＡＭ",
        "s\u{200B}c\u{200C}a\u{200D}m", // zero-width space, non-joiner, joiner
        "s\u{00AD}cam",                 // soft hyphen
        "sc\u{2060}am\u{FEFF}",         // word joiner, BOM
        "free s\u{FE0F}cam here",
    ] {
        assert!(blocked(&set, evasion), "{evasion:?}");
    }
    // Keywords are normalized the same way when compiled.
    let set = RuleSet::compile(&[keywords(1, &["ＦＲＥＥ＊"])]).unwrap();
    assert!(blocked(&set, "freebies"));
}

#[test]
fn allow_list_exempts_whole_words() {
    let mut r = keywords(1, &["*ass*"]);
    r.trigger = Trigger::Keywords {
        words: vec!["*ass*".into()],
        allow: vec!["class".into(), "Pass".into(), "assistant".into()],
    };
    let set = RuleSet::compile(&[r]).unwrap();
    assert!(!blocked(&set, "first class pass for the assistant"));
    assert!(blocked(&set, "you ass"));
    assert!(blocked(&set, "class ass"));
}

#[test]
fn unspaced_scripts_match_inside_text() {
    let set = RuleSet::compile(&[keywords(1, &["詐欺"])]).unwrap();
    assert!(blocked(&set, "これは詐欺です"));
    assert!(!blocked(&set, "これは本物です"));
}

#[test]
fn every_rule_with_a_keyword_fires_and_the_first_blocking_one_is_named() {
    let mut flag_only = keywords(2, &["spam"]);
    flag_only.actions = vec![
        Action::Flag {
            channel_id: ChannelId(77),
        },
        Action::Timeout { secs: 60 },
    ];
    let mut also = keywords(3, &["spammer*"]);
    also.actions = vec![
        Action::Block,
        Action::DeleteRecent { secs: 300 },
        Action::Timeout { secs: 600 },
    ];
    let set = RuleSet::compile(&[keywords(1, &["other"]), flag_only, also]).unwrap();
    let v = check(&set, "SPAM spammers");
    assert_eq!(v.blocked_by.as_ref().map(|r| r.id), Some(AutomodRuleId(3)));
    assert_eq!(v.blocked_by.as_ref().map(|r| &*r.name), Some("rule 3"));
    assert_eq!(v.flags.len(), 1);
    assert_eq!(v.flags[0].channel_id, ChannelId(77));
    assert_eq!(v.timeout_secs(), Some(600));
    assert_eq!(v.delete_secs(), Some(300));
    assert!(v.has_followups());
    // Flag only: not blocked, still reported.
    let v = check(&set, "just spam");
    assert!(v.blocked_by.is_none());
    assert_eq!(v.flags.len(), 1);
    assert_eq!(v.timeout_secs(), Some(60));
    let v = check(&set, "nothing");
    assert!(v.is_clean());
}

#[test]
fn regexes_match_the_normalized_text() {
    let set = RuleSet::compile(&[rule(
        1,
        Trigger::Regex {
            patterns: vec![r"fr+e+\s*n[i1]tro".into(), r"\d{3}-\d{4}".into()],
        },
    )])
    .unwrap();
    assert!(blocked(&set, "get FRREE  N1TRO now"));
    assert!(blocked(&set, "call 555-1234"));
    assert!(!blocked(&set, "free stuff"));
}

#[test]
fn a_regex_catastrophic_for_backtracking_stays_linear() {
    let set = RuleSet::compile(&[rule(
        1,
        Trigger::Regex {
            patterns: vec![r"(a+)+$".into(), r"(x+x+)+y".into(), r"(.*a){12}".into()],
        },
    )])
    .unwrap();
    let evil = format!("{}!", "a".repeat(4000));
    let evil2 = "x".repeat(4000);
    let start = Instant::now();
    for _ in 0..20 {
        assert!(blocked(&set, &evil)); // `(.*a){12}` matches; the point is the time
        let _ = check(&set, &evil2);
    }
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn an_oversized_regex_is_refused_naming_rule_and_pattern() {
    let mut r = rule(
        7,
        Trigger::Regex {
            patterns: vec!["fine".into(), r"(\w{50}){50}".into()],
        },
    );
    r.name = "huge".into();
    let err = RuleSet::compile(&[r]).unwrap_err();
    match &err {
        ModerationError::InvalidRegex {
            rule,
            pattern,
            reason,
        } => {
            assert_eq!(rule.id, AutomodRuleId(7));
            assert_eq!(&*rule.name, "huge");
            assert_eq!(pattern, r"(\w{50}){50}");
            assert!(reason.contains("limit"), "{reason}");
        }
        e => panic!("{e:?}"),
    }
    assert!(err.to_string().contains("huge") && err.to_string().contains(r"(\w{50}){50}"));
    assert_eq!(err.code(), "automod_invalid_regex");
    // Compiling it was refused quickly.
    let start = Instant::now();
    let _ = RuleSet::compile(&[rule(
        1,
        Trigger::Regex {
            patterns: vec![r"\w{1000}{1000}".into()],
        },
    )])
    .unwrap_err();
    assert!(start.elapsed() < Duration::from_secs(2));
}

#[test]
fn bad_regexes_are_refused() {
    for (p, why) in [
        ("(unclosed", "syntax"),
        ("", "empty"),
        ("a*", "matches the empty text"),
        (&"a".repeat(1001), "longer"),
    ] {
        let err = RuleSet::compile(&[rule(
            1,
            Trigger::Regex {
                patterns: vec![p.to_string()],
            },
        )])
        .unwrap_err();
        assert!(
            matches!(err, ModerationError::InvalidRegex { .. }),
            "{why}: {err:?}"
        );
    }
    let many = (0..11).map(|i| format!("x{i}")).collect();
    let err = RuleSet::compile(&[rule(1, Trigger::Regex { patterns: many })]).unwrap_err();
    assert!(
        matches!(err, ModerationError::LimitExceeded { max: 10, .. }),
        "{err:?}"
    );
}

#[test]
fn ten_thousand_keywords_compile_and_check_fast() {
    let words: Vec<String> = (0..10_000).map(|i| format!("badword{i:05}")).collect();
    let mut r = rule(
        1,
        Trigger::Keywords {
            words: words.clone(),
            allow: vec![],
        },
    );
    r.name = "big list".into();
    let start = Instant::now();
    let set = RuleSet::compile(&[r.clone()]).unwrap();
    let compile = start.elapsed();
    assert!(compile < Duration::from_secs(3), "compile {compile:?}");
    let clean =
        "a perfectly ordinary message about the weekend, with nothing in it at all ".repeat(4);
    let dirty = format!("{clean} badword09999");
    let start = Instant::now();
    for _ in 0..1000 {
        assert!(!blocked(&set, &clean));
        assert!(blocked(&set, &dirty));
    }
    let per = start.elapsed() / 2000;
    assert!(per < Duration::from_millis(1), "check {per:?}");
    // One more is refused, naming the rule.
    let mut over = r;
    if let Trigger::Keywords { words, .. } = &mut over.trigger {
        words.push("extra".into());
    }
    let err = RuleSet::compile(&[over]).unwrap_err();
    assert!(
        matches!(
            err,
            ModerationError::LimitExceeded {
                count: 10_001,
                max: 10_000,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("big list"));
}

#[test]
fn bad_keywords_are_refused() {
    for w in ["", "*", "**", "a*b", &"x".repeat(101)] {
        let err = RuleSet::compile(&[keywords(1, &[w])]).unwrap_err();
        assert!(
            matches!(err, ModerationError::InvalidKeyword { .. }),
            "{w:?}: {err:?}"
        );
    }
}

#[test]
fn mention_spam_counts_distinct_mentions() {
    let set = RuleSet::compile(&[rule(1, Trigger::MentionSpam { max_distinct: 3 })]).unwrap();
    let users = [UserId(1), UserId(2), UserId(3)];
    let roles = [RoleId(9)];
    let mut c = ctx("hi");
    c.mentions = Mentions {
        users: &users,
        roles: &[],
        everyone: false,
    };
    assert!(set.check(&c, &FloodTracker::new(10)).is_clean());
    c.mentions.roles = &roles;
    assert!(set.check(&c, &FloodTracker::new(10)).blocked_by.is_some());
    c.mentions = Mentions {
        users: &users,
        roles: &[],
        everyone: true,
    };
    assert!(set.check(&c, &FloodTracker::new(10)).blocked_by.is_some());
}

fn links(id: i64, allow: &[&str], block_invites: bool, block_links: bool) -> RuleSpec {
    rule(
        id,
        Trigger::Links {
            allow_domains: allow.iter().map(|s| s.to_string()).collect(),
            block_invites,
            block_links,
        },
    )
}

#[test]
fn links_outside_the_allow_list_are_caught() {
    let set =
        RuleSet::compile(&[links(1, &["example.com", "*.trusted.org"], false, true)]).unwrap();
    for hit in [
        "see https://evil.net/x",
        "go to evil.com now",
        "www.evil.xyz",
        "evil.zz/path",
        "HTTP://EVIL.NET",
        "ｅｖｉｌ．ｃｏｍ",
        "evil。com",
        "https://example.com.evil.net/",
        "http://192.168.1.1/admin",
    ] {
        assert!(blocked(&set, hit), "{hit}");
    }
    for ok in [
        "https://example.com/page",
        "docs.example.com",
        "https://cdn.trusted.org/a.png",
        "e.g. this",
        "pi is 3.14",
        "see main.rs",
        "no links",
    ] {
        assert!(!blocked(&set, ok), "{ok}");
    }
}

#[test]
fn invites_are_caught_even_on_allowed_domains() {
    let config = AutomodConfig {
        invite_prefixes: vec!["hearth.example/invite/".into(), "discord.gg/".into()],
    };
    let set =
        RuleSet::compile_with(&[links(1, &["hearth.example"], true, false)], &config).unwrap();
    assert!(blocked(&set, "join https://hearth.example/invite/abc"));
    assert!(blocked(&set, "join www.hearth.example/invite/abc"));
    assert!(blocked(&set, "discord.gg/xyz"));
    assert!(!blocked(&set, "https://hearth.example/channels/1"));
    assert!(!blocked(&set, "https://other.com/page")); // links themselves are not blocked here
    let err = RuleSet::compile(&[links(1, &[], false, false)]).unwrap_err();
    assert!(matches!(err, ModerationError::InvalidRule { .. }));
}

#[test]
fn flood_counts_repeats_within_the_window() {
    let set = RuleSet::compile(&[rule(
        1,
        Trigger::Flood {
            max_repeats: 2,
            window_secs: 10,
        },
    )])
    .unwrap();
    let flood = FloodTracker::new(100);
    let at = |content: &'static str, t: i64| {
        let mut c = ctx(content);
        c.now = NOW + t;
        set.check(&c, &flood).blocked_by.is_some()
    };
    assert!(!at("buy now", 0));
    assert!(!at("other", 1_000));
    assert!(!at("BUY NOW", 2_000));
    assert!(at("buy now", 3_000)); // third within 10 s
    assert!(!at("buy now", 30_000)); // the earlier ones are outside the window
    // Another author or community is counted apart.
    let mut c = ctx("buy now");
    c.now = NOW + 30_500;
    c.author_id = UserId(101);
    assert!(set.check(&c, &flood).is_clean());
    assert_eq!(flood.len(), 2);
}

#[test]
fn flood_tracker_memory_is_bounded() {
    let set = RuleSet::compile(&[rule(
        1,
        Trigger::Flood {
            max_repeats: 3,
            window_secs: 60,
        },
    )])
    .unwrap();
    let flood = FloodTracker::new(160);
    for u in 0..10_000 {
        let mut c = ctx("hello");
        c.author_id = UserId(u + 1);
        set.check(&c, &flood);
    }
    assert!(flood.len() <= 160, "{}", flood.len());
}

#[test]
fn new_accounts_and_new_members() {
    let set = RuleSet::compile(&[rule(
        1,
        Trigger::NewAccount {
            min_account_age_secs: 7 * 86_400,
            min_member_age_secs: 600,
        },
    )])
    .unwrap();
    let mut c = ctx("hello");
    assert!(set.check(&c, &FloodTracker::new(10)).is_clean());
    c.account_created_at = NOW - DAY_MS;
    assert!(set.check(&c, &FloodTracker::new(10)).blocked_by.is_some());
    c.account_created_at = NOW - 8 * DAY_MS;
    c.member_joined_at = NOW - 60_000;
    assert!(set.check(&c, &FloodTracker::new(10)).blocked_by.is_some());
}

#[test]
fn exempt_channels_and_roles_skip_the_rule() {
    let mut r = keywords(1, &["spam"]);
    r.exempt_channels = vec![ChannelId(11)];
    r.exempt_roles = vec![RoleId(5)];
    let set = RuleSet::compile(&[r, {
        let mut other = keywords(2, &["spam"]);
        other.actions = vec![Action::Flag {
            channel_id: ChannelId(99),
        }];
        other
    }])
    .unwrap();
    let flood = FloodTracker::new(10);
    let mut c = ctx("spam");
    assert!(set.check(&c, &flood).blocked_by.is_some());
    c.channel_id = ChannelId(11);
    let v = set.check(&c, &flood);
    assert!(
        v.blocked_by.is_none() && v.flags.len() == 1,
        "rule 2 still applies: {v:?}"
    );
    c.channel_id = ChannelId(10);
    let roles = [RoleId(4), RoleId(5)];
    c.author_roles = &roles;
    assert!(set.check(&c, &flood).blocked_by.is_none());
}

#[test]
fn disabled_rules_are_validated_but_never_fire() {
    let mut r = keywords(1, &["spam"]);
    r.enabled = false;
    let set = RuleSet::compile(&[r.clone()]).unwrap();
    assert!(set.is_empty() && !blocked(&set, "spam"));
    r.trigger = Trigger::Regex {
        patterns: vec!["(".into()],
    };
    assert!(RuleSet::compile(&[r]).is_err());
}

#[test]
fn rule_limits() {
    let many: Vec<RuleSpec> = (0..201).map(|i| keywords(i + 1, &["x"])).collect();
    assert!(matches!(
        RuleSet::compile(&many).unwrap_err(),
        ModerationError::TooManyRules {
            count: 201,
            max: 200
        }
    ));
    assert!(RuleSet::compile(&many[..200]).is_ok());
    assert!(matches!(
        RuleSet::compile(&[keywords(1, &["a"]), keywords(1, &["b"])]).unwrap_err(),
        ModerationError::DuplicateRuleId(_)
    ));
    let mut no_actions = keywords(1, &["a"]);
    no_actions.actions.clear();
    assert!(RuleSet::compile(&[no_actions]).is_err());
    let mut long = keywords(1, &["a"]);
    long.actions = vec![Action::Timeout { secs: 0 }];
    assert!(RuleSet::compile(&[long]).is_err());
    assert!(RuleSet::compile(&[rule(1, Trigger::MentionSpam { max_distinct: 0 })]).is_err());
    assert!(
        RuleSet::compile(&[rule(
            1,
            Trigger::Flood {
                max_repeats: 16,
                window_secs: 10
            }
        )])
        .is_err()
    );
}

#[test]
fn rule_specs_are_plain_json() {
    let json = serde_json::json!({
        "id": "42",
        "name": "no invites",
        "trigger": {"type": "links", "block_invites": true, "allow_domains": ["example.com"]},
        "actions": [{"type": "block"}, {"type": "flag", "channel_id": "9"}],
        "exempt_roles": ["5"]
    });
    let spec: RuleSpec = serde_json::from_value(json).unwrap();
    assert!(spec.enabled);
    assert_eq!(
        spec.trigger,
        Trigger::Links {
            allow_domains: vec!["example.com".into()],
            block_invites: true,
            block_links: true
        }
    );
    let back: RuleSpec = serde_json::from_value(serde_json::to_value(&spec).unwrap()).unwrap();
    assert_eq!(back, spec);
}

#[test]
fn word_boundaries_work_on_non_ascii_text() {
    let set = RuleSet::compile(&[rule(
        1,
        Trigger::Regex {
            patterns: vec![r"\bété\b".into(), r"\d+ ?€".into()],
        },
    )])
    .unwrap();
    assert!(blocked(&set, "un ÉTÉ chaud"));
    assert!(!blocked(&set, "étéx"));
    assert!(blocked(&set, "seulement 5 €"));
    // A kilobyte of non-ASCII text stays well under a millisecond.
    let long = "Bonjour à tous ! Qui vient à la réunion de jeudi ? ".repeat(20);
    let start = Instant::now();
    for _ in 0..100 {
        assert!(!blocked(&set, &long));
    }
    assert!(
        start.elapsed() / 100 < Duration::from_millis(1),
        "{:?}",
        start.elapsed() / 100
    );
}

#[test]
fn the_membership_is_needed_only_for_role_exemptions_and_member_age() {
    let plain = RuleSet::compile(&[keywords(1, &["spam"])]).unwrap();
    assert!(!plain.needs_member());
    let account_age = RuleSet::compile(&[rule(
        1,
        Trigger::NewAccount {
            min_account_age_secs: 3600,
            min_member_age_secs: 0,
        },
    )])
    .unwrap();
    assert!(
        !account_age.needs_member(),
        "the account's age is on the author"
    );
    let member_age = RuleSet::compile(&[rule(
        1,
        Trigger::NewAccount {
            min_account_age_secs: 0,
            min_member_age_secs: 600,
        },
    )])
    .unwrap();
    assert!(member_age.needs_member());
    let mut exempt = keywords(1, &["spam"]);
    exempt.exempt_roles = vec![RoleId(7)];
    assert!(RuleSet::compile(&[exempt]).unwrap().needs_member());
}
