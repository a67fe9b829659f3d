-- The review workflow of violations (see review.rs): each violation is a
-- case with a status and an assignee (a console user name of the school),
-- notes, and a history of every change. Notes and history go with their
-- violation when retention removes it (ON DELETE CASCADE).
ALTER TABLE violations ADD COLUMN status TEXT NOT NULL DEFAULT 'new';
ALTER TABLE violations ADD COLUMN assignee TEXT COLLATE NOCASE;
CREATE INDEX violations_school_status ON violations(school_id, status);

CREATE TABLE violation_notes (
    id            INTEGER PRIMARY KEY,
    school_id     INTEGER NOT NULL REFERENCES schools(id),
    violation_id  INTEGER NOT NULL REFERENCES violations(id) ON DELETE CASCADE,
    author        TEXT NOT NULL,
    body          TEXT NOT NULL,
    at            INTEGER NOT NULL
);
CREATE INDEX violation_notes_violation ON violation_notes(violation_id);

-- One row per change: `field` is status, assignee or note; `old`/`new` are
-- the values before and after (for a note, `new` is the note's id).
CREATE TABLE violation_events (
    id            INTEGER PRIMARY KEY,
    school_id     INTEGER NOT NULL REFERENCES schools(id),
    violation_id  INTEGER NOT NULL REFERENCES violations(id) ON DELETE CASCADE,
    actor         TEXT NOT NULL,
    field         TEXT NOT NULL,
    old           TEXT,
    new           TEXT,
    at            INTEGER NOT NULL
);
CREATE INDEX violation_events_violation ON violation_events(violation_id);
