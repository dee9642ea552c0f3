-- Platform administration: the staff policy (casbin rules, one JSON rule a
-- row: every node loads them whole and edits one row at a time) and
-- suspended accounts (a suspended user cannot sign in; suspending also
-- revokes every session, which the server does).
CREATE TABLE staff_policy (
    rule       TEXT PRIMARY KEY,
    created_at BIGINT NOT NULL
);

CREATE TABLE user_suspensions (
    user_id      BIGINT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    reason       TEXT,
    suspended_by BIGINT,
    suspended_at BIGINT NOT NULL
);
