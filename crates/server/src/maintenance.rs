//! Housekeeping while the server runs: scheduled reports, retention, and the
//! nightly settings backup.

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{Local, NaiveTime, TimeZone};
use lectern_store::Retained;

use crate::reports;
use crate::state::Shared;

const DAY_MS: i64 = 86_400_000;

/// Runs every minute until the server stops.
pub async fn run(st: Shared) {
    let started = lectern_store::now_ms();
    let mut last_retention = 0i64;
    let mut shutdown = st.shutdown.clone();
    loop {
        let now = lectern_store::now_ms();
        match st.db(|s| s.schools()).await {
            Ok(schools) => {
                for school in schools {
                    run_due_reports(&st, school.id, started, now).await;
                }
            }
            Err(e) => tracing::error!("reports: cannot list the schools: {}", e.message),
        }
        if now - last_retention >= 3_600_000 {
            last_retention = now;
            retention(&st, now).await;
        }
        if let Err(e) = nightly_backup(&st, now).await {
            tracing::error!("nightly backup failed: {e:#}");
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(60)) => {}
            _ = shutdown.changed() => return,
        }
    }
}

/// Runs every report of the school whose schedule came round by `now` (a
/// report never run counts from `started`), each with its creator's rights
/// as they are now.
pub async fn run_due_reports(st: &Shared, school: lectern_store::SchoolId, started: i64, now: i64) {
    let Ok(defs) = st.db(move |s| s.reports(school)).await else {
        return;
    };
    for r in defs {
        let Ok(sched) = reports::parse_schedule(&r.schedule) else {
            continue;
        };
        if reports::next_run(&sched, r.last_run.unwrap_or(started)) <= now {
            match reports::run(st, school, &r).await {
                Ok((file, rows)) => {
                    tracing::info!(report = r.id, %file, rows, "scheduled report written")
                }
                Err(e) => tracing::error!(report = r.id, "scheduled report failed: {e:#}"),
            }
        }
    }
}

/// [`retention_of`] for every school on the server, each by its own
/// settings.
pub async fn retention(st: &Shared, now: i64) {
    match st.db(|s| s.schools()).await {
        Ok(schools) => {
            for school in schools {
                retention_of(st, school.id, now).await;
            }
        }
        Err(e) => tracing::error!("retention: cannot list the schools: {}", e.message),
    }
}

/// Deletes a school's activity, violations (with their screenshots), audit
/// entries, chat messages and closed help requests past the school's
/// retention. Chat and hands are what students did, so they keep as long as
/// activity does.
pub async fn retention_of(st: &Shared, school: lectern_store::SchoolId, now: i64) {
    let c = st.settings.get(st, school);
    for (what, days) in [
        (Retained::Activity, c.activity_days),
        (Retained::Violations, c.violation_days),
        (Retained::Audit, c.audit_days),
        (Retained::Chat, c.activity_days),
        (Retained::HelpRequests, c.activity_days),
    ] {
        if days == 0 {
            continue; // 0: keep for ever
        }
        let cutoff = now - i64::from(days) * DAY_MS;
        match st.db(move |s| s.purge_before(school, what, cutoff)).await {
            Ok((n, ids)) => {
                for id in ids {
                    let _ = tokio::fs::remove_dir_all(
                        st.data_dir.join("evidence").join(id.to_string()),
                    )
                    .await;
                }
                if n > 0 {
                    tracing::info!(school, ?what, removed = n, "retention");
                }
            }
            Err(e) => tracing::error!(school, ?what, "retention failed: {}", e.message),
        }
    }
}

/// The backup folder: `backups/` in the data directory. A backup is of the
/// whole database (every school on this server), so the folder is the
/// server's, not a school's.
pub fn backup_dir(st: &Shared) -> PathBuf {
    st.data_dir.join("backups")
}

/// The folder of one school's own nightly copies on a server of several
/// schools: `backups/school-<id>/`.
pub fn school_backup_dir(st: &Shared, school: lectern_store::SchoolId) -> PathBuf {
    backup_dir(st).join(format!("school-{school}"))
}

/// Whether `name` is a backup file's name as [`new_backup_file`] makes them
/// (`lectern-YYYYMMDD-HHMMSS-NNN.db`, or `school-<id>-…` for a school's own
/// copy): letters, digits and `-` only before `.db`, so never a path (`/`,
/// `\`, `..`).
pub fn is_backup_name(name: &str) -> bool {
    name.len() <= 64
        && name
            .strip_prefix("lectern-")
            .or_else(|| name.strip_prefix("school-"))
            .and_then(|n| n.strip_suffix(".db"))
            .is_some_and(|stem| {
                !stem.is_empty() && stem.chars().all(|c| c.is_ascii_digit() || c == '-')
            })
}

/// Backup files in `dir`, oldest first.
pub fn backups(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(is_backup_name)
        })
        .collect();
    v.sort();
    v
}

/// Creates `path` as an empty file only its owner may read (mode 0600),
/// failing if it exists. A backup holds password hashes and all activity, so
/// it is private from the first byte; SQLite's `VACUUM INTO` then fills the
/// empty file and keeps its mode.
pub fn create_private(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map(drop)
}

/// Creates a new, empty, private backup file `dir/<prefix>-YYYYMMDD-HHMMSS-NNN.db`
/// with the first free number: two backups in the same second (the nightly
/// one and `lectern-server backup`, say) get different names instead of one
/// failing. Names sort in the order they were made.
pub fn new_backup_file(dir: &Path, prefix: &str) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let stamp = Local::now().format("%Y%m%d-%H%M%S");
    for n in 0..1000 {
        let path = dir.join(format!("{prefix}-{stamp}-{n:03}.db"));
        match create_private(&path) {
            Ok(()) => return Ok(path),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(anyhow::anyhow!("cannot create {}: {e}", path.display())),
        }
    }
    anyhow::bail!("1000 backups in one second in {}", dir.display())
}

/// Writes a snapshot of `store` into `path`, which [`create_private`] or
/// [`new_backup_file`] made; the empty file is removed if the backup fails.
pub fn write_backup(store: &dyn lectern_store::Store, path: &Path) -> anyhow::Result<()> {
    store.backup_to(path).map_err(|e| {
        let _ = std::fs::remove_file(path);
        anyhow::anyhow!("backup to {} failed: {e}", path.display())
    })
}

/// Writes `backups/lectern-YYYYMMDD-HHMMSS-NNN.db` and keeps the newest `keep`.
pub async fn backup_now(st: &Shared, keep: usize) -> anyhow::Result<PathBuf> {
    let dir = backup_dir(st);
    let path = new_backup_file(&dir, "lectern")?;
    let (store, dest) = (st.store.clone(), path.clone());
    tokio::task::spawn_blocking(move || write_backup(&*store, &dest)).await??;
    prune(&dir, keep);
    Ok(path)
}

/// Writes the nightly copies that are due (checked every minute). On a
/// server of one school, the whole database at that school's backup time,
/// as always: it is all that school's. On a server of several, each
/// school's own copy ([`lectern_store::Store::export_school`]) at that
/// school's time into its own folder (see [`school_backup_dir`]), which
/// its administrators list and download in the console; and the whole
/// database at the server configuration's time, for the operator.
pub async fn nightly_backup(st: &Shared, now: i64) -> anyhow::Result<()> {
    let schools = st
        .db(|s| s.schools())
        .await
        .map_err(|e| anyhow::anyhow!("cannot list the schools: {}", e.message))?;
    if let [only] = schools.as_slice() {
        let c = st.settings.get(st, only.id);
        return whole_backup_if_due(st, &c.backup_time, c.backup_keep, now).await;
    }
    for school in &schools {
        let c = st.settings.get(st, school.id);
        if let Err(e) = school_copy_if_due(st, school.id, &c.backup_time, c.backup_keep, now).await
        {
            tracing::error!(
                school = school.id,
                "nightly copy of the school failed: {e:#}"
            );
        }
    }
    let (time, keep) = (&st.config.backup_time, st.config.backup_keep);
    whole_backup_if_due(st, time, keep, now).await
}

/// When today's copy at `time` (`HH:MM`, local) is due, if `dir` holds none
/// written since; `None` when `time` is empty (no copies) or not yet.
fn due(time: &str, dir: &Path, now: i64) -> anyhow::Result<Option<i64>> {
    if time.is_empty() {
        return Ok(None);
    }
    let at = NaiveTime::parse_from_str(time, "%H:%M")
        .map_err(|_| anyhow::anyhow!("backup_time {time:?} is not HH:MM"))?;
    let today = Local::now().date_naive().and_time(at);
    let Some(due) = Local.from_local_datetime(&today).earliest() else {
        return Ok(None);
    };
    let due = due.timestamp_millis();
    if now < due {
        return Ok(None);
    }
    let last = backups(dir)
        .last()
        .and_then(|p| std::fs::metadata(p).ok())
        .and_then(|m| m.modified().ok())
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_millis() as i64);
    Ok((last < due).then_some(due))
}

async fn whole_backup_if_due(st: &Shared, time: &str, keep: usize, now: i64) -> anyhow::Result<()> {
    if due(time, &backup_dir(st), now)?.is_none() {
        return Ok(());
    }
    let path = backup_now(st, keep).await?;
    tracing::info!(path = %path.display(), "nightly backup written");
    Ok(())
}

async fn school_copy_if_due(
    st: &Shared,
    school: lectern_store::SchoolId,
    time: &str,
    keep: usize,
    now: i64,
) -> anyhow::Result<()> {
    let dir = school_backup_dir(st, school);
    if due(time, &dir, now)?.is_none() {
        return Ok(());
    }
    // The export starts as a whole snapshot and then drops the other
    // schools: it is written under a name the folder's list never shows
    // (nor `due` counts), and takes its own name only when finished. One
    // left by a crash goes at the next try.
    for stale in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
        if stale.file_name().to_string_lossy().starts_with(PARTIAL) {
            let _ = std::fs::remove_file(stale.path());
        }
    }
    let partial = new_backup_file(&dir, &format!("{PARTIAL}school-{school}"))?;
    let name = partial
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_prefix(PARTIAL))
        .map(str::to_owned)
        .ok_or_else(|| anyhow::anyhow!("unexpected name {}", partial.display()))?;
    let path = dir.join(name);
    let dest = partial.clone();
    if let Err(e) = st.db(move |s| s.export_school(school, &dest)).await {
        let _ = std::fs::remove_file(&partial);
        anyhow::bail!("export to {} failed: {}", partial.display(), e.message);
    }
    std::fs::rename(&partial, &path)?;
    prune(&dir, keep);
    tracing::info!(school, path = %path.display(), "nightly copy of the school written");
    Ok(())
}

/// The name prefix of a school's copy while it is written.
const PARTIAL: &str = "partial-";

/// Keeps the newest `keep` (at least one) copies in `dir`.
fn prune(dir: &Path, keep: usize) {
    let all = backups(dir);
    for old in all.iter().take(all.len().saturating_sub(keep.max(1))) {
        let _ = std::fs::remove_file(old);
    }
}
