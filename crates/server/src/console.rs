//! The console's pages: server-rendered HTML plus embedded ES modules, all
//! from `assets/` compiled into the binary.
//!
//! Every page after login shares one head and navigation, `assets/layout.html`;
//! a page's own file (`assets/<page>.html`) holds only what follows the
//! navigation, and [`PAGES`] says what differs per page (title, script, look).

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;

use lectern_policy::access::{Rights, FEATURES, FEATURE_REFUSALS};

use crate::api::auth::Authed;
use crate::api::ApiError;
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
    /// Its link's text in the navigation (safeguarding pages: in their
    /// sub-navigation).
    pub nav: &'static str,
    /// The right (see `lectern_policy::access::FEATURES`) without which the
    /// page is of no use: its link is left out and the page answers with a
    /// "no access" page.
    pub needs: &'static str,
}

/// Every page behind login, in navigation order.
pub static PAGES: &[Page] = &[
    page_def(
        "/",
        "console.html",
        "Class",
        "console.js",
        Section::Classroom,
        "Classroom",
        "devices.view",
    ),
    page_def(
        "/groups",
        "groups.html",
        "Groups",
        "groups.js",
        Section::Admin,
        "Groups",
        "groups.view",
    ),
    page_def(
        "/resultant",
        "resultant.html",
        "Resultant settings",
        "resultant.js",
        Section::Admin,
        "Resultant settings",
        "groups.view",
    ),
    page_def(
        "/access",
        "access.html",
        "Access rights",
        "access.js",
        Section::Admin,
        "Access rights",
        "access.manage",
    ),
    page_def(
        "/lessons",
        "lessons.html",
        "Lessons",
        "lessons.js",
        Section::Admin,
        "Lessons",
        "lessons.manage",
    ),
    page_def(
        "/logs",
        "logs.html",
        "Safeguarding logs",
        "logs.js",
        Section::Safeguarding,
        "Logs",
        "activity.view",
    ),
    page_def(
        "/keywords",
        "keywords.html",
        "Keyword library",
        "keywords.js",
        Section::Safeguarding,
        "Keyword library",
        "keywords.manage",
    ),
    page_def(
        "/reports",
        "reports.html",
        "Reports",
        "reports.js",
        Section::Safeguarding,
        "Reports",
        "reports.manage",
    ),
];

const fn page_def(
    route: &'static str,
    file: &'static str,
    title: &'static str,
    script: &'static str,
    section: Section,
    nav: &'static str,
    needs: &'static str,
) -> Page {
    Page {
        route,
        file,
        title,
        script,
        section,
        nav,
        needs,
    }
}

const SAFETY_STYLESHEET: &str = "  <link rel=\"stylesheet\" href=\"/assets/safety.css\">\n";
const STREAM_STATUS: &str = "      <span id=\"stream-status\" class=\"stream-status connecting\" role=\"status\">Connecting…</span>\n";

/// Pages and assets.
pub fn router() -> Router<Shared> {
    let mut r = Router::new().route("/login", get(login));
    for p in PAGES {
        r = r.route(p.route, get(move |st, auth| page(st, auth, p)));
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

/// Who the page is for: the values every page shows, and the rights that
/// decide its navigation and buttons.
pub struct Viewer<'a> {
    pub school: &'a str,
    pub user: &'a str,
    pub csrf: &'a str,
    pub rights: &'a Rights,
}

/// The page shown in place of one the viewer may not use.
const NO_ACCESS: Page = page_def(
    "",
    "noaccess.html",
    "No access",
    "noaccess.js",
    Section::Admin,
    "",
    "",
);

/// The features the viewer can use here ([`Rights::usable`]), space
/// separated: the body's `data-rights`, which `page.js` hides `data-right`
/// elements by.
fn usable_features(rights: &Rights) -> String {
    FEATURES
        .iter()
        .map(|(f, _)| *f)
        .filter(|f| rights.usable(f))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The refusal phrase of every feature as a JSON object: the body's
/// `data-refusals`, from which the console words a refused request.
fn refusals_json() -> String {
    let map: serde_json::Map<String, serde_json::Value> = FEATURE_REFUSALS
        .iter()
        .map(|(f, p)| (f.to_string(), (*p).into()))
        .collect();
    serde_json::Value::Object(map).to_string()
}

/// How a navigation link is marked as where the viewer is.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Here {
    /// Not here.
    No,
    /// The link's own page.
    Page,
    /// A page of the link's section (the "Safeguarding" link on any
    /// safeguarding page).
    Section,
}

/// One navigation link, marked when it is where the viewer is;
/// `attributes` (fixed markup) go into the tag.
fn nav_link(route: &str, label: &str, here: Here, attributes: &str) -> String {
    let mark = match here {
        Here::No => "",
        Here::Page => " class=\"current\" aria-current=\"page\"",
        Here::Section => " class=\"current\" aria-current=\"true\"",
    };
    format!(
        "      <a href=\"{}\"{attributes}{mark}>{}</a>\n",
        escape(route),
        escape(label)
    )
}

/// [`Here::Page`] when `p` is `current`.
fn page_mark(p: &Page, current: &Page) -> Here {
    if p.route == current.route {
        Here::Page
    } else {
        Here::No
    }
}

/// The pages the viewer may use.
fn usable_pages<'p>(rights: &'p Rights) -> impl Iterator<Item = &'static Page> + 'p {
    PAGES.iter().filter(|p| rights.usable(p.needs))
}

/// The top navigation: each page the viewer may use, and one "Safeguarding"
/// link to the first safeguarding page they may use.
fn main_nav(rights: &Rights, current: &Page) -> String {
    let mut out = String::new();
    let mut safeguarding = false;
    for p in usable_pages(rights) {
        if p.section == Section::Safeguarding {
            if !safeguarding {
                safeguarding = true;
                let here = if current.section == Section::Safeguarding {
                    Here::Section
                } else {
                    Here::No
                };
                let section = " data-section=\"safeguarding\"";
                out.push_str(&nav_link(p.route, "Safeguarding", here, section));
            }
            continue;
        }
        out.push_str(&nav_link(p.route, p.nav, page_mark(p, current), ""));
    }
    out
}

/// The safeguarding pages' own navigation: those the viewer may use.
fn safeguarding_nav(rights: &Rights, current: &Page) -> String {
    let links: String = usable_pages(rights)
        .filter(|p| p.section == Section::Safeguarding)
        .map(|p| nav_link(p.route, p.nav, page_mark(p, current), ""))
        .collect();
    format!("\n  <nav class=\"subnav\" aria-label=\"Safeguarding pages\">\n{links}  </nav>\n")
}

/// What the "no access" page says in place of `wanted`.
fn no_access_text(wanted: &Page, rights: &Rights) -> &'static str {
    let any_page = usable_pages(rights).next().is_some();
    match (wanted.section, any_page) {
        (Section::Classroom, false) => {
            "Your account has no access to any computers yet. Ask your administrator."
        }
        (Section::Classroom, true) => {
            "Your account has no access to any computers yet. Ask your administrator. The pages you can use are in the menu above."
        }
        (_, false) => {
            "Your account has no access to this page, or to any other, yet. Ask your administrator."
        }
        (_, true) => {
            "Your account has no access to this page. Ask your administrator. The pages you can use are in the menu above."
        }
    }
}

/// Renders a page behind login: its content inside the shared layout, or
/// the "no access" page when the viewer may not use it.
pub fn render_page(p: &Page, who: &Viewer<'_>) -> Result<String, RenderError> {
    if !who.rights.usable(p.needs) {
        let text = no_access_text(p, who.rights);
        return render_in_layout(&NO_ACCESS, p, who, &[("message", Value::Text(text))]);
    }
    render_in_layout(p, p, who, &[])
}

/// Renders `p`'s content in the layout, with `nav_as`'s navigation entry
/// marked current.
fn render_in_layout(
    p: &Page,
    nav_as: &Page,
    who: &Viewer<'_>,
    extra: &[(&str, Value<'_>)],
) -> Result<String, RenderError> {
    let mut people = vec![
        ("school", Value::Text(who.school)),
        ("user", Value::Text(who.user)),
        ("csrf", Value::Text(who.csrf)),
    ];
    people.extend_from_slice(extra);
    // The content is filled on its own and then inserted as markup, so no
    // value is ever scanned twice.
    let content = fill(&asset_text(p.file)?, &people)?;
    let subnav = match nav_as.section {
        Section::Safeguarding => safeguarding_nav(who.rights, nav_as),
        _ => String::new(),
    };
    let (body_class, stylesheets, stream_status) = match p.section {
        Section::Classroom => ("console-page", "", STREAM_STATUS),
        Section::Admin => ("admin-page", "", ""),
        Section::Safeguarding => ("admin-page safety-page", SAFETY_STYLESHEET, ""),
    };
    let (nav, rights, refusals) = (
        main_nav(who.rights, nav_as),
        usable_features(who.rights),
        refusals_json(),
    );
    let mut vars = people;
    vars.extend([
        ("title", Value::Text(p.title)),
        ("script", Value::Text(p.script)),
        ("body_class", Value::Text(body_class)),
        ("rights", Value::Text(&rights)),
        ("refusals", Value::Text(&refusals)),
        ("stylesheets", Value::Markup(stylesheets)),
        ("stream_status", Value::Markup(stream_status)),
        ("nav", Value::Markup(&nav)),
        ("subnav", Value::Markup(&subnav)),
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

/// A console page for a logged-in user (a "no access" page, 403, where
/// their rights give it no use), or a redirect to the login page.
async fn page(
    State(st): State<Shared>,
    auth: Result<Authed, ApiError>,
    p: &'static Page,
) -> Response {
    let Ok(auth) = auth else {
        return Redirect::to("/login").into_response();
    };
    let html = render_page(
        p,
        &Viewer {
            school: &st.school.name,
            user: auth.username(),
            csrf: &auth.session.csrf_token,
            rights: &auth.rights,
        },
    );
    let status = if auth.rights.usable(p.needs) {
        StatusCode::OK
    } else {
        StatusCode::FORBIDDEN
    };
    let mut r = respond(html);
    if r.status() == StatusCode::OK {
        *r.status_mut() = status;
    }
    r
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
    use lectern_policy::access::{Access, Rights};

    fn admin() -> Rights {
        Rights {
            all: true,
            ..Rights::default()
        }
    }

    #[test]
    fn every_page_renders_with_no_placeholder_left() {
        let rights = admin();
        let who = Viewer {
            school: "Hill {{user}} School",
            user: "t<1>",
            csrf: "tok",
            rights: &rights,
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
    fn navigation_lists_only_usable_pages() {
        let mut rights = Rights::default();
        rights.features.insert("devices.view".into());
        rights.features.insert("command.lock".into());
        rights.features.insert("reports.manage".into());
        rights.group_access.insert(7, Access::View);
        let who = Viewer {
            school: "S",
            user: "t",
            csrf: "tok",
            rights: &rights,
        };
        let html = render_page(&PAGES[0], &who).unwrap();
        assert!(
            html.contains("<a href=\"/\" class=\"current\" aria-current=\"page\">Classroom</a>")
        );
        assert!(
            html.contains("<a href=\"/reports\" data-section=\"safeguarding\">Safeguarding</a>"),
            "{html}"
        );
        assert!(!html.contains("href=\"/groups\"") && !html.contains("href=\"/logs\""));
        // Lock needs control of some group: view access only does not offer it.
        assert!(
            html.contains("data-rights=\"devices.view reports.manage\""),
            "{html}"
        );
        let denied = render_page(&PAGES[1], &who).unwrap();
        assert!(denied.contains("<title>No access · Lectern</title>"));
        assert!(denied.contains("no access to this page"));
    }

    #[test]
    fn escapes_html() {
        assert_eq!(
            super::escape(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }
}
