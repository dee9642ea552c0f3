//! Property tests: evasion by invisible characters and case never hides a
//! keyword; a diff applied to `before` gives `after`.

use hearth_moderation::audit::diff;
use hearth_moderation::automod::normalize::normalize;
use hearth_moderation::automod::{Action, Mentions, RuleSet, RuleSpec, Trigger};
use hearth_moderation::{AutomodRuleId, FloodTracker, MessageContext};
use hearth_types::{ChannelId, CommunityId, UserId};
use proptest::prelude::*;
use serde_json::{Map, Value};

const INVISIBLE: &[char] = &[
    '\u{200B}', '\u{200C}', '\u{200D}', '\u{00AD}', '\u{2060}', '\u{FEFF}',
];

fn blocked(set: &RuleSet, content: &str) -> bool {
    let ctx = MessageContext {
        community_id: CommunityId(1),
        channel_id: ChannelId(1),
        author_id: UserId(1),
        author_roles: &[],
        content,
        mentions: Mentions::default(),
        account_created_at: 0,
        member_joined_at: 0,
        now: 0,
    };
    set.check(&ctx, &FloodTracker::new(10)).blocked_by.is_some()
}

proptest! {
    #[test]
    fn disguised_keywords_are_found(
        word in "[a-z]{3,10}",
        before in "[a-z ]{0,20}",
        after in "[a-z ]{0,20}",
        upper in proptest::collection::vec(any::<bool>(), 10),
        gaps in proptest::collection::vec(0usize..INVISIBLE.len() + 3, 10),
    ) {
        let set = RuleSet::compile(&[RuleSpec {
            id: AutomodRuleId(1),
            name: "w".into(),
            enabled: true,
            trigger: Trigger::Keywords { words: vec![word.clone()], allow: vec![] },
            actions: vec![Action::Block],
            exempt_channels: vec![],
            exempt_roles: vec![],
        }]).unwrap();
        let mut disguised = String::new();
        for (i, c) in word.chars().enumerate() {
            disguised.push(if upper[i] { c.to_ascii_uppercase() } else { c });
            if let Some(z) = INVISIBLE.get(gaps[i]) {
                disguised.push(*z);
            }
        }
        let text = format!("{before} {disguised} {after}");
        prop_assert!(blocked(&set, &text), "{text:?}");
        prop_assert_eq!(normalize(&normalize(&text)), normalize(&text));
    }

    #[test]
    fn a_diff_applied_to_before_gives_after(
        before in proptest::collection::btree_map("[a-e]", 0i64..3, 0..5),
        after in proptest::collection::btree_map("[a-e]", 0i64..3, 0..5),
    ) {
        let to_value = |m: &std::collections::BTreeMap<String, i64>| {
            Value::Object(m.iter().map(|(k, v)| (k.clone(), Value::from(*v))).collect::<Map<_, _>>())
        };
        let (b, a) = (to_value(&before), to_value(&after));
        let mut applied = before.clone();
        for c in diff(&b, &a) {
            prop_assert_ne!(&c.before, &c.after);
            match c.after {
                Some(v) => { applied.insert(c.key, v.as_i64().unwrap()); }
                None => { applied.remove(&c.key); }
            }
        }
        prop_assert_eq!(applied, after);
    }
}
