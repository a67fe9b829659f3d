//! The directory's settings, test, sync and groups (`/directory/...`), and
//! the directory half of console sign-in.
//!
//! Rights: `directory.manage` reads the settings (never the bind password),
//! tests the stored connection, runs a sync or a dry run and reads past runs.
//! Changing the settings (the bind account, and which groups sign in as
//! administrators) and testing unsaved settings are for administrators only.

use std::net::IpAddr;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::Json;
use lectern_store::{SchoolId, User};
use serde::Deserialize;
use serde_json::{json, Value};

use super::auth::Authed;
use super::{ApiError, JsonBody};
use crate::directory::ldap::{Conn, SignInRefusal};
use crate::directory::sync::{self, DirectorySignIn};
use crate::directory::{DirConfig, DirError};
use crate::metrics::inc;
use crate::state::Shared;

/// Stable `reason` of a refusal only an administrator may pass.
pub const ADMIN_ONLY: &str = "admin_only";
/// Stable `reason` of a directory user whose groups may not sign in.
pub const DIRECTORY_NOT_ALLOWED: &str = "directory_not_allowed";
/// Longest bind password accepted.
const MAX_PASSWORD: usize = 1024;

/// Refuses (403, audited) anyone but an administrator.
async fn require_admin(st: &Shared, auth: &Authed, what: &str) -> Result<(), ApiError> {
    if auth.rights.all {
        return Ok(());
    }
    auth.deny(st, &format!("admin only: {what}"), Vec::new())
        .await;
    Err(ApiError::forbidden(
        "Only an administrator can change the directory connection. Ask your administrator.",
    )
    .with_reason(ADMIN_ONLY))
}

/// `GET /directory/config`: the settings, with `bind_password_set` instead
/// of the password.
pub async fn get_config(State(st): State<Shared>, auth: Authed) -> Result<Json<Value>, ApiError> {
    auth.require(&st, "directory.manage").await?;
    let school = auth.school();
    let row = st
        .db(move |s| s.directory_sync().directory_config(school))
        .await?;
    let Some((cfg, stored)) = row else {
        return Ok(Json(json!({"configured": false})));
    };
    let mut out = json!({
        "configured": true,
        "config": serde_json::from_str::<Value>(&cfg).unwrap_or_default(),
        "bind_password_set": !stored.is_empty(),
    });
    // Says so when the stored password no longer decrypts here.
    if let Err(sync::SyncError::Dir(DirError::BindPasswordLost)) =
        sync::bind_password(&st, school, &stored).await
    {
        out["bind_password_error"] = json!(sync::BIND_PASSWORD_LOST_SENTENCE);
    }
    Ok(Json(out))
}

/// A settings change: the settings, and the bind password (absent: keep the stored one).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigBody {
    config: DirConfig,
    #[serde(default)]
    bind_password: Option<String>,
}

fn check_body(b: &ConfigBody) -> Result<(), ApiError> {
    b.config.validate().map_err(ApiError::bad_request)?;
    if let Some(p) = &b.bind_password {
        if p.is_empty() || p.len() > MAX_PASSWORD {
            return Err(ApiError::bad_request(format!(
                "bind_password: 1 to {MAX_PASSWORD} bytes (leave it out to keep the stored one)"
            )));
        }
    }
    Ok(())
}

/// `PUT /directory/config` (administrators): validates and stores the settings.
pub async fn put_config(
    State(st): State<Shared>,
    auth: Authed,
    body: Result<JsonBody<ConfigBody>, ApiError>,
) -> Result<Json<Value>, ApiError> {
    auth.require(&st, "directory.manage").await?;
    require_admin(&st, &auth, "directory settings").await?;
    let JsonBody(b) = body?;
    check_body(&b)?;
    let school = auth.school();
    let cfg_json = serde_json::to_string(&b.config).map_err(ApiError::internal)?;
    let before = st
        .db(move |s| s.directory_sync().directory_config(school))
        .await?
        .map(|(c, _)| c);
    // Sealed before it reaches the store: never plain text at rest.
    let pw = match &b.bind_password {
        Some(p) => Some(sync::seal_bind_password(&st, school, p)?),
        None => None,
    };
    let stored = cfg_json.clone();
    st.db(move |s| {
        s.directory_sync()
            .set_directory_config(school, &stored, pw.as_deref())
    })
    .await?;
    let mut entry = st.audit_entry(
        school,
        auth.username(),
        auth.address.clone(),
        "directory.config",
        "ok",
    );
    // Never the password: only whether it changed.
    entry.detail = json!({
        "before": before.and_then(|b| serde_json::from_str::<Value>(&b).ok()),
        "after": b.config,
        "bind_password_changed": b.bind_password.is_some(),
    })
    .to_string();
    st.audit(entry).await;
    Ok(Json(json!({"ok": true})))
}

/// `POST /directory/test`: connects and binds; with a body (administrators)
/// the unsaved settings, else the stored ones. Answers what it found.
pub async fn test(
    State(st): State<Shared>,
    auth: Authed,
    body: axum::body::Bytes,
) -> Result<Json<Value>, ApiError> {
    auth.require(&st, "directory.manage").await?;
    let (cfg, password) = if body.iter().all(u8::is_ascii_whitespace) {
        sync::load(&st, auth.school()).await?
    } else {
        require_admin(&st, &auth, "test unsaved directory settings").await?;
        let b: ConfigBody = serde_json::from_slice(&body)
            .map_err(|e| ApiError::bad_request(format!("settings: {e}")))?;
        check_body(&b)?;
        let pw = match b.bind_password {
            Some(p) => p,
            None => match sync::load(&st, auth.school()).await {
                Ok((_, p)) => p,
                Err(e @ sync::SyncError::Dir(DirError::BindPasswordLost)) => return Err(e.into()),
                Err(_) => String::new(),
            },
        };
        (b.config, pw)
    };
    let result = async {
        let mut conn = Conn::open(&cfg, &password).await?;
        conn.snapshot(&cfg).await
    }
    .await;
    match result {
        Ok(snap) => Ok(Json(json!({
            "ok": true,
            "users": snap.users.len(),
            "groups": snap.groups.len(),
        }))),
        Err(e) => Ok(Json(json!({"ok": false, "error": e.to_string()}))),
    }
}

/// `?dry_run=`
#[derive(Deserialize, Default)]
pub struct SyncQuery {
    #[serde(default)]
    dry_run: Option<String>,
}

/// `POST /directory/sync?dry_run=true|false`: a sync now, or what it would change.
pub async fn sync_now(
    State(st): State<Shared>,
    auth: Authed,
    q: Result<Query<SyncQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    auth.require(&st, "directory.manage").await?;
    let q = q.map(|Query(q)| q).unwrap_or_default();
    let dry_run = match q.dry_run.as_deref() {
        None | Some("false") | Some("0") => false,
        Some("true") | Some("1") => true,
        Some(_) => return Err(ApiError::bad_request("dry_run is true or false")),
    };
    let trigger = format!("manual by {}", auth.username());
    let (plan, ended) = sync::run(&st, auth.school(), &trigger, dry_run).await?;
    Ok(Json(json!({
        "dry_run": dry_run,
        "plan": sync::summary(&plan),
        "sessions_ended": ended,
    })))
}

/// `GET /directory/sync`: the last 20 runs, newest first.
pub async fn runs(State(st): State<Shared>, auth: Authed) -> Result<Json<Value>, ApiError> {
    auth.require(&st, "directory.manage").await?;
    let school = auth.school();
    let runs = st
        .db(move |s| s.directory_sync().directory_syncs(school, 20))
        .await?;
    Ok(Json(json!(runs)))
}

/// `GET /directory/groups`: directory group names to offer in the group and
/// access editors: those of the last sync and any typed in for users.
pub async fn groups(State(st): State<Shared>, auth: Authed) -> Result<Json<Value>, ApiError> {
    let may = ["groups.view", "access.manage", "directory.manage"]
        .iter()
        .any(|f| auth.rights.allows(f));
    if !may {
        auth.require(&st, "groups.view").await?;
    }
    let school = auth.school();
    let (synced, typed) = st
        .db(move |s| {
            Ok((
                s.directory_sync().directory_group_names(school)?,
                s.directory(school)?,
            ))
        })
        .await?;
    let mut names: std::collections::BTreeMap<String, String> = Default::default();
    for n in synced
        .into_iter()
        .chain(typed.into_iter().flat_map(|(_, g)| g))
    {
        names.entry(n.to_lowercase()).or_insert(n);
    }
    Ok(Json(json!(names.into_values().collect::<Vec<_>>())))
}

/// The directory half of `POST /session`, for a name and password no local
/// account accepted. `Ok(None)`: not a directory sign-in either (the caller
/// answers "wrong user name or password" and counts the failure). A user
/// the directory knows but no rule lets in, or a directory that cannot
/// answer, is an error here, audited.
pub async fn login(
    st: &Shared,
    school: SchoolId,
    username: &str,
    password: &str,
    ip: IpAddr,
) -> Result<Option<User>, ApiError> {
    let name = username.to_string();
    // A local account's name is never signed in by the directory: the
    // break-glass administrator cannot be taken over by a directory entry.
    if st
        .db(move |s| s.directory_sync().local_user_named(school, &name))
        .await?
    {
        return Ok(None);
    }
    match sync::sign_in(st, school, username, password).await {
        DirectorySignIn::Ok(u) => Ok(Some(u)),
        DirectorySignIn::NotOffered | DirectorySignIn::Refused(SignInRefusal::BadCredentials) => {
            Ok(None)
        }
        DirectorySignIn::Refused(SignInRefusal::NotAllowed { username }) => {
            st.limiter.of(school).failed(&username, ip);
            inc(&st.metrics.logins_failed);
            let mut entry = st.audit_entry(
                school,
                &username,
                Some(ip.to_string()),
                "login",
                "not_allowed",
            );
            entry.detail = "directory account in no group that may sign in".into();
            st.audit(entry).await;
            Err(ApiError::forbidden(
                "Your directory account may not sign in to Lectern. Ask your administrator.",
            )
            .with_reason(DIRECTORY_NOT_ALLOWED))
        }
        DirectorySignIn::Refused(SignInRefusal::Directory(e)) => {
            let mut entry = st.audit_entry(
                school,
                username,
                Some(ip.to_string()),
                "login",
                "directory_error",
            );
            entry.detail = e.to_string();
            st.audit(entry).await;
            tracing::warn!("directory sign-in failed: {e}");
            let msg = match e {
                DirError::NotConfigured => "No directory is configured.".to_string(),
                _ => "The directory can't be reached to check your password; try again later. Local accounts still sign in.".to_string(),
            };
            Err(ApiError::new(StatusCode::SERVICE_UNAVAILABLE, msg))
        }
    }
}
