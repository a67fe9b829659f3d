//! The console's pages: server-rendered HTML shells plus embedded ES modules,
//! all from `assets/` compiled into the binary.

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;

use crate::api::auth::cookie_token;
use crate::state::Shared;

include!(concat!(env!("OUT_DIR"), "/assets.rs"));

/// Pages and assets.
pub fn router() -> Router<Shared> {
    Router::new()
        .route("/", get(console))
        .route("/login", get(login))
        .route("/groups", get(|st, h| page(st, h, "groups.html")))
        .route("/resultant", get(|st, h| page(st, h, "resultant.html")))
        .route("/access", get(|st, h| page(st, h, "access.html")))
        .route("/lessons", get(|st, h| page(st, h, "lessons.html")))
        .route("/logs", get(|st, h| page(st, h, "logs.html")))
        .route("/keywords", get(|st, h| page(st, h, "keywords.html")))
        .route("/reports", get(|st, h| page(st, h, "reports.html")))
        .route("/assets/{name}", get(asset))
}

fn asset_bytes(name: &str) -> Option<&'static [u8]> {
    ASSETS.iter().find(|(n, _)| *n == name).map(|(_, b)| *b)
}

/// Escapes text for HTML element content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn render(name: &str, vars: &[(&str, &str)]) -> Response {
    let Some(bytes) = asset_bytes(name) else {
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            "console page missing from this build",
        )
            .into_response();
    };
    let mut html = String::from_utf8_lossy(bytes).into_owned();
    for (k, v) in vars {
        html = html.replace(&format!("{{{{{k}}}}}"), &escape(v));
    }
    ([(header::CACHE_CONTROL, "no-store")], Html(html)).into_response()
}

async fn login(State(st): State<Shared>) -> Response {
    render("login.html", &[("school", &st.school.name)])
}

async fn console(st: State<Shared>, headers: HeaderMap) -> Response {
    page(st, headers, "console.html").await
}

/// A console page for a logged-in user, or a redirect to the login page.
async fn page(State(st): State<Shared>, headers: HeaderMap, name: &'static str) -> Response {
    let Some(token) = cookie_token(&headers) else {
        return Redirect::to("/login").into_response();
    };
    match st.db(move |s| s.session(&token)).await {
        Ok(Some(s)) if s.user.school_id == st.school.id => render(
            name,
            &[
                ("school", &st.school.name),
                ("user", &s.user.username),
                ("csrf", &s.csrf_token),
            ],
        ),
        _ => Redirect::to("/login").into_response(),
    }
}

async fn asset(Path(name): Path<String>) -> Response {
    let Some(bytes) = asset_bytes(&name) else {
        return (StatusCode::NOT_FOUND, "no such file").into_response();
    };
    let ext = name.rsplit('.').next().unwrap_or("");
    let ctype = match ext {
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "html" => "text/html; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        _ => "application/octet-stream",
    };
    (
        [
            (header::CONTENT_TYPE, ctype),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        bytes,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    #[test]
    fn escapes_html() {
        assert_eq!(
            super::escape(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }
}
