//! Finding links in (normalized) message text without a regex: URLs with a
//! scheme (`https://…`, any `scheme://`) and bare domains (`example.com`,
//! `example.com/path`, `www.example.xyz`).
//!
//! A bare `word.word` is a link only when it is clearly one — it starts with
//! `www.`, is followed by a path, or ends in a common top-level domain —
//! so "e.g.", "3.14" and "main.rs" are not links. Not covered: domains
//! written with spaces or brackets (`example [.] com`).

/// One link found in a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Link<'a> {
    /// The host, lowercase, without `www.`, port or user info.
    pub host: &'a str,
    /// The host and everything after it (path, query), without `www.`.
    pub rest: &'a str,
}

impl Link<'_> {
    /// Whether the host is `domain` or a subdomain of it.
    pub fn host_within(&self, domain: &str) -> bool {
        self.host == domain
            || (self.host.len() > domain.len()
                && self.host.ends_with(domain)
                && self.host.as_bytes()[self.host.len() - domain.len() - 1] == b'.')
    }
}

/// Top-level domains that make a bare `name.tld` a link. Short on purpose:
/// file names (`.rs`, `.md`, `.py`) and abbreviations stay text.
const COMMON_TLDS: &[&str] = &[
    "com", "net", "org", "io", "gg", "co", "me", "tv", "xyz", "info", "biz", "app", "dev", "ru",
    "cn", "uk", "de", "fr", "ly", "be", "to", "link", "click", "top", "site", "online", "shop",
    "store", "live", "club", "gift", "gifts", "fun", "lol", "pro", "vip", "win", "icu", "ws", "cc",
    "us", "eu", "ca", "au", "in", "jp", "kr", "br", "nl", "pl", "es", "it", "ch", "se", "tk", "ml",
    "ga", "cf", "gq", "su", "ua", "edu", "gov", "tech", "space", "website", "email",
];

fn is_separator(c: char) -> bool {
    c.is_whitespace()
        || matches!(
            c,
            '<' | '>'
                | '"'
                | '\''
                | '`'
                | '('
                | ')'
                | '['
                | ']'
                | '{'
                | '}'
                | '|'
                | ','
                | '\\'
                | '^'
        )
}

/// Calls `f` for every link in `text`, in order, until `f` returns false.
pub fn for_each_link<'a>(text: &'a str, mut f: impl FnMut(Link<'a>) -> bool) {
    for token in text.split(is_separator) {
        if token.len() < 4 {
            continue;
        }
        if let Some(link) = parse_token(token)
            && !f(link)
        {
            return;
        }
    }
}

fn parse_token(token: &str) -> Option<Link<'_>> {
    let (rest, scheme) = match token.find("://") {
        Some(i) => {
            // The scheme: the run of scheme characters right before `://`.
            let before = &token[..i];
            let start = before
                .char_indices()
                .rev()
                .take_while(|&(_, c)| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
                .last()
                .map(|(j, _)| j)?;
            if !before[start..].starts_with(|c: char| c.is_ascii_alphabetic()) {
                return None;
            }
            (&token[i + 3..], true)
        }
        None => (
            token.trim_start_matches(|c: char| !c.is_alphanumeric()),
            false,
        ),
    };
    let rest = rest.trim_end_matches(['.', ',', ';', ':', '!', '?', '*', '_', '~', '.']);
    let host_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let mut authority = &rest[..host_end];
    let mut rest_from = 0;
    if let Some(at) = authority.rfind('@') {
        if !scheme {
            return None; // an e-mail address
        }
        rest_from = at + 1;
        authority = &authority[at + 1..];
    }
    let host = match authority.find(':') {
        Some(p) => &authority[..p],
        None => authority,
    };
    let host = host.trim_end_matches('.');
    if host.is_empty()
        || !host
            .chars()
            .all(|c| c.is_alphanumeric() || c == '.' || c == '-')
    {
        return None;
    }
    let (host, www) = match host.strip_prefix("www.") {
        Some(h) => (h, true),
        None => (host, false),
    };
    if !scheme {
        let mut labels = host.split('.');
        let tld = labels.next_back()?;
        if labels.clone().next().is_none() || labels.any(str::is_empty) || tld.is_empty() {
            return None;
        }
        let has_path = host_end < rest.len();
        let tld_ok = tld.len() >= 2 && tld.chars().all(char::is_alphabetic);
        if !tld_ok || !(www || has_path || COMMON_TLDS.contains(&tld)) {
            return None;
        }
    }
    let host_start = rest_from + if www { 4 } else { 0 };
    Some(Link {
        host,
        rest: &rest[host_start..],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn links(text: &str) -> Vec<(String, String)> {
        let mut v = Vec::new();
        for_each_link(text, |l| {
            v.push((l.host.to_owned(), l.rest.to_owned()));
            true
        });
        v
    }

    #[test]
    fn finds_urls_and_bare_domains() {
        assert_eq!(
            links("see https://user@www.example.com:8080/a?b=1. ok"),
            vec![("example.com".into(), "example.com:8080/a?b=1".into())]
        );
        assert_eq!(
            links("go to example.com now"),
            vec![("example.com".into(), "example.com".into())]
        );
        assert_eq!(
            links("discord.gg/abc"),
            vec![("discord.gg".into(), "discord.gg/abc".into())]
        );
        assert_eq!(
            links("(www.example.zz)"),
            vec![("example.zz".into(), "example.zz".into())]
        );
        assert_eq!(
            links("http://localhost:3000/x"),
            vec![("localhost".into(), "localhost:3000/x".into())]
        );
    }

    #[test]
    fn leaves_text_alone() {
        for t in [
            "e.g. this",
            "pi is 3.14",
            "see main.rs and README.md",
            "mail bob@example.com",
            "wait...what",
            "a.b",
        ] {
            assert!(links(t).is_empty(), "{t}");
        }
    }

    #[test]
    fn suffix_allow() {
        let l = Link {
            host: "cdn.example.com",
            rest: "",
        };
        assert!(l.host_within("example.com") && l.host_within("cdn.example.com"));
        assert!(!l.host_within("ample.com") && !l.host_within("other.com"));
    }
}
