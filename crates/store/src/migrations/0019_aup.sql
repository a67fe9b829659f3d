-- Acceptable use policies (see aup.rs). Each user group (or Entire
-- Network) has at most one policy, a series of versions; a version is never
-- changed once published (no UPDATE touches this table), so old versions
-- keep their text and date. `number` counts 1, 2, … per group.
CREATE TABLE aup_versions (
    id            INTEGER PRIMARY KEY,
    school_id     INTEGER NOT NULL REFERENCES schools(id),
    group_id      INTEGER NOT NULL,
    number        INTEGER NOT NULL,
    title         TEXT NOT NULL,
    body          TEXT NOT NULL,
    published_by  TEXT NOT NULL,
    published_at  INTEGER NOT NULL,
    UNIQUE (school_id, group_id, number)
);

-- One row per device, user and version accepted: the user is the one the
-- device reported as logged in when it answered (its own report only).
CREATE TABLE aup_acceptances (
    id           INTEGER PRIMARY KEY,
    school_id    INTEGER NOT NULL REFERENCES schools(id),
    version_id   INTEGER NOT NULL REFERENCES aup_versions(id),
    device_id    INTEGER NOT NULL,
    username     TEXT NOT NULL COLLATE NOCASE,
    accepted_at  INTEGER NOT NULL,
    UNIQUE (school_id, version_id, device_id, username)
);
CREATE INDEX aup_acceptances_school ON aup_acceptances(school_id, accepted_at);
