//! Sign in with OpenID Connect (issue #13) against a real provider:
//! `scripts/oidc.sh` runs panva's oidc-provider on 127.0.0.1:9400 (client
//! `hearth-test`), which logs in whoever `login_hint` names without a page
//! and, per account, can hand out defective ID tokens (bad signature, wrong
//! audience, expired, wrong issuer, wrong nonce) through its real token
//! endpoint. The tests drive the browser's redirects by hand and fail,
//! never skip, when the provider is not running.

use std::time::Duration;

use hearth_server::config::{Config, OidcProviderConfig, Secret};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::{TestServer, User, assert_error};

pub(crate) fn provider_addr() -> String {
    std::env::var("HEARTH_TEST_OIDC").unwrap_or_else(|_| "127.0.0.1:9400".into())
}

pub(crate) fn require_provider() {
    let addr = provider_addr();
    assert!(
        std::net::TcpStream::connect_timeout(
            &addr.parse().expect("host:port"),
            Duration::from_secs(2)
        )
        .is_ok(),
        "the test OpenID provider must be running on {addr}: start it with scripts/oidc.sh"
    );
}

fn provider(name: &str) -> OidcProviderConfig {
    OidcProviderConfig {
        name: name.into(),
        display_name: format!("Test ID ({name})"),
        issuer: format!("http://{}", provider_addr()),
        client_id: "hearth-test".into(),
        client_secret: Secret("hearth-test-secret".into()),
        allowed_email_domains: Vec::new(),
        allow_signup: true,
    }
}

/// Three providers on the one test issuer: open, restricted to a domain
/// the test accounts are not in, and without sign-up.
pub fn oidc_on(c: &mut Config) {
    require_provider();
    c.oidc_allow_private = true;
    c.oidc_providers = vec![
        provider("test"),
        OidcProviderConfig {
            allowed_email_domains: vec!["example.org".into()],
            ..provider("strict")
        },
        OidcProviderConfig {
            allow_signup: false,
            ..provider("closed")
        },
    ];
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

fn location(r: &reqwest::Response) -> String {
    r.headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .expect("a Location")
        .to_string()
}

/// The value of cookie `name` in a response's Set-Cookie headers.
fn set_cookie(r: &reqwest::Response, name: &str) -> Option<String> {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| {
            let (kv, _) = v.split_once(';').unwrap_or((v, ""));
            let (k, val) = kv.split_once('=')?;
            (k.trim() == name).then(|| val.to_string())
        })
}

/// An account id at the provider no other test (or run) uses.
fn account(tag: &str) -> String {
    format!(
        "{tag}{}{:06x}",
        std::process::id(),
        rand::random::<u32>() & 0xff_ffff
    )
}

async fn set_mode(mode: &str, account: &str) {
    let r = http()
        .post(format!("http://{}/test/mode", provider_addr()))
        .json(&json!({"mode": mode, "account": account}))
        .send()
        .await
        .expect("provider");
    assert!(r.status().is_success(), "mode {mode}: {}", r.status());
}

/// The provider's leg: logs `account` in at `url`; the callback URL.
async fn at_provider(url: &str, account: &str) -> String {
    let r = http()
        .get(format!("{url}&login_hint={account}"))
        .send()
        .await
        .expect("provider");
    assert_eq!(r.status(), StatusCode::FOUND, "the provider redirects back");
    location(&r)
}

/// Where the callback sends the browser, and the refresh cookie it set.
async fn back(callback: &str, flow_cookie: &str) -> (String, Option<String>) {
    let r = http()
        .get(callback)
        .header("cookie", format!("hearth_oidc={flow_cookie}"))
        .send()
        .await
        .expect("callback");
    assert_eq!(r.status(), StatusCode::FOUND, "{callback}");
    (location(&r), set_cookie(&r, "hearth_refresh"))
}

/// A whole sign-in through the browser's redirects.
async fn sign_in(s: &TestServer, name: &str, account: &str) -> (String, Option<String>) {
    let r = http()
        .get(format!(
            "http://{}/api/v1/auth/oidc/{name}/start?redirect=/app/welcome",
            s.addr
        ))
        .send()
        .await
        .expect("start");
    assert_eq!(r.status(), StatusCode::FOUND);
    let flow = set_cookie(&r, "hearth_oidc").expect("the flow cookie");
    let callback = at_provider(&location(&r), account).await;
    assert!(
        callback.starts_with(&format!("http://{}/api/v1/auth/oidc/callback?", s.addr)),
        "{callback}"
    );
    back(&callback, &flow).await
}

/// The session a refresh cookie holds: (access token, /users/@me).
async fn session(s: &TestServer, refresh: &str) -> (String, Value) {
    let r = http()
        .post(format!("http://{}/api/v1/auth/refresh", s.addr))
        .header("cookie", format!("hearth_refresh={refresh}"))
        .header("x-hearth-client", "web")
        .send()
        .await
        .expect("refresh");
    assert_eq!(r.status(), StatusCode::OK);
    let v: Value = r.json().await.expect("tokens");
    let token = v["access_token"]
        .as_str()
        .expect("access token")
        .to_string();
    let (st, me) = s.get("/api/v1/users/@me", &token).await;
    assert_eq!(st, StatusCode::OK);
    (token, me)
}

pub async fn sign_in_with_a_provider(s: &TestServer) {
    // The buttons.
    let (st, v) = s
        .call(
            reqwest::Method::GET,
            "/api/v1/auth/oidc/providers",
            None,
            None,
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(
        v[0],
        json!({"name": "test", "display_name": "Test ID (test)"})
    );
    assert_eq!(v.as_array().unwrap().len(), 3);
    let (st, _) = s
        .call(
            reqwest::Method::GET,
            "/api/v1/auth/oidc/nope/start",
            None,
            None,
        )
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);

    // A first sign-in makes an account; the next signs in to it.
    let alice = account("oa");
    let (to, refresh) = sign_in(s, "test", &alice).await;
    assert_eq!(to, "/app/welcome");
    let (token, me) = session(s, &refresh.expect("signed in")).await;
    assert_eq!(me["email"], format!("{alice}@oidc.test"));
    assert_eq!(me["email_verified"], true);
    assert_eq!(me["username"], alice);
    let (_, again) = sign_in(s, "test", &alice).await;
    let (_, me2) = session(s, &again.expect("signed in")).await;
    assert_eq!(me2["id"], me["id"]);
    let (_, ids) = s.get("/api/v1/users/@me/identities", &token).await;
    assert_eq!(ids.as_array().unwrap().len(), 1, "{ids}");
    assert_eq!(ids[0]["provider"], "test");
    assert_eq!(ids[0]["display_name"], "Test ID (test)");
    // Its only way in cannot be removed; nor can it sign in with a password.
    let (st, v) = s
        .delete(
            &format!(
                "/api/v1/users/@me/identities/{}",
                ids[0]["id"].as_str().unwrap()
            ),
            &token,
        )
        .await;
    assert_error(st, &v, 409, "conflict");

    // Every defect of the ID token is refused.
    for mode in [
        "bad_signature",
        "wrong_audience",
        "expired",
        "wrong_issuer",
        "wrong_nonce",
    ] {
        set_mode(mode, &alice).await;
        let (to, refresh) = sign_in(s, "test", &alice).await;
        assert_eq!(to, "/login?oidc_error=invalid_token", "{mode}");
        assert!(refresh.is_none(), "{mode}: no session");
    }
    set_mode("normal", &alice).await;

    // A state works once, in the browser that started it.
    let r = http()
        .get(format!("http://{}/api/v1/auth/oidc/test/start", s.addr))
        .send()
        .await
        .unwrap();
    let flow = set_cookie(&r, "hearth_oidc").unwrap();
    let callback = at_provider(&location(&r), &alice).await;
    let (to, _) = back(&callback, "someone-elses").await;
    assert_eq!(to, "/login?oidc_error=invalid_state");
    let (to, refresh) = back(&callback, &flow).await;
    assert_eq!(to, "/app");
    assert!(refresh.is_some());
    let (to, refresh) = back(&callback, &flow).await;
    assert_eq!(to, "/login?oidc_error=invalid_state", "a replayed state");
    assert!(refresh.is_none());
    let (to, _) = back(
        &format!("http://{}/api/v1/auth/oidc/callback?code=x", s.addr),
        &flow,
    )
    .await;
    assert_eq!(to, "/login?oidc_error=invalid_state");
    // A redirect elsewhere is not followed.
    let r = http()
        .get(format!(
            "http://{}/api/v1/auth/oidc/test/start?redirect=//evil.example/x",
            s.addr
        ))
        .send()
        .await
        .unwrap();
    let flow = set_cookie(&r, "hearth_oidc").unwrap();
    let (to, _) = back(&at_provider(&location(&r), &alice).await, &flow).await;
    assert_eq!(to, "/app");

    // An address an account already has is never taken over.
    let bob = account("ob");
    let (st, v) = s
        .call(
            reqwest::Method::POST,
            "/api/v1/auth/register",
            None,
            Some(json!({"username": bob, "password": "correct horse battery", "email": format!("{bob}@oidc.test")})),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let bob_user = User {
        id: v["user"]["id"].as_str().unwrap().into(),
        token: v["access_token"].as_str().unwrap().into(),
        refresh: String::new(),
    };
    let (to, refresh) = sign_in(s, "test", &bob).await;
    assert_eq!(to, "/login?oidc_error=account_exists");
    assert!(refresh.is_none());

    // Linking, after typing the password again; then the identity signs in there.
    let (st, v) = s
        .post(
            "/api/v1/users/@me/identities/test",
            &bob_user.token,
            json!({"password": "wrong password!"}),
        )
        .await;
    assert_error(st, &v, 401, "invalid_credentials");
    let r = http()
        .post(format!(
            "http://{}/api/v1/users/@me/identities/test",
            s.addr
        ))
        .bearer_auth(&bob_user.token)
        .json(&json!({"password": "correct horse battery"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let flow = set_cookie(&r, "hearth_oidc").expect("the flow cookie");
    let url = r.json::<Value>().await.unwrap()["url"]
        .as_str()
        .unwrap()
        .to_string();
    let (to, refresh) = back(&at_provider(&url, &bob).await, &flow).await;
    assert_eq!(to, "/app?linked=test");
    assert!(refresh.is_none(), "linking opens no session");
    let (_, signed) = sign_in(s, "test", &bob).await;
    let (_, me) = session(s, &signed.expect("signed in")).await;
    assert_eq!(me["id"], bob_user.id.as_str());
    // Another account cannot link an identity someone holds.
    let carol = s.register(&account("oc")).await;
    let r = http()
        .post(format!(
            "http://{}/api/v1/users/@me/identities/test",
            s.addr
        ))
        .bearer_auth(&carol.token)
        .json(&json!({"password": "correct horse battery"}))
        .send()
        .await
        .unwrap();
    let flow = set_cookie(&r, "hearth_oidc").unwrap();
    let url = r.json::<Value>().await.unwrap()["url"]
        .as_str()
        .unwrap()
        .to_string();
    let (to, _) = back(&at_provider(&url, &bob).await, &flow).await;
    assert_eq!(to, "/login?oidc_error=already_linked");
    // Unlinking (bob has a password, so it may go).
    let (_, ids) = s.get("/api/v1/users/@me/identities", &bob_user.token).await;
    let id = ids[0]["id"].as_str().unwrap();
    let (st, _) = s
        .delete(&format!("/api/v1/users/@me/identities/{id}"), &carol.token)
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND, "not carol's");
    let (st, _) = s
        .delete(
            &format!("/api/v1/users/@me/identities/{id}"),
            &bob_user.token,
        )
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT);

    // Providers' own rules: allowed domains, no sign-up.
    let (to, _) = sign_in(s, "strict", &account("od")).await;
    assert_eq!(to, "/login?oidc_error=email_domain_not_allowed");
    let (to, _) = sign_in(s, "closed", &account("oe")).await;
    assert_eq!(to, "/login?oidc_error=signup_disabled");
    // The provider refusing (no login_hint: the user cancelled).
    let r = http()
        .get(format!("http://{}/api/v1/auth/oidc/test/start", s.addr))
        .send()
        .await
        .unwrap();
    let flow = set_cookie(&r, "hearth_oidc").unwrap();
    let cancelled = http().get(location(&r)).send().await.unwrap();
    let (to, _) = back(&location(&cancelled), &flow).await;
    assert_eq!(to, "/login?oidc_error=provider_error");
}

/// Links a fresh provider identity to `u` (a password account); for
/// fixtures that need the tables filled.
pub(crate) async fn link_identity(s: &TestServer, u: &User) {
    let r = http()
        .post(format!(
            "http://{}/api/v1/users/@me/identities/test",
            s.addr
        ))
        .bearer_auth(&u.token)
        .json(&json!({"password": "correct horse battery"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let flow = set_cookie(&r, "hearth_oidc").unwrap();
    let url = r.json::<Value>().await.unwrap()["url"]
        .as_str()
        .unwrap()
        .to_string();
    // The callback on this server, whatever public_url the fixture set.
    let callback = at_provider(&url, &account("of")).await;
    let path = callback
        .find("/api/v1/auth/oidc/callback")
        .map(|i| &callback[i..])
        .expect("a callback URL");
    let (to, _) = back(&format!("http://{}{path}", s.addr), &flow).await;
    assert_eq!(to, "/app?linked=test");
}
