//! Accounts and sessions.
//!
//! - Passwords are hashed with Argon2id on the blocking pool, a few at a time,
//!   so a login flood can neither stall the async runtime nor exhaust memory.
//! - Access tokens are short-lived HS256 JWTs naming the user and the session.
//!   Every request also checks that the session is still live (cached for at
//!   most [`SESSION_CHECK_TTL`]), so a logout or revoke bites on the next request
//!   on this node and within that TTL on any other.
//! - Refresh tokens are random, stored only as SHA-256 hashes, and rotated on
//!   every use; presenting a spent one revokes the whole session.
//!
//! This crate knows nothing of HTTP: callers pass user agents in and map
//! [`AccountsError`] to status codes once.

mod error;
mod jwt;
pub mod oidc;
mod password;
mod service;
mod tokens;
mod totp;
mod validate;

pub use error::{AccountsError, TokenProblem};
pub use jwt::{Claims, TokenKeys};
pub use password::{HashCost, PasswordHasher};
pub use service::{
    Accounts, AccountsConfig, AuthSuccess, NewAccount, Principal, SESSION_CHECK_TTL, TokenPair,
};
pub use tokens::{EMAIL_TOKEN_TTL, EmailConfirmed, TokenPurpose};
pub use totp::{totp_at, verify_totp};
pub use validate::{validate_display_name, validate_email, validate_password, validate_username};
