//! The console's pages: server-rendered HTML plus embedded ES modules, all
//! from `assets/` compiled into the binary.
//!
//! Every page after login shares one head and navigation, `assets/layout.html`;
//! a page's own file (`assets/<page>.html`) holds only what follows the
//! navigation, and [`PAGES`] says what differs per page (title, script, look).

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;

use crate::api::auth::cookie_token;
use crate::state::Shared;
use crate::template::{fill, TemplateError, Value};

include!(concat!(env!("OUT_DIR"), "/assets.rs"));

/// Which family a page belongs to; decides its body class and the extras the
/// layout adds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    /// The classroom grid: shows the live stream's status in the top bar.
    Classroom,
    /// Administration pages (groups, settings, access, lessons).
    Admin,
    /// Safeguarding pages: their own stylesheet and sub-navigation.
    Safeguarding,
}

/// A console page behind login.
#[derive(Debug)]
pub struct Page {
    /// The URL path.
    pub route: &'static str,
    /// The file in `assets/` with the page's content.
    pub file: &'static str,
    /// The `<title>` before " · Lectern" (the script adds the school's name).
    pub title: &'static str,
    /// The page's ES module in `assets/`.
    pub script: &'static str,
    /// Decides the body class and the layout's extras.
    pub section: Section,
}

/// Every page behind login, in navigation order.
pub static PAGES: &[Page] = &[
    page_def(
        "/",
        "console.html",
        "Class",
        "console.js",
        Section::Classroom,
    ),
    page_def(
        "/groups",
        "groups.html",
        "Groups",
        "groups.js",
        Section::Admin,
    ),
    page_def(
        "/resultant",
        "resultant.html",
        "Resultant settings",
        "resultant.js",
        Section::Admin,
    ),
    page_def(
        "/access",
        "access.html",
        "Access rights",
        "access.js",
        Section::Admin,
    ),
    page_def(
        "/lessons",
        "lessons.html",
        "Lessons",
        "lessons.js",
        Section::Admin,
    ),
    page_def(
        "/logs",
        "logs.html",
        "Safeguarding logs",
        "logs.js",
        Section::Safeguarding,
    ),
    page_def(
        "/keywords",
        "keywords.html",
        "Keyword library",
        "keywords.js",
        Section::Safeguarding,
    ),
    page_def(
        "/reports",
        "reports.html",
        "Reports",
        "reports.js",
        Section::Safeguarding,
    ),
];

const fn page_def(
    route: &'static str,
    file: &'static str,
    title: &'static str,
    script: &'static str,
    section: Section,
) -> Page {
    Page {
        route,
        file,
        title,
        script,
        section,
    }
}

const SAFETY_STYLESHEET: &str = "  <link rel=\"stylesheet\" href=\"/assets/safety.css\">\n";
const STREAM_STATUS: &str = "      <span id=\"stream-status\" class=\"stream-status connecting\" role=\"status\">Connecting…</span>\n";
const SAFETY_SUBNAV: &str = "\n  <nav class=\"subnav\" aria-label=\"Safeguarding pages\">
    <a href=\"/logs\">Logs</a>
    <a href=\"/keywords\">Keyword library</a>
    <a href=\"/reports\">Reports</a>
  </nav>\n";

/// Pages and assets.
pub fn router() -> Router<Shared> {
    let mut r = Router::new().route("/login", get(login));
    for p in PAGES {
        r = r.route(p.route, get(move |st, h| page(st, h, p)));
    }
    r.route("/assets/{name}", get(asset))
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

/// Why a page could not be rendered: a bug in this build, never the user's.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("console file {0} missing from this build")]
    Missing(&'static str),
    #[error(transparent)]
    Template(#[from] TemplateError),
}

fn asset_text(name: &'static str) -> Result<String, RenderError> {
    asset_bytes(name)
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .ok_or(RenderError::Missing(name))
}

/// Who the page is for: the values every page shows.
pub struct Viewer<'a> {
    pub school: &'a str,
    pub user: &'a str,
    pub csrf: &'a str,
}

/// Renders a page behind login: its content inside the shared layout.
pub fn render_page(p: &Page, who: &Viewer<'_>) -> Result<String, RenderError> {
    let people = [
        ("school", Value::Text(who.school)),
        ("user", Value::Text(who.user)),
        ("csrf", Value::Text(who.csrf)),
    ];
    // The content is filled on its own and then inserted as markup, so no
    // value is ever scanned twice.
    let content = fill(&asset_text(p.file)?, &people)?;
    let (body_class, stylesheets, stream_status, subnav) = match p.section {
        Section::Classroom => ("console-page", "", STREAM_STATUS, ""),
        Section::Admin => ("admin-page", "", "", ""),
        Section::Safeguarding => (
            "admin-page safety-page",
            SAFETY_STYLESHEET,
            "",
            SAFETY_SUBNAV,
        ),
    };
    let mut vars = people.to_vec();
    vars.extend([
        ("title", Value::Text(p.title)),
        ("script", Value::Text(p.script)),
        ("body_class", Value::Text(body_class)),
        ("stylesheets", Value::Markup(stylesheets)),
        ("stream_status", Value::Markup(stream_status)),
        ("subnav", Value::Markup(subnav)),
        ("content", Value::Markup(&content)),
    ]);
    Ok(fill(&asset_text("layout.html")?, &vars)?)
}

/// Renders the login page, which has no navigation.
pub fn render_login(school: &str) -> Result<String, RenderError> {
    Ok(fill(
        &asset_text("login.html")?,
        &[("school", Value::Text(school))],
    )?)
}

fn respond(html: Result<String, RenderError>) -> Response {
    match html {
        Ok(html) => ([(header::CACHE_CONTROL, "no-store")], Html(html)).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "console page failed to render");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "console page broken in this build",
            )
                .into_response()
        }
    }
}

async fn login(State(st): State<Shared>) -> Response {
    respond(render_login(&st.school.name))
}

/// A console page for a logged-in user, or a redirect to the login page.
async fn page(State(st): State<Shared>, headers: HeaderMap, p: &'static Page) -> Response {
    let Some(token) = cookie_token(&headers) else {
        return Redirect::to("/login").into_response();
    };
    match st.db(move |s| s.session(&token)).await {
        Ok(Some(s)) if s.user.school_id == st.school.id => respond(render_page(
            p,
            &Viewer {
                school: &st.school.name,
                user: &s.user.username,
                csrf: &s.csrf_token,
            },
        )),
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
    use super::{render_login, render_page, Viewer, PAGES};

    #[test]
    fn every_page_renders_with_no_placeholder_left() {
        let who = Viewer {
            school: "Hill {{user}} School",
            user: "t<1>",
            csrf: "tok",
        };
        for p in PAGES {
            let html = render_page(p, &who).unwrap_or_else(|e| panic!("{}: {e}", p.file));
            let without_value = html.replace("Hill {{user}} School", "");
            assert!(
                !without_value.contains("{{"),
                "{}: placeholder left",
                p.file
            );
            assert!(html.contains("Hill {{user}} School"), "{}", p.file);
            assert!(html.contains("t&lt;1&gt;"), "{}", p.file);
            assert!(html.contains(&format!("<title>{} · Lectern</title>", p.title)));
            assert!(html.contains(&format!("src=\"/assets/{}\"", p.script)));
            assert_eq!(html.matches("<nav class=\"pagenav\"").count(), 1);
            assert!(html.trim_end().ends_with("</body>\n</html>"), "{}", p.file);
        }
        let login = render_login("S {{csrf}}").unwrap();
        assert!(login.contains("S {{csrf}}") && login.matches("{{").count() == 1);
    }

    #[test]
    fn escapes_html() {
        assert_eq!(
            super::escape(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }
}
