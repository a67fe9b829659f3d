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

/// Which section of the console a page belongs to: its entry in the top
/// navigation (one link per section, to the first page of it the viewer may
/// use), the sub-navigation it shows, its body class and the layout's extras.
/// A new page only declares its section.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    /// The classroom grid: shows the live stream's status in the top bar.
    Classroom,
    /// Teaching beyond the grid: lessons, timetable, rosters, files, exams.
    Lessons,
    /// Safeguarding pages: their own stylesheet.
    Safeguarding,
    /// The school's computers: devices, enrollment, availability, inventory.
    Computers,
    /// Administration: groups, access, users, the school's look and
    /// settings, the audit log.
    Admin,
}

impl Section {
    /// The sections in top-navigation order.
    pub const ALL: [Section; 5] = [
        Section::Classroom,
        Section::Lessons,
        Section::Safeguarding,
        Section::Computers,
        Section::Admin,
    ];

    /// The section's link text in the top navigation.
    pub fn label(self) -> &'static str {
        match self {
            Section::Classroom => "Classroom",
            Section::Lessons => "Lessons",
            Section::Safeguarding => "Safeguarding",
            Section::Computers => "Computers",
            Section::Admin => "Administration",
        }
    }

    /// The section link's `data-section`: a stable name for scripts and
    /// tests, whatever the link's target.
    pub fn key(self) -> &'static str {
        match self {
            Section::Classroom => "classroom",
            Section::Lessons => "lessons",
            Section::Safeguarding => "safeguarding",
            Section::Computers => "computers",
            Section::Admin => "admin",
        }
    }
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
    /// Its section: where it is in the navigation, its body class and the
    /// layout's extras.
    pub section: Section,
    /// Its link's text in its section's sub-navigation.
    pub nav: &'static str,
    /// The right (see `lectern_policy::access::FEATURES`) without which the
    /// page is of no use: its link is left out and the page answers with a
    /// "no access" page. Alternatives are separated by `|` (a page with a
    /// part for each of several rights is of use with any of them).
    pub needs: &'static str,
}

impl Page {
    /// Whether `rights` make the page of use: any of its `needs`.
    pub fn usable_by(&self, rights: &Rights) -> bool {
        self.needs.split('|').any(|f| rights.usable(f))
    }
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
        "/lessons",
        "lessons.html",
        "Lessons",
        "lessons.js",
        Section::Lessons,
        "Lessons",
        "lessons.manage",
    ),
    page_def(
        "/timetable",
        "timetable.html",
        "Timetable",
        "timetable.js",
        Section::Lessons,
        "Timetable",
        // Booking rooms, scheduling lessons and editing periods are each
        // a part of the page (shown by `data-right`).
        "rooms.book|lessons.manage|timetable.manage",
    ),
    page_def(
        "/rosters",
        "rosters.html",
        "Rosters",
        "rosters.js",
        Section::Lessons,
        "Rosters",
        "roster.manage",
    ),
    page_def(
        "/students",
        "students.html",
        "Student sign-in",
        "students.js",
        Section::Lessons,
        "Student sign-in",
        "students.passwords",
    ),
    page_def(
        "/files",
        "files.html",
        "Files",
        "files.js",
        Section::Lessons,
        "Files",
        "command.files",
    ),
    page_def(
        "/exams",
        "exams.html",
        "Exams",
        "exams.js",
        Section::Lessons,
        "Exams",
        "command.exams",
    ),
    page_def(
        "/safeguarding",
        "safeguarding.html",
        "Safeguarding overview",
        "safeguarding.js",
        Section::Safeguarding,
        "Overview",
        "activity.view",
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
    page_def(
        "/devices",
        "devices.html",
        "Devices",
        "devices.js",
        Section::Computers,
        "Devices",
        "devices.view",
    ),
    page_def(
        "/tokens",
        "tokens.html",
        "Enrollment tokens",
        "tokens.js",
        Section::Computers,
        "Enrollment",
        "devices.manage",
    ),
    page_def(
        "/availability",
        "availability.html",
        "Computer availability",
        "availability.js",
        Section::Computers,
        "Availability",
        "devices.view",
    ),
    page_def(
        "/inventory",
        "inventory.html",
        "Inventory",
        "inventory.js",
        Section::Computers,
        "Inventory",
        "inventory.view",
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
        "/users",
        "users.html",
        "Console users",
        "users.js",
        Section::Admin,
        "Users",
        "access.manage",
    ),
    page_def(
        "/directory",
        "directory.html",
        "Directory",
        "directory.js",
        Section::Admin,
        "Directory",
        "directory.manage",
    ),
    page_def(
        "/school",
        "look.html",
        "School on student screens",
        "look.js",
        Section::Admin,
        "School look",
        "school.look",
    ),
    page_def(
        "/settings",
        "settings.html",
        "School settings",
        "settings.js",
        Section::Admin,
        "Settings",
        "settings.manage",
    ),
    page_def(
        "/mail",
        "mail.html",
        "Safeguarding mail",
        "mail.js",
        Section::Admin,
        "Mail",
        "settings.manage",
    ),
    page_def(
        "/audit",
        "audit.html",
        "Audit log",
        "audit.js",
        Section::Admin,
        "Audit log",
        "audit.view",
    ),
    page_def(
        "/acceptable-use",
        "aup.html",
        "Acceptable use",
        "aup.js",
        Section::Admin,
        "Acceptable use",
        "aup.manage",
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
    let mut r = Router::new()
        .route("/login", get(login))
        .route("/password", get(password))
        .route("/availability/screen", get(crate::devadmin::screen));
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
    /// A page of the link's section: a section link whose sub-navigation
    /// marks the page, or on the "no access" page of that section.
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
    PAGES.iter().filter(|p| p.usable_by(rights))
}

/// The top navigation: one link per section the viewer may use a page of,
/// to the first such page; marked when the viewer is in that section.
fn main_nav(rights: &Rights, current: &Page) -> String {
    let mut out = String::new();
    for section in Section::ALL {
        let Some(first) = usable_pages(rights).find(|p| p.section == section) else {
            continue;
        };
        // The page itself is marked once: in the sub-navigation when there
        // is one, else on its section's link.
        let here = if current.section != section {
            Here::No
        } else if has_subnav(rights, section) {
            Here::Section
        } else {
            match page_mark(first, current) {
                Here::No => Here::Section,
                here => here,
            }
        };
        let key = format!(" data-section=\"{}\"", section.key());
        out.push_str(&nav_link(first.route, section.label(), here, &key));
    }
    out
}

/// Whether `section` shows a sub-navigation: the viewer may use two or more
/// of its pages.
fn has_subnav(rights: &Rights, section: Section) -> bool {
    usable_pages(rights)
        .filter(|p| p.section == section)
        .nth(1)
        .is_some()
}

/// The sub-navigation of `current`'s section: the section's pages the
/// viewer may use, or nothing when that is one page or none (the top
/// navigation's link already leads there).
fn section_nav(rights: &Rights, current: &Page) -> String {
    if !has_subnav(rights, current.section) {
        return String::new();
    }
    let links: String = usable_pages(rights)
        .filter(|p| p.section == current.section)
        .map(|p| nav_link(p.route, p.nav, page_mark(p, current), ""))
        .collect();
    let label = format!("{} pages", current.section.label());
    format!(
        "\n  <nav class=\"subnav\" aria-label=\"{}\">\n{links}  </nav>\n",
        escape(&label)
    )
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
    if !p.usable_by(who.rights) {
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
    let subnav = section_nav(who.rights, nav_as);
    let (body_class, stylesheets, stream_status) = match p.section {
        Section::Classroom => ("console-page", "", STREAM_STATUS),
        Section::Lessons | Section::Computers | Section::Admin => ("admin-page", "", ""),
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
/// The sign-in page. On a server with one school, its name heads the
/// page; with several, the page asks which school (a list of their names:
/// signing in names the school, `POST /session`'s `school`).
pub fn render_login(schools: &[lectern_store::School]) -> Result<String, RenderError> {
    let (heading, picker) = match schools {
        [one] => (one.name.as_str(), String::new()),
        _ => {
            let options: String = schools
                .iter()
                .map(|s| {
                    format!(
                        "        <option value=\"{}\">{}</option>\n",
                        s.id,
                        escape(&s.name)
                    )
                })
                .collect();
            (
                "Sign in",
                format!(
                    "      <label for=\"school\">School</label>\n      <select id=\"school\" name=\"school\" autocomplete=\"organization\">\n{options}      </select>"
                ),
            )
        }
    };
    Ok(fill(
        &asset_text("login.html")?,
        &[
            ("school", Value::Text(heading)),
            ("school_picker", Value::Markup(&picker)),
        ],
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
    match st.db(|s| s.schools()).await {
        Ok(schools) => respond(render_login(&schools)),
        Err(e) => e.into_response(),
    }
}

/// "Change your password": static; its script asks who is signed in (a
/// session whose password must change may use only this page).
async fn password() -> Response {
    respond(asset_text("password.html"))
}

/// A console page for a logged-in user (a "no access" page, 403, where
/// their rights give it no use), or a redirect to the login page.
async fn page(
    State(st): State<Shared>,
    auth: Result<Authed, ApiError>,
    p: &'static Page,
) -> Response {
    let auth = match auth {
        Ok(auth) => auth,
        Err(e) if e.reason() == Some(crate::api::reason::PASSWORD_CHANGE_REQUIRED) => {
            return Redirect::to("/password").into_response();
        }
        Err(_) => return Redirect::to("/login").into_response(),
    };
    let school = st.school_name(auth.school()).await;
    let html = render_page(
        p,
        &Viewer {
            school: &school,
            user: auth.username(),
            csrf: &auth.session.csrf_token,
            rights: &auth.rights,
        },
    );
    let status = if p.usable_by(&auth.rights) {
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
        let school = |id, name: &str| lectern_store::School {
            id,
            name: name.into(),
        };
        let login = render_login(&[school(1, "S {{csrf}}")]).unwrap();
        assert!(login.contains("S {{csrf}}") && login.matches("{{").count() == 1);
        assert!(!login.contains("<select"));
        // Several schools: a list of their names, escaped, by id.
        let login = render_login(&[school(1, "Hill"), school(4, "Dale <&> Vale")]).unwrap();
        assert!(login.contains("<option value=\"4\">Dale &lt;&amp;&gt; Vale</option>"));
        assert!(login.contains("<h1 id=\"school-name\">Sign in</h1>"));
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
            html.contains("<a href=\"/\" data-section=\"classroom\" class=\"current\" aria-current=\"page\">Classroom</a>"),
            "{html}"
        );
        // Devices and availability: one section link, to the first.
        assert!(
            html.contains("<a href=\"/devices\" data-section=\"computers\">Computers</a>"),
            "{html}"
        );
        assert!(!html.contains("href=\"/availability\""), "{html}");
        // The classroom is the section's only page: no sub-navigation.
        assert!(!html.contains("class=\"subnav\""), "{html}");
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
    fn a_page_with_a_part_per_right_is_usable_with_any_of_them() {
        let timetable = PAGES.iter().find(|p| p.route == "/timetable").unwrap();
        let mut rights = Rights::default();
        assert!(!timetable.usable_by(&rights));
        // A teacher who schedules lessons but books no rooms still gets it.
        rights.features.insert("lessons.manage".into());
        assert!(timetable.usable_by(&rights));
        let mut booker = Rights::default();
        booker.features.insert("rooms.book".into());
        // Booking needs a room one can see.
        assert!(!timetable.usable_by(&booker));
        booker.group_access.insert(1, Access::View);
        assert!(timetable.usable_by(&booker));
        assert!(!PAGES[1].usable_by(&booker));
    }

    /// The `href`s of the links in the `<nav>` whose tag starts with `open`.
    fn links_in(html: &str, open: &str) -> Vec<String> {
        let Some(start) = html.find(open) else {
            return Vec::new();
        };
        let nav = &html[start..start + html[start..].find("</nav>").unwrap()];
        nav.split("href=\"")
            .skip(1)
            .map(|s| s[..s.find('"').unwrap()].to_string())
            .collect()
    }

    #[test]
    fn sections_lead_to_their_first_page_and_list_their_pages() {
        let rights = admin();
        let who = Viewer {
            school: "S",
            user: "a",
            csrf: "tok",
            rights: &rights,
        };
        let timetable = PAGES.iter().find(|p| p.route == "/timetable").unwrap();
        let html = render_page(timetable, &who).unwrap();
        assert_eq!(
            links_in(&html, "<nav class=\"pagenav\""),
            ["/", "/lessons", "/safeguarding", "/devices", "/groups"]
        );
        assert!(html.contains(
            "<a href=\"/lessons\" data-section=\"lessons\" class=\"current\" aria-current=\"true\">Lessons</a>"
        ));
        assert_eq!(
            links_in(&html, "<nav class=\"subnav\" aria-label=\"Lessons pages\">"),
            [
                "/lessons",
                "/timetable",
                "/rosters",
                "/students",
                "/files",
                "/exams"
            ]
        );
        assert!(html.contains(
            "<a href=\"/timetable\" class=\"current\" aria-current=\"page\">Timetable</a>"
        ));
        assert_eq!(html.matches("aria-current").count(), 2, "{html}");

        // On a section's first page the page is marked once, in the
        // sub-navigation; the section link says only "in this section".
        let lessons = PAGES.iter().find(|p| p.route == "/lessons").unwrap();
        let html = render_page(lessons, &who).unwrap();
        assert!(html.contains(
            "<a href=\"/lessons\" data-section=\"lessons\" class=\"current\" aria-current=\"true\">Lessons</a>"
        ));
        assert!(html
            .contains("<a href=\"/lessons\" class=\"current\" aria-current=\"page\">Lessons</a>"));
        assert_eq!(html.matches("aria-current").count(), 2, "{html}");
        // Every page is in exactly one section's sub-navigation.
        for p in PAGES.iter().filter(|p| p.route != "/") {
            let html = render_page(p, &who).unwrap();
            assert!(
                links_in(&html, "<nav class=\"subnav\"").contains(&p.route.to_string()),
                "{}",
                p.route
            );
        }
    }

    #[test]
    fn escapes_html() {
        assert_eq!(
            super::escape(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }
}
