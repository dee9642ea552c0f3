//! Every mail the server sends. Each template is a plain Rust function of
//! its values: a subject, a text part, and an HTML part built from the same
//! paragraphs. Values are escaped as they enter the HTML (names and
//! addresses are user input); links are only ever the server's own, and
//! are escaped too, so a token can never break out of its attribute.

/// A mail's three rendered parts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Template {
    /// After registration.
    Welcome { username: String, app_url: String },
    /// Proves the address belongs to the account.
    VerifyEmail { username: String, link: String },
    /// A single-use link to set a new password.
    PasswordReset {
        username: String,
        link: String,
        valid_minutes: u64,
    },
    /// To the new address of an email change: confirm it.
    EmailChangeConfirm {
        username: String,
        new_email: String,
        link: String,
    },
    /// To the old address of an email change: it is being changed.
    EmailChangeNotice { username: String, new_email: String },
    /// Unread mentions and DMs while the user was away.
    Digest {
        username: String,
        /// One line each: who, where, and the start of the message.
        items: Vec<DigestItem>,
        /// Mentions not listed (the mail shows the first few).
        more: usize,
        app_url: String,
    },
}

/// One unread notification in a digest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DigestItem {
    /// `ann mentioned you in #general (Town)`.
    pub headline: String,
    pub excerpt: String,
}

/// A piece of a paragraph: text (escaped in HTML) or a link.
enum Part<'a> {
    Text(&'a str),
    Link(&'a str),
}

impl Template {
    /// A stable name, stored with the queued mail (logs, metrics, tests).
    pub fn kind(&self) -> &'static str {
        match self {
            Template::Welcome { .. } => "welcome",
            Template::VerifyEmail { .. } => "verify_email",
            Template::PasswordReset { .. } => "password_reset",
            Template::EmailChangeConfirm { .. } => "email_change_confirm",
            Template::EmailChangeNotice { .. } => "email_change_notice",
            Template::Digest { .. } => "digest",
        }
    }

    pub fn render(&self, site: &str) -> Rendered {
        use Part::*;
        let reset_validity = match self {
            Template::PasswordReset { valid_minutes, .. } => format!(
                "It works once and expires in {valid_minutes} minutes. Setting a new password signs you out everywhere."
            ),
            _ => String::new(),
        };
        let digest_lines: Vec<String> = match self {
            Template::Digest { items, more, .. } => {
                let mut v: Vec<String> = items
                    .iter()
                    .map(|i| format!("{}: \u{201c}{}\u{201d}", i.headline, i.excerpt))
                    .collect();
                if *more > 0 {
                    v.push(format!("…and {more} more."));
                }
                v
            }
            _ => Vec::new(),
        };
        let digest_count = match self {
            Template::Digest { items, more, .. } => items.len() + more,
            _ => 0,
        };
        let (subject, paragraphs): (String, Vec<Vec<Part>>) = match self {
            Template::Welcome { username, app_url } => (
                format!("Welcome to {site}"),
                vec![
                    vec![Text("Hi "), Text(username), Text(",")],
                    vec![Text("your account is ready. Sign in at "), Link(app_url)],
                    vec![Text(
                        "Verify your email address from your settings so you can recover your account if you forget your password.",
                    )],
                ],
            ),
            Template::VerifyEmail { username, link } => (
                format!("Verify your email address for {site}"),
                vec![
                    vec![Text("Hi "), Text(username), Text(",")],
                    vec![
                        Text("open this link to verify your email address: "),
                        Link(link),
                    ],
                    vec![Text(
                        "It works once and expires in 24 hours. If you did not ask for this, ignore this mail.",
                    )],
                ],
            ),
            Template::PasswordReset { username, link, .. } => (
                format!("Reset your {site} password"),
                vec![
                    vec![Text("Hi "), Text(username), Text(",")],
                    vec![
                        Text("open this link to choose a new password: "),
                        Link(link),
                    ],
                    vec![Text(&reset_validity)],
                    vec![Text(
                        "If you did not ask for this, ignore this mail: your password stays as it is.",
                    )],
                ],
            ),
            Template::EmailChangeConfirm {
                username,
                new_email,
                link,
            } => (
                format!("Confirm your new email address for {site}"),
                vec![
                    vec![Text("Hi "), Text(username), Text(",")],
                    vec![
                        Text("open this link to make "),
                        Text(new_email),
                        Text(" your account's email address: "),
                        Link(link),
                    ],
                    vec![Text("It works once and expires in 24 hours.")],
                ],
            ),
            Template::EmailChangeNotice {
                username,
                new_email,
            } => (
                format!("Your {site} email address is being changed"),
                vec![
                    vec![Text("Hi "), Text(username), Text(",")],
                    vec![
                        Text(
                            "someone signed in to your account asked to change its email address to ",
                        ),
                        Text(new_email),
                        Text(". It changes once the new address is confirmed."),
                    ],
                    vec![Text(
                        "If this was not you, change your password now and sign out your other sessions.",
                    )],
                ],
            ),
            Template::Digest {
                username, app_url, ..
            } => {
                let mut p = vec![
                    vec![Text("Hi "), Text(username), Text(",")],
                    vec![Text("while you were away:")],
                ];
                p.extend(digest_lines.iter().map(|l| vec![Text(l)]));
                p.push(vec![Text("Catch up at "), Link(app_url)]);
                p.push(vec![Text(
                    "You get this mail for mentions and direct messages left unread. Turn it off under Notifications in your settings.",
                )]);
                (
                    if digest_count == 1 {
                        format!("1 unread mention on {site}")
                    } else {
                        format!("{digest_count} unread mentions on {site}")
                    },
                    p,
                )
            }
        };
        let text = paragraphs
            .iter()
            .map(|p| {
                p.iter()
                    .map(|part| match part {
                        Text(t) | Link(t) => *t,
                    })
                    .collect::<String>()
            })
            .collect::<Vec<_>>()
            .join("\n\n")
            + "\n";
        let mut html = String::from(
            "<!doctype html>\n<html><head><meta charset=\"utf-8\"></head><body style=\"font-family:sans-serif\">\n",
        );
        for p in &paragraphs {
            html.push_str("<p>");
            for part in p {
                match part {
                    Text(t) => html.push_str(&escape(t)),
                    Link(url) => {
                        let url = escape(url);
                        html.push_str(&format!("<a href=\"{url}\">{url}</a>"));
                    }
                }
            }
            html.push_str("</p>\n");
        }
        html.push_str("</body></html>\n");
        Rendered {
            subject,
            text,
            html,
        }
    }
}

/// Escapes text for HTML content and double-quoted attributes.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_parts_carry_the_link_and_html_is_escaped() {
        let t = Template::EmailChangeConfirm {
            username: "<script>alert(1)</script>".into(),
            new_email: "a&b@example.org".into(),
            link: "https://chat.example.org/verify-email?token=abc\"><x".into(),
        };
        let r = t.render("Hearth");
        assert_eq!(r.subject, "Confirm your new email address for Hearth");
        assert!(r.text.contains("token=abc\"><x"), "{}", r.text);
        assert!(r.text.contains("<script>"), "text is not HTML: {}", r.text);
        assert!(!r.html.contains("<script>"), "{}", r.html);
        assert!(r.html.contains("&lt;script&gt;"), "{}", r.html);
        assert!(r.html.contains("a&amp;b@example.org"), "{}", r.html);
        assert!(
            r.html.contains(
                "href=\"https://chat.example.org/verify-email?token=abc&quot;&gt;&lt;x\""
            ),
            "{}",
            r.html
        );
    }

    #[test]
    fn every_template_renders() {
        let all = [
            Template::Welcome {
                username: "ann".into(),
                app_url: "http://h".into(),
            },
            Template::VerifyEmail {
                username: "ann".into(),
                link: "http://h/v".into(),
            },
            Template::PasswordReset {
                username: "ann".into(),
                link: "http://h/r".into(),
                valid_minutes: 30,
            },
            Template::EmailChangeConfirm {
                username: "ann".into(),
                new_email: "n@h".into(),
                link: "http://h/c".into(),
            },
            Template::EmailChangeNotice {
                username: "ann".into(),
                new_email: "n@h".into(),
            },
            Template::Digest {
                username: "ann".into(),
                items: vec![DigestItem {
                    headline: "bob mentioned you in #general (Town)".into(),
                    excerpt: "<b>look</b>".into(),
                }],
                more: 2,
                app_url: "http://h".into(),
            },
        ];
        for t in all {
            let r = t.render("Hearth");
            assert!(!r.subject.is_empty() && r.text.contains("ann") && r.html.contains("ann"));
            assert!(r.html.starts_with("<!doctype html>"), "{}", t.kind());
        }
    }

    #[test]
    fn a_digest_lists_and_counts() {
        let r = Template::Digest {
            username: "ann".into(),
            items: vec![DigestItem {
                headline: "bob mentioned you in #general (Town)".into(),
                excerpt: "<b>look</b>".into(),
            }],
            more: 2,
            app_url: "http://h".into(),
        }
        .render("Hearth");
        assert_eq!(r.subject, "3 unread mentions on Hearth");
        assert!(
            r.text
                .contains("bob mentioned you in #general (Town): \u{201c}<b>look</b>\u{201d}"),
            "{}",
            r.text
        );
        assert!(r.text.contains("…and 2 more."));
        assert!(r.html.contains("&lt;b&gt;look"), "{}", r.html);
    }
}
