-- Files sent to devices and collected back, and exams (issue 13.7). File
-- contents live on disk under the data directory (files/, collected/); these
-- rows say what, to whom and how far.
CREATE TABLE file_transfers (
    id          INTEGER PRIMARY KEY,
    school_id   INTEGER NOT NULL REFERENCES schools(id),
    name        TEXT NOT NULL,
    title       TEXT NOT NULL,
    size        INTEGER NOT NULL,
    sha256      TEXT NOT NULL,
    created_by  TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    exam_id     INTEGER
);
CREATE TABLE file_deliveries (
    transfer_id INTEGER NOT NULL REFERENCES file_transfers(id) ON DELETE CASCADE,
    device_id   INTEGER NOT NULL,
    status      TEXT NOT NULL,
    bytes       INTEGER NOT NULL DEFAULT 0,
    saved_as    TEXT,
    reason      TEXT,
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (transfer_id, device_id)
);
CREATE INDEX file_deliveries_device ON file_deliveries(device_id, status);
CREATE TABLE collections (
    id          INTEGER PRIMARY KEY,
    school_id   INTEGER NOT NULL REFERENCES schools(id),
    path        TEXT NOT NULL,
    max_bytes   INTEGER NOT NULL,
    created_by  TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    exam_id     INTEGER
);
CREATE TABLE collection_devices (
    collection_id INTEGER NOT NULL REFERENCES collections(id) ON DELETE CASCADE,
    device_id     INTEGER NOT NULL,
    folder        TEXT NOT NULL,
    status        TEXT NOT NULL,
    file_index    INTEGER NOT NULL DEFAULT 0,
    file_offset   INTEGER NOT NULL DEFAULT 0,
    bytes         INTEGER NOT NULL DEFAULT 0,
    files         INTEGER NOT NULL DEFAULT 0,
    reason        TEXT,
    updated_at    INTEGER NOT NULL,
    PRIMARY KEY (collection_id, device_id)
);
CREATE INDEX collection_devices_device ON collection_devices(device_id, status);
CREATE TABLE exams (
    id              INTEGER PRIMARY KEY,
    school_id       INTEGER NOT NULL REFERENCES schools(id),
    name            TEXT NOT NULL,
    devices         TEXT NOT NULL,
    allowed_apps    TEXT NOT NULL,
    allowed_sites   TEXT NOT NULL,
    paper_transfer  INTEGER,
    paper_name      TEXT,
    collect_path    TEXT,
    starts_at       INTEGER,
    ends_at         INTEGER,
    status          TEXT NOT NULL,
    started_at      INTEGER,
    ended_at        INTEGER,
    collection_id   INTEGER,
    created_by      TEXT NOT NULL,
    created_at      INTEGER NOT NULL
);
CREATE TABLE exam_log (
    id          INTEGER PRIMARY KEY,
    exam_id     INTEGER NOT NULL REFERENCES exams(id) ON DELETE CASCADE,
    at          INTEGER NOT NULL,
    device_id   INTEGER,
    kind        TEXT NOT NULL,
    detail      TEXT NOT NULL
);
CREATE INDEX exam_log_exam ON exam_log(exam_id, id);
