-- LDAP / Active Directory sync and sign-in (see directory.rs), per school.
-- The configuration is validated JSON; the bind account's password sits in its
-- own column so no read of the configuration can return it by mistake.
CREATE TABLE directory_config (
    school_id     INTEGER PRIMARY KEY REFERENCES schools(id),
    config        TEXT NOT NULL,
    bind_password TEXT NOT NULL DEFAULT '',
    updated_at    INTEGER NOT NULL
);

-- Every account the directory has shown us (by sync or sign-in). `user_id` is
-- the console user a directory sign-in created; `disabled` is set when the
-- directory disables or no longer lists the account.
CREATE TABLE directory_accounts (
    school_id  INTEGER NOT NULL REFERENCES schools(id),
    username   TEXT NOT NULL COLLATE NOCASE,
    dn         TEXT NOT NULL,
    disabled   INTEGER NOT NULL DEFAULT 0,
    missing    INTEGER NOT NULL DEFAULT 0,
    user_id    INTEGER REFERENCES users(id) ON DELETE SET NULL,
    seen_at    INTEGER NOT NULL,
    PRIMARY KEY (school_id, username)
);

-- The directory's groups as of the last sync, offered in the group and access editors.
CREATE TABLE directory_groups (
    school_id  INTEGER NOT NULL REFERENCES schools(id),
    name       TEXT NOT NULL COLLATE NOCASE,
    dn         TEXT NOT NULL,
    PRIMARY KEY (school_id, name)
);

-- Sync runs (the last 50 per school are kept).
CREATE TABLE directory_syncs (
    id        INTEGER PRIMARY KEY,
    school_id INTEGER NOT NULL REFERENCES schools(id),
    at        INTEGER NOT NULL,
    trigger   TEXT NOT NULL,
    dry_run   INTEGER NOT NULL,
    outcome   TEXT NOT NULL,
    summary   TEXT NOT NULL
);
CREATE INDEX directory_syncs_school ON directory_syncs(school_id, id);
