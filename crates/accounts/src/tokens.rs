//! Single-use account tokens mailed as links: email verification, password
//! reset, email change. The secret is 32 random bytes; only its SHA-256 is
//! stored (as with refresh tokens), with the address it was mailed to, an
//! expiry and when it was used. Spending is one conditional UPDATE, so two
//! nodes cannot both accept a token.

use std::time::Duration;

use hearth_store::{AccountTokenRecord, StoreError, UserRecord};
use hearth_types::{SessionId, UserId, now_ms};

use crate::service::{Accounts, hash_refresh, random_token};
use crate::validate::{validate_email, validate_password};
use crate::{AccountsError, TokenProblem};

/// What a token is for (stored; add, never rename).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenPurpose {
    VerifyEmail,
    PasswordReset,
    EmailChange,
}

impl TokenPurpose {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenPurpose::VerifyEmail => "verify_email",
            TokenPurpose::PasswordReset => "password_reset",
            TokenPurpose::EmailChange => "email_change",
        }
    }
}

/// How long verification and email-change links work.
pub const EMAIL_TOKEN_TTL: Duration = Duration::from_secs(24 * 3600);

/// What a redeemed verification or email-change token did.
#[derive(Clone, Debug)]
pub enum EmailConfirmed {
    /// The account's current address is verified.
    Verified(UserRecord),
    /// The account's address is now the new one (verified).
    Changed {
        user: UserRecord,
        old: Option<String>,
    },
}

impl Accounts {
    /// Stores a new token for `user` and returns its secret (to be mailed;
    /// never stored).
    pub async fn issue_token(
        &self,
        user: UserId,
        purpose: TokenPurpose,
        email: &str,
        ttl: Duration,
    ) -> Result<String, AccountsError> {
        let secret = random_token();
        let now = now_ms();
        self.store()
            .create_account_token(&AccountTokenRecord {
                hash: hash_refresh(&secret),
                user_id: user,
                purpose: purpose.as_str().into(),
                email: email.to_string(),
                created_at: now,
                expires_at: now + ttl.as_millis() as i64,
                used_at: None,
            })
            .await?;
        Ok(secret)
    }

    /// The unspent, unexpired token of one of `purposes`, not yet spent.
    async fn check_token(
        &self,
        secret: &str,
        purposes: &[TokenPurpose],
    ) -> Result<AccountTokenRecord, AccountsError> {
        if secret.is_empty() || secret.len() > 256 {
            return Err(AccountsError::Token(TokenProblem::Invalid));
        }
        let t = self
            .store()
            .account_token(&hash_refresh(secret))
            .await?
            .filter(|t| purposes.iter().any(|p| p.as_str() == t.purpose))
            .ok_or(AccountsError::Token(TokenProblem::Invalid))?;
        if t.used_at.is_some() {
            return Err(AccountsError::Token(TokenProblem::Used));
        }
        if t.expires_at <= now_ms() {
            return Err(AccountsError::Token(TokenProblem::Expired));
        }
        Ok(t)
    }

    /// Spends a checked token; a concurrent redemption that won makes this one `Used`.
    async fn spend(&self, t: &AccountTokenRecord) -> Result<(), AccountsError> {
        if !self.store().use_account_token(&t.hash, now_ms()).await? {
            return Err(AccountsError::Token(TokenProblem::Used));
        }
        Ok(())
    }

    /// Redeems a verification or email-change token.
    pub async fn confirm_email(&self, secret: &str) -> Result<EmailConfirmed, AccountsError> {
        let t = self
            .check_token(
                secret,
                &[TokenPurpose::VerifyEmail, TokenPurpose::EmailChange],
            )
            .await?;
        let user = self.user(t.user_id).await?;
        let current = user.email.as_deref().map(str::to_lowercase);
        if t.purpose == TokenPurpose::VerifyEmail.as_str() {
            // A link mailed to an address the account no longer has proves nothing.
            if current.as_deref() != Some(t.email.to_lowercase().as_str()) {
                return Err(AccountsError::Token(TokenProblem::Invalid));
            }
            self.spend(&t).await?;
            self.store()
                .set_email_verified(user.id, &t.email, now_ms())
                .await?;
            return Ok(EmailConfirmed::Verified(self.user(user.id).await?));
        }
        self.spend(&t).await?;
        match self.store().change_email(user.id, &t.email, now_ms()).await {
            Ok(_) => {}
            Err(StoreError::Conflict(_)) => return Err(AccountsError::Taken("email")),
            Err(e) => return Err(e.into()),
        }
        // Older change links (to other addresses) die with this one.
        self.store()
            .spend_account_tokens(user.id, TokenPurpose::EmailChange.as_str(), now_ms())
            .await?;
        Ok(EmailConfirmed::Changed {
            user: self.user(user.id).await?,
            old: user.email,
        })
    }

    /// Sets a new password with a reset token and revokes every session of
    /// the account; returns the user and the sessions revoked (the caller
    /// announces them, so their sockets close on every node).
    pub async fn reset_password(
        &self,
        secret: &str,
        password: String,
    ) -> Result<(UserId, Vec<SessionId>), AccountsError> {
        // A bad password must not burn the link: check it first.
        validate_password(&password)?;
        let t = self
            .check_token(secret, &[TokenPurpose::PasswordReset])
            .await?;
        let user = self.user(t.user_id).await?;
        if user.email.as_deref().map(str::to_lowercase) != Some(t.email.to_lowercase()) {
            return Err(AccountsError::Token(TokenProblem::Invalid));
        }
        let hash = self.hash_password(password).await?;
        self.spend(&t).await?;
        let now = now_ms();
        let revoked = self.store().reset_password(user.id, &hash, now).await?;
        for sid in &revoked {
            self.note_revoked(*sid);
        }
        // Every other reset link of the account dies too.
        self.store()
            .spend_account_tokens(user.id, TokenPurpose::PasswordReset.as_str(), now)
            .await?;
        // The link reached the address: it is the user's.
        self.store()
            .set_email_verified(user.id, &t.email, now)
            .await?;
        Ok((user.id, revoked))
    }

    /// Checks an email change: the account holder (password, and a code
    /// when TOTP is on), a valid address that no account holds. Returns
    /// the user as they are and the new address.
    pub async fn check_email_change(
        &self,
        user: UserId,
        password: String,
        totp_code: Option<&str>,
        email: &str,
    ) -> Result<(UserRecord, String), AccountsError> {
        let email = validate_email(email)?;
        let u = self.reauthenticate(user, password, totp_code).await?;
        if u.email
            .as_deref()
            .is_some_and(|e| e.eq_ignore_ascii_case(&email))
        {
            return Err(AccountsError::Invalid(
                "email",
                "that is already your address".into(),
            ));
        }
        if self.store().user_by_login(&email).await?.is_some() {
            return Err(AccountsError::Taken("email"));
        }
        Ok((u, email))
    }
}
