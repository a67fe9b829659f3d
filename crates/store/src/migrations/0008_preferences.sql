-- A console user's own display preferences (tile size, sort, chosen class),
-- kept with the school and user so they follow the user to any computer. The
-- server validates the JSON before it is stored; only its owner reads it.
CREATE TABLE console_preferences (
    school_id   INTEGER NOT NULL REFERENCES schools(id),
    user_id     INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    prefs       TEXT NOT NULL,
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (school_id, user_id)
) WITHOUT ROWID;
