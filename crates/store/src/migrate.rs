//! Embedded migrations: one ordered list per backend, applied in a transaction
//! each and recorded in `schema_migrations`. A database that has a version
//! this binary does not know is refused rather than guessed at. Versions may
//! have gaps; each one missing from the database is applied, in order.
//!
//! Any number of processes may migrate one database at once (a new cluster
//! starting together): the whole run, from creating `schema_migrations` and
//! reading what is applied to the last migration, holds a lock, so the first
//! process applies and the others find nothing left to do. On Postgres that is
//! a session-level advisory lock ([`PG_LOCK_KEY`]) held on one connection; on
//! SQLite one `BEGIN IMMEDIATE` transaction (the file's write lock).

pub struct Migration {
    pub version: i64,
    pub name: &'static str,
    pub sql: &'static str,
}

pub const SQLITE: &[Migration] = &[
    Migration {
        version: 1,
        name: "init",
        sql: include_str!("../migrations/sqlite/0001_init.sql"),
    },
    Migration {
        version: 2,
        name: "trust",
        sql: include_str!("../migrations/sqlite/0002_trust.sql"),
    },
    Migration {
        version: 3,
        name: "signing_keys",
        sql: include_str!("../migrations/sqlite/0003_signing_keys.sql"),
    },
    Migration {
        version: 4,
        name: "journal",
        sql: include_str!("../migrations/sqlite/0004_journal.sql"),
    },
    Migration {
        version: 5,
        name: "channel_settings",
        sql: include_str!("../migrations/sqlite/0005_channel_settings.sql"),
    },
    Migration {
        version: 6,
        name: "moderation",
        sql: include_str!("../migrations/sqlite/0006_moderation.sql"),
    },
    Migration {
        version: 7,
        name: "attachments",
        sql: include_str!("../migrations/sqlite/0007_attachments.sql"),
    },
    Migration {
        version: 8,
        name: "mail",
        sql: include_str!("../migrations/sqlite/0008_mail.sql"),
    },
    Migration {
        version: 9,
        name: "admin",
        sql: include_str!("../migrations/sqlite/0009_admin.sql"),
    },
    Migration {
        version: 10,
        name: "erasure",
        sql: include_str!("../migrations/sqlite/0010_erasure.sql"),
    },
    Migration {
        version: 11,
        name: "notifications",
        sql: include_str!("../migrations/sqlite/0011_notifications.sql"),
    },
    Migration {
        version: 12,
        name: "oidc",
        sql: include_str!("../migrations/sqlite/0012_oidc.sql"),
    },
    Migration {
        version: 13,
        name: "link_previews",
        sql: include_str!("../migrations/sqlite/0013_link_previews.sql"),
    },
    Migration {
        version: 14,
        name: "uploads",
        sql: include_str!("../migrations/sqlite/0014_uploads.sql"),
    },
    Migration {
        version: 15,
        name: "media_duration",
        sql: include_str!("../migrations/sqlite/0015_media_duration.sql"),
    },
];

pub const POSTGRES: &[Migration] = &[
    Migration {
        version: 1,
        name: "init",
        sql: include_str!("../migrations/postgres/0001_init.sql"),
    },
    Migration {
        version: 2,
        name: "trust",
        sql: include_str!("../migrations/postgres/0002_trust.sql"),
    },
    Migration {
        version: 3,
        name: "signing_keys",
        sql: include_str!("../migrations/postgres/0003_signing_keys.sql"),
    },
    Migration {
        version: 4,
        name: "journal",
        sql: include_str!("../migrations/postgres/0004_journal.sql"),
    },
    Migration {
        version: 5,
        name: "channel_settings",
        sql: include_str!("../migrations/postgres/0005_channel_settings.sql"),
    },
    Migration {
        version: 6,
        name: "moderation",
        sql: include_str!("../migrations/postgres/0006_moderation.sql"),
    },
    Migration {
        version: 7,
        name: "attachments",
        sql: include_str!("../migrations/postgres/0007_attachments.sql"),
    },
    Migration {
        version: 8,
        name: "mail",
        sql: include_str!("../migrations/postgres/0008_mail.sql"),
    },
    Migration {
        version: 9,
        name: "admin",
        sql: include_str!("../migrations/postgres/0009_admin.sql"),
    },
    Migration {
        version: 10,
        name: "erasure",
        sql: include_str!("../migrations/postgres/0010_erasure.sql"),
    },
    Migration {
        version: 11,
        name: "notifications",
        sql: include_str!("../migrations/postgres/0011_notifications.sql"),
    },
    Migration {
        version: 12,
        name: "oidc",
        sql: include_str!("../migrations/postgres/0012_oidc.sql"),
    },
    Migration {
        version: 13,
        name: "link_previews",
        sql: include_str!("../migrations/postgres/0013_link_previews.sql"),
    },
    Migration {
        version: 14,
        name: "uploads",
        sql: include_str!("../migrations/postgres/0014_uploads.sql"),
    },
    Migration {
        version: 15,
        name: "media_duration",
        sql: include_str!("../migrations/postgres/0015_media_duration.sql"),
    },
];

/// The Postgres advisory lock key that serializes migration runs ("HEARTHMG").
/// Advisory locks are per database, so databases on one server do not wait
/// for each other.
pub const PG_LOCK_KEY: i64 = 0x4845_4152_5448_4d47;

pub const CREATE_TABLE: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)";
