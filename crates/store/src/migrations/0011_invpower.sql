-- Inventory (issue 13.5): each device's last report, per school, keyed by
-- the device's own id (never by a name it reports), with the hash of its
-- JSON so the agent need only send a hash at connect.
CREATE TABLE inventory (
    school_id   INTEGER NOT NULL REFERENCES schools(id),
    device_id   INTEGER NOT NULL,
    hash        TEXT NOT NULL,
    report      TEXT NOT NULL,
    received_at INTEGER NOT NULL,
    PRIMARY KEY (school_id, device_id)
);
-- Scheduled power actions (issue 13.6): a computer group shut down at a time
-- of day (server local time) on some days of the week, run by the server.
CREATE TABLE power_schedules (
    id             INTEGER PRIMARY KEY,
    school_id      INTEGER NOT NULL REFERENCES schools(id),
    group_id       INTEGER NOT NULL,
    action         TEXT NOT NULL,
    minute_of_day  INTEGER NOT NULL,
    days           INTEGER NOT NULL,
    countdown_secs INTEGER NOT NULL,
    created_by     TEXT NOT NULL,
    last_run_day   TEXT
);
CREATE INDEX power_schedules_school ON power_schedules(school_id);
