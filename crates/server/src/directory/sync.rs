//! Running a sync (on demand, as a dry run, or on the school's schedule) and
//! a directory sign-in, with the store, policies and audit around them.

use lectern_store::{SchoolId, User};
use serde_json::{json, Value};

use super::ldap::{self, SignInRefusal, SignedIn};
use super::resolve::{plan, Plan};
use super::{DirConfig, DirError};
use crate::api::ApiError;
use crate::sealed::{self, Opened, SealError};
use crate::state::{AppState, Shared};

/// The actor audit entries of a sync carry besides the person who asked.
pub const SYNC_ACTOR: &str = "directory-sync";

/// The purpose a bind password is sealed for (with its school).
const BIND_PASSWORD: &str = "directory.bind_password";

/// The school's settings and bind password (decrypted), or `NotConfigured`,
/// or `BindPasswordLost` when the stored password does not decrypt here.
pub async fn load(st: &AppState, school: SchoolId) -> Result<(DirConfig, String), SyncError> {
    let (cfg, stored) = load_sealed(st, school).await?;
    let password = bind_password(st, school, &stored).await?;
    Ok((cfg, password))
}

/// The school's settings and its bind password as stored (sealed).
pub async fn load_sealed(
    st: &AppState,
    school: SchoolId,
) -> Result<(DirConfig, String), SyncError> {
    let row = st
        .db(move |s| s.directory_sync().directory_config(school))
        .await
        .map_err(SyncError::Store)?;
    let Some((json, stored)) = row else {
        return Err(SyncError::Dir(DirError::NotConfigured));
    };
    let cfg: DirConfig = serde_json::from_str(&json).map_err(|e| {
        SyncError::Store(ApiError::internal(format!(
            "stored directory settings: {e}"
        )))
    })?;
    Ok((cfg, stored))
}

/// Seals a bind password for storage in `school`'s row.
pub fn seal_bind_password(
    st: &AppState,
    school: SchoolId,
    password: &str,
) -> Result<String, ApiError> {
    sealed::seal(
        &st.data_dir,
        &sealed::context(school, BIND_PASSWORD),
        password,
    )
    .map_err(ApiError::internal)
}

/// Decrypts the stored bind password (empty: none set). A plain-text one
/// from before sealing is sealed in the store now, once.
pub async fn bind_password(
    st: &AppState,
    school: SchoolId,
    stored: &str,
) -> Result<String, SyncError> {
    if stored.is_empty() {
        return Ok(String::new());
    }
    let ctx = sealed::context(school, BIND_PASSWORD);
    match sealed::open(&st.data_dir, &ctx, stored) {
        Ok(Opened::Sealed(p)) => Ok(p),
        Ok(Opened::Plain(p)) => {
            reseal(st, school, stored, &p).await;
            Ok(p)
        }
        Err(SealError::Undecryptable) => Err(SyncError::Dir(DirError::BindPasswordLost)),
        Err(e @ SealError::KeyFile(_)) => Err(SyncError::Store(ApiError::internal(e))),
    }
}

/// Replaces a plain-text bind password by its sealed form. A failure only
/// logs: the password still works, and the next read tries again.
async fn reseal(st: &AppState, school: SchoolId, old: &str, plain: &str) {
    let new = match seal_bind_password(st, school, plain) {
        Ok(n) => n,
        Err(e) => {
            tracing::error!("could not seal the directory bind password: {}", e.message);
            return;
        }
    };
    let old = old.to_string();
    match st
        .db(move |s| {
            s.directory_sync()
                .reseal_directory_password(school, &old, &new)
        })
        .await
    {
        Ok(true) => tracing::info!(school, "directory bind password sealed at rest"),
        Ok(false) => {}
        Err(e) => tracing::error!("could not seal the directory bind password: {}", e.message),
    }
}

/// Stable `reason` of a refusal because the bind password must be entered again.
pub const BIND_PASSWORD_LOST: &str = "bind_password_lost";
/// What the Directory page says when the stored bind password does not decrypt.
pub const BIND_PASSWORD_LOST_SENTENCE: &str = "The bind password must be entered again: the stored one cannot be decrypted on this server (its secrets.key is not the one it was saved with, as after restoring a backup elsewhere).";

/// A sync that did not happen.
#[derive(Debug)]
pub enum SyncError {
    /// The directory's fault (or its settings'); nothing was changed.
    Dir(DirError),
    /// Ours.
    Store(ApiError),
}

impl From<SyncError> for ApiError {
    fn from(e: SyncError) -> Self {
        match e {
            SyncError::Dir(DirError::NotConfigured) => ApiError::new(
                axum::http::StatusCode::CONFLICT,
                "No directory is configured yet: an administrator sets it up on the Directory page.",
            ),
            SyncError::Dir(DirError::BindPasswordLost) => {
                ApiError::new(axum::http::StatusCode::CONFLICT, BIND_PASSWORD_LOST_SENTENCE)
                    .with_reason(BIND_PASSWORD_LOST)
            }
            SyncError::Dir(d) => ApiError::new(axum::http::StatusCode::BAD_GATEWAY, d.to_string()),
            SyncError::Store(e) => e,
        }
    }
}

/// Reads the directory and works out the plan; applies it unless `dry_run`.
/// The directory failing changes nothing. Each run is recorded.
pub async fn run(
    st: &Shared,
    school: SchoolId,
    trigger: &str,
    dry_run: bool,
) -> Result<(Plan, usize), SyncError> {
    let result = read_and_apply(st, school, dry_run).await;
    let (outcome, summary) = match &result {
        Ok((p, ended)) => ("ok", json!({"plan": summary(p), "sessions_ended": ended})),
        Err(SyncError::Dir(e)) => ("error", json!({"error": e.to_string()})),
        Err(SyncError::Store(e)) => ("error", json!({"error": e.message})),
    };
    let trig = trigger.to_string();
    let rec = summary.clone();
    // On the server's clock, which `scheduled` compares with.
    let at = st.clock.now_ms();
    if let Err(e) = st
        .db(move |s| {
            s.directory_sync()
                .record_directory_sync(school, at, &trig, dry_run, outcome, &rec)
        })
        .await
    {
        tracing::error!("could not record a directory sync: {}", e.message);
    }
    if !dry_run || outcome == "error" {
        let action = if dry_run {
            "directory.dry_run"
        } else {
            "directory.sync"
        };
        let mut entry = st.audit_entry(school, SYNC_ACTOR, None, action, outcome);
        entry.detail = format!("{trigger}: {summary}");
        st.audit(entry).await;
    }
    result
}

/// The plan as recorded: counts, and the first 200 names of each list.
pub fn summary(p: &Plan) -> Value {
    let cut = |v: &Vec<String>| v.iter().take(200).cloned().collect::<Vec<_>>();
    json!({
        "users": p.users,
        "groups": p.groups,
        "added": cut(&p.added), "added_total": p.added.len(),
        "removed": cut(&p.removed), "removed_total": p.removed.len(),
        "disabled": cut(&p.disabled), "disabled_total": p.disabled.len(),
        "enabled": cut(&p.enabled), "enabled_total": p.enabled.len(),
        "memberships": p.memberships.iter().take(200).collect::<Vec<_>>(),
        "memberships_total": p.memberships.len(),
        "local_names": cut(&p.local_names), "local_names_total": p.local_names.len(),
    })
}

async fn read_and_apply(
    st: &Shared,
    school: SchoolId,
    dry_run: bool,
) -> Result<(Plan, usize), SyncError> {
    let (cfg, password) = load(st, school).await?;
    let mut conn = ldap::Conn::open(&cfg, &password)
        .await
        .map_err(SyncError::Dir)?;
    let snap = conn.snapshot(&cfg).await.map_err(SyncError::Dir)?;
    // One change at a time with every other rights change (see delegation).
    let _lock = st.policies.of(school).lock_changes().await;
    let (accounts, current, local) = st
        .db(move |s| {
            let d = s.directory_sync();
            Ok((
                d.directory_accounts(school)?,
                s.directory(school)?,
                d.local_usernames(school)?,
            ))
        })
        .await
        .map_err(SyncError::Store)?;
    let (p, write) = plan(&snap, &accounts, &current, &local);
    if dry_run {
        return Ok((p, 0));
    }
    let ended = st
        .db(move |s| s.directory_sync().apply_directory_sync(school, &write))
        .await
        .map_err(SyncError::Store)?;
    // Their sessions are gone; their open consoles close now, not at the
    // next request.
    for name in p.disabled.iter().chain(&p.removed) {
        st.signouts
            .sign_out(name, None, crate::signout::CLOSE_SIGNED_OUT);
    }
    st.reload_policies(school).await.map_err(SyncError::Store)?;
    Ok((p, ended))
}

/// Whether a scheduled sync is due: the schedule is on and the last run
/// (of any kind but a dry run) is at least `sync_minutes` old.
pub fn due(cfg: &DirConfig, last_run: Option<i64>, now: i64) -> bool {
    cfg.sync_minutes > 0 && last_run.is_none_or(|t| now - t >= cfg.sync_minutes as i64 * 60_000)
}

/// Runs the school's scheduled syncs: checks once a minute, and at once
/// when the server's clock is moved (debug builds), answering the move
/// only after the check (and any sync it started) is done.
pub async fn timer(st: Shared) {
    let mut shutdown = st.shutdown.clone();
    let mut clock = st.clock.follow();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(std::time::Duration::from_secs(60)) => {}
            _ = clock.moved() => {}
            _ = shutdown.changed() => return,
        }
        let generation = st.clock.generation();
        match st.db(|s| s.schools()).await {
            Ok(schools) => {
                for school in schools {
                    scheduled(&st, school.id).await;
                }
            }
            Err(e) => tracing::error!("directory sync: cannot list the schools: {}", e.message),
        }
        clock.turn_done(generation);
    }
}

/// Runs a sync if one is due on the server's clock. A bind password that
/// no longer decrypts is recorded as a failed run, so the Directory page
/// says it must be entered again.
async fn scheduled(st: &Shared, school: SchoolId) {
    let Ok((cfg, _)) = load_sealed(st, school).await else {
        return;
    };
    let last = st
        .db(move |s| s.directory_sync().directory_syncs(school, 20))
        .await
        .ok()
        .and_then(|runs| runs.into_iter().find(|r| !r.dry_run).map(|r| r.at));
    if due(&cfg, last, st.clock.now_ms()) {
        if let Err(SyncError::Dir(e)) = run(st, school, "schedule", false).await {
            tracing::warn!("scheduled directory sync failed: {e}");
        }
    }
}

/// The outcome of trying the directory for a console sign-in.
pub enum DirectorySignIn {
    /// Signed in: the console user made or updated for them.
    Ok(User),
    /// No directory sign-in for this school (none configured, or no rules).
    NotOffered,
    /// Refused.
    Refused(SignInRefusal),
}

/// Tries a directory sign-in for a name no local account holds. On success
/// the console user is created or updated (role and groups from the
/// directory) and policies reloaded, so rules for its groups apply at once.
pub async fn sign_in(
    st: &Shared,
    school: SchoolId,
    username: &str,
    password: &str,
) -> DirectorySignIn {
    let (cfg, bind_password) = match load(st, school).await {
        Ok(c) => c,
        // Audited as a directory error: an administrator must act.
        Err(SyncError::Dir(e @ DirError::BindPasswordLost)) => {
            return DirectorySignIn::Refused(SignInRefusal::Directory(e))
        }
        Err(_) => return DirectorySignIn::NotOffered,
    };
    if cfg.signin.is_empty() {
        return DirectorySignIn::NotOffered;
    }
    let signed = match ldap::sign_in(&cfg, &bind_password, username, password).await {
        Ok(s) => s,
        Err(r) => return DirectorySignIn::Refused(r),
    };
    match save_sign_in(st, school, signed).await {
        Ok(u) => DirectorySignIn::Ok(u),
        Err(e) => DirectorySignIn::Refused(SignInRefusal::Directory(DirError::Search(e.message))),
    }
}

async fn save_sign_in(st: &Shared, school: SchoolId, s: SignedIn) -> Result<User, ApiError> {
    let _lock = st.policies.of(school).lock_changes().await;
    let user = st
        .db(move |db| {
            db.directory_sync()
                .directory_sign_in(school, &s.username, &s.dn, s.role, &s.groups)
        })
        .await?;
    drop(_lock);
    st.reload_policies(school).await?;
    Ok(user)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_schedule_is_due_after_its_interval_only() {
        let cfg = DirConfig {
            sync_minutes: 60,
            ..Default::default()
        };
        assert!(due(&cfg, None, 0));
        assert!(!due(&cfg, Some(0), 59 * 60_000));
        assert!(due(&cfg, Some(0), 60 * 60_000));
        let off = DirConfig::default();
        assert!(!due(&off, None, 0));
    }
}
