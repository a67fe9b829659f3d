//! Periods, room bookings and scheduled lessons (migration 0016), per school.
//!
//! Days are local calendar days as `YYYY-MM-DD` text (they sort and compare
//! as dates); the server checks their form before they reach the store.
//! A booking's unique key (school, room, day, period) is what refuses a
//! double booking; a run's key (schedule, day) is what makes a scheduled
//! lesson start once, across restarts too.

use lectern_policy::settings::SettingsMap;
use serde::Serialize;

use crate::pg::PgStore;
use crate::sql::{in_tx, Row, Sql, ToValue};

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

fn period(r: &Row) -> Result<Period> {
    Ok(Period {
        id: r.get(0)?,
        name: r.get(1)?,
        start_minute: r.get(2)?,
        end_minute: r.get(3)?,
        days: r.get(4)?,
    })
}

fn booking(r: &Row) -> Result<Booking> {
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

fn scheduled(r: &Row) -> Result<ScheduledLesson> {
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
        restrictions: serde_json::from_str(&restrictions)
            .map_err(|e| StoreError::Corrupt(format!("scheduled lesson restrictions: {e}")))?,
        teacher: r.get(8)?,
        created_at: r.get(9)?,
        cancelled_at: r.get(10)?,
    })
}

fn run(r: &Row) -> Result<Run> {
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

fn list<T>(
    db: &mut dyn Sql,
    sql: &str,
    params: &[&dyn ToValue],
    f: fn(&Row) -> Result<T>,
) -> Result<Vec<T>> {
    db.query(sql, params)?.iter().map(f).collect()
}

fn periods(db: &mut dyn Sql, school: SchoolId) -> Result<Vec<Period>> {
    list(
        db,
        &format!("SELECT {PERIOD} WHERE school_id = ?1 ORDER BY start_minute, id"),
        &[&school],
        period,
    )
}

fn add_period(db: &mut dyn Sql, school: SchoolId, p: &Period) -> Result<Period> {
    let id = db.insert_id(
        "INSERT INTO periods (school_id, name, start_minute, end_minute, days)
         VALUES (?1, ?2, ?3, ?4, ?5) RETURNING id",
        &[
            &school,
            &p.name,
            &i64::from(p.start_minute),
            &i64::from(p.end_minute),
            &i64::from(p.days),
        ],
    )?;
    Ok(Period { id, ..p.clone() })
}

fn update_period(db: &mut dyn Sql, school: SchoolId, p: &Period) -> Result<bool> {
    Ok(db.execute(
        "UPDATE periods SET name = ?3, start_minute = ?4, end_minute = ?5, days = ?6
         WHERE school_id = ?1 AND id = ?2",
        &[
            &school,
            &p.id,
            &p.name,
            &i64::from(p.start_minute),
            &i64::from(p.end_minute),
            &i64::from(p.days),
        ],
    )? == 1)
}

fn delete_period(db: &mut dyn Sql, school: SchoolId, id: i64) -> Result<bool> {
    // One transaction: a booking made between the check and the delete
    // cannot lose its period.
    in_tx(db, |db| {
        let used: i64 = db
            .query_opt(
                "SELECT (SELECT COUNT(*) FROM room_bookings WHERE school_id = ?1 AND period_id = ?2)
                      + (SELECT COUNT(*) FROM scheduled_lessons WHERE school_id = ?1 AND period_id = ?2)",
                &[&school, &id],
            )?
            .ok_or_else(|| StoreError::Corrupt("no count of a period's uses".into()))?
            .get(0)?;
        if used > 0 {
            return Err(StoreError::Exists(format!(
                "a booking or scheduled lesson in period {id}"
            )));
        }
        Ok(db.execute(
            "DELETE FROM periods WHERE school_id = ?1 AND id = ?2",
            &[&school, &id],
        )? == 1)
    })
}

fn bookings(db: &mut dyn Sql, school: SchoolId, from: &str, until: &str) -> Result<Vec<Booking>> {
    list(
        db,
        &format!(
            "SELECT {BOOKING} WHERE school_id = ?1 AND day BETWEEN ?2 AND ?3
             ORDER BY day, period_id, id"
        ),
        &[&school, &from, &until],
        booking,
    )
}

fn get_booking(db: &mut dyn Sql, school: SchoolId, id: i64) -> Result<Option<Booking>> {
    db.query_opt(
        &format!("SELECT {BOOKING} WHERE school_id = ?1 AND id = ?2"),
        &[&school, &id],
    )?
    .map(|r| booking(&r))
    .transpose()
}

fn add_booking(db: &mut dyn Sql, school: SchoolId, b: &Booking) -> Result<Booking> {
    let id = db
        .insert_id(
            "INSERT INTO room_bookings
                   (school_id, group_id, day, period_id, booked_by, note, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) RETURNING id",
            &[
                &school,
                &b.group_id,
                &b.day,
                &b.period_id,
                &b.booked_by,
                &b.note,
                &b.created_at,
            ],
        )
        .map_err(|e| {
            if e.taken() {
                StoreError::Exists(format!(
                    "a booking of that room for {} in that period",
                    b.day
                ))
            } else {
                e
            }
        })?;
    Ok(Booking { id, ..b.clone() })
}

fn delete_booking(db: &mut dyn Sql, school: SchoolId, id: i64) -> Result<bool> {
    Ok(db.execute(
        "DELETE FROM room_bookings WHERE school_id = ?1 AND id = ?2",
        &[&school, &id],
    )? == 1)
}

fn scheduled_lessons(db: &mut dyn Sql, school: SchoolId) -> Result<Vec<ScheduledLesson>> {
    list(
        db,
        &format!("SELECT {SCHEDULED} WHERE school_id = ?1 ORDER BY id"),
        &[&school],
        scheduled,
    )
}

fn add_scheduled_lesson(
    db: &mut dyn Sql,
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
            Some(i64::from(*weekday)),
            Some(from.as_str()),
            Some(until.as_str()),
        ),
    };
    let restrictions = serde_json::to_string(&s.restrictions).unwrap_or_default();
    let id = db.insert_id(
        "INSERT INTO scheduled_lessons (school_id, group_id, period_id, day, weekday, from_day,
                                        until_day, restrictions, teacher, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) RETURNING id",
        &[
            &school,
            &s.group_id,
            &s.period_id,
            &day,
            &weekday,
            &from,
            &until,
            &restrictions,
            &s.teacher,
            &s.created_at,
        ],
    )?;
    Ok(ScheduledLesson { id, ..s.clone() })
}

fn cancel_scheduled_lesson(db: &mut dyn Sql, school: SchoolId, id: i64, at: i64) -> Result<bool> {
    Ok(db.execute(
        "UPDATE scheduled_lessons SET cancelled_at = ?3
         WHERE school_id = ?1 AND id = ?2 AND cancelled_at IS NULL",
        &[&school, &id, &at],
    )? == 1)
}

/// False too for another school's scheduled lesson: the key (schedule,
/// day) does not hold the school, so its row would block that school's own.
fn skip_occurrence(db: &mut dyn Sql, school: SchoolId, id: i64, day: &str) -> Result<bool> {
    Ok(db.execute(
        "INSERT INTO scheduled_lesson_skips (school_id, schedule_id, day)
         SELECT CAST(?1 AS BIGINT), CAST(?2 AS BIGINT), CAST(?3 AS TEXT)
         WHERE EXISTS (SELECT 1 FROM scheduled_lessons WHERE school_id = ?1 AND id = ?2)
         ON CONFLICT DO NOTHING",
        &[&school, &id, &day],
    )? == 1)
}

fn skipped(db: &mut dyn Sql, school: SchoolId) -> Result<Vec<(i64, String)>> {
    db.query(
        "SELECT schedule_id, day FROM scheduled_lesson_skips WHERE school_id = ?1
         ORDER BY schedule_id, day",
        &[&school],
    )?
    .iter()
    .map(|r| Ok((r.get(0)?, r.get(1)?)))
    .collect()
}

/// False too for another school's scheduled lesson (see [`skip_occurrence`]).
fn claim_run(db: &mut dyn Sql, school: SchoolId, r: &Run) -> Result<bool> {
    Ok(db.execute(
        "INSERT INTO scheduled_lesson_runs
               (school_id, schedule_id, day, starts_at, ends_at, lesson_id, outcome, finished)
         SELECT CAST(?1 AS BIGINT), CAST(?2 AS BIGINT), CAST(?3 AS TEXT), CAST(?4 AS BIGINT),
                CAST(?5 AS BIGINT), CAST(?6 AS BIGINT), CAST(?7 AS TEXT), CAST(?8 AS BIGINT)
         WHERE EXISTS (SELECT 1 FROM scheduled_lessons WHERE school_id = ?1 AND id = ?2)
         ON CONFLICT DO NOTHING",
        &[
            &school,
            &r.schedule_id,
            &r.day,
            &r.starts_at,
            &r.ends_at,
            &r.lesson_id,
            &r.outcome,
            &r.finished,
        ],
    )? == 1)
}

fn open_runs(db: &mut dyn Sql, school: SchoolId) -> Result<Vec<Run>> {
    list(
        db,
        &format!("SELECT {RUN} WHERE school_id = ?1 AND finished = 0 ORDER BY schedule_id, day"),
        &[&school],
        run,
    )
}

fn runs(db: &mut dyn Sql, school: SchoolId, from: &str, until: &str) -> Result<Vec<Run>> {
    list(
        db,
        &format!(
            "SELECT {RUN} WHERE school_id = ?1 AND day BETWEEN ?2 AND ?3
             ORDER BY schedule_id, day"
        ),
        &[&school, &from, &until],
        run,
    )
}

fn update_run(db: &mut dyn Sql, school: SchoolId, r: &Run) -> Result<()> {
    db.execute(
        "UPDATE scheduled_lesson_runs SET lesson_id = ?4, outcome = ?5, finished = ?6
         WHERE school_id = ?1 AND schedule_id = ?2 AND day = ?3",
        &[
            &school,
            &r.schedule_id,
            &r.day,
            &r.lesson_id,
            &r.outcome,
            &r.finished,
        ],
    )?;
    Ok(())
}

/// The same calls on either engine.
macro_rules! timetable_store {
    ($t:ty) => {
        impl TimetableStore for $t {
            fn periods(&self, school: SchoolId) -> Result<Vec<Period>> {
                self.shared(|db| periods(db, school))
            }

            fn add_period(&self, school: SchoolId, p: &Period) -> Result<Period> {
                self.shared(|db| add_period(db, school, p))
            }

            fn update_period(&self, school: SchoolId, p: &Period) -> Result<bool> {
                self.shared(|db| update_period(db, school, p))
            }

            fn delete_period(&self, school: SchoolId, id: i64) -> Result<bool> {
                self.shared(|db| delete_period(db, school, id))
            }

            fn bookings(&self, school: SchoolId, from: &str, until: &str) -> Result<Vec<Booking>> {
                self.shared(|db| bookings(db, school, from, until))
            }

            fn booking(&self, school: SchoolId, id: i64) -> Result<Option<Booking>> {
                self.shared(|db| get_booking(db, school, id))
            }

            fn add_booking(&self, school: SchoolId, b: &Booking) -> Result<Booking> {
                self.shared(|db| add_booking(db, school, b))
            }

            fn delete_booking(&self, school: SchoolId, id: i64) -> Result<bool> {
                self.shared(|db| delete_booking(db, school, id))
            }

            fn scheduled_lessons(&self, school: SchoolId) -> Result<Vec<ScheduledLesson>> {
                self.shared(|db| scheduled_lessons(db, school))
            }

            fn add_scheduled_lesson(
                &self,
                school: SchoolId,
                s: &ScheduledLesson,
            ) -> Result<ScheduledLesson> {
                self.shared(|db| add_scheduled_lesson(db, school, s))
            }

            fn cancel_scheduled_lesson(&self, school: SchoolId, id: i64, at: i64) -> Result<bool> {
                self.shared(|db| cancel_scheduled_lesson(db, school, id, at))
            }

            fn skip_occurrence(&self, school: SchoolId, id: i64, day: &str) -> Result<bool> {
                self.shared(|db| skip_occurrence(db, school, id, day))
            }

            fn skipped(&self, school: SchoolId) -> Result<Vec<(i64, String)>> {
                self.shared(|db| skipped(db, school))
            }

            fn claim_run(&self, school: SchoolId, r: &Run) -> Result<bool> {
                self.shared(|db| claim_run(db, school, r))
            }

            fn open_runs(&self, school: SchoolId) -> Result<Vec<Run>> {
                self.shared(|db| open_runs(db, school))
            }

            fn runs(&self, school: SchoolId, from: &str, until: &str) -> Result<Vec<Run>> {
                self.shared(|db| runs(db, school, from, until))
            }

            fn update_run(&self, school: SchoolId, r: &Run) -> Result<()> {
                self.shared(|db| update_run(db, school, r))
            }
        }
    };
}

timetable_store!(SqliteStore);
timetable_store!(PgStore);

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
