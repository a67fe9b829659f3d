//! Safeguarding mail settings, alert rules and a test send (`/mail/...`).
//!
//! Rights: `settings.manage` for everything, checked before the body is
//! read. The SMTP password is write-only: never returned (`password_set`
//! only), never audited (only whether it changed), sealed at rest.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::auth::Authed;
use super::{reason, ApiError, JsonBody};
use crate::mail::config::{self, MailConfig, Rule};
use crate::mail::smtp::{self, Outgoing, SendError};
use crate::state::Shared;

const RIGHT: &str = "settings.manage";

/// `GET /mail/settings`: the settings with `password_set`, never the password.
pub async fn get_settings(State(st): State<Shared>, auth: Authed) -> Result<Json<Value>, ApiError> {
    auth.require(&st, RIGHT).await?;
    let school = auth.school();
    let row = st.db(move |s| s.mail().mail_settings(school)).await?;
    let Some(row) = row else {
        return Ok(Json(json!({"configured": false})));
    };
    let mut out = json!({
        "configured": true,
        "config": serde_json::from_str::<Value>(&row.config).unwrap_or_default(),
        "password_set": !row.password.is_empty(),
        "updated_by": row.updated_by,
        "updated_at": row.updated_at,
        "next_digest": (row.digest_next > 0).then_some(row.digest_next),
    });
    if let Err(e @ SendError::PasswordLost) = crate::mail::open_password(&st, school, &row.password)
    {
        out["password_error"] = json!(e.to_string());
    }
    Ok(Json(out))
}

/// A settings change; `password` absent keeps the stored one, "" removes it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettingsBody {
    config: MailConfig,
    #[serde(default)]
    password: Option<String>,
}

/// `PUT /mail/settings`: validates and stores the settings (audited as
/// `mail.settings` with before and after, never the password).
pub async fn put_settings(
    State(st): State<Shared>,
    auth: Authed,
    body: Result<JsonBody<SettingsBody>, ApiError>,
) -> Result<Json<Value>, ApiError> {
    auth.require(&st, RIGHT).await?;
    let JsonBody(mut b) = body?;
    b.config.validate().map_err(ApiError::bad_request)?;
    if let Some(p) = &b.password {
        if p.len() > config::MAX_PASSWORD {
            return Err(ApiError::bad_request(format!(
                "password: at most {} bytes (leave it out to keep the stored one)",
                config::MAX_PASSWORD
            )));
        }
        if !p.is_empty() && b.config.username.is_none() {
            return Err(ApiError::bad_request("password: give a username too"));
        }
    }
    let school = auth.school();
    // Sealed before it reaches the store: never plain text at rest.
    let sealed = match b.password.as_deref() {
        Some("") => Some(String::new()),
        Some(p) => Some(crate::mail::seal_password(&st, school, p).map_err(ApiError::internal)?),
        None => None,
    };
    let next = b
        .config
        .digest_time
        .as_deref()
        .and_then(config::digest_minute)
        .map_or(0, |m| crate::mail::next_digest(m, st.clock.now_ms()));
    let stored = serde_json::to_string(&b.config).map_err(ApiError::internal)?;
    let before = st
        .db(move |s| s.mail().mail_settings(school))
        .await?
        .map(|r| r.config);
    let (by, at) = (auth.username().to_string(), st.clock.now_ms());
    st.db(move |s| {
        s.mail()
            .set_mail_settings(school, &stored, sealed.as_deref(), next, &by, at)
    })
    .await?;
    let mut entry = st.audit_entry(
        school,
        auth.username(),
        auth.address.clone(),
        "mail.settings",
        "ok",
    );
    entry.detail = json!({
        "before": before.and_then(|b| serde_json::from_str::<Value>(&b).ok()),
        "after": b.config,
        "password_changed": b.password.is_some(),
    })
    .to_string();
    st.audit(entry).await;
    Ok(Json(
        json!({"ok": true, "next_digest": (next > 0).then_some(next)}),
    ))
}

/// `GET /mail/rules`.
pub async fn get_rules(State(st): State<Shared>, auth: Authed) -> Result<Json<Value>, ApiError> {
    auth.require(&st, RIGHT).await?;
    let rules = crate::mail::rules(&st, auth.school()).await;
    Ok(Json(json!({ "rules": rules })))
}

/// The rules, replacing the school's whole list.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RulesBody {
    rules: Vec<Rule>,
}

/// `PUT /mail/rules`: checks the rules as a whole (a 400 names the first
/// bad rule and nothing is saved), stores them, audits `mail.rules`.
pub async fn put_rules(
    State(st): State<Shared>,
    auth: Authed,
    body: Result<JsonBody<RulesBody>, ApiError>,
) -> Result<Json<Value>, ApiError> {
    auth.require(&st, RIGHT).await?;
    let JsonBody(b) = body?;
    let school = auth.school();
    let users: std::collections::HashSet<String> = st
        .db(move |s| s.list_users(school))
        .await?
        .into_iter()
        .map(|u| u.username)
        .collect();
    config::check_rules(&b.rules, |u| users.contains(u)).map_err(ApiError::bad_request)?;
    let rows = b
        .rules
        .iter()
        .map(serde_json::to_string)
        .collect::<Result<Vec<_>, _>>()
        .map_err(ApiError::internal)?;
    let before = crate::mail::rules(&st, school).await;
    let (by, at) = (auth.username().to_string(), st.clock.now_ms());
    st.db(move |s| s.mail().set_mail_rules(school, &rows, &by, at))
        .await?;
    let mut entry = st.audit_entry(
        school,
        auth.username(),
        auth.address.clone(),
        "mail.rules",
        "ok",
    );
    entry.detail = json!({"before": before, "after": b.rules}).to_string();
    st.audit(entry).await;
    Ok(Json(json!({"ok": true, "rules": b.rules.len()})))
}

/// Where to send a test message.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct TestBody {
    #[serde(default)]
    to: Option<String>,
}

/// `POST /mail/test {"to"}`: sends a test message with the stored
/// settings, at most [`crate::mail::TESTS_PER_MINUTE`] a minute per school.
/// Answers 200 with `ok`, or `ok: false` with the error's `kind` and a
/// sentence (wrong credentials, a refused certificate, no connection…).
pub async fn test(
    State(st): State<Shared>,
    auth: Authed,
    body: axum::body::Bytes,
) -> Result<Json<Value>, ApiError> {
    auth.require(&st, RIGHT).await?;
    let b: TestBody =
        serde_json::from_slice(&body).map_err(|e| ApiError::bad_request(format!("body: {e}")))?;
    let to = b.to.unwrap_or_default();
    config::check_address("to", &to).map_err(ApiError::bad_request)?;
    let school = auth.school();
    let loaded = match crate::mail::load(&st, school).await {
        Ok(Some(l)) => l,
        Ok(None) => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "Save the mail settings first.",
            ))
        }
        Err(e) => return Ok(Json(result(&st, &auth, &to, Err(e)).await)),
    };
    if !st.mail.take_test(school, st.clock.now_ms()) {
        auth.deny(&st, "mail test: rate limited", Vec::new()).await;
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "At most {} test messages a minute; try again shortly.",
                crate::mail::TESTS_PER_MINUTE
            ),
        )
        .with_reason(reason::RATE_LIMITED));
    }
    let m = Outgoing {
        to: to.clone(),
        subject: format!(
            "Lectern test message from {}",
            st.school_name(auth.school()).await
        ),
        body: format!(
            "This is a test message from Lectern, sent by {} from the Mail page.\n\
             Safeguarding alerts will come from this address.\n",
            auth.username()
        ),
    };
    let outcome = smtp::send(&loaded.config, &loaded.password, &m).await;
    Ok(Json(result(&st, &auth, &to, outcome).await))
}

/// Audits a test send and words its result.
async fn result(st: &Shared, auth: &Authed, to: &str, outcome: Result<(), SendError>) -> Value {
    let (status, answer) = match &outcome {
        Ok(()) => ("ok".to_string(), json!({"ok": true})),
        Err(e) => (
            format!("failed: {}", e.kind()),
            json!({"ok": false, "kind": e.kind(), "error": e.to_string()}),
        ),
    };
    let mut entry = auth.audit_entry(st, "mail.test", &status);
    entry.detail = json!({"to": to, "error": outcome.err().map(|e| e.to_string())}).to_string();
    st.audit(entry).await;
    answer
}
