-- Activity log: what students did (websites, applications, logins, power).
-- `seq` numbers each device's events so replays after a lost acknowledgement
-- are stored once (NULL for sources that do not number their events).
CREATE TABLE activity (
    id          INTEGER PRIMARY KEY,
    school_id   INTEGER NOT NULL REFERENCES schools(id),
    device_id   INTEGER NOT NULL,
    seq         INTEGER,
    user        TEXT,
    kind        TEXT NOT NULL,
    url         TEXT,
    title       TEXT,
    app         TEXT,
    at          INTEGER NOT NULL,
    received_at INTEGER NOT NULL
);
CREATE UNIQUE INDEX activity_device_seq ON activity(device_id, seq) WHERE seq IS NOT NULL;
CREATE INDEX activity_school_at ON activity(school_id, at);
CREATE INDEX activity_device_at ON activity(device_id, at);
