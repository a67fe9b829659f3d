-- A device keeps the name it enrolled with (its identity for computer groups);
-- a different host name it reports is kept here until an administrator
-- accepts it (or a setting accepts reported names automatically).
ALTER TABLE devices ADD COLUMN reported_name TEXT;
