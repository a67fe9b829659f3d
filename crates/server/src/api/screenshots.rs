//! Full-size screenshots from the live view: taken on the device at its own
//! resolution, kept in the device's history (per school and device, pruned
//! by the store) and downloadable.
//!
//! Who may: the `live_view` right on a device the caller sees, and the
//! device's privacy rule for the caller's console session exactly as for
//! live pictures (an answer the student gave this session, `allow`, or the
//! bypass right under `deny`). Reading a kept screenshot needs the same
//! right, and either having taken it, the bypass right, or pictures of the
//! device allowed to this session now.

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use lectern_store::{NewScreenshot, ScreenshotInfo};

use super::auth::Authed;
use super::ApiError;
use crate::privacy::{self, Verdict, ViewDecision};
use crate::scope::Viewer;
use crate::state::Shared;

/// How long a device has to send a screenshot asked for.
const SCREENSHOT_WAIT: std::time::Duration = std::time::Duration::from_secs(15);

/// The privacy decision for this session about pictures of `id` now, if
/// one is made (`None`: the device is offline, its policy unknown, or its
/// student must be asked first, which the live view does).
fn decision(st: &Shared, auth: &Authed, viewer: &Viewer, id: i64) -> Option<ViewDecision> {
    match st
        .hub
        .view_verdict(id, viewer.session, auth.rights.bypass_privacy)?
    {
        Verdict::Decided(d) => Some(d),
        Verdict::Ask => None,
    }
}

/// `POST /devices/{id}/screenshots`: takes a full-size screenshot now, keeps
/// it in the device's history and says where to download it (201).
pub async fn take(
    State(st): State<Shared>,
    auth: Authed,
    Path(id): Path<i64>,
) -> Result<(StatusCode, Json<ScreenshotInfo>), ApiError> {
    auth.require(&st, "live_view").await?;
    let (device, _) = super::devices::find(&st, &auth, id).await?;
    let offline = || {
        ApiError::new(
            StatusCode::CONFLICT,
            format!("{} is offline", device.hostname),
        )
    };
    let viewer = Viewer::of(&st, &auth);
    if !st.hub.is_online(id) {
        return Err(offline());
    }
    let allowed = decision(&st, &auth, &viewer, id).filter(|d| d.allowed);
    let Some(decision) = allowed else {
        return Err(ApiError::forbidden(format!(
            "The privacy setting of {} does not let you take a picture of its screen now; open its live view first.",
            device.hostname
        )));
    };
    let Some((_, rx)) = st.hub.request_screenshot(id) else {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!(
                "{} cannot take a screenshot now (offline, too old an agent, or one is already being taken)",
                device.hostname
            ),
        ));
    };
    let Ok(Ok((width, height, jpeg))) = tokio::time::timeout(SCREENSHOT_WAIT, rx).await else {
        return Err(ApiError::new(
            StatusCode::GATEWAY_TIMEOUT,
            format!("{} did not send its screenshot in time", device.hostname),
        ));
    };
    let school = auth.session.user.school_id;
    let shot = NewScreenshot {
        device_id: id,
        taken_by: viewer.username.clone(),
        taken_at: lectern_store::now_ms(),
        width: u32::from(width),
        height: u32::from(height),
        jpeg,
    };
    let info = st.db(move |s| s.add_screenshot(school, &shot)).await?;
    privacy::audit(&st, &viewer, "screenshot", id, decision).await;
    Ok((StatusCode::CREATED, Json(info)))
}

/// `GET /devices/{id}/screenshots`: the device's kept screenshots, newest first.
pub async fn list(
    State(st): State<Shared>,
    auth: Authed,
    Path(id): Path<i64>,
) -> Result<Json<Vec<ScreenshotInfo>>, ApiError> {
    auth.require(&st, "live_view").await?;
    super::devices::find(&st, &auth, id).await?;
    let school = auth.session.user.school_id;
    let mut shots = st.db(move |s| s.screenshots(school, id)).await?;
    let viewer = Viewer::of(&st, &auth);
    if !may_read_all(&st, &auth, &viewer, id) {
        shots.retain(|s| s.taken_by == viewer.username);
    }
    Ok(Json(shots))
}

/// Whether the caller may read every kept screenshot of `id` (not only
/// their own): the bypass right, or pictures allowed to this session now.
fn may_read_all(st: &Shared, auth: &Authed, viewer: &Viewer, id: i64) -> bool {
    auth.rights.bypass_privacy || decision(st, auth, viewer, id).is_some_and(|d| d.allowed)
}

/// `GET /devices/{id}/screenshots/{shot}`: one kept screenshot as a JPEG
/// download.
pub async fn download(
    State(st): State<Shared>,
    auth: Authed,
    Path((id, shot)): Path<(i64, i64)>,
) -> Result<Response, ApiError> {
    auth.require(&st, "live_view").await?;
    let (device, _) = super::devices::find(&st, &auth, id).await?;
    let school = auth.session.user.school_id;
    let gone = || ApiError::not_found(format!("no screenshot {shot} of {}", device.hostname));
    let (info, jpeg) = st
        .db(move |s| s.screenshot(school, id, shot))
        .await?
        .ok_or_else(gone)?;
    let viewer = Viewer::of(&st, &auth);
    if info.taken_by != viewer.username && !may_read_all(&st, &auth, &viewer, id) {
        return Err(gone());
    }
    // The name is built from the id and time only: nothing a device reports.
    let disposition = format!(
        "attachment; filename=\"screenshot-{id}-{}.jpg\"",
        info.taken_at
    );
    Ok((
        [
            (header::CONTENT_TYPE, "image/jpeg".to_string()),
            (header::CACHE_CONTROL, "private, max-age=3600".to_string()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        jpeg,
    )
        .into_response())
}
