-- One person per student (or teacher), whatever names they arrive under: an
-- OS login on a desktop, an e-mail in the browser, a directory name, a roster
-- id. Groups and policies resolve a device's reported user through these
-- aliases to the person and match on any of the person's names.
CREATE TABLE people (
    id            INTEGER PRIMARY KEY,
    school_id     INTEGER NOT NULL REFERENCES schools(id),
    display_name  TEXT NOT NULL,
    created_at    INTEGER NOT NULL
);
CREATE INDEX people_school ON people(school_id);

-- A name resolves to at most one person in a school (whatever its kind), so a
-- reported user name is never ambiguous.
CREATE TABLE person_aliases (
    school_id   INTEGER NOT NULL REFERENCES schools(id),
    person_id   INTEGER NOT NULL REFERENCES people(id) ON DELETE CASCADE,
    kind        TEXT NOT NULL,
    value       TEXT NOT NULL COLLATE NOCASE,
    PRIMARY KEY (school_id, value)
) WITHOUT ROWID;
CREATE INDEX person_aliases_person ON person_aliases(person_id);

-- Activity and violations keep the user name the device reported and also
-- the person it was an alias of when stored (NULL: no one's alias).
ALTER TABLE activity ADD COLUMN person_id INTEGER;
ALTER TABLE violations ADD COLUMN person_id INTEGER;
