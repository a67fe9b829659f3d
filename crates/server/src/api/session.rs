use std::net::SocketAddr;

use axum::extract::{ConnectInfo, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use lectern_store::{SchoolId, Session, User};
use serde::Deserialize;
use serde_json::{json, Value};

use super::auth::{Authed, COOKIE};
use super::{ApiError, JsonBody};
use crate::metrics::inc;
use crate::state::Shared;
use crate::state::SignInSchool;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Login {
    username: String,
    password: String,
    /// The school to sign in to (by id). Left out: the server's only
    /// school, or on a server of several, the one school with a local
    /// account of this name.
    #[serde(default)]
    school: Option<lectern_store::SchoolId>,
}

/// No school's id (ids start at 1): a sign-in whose school is not found
/// is checked against it, and fails as a wrong password does.
const NO_SCHOOL: lectern_store::SchoolId = 0;

/// `POST /session`: checks the password, sets the session cookie and returns
/// the token for scripts. Failed attempts are rate-limited and audited.
pub async fn login(
    State(st): State<Shared>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    JsonBody(body): JsonBody<Login>,
) -> Result<Response, ApiError> {
    let ip = addr.ip();
    let username: String = body.username.trim().chars().take(128).collect();
    // An unknown school, or none found, reads as a wrong password (the
    // password is still checked, against no account, so that the time
    // taken tells nothing): no one learns which schools a server holds,
    // or where a user name is, by trying.
    let found = st.sign_in_school(body.school, &username).await?;
    let school = match found {
        // Only a school the request named may not exist.
        SignInSchool::Named(id) if st.db(move |s| s.school(id)).await?.is_some() => id,
        SignInSchool::Only(id) | SignInSchool::ByName(Some(id)) => id,
        _ => NO_SCHOOL,
    };
    // A sign-in that found its school by the user name is limited by the
    // shared limiter alone, whichever school it found (and one naming a
    // school that does not exist, too): how it is limited must never
    // depend on whether the name was found. (So made-up school ids never
    // make a limiter each either.)
    let limited_by = match found {
        SignInSchool::ByName(_) => NO_SCHOOL,
        _ => school,
    };
    let limiter = st.limiter.of(limited_by);
    if let Some(wait) = limiter.check(&username, ip) {
        inc(&st.metrics.logins_limited);
        audit_failure(&st, school, &username, ip, "rate_limited");
        return Err(ApiError::too_many(wait));
    }
    let (u, p) = (username.clone(), body.password.clone());
    let user = match st.db(move |s| s.verify_password(school, &u, &p)).await? {
        Some(u) => Some(u),
        None if school == NO_SCHOOL => None,
        // Not a local account's password: perhaps a directory account's.
        None => super::directory::login(&st, school, &username, &body.password, ip).await?,
    };
    let Some(user) = user else {
        limiter.failed(&username, ip);
        inc(&st.metrics.logins_failed);
        audit_failure(&st, school, &username, ip, "bad_credentials");
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "wrong user name or password",
        ));
    };
    limiter.succeeded(&username, ip);
    inc(&st.metrics.logins_ok);
    // A school added while the server runs is read on its first sign-in.
    crate::state::ensure_school(&st, school).await?;
    let ttl = st.config.session_hours as i64 * 3_600_000;
    let u = user.clone();
    let (token, session) = st.db(move |s| s.create_session(&u, ttl)).await?;
    st.audit(st.audit_entry(school, &user.username, Some(ip.to_string()), "login", "ok"))
        .await;
    Ok(signed_in(&st, &token, &session))
}

/// A failed sign-in, in its school's audit log, written off the answer's
/// path (so that the time taken never tells a school was found); one
/// whose school was not found has no audit log to go to, so it is logged.
fn audit_failure(
    st: &Shared,
    school: lectern_store::SchoolId,
    username: &str,
    ip: std::net::IpAddr,
    outcome: &'static str,
) {
    if school == NO_SCHOOL {
        tracing::info!(%ip, username, outcome, "sign-in for no school found");
        return;
    }
    let entry = st.audit_entry(school, username, Some(ip.to_string()), "login", outcome);
    let st = st.clone();
    tokio::spawn(async move { st.audit(entry).await });
}

/// The answer to a sign-in or a switch: the session cookie, and the token
/// for scripts.
fn signed_in(st: &Shared, token: &str, session: &Session) -> Response {
    let cookie = format!(
        "{COOKIE}={token}; Path=/; HttpOnly; Secure; SameSite=Strict; Max-Age={}",
        st.config.session_hours as u64 * 3600
    );
    let body = json!({
        "token": token,
        "csrf_token": session.csrf_token,
        "expires_at": session.expires_at,
        "must_change_password": session.must_change_password,
        "user": { "username": session.user.username, "role": session.user.role },
        "school": session.user.school_id,
    });
    ([(header::SET_COOKIE, cookie)], Json(body)).into_response()
}

/// `GET /me/schools`: the schools the caller may act in (their own and any
/// granted to them), and which one this session acts in.
pub async fn my_schools(State(st): State<Shared>, auth: Authed) -> Result<Json<Value>, ApiError> {
    let user = auth.session.user.id;
    let list = st.db(move |s| s.grants().schools_of(user)).await?;
    let current = auth.school();
    let schools: Vec<Value> = list
        .iter()
        .map(|a| {
            json!({
                "id": a.school.id,
                "name": a.school.name,
                "role": a.role,
                "home": a.home,
                "current": a.school.id == current,
            })
        })
        .collect();
    Ok(Json(json!({ "schools": schools })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Switch {
    school: SchoolId,
}

/// `POST /session/school`: a session in another school the caller may act
/// in (see `GET /me/schools`), replacing this one. A school the caller has
/// no grant for answers exactly as one that does not exist.
pub async fn switch(
    State(st): State<Shared>,
    auth: Authed,
    JsonBody(body): JsonBody<Switch>,
) -> Result<Response, ApiError> {
    let user = auth.session.user.id;
    let list = st.db(move |s| s.grants().schools_of(user)).await?;
    let Some(access) = list.into_iter().find(|a| a.school.id == body.school) else {
        let mut entry = auth.audit_entry(&st, "session.switch", "denied");
        entry.detail = format!("school {}", body.school);
        st.audit(entry).await;
        return Err(ApiError::not_found("no such school"));
    };
    crate::state::ensure_school(&st, access.school.id).await?;
    let target = User {
        school_id: access.school.id,
        role: access.role,
        ..auth.session.user.clone()
    };
    let ttl = st.config.session_hours as i64 * 3_600_000;
    let old = auth.token.clone();
    let (token, session) = st
        .db(move |s| {
            let (token, _) = s.create_session(&target, ttl)?;
            s.delete_session(&old)?;
            // Read back: the name and role the new session acts with.
            Ok((token.clone(), s.session(&token)?))
        })
        .await?;
    let session = session.ok_or_else(|| ApiError::internal("the new session is not served"))?;
    let mut left = auth.audit_entry(&st, "session.switch", "ok");
    left.detail = format!("to {}", access.school.name);
    st.audit(left).await;
    let from = st.school_name(auth.school()).await;
    let mut arrived = st.audit_entry(
        access.school.id,
        &session.user.username,
        auth.address.clone(),
        "session.switch",
        "ok",
    );
    arrived.detail = format!("from {from}");
    st.audit(arrived).await;
    Ok(signed_in(&st, &token, &session))
}

/// `GET /session`: who is logged in, and the CSRF token the console needs.
pub async fn whoami(State(st): State<Shared>, auth: Authed) -> Json<serde_json::Value> {
    Json(json!({
        "user": { "username": auth.session.user.username, "role": auth.session.user.role },
        "csrf_token": auth.session.csrf_token,
        "expires_at": auth.session.expires_at,
        "must_change_password": auth.session.must_change_password,
        "school": st.school_name(auth.school()).await,
    }))
}

/// `DELETE /session`: logs out and clears the cookie.
pub async fn logout(State(st): State<Shared>, auth: Authed) -> Result<Response, ApiError> {
    let token = auth.token.clone();
    st.db(move |s| s.delete_session(&token)).await?;
    st.audit(auth.audit_entry(&st, "logout", "ok")).await;
    let cookie = format!("{COOKIE}=; Path=/; HttpOnly; Secure; SameSite=Strict; Max-Age=0");
    Ok(([(header::SET_COOKIE, cookie)], StatusCode::NO_CONTENT).into_response())
}
