//! The review workflow of violations (migration 0022): each violation is a
//! case with a status and an assignee, notes with author and time, and a
//! history of every change (who, what, from, to, when).
//!
//! The store records what it is given; the server checks rights, the
//! assignee and the note's size, and rate-limits changes. A change to many
//! cases is one transaction, so a bulk action lands whole or not at all.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::pg::PgStore;
use crate::sql::{in_tx, Row, Sql, ToValue};
use crate::{Result, SchoolId, SqliteStore, StoreError, ViolationFilter};

/// Where a case stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CaseStatus {
    /// Raised, nobody has looked at it yet (every violation starts here).
    New,
    /// Someone is looking into it.
    InReview,
    /// Looked into: nothing to act on.
    NoConcern,
    /// Passed on (the safeguarding lead, outside agencies).
    Escalated,
    /// Dealt with.
    Closed,
}

impl CaseStatus {
    /// Every status, in workflow order.
    pub const ALL: [CaseStatus; 5] = [
        CaseStatus::New,
        CaseStatus::InReview,
        CaseStatus::NoConcern,
        CaseStatus::Escalated,
        CaseStatus::Closed,
    ];

    /// The stored (and API) name.
    pub fn as_str(self) -> &'static str {
        match self {
            CaseStatus::New => "new",
            CaseStatus::InReview => "in_review",
            CaseStatus::NoConcern => "no_concern",
            CaseStatus::Escalated => "escalated",
            CaseStatus::Closed => "closed",
        }
    }

    /// Parses a stored or requested name.
    pub fn parse(s: &str) -> Option<CaseStatus> {
        CaseStatus::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// Which assignee a list asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum AssigneeFilter {
    /// Anyone or no one.
    #[default]
    Any,
    /// Cases nobody is assigned to.
    Unassigned,
    /// Cases assigned to this console user (case-insensitive).
    User(String),
}

/// The review part of a violation list's filter; the default selects all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CaseFilter {
    /// Any of these statuses (empty: any status).
    pub statuses: Vec<CaseStatus>,
    /// The assignee.
    pub assignee: AssigneeFilter,
}

/// A case's current state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CaseState {
    /// The violation's device (for scoping; not sent, the violation has it).
    #[serde(skip)]
    pub device_id: i64,
    /// Status.
    pub status: CaseStatus,
    /// The console user it is assigned to.
    pub assignee: Option<String>,
    /// How many notes it has.
    pub notes: u32,
}

/// A note on a case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CaseNote {
    /// Id.
    pub id: i64,
    /// The console user who wrote it.
    pub author: String,
    /// The text.
    pub body: String,
    /// When (ms).
    pub at: i64,
}

/// One change in a case's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CaseEvent {
    /// Id.
    pub id: i64,
    /// The violation.
    pub violation_id: i64,
    /// The console user who made the change.
    pub actor: String,
    /// `status`, `assignee` or `note`.
    pub field: String,
    /// The value before (none for a note, or no assignee).
    pub old: Option<String>,
    /// The value after (a note's id, or none for no assignee).
    pub new: Option<String>,
    /// When (ms).
    pub at: i64,
}

/// What to change on each case; `None` leaves that part as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CaseChange {
    /// The new status.
    pub status: Option<CaseStatus>,
    /// The new assignee (`Some(None)`: unassign).
    pub assignee: Option<Option<String>>,
    /// A note to add.
    pub note: Option<String>,
}

/// What a change did to one case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CaseOutcome {
    /// The violation.
    pub id: i64,
    /// Its device.
    pub device_id: i64,
    /// The history rows written (empty when nothing changed).
    pub events: Vec<CaseEvent>,
    /// The state after.
    pub state: CaseState,
}

/// The review workflow's storage.
pub trait ReviewStore: Send + Sync {
    /// The state of each of `ids` that exists in the school.
    fn case_states(&self, school: SchoolId, ids: &[i64]) -> Result<HashMap<i64, CaseState>>;
    /// A case's notes, oldest first.
    fn case_notes(&self, school: SchoolId, id: i64) -> Result<Vec<CaseNote>>;
    /// A case's history, oldest first.
    fn case_history(&self, school: SchoolId, id: i64) -> Result<Vec<CaseEvent>>;
    /// Applies `change` to each of `ids` in one transaction, recording a
    /// history row per actual change; ids not in the school are left out of
    /// the answer.
    fn change_cases(
        &self,
        school: SchoolId,
        ids: &[i64],
        change: &CaseChange,
        actor: &str,
        at: i64,
    ) -> Result<Vec<CaseOutcome>>;
    /// How many violations `filter` selects in each status (its limit is
    /// ignored; statuses with none are left out).
    fn violation_status_counts(
        &self,
        school: SchoolId,
        filter: &ViolationFilter,
    ) -> Result<Vec<(CaseStatus, u64)>>;
}

/// Adds `f`'s conditions to a violations `WHERE` clause; `arg` binds a value
/// and returns its placeholder.
pub(crate) fn push_case_filter(
    f: &CaseFilter,
    sql: &mut String,
    arg: &mut dyn FnMut(crate::sql::Value) -> String,
) {
    use crate::sql::Value;
    if !f.statuses.is_empty() {
        let marks: Vec<String> = f
            .statuses
            .iter()
            .map(|s| arg(Value::Text(s.as_str().to_string())))
            .collect();
        sql.push_str(&format!(" AND status IN ({})", marks.join(",")));
    }
    match &f.assignee {
        AssigneeFilter::Any => {}
        AssigneeFilter::Unassigned => sql.push_str(" AND assignee IS NULL"),
        AssigneeFilter::User(u) => {
            sql.push_str(&format!(" AND assignee = {}", arg(Value::Text(u.clone()))));
        }
    }
}

fn status_of(r: &Row, i: usize) -> Result<CaseStatus> {
    let s: String = r.get(i)?;
    CaseStatus::parse(&s).ok_or_else(|| StoreError::Corrupt(format!("unknown case status {s:?}")))
}

const STATE_COLS: &str = "device_id, status, assignee, \
     (SELECT COUNT(*) FROM violation_notes n WHERE n.violation_id = violations.id)";

fn state_row(r: &Row, from: usize) -> Result<CaseState> {
    Ok(CaseState {
        device_id: r.get(from)?,
        status: status_of(r, from + 1)?,
        assignee: r.get(from + 2)?,
        notes: r.get(from + 3)?,
    })
}

/// How many ids one query binds: a list of violations can name thousands,
/// more than either engine takes as parameters in one statement.
const IDS_PER_QUERY: usize = 500;

fn case_states(db: &mut dyn Sql, school: SchoolId, ids: &[i64]) -> Result<HashMap<i64, CaseState>> {
    let mut out = HashMap::new();
    for ids in ids.chunks(IDS_PER_QUERY) {
        let marks: Vec<String> = (2..ids.len() + 2).map(|i| format!("?{i}")).collect();
        let mut params: Vec<&dyn ToValue> = vec![&school];
        params.extend(ids.iter().map(|id| id as &dyn ToValue));
        for r in db.query_built(
            &format!(
                "SELECT id, {STATE_COLS} FROM violations
                 WHERE school_id = ?1 AND id IN ({})",
                marks.join(",")
            ),
            &params,
        )? {
            out.insert(r.get(0)?, state_row(&r, 1)?);
        }
    }
    Ok(out)
}

fn case_notes(db: &mut dyn Sql, school: SchoolId, id: i64) -> Result<Vec<CaseNote>> {
    db.query(
        "SELECT id, author, body, at FROM violation_notes
         WHERE school_id = ?1 AND violation_id = ?2 ORDER BY at, id",
        &[&school, &id],
    )?
    .iter()
    .map(|r| {
        Ok(CaseNote {
            id: r.get(0)?,
            author: r.get(1)?,
            body: r.get(2)?,
            at: r.get(3)?,
        })
    })
    .collect()
}

fn event_row(r: &Row) -> Result<CaseEvent> {
    Ok(CaseEvent {
        id: r.get(0)?,
        violation_id: r.get(1)?,
        actor: r.get(2)?,
        field: r.get(3)?,
        old: r.get(4)?,
        new: r.get(5)?,
        at: r.get(6)?,
    })
}

fn case_history(db: &mut dyn Sql, school: SchoolId, id: i64) -> Result<Vec<CaseEvent>> {
    db.query(
        "SELECT id, violation_id, actor, field, old, new, at FROM violation_events
         WHERE school_id = ?1 AND violation_id = ?2 ORDER BY at, id",
        &[&school, &id],
    )?
    .iter()
    .map(event_row)
    .collect()
}

/// Who is changing what, when.
struct Writer<'a> {
    school: SchoolId,
    actor: &'a str,
    at: i64,
}

impl Writer<'_> {
    fn event(
        &self,
        db: &mut dyn Sql,
        id: i64,
        field: &str,
        old: Option<&str>,
        new: Option<&str>,
    ) -> Result<CaseEvent> {
        let event_id = db.insert_id(
            "INSERT INTO violation_events (school_id, violation_id, actor, field, old, new, at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) RETURNING id",
            &[&self.school, &id, &self.actor, &field, &old, &new, &self.at],
        )?;
        Ok(CaseEvent {
            id: event_id,
            violation_id: id,
            actor: self.actor.to_string(),
            field: field.to_string(),
            old: old.map(str::to_string),
            new: new.map(str::to_string),
            at: self.at,
        })
    }

    /// Applies `change` to case `id`; `None` when the school has no such case.
    fn apply(&self, db: &mut dyn Sql, id: i64, change: &CaseChange) -> Result<Option<CaseOutcome>> {
        let Some(before) = db
            .query_opt(
                &format!("SELECT {STATE_COLS} FROM violations WHERE school_id = ?1 AND id = ?2"),
                &[&self.school, &id],
            )?
            .map(|r| state_row(&r, 0))
            .transpose()?
        else {
            return Ok(None);
        };
        let mut events = Vec::new();
        let mut state = before.clone();
        if let Some(status) = change.status.filter(|s| *s != before.status) {
            db.execute(
                "UPDATE violations SET status = ?3 WHERE school_id = ?1 AND id = ?2",
                &[&self.school, &id, &status.as_str()],
            )?;
            events.push(self.event(
                db,
                id,
                "status",
                Some(before.status.as_str()),
                Some(status.as_str()),
            )?);
            state.status = status;
        }
        if let Some(assignee) = &change.assignee {
            let same = match (assignee, &before.assignee) {
                (Some(a), Some(b)) => a.eq_ignore_ascii_case(b),
                (None, None) => true,
                _ => false,
            };
            if !same {
                db.execute(
                    "UPDATE violations SET assignee = ?3 WHERE school_id = ?1 AND id = ?2",
                    &[&self.school, &id, assignee],
                )?;
                events.push(self.event(
                    db,
                    id,
                    "assignee",
                    before.assignee.as_deref(),
                    assignee.as_deref(),
                )?);
                state.assignee = assignee.clone();
            }
        }
        if let Some(body) = &change.note {
            let note = db
                .insert_id(
                    "INSERT INTO violation_notes (school_id, violation_id, author, body, at)
                     VALUES (?1, ?2, ?3, ?4, ?5) RETURNING id",
                    &[&self.school, &id, &self.actor, body, &self.at],
                )?
                .to_string();
            events.push(self.event(db, id, "note", None, Some(&note))?);
            state.notes += 1;
        }
        Ok(Some(CaseOutcome {
            id,
            device_id: before.device_id,
            events,
            state,
        }))
    }
}

fn change_cases(
    db: &mut dyn Sql,
    school: SchoolId,
    ids: &[i64],
    change: &CaseChange,
    actor: &str,
    at: i64,
) -> Result<Vec<CaseOutcome>> {
    let w = Writer { school, actor, at };
    // One transaction: a bulk change lands whole or not at all.
    in_tx(db, |db| {
        let mut out = Vec::with_capacity(ids.len());
        for &id in ids {
            out.extend(w.apply(db, id, change)?);
        }
        Ok(out)
    })
}

fn status_counts(
    db: &mut dyn Sql,
    school: SchoolId,
    f: &ViolationFilter,
) -> Result<Vec<(CaseStatus, u64)>> {
    let Some((clause, args)) = crate::safety::violation_where(db.engine(), school, f) else {
        return Ok(Vec::new());
    };
    let params: Vec<&dyn ToValue> = args.iter().map(|v| v as &dyn ToValue).collect();
    let mut counts = db
        .query_built(
            &format!("SELECT status, COUNT(*){clause} GROUP BY status"),
            &params,
        )?
        .iter()
        .map(|r| Ok((status_of(r, 0)?, r.get::<u64>(1)?)))
        .collect::<Result<Vec<_>>>()?;
    counts.sort();
    Ok(counts)
}

/// The same calls on either engine.
macro_rules! review_store {
    ($t:ty) => {
        impl ReviewStore for $t {
            fn case_states(
                &self,
                school: SchoolId,
                ids: &[i64],
            ) -> Result<HashMap<i64, CaseState>> {
                self.shared(|db| case_states(db, school, ids))
            }

            fn case_notes(&self, school: SchoolId, id: i64) -> Result<Vec<CaseNote>> {
                self.shared(|db| case_notes(db, school, id))
            }

            fn case_history(&self, school: SchoolId, id: i64) -> Result<Vec<CaseEvent>> {
                self.shared(|db| case_history(db, school, id))
            }

            fn change_cases(
                &self,
                school: SchoolId,
                ids: &[i64],
                change: &CaseChange,
                actor: &str,
                at: i64,
            ) -> Result<Vec<CaseOutcome>> {
                self.shared(|db| change_cases(db, school, ids, change, actor, at))
            }

            fn violation_status_counts(
                &self,
                school: SchoolId,
                filter: &ViolationFilter,
            ) -> Result<Vec<(CaseStatus, u64)>> {
                self.shared(|db| status_counts(db, school, filter))
            }
        }
    };
}

review_store!(SqliteStore);
review_store!(PgStore);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Store, Violation};

    fn violation(device: i64, at: i64) -> Violation {
        Violation {
            id: 0,
            device_id: device,
            user: Some("amy".into()),
            term: "term".into(),
            category: "test".into(),
            severity: 3,
            matched: "term".into(),
            context: "a term here".into(),
            source: "url".into(),
            action: "log".into(),
            screenshots: 0,
            at,
            person_id: None,
            person: None,
            retrospective: false,
        }
    }

    #[test]
    fn changes_are_recorded_filtered_counted_and_go_with_their_violation() {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteStore::open(&dir.path().join("l.db")).unwrap();
        let school = s.create_school("A").unwrap();
        let other = s.create_school("B").unwrap();
        let a = s.add_violation(school, &violation(1, 100)).unwrap();
        let b = s.add_violation(school, &violation(1, 200)).unwrap();
        let theirs = s.add_violation(other, &violation(1, 300)).unwrap();
        let r = s.review();
        let change = CaseChange {
            status: Some(CaseStatus::InReview),
            assignee: Some(Some("lee".into())),
            note: Some("called home".into()),
        };
        let out = r
            .change_cases(school, &[a, theirs, 999], &change, "khan", 500)
            .unwrap();
        assert_eq!(
            out.len(),
            1,
            "another school's and unknown ids are left out"
        );
        assert_eq!(out[0].events.len(), 3);
        assert_eq!(out[0].state.notes, 1);
        // The same change again changes nothing but adds the note.
        let again = r.change_cases(school, &[a], &change, "khan", 600).unwrap();
        let fields: Vec<&str> = again[0].events.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["note"]);
        let history = r.case_history(school, a).unwrap();
        assert_eq!(history.len(), 4);
        assert_eq!(
            (history[0].old.as_deref(), history[0].new.as_deref()),
            (Some("new"), Some("in_review"))
        );
        assert_eq!(r.case_notes(school, a).unwrap().len(), 2);
        assert_eq!(
            r.case_states(other, &[theirs]).unwrap()[&theirs].status,
            CaseStatus::New
        );

        let mine = ViolationFilter {
            case: CaseFilter {
                statuses: vec![CaseStatus::InReview],
                assignee: AssigneeFilter::User("LEE".into()),
            },
            limit: 10,
            ..Default::default()
        };
        let ids: Vec<i64> = s
            .violations(school, &mine)
            .unwrap()
            .iter()
            .map(|v| v.id)
            .collect();
        assert_eq!(ids, [a]);
        let unassigned = ViolationFilter {
            case: CaseFilter {
                statuses: vec![],
                assignee: AssigneeFilter::Unassigned,
            },
            limit: 10,
            ..Default::default()
        };
        let ids: Vec<i64> = s
            .violations(school, &unassigned)
            .unwrap()
            .iter()
            .map(|v| v.id)
            .collect();
        assert_eq!(ids, [b]);
        let all = ViolationFilter {
            limit: 1,
            ..Default::default()
        };
        assert_eq!(
            r.violation_status_counts(school, &all).unwrap(),
            [(CaseStatus::New, 1), (CaseStatus::InReview, 1)]
        );

        // Retention removes the notes and history with the violation.
        s.purge_before(school, crate::Retained::Violations, 150)
            .unwrap();
        assert!(r.case_history(school, a).unwrap().is_empty());
        assert!(r.case_notes(school, a).unwrap().is_empty());
    }
}
