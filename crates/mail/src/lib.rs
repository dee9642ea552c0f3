//! Outgoing mail, as pieces the server composes:
//!
//! - [`Mailer`]: the seam ("hand this message to a mail server"), with
//!   [`SmtpMailer`] (lettre over tokio, TLS through rustls/ring) as the one
//!   real implementation. A refusal is classified once, as
//!   [`SendError::Permanent`] (a 5xx reply: retrying cannot help, the address
//!   is marked) or [`SendError::Transient`] (a 4xx reply, a refused
//!   connection, a timeout: try again later).
//! - [`templates`]: every mail the server sends, each rendered to a subject,
//!   a plain-text part and an HTML part. Values are HTML-escaped when they
//!   enter the HTML part; there is no template language to get wrong.
//! - [`retry`]: the outbox's policy: three retries with growing waits, then
//!   failed; a permanent refusal is never retried.
//!
//! This crate knows nothing of HTTP, SQL, the bus or users: the server's
//! outbox (`apps/server/src/mail.rs`) stores what to send and calls these.

pub mod retry;
mod smtp;
pub mod templates;

pub use smtp::SmtpMailer;
pub use templates::{DigestItem, Rendered, Template};

/// One message ready to go: one recipient, both parts rendered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutgoingMail {
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: String,
}

#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum SendError {
    /// The server refused for good (5xx), or the message cannot be built
    /// for this address: do not retry; the address is likely dead.
    #[error("permanent: {0}")]
    Permanent(String),
    /// Try again later: a 4xx reply, no connection, a timeout.
    #[error("transient: {0}")]
    Transient(String),
}

impl SendError {
    pub fn is_permanent(&self) -> bool {
        matches!(self, SendError::Permanent(_))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// A setting (`smtp_url`, `mail_from`) that cannot work.
    #[error("{0}: {1}")]
    Config(&'static str, String),
}

/// Hands messages to a mail server.
#[async_trait::async_trait]
pub trait Mailer: Send + Sync + 'static {
    async fn send(&self, mail: &OutgoingMail) -> Result<(), SendError>;
}
