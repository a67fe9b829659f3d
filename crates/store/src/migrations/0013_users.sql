-- Console accounts an administrator manages from the Users page: a disabled
-- account cannot sign in and has no sessions; a reset password must be
-- changed at the next sign-in; when the account last signed in.
ALTER TABLE users ADD COLUMN disabled_at INTEGER;
ALTER TABLE users ADD COLUMN must_change_password INTEGER NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN last_sign_in INTEGER;
