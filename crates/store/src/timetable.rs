//! Periods, room bookings and scheduled lessons (migration 0016), per school.
//!
//! Days are local calendar days as `YYYY-MM-DD` text (they sort and compare
//! as dates); the server checks their form before they reach the store.
//! A booking's unique key (school, room, day, period) is what refuses a
//! double booking; a run's key (schedule, day) is what makes a scheduled
//! lesson start once, across restarts too.

use lectern_policy::settings::SettingsMap;
use rusqlite::{params, Connection, OptionalExtension, Row};
use serde::Serialize;

use crate::{Result, SchoolId, SqliteStore, StoreError};

/// A period of the school day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Period {
    /// Id (0 before it is stored).
    pub id: i64,
    /// Its name ("Period 1", "Lunch").
    pub name: String,
    /// Start, minutes after local midnight.
    pub start_minute: u32,
    /// End, minutes after local midnight (after the start).
    pub end_minute: u32,
    /// The weekdays it runs on: bit 0 Monday … bit 6 Sunday.
    pub days: u8,
}

/// A room (computer group) booked for a period of a day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Booking {
    /// Id (0 before it is stored).
    pub id: i64,
    /// The room: a computer group.
    pub group_id: i64,
    /// The day, `YYYY-MM-DD`.
    pub day: String,
    /// The period.
    pub period_id: i64,
    /// The console user who booked it.
    pub booked_by: String,
    /// What for (may be empty).
    pub note: String,
    /// When it was booked, ms.
    pub created_at: i64,
}

/// When a scheduled lesson happens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "repeat", rename_all = "snake_case")]
pub enum Repeat {
    /// Once, on this day.
    Once {
        /// `YYYY-MM-DD`.
        day: String,
    },
    /// Every week on `weekday` (0 Monday … 6 Sunday), from `from` to `until`
    /// inclusive.
    Weekly {
        /// 0 Monday … 6 Sunday.
        weekday: u8,
        /// First day, `YYYY-MM-DD`.
        from: String,
        /// Last day, `YYYY-MM-DD`.
        until: String,
    },
}

/// A lesson planned ahead for a class.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScheduledLesson {
    /// Id (0 before it is stored).
    pub id: i64,
    /// The class (a group).
    pub group_id: i64,
    /// The period it fills.
    pub period_id: i64,
    /// Once or weekly.
    pub repeat: Repeat,
    /// The lesson's restrictions.
    pub restrictions: SettingsMap,
    /// Who planned it.
    pub teacher: String,
    /// When it was planned, ms.
    pub created_at: i64,
    /// When the whole series was cancelled, ms.
    pub cancelled_at: Option<i64>,
}

/// An occurrence the server has started (or found it could not).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Run {
    /// The scheduled lesson.
    pub schedule_id: i64,
    /// Its day.
    pub day: String,
    /// The period's start on the server's clock, ms.
    pub starts_at: i64,
    /// The period's end on the server's clock, ms.
    pub ends_at: i64,
    /// The lesson row started for it, once started.
    pub lesson_id: Option<i64>,
    /// `due`, `started`, `ended`, `clash` (the class had a lesson already)
    /// or `cancelled`.
    pub outcome: String,
    /// Nothing more to do for it.
    pub finished: bool,
}

/// Periods, bookings and scheduled lessons in the store.
pub trait TimetableStore: Send + Sync {
    /// The school's periods, by start.
    fn periods(&self, school: SchoolId) -> Result<Vec<Period>>;
    /// Adds a period.
    fn add_period(&self, school: SchoolId, p: &Period) -> Result<Period>;
    /// Changes a period; false if there is none.
    fn update_period(&self, school: SchoolId, p: &Period) -> Result<bool>;
    /// Deletes a period that no booking or scheduled lesson uses: `Exists`
    /// if one does, false if there is none.
    fn delete_period(&self, school: SchoolId, id: i64) -> Result<bool>;
    /// Bookings on days `from..=until`.
    fn bookings(&self, school: SchoolId, from: &str, until: &str) -> Result<Vec<Booking>>;
    /// One booking.
    fn booking(&self, school: SchoolId, id: i64) -> Result<Option<Booking>>;
    /// Books a room: `Exists` if it is booked for that period already.
    fn add_booking(&self, school: SchoolId, b: &Booking) -> Result<Booking>;
    /// Cancels a booking; false if there is none.
    fn delete_booking(&self, school: SchoolId, id: i64) -> Result<bool>;
    /// Every scheduled lesson, cancelled ones too.
    fn scheduled_lessons(&self, school: SchoolId) -> Result<Vec<ScheduledLesson>>;
    /// Plans a lesson.
    fn add_scheduled_lesson(
        &self,
        school: SchoolId,
        s: &ScheduledLesson,
    ) -> Result<ScheduledLesson>;
    /// Cancels a series; false if there is none or it was cancelled.
    fn cancel_scheduled_lesson(&self, school: SchoolId, id: i64, at: i64) -> Result<bool>;
    /// Cancels one occurrence; false if it was cancelled already.
    fn skip_occurrence(&self, school: SchoolId, id: i64, day: &str) -> Result<bool>;
    /// Cancelled occurrences: (schedule, day).
    fn skipped(&self, school: SchoolId) -> Result<Vec<(i64, String)>>;
    /// Records an occurrence as due; false if it was recorded before.
    fn claim_run(&self, school: SchoolId, r: &Run) -> Result<bool>;
    /// Occurrences not finished yet.
    fn open_runs(&self, school: SchoolId) -> Result<Vec<Run>>;
    /// Occurrences on days `from..=until`.
    fn runs(&self, school: SchoolId, from: &str, until: &str) -> Result<Vec<Run>>;
    /// Updates an occurrence's lesson, outcome and whether it is finished.
    fn update_run(&self, school: SchoolId, r: &Run) -> Result<()>;
}

const PERIOD: &str = "id, name, start_minute, end_minute, days FROM periods";
const BOOKING: &str =
    "id, group_id, day, period_id, booked_by, note, created_at FROM room_bookings";
const SCHEDULED: &str = "id, group_id, period_id, day, weekday, from_day, until_day, \
     restrictions, teacher, created_at, cancelled_at FROM scheduled_lessons";
const RUN: &str =
    "schedule_id, day, starts_at, ends_at, lesson_id, outcome, finished FROM scheduled_lesson_runs";

fn period(r: &Row<'_>) -> rusqlite::Result<Period> {
    Ok(Period {
        id: r.get(0)?,
        name: r.get(1)?,
        start_minute: r.get(2)?,
        end_minute: r.get(3)?,
        days: r.get(4)?,
    })
}

fn booking(r: &Row<'_>) -> rusqlite::Result<Booking> {
    Ok(Booking {
        id: r.get(0)?,
        group_id: r.get(1)?,
        day: r.get(2)?,
        period_id: r.get(3)?,
        booked_by: r.get(4)?,
        note: r.get(5)?,
        created_at: r.get(6)?,
    })
}

fn scheduled(r: &Row<'_>) -> rusqlite::Result<ScheduledLesson> {
    let day: Option<String> = r.get(3)?;
    let repeat = match day {
        Some(day) => Repeat::Once { day },
        None => Repeat::Weekly {
            weekday: r.get(4)?,
            from: r.get(5)?,
            until: r.get(6)?,
        },
    };
    let restrictions: String = r.get(7)?;
    Ok(ScheduledLesson {
        id: r.get(0)?,
        group_id: r.get(1)?,
        period_id: r.get(2)?,
        repeat,
        restrictions: serde_json::from_str(&restrictions).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(7, rusqlite::types::Type::Text, Box::new(e))
        })?,
        teacher: r.get(8)?,
        created_at: r.get(9)?,
        cancelled_at: r.get(10)?,
    })
}

fn run(r: &Row<'_>) -> rusqlite::Result<Run> {
    Ok(Run {
        schedule_id: r.get(0)?,
        day: r.get(1)?,
        starts_at: r.get(2)?,
        ends_at: r.get(3)?,
        lesson_id: r.get(4)?,
        outcome: r.get(5)?,
        finished: r.get(6)?,
    })
}

fn query<T>(
    c: &Connection,
    sql: &str,
    p: impl rusqlite::Params,
    f: fn(&Row<'_>) -> rusqlite::Result<T>,
) -> Result<Vec<T>> {
    let mut stmt = c.prepare(sql)?;
    let rows = stmt.query_map(p, f)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

fn is_constraint(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _)
        if f.code == rusqlite::ErrorCode::ConstraintViolation)
}

impl TimetableStore for SqliteStore {
    fn periods(&self, school: SchoolId) -> Result<Vec<Period>> {
        self.with(|c| {
            query(
                c,
                &format!("SELECT {PERIOD} WHERE school_id = ?1 ORDER BY start_minute, id"),
                params![school],
                period,
            )
        })
    }

    fn add_period(&self, school: SchoolId, p: &Period) -> Result<Period> {
        self.with(|c| {
            c.execute(
                "INSERT INTO periods (school_id, name, start_minute, end_minute, days) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![school, p.name, p.start_minute, p.end_minute, p.days],
            )?;
            Ok(Period {
                id: c.last_insert_rowid(),
                ..p.clone()
            })
        })
    }

    fn update_period(&self, school: SchoolId, p: &Period) -> Result<bool> {
        self.with(|c| {
            Ok(c.execute(
                "UPDATE periods SET name = ?3, start_minute = ?4, end_minute = ?5, days = ?6 WHERE school_id = ?1 AND id = ?2",
                params![school, p.id, p.name, p.start_minute, p.end_minute, p.days],
            )? == 1)
        })
    }

    fn delete_period(&self, school: SchoolId, id: i64) -> Result<bool> {
        self.with(|c| {
            let used: i64 = c.query_row(
                "SELECT (SELECT COUNT(*) FROM room_bookings WHERE school_id = ?1 AND period_id = ?2)
                      + (SELECT COUNT(*) FROM scheduled_lessons WHERE school_id = ?1 AND period_id = ?2)",
                params![school, id],
                |r| r.get(0),
            )?;
            if used > 0 {
                return Err(StoreError::Exists(format!(
                    "a booking or scheduled lesson in period {id}"
                )));
            }
            Ok(c.execute(
                "DELETE FROM periods WHERE school_id = ?1 AND id = ?2",
                params![school, id],
            )? == 1)
        })
    }

    fn bookings(&self, school: SchoolId, from: &str, until: &str) -> Result<Vec<Booking>> {
        self.with(|c| {
            query(
                c,
                &format!("SELECT {BOOKING} WHERE school_id = ?1 AND day BETWEEN ?2 AND ?3 ORDER BY day, period_id, id"),
                params![school, from, until],
                booking,
            )
        })
    }

    fn booking(&self, school: SchoolId, id: i64) -> Result<Option<Booking>> {
        self.with(|c| {
            Ok(c.query_row(
                &format!("SELECT {BOOKING} WHERE school_id = ?1 AND id = ?2"),
                params![school, id],
                booking,
            )
            .optional()?)
        })
    }

    fn add_booking(&self, school: SchoolId, b: &Booking) -> Result<Booking> {
        self.with(|c| {
            match c.execute(
                "INSERT INTO room_bookings (school_id, group_id, day, period_id, booked_by, note, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![school, b.group_id, b.day, b.period_id, b.booked_by, b.note, b.created_at],
            ) {
                Ok(_) => Ok(Booking {
                    id: c.last_insert_rowid(),
                    ..b.clone()
                }),
                Err(e) if is_constraint(&e) => {
                    Err(StoreError::Exists(format!("a booking of that room for {} in that period", b.day)))
                }
                Err(e) => Err(e.into()),
            }
        })
    }

    fn delete_booking(&self, school: SchoolId, id: i64) -> Result<bool> {
        self.with(|c| {
            Ok(c.execute(
                "DELETE FROM room_bookings WHERE school_id = ?1 AND id = ?2",
                params![school, id],
            )? == 1)
        })
    }

    fn scheduled_lessons(&self, school: SchoolId) -> Result<Vec<ScheduledLesson>> {
        self.with(|c| {
            query(
                c,
                &format!("SELECT {SCHEDULED} WHERE school_id = ?1 ORDER BY id"),
                params![school],
                scheduled,
            )
        })
    }

    fn add_scheduled_lesson(
        &self,
        school: SchoolId,
        s: &ScheduledLesson,
    ) -> Result<ScheduledLesson> {
        let (day, weekday, from, until) = match &s.repeat {
            Repeat::Once { day } => (Some(day.as_str()), None, None, None),
            Repeat::Weekly {
                weekday,
                from,
                until,
            } => (
                None,
                Some(*weekday),
                Some(from.as_str()),
                Some(until.as_str()),
            ),
        };
        let restrictions = serde_json::to_string(&s.restrictions).unwrap_or_default();
        self.with(|c| {
            c.execute(
                "INSERT INTO scheduled_lessons (school_id, group_id, period_id, day, weekday, from_day, until_day, restrictions, teacher, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                params![school, s.group_id, s.period_id, day, weekday, from, until, restrictions, s.teacher, s.created_at],
            )?;
            Ok(ScheduledLesson {
                id: c.last_insert_rowid(),
                ..s.clone()
            })
        })
    }

    fn cancel_scheduled_lesson(&self, school: SchoolId, id: i64, at: i64) -> Result<bool> {
        self.with(|c| {
            Ok(c.execute(
                "UPDATE scheduled_lessons SET cancelled_at = ?3 WHERE school_id = ?1 AND id = ?2 AND cancelled_at IS NULL",
                params![school, id, at],
            )? == 1)
        })
    }

    fn skip_occurrence(&self, school: SchoolId, id: i64, day: &str) -> Result<bool> {
        self.with(|c| {
            Ok(c.execute(
                "INSERT OR IGNORE INTO scheduled_lesson_skips (school_id, schedule_id, day) VALUES (?1, ?2, ?3)",
                params![school, id, day],
            )? == 1)
        })
    }

    fn skipped(&self, school: SchoolId) -> Result<Vec<(i64, String)>> {
        self.with(|c| {
            query(
                c,
                "SELECT schedule_id, day FROM scheduled_lesson_skips WHERE school_id = ?1",
                params![school],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
        })
    }

    fn claim_run(&self, school: SchoolId, r: &Run) -> Result<bool> {
        self.with(|c| {
            Ok(c.execute(
                "INSERT OR IGNORE INTO scheduled_lesson_runs (school_id, schedule_id, day, starts_at, ends_at, lesson_id, outcome, finished)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![school, r.schedule_id, r.day, r.starts_at, r.ends_at, r.lesson_id, r.outcome, r.finished],
            )? == 1)
        })
    }

    fn open_runs(&self, school: SchoolId) -> Result<Vec<Run>> {
        self.with(|c| {
            query(
                c,
                &format!("SELECT {RUN} WHERE school_id = ?1 AND finished = 0"),
                params![school],
                run,
            )
        })
    }

    fn runs(&self, school: SchoolId, from: &str, until: &str) -> Result<Vec<Run>> {
        self.with(|c| {
            query(
                c,
                &format!("SELECT {RUN} WHERE school_id = ?1 AND day BETWEEN ?2 AND ?3"),
                params![school, from, until],
                run,
            )
        })
    }

    fn update_run(&self, school: SchoolId, r: &Run) -> Result<()> {
        self.with(|c| {
            c.execute(
                "UPDATE scheduled_lesson_runs SET lesson_id = ?4, outcome = ?5, finished = ?6 WHERE school_id = ?1 AND schedule_id = ?2 AND day = ?3",
                params![school, r.schedule_id, r.day, r.lesson_id, r.outcome, r.finished],
            )?;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Store;

    #[test]
    fn a_room_is_booked_once_per_period_and_a_used_period_stays() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("t.db")).unwrap();
        let school = store.create_school("Hillside").unwrap();
        let t: &dyn TimetableStore = store.timetable();
        let p = t
            .add_period(
                school,
                &Period {
                    id: 0,
                    name: "P1".into(),
                    start_minute: 540,
                    end_minute: 590,
                    days: 0b11111,
                },
            )
            .unwrap();
        let b = Booking {
            id: 0,
            group_id: 7,
            day: "2030-01-07".into(),
            period_id: p.id,
            booked_by: "amy".into(),
            note: String::new(),
            created_at: 1,
        };
        t.add_booking(school, &b).unwrap();
        let again = t.add_booking(
            school,
            &Booking {
                booked_by: "ben".into(),
                ..b.clone()
            },
        );
        assert!(matches!(again, Err(StoreError::Exists(_))), "{again:?}");
        assert!(matches!(
            t.delete_period(school, p.id),
            Err(StoreError::Exists(_))
        ));
        assert_eq!(
            t.bookings(school, "2030-01-01", "2030-01-31")
                .unwrap()
                .len(),
            1
        );
        // Bookings are rows of the store, so a backup holds them.
        let copy = dir.path().join("backup.db");
        store.backup_to(&copy).unwrap();
        let restored = SqliteStore::open(&copy).unwrap();
        let kept = restored
            .timetable()
            .bookings(school, "2030-01-07", "2030-01-07")
            .unwrap();
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].booked_by, "amy");
    }
}
