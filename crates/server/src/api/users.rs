//! Console accounts (the Users page), behind `access.manage`: list, create,
//! disable and enable, delete, role, password reset; and any signed-in
//! user's change of their own password.
//!
//! Acting on an account needs what creating it would ([`Granter::
//! may_create_account`]): whoever could otherwise lock out, re-enable or take
//! over an account holding more than they do would act beyond their rights.
//! Nobody disables, deletes, demotes or resets themselves, and the last
//! enabled administrator stays (the store refuses it in the same
//! transaction). Whatever takes access away ends the account's sessions and
//! closes its open console streams.
//!
//! [`Granter::may_create_account`]: lectern_policy::delegation::Granter::may_create_account

use std::net::IpAddr;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use lectern_store::accounts::{Account, AccountChange, AccountRefusal, Changed};
use lectern_store::Role;
use serde::Deserialize;
use serde_json::{json, Value};

use super::auth::Authed;
use super::delegation::{check, Change};
use super::{ApiError, JsonBody};
use crate::signout::{CLOSE_RIGHTS_CHANGED, CLOSE_SIGNED_OUT};
use crate::state::Shared;

/// The right every route here but [`change_own_password`] needs.
const RIGHT: &str = "access.manage";

/// Fewest characters in a password.
pub const MIN_PASSWORD: usize = 10;
/// Most characters in a password (Argon2's work grows with it).
pub const MAX_PASSWORD: usize = 256;

/// Why an account change was refused, sent as `"reason"`.
pub mod reason {
    /// Disabling, deleting, demoting or resetting one's own account.
    pub const OWN_ACCOUNT: &str = "own_account";
    /// The change would leave the school without an enabled administrator.
    pub const LAST_ADMIN: &str = "last_admin";
    /// The password breaks the rules (length, same as the user name).
    pub const WEAK_PASSWORD: &str = "weak_password";
    /// The current password given to change one's own was wrong.
    pub const WRONG_PASSWORD: &str = "wrong_password";
}

/// What is wrong with `password` for `username`, if anything.
pub fn password_problem(username: &str, password: &str) -> Option<String> {
    let n = password.chars().count();
    if n < MIN_PASSWORD {
        return Some(format!(
            "Passwords need at least {MIN_PASSWORD} characters."
        ));
    }
    if n > MAX_PASSWORD {
        return Some(format!("Passwords have at most {MAX_PASSWORD} characters."));
    }
    if password.trim().eq_ignore_ascii_case(username.trim()) {
        return Some("A password can't be the user name.".into());
    }
    None
}

fn weak(message: String) -> ApiError {
    ApiError::bad_request(message).with_reason(reason::WEAK_PASSWORD)
}

/// An account as the page lists it.
fn account_json(a: &Account) -> Value {
    json!({
        "username": a.username,
        "role": a.role,
        "disabled": a.disabled,
        "must_change_password": a.must_change_password,
        "last_sign_in": a.last_sign_in,
        "created_at": a.created_at,
        "source": "local",
    })
}

/// The audited state of an account (never its password).
fn audited(a: Option<&Account>) -> Value {
    a.map_or(Value::Null, |a| {
        json!({"role": a.role, "disabled": a.disabled, "must_change_password": a.must_change_password})
    })
}

/// `GET /users`.
pub async fn list(State(st): State<Shared>, auth: Authed) -> Result<Json<Value>, ApiError> {
    auth.require(&st, RIGHT).await?;
    let school = auth.school();
    let accounts = st.db(move |s| s.accounts().list_accounts(school)).await?;
    Ok(Json(Value::Array(
        accounts.iter().map(account_json).collect(),
    )))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    username: String,
    password: String,
    role: Role,
    /// The password is temporary: its owner must change it at first sign-in.
    #[serde(default)]
    must_change_password: bool,
}

/// `POST /users`: adds a console user.
pub async fn create(
    State(st): State<Shared>,
    auth: Authed,
    body: Result<JsonBody<NewUser>, ApiError>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    auth.require(&st, RIGHT).await?;
    let JsonBody(b) = body?;
    let name = b.username.trim().to_string();
    if name.is_empty()
        || name.chars().count() > 128
        || name.chars().any(|c| c.is_control() || c.is_whitespace())
    {
        return Err(ApiError::bad_request(
            "user names are 1 to 128 characters without spaces",
        ));
    }
    if let Some(problem) = password_problem(&name, &b.password) {
        return Err(weak(problem));
    }
    // Whoever creates an account knows its password: it may hold (through rules
    // already written for its name or its directory groups) nothing beyond its
    // creator's rights, and only administrators make administrators.
    let change = Change::begin(&st, &auth).await;
    let dirs = st.policies.of(auth.school()).directory_groups(&name);
    check(
        &st,
        &auth,
        &format!("user.create {name}"),
        change
            .granter()
            .may_create_account(&change.rules, &name, &dirs, b.role == Role::Admin),
    )
    .await?;
    let (school, n, p, role, must) = (
        auth.school(),
        name.clone(),
        b.password,
        b.role,
        b.must_change_password,
    );
    st.db(move |s| {
        let id = s.create_user(school, &n, &p, role)?;
        if must {
            // Just created, so found: the inner result is always Ok.
            let _found = s.accounts().set_password(school, &n, &p, true, None)?;
        }
        Ok(id)
    })
    .await?;
    let mut entry = st.audit_entry(
        school,
        auth.username(),
        auth.address.clone(),
        "user.create",
        "ok",
    );
    entry.detail = json!({"user": name, "before": null,
        "after": {"role": role, "disabled": false, "must_change_password": must}})
    .to_string();
    st.audit(entry).await;
    Ok((
        StatusCode::CREATED,
        Json(json!({"username": name, "role": role})),
    ))
}

/// What a change does to its own actor that is refused.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Action {
    Disable,
    Enable,
    Delete,
    Role(Role),
    Reset,
}

impl Action {
    fn audit_name(self) -> &'static str {
        match self {
            Action::Disable => "user.disable",
            Action::Enable => "user.enable",
            Action::Delete => "user.delete",
            Action::Role(_) => "user.role",
            Action::Reset => "user.password_reset",
        }
    }

    /// Whether the account's own user may not do this to it: nobody locks
    /// themselves out or lowers their own rights by mistake, and one's own
    /// password is changed with the current one (`PUT /me/password`).
    fn refused_on_self(self) -> bool {
        !matches!(self, Action::Enable | Action::Role(Role::Admin))
    }
}

/// Refuses (audited, 403 or 409 with a typed reason) a change the account
/// rules forbid.
async fn refuse(
    st: &Shared,
    auth: &Authed,
    what: &str,
    status: StatusCode,
    reason: &'static str,
    message: &str,
) -> ApiError {
    auth.deny(st, &format!("{what}: {reason}"), Vec::new())
        .await;
    ApiError::new(status, message).with_reason(reason)
}

/// Checks `auth` may do `action` to `username` and returns the account as it
/// stands, with the change lock held (dropped after the change).
async fn begin(
    st: &Shared,
    auth: &Authed,
    username: &str,
    action: Action,
) -> Result<(Change, Account), ApiError> {
    let what = format!("{} {username}", action.audit_name());
    if action.refused_on_self() && username == auth.username() {
        let message = match action {
            Action::Reset => {
                "Change your own password under \"Your password\", with your current one."
            }
            _ => "You can't disable, delete or demote your own account. Ask another administrator.",
        };
        return Err(refuse(
            st,
            auth,
            &what,
            StatusCode::FORBIDDEN,
            reason::OWN_ACCOUNT,
            message,
        )
        .await);
    }
    let change = Change::begin(st, auth).await;
    let (school, name) = (auth.school(), username.to_string());
    let Some(account) = st.db(move |s| s.accounts().account(school, &name)).await? else {
        return Err(ApiError::not_found("no such user"));
    };
    let admin = account.role == Role::Admin || action == Action::Role(Role::Admin);
    let dirs = st.policies.of(school).directory_groups(username);
    check(
        st,
        auth,
        &what,
        change
            .granter()
            .may_create_account(&change.rules, username, &dirs, admin),
    )
    .await?;
    Ok((change, account))
}

/// Answers a stored change: audits it, closes the streams it ends (with
/// `close`, keeping none), or turns a refusal into its typed error.
async fn finish(
    st: &Shared,
    auth: &Authed,
    username: &str,
    action: Action,
    changed: Changed,
    close: Option<u16>,
) -> Result<AccountChange, ApiError> {
    let what = format!("{} {username}", action.audit_name());
    let change = match changed {
        Ok(c) => c,
        Err(AccountRefusal::NotFound) => return Err(ApiError::not_found("no such user")),
        Err(AccountRefusal::LastAdmin) => {
            let message = "This is the last enabled administrator: make another one first.";
            return Err(refuse(
                st,
                auth,
                &what,
                StatusCode::CONFLICT,
                reason::LAST_ADMIN,
                message,
            )
            .await);
        }
    };
    let streams = close.map_or(0, |code| st.signouts.sign_out(username, None, code));
    let mut entry = auth.audit_entry(st, action.audit_name(), "ok");
    entry.detail = json!({
        "user": username,
        "before": audited(Some(&change.before)),
        "after": audited(change.after.as_ref()),
        "sessions_ended": change.sessions_ended,
        "streams_closed": streams,
    })
    .to_string();
    st.audit(entry).await;
    Ok(change)
}

/// The answer to a change: the account after it.
fn answer(change: &AccountChange) -> Json<Value> {
    Json(change.after.as_ref().map_or(Value::Null, account_json))
}

/// `POST /users/{username}/disable`: the account can no longer sign in; its
/// sessions end and its console streams close at once.
pub async fn disable(
    State(st): State<Shared>,
    auth: Authed,
    Path(username): Path<String>,
) -> Result<Json<Value>, ApiError> {
    auth.require(&st, RIGHT).await?;
    set_disabled(&st, &auth, &username, true).await
}

/// `POST /users/{username}/enable`.
pub async fn enable(
    State(st): State<Shared>,
    auth: Authed,
    Path(username): Path<String>,
) -> Result<Json<Value>, ApiError> {
    auth.require(&st, RIGHT).await?;
    set_disabled(&st, &auth, &username, false).await
}

async fn set_disabled(
    st: &Shared,
    auth: &Authed,
    username: &str,
    disabled: bool,
) -> Result<Json<Value>, ApiError> {
    let action = if disabled {
        Action::Disable
    } else {
        Action::Enable
    };
    let (_lock, _) = begin(st, auth, username, action).await?;
    let (school, name) = (auth.school(), username.to_string());
    let changed = st
        .db(move |s| s.accounts().set_disabled(school, &name, disabled))
        .await?;
    let close = disabled.then_some(CLOSE_SIGNED_OUT);
    let change = finish(st, auth, username, action, changed, close).await?;
    Ok(answer(&change))
}

/// `DELETE /users/{username}`: removes the account and its sessions. (Access
/// rules naming the user stay: they are the access page's to change.)
pub async fn delete(
    State(st): State<Shared>,
    auth: Authed,
    Path(username): Path<String>,
) -> Result<StatusCode, ApiError> {
    auth.require(&st, RIGHT).await?;
    let (_lock, _) = begin(&st, &auth, &username, Action::Delete).await?;
    let (school, name) = (auth.school(), username.clone());
    let changed = st
        .db(move |s| s.accounts().delete_account(school, &name))
        .await?;
    finish(
        &st,
        &auth,
        &username,
        Action::Delete,
        changed,
        Some(CLOSE_SIGNED_OUT),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleBody {
    role: Role,
}

/// `PUT /users/{username}/role` `{"role"}`: admin or teacher. Only
/// administrators make or unmake administrators. The account's open streams
/// reconnect with the new rights.
pub async fn set_role(
    State(st): State<Shared>,
    auth: Authed,
    Path(username): Path<String>,
    body: Result<JsonBody<RoleBody>, ApiError>,
) -> Result<Json<Value>, ApiError> {
    auth.require(&st, RIGHT).await?;
    let JsonBody(RoleBody { role }) = body?;
    let action = Action::Role(role);
    let (_lock, _) = begin(&st, &auth, &username, action).await?;
    let (school, name) = (auth.school(), username.clone());
    let changed = st
        .db(move |s| s.accounts().set_role(school, &name, role))
        .await?;
    let change = finish(
        &st,
        &auth,
        &username,
        action,
        changed,
        Some(CLOSE_RIGHTS_CHANGED),
    )
    .await?;
    Ok(answer(&change))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ResetBody {
    /// The temporary password; without one the server makes one up.
    #[serde(default)]
    password: Option<String>,
}

/// `POST /users/{username}/password` `{"password"?}`: sets a temporary
/// password, returned once, which must be changed at the next sign-in;
/// every session of the account ends.
pub async fn reset_password(
    State(st): State<Shared>,
    auth: Authed,
    Path(username): Path<String>,
    body: Result<JsonBody<ResetBody>, ApiError>,
) -> Result<Json<Value>, ApiError> {
    auth.require(&st, RIGHT).await?;
    let JsonBody(b) = body?;
    let password = b.password.unwrap_or_else(lectern_store::generated_password);
    if let Some(problem) = password_problem(&username, &password) {
        return Err(weak(problem));
    }
    let (_lock, _) = begin(&st, &auth, &username, Action::Reset).await?;
    let (school, name, p) = (auth.school(), username.clone(), password.clone());
    let changed = st
        .db(move |s| s.accounts().set_password(school, &name, &p, true, None))
        .await?;
    let change = finish(
        &st,
        &auth,
        &username,
        Action::Reset,
        changed,
        Some(CLOSE_SIGNED_OUT),
    )
    .await?;
    let mut out = answer(&change).0;
    out["temporary_password"] = password.into();
    Ok(Json(out))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OwnPassword {
    current_password: String,
    new_password: String,
}

/// `PUT /me/password` `{"current_password", "new_password"}`: any signed-in
/// user changes their own password (also when a reset requires it). Wrong
/// current passwords count towards the login limits; the user's other
/// sessions end, this one stays.
pub async fn change_own_password(
    State(st): State<Shared>,
    auth: Authed,
    body: Result<JsonBody<OwnPassword>, ApiError>,
) -> Result<StatusCode, ApiError> {
    let JsonBody(b) = body?;
    let ip: Option<IpAddr> = auth.address.as_deref().and_then(|a| a.parse().ok());
    let ip = ip.unwrap_or(IpAddr::from([0, 0, 0, 0]));
    let username = auth.username().to_string();
    if let Some(wait) = st.limiter.of(auth.school()).check(&username, ip) {
        st.audit(st.audit_entry(
            auth.school(),
            &username,
            auth.address.clone(),
            "user.password_change",
            "rate_limited",
        ))
        .await;
        return Err(ApiError::too_many(wait));
    }
    let (school, u, current) = (auth.school(), username.clone(), b.current_password.clone());
    if st
        .db(move |s| s.verify_password(school, &u, &current))
        .await?
        .is_none()
    {
        st.limiter.of(auth.school()).failed(&username, ip);
        st.audit(st.audit_entry(
            school,
            &username,
            auth.address.clone(),
            "user.password_change",
            "bad_credentials",
        ))
        .await;
        return Err(ApiError::forbidden("Your current password is not right.")
            .with_reason(reason::WRONG_PASSWORD));
    }
    st.limiter.of(auth.school()).succeeded(&username, ip);
    if let Some(problem) = password_problem(&username, &b.new_password) {
        return Err(weak(problem));
    }
    if b.new_password == b.current_password {
        return Err(weak(
            "Choose a password different from the current one.".into(),
        ));
    }
    let (u, p, token) = (username.clone(), b.new_password, auth.token.clone());
    let changed = st
        .db(move |s| {
            s.accounts()
                .set_password(school, &u, &p, false, Some(&token))
        })
        .await?;
    let Ok(change) = changed else {
        return Err(ApiError::not_found("no such user"));
    };
    let keep = st.hub.session_key(&auth.token);
    let streams = st
        .signouts
        .sign_out(&username, Some(keep), CLOSE_SIGNED_OUT);
    let mut entry = st.audit_entry(
        school,
        &username,
        auth.address.clone(),
        "user.password_change",
        "ok",
    );
    entry.detail = json!({
        "user": username,
        "before": audited(Some(&change.before)),
        "after": audited(change.after.as_ref()),
        "sessions_ended": change.sessions_ended,
        "streams_closed": streams,
    })
    .to_string();
    st.audit(entry).await;
    Ok(StatusCode::NO_CONTENT)
}
