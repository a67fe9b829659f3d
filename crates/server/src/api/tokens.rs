use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use lectern_store::{now_ms, EnrollmentToken};
use serde::Deserialize;
use serde_json::json;

use super::auth::Authed;
use super::{ApiError, JsonBody};
use crate::state::Shared;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    #[serde(default)]
    label: String,
    #[serde(default = "one")]
    uses: i64,
    #[serde(default = "day")]
    expires_hours: i64,
}

fn one() -> i64 {
    1
}
fn day() -> i64 {
    24
}

/// `POST /enrollment-tokens` (admins): a token that enrolls up to `uses`
/// devices within `expires_hours`. The token is shown only in this answer.
pub async fn create(
    State(st): State<Shared>,
    auth: Authed,
    body: Result<JsonBody<NewToken>, ApiError>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    auth.require(&st, "devices.manage").await?;
    let JsonBody(body) = body?;
    if !(1..=100_000).contains(&body.uses) {
        return Err(ApiError::bad_request("uses must be between 1 and 100000"));
    }
    if !(1..=24 * 366).contains(&body.expires_hours) {
        return Err(ApiError::bad_request(
            "expires_hours must be between 1 and 8784",
        ));
    }
    if body.label.chars().count() > 100 {
        return Err(ApiError::bad_request("label is longer than 100 characters"));
    }
    let (school, by) = (st.school.id, auth.username().to_string());
    let expires = now_ms() + body.expires_hours * 3_600_000;
    let label = body.label.clone();
    let (token, rec) = st
        .db(move |s| s.create_enrollment_token(school, &label, body.uses, expires, &by))
        .await?;
    let mut entry = st.audit_entry(
        auth.username(),
        auth.address.clone(),
        "enrollment_token.create",
        "ok",
    );
    entry.detail = format!("token {} ({:?}), {} uses", rec.id, rec.label, rec.uses_left);
    st.audit(entry).await;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "token": token, "record": rec })),
    ))
}

/// `GET /enrollment-tokens` (admins): tokens without their values.
pub async fn list(
    State(st): State<Shared>,
    auth: Authed,
) -> Result<Json<Vec<EnrollmentToken>>, ApiError> {
    auth.require(&st, "devices.manage").await?;
    let school = st.school.id;
    Ok(Json(
        st.db(move |s| s.list_enrollment_tokens(school)).await?,
    ))
}
