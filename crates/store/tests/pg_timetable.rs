//! Periods, room bookings and scheduled lessons give the same answers on
//! both engines: the checks run on `SqliteStore` and on `PgStore` against a
//! real PostgreSQL the test starts, from the same rows.

mod common;

use common::pg::Pg;
use lectern_policy::settings::parse_settings;
use lectern_store::timetable::{Booking, Period, Repeat, Run, ScheduledLesson, TimetableStore};
use lectern_store::{SqliteStore, StoreError};

/// Two schools; Hill has two periods (the later one stored first), a
/// booking and a weekly lesson; Dale has a period, a booking and a lesson
/// once.
const ROWS: &str = "
    INSERT INTO schools (id, name, created_at) VALUES (1, 'Hill', 1), (2, 'Dale', 1);
    INSERT INTO periods (id, school_id, name, start_minute, end_minute, days) VALUES
        (1, 1, 'P2', 600, 650, 31), (2, 1, 'P1', 540, 590, 31), (3, 2, 'Dale P1', 540, 590, 31);
    INSERT INTO room_bookings (id, school_id, group_id, day, period_id, booked_by, note, created_at)
        VALUES (1, 1, 7, '2030-01-08', 2, 'amy', 'maths', 1),
               (2, 2, 7, '2030-01-07', 3, 'dan', '', 1);
    INSERT INTO scheduled_lessons (id, school_id, group_id, period_id, day, weekday, from_day,
                                   until_day, restrictions, teacher, created_at)
        VALUES (1, 1, 7, 1, NULL, 0, '2030-01-01', '2030-06-30', '{}', 'amy', 1),
               (2, 2, 9, 3, '2030-01-07', NULL, NULL, NULL, '{}', 'dan', 1);
";

fn period(name: &str, start: u32) -> Period {
    Period {
        id: 0,
        name: name.into(),
        start_minute: start,
        end_minute: start + 50,
        days: 0b11111,
    }
}

fn check_periods(t: &dyn TimetableStore) {
    let names = |school| -> Vec<String> {
        t.periods(school)
            .unwrap()
            .into_iter()
            .map(|p| p.name)
            .collect()
    };
    assert_eq!(names(1), ["P1", "P2"], "by start");
    assert_eq!(names(2), ["Dale P1"]);
    let p3 = t.add_period(1, &period("P3", 700)).unwrap();
    assert!(p3.id > 3, "a new id past the stored ones: {}", p3.id);
    // A period starting as P1 does comes after it (by id).
    let early = t.add_period(1, &period("Early", 540)).unwrap();
    assert_eq!(names(1), ["P1", "Early", "P2", "P3"]);
    let moved = Period {
        name: "Late".into(),
        start_minute: 800,
        end_minute: 845,
        days: 0b1100000,
        ..early.clone()
    };
    assert!(t.update_period(1, &moved).unwrap());
    assert_eq!(t.periods(1).unwrap().last(), Some(&moved));
    assert!(!t.update_period(2, &moved).unwrap(), "another school's");
    assert!(!t
        .update_period(
            1,
            &Period {
                id: 999,
                ..moved.clone()
            }
        )
        .unwrap());
    // Used periods stay: P1 by a booking, P2 by a scheduled lesson.
    for used in [1, 2] {
        let e = t.delete_period(1, used);
        assert!(matches!(e, Err(StoreError::Exists(_))), "{e:?}");
    }
    assert!(!t.delete_period(2, p3.id).unwrap(), "another school's");
    assert!(t.delete_period(1, p3.id).unwrap());
    assert!(!t.delete_period(1, p3.id).unwrap(), "gone already");
    assert!(t.delete_period(1, early.id).unwrap());
    assert_eq!(names(1), ["P1", "P2"]);
    assert_eq!(names(2), ["Dale P1"]);
}

fn check_bookings(t: &dyn TimetableStore) {
    let b = Booking {
        id: 0,
        group_id: 7,
        day: "2030-01-08".into(),
        period_id: 1,
        booked_by: "ben".into(),
        note: String::new(),
        created_at: 5,
    };
    let added = t.add_booking(1, &b).unwrap();
    assert!(added.id > 2);
    assert_eq!(t.booking(1, added.id).unwrap(), Some(added.clone()));
    assert_eq!(t.booking(2, added.id).unwrap(), None, "another school's");
    // The same room in the same period of the same day is refused, however
    // it is asked; another room, day or school is not.
    let again = t.add_booking(
        1,
        &Booking {
            booked_by: "cat".into(),
            ..b.clone()
        },
    );
    assert!(matches!(again, Err(StoreError::Exists(_))), "{again:?}");
    let other_room = t
        .add_booking(
            1,
            &Booking {
                group_id: 8,
                ..b.clone()
            },
        )
        .unwrap();
    let earlier = t
        .add_booking(
            1,
            &Booking {
                day: "2030-01-07".into(),
                period_id: 2,
                ..b.clone()
            },
        )
        .unwrap();
    let key = |b: &Booking| (b.day.clone(), b.period_id, b.id);
    let week: Vec<_> = t
        .bookings(1, "2030-01-07", "2030-01-13")
        .unwrap()
        .iter()
        .map(key)
        .collect();
    assert_eq!(
        week,
        [
            ("2030-01-07".to_string(), 2, earlier.id),
            ("2030-01-08".to_string(), 1, added.id),
            ("2030-01-08".to_string(), 1, other_room.id),
            ("2030-01-08".to_string(), 2, 1),
        ],
        "by day, period and id"
    );
    // Both ends are in; a day outside is not.
    assert_eq!(t.bookings(1, "2030-01-08", "2030-01-08").unwrap().len(), 3);
    assert!(t
        .bookings(1, "2030-01-09", "2030-02-01")
        .unwrap()
        .is_empty());
    let dale = t.bookings(2, "2030-01-01", "2030-12-31").unwrap();
    assert_eq!(dale.len(), 1);
    assert_eq!(dale[0].booked_by, "dan");
    assert_eq!(t.booking(1, 1).unwrap().unwrap().note, "maths");
    assert!(!t.delete_booking(2, added.id).unwrap(), "another school's");
    assert!(t.delete_booking(1, added.id).unwrap());
    assert!(!t.delete_booking(1, added.id).unwrap(), "gone already");
    // Its slot is free again.
    t.add_booking(1, &b).unwrap();
}

fn check_scheduled(t: &dyn TimetableStore) {
    let restrictions = parse_settings(&serde_json::json!({"internet_blocked": true})).unwrap();
    let once = ScheduledLesson {
        id: 0,
        group_id: 7,
        period_id: 2,
        repeat: Repeat::Once {
            day: "2030-01-09".into(),
        },
        restrictions: restrictions.clone(),
        teacher: "amy".into(),
        created_at: 9,
        cancelled_at: None,
    };
    let s_once = t.add_scheduled_lesson(1, &once).unwrap();
    assert!(s_once.id > 2);
    let all = t.scheduled_lessons(1).unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(all[0].id, 1, "by id");
    assert_eq!(
        all[0].repeat,
        Repeat::Weekly {
            weekday: 0,
            from: "2030-01-01".into(),
            until: "2030-06-30".into()
        }
    );
    assert_eq!(all[1], s_once, "restrictions and all read back");
    assert_eq!(all[1].restrictions, restrictions);
    let weekly = t
        .add_scheduled_lesson(
            1,
            &ScheduledLesson {
                repeat: Repeat::Weekly {
                    weekday: 4,
                    from: "2030-02-01".into(),
                    until: "2030-03-01".into(),
                },
                ..once.clone()
            },
        )
        .unwrap();
    assert_eq!(t.scheduled_lessons(1).unwrap()[2], weekly);
    let dale = t.scheduled_lessons(2).unwrap();
    assert_eq!(dale.len(), 1);
    assert_eq!(
        dale[0].repeat,
        Repeat::Once {
            day: "2030-01-07".into()
        }
    );
    // Cancelled once; not by another school.
    assert!(!t.cancel_scheduled_lesson(2, weekly.id, 10).unwrap());
    assert!(t.cancel_scheduled_lesson(1, weekly.id, 10).unwrap());
    assert!(!t.cancel_scheduled_lesson(1, weekly.id, 11).unwrap());
    let cancelled = t.scheduled_lessons(1).unwrap();
    assert_eq!(cancelled[2].cancelled_at, Some(10));
    assert_eq!(cancelled[1].cancelled_at, None);

    // Skipped occurrences: once each, and only the school's own lessons.
    assert!(t.skip_occurrence(1, 1, "2030-01-14").unwrap());
    assert!(t.skip_occurrence(1, 1, "2030-01-07").unwrap());
    assert!(!t.skip_occurrence(1, 1, "2030-01-07").unwrap(), "once");
    assert!(t.skip_occurrence(1, s_once.id, "2030-01-09").unwrap());
    assert!(
        !t.skip_occurrence(2, 1, "2030-01-21").unwrap(),
        "Hill's lesson"
    );
    assert!(
        !t.skip_occurrence(1, 2, "2030-01-07").unwrap(),
        "Dale's lesson"
    );
    assert_eq!(
        t.skipped(1).unwrap(),
        [
            (1, "2030-01-07".to_string()),
            (1, "2030-01-14".to_string()),
            (s_once.id, "2030-01-09".to_string()),
        ]
    );
    assert!(t.skipped(2).unwrap().is_empty());
    // Dale's own lesson is Dale's to skip.
    assert!(t.skip_occurrence(2, 2, "2030-01-07").unwrap());
    assert_eq!(t.skipped(2).unwrap(), [(2, "2030-01-07".to_string())]);
}

fn run(schedule_id: i64, day: &str, starts_at: i64) -> Run {
    Run {
        schedule_id,
        day: day.into(),
        starts_at,
        ends_at: starts_at + 3000,
        lesson_id: None,
        outcome: "due".into(),
        finished: false,
    }
}

fn check_runs(t: &dyn TimetableStore) {
    let later = run(1, "2030-01-21", 300);
    let first = run(1, "2030-01-14", 200);
    let once = run(3, "2030-01-09", 100);
    assert!(t.claim_run(1, &later).unwrap());
    assert!(t.claim_run(1, &first).unwrap());
    assert!(t.claim_run(1, &once).unwrap());
    assert!(
        !t.claim_run(
            1,
            &Run {
                starts_at: 9,
                ..first.clone()
            }
        )
        .unwrap(),
        "claimed once"
    );
    assert!(
        !t.claim_run(2, &run(1, "2030-01-28", 1)).unwrap(),
        "Hill's lesson"
    );
    assert!(
        !t.claim_run(1, &run(2, "2030-01-07", 1)).unwrap(),
        "Dale's lesson"
    );
    assert_eq!(
        t.open_runs(1).unwrap(),
        [first.clone(), later.clone(), once.clone()],
        "by lesson and day, as claimed"
    );
    assert!(t.open_runs(2).unwrap().is_empty());
    let started = Run {
        lesson_id: Some(40),
        outcome: "started".into(),
        ..first.clone()
    };
    t.update_run(1, &started).unwrap();
    let ended = Run {
        outcome: "ended".into(),
        finished: true,
        ..once.clone()
    };
    t.update_run(1, &ended).unwrap();
    // Another school's update changes nothing.
    t.update_run(
        2,
        &Run {
            outcome: "clash".into(),
            finished: true,
            ..later.clone()
        },
    )
    .unwrap();
    assert_eq!(t.open_runs(1).unwrap(), [started.clone(), later.clone()]);
    assert_eq!(
        t.runs(1, "2030-01-01", "2030-01-14").unwrap(),
        [started.clone(), ended.clone()],
        "finished ones too, both ends in"
    );
    assert_eq!(t.runs(1, "2030-01-15", "2030-01-21").unwrap(), [later]);
    assert!(t.runs(2, "2030-01-01", "2030-12-31").unwrap().is_empty());
    // Dale claims its own.
    let dale = run(2, "2030-01-07", 50);
    assert!(t.claim_run(2, &dale).unwrap());
    assert_eq!(t.runs(2, "2030-01-07", "2030-01-07").unwrap(), [dale]);
}

fn check(t: &dyn TimetableStore) {
    check_periods(t);
    check_bookings(t);
    check_scheduled(t);
    check_runs(t);
}

#[test]
fn the_timetable_is_the_same_on_both_engines() {
    // SQLite.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    let lite = SqliteStore::open(&path).unwrap();
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch(ROWS)
        .unwrap();
    check(&lite);

    // PostgreSQL: the store makes its tables in the empty database.
    let pg = Pg::start();
    let (store, mut raw) = pg.store();
    raw.batch_execute(ROWS).unwrap();
    common::pg::move_sequences_on(
        &mut raw,
        &["schools", "periods", "room_bookings", "scheduled_lessons"],
    );
    check(&store);
}
