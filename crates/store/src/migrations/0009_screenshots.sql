-- Full-size screenshots a teacher took from the live view: kept per school
-- and device (the newest few per device, within a byte budget per school;
-- see screenshots.rs), downloadable by those who may see the device.
CREATE TABLE screenshots (
    id          INTEGER PRIMARY KEY,
    school_id   INTEGER NOT NULL REFERENCES schools(id),
    device_id   INTEGER NOT NULL,
    taken_by    TEXT NOT NULL,
    taken_at    INTEGER NOT NULL,
    width       INTEGER NOT NULL,
    height      INTEGER NOT NULL,
    jpeg        BLOB NOT NULL
);
CREATE INDEX screenshots_device ON screenshots(school_id, device_id, id);
