-- Hearth schema v1, Postgres flavour. Times are Unix milliseconds; IDs are snowflakes.
CREATE TABLE node_leases (
    node_id    BIGINT PRIMARY KEY,
    holder     TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);

CREATE TABLE users (
    id             BIGINT PRIMARY KEY,
    username       TEXT NOT NULL,
    username_lower TEXT NOT NULL UNIQUE,
    email          TEXT,
    email_lower    TEXT UNIQUE,
    display_name   TEXT,
    avatar_id      BIGINT,
    password_hash  TEXT NOT NULL,
    is_admin       BOOLEAN NOT NULL DEFAULT FALSE,
    plan           TEXT NOT NULL DEFAULT 'free',
    totp_secret    TEXT,
    created_at     BIGINT NOT NULL
);

CREATE TABLE sessions (
    id           BIGINT PRIMARY KEY,
    user_id      BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    user_agent   TEXT,
    created_at   BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    revoked_at   BIGINT
);
CREATE INDEX sessions_by_user ON sessions(user_id);

-- Every refresh token ever issued, hashed. A spent one presented again revokes its session.
CREATE TABLE refresh_tokens (
    hash       TEXT PRIMARY KEY,
    session_id BIGINT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    spent      BOOLEAN NOT NULL DEFAULT FALSE,
    created_at BIGINT NOT NULL
);
CREATE INDEX refresh_tokens_by_session ON refresh_tokens(session_id);

CREATE TABLE communities (
    id         BIGINT PRIMARY KEY,
    name       TEXT NOT NULL,
    owner_id   BIGINT NOT NULL REFERENCES users(id),
    icon_id    BIGINT,
    created_at BIGINT NOT NULL
);

CREATE TABLE roles (
    id           BIGINT PRIMARY KEY,
    community_id BIGINT NOT NULL REFERENCES communities(id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    permissions  BIGINT NOT NULL,
    color        INTEGER,
    position     INTEGER NOT NULL
);
CREATE INDEX roles_by_community ON roles(community_id);

CREATE TABLE members (
    community_id    BIGINT NOT NULL REFERENCES communities(id) ON DELETE CASCADE,
    user_id         BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    nickname        TEXT,
    joined_at       BIGINT NOT NULL,
    timed_out_until BIGINT,
    PRIMARY KEY (community_id, user_id)
);
CREATE INDEX members_by_user ON members(user_id);

CREATE TABLE member_roles (
    community_id BIGINT NOT NULL,
    user_id      BIGINT NOT NULL,
    role_id      BIGINT NOT NULL REFERENCES roles(id) ON DELETE CASCADE,
    PRIMARY KEY (community_id, user_id, role_id),
    FOREIGN KEY (community_id, user_id) REFERENCES members(community_id, user_id) ON DELETE CASCADE
);

CREATE TABLE bans (
    community_id BIGINT NOT NULL REFERENCES communities(id) ON DELETE CASCADE,
    user_id      BIGINT NOT NULL,
    reason       TEXT,
    moderator_id BIGINT NOT NULL,
    created_at   BIGINT NOT NULL,
    PRIMARY KEY (community_id, user_id)
);

CREATE TABLE invites (
    code         TEXT PRIMARY KEY,
    community_id BIGINT NOT NULL REFERENCES communities(id) ON DELETE CASCADE,
    inviter_id   BIGINT NOT NULL,
    uses         INTEGER NOT NULL DEFAULT 0,
    max_uses     INTEGER,
    expires_at   BIGINT,
    created_at   BIGINT NOT NULL
);
CREATE INDEX invites_by_community ON invites(community_id);

CREATE TABLE channels (
    id              BIGINT PRIMARY KEY,
    community_id    BIGINT REFERENCES communities(id) ON DELETE CASCADE,
    kind            TEXT NOT NULL,
    name            TEXT,
    topic           TEXT,
    position        INTEGER NOT NULL DEFAULT 0,
    parent_id       BIGINT,
    owner_id        BIGINT,
    dm_key          TEXT UNIQUE,
    created_at      BIGINT NOT NULL
);
CREATE INDEX channels_by_community ON channels(community_id);

CREATE TABLE channel_recipients (
    channel_id BIGINT NOT NULL REFERENCES channels(id) ON DELETE CASCADE,
    user_id    BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    PRIMARY KEY (channel_id, user_id)
);
CREATE INDEX channel_recipients_by_user ON channel_recipients(user_id);

CREATE TABLE overwrites (
    channel_id  BIGINT NOT NULL REFERENCES channels(id) ON DELETE CASCADE,
    target_id   BIGINT NOT NULL,
    target_type TEXT NOT NULL,
    allow_bits  BIGINT NOT NULL,
    deny_bits   BIGINT NOT NULL,
    PRIMARY KEY (channel_id, target_id)
);

CREATE TABLE messages (
    id               BIGINT PRIMARY KEY,
    channel_id       BIGINT NOT NULL REFERENCES channels(id) ON DELETE CASCADE,
    author_id        BIGINT NOT NULL REFERENCES users(id),
    content          TEXT NOT NULL,
    edited_at        BIGINT,
    reply_to_id      BIGINT,
    mention_users    TEXT NOT NULL DEFAULT '',
    mention_roles    TEXT NOT NULL DEFAULT '',
    mention_everyone BOOLEAN NOT NULL DEFAULT FALSE,
    attachment_ids   TEXT NOT NULL DEFAULT '',
    pinned           BOOLEAN NOT NULL DEFAULT FALSE,
    nonce            TEXT
);
CREATE INDEX messages_by_channel ON messages(channel_id, id);
CREATE INDEX messages_pinned ON messages(channel_id, id) WHERE pinned;

-- Nonce idempotency: one (channel, author, nonce) per live message; the
-- insert itself detects a repeat (ON CONFLICT), so a send is one statement.
CREATE UNIQUE INDEX messages_nonce ON messages(channel_id, author_id, nonce) WHERE nonce IS NOT NULL;

CREATE TABLE reactions (
    channel_id BIGINT NOT NULL,
    message_id BIGINT NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
    emoji      TEXT NOT NULL,
    user_id    BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (message_id, emoji, user_id)
);
CREATE INDEX reactions_by_channel ON reactions(channel_id, message_id);

CREATE TABLE read_states (
    user_id       BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    channel_id    BIGINT NOT NULL REFERENCES channels(id) ON DELETE CASCADE,
    last_read_id  BIGINT NOT NULL DEFAULT 0,
    mention_count INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (user_id, channel_id)
);
