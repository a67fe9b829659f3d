-- Each school's code for registering devices (issue 16): one per school,
-- unique across schools so that a code names its school. Kept readable
-- (admins show it to whoever registers devices); it enrolls devices but
-- reads nothing, and rotating it stops the old one.
CREATE TABLE school_codes (
    school_id   INTEGER PRIMARY KEY REFERENCES schools(id),
    code        TEXT NOT NULL UNIQUE,
    created_by  TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);
