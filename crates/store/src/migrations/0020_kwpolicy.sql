-- Keyword libraries per school (see kwpolicy.rs): the built-in default (its
-- terms come from the running software, so `terms` is NULL), the school's
-- own, and imported packs. `terms` is the JSON of lectern_keywords::Library.
CREATE TABLE keyword_libraries (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    school_id   INTEGER NOT NULL REFERENCES schools(id),
    kind        TEXT NOT NULL CHECK (kind IN ('default', 'own', 'imported')),
    name        TEXT NOT NULL,
    terms       TEXT,
    source      TEXT,
    updated_by  TEXT NOT NULL,
    updated_at  INTEGER NOT NULL,
    UNIQUE (school_id, name COLLATE NOCASE)
);
CREATE UNIQUE INDEX keyword_libraries_one_default
    ON keyword_libraries(school_id) WHERE kind = 'default';

-- A library enabled (or, for a stronger group, disabled) for a group, with
-- its own five severity actions (NULL: the school's keyword_actions).
CREATE TABLE keyword_assignments (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    school_id   INTEGER NOT NULL REFERENCES schools(id),
    library_id  INTEGER NOT NULL REFERENCES keyword_libraries(id) ON DELETE CASCADE,
    group_id    INTEGER NOT NULL,
    enabled     INTEGER NOT NULL DEFAULT 1,
    actions     TEXT,
    set_by      TEXT NOT NULL,
    set_at      INTEGER NOT NULL,
    UNIQUE (school_id, library_id, group_id)
);

-- A deleted group's assignments go with it, so a later group that gets the
-- same id inherits nothing.
CREATE TRIGGER keyword_assignments_group_gone AFTER DELETE ON groups
BEGIN
    DELETE FROM keyword_assignments WHERE school_id = OLD.school_id AND group_id = OLD.id;
END;

-- Which library a violation's term came from (NULL before 0020, or when a
-- device reported a term none of its libraries holds).
ALTER TABLE violations ADD COLUMN library_id INTEGER;
ALTER TABLE violations ADD COLUMN library TEXT;
