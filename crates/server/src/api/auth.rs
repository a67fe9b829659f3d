//! Who is calling: a console session from the cookie (with CSRF check on
//! writes) or a bearer token for scripts.

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{header, Method, StatusCode};
use lectern_policy::access::{Access, Rights};
use lectern_store::{Role, Session};

use super::ApiError;
use crate::state::Shared;

/// Name of the console's session cookie.
pub const COOKIE: &str = "lectern_session";
/// Header the console echoes its CSRF token in.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// An authenticated caller.
pub struct Authed {
    /// The session.
    pub session: Session,
    /// The token the session was found by (to end it on logout).
    pub token: String,
    /// Client address, for the audit log.
    pub address: Option<String>,
    /// What this user may do from this computer.
    pub rights: Rights,
}

impl Authed {
    /// The caller's school: every read and change of a request is keyed by
    /// it (issue 16: schools are tenants), never by a server-wide school.
    pub fn school(&self) -> lectern_store::SchoolId {
        self.session.user.school_id
    }

    /// The caller's user name.
    pub fn username(&self) -> &str {
        &self.session.user.username
    }

    /// An audit entry of the caller's own (their school, name and address).
    pub fn audit_entry(&self, st: &Shared, action: &str, outcome: &str) -> lectern_store::NewAudit {
        st.audit_entry(
            self.school(),
            self.username(),
            self.address.clone(),
            action,
            outcome,
        )
    }

    /// Refuses (403, audited) callers without `feature`.
    pub async fn require(&self, st: &Shared, feature: &str) -> Result<(), ApiError> {
        if self.rights.allows(feature) {
            return Ok(());
        }
        self.deny(st, &format!("feature {feature}"), Vec::new())
            .await;
        Err(ApiError::missing_right(feature))
    }

    /// Refuses (403, audited) callers with none of `features`.
    pub async fn require_any(&self, st: &Shared, features: &[&str]) -> Result<(), ApiError> {
        if features.iter().any(|f| self.rights.allows(f)) {
            return Ok(());
        }
        self.deny(st, &format!("any of {features:?}"), Vec::new())
            .await;
        Err(
            ApiError::forbidden("You can't send commands to computers. Ask your administrator.")
                .with_reason(super::reason::MISSING_RIGHT),
        )
    }

    /// Writes an audit entry for a refused request.
    pub async fn deny(&self, st: &Shared, what: &str, devices: Vec<i64>) {
        let mut entry = st.audit_entry(
            self.school(),
            self.username(),
            self.address.clone(),
            "access.denied",
            "denied",
        );
        entry.detail = what.to_string();
        entry.devices = devices;
        st.audit(entry).await;
    }

    /// This user's access to a device in `groups`.
    pub fn device_access(&self, groups: &[i64]) -> Access {
        self.rights.device_access(groups)
    }
}

/// The session cookie's value in `headers`, if any.
pub fn cookie_token(headers: &axum::http::HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.to_string())
}

/// The client's address as the connection saw it.
pub fn client_address(parts: &Parts) -> Option<std::net::SocketAddr> {
    parts
        .extensions
        .get::<ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0)
}

/// What a session whose password must change may still do: change it, see
/// who it is, and sign out. (`path` is relative to `/api/v1`, where the API
/// is nested; console pages are refused and send the browser to sign in.)
fn allowed_before_change(method: &Method, path: &str) -> bool {
    let path = path.strip_prefix("/api/v1").unwrap_or(path);
    matches!(
        (method, path),
        (&Method::GET | &Method::DELETE, "/session") | (&Method::PUT, "/me/password")
    )
}

impl FromRequestParts<Shared> for Authed {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Shared,
    ) -> Result<Self, Self::Rejection> {
        let bearer = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(|t| t.trim().to_string());
        let (token, via_cookie) = match (bearer, cookie_token(&parts.headers)) {
            (Some(t), _) => (t, false),
            (None, Some(t)) => (t, true),
            (None, None) => return Err(ApiError::new(StatusCode::UNAUTHORIZED, "log in first")),
        };
        let lookup = token.clone();
        let session = state
            .db(move |s| s.session(&lookup))
            .await?
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "session expired or invalid; log in again",
                )
            })?;
        // A browser sends the cookie with cross-site requests too; only our own
        // pages know the CSRF token, so writes must echo it.
        let safe = matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS);
        if via_cookie && !safe {
            let sent = parts
                .headers
                .get(CSRF_HEADER)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            if sent != session.csrf_token {
                return Err(ApiError::forbidden(
                    "This page is out of date: reload it and try again.",
                )
                .with_reason(super::reason::CSRF));
            }
        }
        if session.must_change_password && !allowed_before_change(&parts.method, parts.uri.path()) {
            let address = client_address(parts).map(|a| a.ip().to_string());
            let mut entry = state.audit_entry(
                session.user.school_id,
                &session.user.username,
                address,
                "access.denied",
                "denied",
            );
            entry.detail = format!("{} before changing a reset password", parts.uri.path());
            state.audit(entry).await;
            return Err(ApiError::forbidden(
                "Your password was reset: choose a new one before anything else.",
            )
            .with_reason(super::reason::PASSWORD_CHANGE_REQUIRED));
        }
        let peer = client_address(parts);
        if let Some(peer) = peer {
            // A valid session: this connection leaves the pre-auth budget.
            state.connections.promote(peer);
        }
        let ip = peer.map(|a| a.ip());
        let rights = state.policies.of(session.user.school_id).rights(
            &session.user.username,
            ip,
            session.user.role == Role::Admin,
        );
        Ok(Authed {
            session,
            token,
            address: ip.map(|a| a.to_string()),
            rights,
        })
    }
}
