-- Reports run with their creator's rights: record who made each one. Reports
-- made before this have their creator taken from the audit log where it still
-- holds the creation; the rest have none and do not run until re-created.
ALTER TABLE reports ADD COLUMN created_by TEXT NOT NULL DEFAULT '';
UPDATE reports SET created_by = COALESCE((
    SELECT a.actor FROM audit_log a
    WHERE a.school_id = reports.school_id AND a.action = 'report.create'
      AND a.outcome = 'ok' AND a.detail LIKE reports.name || ' (%'
    ORDER BY a.id DESC LIMIT 1), '');
