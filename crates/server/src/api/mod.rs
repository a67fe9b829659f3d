//! The REST API under `/api/v1`, described by `openapi.json`.

mod access;
mod activity;
mod audit;
mod aup;
pub mod auth;
mod broadcasts;
mod classes;
pub(crate) mod commands;
mod control;
mod dashboard;
mod delegation;
pub(crate) mod devadmin;
mod devices;
pub(crate) mod directory;
mod exams;
mod files;
mod groups;
mod inventory;
pub mod kwpolicy;
mod lessons;
pub(crate) mod look;
pub(crate) mod mail;
mod people;
mod power;
mod reports;
mod requests;
mod retro;
mod review;
pub mod roster;
mod safety;
mod school_settings;
mod schoolcode;
mod screenshots;
mod session;
mod stream;
mod students;
mod timetable;
mod tokens;
mod users;

pub use exams::timer as exam_timer;
pub use lessons::timer as lesson_timer;
pub use roster::folder_timer as roster_timer;

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};

use crate::state::Shared;

/// The OpenAPI 3.1 document for this API.
pub const OPENAPI: &str = include_str!("openapi.json");

/// Routes under `/api/v1`.
pub fn router() -> Router<Shared> {
    Router::new()
        .route(
            "/session",
            post(session::login)
                .get(session::whoami)
                .delete(session::logout),
        )
        .route("/session/school", post(session::switch))
        .route("/me/schools", get(session::my_schools))
        .route("/devices", get(devices::list))
        .route(
            "/devices/{id}",
            get(devices::get_one).delete(devices::revoke),
        )
        .route("/commands", post(commands::create))
        .route("/commands/{id}", get(commands::get_one))
        .route("/enrollment-tokens", post(tokens::create).get(tokens::list))
        .route(
            "/enrollment-tokens/{id}",
            axum::routing::delete(tokens::revoke),
        )
        .route("/devices/{id}/rename", post(devadmin::rename))
        .route("/devices/{id}/delete", post(devadmin::delete))
        .route("/availability", get(devadmin::availability))
        .route(
            "/availability/settings",
            get(devadmin::get_settings).put(devadmin::put_settings),
        )
        .route("/public/availability", get(devadmin::public))
        .route("/audit", get(audit::list))
        .route(
            "/school/settings",
            get(school_settings::get).put(school_settings::put),
        )
        .route("/backups", get(school_settings::list))
        .route("/backups/{file}", get(school_settings::download))
        .route("/school/export", get(school_settings::export))
        .route("/activity", get(activity::list))
        .route("/violations", get(safety::list))
        .route("/safeguarding/summary", get(dashboard::summary))
        .route("/violations/{id}", get(safety::get_one))
        .route("/violations/{id}/screenshots/{n}", get(safety::screenshot))
        .route(
            "/keywords",
            get(kwpolicy::library).put(kwpolicy::put_library),
        )
        .route("/violations/review", post(review::change_many))
        .route("/violations/assignees", get(review::assignees))
        .route(
            "/violations/{id}/review",
            get(review::get_case).post(review::change_one),
        )
        .route(
            "/keywords/csv",
            get(kwpolicy::library_csv).put(kwpolicy::put_library_csv),
        )
        .route(
            "/keywords/libraries",
            get(kwpolicy::list).post(kwpolicy::create),
        )
        .route("/keywords/libraries/import", post(kwpolicy::import))
        .route(
            "/keywords/libraries/{id}",
            get(kwpolicy::get_one)
                .put(kwpolicy::update)
                .delete(kwpolicy::delete),
        )
        .route(
            "/keywords/libraries/{id}/csv",
            get(kwpolicy::export).put(kwpolicy::put_csv),
        )
        .route(
            "/keywords/assignments",
            axum::routing::put(kwpolicy::assign),
        )
        .route(
            "/keywords/assignments/{id}",
            axum::routing::delete(kwpolicy::unassign),
        )
        .route("/keywords/rescan", get(retro::status).post(retro::start))
        .route("/keywords/rescan/{id}/cancel", post(retro::cancel))
        .route("/reports", get(reports::list).post(reports::create))
        .route("/reports/{id}", axum::routing::delete(reports::delete))
        .route("/reports/{id}/run", post(reports::run))
        .route("/reports/{id}/runs", get(reports::runs))
        .route("/reports/{id}/runs/{file}", get(reports::download))
        .route("/devices/{id}/view", post(devices::view))
        .route(
            "/devices/{id}/screenshots",
            get(screenshots::list).post(screenshots::take),
        )
        .route(
            "/devices/{id}/screenshots/{shot}",
            get(screenshots::download),
        )
        .route("/devices/{id}/accept-name", post(devices::accept_name))
        .route("/settings/catalogue", get(groups::catalogue))
        .route("/groups", get(groups::list).post(groups::create))
        .route(
            "/groups/{id}",
            get(groups::get_one)
                .put(groups::update)
                .delete(groups::delete),
        )
        .route("/groups/preview", post(groups::preview))
        .route("/groups/{id}/members", get(groups::members))
        .route("/resultant", get(groups::resultant))
        .route("/directory/users", get(groups::directory))
        .route("/directory/users/{username}", put(groups::set_directory))
        .route("/directory/import", post(groups::import))
        .route(
            "/directory/config",
            get(directory::get_config).put(directory::put_config),
        )
        .route("/directory/test", post(directory::test))
        .route(
            "/directory/sync",
            get(directory::runs).post(directory::sync_now),
        )
        .route("/directory/groups", get(directory::groups))
        .route(
            "/mail/settings",
            get(mail::get_settings).put(mail::put_settings),
        )
        .route("/mail/rules", get(mail::get_rules).put(mail::put_rules))
        .route("/mail/test", post(mail::test))
        .route("/people", get(people::list).post(people::create))
        .route("/people/{id}", put(people::update).delete(people::delete))
        .route(
            "/people/{id}/sign-in",
            get(students::get)
                .put(students::put)
                .delete(students::delete),
        )
        .route("/sign-in/pictures", get(students::pictures))
        .route("/students", get(students::list))
        .route("/access-rules", get(access::list).post(access::create))
        .route("/access-rules/features", get(access::features))
        .route(
            "/access-rules/{id}",
            put(access::update).delete(access::delete),
        )
        .route("/users", get(users::list).post(users::create))
        .route("/users/{username}", axum::routing::delete(users::delete))
        .route("/users/{username}/disable", post(users::disable))
        .route("/users/{username}/enable", post(users::enable))
        .route("/users/{username}/role", put(users::set_role))
        .route("/users/{username}/password", post(users::reset_password))
        .route("/me", get(access::me))
        .route("/me/password", put(users::change_own_password))
        .route(
            "/me/preferences",
            get(classes::get_preferences).put(classes::put_preferences),
        )
        .route("/classes", get(classes::tree))
        .route("/lessons", get(lessons::list).post(lessons::create))
        .route("/broadcasts", get(broadcasts::list).post(broadcasts::start))
        .route("/broadcasts/{id}", axum::routing::delete(broadcasts::stop))
        .route("/lessons/{id}/end", post(lessons::end))
        .route("/stream", get(stream::console_stream))
        .route("/requests", get(requests::list))
        .route("/requests/{id}/answer", post(requests::answer))
        .route("/requests/{id}/dismiss", post(requests::dismiss))
        .route("/chat", get(requests::history).post(requests::send))
        .route(
            "/school/code",
            get(schoolcode::get)
                .post(schoolcode::rotate)
                .delete(schoolcode::delete),
        )
        .route("/school/look", get(look::get).put(look::put_name))
        .route(
            "/school/look/logo",
            get(look::get_logo)
                .put(look::put_logo)
                .delete(look::delete_logo),
        )
        .route("/files", get(files::list).post(files::upload))
        .route(
            "/files/limits",
            get(files::get_limits).put(files::put_limits),
        )
        .route("/files/{id}", get(files::get_one))
        .route("/collections", get(files::collections).post(files::collect))
        .route("/collections/{id}", get(files::collection))
        .route("/collections/{id}/zip", get(files::zip))
        .route("/exams", get(exams::list).post(exams::create))
        .route("/exams/{id}", get(exams::get_one))
        .route("/exams/{id}/paper", put(exams::paper))
        .route("/exams/{id}/start", post(exams::start))
        .route("/exams/{id}/end", post(exams::end))
        .route("/exams/{id}/zip", get(exams::zip))
        .route(
            "/openapi.json",
            get(|| async { ([(header::CONTENT_TYPE, "application/json")], OPENAPI) }),
        )
        .route("/aup", get(aup::list).post(aup::publish))
        .route("/aup/acceptances", get(aup::acceptances))
        .route("/aup/acceptances.csv", get(aup::csv))
        .route("/aup/pending", get(aup::pending))
        .route("/inventory", get(inventory::list))
        .route("/inventory.csv", get(inventory::csv))
        .route("/inventory/{id}", get(inventory::get_one))
        .route("/roster", get(roster::overview))
        .route("/roster/import", post(roster::import))
        .route("/power/wake", post(power::wake))
        .route("/power/schedules", get(power::list).post(power::create))
        .route(
            "/power/schedules/{id}",
            axum::routing::delete(power::delete),
        )
        .merge(timetable_routes())
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "no such API route") })
}

/// The timetable's routes. The clock can be set only in debug builds (tests
/// move the time with it); a release build answers 404 there, after the
/// rights check that every route makes.
fn timetable_routes() -> Router<Shared> {
    use axum::routing::delete;
    let r = Router::new()
        .route(
            "/timetable/periods",
            get(timetable::periods).post(timetable::create_period),
        )
        .route(
            "/timetable/periods/{id}",
            put(timetable::update_period).delete(timetable::delete_period),
        )
        .route("/timetable/week", get(timetable::week))
        .route("/timetable/bookings", post(timetable::book))
        .route(
            "/timetable/bookings/{id}",
            delete(timetable::cancel_booking),
        )
        .route(
            "/timetable/lessons",
            get(timetable::scheduled).post(timetable::schedule),
        )
        .route("/timetable/lessons/{id}", delete(timetable::cancel_series))
        .route(
            "/timetable/lessons/{id}/cancel",
            post(timetable::cancel_occurrence),
        );
    #[cfg(debug_assertions)]
    let r = r.route(
        "/debug/clock",
        get(timetable::get_clock).put(timetable::set_clock),
    );
    #[cfg(not(debug_assertions))]
    let r = r.route("/debug/clock", axum::routing::any(timetable::no_clock));
    r
}

/// Stable names for why a request was refused, sent as `"reason"`: clients
/// (the console among them) act on these, never on the message's text.
pub mod reason {
    /// The caller lacks the right named in `"feature"` (or, with no
    /// feature, every right the request could use).
    pub const MISSING_RIGHT: &str = "missing_right";
    /// The caller may not control the computers listed in `"devices"`.
    pub const NO_CONTROL: &str = "no_control";
    /// The caller may not control the class (group) a lesson is for.
    pub const NO_CONTROL_OF_CLASS: &str = "no_control_of_class";
    /// The device's privacy rule keeps its screen from being shown.
    pub const SCREEN_PRIVATE: &str = "screen_private";
    /// A report's creator no longer holds a right it needs (`"feature"`).
    pub const REPORT_CREATOR_LACKS_RIGHT: &str = "report_creator_lacks_right";
    /// A write without the page's CSRF token (an old or foreign page).
    pub const CSRF: &str = "csrf";
    /// A live stream opened from another site.
    pub const CROSS_ORIGIN: &str = "cross_origin";
    /// Too many requests; `Retry-After` says when to try again.
    pub const RATE_LIMITED: &str = "rate_limited";
    /// The caller's password was reset: only changing it (`PUT
    /// /me/password`), `GET`/`DELETE /session` answer until it is changed.
    pub const PASSWORD_CHANGE_REQUIRED: &str = "password_change_required";
    /// The school has not turned on the anonymous availability screen.
    pub const PUBLIC_VIEW_OFF: &str = "public_view_off";
    /// A request that names no school, on a server of several.
    pub const SCHOOL_REQUIRED: &str = "school_required";
}

/// Most device ids a refusal lists.
const MAX_LISTED_DEVICES: usize = 100;

/// An API error: a status and a message, sent as `{"error": message}`, with
/// a stable `"reason"` (see [`reason`]) and what it concerns (`"feature"`,
/// `"devices"`) where a client acts on it.
#[derive(Debug)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// What went wrong, for the user.
    pub message: String,
    retry_after: Option<u64>,
    /// A stable name for why, sent as `"reason"`.
    reason: Option<&'static str>,
    /// The right the refusal is about, sent as `"feature"`.
    feature: Option<String>,
    /// The devices the refusal is about, sent as `"devices"`.
    devices: Vec<i64>,
}

impl ApiError {
    /// An error with a status and message.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
            retry_after: None,
            reason: None,
            feature: None,
            devices: Vec::new(),
        }
    }
    /// Adds a stable reason name to the response.
    pub fn with_reason(self, reason: &'static str) -> Self {
        ApiError {
            reason: Some(reason),
            ..self
        }
    }
    /// The stable reason name, if any.
    pub fn reason(&self) -> Option<&'static str> {
        self.reason
    }
    /// Names the right the error is about.
    pub fn with_feature(self, feature: &str) -> Self {
        ApiError {
            feature: Some(feature.to_string()),
            ..self
        }
    }
    /// 403 for a caller without `feature`: a sentence from the features'
    /// refusal table, never the right's internal name.
    pub fn missing_right(feature: &str) -> Self {
        Self::forbidden(lectern_policy::access::refusal_sentence(feature))
            .with_reason(reason::MISSING_RIGHT)
            .with_feature(feature)
    }
    /// 403 for a request on devices the caller may not control.
    pub fn no_control(devices: &[i64]) -> Self {
        let n = devices.len();
        let what = if n == 1 {
            "one of these computers".to_string()
        } else {
            format!("{n} of these computers")
        };
        ApiError {
            devices: devices.iter().copied().take(MAX_LISTED_DEVICES).collect(),
            ..Self::forbidden(format!("You can't control {what}. Ask your administrator."))
                .with_reason(reason::NO_CONTROL)
        }
    }
    /// 400.
    pub fn bad_request(m: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, m)
    }
    /// 404.
    pub fn not_found(m: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, m)
    }
    /// 403.
    pub fn forbidden(m: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, m)
    }
    /// 500; the detail is logged, the user sees a generic message.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        tracing::error!("internal error: {detail}");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal server error")
    }
    /// 429 with a Retry-After.
    pub fn too_many(secs: u64) -> Self {
        ApiError {
            retry_after: Some(secs),
            ..Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too many failed logins; try again later",
            )
            .with_reason(reason::RATE_LIMITED)
        }
    }
}

impl From<lectern_store::StoreError> for ApiError {
    fn from(e: lectern_store::StoreError) -> Self {
        match e {
            lectern_store::StoreError::Exists(what) => {
                ApiError::new(StatusCode::CONFLICT, format!("{what} already exists"))
            }
            other => ApiError::internal(other),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = serde_json::json!({ "error": self.message });
        if let Some(reason) = self.reason {
            body["reason"] = reason.into();
        }
        if let Some(feature) = self.feature {
            body["feature"] = feature.into();
        }
        if !self.devices.is_empty() {
            body["devices"] = self.devices.into();
        }
        let mut r = (self.status, Json(body)).into_response();
        if let Some(s) = self.retry_after {
            r.headers_mut().insert(header::RETRY_AFTER, s.into());
        }
        r
    }
}

/// JSON body extractor whose rejections are [`ApiError`]s in our JSON shape.
pub struct JsonBody<T>(pub T);

impl<T, S> axum::extract::FromRequest<S> for JsonBody<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(JsonBody(v)),
            Err(e) => Err(ApiError::new(e.status(), e.body_text())),
        }
    }
}
