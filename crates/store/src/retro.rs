//! Retrospective keyword scans (migration 0021): jobs that read a school's
//! retained activity in chunks and store what the terms match as
//! violations marked `retrospective`.
//!
//! The store keeps the rules that must hold however requests race: one
//! queued or running job per school (a partial unique index), progress
//! written only while the job is still running (so a cancel wins over a
//! chunk in flight, whose hits are rolled back), and no duplicate
//! violations: a unique key (school, device, activity row, term) for
//! retrospective ones, and no retrospective hit where a live violation of
//! the same device, term and time exists.

use serde::Serialize;

use crate::pg::PgStore;
use crate::sql::{in_tx, Row, Sql};
use crate::{now_ms, Result, SchoolId, SqliteStore, StoreError, Violation};

/// Where a job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RetroState {
    /// Stored, not yet picked up by the runner.
    Queued,
    /// Being scanned.
    Running,
    /// Every row in its period was scanned.
    Done,
    /// Stopped by a person.
    Cancelled,
    /// Stopped by an error (see the note).
    Failed,
}

impl RetroState {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            RetroState::Queued => "queued",
            RetroState::Running => "running",
            RetroState::Done => "done",
            RetroState::Cancelled => "cancelled",
            RetroState::Failed => "failed",
        }
    }

    fn parse(s: &str) -> Option<RetroState> {
        [
            RetroState::Queued,
            RetroState::Running,
            RetroState::Done,
            RetroState::Cancelled,
            RetroState::Failed,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }

    /// Whether the job may still make progress.
    pub fn is_active(self) -> bool {
        matches!(self, RetroState::Queued | RetroState::Running)
    }
}

/// One job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RetroScan {
    /// Id.
    pub id: i64,
    /// The terms looked for: a keyword library as JSON (not sent to the
    /// console, which gets `terms`).
    #[serde(skip)]
    pub library: String,
    /// How many terms.
    pub terms: i64,
    /// Why it runs: `changed` (terms were added or changed) or `on_demand`.
    pub reason: String,
    /// The console user who started it (or saved the terms).
    pub started_by: String,
    /// Where it is.
    pub state: RetroState,
    /// First activity time scanned (ms, inclusive).
    pub since: i64,
    /// Last activity time scanned (ms, exclusive).
    pub until: i64,
    /// The last activity row id scanned (resume point).
    #[serde(skip)]
    pub cursor: i64,
    /// The token of the task scanning it (see [`RetroStore::retro_begin`]).
    #[serde(skip)]
    pub runner: i64,
    /// Rows scanned so far.
    pub rows_scanned: i64,
    /// Rows in the period when the job started.
    pub rows_total: i64,
    /// Violations added.
    pub hits: i64,
    /// Times the job paused to keep within its CPU share.
    pub pauses: i64,
    /// Milliseconds spent working (not pausing).
    pub busy_ms: i64,
    /// The share of one core the job may use, percent.
    pub cpu_percent: i64,
    /// Why it stopped, when it did not simply finish.
    pub note: String,
    /// When it was started (ms).
    pub started_at: i64,
    /// When it ended (ms).
    pub finished_at: Option<i64>,
}

/// A job to store.
#[derive(Debug, Clone)]
pub struct NewRetroScan {
    /// The terms, as a keyword library in JSON.
    pub library: String,
    /// How many terms.
    pub terms: i64,
    /// `changed` or `on_demand`.
    pub reason: String,
    /// Who.
    pub started_by: String,
    /// From (ms, inclusive).
    pub since: i64,
    /// Until (ms, exclusive).
    pub until: i64,
    /// CPU share, percent.
    pub cpu_percent: i64,
}

/// One stored activity event, as a job reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetroEvent {
    /// Activity row id.
    pub id: i64,
    /// Device.
    pub device_id: i64,
    /// The event.
    pub event: lectern_proto::ActivityEvent,
}

/// A match to store: the violation and the activity row it came from.
#[derive(Debug, Clone)]
pub struct RetroHit {
    /// Activity row id.
    pub activity_id: i64,
    /// The violation (its `id` and `retrospective` are set by the store).
    pub violation: Violation,
}

/// What one chunk did.
#[derive(Debug, Clone, Copy, Default)]
pub struct RetroProgress {
    /// The last activity row id read.
    pub cursor: i64,
    /// Rows read.
    pub rows: i64,
    /// Pauses taken before this chunk.
    pub pauses: i64,
    /// Milliseconds of work.
    pub busy_ms: i64,
}

/// Retrospective scans.
pub trait RetroStore: Send + Sync {
    /// Stores a queued job with the number of activity rows in its period;
    /// `None` when the school already has a queued or running one.
    fn retro_start(&self, school: SchoolId, new: &NewRetroScan) -> Result<Option<RetroScan>>;
    /// One job.
    fn retro_scan(&self, school: SchoolId, id: i64) -> Result<Option<RetroScan>>;
    /// The newest `limit` jobs, newest first.
    fn retro_scans(&self, school: SchoolId, limit: i64) -> Result<Vec<RetroScan>>;
    /// Every queued or running job of every school (to resume at start).
    fn retro_unfinished(&self) -> Result<Vec<(SchoolId, RetroScan)>>;
    /// Moves an active job to running under `runner`, a token of the task
    /// that scans it: from then on only that task's chunks are recorded (a
    /// task left over from before a restart stops at its next chunk).
    /// False if the job is no longer active.
    fn retro_begin(&self, school: SchoolId, id: i64, runner: i64) -> Result<bool>;
    /// Up to `limit` events of the job's period after its cursor, by row id.
    fn retro_chunk(
        &self,
        school: SchoolId,
        scan: &RetroScan,
        limit: i64,
    ) -> Result<Vec<RetroEvent>>;
    /// Records a chunk's progress and stores its hits in one transaction;
    /// `None` (and nothing stored) when the job is no longer running under
    /// `runner`.
    /// Returns the violations actually added (duplicates are skipped).
    fn retro_commit(
        &self,
        school: SchoolId,
        id: i64,
        runner: i64,
        progress: &RetroProgress,
        hits: &[RetroHit],
    ) -> Result<Option<Vec<Violation>>>;
    /// Ends an active job in `state` with `note`; `None` if it was not active.
    fn retro_finish(
        &self,
        school: SchoolId,
        id: i64,
        state: RetroState,
        note: &str,
    ) -> Result<Option<RetroScan>>;
}

const COLS: &str = "id, library, terms, reason, started_by, state, since, until, cursor, rows_scanned, rows_total, \
     hits, pauses, busy_ms, cpu_percent, note, started_at, finished_at, runner";

/// A job from its [`COLS`], the first at column `from`.
fn scan_row(r: &Row, from: usize) -> Result<RetroScan> {
    let state: String = r.get(from + 5)?;
    Ok(RetroScan {
        id: r.get(from)?,
        library: r.get(from + 1)?,
        terms: r.get(from + 2)?,
        reason: r.get(from + 3)?,
        started_by: r.get(from + 4)?,
        state: RetroState::parse(&state)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown retro scan state {state:?}")))?,
        since: r.get(from + 6)?,
        until: r.get(from + 7)?,
        cursor: r.get(from + 8)?,
        rows_scanned: r.get(from + 9)?,
        rows_total: r.get(from + 10)?,
        hits: r.get(from + 11)?,
        pauses: r.get(from + 12)?,
        busy_ms: r.get(from + 13)?,
        cpu_percent: r.get(from + 14)?,
        note: r.get(from + 15)?,
        started_at: r.get(from + 16)?,
        finished_at: r.get(from + 17)?,
        runner: r.get(from + 18)?,
    })
}

fn get(db: &mut dyn Sql, school: SchoolId, id: i64) -> Result<Option<RetroScan>> {
    db.query_opt(
        &format!("SELECT {COLS} FROM retro_scans WHERE school_id = ?1 AND id = ?2"),
        &[&school, &id],
    )?
    .map(|r| scan_row(&r, 0))
    .transpose()
}

fn start(db: &mut dyn Sql, school: SchoolId, n: &NewRetroScan) -> Result<Option<RetroScan>> {
    in_tx(db, |db| {
        let total: i64 = db
            .query_opt(
                "SELECT COUNT(*) FROM activity WHERE school_id = ?1 AND at >= ?2 AND at < ?3",
                &[&school, &n.since, &n.until],
            )?
            .ok_or_else(|| StoreError::Corrupt("no count".into()))?
            .get(0)?;
        // No row when the partial unique index holds another queued or
        // running job (or there is no such school), as SQLite's refusal of
        // the insert said before.
        let Some(id) = db.query_opt(
            "INSERT INTO retro_scans (school_id, library, terms, reason, started_by, state, since, until, rows_total, cpu_percent, started_at)
             SELECT CAST(?1 AS BIGINT), CAST(?2 AS TEXT), CAST(?3 AS BIGINT), CAST(?4 AS TEXT),
                    CAST(?5 AS TEXT), 'queued', CAST(?6 AS BIGINT), CAST(?7 AS BIGINT),
                    CAST(?8 AS BIGINT), CAST(?9 AS BIGINT), CAST(?10 AS BIGINT)
             WHERE EXISTS (SELECT 1 FROM schools WHERE id = ?1)
             ON CONFLICT DO NOTHING RETURNING id",
            &[
                &school,
                &n.library,
                &n.terms,
                &n.reason,
                &n.started_by,
                &n.since,
                &n.until,
                &total,
                &n.cpu_percent,
                &now_ms(),
            ],
        )?
        else {
            return Ok(None);
        };
        get(db, school, id.get(0)?)
    })
}

fn scans(db: &mut dyn Sql, school: SchoolId, limit: i64) -> Result<Vec<RetroScan>> {
    db.query(
        &format!("SELECT {COLS} FROM retro_scans WHERE school_id = ?1 ORDER BY id DESC LIMIT ?2"),
        &[&school, &limit.clamp(1, 100)],
    )?
    .iter()
    .map(|r| scan_row(r, 0))
    .collect()
}

fn unfinished(db: &mut dyn Sql) -> Result<Vec<(SchoolId, RetroScan)>> {
    db.query(
        &format!(
            "SELECT school_id, {COLS} FROM retro_scans WHERE state IN ('queued', 'running') ORDER BY id"
        ),
        &[],
    )?
    .iter()
    .map(|r| Ok((r.get(0)?, scan_row(r, 1)?)))
    .collect()
}

fn begin(db: &mut dyn Sql, school: SchoolId, id: i64, runner: i64) -> Result<bool> {
    Ok(db.execute(
        "UPDATE retro_scans SET state = 'running', runner = ?3
         WHERE school_id = ?1 AND id = ?2 AND state IN ('queued', 'running')",
        &[&school, &id, &runner],
    )? > 0)
}

fn chunk(db: &mut dyn Sql, school: SchoolId, s: &RetroScan, limit: i64) -> Result<Vec<RetroEvent>> {
    db.query(
        "SELECT id, device_id, \"user\", kind, url, title, app, at FROM activity
         WHERE school_id = ?1 AND id > ?2 AND at >= ?3 AND at < ?4 ORDER BY id LIMIT ?5",
        &[&school, &s.cursor, &s.since, &s.until, &limit],
    )?
    .iter()
    .map(|r| {
        Ok(RetroEvent {
            id: r.get(0)?,
            device_id: r.get(1)?,
            event: lectern_proto::ActivityEvent {
                user: r.get(2)?,
                kind: r.get(3)?,
                url: r.get(4)?,
                title: r.get(5)?,
                app: r.get(6)?,
                at: r.get(7)?,
                blocked: false,
            },
        })
    })
    .collect()
}

/// Stores a hit; its id, or `None` when it is a duplicate (of a
/// retrospective one by the unique key, or of a live one by the check).
fn add_hit(db: &mut dyn Sql, school: SchoolId, h: &RetroHit) -> Result<Option<i64>> {
    let v = &h.violation;
    db.query_opt(
        "INSERT INTO violations
           (school_id, device_id, \"user\", term, category, severity, matched, context, source, action,
            screenshots, at, person_id, retrospective, activity_id)
         SELECT CAST(?1 AS BIGINT), CAST(?2 AS BIGINT), CAST(?3 AS TEXT), CAST(?4 AS TEXT),
                CAST(?5 AS TEXT), CAST(?6 AS BIGINT), CAST(?7 AS TEXT), CAST(?8 AS TEXT),
                CAST(?9 AS TEXT), CAST(?10 AS TEXT), 0, CAST(?11 AS BIGINT),
                (SELECT person_id FROM person_aliases
                 WHERE school_id = ?1 AND value = CAST(CAST(?3 AS TEXT) AS CITEXT)),
                1, CAST(?12 AS BIGINT)
         WHERE NOT EXISTS (SELECT 1 FROM violations WHERE device_id = ?2 AND at = ?11
                           AND term = ?4 AND school_id = ?1 AND activity_id IS NULL)
         ON CONFLICT DO NOTHING RETURNING id",
        &[
            &school,
            &v.device_id,
            &v.user,
            &v.term,
            &v.category,
            &i64::from(v.severity),
            &v.matched,
            &v.context,
            &v.source,
            &v.action,
            &v.at,
            &h.activity_id,
        ],
    )?
    .map(|r| r.get(0))
    .transpose()
}

fn commit(
    db: &mut dyn Sql,
    school: SchoolId,
    id: i64,
    runner: i64,
    p: &RetroProgress,
    hits: &[RetroHit],
) -> Result<Option<Vec<Violation>>> {
    in_tx(db, |db| {
        let running = db.execute(
            "UPDATE retro_scans SET cursor = ?3, rows_scanned = rows_scanned + ?4, pauses = pauses + ?5,
                    busy_ms = busy_ms + ?6
             WHERE school_id = ?1 AND id = ?2 AND state = 'running' AND runner = ?7",
            &[&school, &id, &p.cursor, &p.rows, &p.pauses, &p.busy_ms, &runner],
        )?;
        if running == 0 {
            return Ok(None); // Nothing was written.
        }
        let mut added = Vec::new();
        for h in hits {
            if let Some(vid) = add_hit(db, school, h)? {
                added.push(Violation {
                    id: vid,
                    screenshots: 0,
                    retrospective: true,
                    ..h.violation.clone()
                });
            }
        }
        db.execute(
            "UPDATE retro_scans SET hits = hits + ?3 WHERE school_id = ?1 AND id = ?2",
            &[&school, &id, &(added.len() as i64)],
        )?;
        Ok(Some(added))
    })
}

fn finish(
    db: &mut dyn Sql,
    school: SchoolId,
    id: i64,
    state: RetroState,
    note: &str,
) -> Result<Option<RetroScan>> {
    // A finished job's total is what it read: rows added or swept by
    // retention meanwhile do not leave its bar short or over-full.
    let total = if state == RetroState::Done {
        "rows_scanned"
    } else {
        "rows_total"
    };
    let n = db.execute(
        &format!(
            "UPDATE retro_scans SET state = ?3, note = ?4, finished_at = ?5, rows_total = {total}
             WHERE school_id = ?1 AND id = ?2 AND state IN ('queued', 'running')"
        ),
        &[&school, &id, &state.as_str(), &note, &now_ms()],
    )?;
    if n == 0 {
        return Ok(None);
    }
    get(db, school, id)
}

/// The same calls on either engine.
macro_rules! retro_store {
    ($t:ty) => {
        impl RetroStore for $t {
            fn retro_start(
                &self,
                school: SchoolId,
                new: &NewRetroScan,
            ) -> Result<Option<RetroScan>> {
                self.shared(|db| start(db, school, new))
            }

            fn retro_scan(&self, school: SchoolId, id: i64) -> Result<Option<RetroScan>> {
                self.shared(|db| get(db, school, id))
            }

            fn retro_scans(&self, school: SchoolId, limit: i64) -> Result<Vec<RetroScan>> {
                self.shared(|db| scans(db, school, limit))
            }

            fn retro_unfinished(&self) -> Result<Vec<(SchoolId, RetroScan)>> {
                self.shared(unfinished)
            }

            fn retro_begin(&self, school: SchoolId, id: i64, runner: i64) -> Result<bool> {
                self.shared(|db| begin(db, school, id, runner))
            }

            fn retro_chunk(
                &self,
                school: SchoolId,
                scan: &RetroScan,
                limit: i64,
            ) -> Result<Vec<RetroEvent>> {
                self.shared(|db| chunk(db, school, scan, limit))
            }

            fn retro_commit(
                &self,
                school: SchoolId,
                id: i64,
                runner: i64,
                progress: &RetroProgress,
                hits: &[RetroHit],
            ) -> Result<Option<Vec<Violation>>> {
                self.shared(|db| commit(db, school, id, runner, progress, hits))
            }

            fn retro_finish(
                &self,
                school: SchoolId,
                id: i64,
                state: RetroState,
                note: &str,
            ) -> Result<Option<RetroScan>> {
                self.shared(|db| finish(db, school, id, state, note))
            }
        }
    };
}

retro_store!(SqliteStore);
retro_store!(PgStore);
