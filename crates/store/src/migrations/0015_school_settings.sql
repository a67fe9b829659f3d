-- Per-school overrides of settings that server.toml holds for every school
-- (issue 14: retention, keyword severity actions, thumbnails, backups, login
-- limits). A missing row means the server's value applies; the row says who
-- set the value and when, for the settings page's "where it came from".
CREATE TABLE school_settings (
    school_id   INTEGER NOT NULL REFERENCES schools(id),
    key         TEXT NOT NULL,
    value       TEXT NOT NULL,
    set_by      TEXT NOT NULL,
    set_at      INTEGER NOT NULL,
    PRIMARY KEY (school_id, key)
);
-- The audit page filters by actor and action.
CREATE INDEX audit_school_actor ON audit_log(school_id, actor, id);
CREATE INDEX audit_school_action ON audit_log(school_id, action, id);
