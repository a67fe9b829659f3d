-- Groups carry their members and settings as JSON validated by lectern-policy;
-- a group is read and written whole, and resolution needs every group anyway.
CREATE TABLE groups (
    id          INTEGER PRIMARY KEY,
    school_id   INTEGER NOT NULL REFERENCES schools(id),
    name        TEXT NOT NULL,
    kind        TEXT NOT NULL,
    priority    TEXT NOT NULL,
    builtin     TEXT,
    members     TEXT NOT NULL DEFAULT '[]',
    settings    TEXT NOT NULL DEFAULT '{}',
    created_at  INTEGER NOT NULL,
    UNIQUE (school_id, name)
);

CREATE TABLE directory_memberships (
    school_id   INTEGER NOT NULL REFERENCES schools(id),
    username    TEXT NOT NULL COLLATE NOCASE,
    group_name  TEXT NOT NULL,
    PRIMARY KEY (school_id, username, group_name)
) WITHOUT ROWID;

CREATE TABLE access_rules (
    id          INTEGER PRIMARY KEY,
    school_id   INTEGER NOT NULL REFERENCES schools(id),
    rule        TEXT NOT NULL
);

CREATE TABLE lessons (
    id            INTEGER PRIMARY KEY,
    school_id     INTEGER NOT NULL REFERENCES schools(id),
    group_id      INTEGER NOT NULL,
    teacher       TEXT NOT NULL,
    restrictions  TEXT NOT NULL,
    starts_at     INTEGER NOT NULL,
    ends_at       INTEGER NOT NULL,
    ended_at      INTEGER
);
CREATE INDEX lessons_school_end ON lessons(school_id, ends_at);

CREATE TABLE counters (
    school_id   INTEGER NOT NULL REFERENCES schools(id),
    name        TEXT NOT NULL,
    value       INTEGER NOT NULL,
    PRIMARY KEY (school_id, name)
) WITHOUT ROWID;
