//! Retrospective keyword scans: progress, start and cancel
//! (`keywords.manage`, checked before the body is read).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use lectern_store::retro::RetroScan;
use serde::{Deserialize, Serialize};

use super::auth::Authed;
use super::ApiError;
use crate::retro::{self, Offer};
use crate::state::Shared;

/// What the Keywords page shows about rescans.
#[derive(Serialize)]
pub struct Status {
    /// The queued or running job, if any.
    active: Option<RetroScan>,
    /// The newest jobs (at most 10), newest first.
    recent: Vec<RetroScan>,
    /// Changed terms not yet rescanned.
    offer: Option<OfferView>,
    /// The school's CPU share for rescans, percent.
    cpu_percent: u32,
    /// Days rescanned at once when terms change (0: offered).
    auto_days: u32,
    /// The default period of a rescan: the activity kept (days; 0 = for ever).
    activity_days: u32,
}

/// An offer without its terms' details.
#[derive(Serialize)]
pub struct OfferView {
    terms: usize,
    /// The first few terms, to name them.
    sample: Vec<String>,
    by: String,
    at: i64,
}

impl From<Offer> for OfferView {
    fn from(o: Offer) -> OfferView {
        OfferView {
            terms: o.library.len(),
            sample: o
                .library
                .terms
                .iter()
                .take(5)
                .map(|t| t.term.clone())
                .collect(),
            by: o.by,
            at: o.at,
        }
    }
}

/// `GET /keywords/rescan`.
pub async fn status(State(st): State<Shared>, auth: Authed) -> Result<Json<Status>, ApiError> {
    auth.require(&st, "keywords.manage").await?;
    let school = auth.school();
    let recent = st.db(move |s| s.retro().retro_scans(school, 10)).await?;
    let e = st.settings.get(&st, school);
    Ok(Json(Status {
        active: recent.iter().find(|s| s.state.is_active()).cloned(),
        recent,
        offer: retro::offer(&st, school).await?.map(OfferView::from),
        cpu_percent: e.retro_cpu_percent,
        auto_days: e.retro_auto_days,
        activity_days: e.activity_days,
    }))
}

/// What to rescan.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct StartBody {
    /// Days back from now (1–3650; default: the activity kept, or 365 when
    /// it is kept for ever). Never older than retention.
    #[serde(default)]
    days: Option<u32>,
    /// `all` (the whole library in force, the default) or `changed` (the
    /// offered changed terms).
    #[serde(default)]
    terms: Option<String>,
}

/// `POST /keywords/rescan {days?, terms?}`: 202 with the job; 409 while one
/// runs or when no changed terms are offered.
pub async fn start(
    State(st): State<Shared>,
    auth: Authed,
    body: Bytes,
) -> Result<(StatusCode, Json<RetroScan>), ApiError> {
    auth.require(&st, "keywords.manage").await?;
    let b: StartBody = if body.iter().all(u8::is_ascii_whitespace) {
        StartBody::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::bad_request(format!("bad rescan request: {e}")))?
    };
    let school = auth.school();
    let kept = st.settings.get(&st, school).activity_days;
    let days = b.days.unwrap_or(if kept > 0 { kept } else { 365 });
    if !(1..=retro::MAX_DAYS).contains(&days) {
        return Err(ApiError::bad_request(format!(
            "days must be from 1 to {}",
            retro::MAX_DAYS
        )));
    }
    let mut offered_at = None;
    let (terms, why) = match b.terms.as_deref().unwrap_or("all") {
        "all" => (
            crate::keywords::school_terms(&st, school),
            retro::reason::ON_DEMAND,
        ),
        "changed" => match retro::offer(&st, school).await? {
            Some(o) => {
                offered_at = Some(o.at);
                (o.library, retro::reason::CHANGED)
            }
            None => {
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    "No terms have changed since the last rescan of changed terms.",
                )
                .with_reason("nothing_offered"))
            }
        },
        other => {
            return Err(ApiError::bad_request(format!(
                "terms must be all or changed, not {other:?}"
            )))
        }
    };
    let scan = retro::start(
        &st,
        school,
        terms,
        days,
        why,
        auth.username(),
        auth.address.clone(),
    )
    .await?;
    // The offer is taken, unless terms changed again meanwhile (then it
    // stays, to be rescanned with them).
    if offered_at.is_some() && retro::offer(&st, school).await?.map(|o| o.at) == offered_at {
        retro::set_offer(&st, school, None).await?;
    }
    Ok((StatusCode::ACCEPTED, Json(scan)))
}

/// `POST /keywords/rescan/{id}/cancel`: the job as cancelled; 404 for
/// another school's or no job, 409 when it has already ended.
pub async fn cancel(
    State(st): State<Shared>,
    auth: Authed,
    Path(id): Path<i64>,
) -> Result<Json<RetroScan>, ApiError> {
    auth.require(&st, "keywords.manage").await?;
    let school = auth.school();
    if let Some(scan) =
        retro::cancel(&st, school, id, auth.username(), auth.address.clone()).await?
    {
        return Ok(Json(scan));
    }
    match st.db(move |s| s.retro().retro_scan(school, id)).await? {
        Some(_) => Err(ApiError::new(
            StatusCode::CONFLICT,
            format!("Rescan {id} has already ended."),
        )),
        None => Err(ApiError::not_found(format!("no rescan {id}"))),
    }
}
