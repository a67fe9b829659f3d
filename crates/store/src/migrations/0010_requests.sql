-- Students' raised hands (help requests) and chat (see requests.rs).
-- A device has at most one open request: the partial unique index holds it
-- even if two frames race.
CREATE TABLE help_requests (
    id          INTEGER PRIMARY KEY,
    school_id   INTEGER NOT NULL REFERENCES schools(id),
    device_id   INTEGER NOT NULL,
    username    TEXT,
    note        TEXT NOT NULL,
    raised_at   INTEGER NOT NULL,
    closed_at   INTEGER,
    outcome     TEXT,
    closed_by   TEXT,
    answer      TEXT
);
CREATE UNIQUE INDEX help_requests_one_open ON help_requests(school_id, device_id)
    WHERE closed_at IS NULL;
CREATE INDEX help_requests_school ON help_requests(school_id, closed_at, id);

-- One row per device a message belongs to: a teacher's message to a class is
-- stored once per device with a shared batch id. `thread` is the history the
-- message belongs to: "lesson:<id>" while a lesson runs over the device,
-- else "day:<YYYY-MM-DD>" (UTC).
CREATE TABLE chat_messages (
    id           INTEGER PRIMARY KEY,
    school_id    INTEGER NOT NULL REFERENCES schools(id),
    device_id    INTEGER NOT NULL,
    thread       TEXT NOT NULL,
    batch        INTEGER,
    author       TEXT NOT NULL,
    from_teacher INTEGER NOT NULL,
    text         TEXT NOT NULL,
    at           INTEGER NOT NULL
);
CREATE INDEX chat_messages_device ON chat_messages(school_id, device_id, thread, id);
