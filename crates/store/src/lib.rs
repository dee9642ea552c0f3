//! The storage seam. One repository API ([`Store`]) with two implementations:
//! SQLite (the embedded default, one file in the data directory, WAL mode) and
//! Postgres (for clusters). Both run the same SQL text, generated once by
//! [`sql_impl!`](crate::sql) for each pool type, so the backends cannot drift.
//!
//! Invariants:
//! - Only this crate writes SQL. Callers see records, never rows.
//! - This crate knows nothing of HTTP, JSON or permissions: it stores and
//!   fetches; the domain crates decide who may.
//! - Multi-row changes that must hold together (a community with its
//!   `@everyone` role and `general` channel, a message with its nonce, a ban
//!   with the member's removal) run in one transaction.

pub mod backup;
mod connect;
pub mod copy;
mod embeds;
mod error;
mod mail;
mod migrate;
mod model;
mod notify;
mod oidc;
mod sql;
mod store;
pub mod testing;
mod uploads;

pub use connect::{Backend, connect, connect_postgres, connect_sqlite};
pub use embeds::{EmbedImage, EmbedRecord, EmbedStore, LinkPreviewRecord, PreviewData};
pub use error::{StoreError, StoreResult};
pub use mail::{AccountTokenRecord, MailRecord, MailStatus, MailStore};
pub use model::*;
pub use notify::{
    ACCOUNT_SCOPE, NewNotification, NotificationRecord, NotifySettingRecord, NotifyStore,
    PushRecord, PushSubscriptionRecord,
};
pub use oidc::{IdentityRecord, OidcFlowRecord, OidcStore};
pub use store::Store;
pub use uploads::{UploadPartRecord, UploadRecord, UploadStore};
