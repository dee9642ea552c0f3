//! OpenID Connect providers (issue #13 item 4): their discovery documents
//! and keys, fetched and cached, and the two requests a sign-in makes (the
//! authorization URL the browser goes to, the code exchange). Verifying
//! the ID token is `hearth_accounts::oidc`; the HTTP endpoints are
//! `http/oidc.rs`.
//!
//! Discovery is read once an hour; its `issuer` must be exactly the
//! configured one (a document naming another issuer is refused). Keys are
//! read once an hour too, and again at once when a token names a key we do
//! not hold (the provider rotated), at most every ten seconds, so a stream
//! of tokens with made-up kids cannot make us hammer the provider. Every
//! URL the provider names goes through the same guard as push endpoints
//! (`netguard`), and the client follows no redirects.

use std::time::{Duration, Instant};

use hearth_accounts::oidc::{Expected, IdTokenError, Identity, Jwks, verify_id_token};
use serde::Deserialize;
use tokio::sync::Mutex;

use crate::config::{Config, OidcProviderConfig};

const META_TTL: Duration = Duration::from_secs(3600);
const KEYS_TTL: Duration = Duration::from_secs(3600);
const KEYS_REFRESH_GAP: Duration = Duration::from_secs(10);

/// Why a sign-in with a provider failed.
#[derive(Debug, thiserror::Error)]
pub enum OidcFailure {
    /// The provider could not be reached, or answered what it must not.
    #[error("the provider: {0}")]
    Provider(String),
    /// The ID token is not acceptable.
    #[error("the ID token: {0}")]
    Token(#[from] IdTokenError),
}

#[derive(Clone, Debug, Deserialize)]
struct Meta {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    jwks_uri: String,
}

pub struct Provider {
    pub cfg: OidcProviderConfig,
    meta: Mutex<Option<(Instant, Meta)>>,
    keys: Mutex<Option<(Instant, Jwks)>>,
}

pub struct Oidc {
    providers: Vec<Provider>,
    http: reqwest13::Client,
    allow_private: bool,
    /// Where providers send the browser back, from `public_url`; without
    /// one, from the request's Host (see [`Oidc::redirect_uri`]).
    public_redirect: Option<String>,
}

#[derive(Deserialize)]
struct TokenResponse {
    id_token: Option<String>,
}

impl Oidc {
    pub fn new(cfg: &Config) -> Result<Oidc, String> {
        let http = crate::netguard::client(cfg.oidc_allow_private, Duration::from_secs(10))?;
        Ok(Oidc {
            providers: cfg
                .oidc_providers
                .iter()
                .map(|p| Provider {
                    cfg: p.clone(),
                    meta: Mutex::new(None),
                    keys: Mutex::new(None),
                })
                .collect(),
            http,
            allow_private: cfg.oidc_allow_private,
            public_redirect: (!cfg.public_url.is_empty()).then(|| {
                format!(
                    "{}/api/v1/auth/oidc/callback",
                    cfg.public_url.trim_end_matches('/')
                )
            }),
        })
    }

    /// The callback URL: `public_url`'s, or (a server without one, such as
    /// a laptop or a test) the Host the browser used. A forged Host gains
    /// nothing: providers send codes only to registered redirect URIs.
    pub fn redirect_uri(&self, host: Option<&str>) -> String {
        if let Some(r) = &self.public_redirect {
            return r.clone();
        }
        let host = host
            .filter(|h| {
                !h.is_empty()
                    && h.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
            })
            .unwrap_or("localhost");
        format!("http://{host}/api/v1/auth/oidc/callback")
    }

    pub fn providers(&self) -> impl Iterator<Item = &Provider> {
        self.providers.iter()
    }

    pub fn provider(&self, name: &str) -> Option<&Provider> {
        self.providers.iter().find(|p| p.cfg.name == name)
    }

    async fn get_json<T: for<'de> Deserialize<'de>>(&self, url: &str) -> Result<T, OidcFailure> {
        let u = crate::netguard::check_url(url, self.allow_private)
            .map_err(|e| OidcFailure::Provider(format!("{url}: {e}")))?;
        let r = self
            .http
            .get(u)
            .send()
            .await
            .map_err(|e| OidcFailure::Provider(format!("{url}: {e}")))?;
        if !r.status().is_success() {
            return Err(OidcFailure::Provider(format!("{url}: HTTP {}", r.status())));
        }
        let body = r
            .bytes()
            .await
            .map_err(|e| OidcFailure::Provider(format!("{url}: {e}")))?;
        serde_json::from_slice(&body).map_err(|e| OidcFailure::Provider(format!("{url}: {e}")))
    }

    async fn meta(&self, p: &Provider) -> Result<Meta, OidcFailure> {
        let mut cached = p.meta.lock().await;
        if let Some((at, m)) = cached.as_ref()
            && at.elapsed() < META_TTL
        {
            return Ok(m.clone());
        }
        let url = format!(
            "{}/.well-known/openid-configuration",
            p.cfg.issuer.trim_end_matches('/')
        );
        let m: Meta = self.get_json(&url).await?;
        if m.issuer != p.cfg.issuer {
            return Err(OidcFailure::Provider(format!(
                "discovery names the issuer {:?}, not {:?}",
                m.issuer, p.cfg.issuer
            )));
        }
        *cached = Some((Instant::now(), m.clone()));
        Ok(m)
    }

    async fn keys(&self, p: &Provider, fresh: bool) -> Result<Jwks, OidcFailure> {
        let mut cached = p.keys.lock().await;
        if let Some((at, k)) = cached.as_ref() {
            let age = at.elapsed();
            if age < KEYS_TTL && (!fresh || age < KEYS_REFRESH_GAP) {
                return Ok(k.clone());
            }
        }
        let meta = self.meta(p).await?;
        let k: Jwks = self.get_json(&meta.jwks_uri).await?;
        *cached = Some((Instant::now(), k.clone()));
        Ok(k)
    }

    /// Where to send the browser to sign in.
    pub async fn authorization_url(
        &self,
        p: &Provider,
        state: &str,
        nonce: &str,
        challenge: &str,
        redirect_uri: &str,
    ) -> Result<String, OidcFailure> {
        let meta = self.meta(p).await?;
        let mut u = crate::netguard::check_url(&meta.authorization_endpoint, self.allow_private)
            .map_err(|e| OidcFailure::Provider(format!("authorization_endpoint: {e}")))?;
        u.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &p.cfg.client_id)
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("scope", "openid email profile")
            .append_pair("state", state)
            .append_pair("nonce", nonce)
            .append_pair("code_challenge", challenge)
            .append_pair("code_challenge_method", "S256");
        Ok(u.into())
    }

    /// Redeems the code (with the PKCE verifier) and verifies the ID token.
    pub async fn sign_in(
        &self,
        p: &Provider,
        code: &str,
        verifier: &str,
        nonce: &str,
        redirect_uri: &str,
    ) -> Result<Identity, OidcFailure> {
        let meta = self.meta(p).await?;
        let url = crate::netguard::check_url(&meta.token_endpoint, self.allow_private)
            .map_err(|e| OidcFailure::Provider(format!("token_endpoint: {e}")))?;
        // Built before the request: the serializer is not Send.
        let form = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("grant_type", "authorization_code")
            .append_pair("code", code)
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("code_verifier", verifier)
            .append_pair("client_id", &p.cfg.client_id)
            .append_pair("client_secret", &p.cfg.client_secret.0)
            .finish();
        let r = self
            .http
            .post(url)
            .header("content-type", "application/x-www-form-urlencoded")
            .header("accept", "application/json")
            .body(form)
            .send()
            .await
            .map_err(|e| OidcFailure::Provider(format!("token endpoint: {e}")))?;
        let status = r.status();
        if !status.is_success() {
            let body: String = r
                .text()
                .await
                .unwrap_or_default()
                .chars()
                .take(300)
                .collect();
            return Err(OidcFailure::Provider(format!(
                "token endpoint: HTTP {status}: {body}"
            )));
        }
        let body = r
            .bytes()
            .await
            .map_err(|e| OidcFailure::Provider(format!("token endpoint: {e}")))?;
        let t: TokenResponse = serde_json::from_slice(&body)
            .map_err(|e| OidcFailure::Provider(format!("token endpoint: {e}")))?;
        let token = t
            .id_token
            .ok_or_else(|| OidcFailure::Provider("no id_token in the token response".into()))?;
        let want = Expected {
            issuer: &p.cfg.issuer,
            client_id: &p.cfg.client_id,
            nonce,
            now: hearth_types::now_ms() / 1000,
        };
        let keys = self.keys(p, false).await?;
        match verify_id_token(&token, &keys, &want) {
            // A key we do not hold yet: the provider may have rotated.
            Err(IdTokenError::UnknownKey) => {
                let keys = self.keys(p, true).await?;
                Ok(verify_id_token(&token, &keys, &want)?)
            }
            other => Ok(other?),
        }
    }
}
