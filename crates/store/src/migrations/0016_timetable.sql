-- Timetable (issue 14): the periods of a school day, room bookings and
-- lessons planned ahead, per school. Dates are local calendar days
-- ('YYYY-MM-DD', the server's time zone); times of day are minutes after
-- midnight.
CREATE TABLE periods (
    id           INTEGER PRIMARY KEY,
    school_id    INTEGER NOT NULL REFERENCES schools(id),
    name         TEXT NOT NULL,
    start_minute INTEGER NOT NULL,
    end_minute   INTEGER NOT NULL,
    -- Bit 0 = Monday … bit 6 = Sunday.
    days         INTEGER NOT NULL
);
CREATE INDEX periods_school ON periods(school_id);
-- A room (a computer group) booked for one period of one day; the unique
-- key is what refuses a double booking, even between two racing requests.
CREATE TABLE room_bookings (
    id         INTEGER PRIMARY KEY,
    school_id  INTEGER NOT NULL REFERENCES schools(id),
    group_id   INTEGER NOT NULL,
    day        TEXT NOT NULL,
    period_id  INTEGER NOT NULL REFERENCES periods(id),
    booked_by  TEXT NOT NULL,
    note       TEXT NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL,
    UNIQUE (school_id, group_id, day, period_id)
);
CREATE INDEX room_bookings_day ON room_bookings(school_id, day);
-- A lesson planned for a class: once (day) or weekly (weekday between
-- from_day and until_day), in one period.
CREATE TABLE scheduled_lessons (
    id           INTEGER PRIMARY KEY,
    school_id    INTEGER NOT NULL REFERENCES schools(id),
    group_id     INTEGER NOT NULL,
    period_id    INTEGER NOT NULL REFERENCES periods(id),
    day          TEXT,
    weekday      INTEGER,
    from_day     TEXT,
    until_day    TEXT,
    restrictions TEXT NOT NULL,
    teacher      TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    cancelled_at INTEGER
);
CREATE INDEX scheduled_lessons_school ON scheduled_lessons(school_id);
-- Occurrences a teacher cancelled (the rest of the series stays).
CREATE TABLE scheduled_lesson_skips (
    school_id   INTEGER NOT NULL REFERENCES schools(id),
    schedule_id INTEGER NOT NULL REFERENCES scheduled_lessons(id),
    day         TEXT NOT NULL,
    PRIMARY KEY (schedule_id, day)
);
-- Occurrences the server started: the key makes a start happen once, even
-- across restarts. starts_at/ends_at are the period's times on the
-- server's clock; lesson_id is the lesson row it made (none yet, or none
-- because the class already had a lesson: outcome says).
CREATE TABLE scheduled_lesson_runs (
    school_id   INTEGER NOT NULL REFERENCES schools(id),
    schedule_id INTEGER NOT NULL REFERENCES scheduled_lessons(id),
    day         TEXT NOT NULL,
    starts_at   INTEGER NOT NULL,
    ends_at     INTEGER NOT NULL,
    lesson_id   INTEGER,
    outcome     TEXT NOT NULL DEFAULT 'due',
    finished    INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (schedule_id, day)
);
CREATE INDEX scheduled_lesson_runs_open ON scheduled_lesson_runs(school_id, finished);
