-- Schools a user may act in besides their own (issue 16: a trust-level
-- administrator of a district or multi-academy trust). The user signs in
-- to their own school and switches; a session then names the school it
-- acts in (sessions.school_id), and it lasts only while the grant does.
-- Granted by the server's operator (`lectern-server trust grant`), never
-- through the console, so no console user can widen their own reach.
CREATE TABLE school_grants (
    user_id     INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    school_id   INTEGER NOT NULL REFERENCES schools(id),
    role        TEXT NOT NULL,
    granted_by  TEXT NOT NULL,
    granted_at  INTEGER NOT NULL,
    PRIMARY KEY (user_id, school_id)
);
