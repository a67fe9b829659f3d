//! Scheduled reports: definitions in the store, runs written as CSV files in
//! `reports/<id>/` of the data directory, and the schedule (`daily HH:MM` or
//! `weekly mon HH:MM`, local time).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use chrono::{Datelike, Local, NaiveTime, TimeZone, Weekday};
use lectern_store::{ActivityFilter, ReportDef, ViolationFilter};

use crate::state::Shared;

/// A CSV cell that a spreadsheet will not run as a formula: a leading `=`,
/// `+`, `-`, `@`, TAB or CR gets a `'` in front so the cell is read as text
/// (spreadsheets strip leading TAB/CR and then see a formula).
pub fn safe_cell(c: String) -> String {
    if c.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{c}")
    } else {
        c
    }
}

/// Kinds of report.
pub const KINDS: &[&str] = &[
    "top_violating_users",
    "websites_by_group",
    "activity_summary",
];

/// A parsed schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    /// `None`: every day.
    pub weekday: Option<Weekday>,
    /// Local time of day.
    pub time: NaiveTime,
}

/// Parses `daily HH:MM` or `weekly mon HH:MM`.
pub fn parse_schedule(s: &str) -> Result<Schedule, String> {
    let parts: Vec<&str> = s.split_whitespace().collect();
    let time = |t: &str| {
        NaiveTime::parse_from_str(t, "%H:%M").map_err(|_| format!("{t:?} is not a time like 00:05"))
    };
    match parts.as_slice() {
        ["daily", t] => Ok(Schedule {
            weekday: None,
            time: time(t)?,
        }),
        ["weekly", d, t] => Ok(Schedule {
            weekday: Some(
                d.parse::<Weekday>()
                    .map_err(|_| format!("{d:?} is not a day like mon"))?,
            ),
            time: time(t)?,
        }),
        _ => Err("schedule must be \"daily HH:MM\" or \"weekly mon HH:MM\"".into()),
    }
}

/// The first scheduled moment (ms) strictly after `after` (ms).
pub fn next_run(s: &Schedule, after: i64) -> i64 {
    let after_local = Local
        .timestamp_millis_opt(after)
        .single()
        .unwrap_or_else(Local::now);
    let mut day = after_local.date_naive();
    for _ in 0..16 {
        let due = s.weekday.is_none_or(|w| day.weekday() == w);
        if due {
            if let Some(t) = Local.from_local_datetime(&day.and_time(s.time)).earliest() {
                if t.timestamp_millis() > after {
                    return t.timestamp_millis();
                }
            }
        }
        day = day.succ_opt().unwrap_or(day);
    }
    after + 86_400_000
}

/// Checks a definition from the API.
pub fn validate(r: &ReportDef) -> Result<(), String> {
    if r.name.trim().is_empty() || r.name.chars().count() > 100 {
        return Err("name must be 1 to 100 characters".into());
    }
    if !KINDS.contains(&r.kind.as_str()) {
        return Err(format!("kind must be one of {KINDS:?}"));
    }
    if !(1..=366).contains(&r.days) {
        return Err("days must be 1 to 366".into());
    }
    parse_schedule(&r.schedule).map(drop)
}

/// Where a report's runs are kept.
pub fn dir(st: &Shared, id: i64) -> PathBuf {
    st.data_dir.join("reports").join(id.to_string())
}

/// Whether `name` is a run file name this module writes (nothing else is served).
pub fn is_run_file(name: &str) -> bool {
    name.len() == 19
        && name.ends_with(".csv")
        && name[..15]
            .chars()
            .enumerate()
            .all(|(i, c)| if i == 8 { c == '-' } else { c.is_ascii_digit() })
}

/// Runs a report now: writes its CSV and returns (file name, data rows).
pub async fn run(st: &Shared, r: &ReportDef) -> anyhow::Result<(String, usize)> {
    let now = lectern_store::now_ms();
    let since = now - i64::from(r.days) * 86_400_000;
    let school = st.school.id;
    // Devices in scope: all, or the group's members.
    let devices = st
        .db(move |s| s.list_devices(school))
        .await
        .map_err(|e| anyhow::anyhow!(e.message))?;
    let members: BTreeMap<i64, String> = devices
        .into_iter()
        .filter(|d| {
            r.group_id.is_none_or(|g| {
                let state: lectern_proto::DeviceState =
                    serde_json::from_str(&d.state_json).unwrap_or_default();
                st.device_groups(d.id, &d.hostname, state.user.as_deref())
                    .contains(&g)
            })
        })
        .map(|d| (d.id, d.hostname))
        .collect();
    let ids: Vec<i64> = members.keys().copied().collect();
    let (header, rows): (Vec<&str>, Vec<Vec<String>>) = match r.kind.as_str() {
        "top_violating_users" => {
            let f = ViolationFilter {
                devices: Some(ids),
                since: Some(since),
                limit: 10_000,
                ..Default::default()
            };
            let vs = st
                .db(move |s| s.violations(school, &f))
                .await
                .map_err(|e| anyhow::anyhow!(e.message))?;
            let mut by_user: BTreeMap<String, (usize, u8, BTreeSet<String>)> = BTreeMap::new();
            for v in vs {
                let e = by_user
                    .entry(v.user.unwrap_or_else(|| "(no user)".into()))
                    .or_default();
                e.0 += 1;
                e.1 = e.1.max(v.severity);
                e.2.insert(v.category);
            }
            let mut rows: Vec<_> = by_user.into_iter().collect();
            rows.sort_by(|a, b| {
                b.1 .0
                    .cmp(&a.1 .0)
                    .then(b.1 .1.cmp(&a.1 .1))
                    .then(a.0.cmp(&b.0))
            });
            (
                vec!["user", "violations", "highest_severity", "categories"],
                rows.into_iter()
                    .map(|(u, (n, sev, cats))| {
                        vec![
                            u,
                            n.to_string(),
                            sev.to_string(),
                            cats.into_iter().collect::<Vec<_>>().join(" "),
                        ]
                    })
                    .collect(),
            )
        }
        "websites_by_group" => {
            let f = ActivityFilter {
                devices: Some(ids),
                kind: Some("web".into()),
                since: Some(since),
                limit: 10_000,
                ..Default::default()
            };
            let evs = st
                .db(move |s| s.activity(school, &f))
                .await
                .map_err(|e| anyhow::anyhow!(e.message))?;
            let mut by_site: BTreeMap<String, (usize, BTreeSet<String>)> = BTreeMap::new();
            for e in evs {
                let host = e
                    .url
                    .as_deref()
                    .and_then(|u| url::Url::parse(u).ok())
                    .and_then(|u| u.host_str().map(str::to_string))
                    .unwrap_or_else(|| "(unknown)".into());
                let s = by_site.entry(host).or_default();
                s.0 += 1;
                if let Some(u) = e.user {
                    s.1.insert(u);
                }
            }
            let mut rows: Vec<_> = by_site.into_iter().collect();
            rows.sort_by(|a, b| b.1 .0.cmp(&a.1 .0).then(a.0.cmp(&b.0)));
            (
                vec!["website", "visits", "users"],
                rows.into_iter()
                    .map(|(h, (n, users))| {
                        vec![
                            h,
                            n.to_string(),
                            users.into_iter().collect::<Vec<_>>().join(" "),
                        ]
                    })
                    .collect(),
            )
        }
        _ => {
            let f = ActivityFilter {
                devices: Some(ids),
                since: Some(since),
                limit: 10_000,
                ..Default::default()
            };
            let evs = st
                .db(move |s| s.activity(school, &f))
                .await
                .map_err(|e| anyhow::anyhow!(e.message))?;
            let mut by_dev: BTreeMap<(String, String), usize> = BTreeMap::new();
            for e in evs {
                let host = members.get(&e.device_id).cloned().unwrap_or_default();
                *by_dev.entry((host, e.kind)).or_default() += 1;
            }
            (
                vec!["device", "kind", "events"],
                by_dev
                    .into_iter()
                    .map(|((d, k), n)| vec![d, k, n.to_string()])
                    .collect(),
            )
        }
    };
    let n = rows.len();
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(&header)?;
    for row in rows {
        let row: Vec<String> = row.into_iter().map(safe_cell).collect();
        w.write_record(&row)?;
    }
    let bytes = w.into_inner()?;
    let name = Local
        .timestamp_millis_opt(now)
        .single()
        .map(|t| t.format("%Y%m%d-%H%M%S.csv").to_string())
        .unwrap_or_else(|| format!("{now}.csv"));
    let dir = dir(st, r.id);
    let path = dir.join(&name);
    tokio::task::spawn_blocking(move || {
        std::fs::create_dir_all(&dir)?;
        std::fs::write(path, bytes)
    })
    .await??;
    let id = r.id;
    st.db(move |s| s.report_ran(school, id, now))
        .await
        .map_err(|e| anyhow::anyhow!(e.message))?;
    Ok((name, n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_parse_and_come_round() {
        let d = parse_schedule("daily 00:05").unwrap();
        let now = Local::now().timestamp_millis();
        let next = next_run(&d, now);
        assert!(next > now && next <= now + 86_400_000);
        assert_eq!(
            next_run(&d, next),
            next + 86_400_000,
            "a day later (no DST change here)"
        );
        let w = parse_schedule("weekly mon 07:30").unwrap();
        let n = next_run(&w, now);
        assert_eq!(
            Local.timestamp_millis_opt(n).unwrap().weekday(),
            Weekday::Mon
        );
        for bad in [
            "daily",
            "daily 25:00",
            "weekly xyz 10:00",
            "hourly 10:00",
            "",
        ] {
            assert!(parse_schedule(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn formula_cells_are_neutralised() {
        for bad in ["=1+1", "+1", "-1", "@SUM(A1)", "\t=1+1", "\r=1+1"] {
            assert_eq!(safe_cell(bad.into()), format!("'{bad}"), "{bad:?}");
        }
        for ok in ["plain", "1", "a=b", " x", ""] {
            assert_eq!(safe_cell(ok.into()), ok, "{ok:?}");
        }
    }

    #[test]
    fn only_our_run_files_are_served() {
        assert!(is_run_file("20261125-000500.csv"));
        for bad in [
            "../x.csv",
            "20261125-000500.csv.bak",
            "2026112a-000500.csv",
            "x",
        ] {
            assert!(!is_run_file(bad), "{bad}");
        }
    }
}
