-- Retrospective keyword scans (see retro.rs): one row per job, keyed by
-- school. At most one job per school is queued or running (partial unique
-- index), so two starts racing each other cannot both win. `library` is
-- the snapshot of the terms the job looks for, as JSON; `cursor` the last
-- activity row id scanned, so a job resumes after a restart; `runner` the
-- token of the task scanning it (only that task's progress is recorded).
CREATE TABLE retro_scans (
    id            INTEGER PRIMARY KEY,
    school_id     INTEGER NOT NULL REFERENCES schools(id),
    library       TEXT NOT NULL,
    terms         INTEGER NOT NULL,
    reason        TEXT NOT NULL,
    started_by    TEXT NOT NULL,
    state         TEXT NOT NULL,
    since         INTEGER NOT NULL,
    until         INTEGER NOT NULL,
    cursor        INTEGER NOT NULL DEFAULT 0,
    runner        INTEGER NOT NULL DEFAULT 0,
    rows_scanned  INTEGER NOT NULL DEFAULT 0,
    rows_total    INTEGER NOT NULL DEFAULT 0,
    hits          INTEGER NOT NULL DEFAULT 0,
    pauses        INTEGER NOT NULL DEFAULT 0,
    busy_ms       INTEGER NOT NULL DEFAULT 0,
    cpu_percent   INTEGER NOT NULL,
    note          TEXT NOT NULL DEFAULT '',
    started_at    INTEGER NOT NULL,
    finished_at   INTEGER
);
CREATE UNIQUE INDEX retro_scans_one_active ON retro_scans(school_id)
    WHERE state IN ('queued', 'running');
CREATE INDEX retro_scans_school ON retro_scans(school_id, id);

-- A violation found by a retrospective scan names the activity row it came
-- from; the unique key makes a second scan of the same event add nothing.
ALTER TABLE violations ADD COLUMN retrospective INTEGER NOT NULL DEFAULT 0;
ALTER TABLE violations ADD COLUMN activity_id INTEGER;
CREATE UNIQUE INDEX violations_retro_key
    ON violations(school_id, device_id, activity_id, term)
    WHERE activity_id IS NOT NULL;
-- The live-duplicate check looks violations up by device and time.
CREATE INDEX violations_device_at ON violations(device_id, at);
