-- Every row is scoped by school_id: one on-premise server is one school, a
-- cloud deployment many.
CREATE TABLE schools (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);

CREATE TABLE users (
    id            INTEGER PRIMARY KEY,
    school_id     INTEGER NOT NULL REFERENCES schools(id),
    username      TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    role          TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    UNIQUE (school_id, username)
);

CREATE TABLE sessions (
    token_hash  TEXT PRIMARY KEY,
    school_id   INTEGER NOT NULL REFERENCES schools(id),
    user_id     INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    csrf_token  TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL
);

CREATE TABLE enrollment_tokens (
    id          INTEGER PRIMARY KEY,
    school_id   INTEGER NOT NULL REFERENCES schools(id),
    token_hash  TEXT NOT NULL UNIQUE,
    label       TEXT NOT NULL,
    uses_left   INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    created_by  TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);

CREATE TABLE devices (
    id            INTEGER PRIMARY KEY,
    school_id     INTEGER NOT NULL REFERENCES schools(id),
    hostname      TEXT NOT NULL,
    os            TEXT NOT NULL,
    agent_version TEXT NOT NULL,
    secret_hash   TEXT NOT NULL,
    state         TEXT NOT NULL DEFAULT '{}',
    enrolled_at   INTEGER NOT NULL,
    last_seen     INTEGER,
    revoked_at    INTEGER
);
CREATE INDEX devices_school ON devices(school_id);

CREATE TABLE commands (
    id          INTEGER PRIMARY KEY,
    school_id   INTEGER NOT NULL REFERENCES schools(id),
    actor       TEXT NOT NULL,
    body        TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);

CREATE TABLE command_targets (
    command_id  INTEGER NOT NULL REFERENCES commands(id) ON DELETE CASCADE,
    device_id   INTEGER NOT NULL,
    status      TEXT NOT NULL,
    reason      TEXT,
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (command_id, device_id)
) WITHOUT ROWID;

CREATE TABLE audit_log (
    id          INTEGER PRIMARY KEY,
    school_id   INTEGER NOT NULL REFERENCES schools(id),
    at          INTEGER NOT NULL,
    actor       TEXT NOT NULL,
    address     TEXT,
    action      TEXT NOT NULL,
    detail      TEXT NOT NULL,
    devices     TEXT NOT NULL DEFAULT '[]',
    command_id  INTEGER,
    outcome     TEXT NOT NULL
);
CREATE INDEX audit_school_at ON audit_log(school_id, id);
