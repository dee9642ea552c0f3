//! Mail against a real SMTP server (issue #13): `scripts/smtp.sh` runs an
//! aiosmtpd sink that stores each message it accepts as a file, answers 550
//! for `bounce…` recipients and 451 for `tempfail…` ones. These tests make
//! the server mail through it, read the messages back (MIME parsed), follow
//! their links, and fail, never skip, when the sink is not running.
//!
//! The sink is shared by every test, so each test mails only addresses of
//! its own (a random part in every local part).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use hearth_server::config::{Config, Secret};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::gateway::Gw;
use crate::{Db, TestServer, User, assert_error};

pub(crate) fn sink_addr() -> String {
    std::env::var("HEARTH_TEST_SMTP").unwrap_or_else(|_| "127.0.0.1:2526".into())
}

fn sink_dir() -> PathBuf {
    std::env::var("HEARTH_TEST_MAIL_DIR")
        .unwrap_or_else(|_| "/var/tmp/hearth-smtp/mail".into())
        .into()
}

/// Fails the test when the sink is absent: mail untested is not mail tested.
pub(crate) fn require_sink() {
    let addr = sink_addr();
    assert!(
        std::net::TcpStream::connect_timeout(
            &addr.parse().expect("HEARTH_TEST_SMTP is host:port"),
            Duration::from_secs(2)
        )
        .is_ok(),
        "the test SMTP server must be running on {addr}: start it with scripts/smtp.sh"
    );
}

/// Mail on, through `smtp` (the sink unless a test cuts in), fast retries.
pub(crate) fn mail_on(c: &mut Config, smtp: &str) {
    c.smtp_url = Secret(format!("smtp://{smtp}"));
    c.mail_from = "Hearth <hearth@hearth.test>".into();
    c.mail_retry_base_ms = 100;
    c.public_url = "http://hearth.test".into();
}

async fn server(db: Db, tweak: impl FnOnce(&mut Config)) -> TestServer {
    require_sink();
    TestServer::start_with(db, |c| {
        mail_on(c, &sink_addr());
        tweak(c);
    })
    .await
}

/// An address no other test (or run) uses; `prefix` steers the sink.
fn address(prefix: &str) -> String {
    format!(
        "{prefix}-{}-{:08x}@hearth.test",
        std::process::id(),
        rand::random::<u32>()
    )
}

/// A username from an address's random part.
fn name_for(email: &str) -> String {
    let local = email.split('@').next().expect("local part");
    let tail: String = local.rsplit('-').next().expect("random part").into();
    format!("u{tail}")
}

async fn register(s: &TestServer, email: &str) -> User {
    let (st, v) = s
        .call(
            Method::POST,
            "/api/v1/auth/register",
            None,
            Some(json!({"username": name_for(email), "password": "correct horse battery", "email": email})),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "register {email}: {v}");
    User {
        id: v["user"]["id"].as_str().expect("id").into(),
        token: v["access_token"].as_str().expect("token").into(),
        refresh: v["refresh_token"].as_str().expect("refresh").into(),
    }
}

async fn login(s: &TestServer, login: &str, password: &str) -> (StatusCode, Value) {
    s.call(
        Method::POST,
        "/api/v1/auth/login",
        None,
        Some(json!({"login": login, "password": password})),
    )
    .await
}

async fn anon(s: &TestServer, path: &str, body: Value) -> (StatusCode, Value) {
    s.call(Method::POST, path, None, Some(body)).await
}

/// A message as the sink received it.
#[derive(Debug)]
struct Received {
    subject: String,
    text: String,
    html: String,
}

impl Received {
    /// The token of the link the mail carries (`…?token=<token>`).
    fn token(&self) -> String {
        let from = self.text.find("token=").expect("a link with a token") + "token=".len();
        let token: String = self.text[from..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
            .collect();
        assert!(
            self.html.contains(&token),
            "the HTML part has the link too: {}",
            self.html
        );
        token
    }
}

/// Every message the sink accepted for `to`, oldest first.
fn delivered(to: &str) -> Vec<Received> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(sink_dir())
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    files.retain(|p| p.extension().is_some_and(|e| e == "eml"));
    files.sort();
    let want = format!("X-Sink-Rcpt-To: {to}\r\n");
    files
        .iter()
        .filter_map(|p| std::fs::read(p).ok())
        .filter(|raw| raw.starts_with(want.as_bytes()))
        .map(|raw| {
            let msg = mail_parser::MessageParser::default()
                .parse(&raw[want.len()..])
                .expect("a MIME message");
            Received {
                subject: msg.subject().unwrap_or_default().to_string(),
                text: msg.body_text(0).map(|t| t.into_owned()).unwrap_or_default(),
                html: msg.body_html(0).map(|t| t.into_owned()).unwrap_or_default(),
            }
        })
        .collect()
}

/// Waits until `n` messages reached `to`; returns them.
async fn wait_for(to: &str, n: usize, within: Duration) -> Vec<Received> {
    let until = Instant::now() + within;
    loop {
        let got = delivered(to);
        if got.len() >= n {
            return got;
        }
        assert!(
            Instant::now() < until,
            "{n} mail(s) for {to} within {within:?}; got {}",
            got.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The value of `hearth_mail_total{kind, outcome}` (0 when absent).
async fn mail_metric(s: &TestServer, kind: &str, outcome: &str) -> u64 {
    let (_, text) = s.call(Method::GET, "/metrics", None, None).await;
    let text = text.as_str().unwrap_or_default().to_string();
    let want = format!("hearth_mail_total{{kind=\"{kind}\",outcome=\"{outcome}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&want))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

async fn wait_metric(s: &TestServer, kind: &str, outcome: &str, n: u64, within: Duration) {
    let until = Instant::now() + within;
    loop {
        let v = mail_metric(s, kind, outcome).await;
        if v >= n {
            assert_eq!(v, n, "hearth_mail_total{{{kind},{outcome}}}");
            return;
        }
        assert!(
            Instant::now() < until,
            "hearth_mail_total{{{kind},{outcome}}} reached {n} within {within:?}; it is {v}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn reason(v: &Value) -> &str {
    v["error"]["details"]["reason"].as_str().unwrap_or_default()
}

const WAIT: Duration = Duration::from_secs(10);

/// Registration mails a welcome (once, from the USER_CREATED consumer);
/// verification mails a single-use link that marks the address verified.
pub async fn welcome_and_verification(db: Db) {
    let s = server(db, |_| {}).await;
    let email = address("ann");
    let ann = register(&s, &email).await;
    let welcome = wait_for(&email, 1, WAIT).await;
    assert_eq!(welcome[0].subject, "Welcome to Hearth");
    assert!(
        welcome[0].text.contains(&name_for(&email)),
        "{:?}",
        welcome[0]
    );
    assert!(
        welcome[0].html.contains("<p>"),
        "an HTML part: {:?}",
        welcome[0]
    );
    let (_, me) = s.get("/api/v1/users/@me", &ann.token).await;
    assert_eq!(me["email"], email.as_str());
    assert_eq!(me["email_verified"], false);

    let (st, v) = s
        .post("/api/v1/users/@me/email/verify", &ann.token, json!(null))
        .await;
    assert_eq!(st, StatusCode::ACCEPTED, "{v}");
    let mails = wait_for(&email, 2, WAIT).await;
    let verify = &mails[1];
    assert!(
        verify.subject.starts_with("Verify your email"),
        "{verify:?}"
    );
    assert!(
        verify
            .text
            .contains("http://hearth.test/verify-email?token="),
        "{verify:?}"
    );
    let token = verify.token();

    let (st, v) = anon(&s, "/api/v1/auth/verify-email", json!({"token": token})).await;
    assert_eq!(st, StatusCode::NO_CONTENT, "{v}");
    let (_, me) = s.get("/api/v1/users/@me", &ann.token).await;
    assert_eq!(me["email_verified"], true);
    // Single use; unknown tokens are named as such; the fields are named.
    let (st, v) = anon(&s, "/api/v1/auth/verify-email", json!({"token": token})).await;
    assert_error(st, &v, 400, "invalid_request");
    assert_eq!(reason(&v), "token_used", "{v}");
    assert!(v["error"]["details"]["fields"]["token"].is_string(), "{v}");
    let (st, v) = anon(&s, "/api/v1/auth/verify-email", json!({"token": "nope"})).await;
    assert_error(st, &v, 400, "invalid_request");
    assert_eq!(reason(&v), "token_invalid", "{v}");
    let (st, v) = anon(
        &s,
        "/api/v1/auth/verify-email",
        json!({"token": token, "x": 1}),
    )
    .await;
    assert_error(st, &v, 400, "invalid_request");
    let (st, v) = s
        .post("/api/v1/users/@me/email/verify", &ann.token, json!(null))
        .await;
    assert_error(st, &v, 409, "conflict");

    // A user without an address gets no welcome, and cannot verify one.
    let bob = s.register("nomailbob").await;
    let (st, v) = s
        .post("/api/v1/users/@me/email/verify", &bob.token, json!(null))
        .await;
    assert_error(st, &v, 400, "invalid_request");

    // The welcome went out once, whatever else happened since.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let welcomes = delivered(&email)
        .into_iter()
        .filter(|m| m.subject == "Welcome to Hearth")
        .count();
    assert_eq!(welcomes, 1);
    assert_eq!(mail_metric(&s, "welcome", "sent").await, 1);
    s.stop().await;
}

/// A reset link sets a new password once, and signs the account out
/// everywhere: tokens stop working and sockets close with 4010. Asking
/// never tells whether the account exists.
pub async fn password_reset_signs_out_everywhere(db: Db) {
    let s = server(db, |_| {}).await;
    let email = address("cat");
    let cat = register(&s, &email).await;
    wait_for(&email, 1, WAIT).await;
    let (st, second) = login(&s, &email, "correct horse battery").await;
    assert_eq!(st, StatusCode::OK, "{second}");
    let (mut gw, _) = Gw::identify(&s, &cat).await;

    // Known and unknown logins get the same answer.
    let (st_known, known) = anon(
        &s,
        "/api/v1/auth/password-reset",
        json!({"login": name_for(&email)}),
    )
    .await;
    let (st_unknown, unknown) = anon(
        &s,
        "/api/v1/auth/password-reset",
        json!({"login": address("ghost")}),
    )
    .await;
    assert_eq!(st_known, StatusCode::ACCEPTED, "{known}");
    assert_eq!((st_unknown, &unknown), (st_known, &known));
    let mails = wait_for(&email, 2, WAIT).await;
    let reset = &mails[1];
    assert!(
        reset.subject.starts_with("Reset your Hearth password"),
        "{reset:?}"
    );
    assert!(reset.text.contains("expires in 30 minutes"), "{reset:?}");
    let token = reset.token();

    // A bad password is refused without spending the link.
    let confirm = "/api/v1/auth/password-reset/confirm";
    let (st, v) = anon(&s, confirm, json!({"token": token, "password": "short"})).await;
    assert_error(st, &v, 400, "invalid_request");
    assert!(
        v["error"]["details"]["fields"]["password"].is_string(),
        "{v}"
    );
    let (st, v) = anon(
        &s,
        confirm,
        json!({"token": token, "password": "a brand new secret"}),
    )
    .await;
    assert_eq!(st, StatusCode::NO_CONTENT, "{v}");
    let (st, v) = anon(
        &s,
        confirm,
        json!({"token": token, "password": "another new secret"}),
    )
    .await;
    assert_error(st, &v, 400, "invalid_request");
    assert_eq!(reason(&v), "token_used", "{v}");

    // Every session is gone: access tokens, refresh tokens, sockets.
    assert_eq!(gw.closed_with(Duration::from_secs(3)).await, 4010);
    for t in [&cat.token, second["access_token"].as_str().expect("token")] {
        let (st, v) = s.get("/api/v1/users/@me", t).await;
        assert_error(st, &v, 401, "unauthorized");
    }
    let (st, v) = anon(
        &s,
        "/api/v1/auth/refresh",
        json!({"refresh_token": cat.refresh}),
    )
    .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED, "{v}");
    let (st, v) = login(&s, &email, "correct horse battery").await;
    assert_error(st, &v, 401, "invalid_credentials");
    let (st, v) = login(&s, &email, "a brand new secret").await;
    assert_eq!(st, StatusCode::OK, "{v}");
    // The link reached the address, so it is verified now.
    let token = v["access_token"].as_str().expect("token");
    let (_, me) = s.get("/api/v1/users/@me", token).await;
    assert_eq!(me["email_verified"], true);

    // Nothing was mailed for the unknown login; nothing else for cat.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(delivered(&email).len(), 2);
    assert_eq!(mail_metric(&s, "password_reset", "queued").await, 1);
    let (st, v) = anon(&s, "/api/v1/auth/password-reset", json!({"login": ""})).await;
    assert_error(st, &v, 400, "invalid_request");
    s.stop().await;
}

/// Reset links expire (`password_reset_ttl_secs`), and a newer reset
/// kills the older links.
pub async fn reset_links_expire(db: Db) {
    let s = server(db, |c| c.password_reset_ttl_secs = 1).await;
    let email = address("dan");
    register(&s, &email).await;
    wait_for(&email, 1, WAIT).await;
    let ask = || anon(&s, "/api/v1/auth/password-reset", json!({"login": email}));
    assert_eq!(ask().await.0, StatusCode::ACCEPTED);
    let first = wait_for(&email, 2, WAIT).await[1].token();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let confirm = "/api/v1/auth/password-reset/confirm";
    let (st, v) = anon(
        &s,
        confirm,
        json!({"token": first, "password": "a brand new secret"}),
    )
    .await;
    assert_error(st, &v, 400, "invalid_request");
    assert_eq!(reason(&v), "token_expired", "{v}");
    // A verification token is not a reset token.
    let (st, v) = anon(
        &s,
        confirm,
        json!({"token": "x".repeat(300), "password": "a brand new secret"}),
    )
    .await;
    assert_error(st, &v, 400, "invalid_request");
    assert_eq!(reason(&v), "token_invalid", "{v}");
    s.stop().await;
}

/// A temporary refusal (451) is retried with backoff until it passes; one
/// that never passes fails after three retries, counted; a permanent one
/// (550) is not retried and marks the address, which then gets no mail.
pub async fn retries_and_bounces(db: Db) {
    let s = server(db, |_| {}).await;
    // Refused twice, then accepted: delivered once, after two retries.
    let flaky = address("tempfail2");
    register(&s, &flaky).await;
    let got = wait_for(&flaky, 1, WAIT).await;
    assert_eq!(got[0].subject, "Welcome to Hearth");
    assert_eq!(mail_metric(&s, "welcome", "retried").await, 2);

    // Refused every time: four attempts (three retries), then failed.
    let dead = address("tempfail");
    register(&s, &dead).await;
    wait_metric(&s, "welcome", "failed", 1, WAIT).await;
    assert_eq!(mail_metric(&s, "welcome", "retried").await, 2 + 3);
    assert!(delivered(&dead).is_empty());

    // Refused for good: not retried, the address is marked.
    let gone = address("bounce");
    let eve = register(&s, &gone).await;
    wait_metric(&s, "welcome", "bounced", 1, WAIT).await;
    assert_eq!(
        mail_metric(&s, "welcome", "retried").await,
        5,
        "a 5xx is not retried"
    );
    let (st, v) = s
        .post("/api/v1/users/@me/email/verify", &eve.token, json!(null))
        .await;
    assert_error(st, &v, 400, "invalid_request");
    assert_eq!(reason(&v), "email_bounced", "{v}");
    // A reset answers as always, and queues nothing for a dead address.
    let (st, _) = anon(&s, "/api/v1/auth/password-reset", json!({"login": gone})).await;
    assert_eq!(st, StatusCode::ACCEPTED);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(mail_metric(&s, "password_reset", "queued").await, 0);

    // A new, confirmed address clears the mark.
    let fresh = address("eve");
    let (st, v) = s
        .patch(
            "/api/v1/users/@me/email",
            &eve.token,
            json!({"email": fresh, "password": "correct horse battery"}),
        )
        .await;
    assert_eq!(st, StatusCode::ACCEPTED, "{v}");
    let token = wait_for(&fresh, 1, WAIT).await[0].token();
    let (st, v) = anon(&s, "/api/v1/auth/verify-email", json!({"token": token})).await;
    assert_eq!(st, StatusCode::NO_CONTENT, "{v}");
    let (_, me) = s.get("/api/v1/users/@me", &eve.token).await;
    assert_eq!(
        (me["email"].as_str(), me["email_verified"].as_bool()),
        (Some(fresh.as_str()), Some(true))
    );
    s.stop().await;
}

/// With the mail server unreachable, requests still answer at once; the
/// queued mail goes out once it is back, once.
pub async fn smtp_down_queues_and_retries(db: Db) {
    require_sink();
    let fwd = crate::faults::Forwarder::start(&sink_addr()).await;
    let via = fwd.addr.to_string();
    fwd.cut();
    let s = TestServer::start_with(db, |c| mail_on(c, &via)).await;
    let email = address("fay");
    let started = Instant::now();
    register(&s, &email).await;
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "registration did not wait for mail"
    );
    wait_metric(&s, "welcome", "retried", 1, WAIT).await;
    assert!(delivered(&email).is_empty());
    fwd.restore().await;
    wait_for(&email, 1, WAIT).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(delivered(&email).len(), 1, "sent once");
    assert_eq!(mail_metric(&s, "welcome", "sent").await, 1);
    s.stop().await;
}

/// An email change needs the password, mails a confirmation to the new
/// address and a notice to the old one, and applies on confirmation.
pub async fn email_change_confirms_the_new_address(db: Db) {
    let s = server(db, |_| {}).await;
    let old = address("gus");
    let gus = register(&s, &old).await;
    wait_for(&old, 1, WAIT).await;
    let other = address("hal");
    register(&s, &other).await;
    let new = address("gus2");
    let path = "/api/v1/users/@me/email";
    let (st, v) = s
        .patch(
            path,
            &gus.token,
            json!({"email": new, "password": "wrong password"}),
        )
        .await;
    assert_error(st, &v, 401, "invalid_credentials");
    let (st, v) = s
        .patch(
            path,
            &gus.token,
            json!({"email": other, "password": "correct horse battery"}),
        )
        .await;
    assert_error(st, &v, 409, "conflict");
    let (st, v) = s
        .patch(
            path,
            &gus.token,
            json!({"email": "not-an-address", "password": "correct horse battery"}),
        )
        .await;
    assert_error(st, &v, 400, "invalid_request");
    let (st, v) = s
        .patch(
            path,
            &gus.token,
            json!({"email": new, "password": "correct horse battery"}),
        )
        .await;
    assert_eq!(st, StatusCode::ACCEPTED, "{v}");

    let notice = wait_for(&old, 2, WAIT).await;
    assert!(
        notice[1].subject.contains("being changed"),
        "{:?}",
        notice[1]
    );
    assert!(notice[1].text.contains(&new), "{:?}", notice[1]);
    let confirm = wait_for(&new, 1, WAIT).await;
    assert!(
        confirm[0].subject.starts_with("Confirm your new email"),
        "{:?}",
        confirm[0]
    );
    // Nothing changes before the new address confirms.
    let (_, me) = s.get("/api/v1/users/@me", &gus.token).await;
    assert_eq!(me["email"], old.as_str());
    let token = confirm[0].token();
    let (st, v) = anon(&s, "/api/v1/auth/verify-email", json!({"token": token})).await;
    assert_eq!(st, StatusCode::NO_CONTENT, "{v}");
    let (_, me) = s.get("/api/v1/users/@me", &gus.token).await;
    assert_eq!(me["email"], new.as_str());
    assert_eq!(me["email_verified"], true);
    let (st, v) = anon(&s, "/api/v1/auth/verify-email", json!({"token": token})).await;
    assert_eq!(reason(&v), "token_used", "{st} {v}");
    // Signing in works with the new address, not the old.
    assert_eq!(
        login(&s, &new, "correct horse battery").await.0,
        StatusCode::OK
    );
    assert_error_status(login(&s, &old, "correct horse battery").await, 401);
    s.stop().await;
}

fn assert_error_status((st, v): (StatusCode, Value), want: u16) {
    assert_eq!(st.as_u16(), want, "{v}");
}

/// With no `smtp_url`, what needs mail answers 503 and everything else works.
pub async fn mail_off_answers_503(db: Db) {
    let s = TestServer::start(db).await;
    let email = address("ivy");
    let ivy = register(&s, &email).await;
    let (st, v) = s
        .post("/api/v1/users/@me/email/verify", &ivy.token, json!(null))
        .await;
    assert_error(st, &v, 503, "unavailable");
    let (st, v) = anon(&s, "/api/v1/auth/password-reset", json!({"login": email})).await;
    assert_error(st, &v, 503, "unavailable");
    let (st, v) = s
        .patch(
            "/api/v1/users/@me/email",
            &ivy.token,
            json!({"email": address("ivy2"), "password": "correct horse battery"}),
        )
        .await;
    assert_error(st, &v, 503, "unavailable");
    // Tokens are still checked (none can exist without mail).
    let (st, v) = anon(&s, "/api/v1/auth/verify-email", json!({"token": "abc"})).await;
    assert_error(st, &v, 400, "invalid_request");
    s.stop().await;
}

/// Two nodes on one Postgres and NATS: the welcome consumer is shared (each
/// account gets one welcome, whichever node registered it, though both
/// nodes' workers send), and a reset on one node closes the account's
/// socket on the other with 4010.
pub async fn two_nodes_mail_once_and_reset_everywhere() {
    require_sink();
    let smtp = sink_addr();
    let c = crate::cluster::Cluster::start_with(2, move |cfg| mail_on(cfg, &smtp)).await;
    let (n1, n2) = (&c.nodes[0], &c.nodes[1]);
    let mut emails = Vec::new();
    for i in 0..4 {
        let email = address(&format!("node{i}"));
        register(if i % 2 == 0 { n1 } else { n2 }, &email).await;
        emails.push(email);
    }
    for e in &emails {
        wait_for(e, 1, WAIT).await;
    }
    let email = &emails[1];
    let (st, v) = login(n2, email, "correct horse battery").await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let user = User {
        id: v["user"]["id"].as_str().expect("id").into(),
        token: v["access_token"].as_str().expect("token").into(),
        refresh: v["refresh_token"].as_str().expect("refresh").into(),
    };
    let (mut gw, _) = Gw::identify(n2, &user).await;
    let (st, _) = anon(n1, "/api/v1/auth/password-reset", json!({"login": email})).await;
    assert_eq!(st, StatusCode::ACCEPTED);
    let token = wait_for(email, 2, WAIT).await[1].token();
    let (st, v) = anon(
        n1,
        "/api/v1/auth/password-reset/confirm",
        json!({"token": token, "password": "a brand new secret"}),
    )
    .await;
    assert_eq!(st, StatusCode::NO_CONTENT, "{v}");
    assert_eq!(gw.closed_with(Duration::from_secs(3)).await, 4010);
    let (st, v) = n2.get("/api/v1/users/@me", &user.token).await;
    assert_error(st, &v, 401, "unauthorized");
    // Nothing went out twice.
    tokio::time::sleep(Duration::from_millis(500)).await;
    for e in &emails {
        let welcomes = delivered(e)
            .iter()
            .filter(|m| m.subject == "Welcome to Hearth")
            .count();
        assert_eq!(welcomes, 1, "{e}");
    }
    assert_eq!(delivered(email).len(), 2);
    c.stop().await;
}

/// (subject, text, html) of every mail to `to` whose subject has `has`.
pub(crate) fn subjects(to: &str, has: &str) -> Vec<(String, String, String)> {
    delivered(to)
        .into_iter()
        .filter(|m| m.subject.contains(has))
        .map(|m| (m.subject, m.text, m.html))
        .collect()
}

/// Waits for a mail to `to` whose subject has `has`; returns all such.
pub(crate) async fn wait_for_subject(
    to: &str,
    has: &str,
    within: Duration,
) -> Vec<(String, String, String)> {
    let until = Instant::now() + within;
    loop {
        let got = subjects(to, has);
        if !got.is_empty() {
            return got;
        }
        assert!(
            Instant::now() < until,
            "a mail to {to} about {has:?} within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
