//! Mentions in message text: `<@user_id>`, `<@&role_id>` and `@everyone`.

use hearth_types::{RoleId, UserId};

/// What the text mentions, before checking that the targets exist or that the
/// author may ping everyone. At most 100 distinct users and roles are kept.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ParsedMentions {
    pub users: Vec<UserId>,
    pub roles: Vec<RoleId>,
    pub everyone: bool,
}

/// `@everyone` as a word of its own: not inside an address such as
/// `mail@everyone.org` or a longer word such as `@everyones`.
fn mentions_everyone(text: &str) -> bool {
    const WORD: &str = "@everyone";
    let is_wordy = |c: char| c.is_alphanumeric() || c == '_';
    text.match_indices(WORD).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + WORD.len()..].chars().next();
        !before.is_some_and(|c| is_wordy(c) || matches!(c, '.' | '-' | '@'))
            && !after.is_some_and(is_wordy)
    })
}

pub fn parse_mentions(text: &str) -> ParsedMentions {
    let mut out = ParsedMentions {
        everyone: mentions_everyone(text),
        ..Default::default()
    };
    let mut rest = text;
    while let Some(start) = rest.find("<@") {
        rest = &rest[start + 2..];
        let (is_role, body) = match rest.strip_prefix('&') {
            Some(b) => (true, b),
            None => (false, rest),
        };
        let Some(end) = body.find('>') else { break };
        if let Ok(id) = body[..end].parse::<i64>()
            && id > 0
        {
            if is_role && !out.roles.contains(&RoleId(id)) && out.roles.len() < 100 {
                out.roles.push(RoleId(id));
            } else if !is_role && !out.users.contains(&UserId(id)) && out.users.len() < 100 {
                out.users.push(UserId(id));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_all_three_kinds() {
        let m = parse_mentions("hi <@12> and <@&34>, <@12> again, @everyone <@x> <@-5> <@ 7> <@&9");
        assert_eq!(m.users, vec![UserId(12)]);
        assert_eq!(m.roles, vec![RoleId(34)]);
        assert!(m.everyone);
        assert_eq!(parse_mentions("plain").users.len(), 0);
        // Neither an address nor a longer word pings everyone.
        for not_everyone in [
            "email@everyone.org-ish",
            "@everyones",
            "x.@everyone",
            "plain",
        ] {
            let m = parse_mentions(not_everyone);
            assert!(!m.everyone, "{not_everyone}");
            assert!(m.users.is_empty(), "{not_everyone}");
        }
        for everyone in [
            "@everyone",
            "hi @everyone.",
            "(@everyone)",
            "ping\n@everyone!",
        ] {
            assert!(parse_mentions(everyone).everyone, "{everyone}");
        }
    }
}
