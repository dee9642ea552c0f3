-- Sign in with OpenID Connect (issue #13). A flow is one trip to a
-- provider and back: found by the SHA-256 of its state, used once, dead
-- after ten minutes; it holds the nonce and the PKCE verifier, and the
-- account being linked when it is a link rather than a sign-in.
CREATE TABLE oidc_flows (
    state_hash   TEXT PRIMARY KEY,
    provider     TEXT NOT NULL,
    nonce        TEXT NOT NULL,
    verifier     TEXT NOT NULL,
    link_user_id BIGINT REFERENCES users(id) ON DELETE CASCADE,
    redirect     TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    used_at      BIGINT
);
CREATE INDEX oidc_flows_expiry ON oidc_flows (expires_at);

-- An identity at a provider (its `sub`), held by one account.
CREATE TABLE user_identities (
    id         BIGINT PRIMARY KEY,
    user_id    BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    provider   TEXT NOT NULL,
    subject    TEXT NOT NULL,
    email      TEXT,
    created_at BIGINT NOT NULL,
    UNIQUE (provider, subject)
);
CREATE INDEX user_identities_user ON user_identities (user_id);
