//! The school's code for registering devices (issue 16): shown, made anew
//! (the old one stops at once) and turned off by holders of
//! `devices.manage`, the right that makes enrollment tokens; keyed by the
//! caller's school, audited. See `lectern_proto::schoolcode` for the form
//! and `crate::gateway` for registering with one.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use lectern_proto::schoolcode;
use lectern_store::{now_ms, SchoolId};
use serde::Serialize;

use super::auth::Authed;
use super::ApiError;
use crate::state::Shared;

/// The right to see and change the code.
const RIGHT: &str = "devices.manage";

/// What `GET` and `POST /school/code` answer.
#[derive(Debug, Serialize)]
pub struct CodeView {
    /// The code as people type it (`7KQ2M-XH4PD`); null when the school has
    /// none (registration by code is off).
    code: Option<String>,
    /// Who made it.
    created_by: Option<String>,
    /// When (ms).
    created_at: Option<i64>,
}

async fn view(st: &Shared, school: SchoolId) -> Result<CodeView, ApiError> {
    let row = st.db(move |s| s.school_codes().school_code(school)).await?;
    Ok(match row {
        Some(r) => CodeView {
            code: Some(schoolcode::display(&r.code)),
            created_by: Some(r.created_by),
            created_at: Some(r.created_at),
        },
        None => CodeView {
            code: None,
            created_by: None,
            created_at: None,
        },
    })
}

async fn audit(st: &Shared, auth: &Authed, action: &str) {
    st.audit(lectern_store::NewAudit {
        school_id: auth.session.user.school_id,
        ..auth.audit_entry(st, action, "ok")
    })
    .await;
}

/// `GET /school/code`.
pub async fn get(State(st): State<Shared>, auth: Authed) -> Result<Json<CodeView>, ApiError> {
    auth.require(&st, RIGHT).await?;
    Ok(Json(view(&st, auth.session.user.school_id).await?))
}

/// `POST /school/code`: a new code, replacing the one before.
pub async fn rotate(State(st): State<Shared>, auth: Authed) -> Result<Json<CodeView>, ApiError> {
    auth.require(&st, RIGHT).await?;
    let school = auth.session.user.school_id;
    let by = auth.username().to_string();
    let made = st
        .db(move |s| crate::tenants::new_school_code(s, school, &by))
        .await?;
    if made.is_none() {
        return Err(ApiError::internal("no free school code after 8 tries"));
    }
    audit(&st, &auth, "school.code.rotate").await;
    Ok(Json(view(&st, school).await?))
}

/// `DELETE /school/code`: registration by code is off until a new one.
pub async fn delete(State(st): State<Shared>, auth: Authed) -> Result<StatusCode, ApiError> {
    auth.require(&st, RIGHT).await?;
    let school = auth.session.user.school_id;
    let had = st
        .db(move |s| s.school_codes().school_code(school))
        .await?
        .is_some();
    if !had {
        return Err(ApiError::not_found("This school has no school code."));
    }
    let by = auth.username().to_string();
    st.db(move |s| {
        s.school_codes()
            .set_school_code(school, None, &by, now_ms())
    })
    .await?;
    audit(&st, &auth, "school.code.delete").await;
    Ok(StatusCode::NO_CONTENT)
}
