-- Violations: keyword matches with their context; screenshots live in the data
-- directory under evidence/<id>/ and go with their row.
CREATE TABLE violations (
    id          INTEGER PRIMARY KEY,
    school_id   INTEGER NOT NULL REFERENCES schools(id),
    device_id   INTEGER NOT NULL,
    user        TEXT,
    term        TEXT NOT NULL,
    category    TEXT NOT NULL,
    severity    INTEGER NOT NULL,
    matched     TEXT NOT NULL,
    context     TEXT NOT NULL,
    source      TEXT NOT NULL,
    action      TEXT NOT NULL,
    screenshots INTEGER NOT NULL DEFAULT 0,
    at          INTEGER NOT NULL
);
CREATE INDEX violations_school_at ON violations(school_id, at);

-- Scheduled report definitions.
CREATE TABLE reports (
    id          INTEGER PRIMARY KEY,
    school_id   INTEGER NOT NULL REFERENCES schools(id),
    name        TEXT NOT NULL,
    kind        TEXT NOT NULL,
    group_id    INTEGER,
    days        INTEGER NOT NULL,
    schedule    TEXT NOT NULL,
    last_run    INTEGER,
    created_at  INTEGER NOT NULL
);

-- Small school-wide documents (the keyword library).
CREATE TABLE documents (
    school_id   INTEGER NOT NULL REFERENCES schools(id),
    name        TEXT NOT NULL,
    body        TEXT NOT NULL,
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (school_id, name)
);
