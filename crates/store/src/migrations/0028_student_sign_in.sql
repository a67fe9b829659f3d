-- A student's password for signing in on shared devices (issue 16): a
-- picture password (3 or 4 pictures of lectern_proto::signin::PICTURES) or
-- a text password, set and reset by teachers, stored only as an Argon2
-- hash of its canonical form. At most one per person.
CREATE TABLE student_secrets (
    person_id   INTEGER PRIMARY KEY REFERENCES people(id) ON DELETE CASCADE,
    school_id   INTEGER NOT NULL REFERENCES schools(id),
    kind        TEXT NOT NULL,
    hash        TEXT NOT NULL,
    set_by      TEXT NOT NULL,
    set_at      INTEGER NOT NULL
);
