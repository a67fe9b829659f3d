//! Scheduled reports: definitions in the store, runs written as CSV files in
//! `reports/<id>/` of the data directory, and the schedule (`daily HH:MM` or
//! `weekly mon HH:MM`, local time).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use chrono::{Datelike, Local, NaiveTime, TimeZone, Weekday};
use lectern_policy::access::{Access, Rights};
use lectern_store::{ReportDef, ReportKind, ReportScope, Role, SchoolId};

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

/// The rights a report's creator needs, beyond seeing the devices: every
/// kind is built from activity logs or violations.
pub fn required_features(_kind: ReportKind) -> &'static [&'static str] {
    &["reports.manage", "activity.view"]
}

/// Why a report did not run.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Its creator no longer exists, was never recorded, or lacks a right it
    /// needs now (`feature`).
    #[error("{message}")]
    NotAllowed {
        /// Why, for people.
        message: String,
        /// The right the creator lacks, if that is why.
        feature: Option<&'static str>,
    },
    /// Reading the data or writing the file failed.
    #[error(transparent)]
    Failed(#[from] anyhow::Error),
}

/// The rights of `r`'s creator as they are now (no console address: rules
/// for a computer do not apply to a scheduled run).
pub async fn creator_rights(
    st: &Shared,
    school: SchoolId,
    r: &ReportDef,
) -> Result<Rights, RunError> {
    let users = st
        .db(move |s| s.list_users(school))
        .await
        .map_err(|e| anyhow::anyhow!(e.message))?;
    let user = users
        .into_iter()
        .find(|u| !r.created_by.is_empty() && u.username.eq_ignore_ascii_case(&r.created_by))
        .ok_or_else(|| RunError::NotAllowed {
            message: format!(
                "report {} has no creator any more ({:?}); re-create it",
                r.id, r.created_by
            ),
            feature: None,
        })?;
    let rights = st
        .policies
        .of(school)
        .rights(&user.username, None, user.role == Role::Admin);
    if let Some(f) = required_features(r.kind).iter().find(|f| !rights.allows(f)) {
        let can_not = lectern_policy::access::refusal_phrase(f).unwrap_or("run it");
        return Err(RunError::NotAllowed {
            message: format!(
                "report {}'s creator {} can no longer {can_not}; re-create it",
                r.id, user.username
            ),
            feature: Some(f),
        });
    }
    Ok(rights)
}

/// The devices a report covers: those `rights` may see, narrowed to the
/// report's group. Ids with host names.
async fn devices_in_scope(
    st: &Shared,
    school: SchoolId,
    r: &ReportDef,
    rights: &Rights,
) -> anyhow::Result<BTreeMap<i64, String>> {
    let devices = st
        .db(move |s| s.list_devices(school))
        .await
        .map_err(|e| anyhow::anyhow!(e.message))?;
    Ok(devices
        .into_iter()
        .filter_map(|d| {
            let state: lectern_proto::DeviceState =
                serde_json::from_str(&d.state_json).unwrap_or_default();
            let groups = st.device_groups(school, d.id, &d.hostname, state.user.as_deref());
            let visible = rights.device_access(&groups) >= Access::View;
            let in_group = r.group_id.is_none_or(|g| groups.contains(&g));
            (visible && in_group).then_some((d.id, d.hostname))
        })
        .collect())
}

/// A report's header and rows.
type Table = (Vec<&'static str>, Vec<Vec<String>>);

async fn top_violating_users(
    st: &Shared,
    school: SchoolId,
    scope: ReportScope,
) -> anyhow::Result<Table> {
    let totals = st
        .db(move |s| s.violation_totals(school, &scope))
        .await
        .map_err(|e| anyhow::anyhow!(e.message))?;
    let mut by_user: BTreeMap<String, (u64, u8, BTreeSet<String>)> = BTreeMap::new();
    for t in totals {
        let e = by_user
            .entry(t.user.unwrap_or_else(|| "(no user)".into()))
            .or_default();
        e.0 += t.count;
        e.1 = e.1.max(t.max_severity);
        e.2.insert(t.category);
    }
    let mut rows: Vec<_> = by_user.into_iter().collect();
    rows.sort_by(|a, b| {
        b.1 .0
            .cmp(&a.1 .0)
            .then(b.1 .1.cmp(&a.1 .1))
            .then(a.0.cmp(&b.0))
    });
    Ok((
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
    ))
}

async fn websites(st: &Shared, school: SchoolId, scope: ReportScope) -> anyhow::Result<Table> {
    let totals = st
        .db(move |s| s.website_totals(school, &scope))
        .await
        .map_err(|e| anyhow::anyhow!(e.message))?;
    let mut by_site: BTreeMap<String, (u64, BTreeSet<String>)> = BTreeMap::new();
    for t in totals {
        let s = by_site
            .entry(t.host.unwrap_or_else(|| "(unknown)".into()))
            .or_default();
        s.0 += t.count;
        if let Some(u) = t.user {
            s.1.insert(u);
        }
    }
    let mut rows: Vec<_> = by_site.into_iter().collect();
    rows.sort_by(|a, b| b.1 .0.cmp(&a.1 .0).then(a.0.cmp(&b.0)));
    Ok((
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
    ))
}

async fn activity_summary(
    st: &Shared,
    school: SchoolId,
    scope: ReportScope,
    members: &BTreeMap<i64, String>,
) -> anyhow::Result<Table> {
    let totals = st
        .db(move |s| s.activity_totals(school, &scope))
        .await
        .map_err(|e| anyhow::anyhow!(e.message))?;
    let mut rows: Vec<(String, String, u64)> = totals
        .into_iter()
        .map(|t| {
            let host = members.get(&t.device_id).cloned().unwrap_or_default();
            (host, t.kind, t.count)
        })
        .collect();
    rows.sort();
    Ok((
        vec!["device", "kind", "events"],
        rows.into_iter()
            .map(|(d, k, n)| vec![d, k, n.to_string()])
            .collect(),
    ))
}

/// Runs a report now with its creator's current rights: it covers only the
/// devices they may see, and only if they still hold the rights its data
/// needs. Writes its CSV and returns (file name, data rows).
pub async fn run(
    st: &Shared,
    school: SchoolId,
    r: &ReportDef,
) -> Result<(String, usize), RunError> {
    let now = lectern_store::now_ms();
    let rights = match creator_rights(st, school, r).await {
        Ok(rights) => rights,
        Err(e) => {
            // Counted as run, so a schedule does not retry it every minute.
            let id = r.id;
            let _ = st.db(move |s| s.report_ran(school, id, now)).await;
            return Err(e);
        }
    };
    let members = devices_in_scope(st, school, r, &rights).await?;
    let scope = ReportScope {
        devices: members.keys().copied().collect(),
        since: now - i64::from(r.days) * 86_400_000,
        until: now + 1,
    };
    let (header, rows) = match r.kind {
        ReportKind::TopViolatingUsers => top_violating_users(st, school, scope).await?,
        ReportKind::WebsitesByGroup => websites(st, school, scope).await?,
        ReportKind::ActivitySummary => activity_summary(st, school, scope, &members).await?,
    };
    let name = write_run(st, r.id, now, &header, rows.clone()).await?;
    let id = r.id;
    st.db(move |s| s.report_ran(school, id, now))
        .await
        .map_err(|e| anyhow::anyhow!(e.message))?;
    Ok((name, rows.len()))
}

/// Writes a run's CSV file (formula-safe cells); returns its name.
async fn write_run(
    st: &Shared,
    id: i64,
    now: i64,
    header: &[&str],
    rows: Vec<Vec<String>>,
) -> anyhow::Result<String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(header)?;
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
    let dir = dir(st, id);
    let path = dir.join(&name);
    tokio::task::spawn_blocking(move || {
        std::fs::create_dir_all(&dir)?;
        std::fs::write(path, bytes)
    })
    .await??;
    Ok(name)
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
