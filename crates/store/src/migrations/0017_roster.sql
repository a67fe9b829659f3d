-- OneRoster classes (see roster.rs). A rostered class is a user group the
-- import keeps (members: its students' user names); its teachers get control
-- of that group through one roster-managed access rule per teacher
-- (roster_rules). A class that leaves the roster is retired, never deleted:
-- its group and history stay, its teachers lose the roster's grant.
CREATE TABLE roster_classes (
    school_id    INTEGER NOT NULL REFERENCES schools(id),
    sourced_id   TEXT NOT NULL,
    title        TEXT NOT NULL,
    group_id     INTEGER NOT NULL,
    -- JSON arrays of user names, sorted.
    teachers     TEXT NOT NULL,
    students     TEXT NOT NULL,
    terms        TEXT NOT NULL,
    retired_at   INTEGER,
    updated_at   INTEGER NOT NULL,
    PRIMARY KEY (school_id, sourced_id)
);
CREATE INDEX roster_classes_group ON roster_classes(school_id, group_id);

-- The access rule the roster wrote for each teacher: only these rules are
-- rewritten or removed by later imports.
CREATE TABLE roster_rules (
    school_id    INTEGER NOT NULL REFERENCES schools(id),
    username     TEXT NOT NULL COLLATE NOCASE,
    rule_id      INTEGER NOT NULL,
    PRIMARY KEY (school_id, username)
);

-- Each import or dry run with its report (JSON), newest kept per school.
CREATE TABLE roster_imports (
    id           INTEGER PRIMARY KEY,
    school_id    INTEGER NOT NULL REFERENCES schools(id),
    at           INTEGER NOT NULL,
    source       TEXT NOT NULL,
    actor        TEXT NOT NULL,
    dry_run      INTEGER NOT NULL,
    outcome      TEXT NOT NULL,
    digest       TEXT NOT NULL,
    report       TEXT NOT NULL
);
CREATE INDEX roster_imports_school ON roster_imports(school_id, source, id);
