-- Safeguarding mail (issue 15): each school's SMTP settings and alert rules.
-- The settings and rules are JSON the server validates; the password is
-- sealed by the server before it gets here (never plain text at rest).
CREATE TABLE mail_settings (
    school_id    INTEGER PRIMARY KEY REFERENCES schools(id),
    config       TEXT NOT NULL,
    password     TEXT NOT NULL DEFAULT '',
    -- Violations with an id above this go in the next digest.
    digest_after INTEGER NOT NULL DEFAULT 0,
    -- When the next digest is due (ms, server clock); 0: none scheduled.
    digest_next  INTEGER NOT NULL DEFAULT 0,
    updated_by   TEXT NOT NULL,
    updated_at   INTEGER NOT NULL
);

CREATE TABLE mail_rules (
    id         INTEGER PRIMARY KEY,
    school_id  INTEGER NOT NULL REFERENCES schools(id),
    rule       TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX mail_rules_school ON mail_rules(school_id, id);
