-- Notifications (issue #13): settings per account, community and channel;
-- the inbox; browsers' Web Push subscriptions, the pushes waiting to go
-- out, and the server's VAPID key.

-- One row per user and scope: scope_id 0 holds the account's settings,
-- otherwise a community's or a channel's id (scope says which). NULL
-- columns inherit. push_previews and email_digest are the account's only.
CREATE TABLE notification_settings (
    user_id           BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    scope_id          BIGINT NOT NULL,
    scope             TEXT NOT NULL,
    level             TEXT,
    muted_until       BIGINT,
    suppress_everyone BOOLEAN,
    push_previews     BOOLEAN,
    email_digest      BOOLEAN,
    PRIMARY KEY (user_id, scope_id)
);
-- Who asked for every message of a community or channel.
CREATE INDEX notification_settings_all ON notification_settings (scope_id) WHERE level = 'all';

-- The inbox. One notification per user and message (a redelivered event
-- adds nothing); it goes with its message.
CREATE TABLE notifications (
    id           BIGINT PRIMARY KEY,
    user_id      BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    message_id   BIGINT NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
    channel_id   BIGINT NOT NULL,
    community_id BIGINT,
    kind         TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    read_at      BIGINT,
    emailed_at   BIGINT,
    UNIQUE (user_id, message_id)
);
CREATE INDEX notifications_user ON notifications (user_id, id);
CREATE INDEX notifications_message ON notifications (message_id);
CREATE INDEX notifications_unread ON notifications (user_id, channel_id) WHERE read_at IS NULL;
-- For the digest: unread, not yet mailed, by age.
CREATE INDEX notifications_digest ON notifications (created_at) WHERE read_at IS NULL AND emailed_at IS NULL;

-- A browser's push subscription (PushSubscription.toJSON()); the endpoint
-- is the browser's, so it belongs to whoever registered it last.
CREATE TABLE push_subscriptions (
    id         BIGINT PRIMARY KEY,
    user_id    BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    endpoint   TEXT NOT NULL UNIQUE,
    p256dh     TEXT NOT NULL,
    auth       TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX push_subscriptions_user ON push_subscriptions (user_id, created_at);

-- Pushes to send. One row per subscription and topic (the channel): a
-- newer push for the same channel replaces one still waiting (version
-- counts replacements, so a worker that sent an older payload leaves the
-- newer one queued). A row goes when sent or given up.
CREATE TABLE push_outbox (
    id              BIGINT PRIMARY KEY,
    subscription_id BIGINT NOT NULL REFERENCES push_subscriptions(id) ON DELETE CASCADE,
    topic           TEXT NOT NULL,
    payload         TEXT NOT NULL,
    version         BIGINT NOT NULL DEFAULT 0,
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    claimed_until   BIGINT,
    created_at      BIGINT NOT NULL,
    UNIQUE (subscription_id, topic)
);
CREATE INDEX push_outbox_due ON push_outbox (next_attempt_at);

-- The server's VAPID key (one row, id 1), shared by every node: browsers
-- bind subscriptions to its public half.
CREATE TABLE vapid_keys (
    id          BIGINT PRIMARY KEY,
    private_key TEXT NOT NULL,
    public_key  TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);
