//! The accounts service: registration, login, refresh, logout, sessions and
//! the per-request token check.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use hearth_store::{RefreshOutcome, SessionRecord, Store, StoreError, UserPatch, UserRecord};
use hearth_types::{IdGenerator, SessionId, UserId, now_ms};
use parking_lot::Mutex;
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::jwt::{Claims, TokenKeys};
use crate::password::{HashCost, PasswordHasher};
use crate::validate::*;
use crate::{AccountsError, totp};

/// How long a "this session is live" answer is trusted without asking the
/// database again. Bounds how late another node notices a revocation.
pub const SESSION_CHECK_TTL: Duration = Duration::from_millis(500);

#[derive(Clone, Debug)]
pub struct AccountsConfig {
    pub access_ttl: Duration,
    pub hash_cost: HashCost,
    /// Concurrent password hashes (each takes `hash_cost.memory_kib`).
    pub hash_parallelism: usize,
}

impl Default for AccountsConfig {
    fn default() -> Self {
        AccountsConfig {
            access_ttl: Duration::from_secs(15 * 60),
            hash_cost: HashCost::default(),
            hash_parallelism: 2,
        }
    }
}

/// Who a valid access token speaks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Principal {
    pub user_id: UserId,
    pub session_id: SessionId,
}

#[derive(Clone, Debug)]
pub struct TokenPair {
    pub access_token: String,
    pub refresh_token: String,
    pub expires_in: u64,
    pub session_id: SessionId,
}

#[derive(Clone, Debug)]
pub struct AuthSuccess {
    pub user: UserRecord,
    pub tokens: TokenPair,
}

#[derive(Clone, Debug, Default)]
pub struct NewAccount {
    pub username: String,
    pub password: String,
    pub email: Option<String>,
    pub display_name: Option<String>,
}

pub struct Accounts {
    store: Arc<dyn Store>,
    ids: Arc<IdGenerator>,
    keys: TokenKeys,
    hasher: PasswordHasher,
    cfg: AccountsConfig,
    /// session -> (live?, when we last asked the database); see [`LiveCache`].
    live: Mutex<LiveCache>,
}

pub(crate) fn hash_refresh(token: &str) -> String {
    let d = Sha256::digest(token.as_bytes());
    d.iter().map(|b| format!("{b:02x}")).collect()
}

pub(crate) fn random_token() -> String {
    let mut b = [0u8; 32];
    rand::rng().fill_bytes(&mut b);
    B64.encode(b)
}

impl Accounts {
    pub fn new(
        store: Arc<dyn Store>,
        ids: Arc<IdGenerator>,
        keys: TokenKeys,
        cfg: AccountsConfig,
    ) -> Result<Self, AccountsError> {
        let hasher = PasswordHasher::new(cfg.hash_cost, cfg.hash_parallelism)?;
        Ok(Accounts {
            store,
            ids,
            keys,
            hasher,
            cfg,
            live: Mutex::new(LiveCache::default()),
        })
    }

    pub async fn register(
        &self,
        input: NewAccount,
        user_agent: Option<String>,
    ) -> Result<AuthSuccess, AccountsError> {
        let user = self.create_user(input, false).await?;
        let tokens = self.open_session(user.id, user_agent).await?;
        Ok(AuthSuccess { user, tokens })
    }

    /// Creates an account without a session (registration and `hearth admin create-user`).
    pub async fn create_user(
        &self,
        input: NewAccount,
        admin: bool,
    ) -> Result<UserRecord, AccountsError> {
        let username_lower = validate_username(&input.username)?;
        validate_password(&input.password)?;
        let email = input.email.as_deref().map(validate_email).transpose()?;
        let display_name = input
            .display_name
            .as_deref()
            .map(validate_display_name)
            .transpose()?;
        // Keep the case the user typed for display; uniqueness is on the folded form.
        let username = if input.username.to_lowercase() == username_lower {
            input.username.clone()
        } else {
            username_lower
        };
        let password_hash = self.hasher.hash(input.password).await?;
        let user = UserRecord {
            id: UserId::from(self.ids.next()),
            username,
            email,
            display_name,
            avatar_id: None,
            password_hash,
            is_admin: admin,
            plan: "free".into(),
            totp_secret: None,
            allow_dms_from: Default::default(),
            created_at: now_ms(),
            email_verified_at: None,
            email_bounced_at: None,
        };
        match self.store.create_user(&user).await {
            Ok(()) => Ok(user),
            Err(StoreError::Conflict(what)) if what == "email" => {
                Err(AccountsError::Taken("email"))
            }
            Err(StoreError::Conflict(_)) => Err(AccountsError::Taken("username")),
            Err(e) => Err(e.into()),
        }
    }

    /// An account made by a sign-in elsewhere (OpenID Connect): no password
    /// (a `!` hash, which never verifies), the email verified when the
    /// provider vouches for it. `wanted` is a name hint (the provider's
    /// username or the email's local part): it is folded to what usernames
    /// allow and made unique with a number when taken.
    pub async fn create_external_user(
        &self,
        wanted: &str,
        email: Option<&str>,
        email_verified: bool,
        display_name: Option<&str>,
    ) -> Result<UserRecord, AccountsError> {
        let mut base: String = wanted
            .chars()
            .map(|c| c.to_ascii_lowercase())
            .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
            .take(24)
            .collect();
        if base.len() < 3 {
            base = format!("user{base}");
        }
        let email = email.map(validate_email).transpose()?;
        let display_name = display_name
            .map(|d| d.chars().take(64).collect::<String>())
            .and_then(|d| validate_display_name(&d).ok());
        let now = now_ms();
        for attempt in 0..8 {
            let username = if attempt == 0 {
                base.clone()
            } else {
                format!("{base}{}", rand::random_range(1000..100_000))
            };
            if validate_username(&username).is_err() {
                continue;
            }
            let user = UserRecord {
                id: UserId::from(self.ids.next()),
                username,
                email: email.clone(),
                display_name: display_name.clone(),
                avatar_id: None,
                password_hash: "!".into(),
                is_admin: false,
                plan: "free".into(),
                totp_secret: None,
                allow_dms_from: Default::default(),
                created_at: now,
                email_verified_at: (email_verified && email.is_some()).then_some(now),
                email_bounced_at: None,
            };
            match self.store.create_user(&user).await {
                Ok(()) => {
                    // create_user stores addresses unverified; this one is proven.
                    if let (Some(e), Some(_)) = (&user.email, user.email_verified_at) {
                        self.store.set_email_verified(user.id, e, now).await?;
                    }
                    return Ok(user);
                }
                Err(StoreError::Conflict(what)) if what == "email" => {
                    return Err(AccountsError::Taken("email"));
                }
                Err(StoreError::Conflict(_)) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(AccountsError::Taken("username"))
    }

    /// Opens a session for a user proven by other means (a provider's ID
    /// token): refused while the account is suspended or locked.
    pub async fn sign_in(
        &self,
        user: UserRecord,
        user_agent: Option<String>,
    ) -> Result<AuthSuccess, AccountsError> {
        if self.store.suspension(user.id).await?.is_some() {
            return Err(AccountsError::Suspended);
        }
        let tokens = self.open_session(user.id, user_agent).await?;
        Ok(AuthSuccess { user, tokens })
    }

    pub async fn login(
        &self,
        login: &str,
        password: String,
        totp_code: Option<&str>,
        user_agent: Option<String>,
    ) -> Result<AuthSuccess, AccountsError> {
        if login.is_empty() || login.len() > 254 || password.len() > 1024 {
            return Err(AccountsError::InvalidCredentials);
        }
        let user = self.store.user_by_login(login.trim()).await?;
        let ok = self
            .hasher
            .verify(password, user.as_ref().map(|u| u.password_hash.clone()))
            .await?;
        let Some(user) = user.filter(|_| ok) else {
            return Err(AccountsError::InvalidCredentials);
        };
        // Only after the password: a wrong one must not reveal a suspension.
        if self.store.suspension(user.id).await?.is_some() {
            return Err(AccountsError::Suspended);
        }
        if user.totp_secret.is_some() {
            let code = totp_code.ok_or(AccountsError::MfaRequired)?;
            if !self.spend_totp(&user, code).await? {
                return Err(AccountsError::InvalidCredentials);
            }
        }
        let tokens = self.open_session(user.id, user_agent).await?;
        Ok(AuthSuccess { user, tokens })
    }

    async fn open_session(
        &self,
        user: UserId,
        user_agent: Option<String>,
    ) -> Result<TokenPair, AccountsError> {
        let now = now_ms();
        let session = SessionRecord {
            id: SessionId::from(self.ids.next()),
            user_id: user,
            user_agent: user_agent
                .map(|ua| ua.chars().filter(|c| !c.is_control()).take(256).collect()),
            created_at: now,
            last_seen_at: now,
            revoked_at: None,
        };
        let refresh = random_token();
        self.store
            .create_session(&session, &hash_refresh(&refresh))
            .await?;
        Ok(self.issue(user, session.id, refresh))
    }

    fn issue(&self, user: UserId, session: SessionId, refresh_token: String) -> TokenPair {
        let now = now_ms() / 1000;
        let ttl = self.cfg.access_ttl.as_secs();
        let claims = Claims {
            sub: user.to_string(),
            sid: session.to_string(),
            iat: now,
            exp: now + ttl as i64,
        };
        TokenPair {
            access_token: self.keys.sign(&claims),
            refresh_token,
            expires_in: ttl,
            session_id: session,
        }
    }

    pub async fn refresh(&self, refresh_token: &str) -> Result<TokenPair, AccountsError> {
        if refresh_token.is_empty() || refresh_token.len() > 256 {
            return Err(AccountsError::Unauthorized);
        }
        let next = random_token();
        match self
            .store
            .rotate_refresh(&hash_refresh(refresh_token), &hash_refresh(&next), now_ms())
            .await?
        {
            RefreshOutcome::Rotated(s) => Ok(self.issue(s.user_id, s.id, next)),
            RefreshOutcome::Reused(sid) => {
                self.forget(sid);
                let user = self.store.session(sid).await?.map(|s| s.user_id);
                Err(AccountsError::TokenReused { session: sid, user })
            }
            RefreshOutcome::Invalid => Err(AccountsError::Unauthorized),
        }
    }

    /// Checks an access token and that its session is still live.
    pub async fn authenticate(&self, access_token: &str) -> Result<Principal, AccountsError> {
        let claims = self
            .keys
            .verify(access_token, now_ms() / 1000)
            .ok_or(AccountsError::Unauthorized)?;
        let user_id: UserId = claims
            .sub
            .parse()
            .map_err(|_| AccountsError::Unauthorized)?;
        let session_id: SessionId = claims
            .sid
            .parse()
            .map_err(|_| AccountsError::Unauthorized)?;
        if !self.session_live(session_id, user_id).await? {
            return Err(AccountsError::Unauthorized);
        }
        Ok(Principal {
            user_id,
            session_id,
        })
    }

    async fn session_live(&self, sid: SessionId, user: UserId) -> Result<bool, AccountsError> {
        if let Some((live, at)) = self.live.lock().map.get(&sid).copied()
            && (!live || at.elapsed() < SESSION_CHECK_TTL)
        {
            return Ok(live);
        }
        let live = matches!(self.store.session(sid).await?, Some(s) if s.revoked_at.is_none() && s.user_id == user);
        self.live.lock().insert(sid, live, self.cfg.access_ttl);
        Ok(live)
    }

    fn forget(&self, sid: SessionId) {
        self.live.lock().insert(sid, false, self.cfg.access_ttl);
    }

    /// Marks a session revoked in this node's cache (a revocation seen on the bus).
    pub fn note_revoked(&self, sid: SessionId) {
        self.forget(sid);
    }

    pub async fn logout(&self, p: Principal) -> Result<(), AccountsError> {
        self.revoke(p.user_id, p.session_id).await
    }

    pub async fn revoke(&self, user: UserId, sid: SessionId) -> Result<(), AccountsError> {
        if !self.store.revoke_session(sid, user, now_ms()).await? {
            return Err(AccountsError::NotFound);
        }
        self.forget(sid);
        Ok(())
    }

    /// Revokes every session of the user except `keep`; returns those revoked.
    pub async fn revoke_others(
        &self,
        user: UserId,
        keep: SessionId,
    ) -> Result<Vec<SessionId>, AccountsError> {
        let mut out = Vec::new();
        for s in self.store.sessions_for_user(user).await? {
            if s.id != keep && self.store.revoke_session(s.id, user, now_ms()).await? {
                self.forget(s.id);
                out.push(s.id);
            }
        }
        Ok(out)
    }

    pub async fn sessions(&self, user: UserId) -> Result<Vec<SessionRecord>, AccountsError> {
        Ok(self.store.sessions_for_user(user).await?)
    }

    /// The account a sign-in name (username or email) names, if any.
    pub async fn user_by_login(&self, login: &str) -> Result<Option<UserRecord>, AccountsError> {
        if login.is_empty() || login.len() > 254 {
            return Ok(None);
        }
        Ok(self.store.user_by_login(login.trim()).await?)
    }

    pub async fn user(&self, id: UserId) -> Result<UserRecord, AccountsError> {
        self.store.user(id).await?.ok_or(AccountsError::NotFound)
    }

    pub async fn update_profile(
        &self,
        id: UserId,
        mut patch: UserPatch,
    ) -> Result<UserRecord, AccountsError> {
        if let Some(Some(name)) = &patch.display_name {
            patch.display_name = Some(Some(validate_display_name(name)?));
        }
        self.store
            .update_user(id, &patch)
            .await?
            .ok_or(AccountsError::NotFound)
    }

    /// A fresh TOTP secret for enrollment (not saved until confirmed).
    pub fn new_totp_secret() -> Vec<u8> {
        let mut b = vec![0u8; 20];
        rand::rng().fill_bytes(&mut b);
        b
    }

    /// Checks `code` against the user's TOTP secret and spends it: a code
    /// is accepted once, and so is any code of an earlier step (a code seen
    /// over someone's shoulder is useless once its owner has signed in).
    async fn spend_totp(&self, user: &UserRecord, code: &str) -> Result<bool, AccountsError> {
        let Some(secret) = &user.totp_secret else {
            return Ok(false);
        };
        let secret = hex_decode(secret)
            .ok_or_else(|| AccountsError::Internal("stored TOTP secret".into()))?;
        match totp::matching_step(&secret, code, now_ms() / 1000) {
            Some(step) => Ok(self.store.use_totp_step(user.id, step).await?),
            None => Ok(false),
        }
    }

    /// Proves the caller is the account holder, not just a holder of its
    /// access token: the password, and a current code when TOTP is on.
    pub async fn reauthenticate(
        &self,
        user: UserId,
        password: String,
        code: Option<&str>,
    ) -> Result<UserRecord, AccountsError> {
        let u = self.user(user).await?;
        if password.len() > 1024
            || !self
                .hasher
                .verify(password, Some(u.password_hash.clone()))
                .await?
        {
            return Err(AccountsError::InvalidCredentials);
        }
        if u.totp_secret.is_some() {
            let code = code.ok_or(AccountsError::MfaRequired)?;
            if !self.spend_totp(&u, code).await? {
                return Err(AccountsError::InvalidCredentials);
            }
        }
        Ok(u)
    }

    /// Turns two-factor sign-in on, or replaces the secret, after the user
    /// proves who they are (password, and the current code when TOTP is
    /// already on) and that their app has the new secret (`code`).
    pub async fn enable_totp(
        &self,
        user: UserId,
        password: String,
        current_code: Option<&str>,
        secret: &[u8],
        code: &str,
    ) -> Result<(), AccountsError> {
        self.reauthenticate(user, password, current_code).await?;
        let step = (secret.len() >= 10)
            .then(|| totp::matching_step(secret, code, now_ms() / 1000))
            .flatten()
            .ok_or_else(|| {
                AccountsError::Invalid("code", "the code does not match the secret".into())
            })?;
        self.store
            .set_totp_secret(user, Some(&hex_encode(secret)))
            .await?;
        // The confirming code is spent too: it must not sign anyone in.
        self.store.reset_totp_step(user).await?;
        self.store.use_totp_step(user, step).await?;
        Ok(())
    }

    /// Turns two-factor sign-in off: the password and a current code.
    pub async fn disable_totp(
        &self,
        user: UserId,
        password: String,
        code: Option<&str>,
    ) -> Result<(), AccountsError> {
        self.reauthenticate(user, password, code).await?;
        self.store.set_totp_secret(user, None).await?;
        self.store.reset_totp_step(user).await?;
        Ok(())
    }

    /// Turns two-factor sign-in off for a user who lost their device, on
    /// the instance staff's word (no password or code): the admin API.
    pub async fn reset_totp(&self, user: UserId) -> Result<(), AccountsError> {
        self.user(user).await?;
        self.store.set_totp_secret(user, None).await?;
        self.store.reset_totp_step(user).await?;
        Ok(())
    }

    /// Revokes every live session of `user`; returns those revoked.
    pub async fn revoke_all(&self, user: UserId) -> Result<Vec<SessionId>, AccountsError> {
        let mut out = Vec::new();
        for s in self.store.sessions_for_user(user).await? {
            if s.revoked_at.is_none() && self.store.revoke_session(s.id, user, now_ms()).await? {
                self.forget(s.id);
                out.push(s.id);
            }
        }
        Ok(out)
    }

    pub(crate) fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Hashes a password on the blocking pool (bounded, like sign-in).
    pub(crate) async fn hash_password(&self, password: String) -> Result<String, AccountsError> {
        self.hasher.hash(password).await
    }

    pub async fn set_admin(&self, user: UserId, admin: bool) -> Result<(), AccountsError> {
        if !self.store.set_admin(user, admin).await? {
            return Err(AccountsError::NotFound);
        }
        Ok(())
    }
}

/// The per-node cache of "is this session live". Live answers are trusted
/// for [`SESSION_CHECK_TTL`]; revoked ones for as long as an access token of
/// that session could still be presented (the access-token lifetime), after
/// which the token is expired anyway and the entry is useless. The cache is
/// pruned as it grows (at most once a second, past [`LiveCache::PRUNE_AT`]
/// entries), so it holds the sessions active lately, not every session ever
/// seen.
#[derive(Default)]
struct LiveCache {
    map: HashMap<SessionId, (bool, Instant)>,
    pruned: Option<Instant>,
}

impl LiveCache {
    const PRUNE_AT: usize = 4096;

    fn insert(&mut self, sid: SessionId, live: bool, access_ttl: Duration) {
        self.map.insert(sid, (live, Instant::now()));
        if self.map.len() > Self::PRUNE_AT
            && self
                .pruned
                .is_none_or(|t| t.elapsed() > Duration::from_secs(1))
        {
            self.pruned = Some(Instant::now());
            self.map.retain(|_, (live, at)| {
                at.elapsed() < if *live { SESSION_CHECK_TTL } else { access_ttl }
            });
        }
    }
}

fn hex_encode(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn hex_decode(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod live_cache_tests {
    use super::*;

    #[test]
    fn the_cache_keeps_what_can_still_matter_and_shrinks() {
        let mut c = LiveCache::default();
        let ttl = Duration::from_secs(3600);
        for i in 0..3000 {
            c.insert(SessionId(i), true, ttl);
        }
        c.insert(SessionId(-1), false, ttl);
        std::thread::sleep(SESSION_CHECK_TTL + Duration::from_millis(50));
        // Past the threshold: live answers older than their TTL go; the
        // revoked one stays while its tokens could still be presented.
        for i in 3000..4200 {
            c.insert(SessionId(i), true, ttl);
        }
        assert!(c.map.len() <= 1201, "pruned to {}", c.map.len());
        assert_eq!(c.map.get(&SessionId(-1)).map(|e| e.0), Some(false));
        // A revoked entry older than the token lifetime goes too.
        let short = Duration::from_millis(1);
        let mut c = LiveCache::default();
        c.insert(SessionId(-2), false, short);
        std::thread::sleep(Duration::from_millis(5));
        for i in 0..4200 {
            c.insert(SessionId(i), true, short);
        }
        assert!(!c.map.contains_key(&SessionId(-2)));
    }
}
