//! Violations, scheduled report definitions and school documents (the
//! keyword library).

use crate::sql::{Engine, Row, Sql, ToValue, Value};
use serde::{Deserialize, Serialize};

use crate::{now_ms, Result, SchoolId, StoreError};

/// A keyword match with its context.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Violation {
    /// Row id (0 before it is stored).
    #[serde(default)]
    pub id: i64,
    /// Device.
    pub device_id: i64,
    /// User, as the device reported it.
    pub user: Option<String>,
    /// The person `user` was an alias of when the violation was stored (set
    /// by the store, never taken from a device).
    #[serde(default)]
    pub person_id: Option<i64>,
    /// That person's display name now.
    #[serde(default)]
    pub person: Option<String>,
    /// The library term.
    pub term: String,
    /// Its category.
    pub category: String,
    /// 1 (low) to 5 (high).
    pub severity: u8,
    /// The text that matched, as written.
    pub matched: String,
    /// Text around the match.
    pub context: String,
    /// Where the text came from (`window_title`, `url`, `title`, `search`, `text`).
    pub source: String,
    /// What was done: `log`, `screenshot`, `alert` or `lock`.
    pub action: String,
    /// Screenshots stored with it.
    #[serde(default)]
    pub screenshots: u32,
    /// When (ms).
    pub at: i64,
    /// Found later by a retrospective scan of stored activity (so without
    /// evidence screenshots), not at the moment it happened.
    #[serde(default)]
    pub retrospective: bool,
}

/// What to list.
#[derive(Debug, Clone, Default)]
pub struct ViolationFilter {
    /// Only these devices (`None`: any).
    pub devices: Option<Vec<i64>>,
    /// Only this user.
    pub user: Option<String>,
    /// Only this category.
    pub category: Option<String>,
    /// At least this severity.
    pub min_severity: Option<u8>,
    /// Exactly this severity (the dashboard's severity bars link here).
    pub severity: Option<u8>,
    /// From (ms).
    pub since: Option<i64>,
    /// Until (ms, exclusive).
    pub until: Option<i64>,
    /// Text in the term, match or context.
    pub text: Option<String>,
    /// The review workflow's status and assignee (see [`crate::review`]).
    pub case: crate::review::CaseFilter,
    /// Only retrospective (`Some(true)`) or only live (`Some(false)`) ones.
    pub retrospective: Option<bool>,
    /// Most rows.
    pub limit: i64,
}

/// What a report counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReportKind {
    /// Violations per user: count, highest severity, categories.
    TopViolatingUsers,
    /// Web visits per website, with the users who visited.
    WebsitesByGroup,
    /// Activity events per device and kind.
    ActivitySummary,
}

impl ReportKind {
    /// Every kind.
    pub const ALL: [ReportKind; 3] = [
        ReportKind::TopViolatingUsers,
        ReportKind::WebsitesByGroup,
        ReportKind::ActivitySummary,
    ];

    /// The stored (and API) name.
    pub fn as_str(self) -> &'static str {
        match self {
            ReportKind::TopViolatingUsers => "top_violating_users",
            ReportKind::WebsitesByGroup => "websites_by_group",
            ReportKind::ActivitySummary => "activity_summary",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<ReportKind> {
        ReportKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// A scheduled report. Unknown fields are refused, so a misspelt field in an
/// API request is an error rather than silently ignored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportDef {
    /// Id (0 before it is stored).
    #[serde(default)]
    pub id: i64,
    /// Name.
    pub name: String,
    /// What it counts.
    pub kind: ReportKind,
    /// Group the report is about, if any.
    #[serde(default)]
    pub group_id: Option<i64>,
    /// Days of data.
    pub days: u32,
    /// `daily HH:MM` or `weekly mon HH:MM` (local time).
    pub schedule: String,
    /// Last run (ms).
    #[serde(default)]
    pub last_run: Option<i64>,
    /// The console user who made it; it runs with their rights as they are at
    /// run time. Set by the server, never taken from a request.
    #[serde(default)]
    pub created_by: String,
}

fn violation_of(r: &Row) -> Result<Violation> {
    Ok(Violation {
        id: r.get(0)?,
        device_id: r.get(1)?,
        user: r.get(2)?,
        term: r.get(3)?,
        category: r.get(4)?,
        severity: r.get(5)?,
        matched: r.get(6)?,
        context: r.get(7)?,
        source: r.get(8)?,
        action: r.get(9)?,
        screenshots: r.get(10)?,
        at: r.get(11)?,
        person_id: r.get(12)?,
        person: r.get(13)?,
        retrospective: r.get(14)?,
    })
}

const VIOLATION_COLS: &str = "id, device_id, \"user\", term, category, severity, matched, context, source, action, screenshots, at, person_id, \
     (SELECT display_name FROM people WHERE people.id = violations.person_id), retrospective";

/// Stores a violation, attributed to the person whose name the user was
/// (whatever its case; see `activity::add`).
pub(crate) fn add_violation(db: &mut dyn Sql, school: SchoolId, v: &Violation) -> Result<i64> {
    db.insert_id(
        "INSERT INTO violations (school_id, device_id, \"user\", term, category, severity, matched, context, source, action, screenshots, at, person_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12,
                 (SELECT person_id FROM person_aliases
                  WHERE school_id = ?1 AND value = CAST(CAST(?3 AS TEXT) AS CITEXT)))
         RETURNING id",
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
            &i64::from(v.screenshots),
            &v.at,
        ],
    )
}

pub(crate) fn set_screenshots(db: &mut dyn Sql, school: SchoolId, id: i64, n: u32) -> Result<()> {
    db.execute(
        "UPDATE violations SET screenshots = ?3 WHERE school_id = ?1 AND id = ?2",
        &[&school, &id, &i64::from(n)],
    )?;
    Ok(())
}

pub(crate) fn violation(db: &mut dyn Sql, school: SchoolId, id: i64) -> Result<Option<Violation>> {
    db.query_opt(
        &format!("SELECT {VIOLATION_COLS} FROM violations WHERE school_id = ?1 AND id = ?2"),
        &[&school, &id],
    )?
    .map(|r| violation_of(&r))
    .transpose()
}

/// The `FROM … WHERE …` of the violations `f` picks, with its arguments;
/// `None` when it picks none (no devices). Text is found by position (see
/// `activity::list`), so it is matched literally on `engine`.
pub(crate) fn violation_where(
    engine: Engine,
    school: SchoolId,
    f: &ViolationFilter,
) -> Option<(String, Vec<Value>)> {
    let mut sql = String::from(" FROM violations WHERE school_id = ?1");
    let mut args: Vec<Value> = vec![Value::Int(school)];
    let mut arg = |v: Value| {
        args.push(v);
        format!("?{}", args.len())
    };
    if let Some(devices) = &f.devices {
        if devices.is_empty() {
            return None;
        }
        let marks: Vec<String> = devices.iter().map(|d| arg(Value::Int(*d))).collect();
        sql.push_str(&format!(" AND device_id IN ({})", marks.join(",")));
    }
    if let Some(u) = &f.user {
        sql.push_str(&format!(" AND \"user\" = {}", arg(Value::Text(u.clone()))));
    }
    if let Some(c) = &f.category {
        sql.push_str(&format!(" AND category = {}", arg(Value::Text(c.clone()))));
    }
    if let Some(s) = f.min_severity {
        sql.push_str(&format!(" AND severity >= {}", arg(Value::Int(s.into()))));
    }
    if let Some(s) = f.severity {
        sql.push_str(&format!(" AND severity = {}", arg(Value::Int(s.into()))));
    }
    if let Some(s) = f.since {
        sql.push_str(&format!(" AND at >= {}", arg(Value::Int(s))));
    }
    if let Some(u) = f.until {
        sql.push_str(&format!(" AND at < {}", arg(Value::Int(u))));
    }
    if let Some(t) = &f.text {
        let find = match engine {
            Engine::Sqlite => "instr",
            Engine::Postgres => "strpos",
        };
        let p = arg(Value::Text(t.to_lowercase()));
        sql.push_str(&format!(
            " AND ({find}(lower(term), {p}) > 0 OR {find}(lower(matched), {p}) > 0 OR {find}(lower(context), {p}) > 0)"
        ));
    }
    if let Some(r) = f.retrospective {
        sql.push_str(&format!(
            " AND retrospective = {}",
            arg(Value::Int(r.into()))
        ));
    }
    crate::review::push_case_filter(&f.case, &mut sql, &mut arg);
    Some((sql, args))
}

pub(crate) fn violations(
    db: &mut dyn Sql,
    school: SchoolId,
    f: &ViolationFilter,
) -> Result<Vec<Violation>> {
    let Some((clause, mut args)) = violation_where(db.engine(), school, f) else {
        return Ok(Vec::new());
    };
    args.push(Value::Int(f.limit.clamp(1, 10_000)));
    let sql = format!(
        "SELECT {VIOLATION_COLS}{clause} ORDER BY at DESC, id DESC LIMIT ?{}",
        args.len()
    );
    let params: Vec<&dyn ToValue> = args.iter().map(|v| v as &dyn ToValue).collect();
    db.query_built(&sql, &params)?
        .iter()
        .map(violation_of)
        .collect()
}

fn report_of(r: &Row) -> Result<ReportDef> {
    let kind: String = r.get(2)?;
    Ok(ReportDef {
        id: r.get(0)?,
        name: r.get(1)?,
        kind: ReportKind::parse(&kind)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown report kind {kind:?}")))?,
        group_id: r.get(3)?,
        days: r.get(4)?,
        schedule: r.get(5)?,
        last_run: r.get(6)?,
        created_by: r.get(7)?,
    })
}

pub(crate) fn reports(db: &mut dyn Sql, school: SchoolId) -> Result<Vec<ReportDef>> {
    db.query(
        "SELECT id, name, kind, group_id, days, schedule, last_run, created_by FROM reports
         WHERE school_id = ?1 ORDER BY id",
        &[&school],
    )?
    .iter()
    .map(report_of)
    .collect()
}

pub(crate) fn create_report(
    db: &mut dyn Sql,
    school: SchoolId,
    r: &ReportDef,
) -> Result<ReportDef> {
    let id = db
        .insert_id(
            "INSERT INTO reports (school_id, name, kind, group_id, days, schedule, created_at, created_by)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) RETURNING id",
            &[
                &school,
                &r.name,
                &r.kind.as_str(),
                &r.group_id,
                &i64::from(r.days),
                &r.schedule,
                &now_ms(),
                &r.created_by,
            ],
        )?;
    Ok(ReportDef {
        id,
        last_run: None,
        ..r.clone()
    })
}

pub(crate) fn delete_report(db: &mut dyn Sql, school: SchoolId, id: i64) -> Result<bool> {
    Ok(db.execute(
        "DELETE FROM reports WHERE school_id = ?1 AND id = ?2",
        &[&school, &id],
    )? > 0)
}

pub(crate) fn report_ran(db: &mut dyn Sql, school: SchoolId, id: i64, at: i64) -> Result<()> {
    db.execute(
        "UPDATE reports SET last_run = ?3 WHERE school_id = ?1 AND id = ?2",
        &[&school, &id, &at],
    )?;
    Ok(())
}

pub(crate) fn document(db: &mut dyn Sql, school: SchoolId, name: &str) -> Result<Option<String>> {
    db.query_opt(
        "SELECT body FROM documents WHERE school_id = ?1 AND name = ?2",
        &[&school, &name],
    )?
    .map(|r| r.get(0))
    .transpose()
}

pub(crate) fn set_document(
    db: &mut dyn Sql,
    school: SchoolId,
    name: &str,
    body: &str,
) -> Result<()> {
    db.execute(
        "INSERT INTO documents (school_id, name, body, updated_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (school_id, name) DO UPDATE SET body = excluded.body, updated_at = excluded.updated_at",
        &[&school, &name, &body, &now_ms()],
    )?;
    Ok(())
}
