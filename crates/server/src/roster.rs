//! OneRoster 1.1 CSV import: classes, their teachers and students, from a
//! zip uploaded in the console or a per-school drop folder
//! (`<data>/schools/<id>/oneroster/`, read on a schedule).
//!
//! Parsing never trusts the bundle's shape: required files and columns are
//! checked first (missing ones refuse the bundle whole); then each row is
//! checked on its own (status, duplicate `sourcedId`, dates, unknown class,
//! user or session) and a bad row is reported with file, line and reason
//! while the good rows import. The user name a class's members are matched
//! by is `users.csv`'s `username` (the OS / directory login name).
//!
//! A class becomes a user group (members: its students' user names) and each
//! of its teachers gets control of it through one roster-managed access rule
//! per teacher (features [`TEACHER_FEATURES`]). Imports are idempotent by
//! `sourcedId`; a class absent from a later bundle (or `tobedeleted`) is
//! retired: its group and history stay, its teachers' grant goes.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::NaiveDate;
use lectern_policy::access::{Access, AccessRule, Principal};
use lectern_store::roster::{ClassWrite, RosterClass, RosterImport, RosterWrite, TeacherGrant};
use lectern_store::{now_ms, SchoolId};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::state::Shared;

/// Largest uploaded zip, in bytes.
pub const MAX_UPLOAD_BYTES: usize = 16 << 20;
/// Largest CSV file once unpacked, in bytes (a zip bomb stops here).
pub const MAX_FILE_BYTES: u64 = 32 << 20;
/// Most entries a zip may hold.
pub const MAX_ZIP_ENTRIES: usize = 64;
/// Most data rows per CSV file.
pub const MAX_ROWS: usize = 200_000;
/// Most classes per bundle.
pub const MAX_CLASSES: usize = 10_000;
/// Most bad rows listed in a report (all are counted).
pub const MAX_LISTED_PROBLEMS: usize = 1_000;
/// What a rostered teacher's rule grants besides control of their classes:
/// seeing the class's computers and starting lessons for it.
pub const TEACHER_FEATURES: &[&str] = &["devices.view", "lessons.manage"];

/// The files read, and whether each is required.
const FILES: &[(&str, bool)] = &[
    ("academicSessions.csv", true),
    ("users.csv", true),
    ("classes.csv", true),
    ("enrollments.csv", true),
    ("orgs.csv", false),
    ("courses.csv", false),
    ("manifest.csv", false),
];

/// Required columns per file (OneRoster 1.1's required fields).
const REQUIRED: &[(&str, &[&str])] = &[
    (
        "academicSessions.csv",
        &[
            "sourcedId",
            "title",
            "type",
            "startDate",
            "endDate",
            "schoolYear",
        ],
    ),
    (
        "users.csv",
        &[
            "sourcedId",
            "enabledUser",
            "orgSourcedIds",
            "role",
            "username",
            "givenName",
            "familyName",
        ],
    ),
    (
        "classes.csv",
        &[
            "sourcedId",
            "title",
            "courseSourcedId",
            "classType",
            "schoolSourcedId",
            "termSourcedIds",
        ],
    ),
    (
        "enrollments.csv",
        &[
            "sourcedId",
            "classSourcedId",
            "schoolSourcedId",
            "userSourcedId",
            "role",
        ],
    ),
];

/// `[roster]` in `server.toml`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RosterConfig {
    /// Seconds between looks at the drop folders (at least 1).
    pub folder_interval_secs: u64,
}

impl Default for RosterConfig {
    fn default() -> Self {
        RosterConfig {
            folder_interval_secs: 900,
        }
    }
}

/// Why a bundle was refused whole (nothing imported).
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    /// A required file is absent.
    #[error("the bundle has no {0}")]
    MissingFile(&'static str),
    /// A file lacks required columns.
    #[error("{file} lacks the required columns {columns}")]
    MissingColumns {
        /// File.
        file: &'static str,
        /// Comma-separated.
        columns: String,
    },
    /// A file or the bundle is over a size or row limit.
    #[error("{0}")]
    TooLarge(String),
    /// Not a readable zip or CSV.
    #[error("{0}")]
    Unreadable(String),
    /// A delta bundle (only bulk bundles are read).
    #[error("{0} is a delta file; export a bulk bundle (classes absent from it would be retired)")]
    Delta(String),
}

/// One bad row.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Problem {
    /// The file.
    pub file: &'static str,
    /// Its line (1 is the header).
    pub line: u64,
    /// What is wrong.
    pub reason: String,
}

/// Row counts of one file.
#[derive(Debug, Clone, Default, Serialize)]
pub struct FileCount {
    /// Data rows read.
    pub rows: usize,
    /// Rows taken.
    pub imported: usize,
    /// Bad rows.
    pub bad: usize,
    /// Rows marked `tobedeleted`.
    pub deleted: usize,
    /// Rows read but not used (roles other than teacher and student,
    /// disabled users).
    pub ignored: usize,
}

/// A bundle's files, by name.
#[derive(Debug, Default)]
pub struct Bundle {
    files: BTreeMap<&'static str, Vec<u8>>,
}

impl Bundle {
    /// SHA-256 over the files' names and contents.
    pub fn digest(&self) -> String {
        let mut h = Sha256::new();
        for (name, data) in &self.files {
            h.update(name.as_bytes());
            h.update((data.len() as u64).to_le_bytes());
            h.update(data);
        }
        hex::encode(h.finalize())
    }

    fn add(&mut self, name: &str, data: Vec<u8>) {
        if let Some((known, _)) = FILES.iter().find(|(f, _)| f.eq_ignore_ascii_case(name)) {
            self.files.insert(known, data);
        }
    }

    /// Reads the known files from a zip (any folder inside it).
    pub fn from_zip(bytes: &[u8]) -> Result<Self, BundleError> {
        let unreadable = |e: zip::result::ZipError| {
            BundleError::Unreadable(format!("the upload is not a readable zip: {e}"))
        };
        let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).map_err(unreadable)?;
        if zip.len() > MAX_ZIP_ENTRIES {
            return Err(BundleError::TooLarge(format!(
                "the zip holds {} entries; at most {MAX_ZIP_ENTRIES}",
                zip.len()
            )));
        }
        let mut b = Bundle::default();
        for i in 0..zip.len() {
            let entry = zip.by_index(i).map_err(unreadable)?;
            let name = entry
                .name()
                .rsplit('/')
                .next()
                .unwrap_or_default()
                .to_string();
            if !entry.is_file() || !FILES.iter().any(|(f, _)| f.eq_ignore_ascii_case(&name)) {
                continue;
            }
            b.add(&name, read_capped(entry, &name)?);
        }
        Ok(b)
    }

    /// Reads a drop folder: its CSV files, or else the one zip in it.
    pub fn from_folder(dir: &Path) -> Result<Option<Self>, BundleError> {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return Ok(None);
        };
        let mut b = Bundle::default();
        let mut zips = Vec::new();
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            if !e.file_type().is_ok_and(|t| t.is_file()) {
                continue;
            }
            if name.to_ascii_lowercase().ends_with(".zip") {
                zips.push(e.path());
            } else if FILES.iter().any(|(f, _)| f.eq_ignore_ascii_case(&name)) {
                let f = std::fs::File::open(e.path())
                    .map_err(|err| BundleError::Unreadable(format!("{name}: {err}")))?;
                b.add(&name, read_capped(f, &name)?);
            }
        }
        if !b.files.is_empty() {
            return Ok(Some(b));
        }
        match zips.as_slice() {
            [] => Ok(None),
            [one] => {
                let meta =
                    std::fs::metadata(one).map_err(|e| BundleError::Unreadable(e.to_string()))?;
                if meta.len() > MAX_UPLOAD_BYTES as u64 {
                    return Err(BundleError::TooLarge(format!(
                        "the zip is over {MAX_UPLOAD_BYTES} bytes"
                    )));
                }
                let bytes =
                    std::fs::read(one).map_err(|e| BundleError::Unreadable(e.to_string()))?;
                Bundle::from_zip(&bytes).map(Some)
            }
            _ => Err(BundleError::Unreadable(
                "the folder holds more than one zip; leave one bundle".into(),
            )),
        }
    }
}

fn read_capped(r: impl Read, name: &str) -> Result<Vec<u8>, BundleError> {
    read_at_most(r, name, MAX_FILE_BYTES)
}

/// Reads at most `cap` bytes: a file (or a zip entry claiming any size)
/// beyond it is refused without reading more.
fn read_at_most(r: impl Read, name: &str, cap: u64) -> Result<Vec<u8>, BundleError> {
    let mut data = Vec::new();
    r.take(cap + 1)
        .read_to_end(&mut data)
        .map_err(|e| BundleError::Unreadable(format!("{name}: {e}")))?;
    if data.len() as u64 > cap {
        return Err(BundleError::TooLarge(format!(
            "{name} is over {cap} bytes unpacked"
        )));
    }
    Ok(data)
}

/// One CSV data row: its line and fields by column.
struct Row {
    line: u64,
    fields: HashMap<String, String>,
}

impl Row {
    fn get(&self, col: &str) -> &str {
        self.fields.get(col).map(|s| s.trim()).unwrap_or("")
    }
}

/// Reads a file's rows, checking its columns; a malformed record becomes a
/// problem (the rest is read).
fn read_rows(
    file: &'static str,
    data: &[u8],
    problems: &mut Vec<Problem>,
) -> Result<Vec<Row>, BundleError> {
    let data = data.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(data);
    let mut rd = csv::ReaderBuilder::new().flexible(true).from_reader(data);
    let header: Vec<String> = rd
        .headers()
        .map_err(|e| BundleError::Unreadable(format!("{file}: unreadable header: {e}")))?
        .iter()
        .map(|h| h.trim().to_string())
        .collect();
    let required = REQUIRED
        .iter()
        .find(|(f, _)| *f == file)
        .map(|(_, c)| *c)
        .unwrap_or(&[]);
    let missing: Vec<&str> = required
        .iter()
        .copied()
        .filter(|c| !header.iter().any(|h| h == c))
        .collect();
    if !missing.is_empty() {
        return Err(BundleError::MissingColumns {
            file,
            columns: missing.join(", "),
        });
    }
    let mut rows = Vec::new();
    for rec in rd.records() {
        if rows.len() >= MAX_ROWS {
            return Err(BundleError::TooLarge(format!(
                "{file} has more than {MAX_ROWS} rows"
            )));
        }
        let rec = match rec {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map(|p| p.line()).unwrap_or(0);
                problems.push(Problem {
                    file,
                    line,
                    reason: format!("unreadable row: {e}"),
                });
                continue;
            }
        };
        let line = rec.position().map(|p| p.line()).unwrap_or(0);
        if rec.len() != header.len() {
            problems.push(Problem {
                file,
                line,
                reason: format!("{} fields where the header has {}", rec.len(), header.len()),
            });
            continue;
        }
        let fields = header
            .iter()
            .cloned()
            .zip(rec.iter().map(str::to_string))
            .collect();
        rows.push(Row { line, fields });
    }
    Ok(rows)
}

/// What a row's `status` says.
#[derive(PartialEq)]
enum Status {
    Active,
    ToBeDeleted,
}

/// Checks the fields every file shares: status, sourcedId (unique), and
/// `dateLastModified`.
fn common(row: &Row, seen: &mut HashMap<String, u64>) -> Result<(String, Status), String> {
    let status = match row.get("status") {
        "" | "active" => Status::Active,
        "tobedeleted" => Status::ToBeDeleted,
        s => return Err(format!("status {s:?} is not active or tobedeleted")),
    };
    let id = row.get("sourcedId");
    if id.is_empty() || id.len() > 256 {
        return Err("sourcedId is empty or over 256 characters".into());
    }
    if let Some(first) = seen.get(id) {
        return Err(format!(
            "duplicate sourcedId {id:?} (first on line {first})"
        ));
    }
    let modified = row.get("dateLastModified");
    if !modified.is_empty()
        && chrono::DateTime::parse_from_rfc3339(modified).is_err()
        && NaiveDate::parse_from_str(modified, "%Y-%m-%d").is_err()
    {
        return Err(format!(
            "dateLastModified {modified:?} is not an ISO 8601 date"
        ));
    }
    seen.insert(id.to_string(), row.line);
    Ok((id.to_string(), status))
}

fn date(row: &Row, col: &str, required: bool) -> Result<Option<NaiveDate>, String> {
    let v = row.get(col);
    if v.is_empty() && !required {
        return Ok(None);
    }
    NaiveDate::parse_from_str(v, "%Y-%m-%d")
        .map(Some)
        .map_err(|_| format!("{col} {v:?} is not a date (YYYY-MM-DD)"))
}

fn dates(row: &Row, start: &str, end: &str, required: bool) -> Result<(), String> {
    if let (Some(s), Some(e)) = (date(row, start, required)?, date(row, end, required)?) {
        if e < s {
            return Err(format!("{end} {e} is before {start} {s}"));
        }
    }
    Ok(())
}

/// A user from `users.csv`.
struct User {
    username: String,
    /// Disabled or `tobedeleted`: their enrollments are skipped.
    usable: bool,
}

/// A parsed bundle: the classes with their people, and what was wrong.
#[derive(Debug, Default)]
pub struct Parsed {
    /// Classes by sourcedId.
    pub classes: BTreeMap<String, ClassWrite>,
    /// Classes marked `tobedeleted`.
    pub deleted: BTreeSet<String>,
    /// Counts per file.
    pub counts: BTreeMap<&'static str, FileCount>,
    /// Bad rows, in file order.
    pub problems: Vec<Problem>,
}

impl Parsed {
    fn bad(&mut self, file: &'static str, line: u64, reason: String) {
        self.counts.entry(file).or_default().bad += 1;
        self.problems.push(Problem { file, line, reason });
    }
}

/// Parses and checks a bundle.
pub fn parse(b: &Bundle) -> Result<Parsed, BundleError> {
    for (f, required) in FILES {
        if *required && !b.files.contains_key(f) {
            return Err(BundleError::MissingFile(f));
        }
    }
    if let Some(m) = b.files.get("manifest.csv") {
        bulk_only(m)?;
    }
    let mut p = Parsed::default();
    let file = |p: &mut Parsed, f: &'static str| -> Result<Vec<Row>, BundleError> {
        let mut problems = Vec::new();
        let rows = read_rows(f, &b.files[f], &mut problems)?;
        let c = p.counts.entry(f).or_default();
        c.rows = rows.len() + problems.len();
        c.bad = problems.len();
        p.problems.extend(problems);
        Ok(rows)
    };
    let rows = file(&mut p, "academicSessions.csv")?;
    let sessions = sessions(&mut p, rows);
    let rows = file(&mut p, "users.csv")?;
    let users = users(&mut p, rows);
    let rows = file(&mut p, "classes.csv")?;
    classes(&mut p, rows, &sessions)?;
    let rows = file(&mut p, "enrollments.csv")?;
    enrollments(&mut p, rows, &users);
    for c in p.classes.values_mut() {
        c.teachers.sort_by_key(|t| t.to_lowercase());
        c.teachers.dedup_by(|a, b| a.eq_ignore_ascii_case(b));
        c.students.sort_by_key(|t| t.to_lowercase());
        c.students.dedup_by(|a, b| a.eq_ignore_ascii_case(b));
    }
    Ok(p)
}

/// Refuses a manifest naming any file as `delta`.
fn bulk_only(data: &[u8]) -> Result<(), BundleError> {
    let mut rd = csv::ReaderBuilder::new().flexible(true).from_reader(data);
    for rec in rd.records().flatten() {
        let (k, v) = (
            rec.get(0).unwrap_or("").trim(),
            rec.get(1).unwrap_or("").trim(),
        );
        if k.starts_with("file.") && v.eq_ignore_ascii_case("delta") {
            return Err(BundleError::Delta(
                k.trim_start_matches("file.").to_string(),
            ));
        }
    }
    Ok(())
}

fn sessions(p: &mut Parsed, rows: Vec<Row>) -> BTreeSet<String> {
    const F: &str = "academicSessions.csv";
    let (mut seen, mut ok) = (HashMap::new(), BTreeSet::new());
    for row in rows {
        let checked = common(&row, &mut seen)
            .and_then(|(id, st)| dates(&row, "startDate", "endDate", true).map(|_| (id, st)));
        match checked {
            Err(reason) => p.bad(F, row.line, reason),
            Ok((_, Status::ToBeDeleted)) => p.counts.entry(F).or_default().deleted += 1,
            Ok((id, Status::Active)) => {
                p.counts.entry(F).or_default().imported += 1;
                ok.insert(id);
            }
        }
    }
    ok
}

/// Checks a user name the way console accounts are checked.
fn username(row: &Row) -> Result<String, String> {
    let u = row.get("username");
    if u.is_empty()
        || u.chars().count() > 128
        || u.chars().any(|c| c.is_control() || c.is_whitespace())
    {
        return Err(format!(
            "username {u:?} is empty, over 128 characters or has spaces"
        ));
    }
    Ok(u.to_string())
}

fn users(p: &mut Parsed, rows: Vec<Row>) -> HashMap<String, User> {
    const F: &str = "users.csv";
    const ROLES: &[&str] = &[
        "administrator",
        "aide",
        "guardian",
        "parent",
        "proctor",
        "relative",
        "student",
        "teacher",
    ];
    let (mut seen, mut out) = (HashMap::new(), HashMap::new());
    for row in rows {
        let checked = common(&row, &mut seen).and_then(|(id, st)| {
            let role = row.get("role");
            if !ROLES.contains(&role) {
                return Err(format!("role {role:?} is not a OneRoster role"));
            }
            let enabled = match row.get("enabledUser") {
                "true" => true,
                "false" => false,
                v => return Err(format!("enabledUser {v:?} is not true or false")),
            };
            Ok((id, st, enabled, username(&row)?))
        });
        match checked {
            Err(reason) => p.bad(F, row.line, reason),
            Ok((id, st, enabled, username)) => {
                let c = p.counts.entry(F).or_default();
                let usable = st == Status::Active && enabled;
                match (&st, enabled) {
                    (Status::ToBeDeleted, _) => c.deleted += 1,
                    (_, false) => c.ignored += 1,
                    _ => c.imported += 1,
                }
                out.insert(id, User { username, usable });
            }
        }
    }
    out
}

fn classes(p: &mut Parsed, rows: Vec<Row>, sessions: &BTreeSet<String>) -> Result<(), BundleError> {
    const F: &str = "classes.csv";
    let mut seen = HashMap::new();
    for row in rows {
        let checked = common(&row, &mut seen).and_then(|(id, st)| {
            let title = row.get("title");
            if title.is_empty()
                || title.chars().count() > 100
                || title.chars().any(char::is_control)
            {
                return Err("title is empty, over 100 characters or has control characters".into());
            }
            let terms: Vec<String> = row
                .get("termSourcedIds")
                .split(',')
                .map(|t| t.trim().to_string())
                .filter(|t| !t.is_empty())
                .collect();
            if terms.is_empty() {
                return Err("termSourcedIds is empty".into());
            }
            if let Some(t) = terms.iter().find(|t| !sessions.contains(*t)) {
                return Err(format!("unknown academic session {t:?}"));
            }
            Ok((id, st, title.to_string(), terms))
        });
        match checked {
            Err(reason) => p.bad(F, row.line, reason),
            Ok((id, Status::ToBeDeleted, _, _)) => {
                p.counts.entry(F).or_default().deleted += 1;
                p.deleted.insert(id);
            }
            Ok((id, Status::Active, title, terms)) => {
                if p.classes.len() >= MAX_CLASSES {
                    return Err(BundleError::TooLarge(format!(
                        "more than {MAX_CLASSES} classes"
                    )));
                }
                p.counts.entry(F).or_default().imported += 1;
                p.classes.insert(
                    id.clone(),
                    ClassWrite {
                        sourced_id: id,
                        title,
                        teachers: vec![],
                        students: vec![],
                        terms,
                    },
                );
            }
        }
    }
    Ok(())
}

/// What an enrollment row adds, once checked.
enum Enrolled {
    Teacher(String, String),
    Student(String, String),
    Skipped,
    Deleted,
}

fn enrollment(
    p: &Parsed,
    row: &Row,
    seen: &mut HashMap<String, u64>,
    users: &HashMap<String, User>,
) -> Result<Enrolled, String> {
    let (_, st) = common(row, seen)?;
    dates(row, "beginDate", "endDate", false)?;
    let role = row.get("role");
    if !["administrator", "proctor", "student", "teacher", "aide"].contains(&role) {
        return Err(format!("role {role:?} is not a OneRoster enrollment role"));
    }
    let class = row.get("classSourcedId");
    if !p.classes.contains_key(class) && !p.deleted.contains(class) {
        return Err(format!("unknown class {class:?}"));
    }
    let user = row.get("userSourcedId");
    let Some(u) = users.get(user) else {
        return Err(format!("unknown user {user:?}"));
    };
    if st == Status::ToBeDeleted {
        return Ok(Enrolled::Deleted);
    }
    if !u.usable || p.deleted.contains(class) {
        return Ok(Enrolled::Skipped);
    }
    Ok(match role {
        "teacher" => Enrolled::Teacher(class.to_string(), u.username.clone()),
        "student" => Enrolled::Student(class.to_string(), u.username.clone()),
        _ => Enrolled::Skipped,
    })
}

fn enrollments(p: &mut Parsed, rows: Vec<Row>, users: &HashMap<String, User>) {
    const F: &str = "enrollments.csv";
    let mut seen = HashMap::new();
    for row in rows {
        match enrollment(p, &row, &mut seen, users) {
            Err(reason) => p.bad(F, row.line, reason),
            Ok(Enrolled::Deleted) => p.counts.entry(F).or_default().deleted += 1,
            Ok(Enrolled::Skipped) => p.counts.entry(F).or_default().ignored += 1,
            Ok(Enrolled::Teacher(c, u)) => {
                p.counts.entry(F).or_default().imported += 1;
                if let Some(c) = p.classes.get_mut(&c) {
                    c.teachers.push(u);
                }
            }
            Ok(Enrolled::Student(c, u)) => {
                p.counts.entry(F).or_default().imported += 1;
                if let Some(c) = p.classes.get_mut(&c) {
                    c.students.push(u);
                }
            }
        }
    }
}

/// A placeholder group id for a class whose group the import will create:
/// negative, so it never names an existing group, and the delegation check
/// treats it like any group the granter holds nothing for (only access to
/// Entire Network covers it).
fn placeholder(index: usize) -> i64 {
    -(index as i64) - 1
}

/// What an import changes, and the rights it needs.
#[derive(Debug, Default)]
pub struct Plan {
    /// What the store writes.
    pub write: RosterWrite,
    /// Titles of classes made.
    pub created: Vec<String>,
    /// Titles of classes changed (title, teachers, students, terms, or back
    /// from retirement).
    pub updated: Vec<String>,
    /// Titles of classes retired.
    pub retired: Vec<String>,
    /// Classes left as they were.
    pub unchanged: usize,
    /// Teachers whose roster rule is written (new or changed).
    pub granted: Vec<String>,
    /// Teachers whose roster rule is removed.
    pub removed: Vec<String>,
    /// Each rule change as (old, new); ids of groups yet to be made are
    /// [`placeholder`]s.
    pub rule_changes: Vec<(Option<AccessRule>, Option<AccessRule>)>,
    /// Existing groups whose members change.
    pub member_changes: Vec<i64>,
    /// Groups to make.
    pub new_groups: usize,
}

impl Plan {
    /// Whether the import would write anything.
    pub fn changes(&self) -> bool {
        !(self.created.is_empty()
            && self.updated.is_empty()
            && self.retired.is_empty()
            && self.rule_changes.is_empty())
    }
}

/// Whether a stored class still has the bundle's title (its group may carry
/// the sourcedId too, where another group had the title).
fn same_title(stored: &RosterClass, title: &str) -> bool {
    stored.title == title || stored.title.starts_with(&format!("{title} ("))
}

/// Compares a parsed bundle with the stored roster and rules.
pub fn plan(
    parsed: &Parsed,
    stored: &[RosterClass],
    roster_rules: &BTreeMap<String, i64>,
    rules: &[AccessRule],
) -> Plan {
    let mut p = Plan::default();
    let by_id: HashMap<&str, &RosterClass> =
        stored.iter().map(|c| (c.sourced_id.as_str(), c)).collect();
    let mut groups: HashMap<&str, i64> = HashMap::new();
    let mut teachers: BTreeMap<String, (String, Vec<String>)> = BTreeMap::new();
    for (i, c) in parsed.classes.values().enumerate() {
        match by_id.get(c.sourced_id.as_str()) {
            None => {
                p.created.push(c.title.clone());
                p.new_groups += 1;
                groups.insert(&c.sourced_id, placeholder(i));
            }
            Some(old) => {
                groups.insert(&c.sourced_id, old.group_id);
                if old.students != c.students {
                    p.member_changes.push(old.group_id);
                }
                if !same_title(old, &c.title)
                    || old.teachers != c.teachers
                    || old.students != c.students
                    || old.terms != c.terms
                    || old.retired_at.is_some()
                {
                    p.updated.push(c.title.clone());
                } else {
                    p.unchanged += 1;
                }
            }
        }
        for t in &c.teachers {
            let e = teachers
                .entry(t.to_lowercase())
                .or_insert_with(|| (t.clone(), vec![]));
            e.1.push(c.sourced_id.clone());
        }
        p.write.classes.push(c.clone());
    }
    for old in stored.iter().filter(|c| c.retired_at.is_none()) {
        if !parsed.classes.contains_key(&old.sourced_id) {
            p.retired.push(old.title.clone());
            p.write.retire.push(old.sourced_id.clone());
        }
    }
    let rule_of = |user: &str| {
        roster_rules
            .iter()
            .find(|(u, _)| u.eq_ignore_ascii_case(user))
            .and_then(|(_, id)| rules.iter().find(|r| r.id == *id))
    };
    for (name, classes) in teachers.values() {
        let new = AccessRule {
            id: 0,
            principal: Principal::User(name.clone()),
            features: TEACHER_FEATURES.iter().map(|f| f.to_string()).collect(),
            group_access: classes
                .iter()
                .map(|c| (groups[c.as_str()], Access::Control))
                .collect(),
            bypass_privacy: false,
        };
        let old = rule_of(name);
        if !old.is_some_and(|o| AccessRule { id: 0, ..o.clone() } == new) {
            p.granted.push(name.clone());
            p.rule_changes.push((old.cloned(), Some(new)));
        }
        p.write.grants.push(TeacherGrant {
            username: name.clone(),
            features: TEACHER_FEATURES.iter().map(|f| f.to_string()).collect(),
            classes: classes.clone(),
        });
    }
    for user in roster_rules.keys() {
        if !teachers.contains_key(&user.to_lowercase()) {
            p.removed.push(user.clone());
            p.rule_changes.push((rule_of(user).cloned(), None));
        }
    }
    p
}

/// The report of an import or dry run.
pub fn report(parsed: &Parsed, plan: &Plan) -> Value {
    json!({
        "files": parsed.counts,
        "problems": parsed.problems.iter().take(MAX_LISTED_PROBLEMS).collect::<Vec<_>>(),
        "problems_total": parsed.problems.len(),
        "classes": {
            "created": plan.created,
            "updated": plan.updated,
            "retired": plan.retired,
            "unchanged": plan.unchanged,
        },
        "teachers": {"granted": plan.granted, "removed": plan.removed},
    })
}

/// A school's drop folder: `<data>/schools/<id>/oneroster/`. Only the
/// server chooses it; no request names a path.
pub fn folder(data_dir: &Path, school: SchoolId) -> PathBuf {
    data_dir
        .join("schools")
        .join(school.to_string())
        .join("oneroster")
}

/// The interval between looks at the drop folder.
pub fn interval(st: &Shared) -> Duration {
    Duration::from_secs(st.config.roster.folder_interval_secs.max(1))
}

/// An import's record for the store.
pub fn record(
    source: &str,
    actor: &str,
    dry_run: bool,
    outcome: &str,
    digest: String,
    report: Value,
) -> RosterImport {
    RosterImport {
        id: 0,
        at: now_ms(),
        source: source.to_string(),
        actor: actor.to_string(),
        dry_run,
        outcome: outcome.to_string(),
        digest,
        report,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SESSIONS: &str = "sourcedId,title,type,startDate,endDate,schoolYear\nt1,Autumn,term,2026-09-01,2026-12-20,2027\n";
    const USERS: &str =
        "sourcedId,status,enabledUser,orgSourcedIds,role,username,givenName,familyName\n\
        u1,,true,o,teacher,ms.khan,A,K\nu2,,true,o,student,amara,A,A\nu3,,false,o,student,ben,B,B\n\
        u4,tobedeleted,true,o,student,chloe,C,C\n";

    fn bundle(classes: &str, enrollments: &str) -> Bundle {
        let mut b = Bundle::default();
        b.add("academicSessions.csv", SESSIONS.into());
        b.add("USERS.csv", format!("\u{feff}{USERS}").into_bytes());
        b.add("classes.csv", classes.into());
        b.add("enrollments.csv", enrollments.into());
        b
    }

    #[test]
    fn rows_are_checked_one_by_one_with_their_lines() {
        let classes = "sourcedId,status,title,courseSourcedId,classType,location,schoolSourcedId,termSourcedIds\n\
            c1,,\"Science, set 1\",k,scheduled,\"Lab\n2\",o,t1\nc2,tobedeleted,Old,k,scheduled,,o,t1\nc3,,Ragged\nc4,maybe,X,k,scheduled,,o,t1\n";
        let enrollments = "sourcedId,classSourcedId,schoolSourcedId,userSourcedId,role\n\
            e1,c1,o,u1,teacher\ne2,c1,o,u2,student\ne3,c1,o,u3,student\ne4,c1,o,u4,student\ne5,c2,o,u2,student\ne6,c1,o,u2,pupil\n";
        let p = parse(&bundle(classes, enrollments)).unwrap();
        let c1 = &p.classes["c1"];
        assert_eq!(c1.title, "Science, set 1");
        assert_eq!(
            (c1.teachers.clone(), c1.students.clone()),
            (vec!["ms.khan".to_string()], vec!["amara".to_string()])
        );
        assert!(p.deleted.contains("c2"));
        let lines: Vec<(&str, u64)> = p.problems.iter().map(|x| (x.file, x.line)).collect();
        // The quoted location spans lines 2 and 3: the next records are on 4, 5 and 6.
        assert_eq!(
            lines,
            [
                ("classes.csv", 5),
                ("classes.csv", 6),
                ("enrollments.csv", 7)
            ]
        );
        let e = &p.counts["enrollments.csv"];
        assert_eq!((e.imported, e.ignored, e.deleted, e.bad), (2, 3, 0, 1));
        assert_eq!(p.counts["users.csv"].deleted, 1);
    }

    #[test]
    fn a_file_over_its_cap_is_refused_without_reading_on() {
        let endless = std::io::repeat(b'a');
        assert!(matches!(
            read_at_most(endless, "users.csv", 1024),
            Err(BundleError::TooLarge(_))
        ));
        assert_eq!(read_at_most(&b"abc"[..], "users.csv", 3).unwrap(), b"abc");
    }

    #[test]
    fn missing_files_and_columns_refuse_the_bundle() {
        let mut b = bundle("sourcedId\n", "sourcedId\n");
        assert!(matches!(
            parse(&b),
            Err(BundleError::MissingColumns {
                file: "classes.csv",
                ..
            })
        ));
        b.files.remove("users.csv");
        assert!(matches!(
            parse(&b),
            Err(BundleError::MissingFile("users.csv"))
        ));
    }
}
