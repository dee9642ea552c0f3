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

-- Reports to a community's moderators (community_id set) or to the
-- instance's staff (NULL). The report itself (subject, the reported
-- message's content as evidence, notes) is one JSON document the
-- moderation crate defines; `version` rises with every change, so two
-- moderators handling one report at once cannot overwrite each other.
CREATE TABLE reports (
    id           BIGINT PRIMARY KEY,
    community_id BIGINT,
    reporter_id  BIGINT NOT NULL,
    state        TEXT NOT NULL,
    report       TEXT NOT NULL,
    version      BIGINT NOT NULL,
    created_at   BIGINT NOT NULL
);
CREATE INDEX reports_queue ON reports (community_id, state, id);
