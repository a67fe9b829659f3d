-- Device administration (issue 14): the room (computer group) an enrollment
-- token enrolls into, token revocation, and each school's switch for the
-- anonymous computer-availability screen (off unless an administrator turns
-- it on).
ALTER TABLE enrollment_tokens ADD COLUMN group_id INTEGER;
ALTER TABLE enrollment_tokens ADD COLUMN revoked_at INTEGER;

CREATE TABLE availability_settings (
    school_id  INTEGER PRIMARY KEY REFERENCES schools(id),
    public     INTEGER NOT NULL DEFAULT 0,
    changed_by TEXT NOT NULL,
    changed_at INTEGER NOT NULL
);
