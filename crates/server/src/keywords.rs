//! The school's keyword libraries, which of them apply to each device and
//! user (and with which severity actions), their compiled scanners, and what
//! happens when activity text matches: a violation with context and its
//! library, evidence screenshots from the device's rolling buffer, a live
//! alert, and a lock for the most severe terms.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use lectern_keywords::{Library, Match, Scanner};
use lectern_policy::kwpolicy::{resolve_libraries, LibraryGrant};
use lectern_proto::{ActivityEvent, Capability, Command, ServerMsg};
use lectern_store::kwpolicy::{KeywordAssignment, KeywordLibraryRow};
use lectern_store::{NewAudit, SchoolId, TargetStatus, Violation};
use serde::Serialize;

use crate::device_rules::EvidenceKey;
use crate::hub::ConsoleEvent;
use crate::state::{AppState, Shared};

/// The built-in default library's name in a new school.
pub const DEFAULT_NAME: &str = "Lectern default";

/// Most compiled unions of libraries kept at once (one per distinct set of
/// libraries in use; a school has few).
const MAX_UNIONS: usize = 64;

/// The shipped library, parsed once.
pub fn default_library() -> Arc<Library> {
    static LIB: OnceLock<Arc<Library>> = OnceLock::new();
    LIB.get_or_init(|| Arc::new(Library::default_library()))
        .clone()
}

/// One stored library with its terms.
#[derive(Debug)]
pub struct LibEntry {
    /// The store's row (without its terms' JSON).
    pub row: KeywordLibraryRow,
    /// Its terms.
    pub library: Arc<Library>,
    /// A hash of its stored terms: what agents were sent is known by it.
    pub digest: u64,
}

/// Libraries and assignments as stored.
#[derive(Default)]
pub struct Catalog {
    /// Libraries by id.
    pub libs: BTreeMap<i64, Arc<LibEntry>>,
    /// Every assignment.
    pub assignments: Vec<KeywordAssignment>,
}

/// A library that applies to a subject, where that came from, and what its
/// matches do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Applied {
    /// The library.
    pub library_id: i64,
    /// Its name.
    pub library: String,
    /// `default`, `own` or `imported`.
    pub kind: String,
    /// The group whose assignment decided it.
    pub group_id: i64,
    /// That group's name.
    pub group_name: String,
    /// The action for severities 1–5.
    pub actions: Vec<String>,
    /// `library` when the assignment sets its own actions, else `school`
    /// (the school's `keyword_actions`).
    pub actions_from: &'static str,
    /// Its terms' digest (part of what agents were sent).
    #[serde(skip)]
    pub digest: u64,
}

impl Applied {
    /// The action for a severity.
    pub fn action(&self, severity: u8) -> String {
        let i = usize::from(severity.clamp(1, 5)) - 1;
        self.actions.get(i).cloned().unwrap_or_else(|| "log".into())
    }
}

/// The union of some libraries' terms, compiled.
pub struct Compiled {
    /// Their terms; a term (and category) in several libraries is kept once,
    /// from the first.
    pub library: Library,
    /// Its scanner.
    pub scanner: Scanner,
    /// (term, category), lower-cased, to its library's place in the list.
    origin: HashMap<(String, String), usize>,
}

/// The libraries that apply to a subject and their compiled union.
pub struct Union {
    /// The libraries, the strongest group's first.
    pub applied: Vec<Applied>,
    /// Their terms, compiled.
    pub compiled: Arc<Compiled>,
}

impl Union {
    /// The library a match came from.
    pub fn origin(&self, term: &str, category: &str) -> Option<&Applied> {
        self.compiled
            .origin
            .get(&(term.trim().to_lowercase(), category.trim().to_lowercase()))
            .map(|&i| &self.applied[i])
    }
}

/// What identifies a union: its libraries and their terms' digests.
type UnionKey = Vec<(i64, u64)>;

fn key_of(applied: &[Applied]) -> UnionKey {
    applied.iter().map(|a| (a.library_id, a.digest)).collect()
}

/// The libraries, the compiled unions in use and what each agent was sent.
#[derive(Default)]
pub struct Keywords {
    /// Each school's libraries and assignments.
    catalogs: RwLock<HashMap<SchoolId, Arc<Catalog>>>,
    unions: Mutex<HashMap<UnionKey, Arc<Compiled>>>,
    /// The union each connected agent that scans for itself was last sent.
    pushed: Mutex<HashMap<i64, UnionKey>>,
}

impl Keywords {
    /// The school's libraries and assignments in force (none for a school
    /// not loaded yet).
    pub fn catalog(&self, school: SchoolId) -> Arc<Catalog> {
        self.catalogs
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&school)
            .cloned()
            .unwrap_or_default()
    }

    /// Whether the school's libraries were loaded.
    pub fn loaded(&self, school: SchoolId) -> bool {
        self.catalogs
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .contains_key(&school)
    }

    fn install(&self, school: SchoolId, c: Catalog) {
        self.catalogs
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(school, Arc::new(c));
    }

    /// Forgets what a device was sent (it reconnected: send again).
    pub fn forget_device(&self, device: i64) {
        self.pushed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&device);
    }
}

/// Parses a stored row's terms (the default's are the shipped library).
fn entry_of(row: KeywordLibraryRow) -> Result<LibEntry, String> {
    let library = match (&row.kind[..], &row.terms) {
        ("default", _) | (_, None) => default_library(),
        (_, Some(json)) => Arc::new(
            serde_json::from_str(json)
                .map_err(|e| format!("library {} ({}): {e}", row.id, row.name))?,
        ),
    };
    let digest = {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        row.terms.hash(&mut h);
        h.finish()
    };
    Ok(LibEntry {
        row,
        library,
        digest,
    })
}

/// Sets up the school's libraries on first start (the pre-0020 single
/// library becomes its own, enabled for Entire Network) and installs them.
pub async fn load(st: &Shared, school: SchoolId) -> Result<(), String> {
    st.db(move |s| {
        let en = s
            .list_groups(school)?
            .into_iter()
            .find(|g| g.group.kind == lectern_policy::groups::GroupKind::EntireNetwork)
            .map(|g| g.group.id)
            .ok_or_else(|| lectern_store::StoreError::Corrupt("no Entire Network group".into()))?;
        s.kwpolicy()
            .ensure_keyword_libraries(school, en, DEFAULT_NAME)
    })
    .await
    .map_err(|e| e.message)?;
    reload(st, school).await
}

/// Reads the libraries and assignments from the store and installs them. A
/// stored library that does not parse is left out (logged) rather than
/// stopping the others.
pub async fn reload(st: &Shared, school: SchoolId) -> Result<(), String> {
    let (rows, assignments) = st
        .db(move |s| {
            let k = s.kwpolicy();
            Ok((k.keyword_libraries(school)?, k.keyword_assignments(school)?))
        })
        .await
        .map_err(|e| e.message)?;
    let mut libs = BTreeMap::new();
    for row in rows {
        match entry_of(row) {
            Ok(e) => {
                libs.insert(e.row.id, Arc::new(e));
            }
            Err(e) => tracing::error!("ignoring an unreadable keyword library: {e}"),
        }
    }
    st.keywords.install(school, Catalog { libs, assignments });
    Ok(())
}

/// The action for a severity: the school's `keyword_actions` setting (by
/// default `server.toml`'s). Libraries without actions of their own use it.
pub fn action_for(st: &AppState, school: SchoolId, severity: u8) -> String {
    let i = usize::from(severity.clamp(1, 5)) - 1;
    st.settings.get(st, school).keyword_actions[i]
        .as_str()
        .to_string()
}

/// The libraries that apply to a device (its enrolled name) and/or user,
/// with provenance and actions, the strongest group's first.
pub fn applied(
    st: &AppState,
    school: SchoolId,
    hostname: Option<&str>,
    user: Option<&str>,
) -> Vec<Applied> {
    let policies = st.policies.of(school);
    let groups: Vec<_> = policies
        .resolve(hostname, user)
        .groups
        .into_iter()
        .filter_map(|id| policies.group(id))
        .map(|r| r.group)
        .collect();
    let matching: Vec<&lectern_policy::groups::Group> = groups.iter().collect();
    let catalog = st.keywords.catalog(school);
    let grants: Vec<LibraryGrant> = catalog
        .assignments
        .iter()
        .map(|a| LibraryGrant {
            library_id: a.library_id,
            group_id: a.group_id,
            enabled: a.enabled,
        })
        .collect();
    let school_actions: Vec<String> = (1..=5).map(|s| action_for(st, school, s)).collect();
    resolve_libraries(&matching, &grants)
        .into_iter()
        .filter_map(|r| {
            let lib = catalog.libs.get(&r.library_id)?;
            let own = catalog.assignments[r.grant].actions.clone();
            Some(Applied {
                library_id: r.library_id,
                library: lib.row.name.clone(),
                kind: lib.row.kind.clone(),
                group_id: r.group_id,
                group_name: r.group_name,
                actions_from: if own.is_some() { "library" } else { "school" },
                actions: own.unwrap_or_else(|| school_actions.clone()),
                digest: lib.digest,
            })
        })
        .collect()
}

/// The compiled union of `applied` (cached per set of libraries and their
/// versions, whatever the actions).
pub fn union_of(st: &AppState, school: SchoolId, applied: Vec<Applied>) -> Union {
    let key = key_of(&applied);
    let mut unions = st.keywords.unions.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(c) = unions.get(&key) {
        return Union {
            applied,
            compiled: c.clone(),
        };
    }
    let catalog = st.keywords.catalog(school);
    let mut terms = Vec::new();
    let mut origin = HashMap::new();
    for (i, a) in applied.iter().enumerate() {
        let Some(lib) = catalog.libs.get(&a.library_id) else {
            continue;
        };
        for t in &lib.library.terms {
            let k = (
                t.term.trim().to_lowercase(),
                t.category.trim().to_lowercase(),
            );
            if let std::collections::hash_map::Entry::Vacant(e) = origin.entry(k) {
                e.insert(i);
                terms.push(t.clone());
            }
        }
    }
    let library = Library::new(terms);
    // Terms were validated when saved; the scanner takes any library.
    let scanner = Scanner::new(&library).unwrap_or_else(|e| {
        tracing::error!("cannot compile the keyword libraries: {e}");
        Scanner::new(&Library::default()).expect("an empty library compiles")
    });
    let compiled = Arc::new(Compiled {
        library,
        scanner,
        origin,
    });
    if unions.len() >= MAX_UNIONS {
        unions.clear();
    }
    unions.insert(key, compiled.clone());
    Union { applied, compiled }
}

/// The union that applies to a connected device now (its enrolled name and
/// current user); `None` when it is not connected.
pub fn union_for_device(st: &AppState, device: i64) -> Option<Union> {
    let (school, hostname, user) = st.hub.subject(device)?;
    Some(union_of(
        st,
        school,
        applied(st, school, Some(&hostname), user.as_deref()),
    ))
}

/// Sends a connected agent that scans for itself the union of the libraries
/// that apply to it, if that is not what it was last sent. Called for every
/// device whose policy is resolved again (connect, user change, group or
/// library change).
pub fn push_if_changed(
    st: &AppState,
    school: SchoolId,
    device: i64,
    hostname: &str,
    user: Option<&str>,
) {
    if !st.hub.has_capability(device, Capability::KeywordScan) {
        return;
    }
    let applied = applied(st, school, Some(hostname), user);
    let key = key_of(&applied);
    {
        let pushed = st.keywords.pushed.lock().unwrap_or_else(|p| p.into_inner());
        if pushed.get(&device) == Some(&key) {
            return;
        }
    }
    let u = union_of(st, school, applied);
    let library = serde_json::to_value(&u.compiled.library).unwrap_or_default();
    let msg = ServerMsg::Keywords { library };
    if msg.encode().len() > lectern_proto::MAX_SERVER_TEXT_FRAME {
        // Agents refuse larger frames: the device keeps the union it has.
        tracing::error!(
            device,
            terms = u.compiled.library.len(),
            "the keyword libraries that apply to this device are too large to send"
        );
        return;
    }
    if st.hub.send(device, msg) {
        st.keywords
            .pushed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(device, key);
    }
}

/// Re-sends each of the school's connected agents that scan for
/// themselves its libraries where they changed (after a library or
/// assignment change).
pub fn push_to_agents(st: &AppState, school: SchoolId) {
    for (id, hostname, user) in st.hub.subjects(school, None) {
        push_if_changed(st, school, id, &hostname, user.as_deref());
    }
}

/// A match and the library it came from.
pub struct Found<'t, T> {
    /// Where in the event (or `chat`, `text`).
    pub source: T,
    /// The text scanned.
    pub text: &'t str,
    /// The match.
    pub m: Match,
    /// Its library.
    pub applied: Option<Applied>,
}

/// Scans texts of a device with the libraries that apply to it, each term
/// once.
pub fn scan_device<'t, T: Copy>(
    st: &Shared,
    device: i64,
    texts: &'t [(T, String)],
) -> Vec<Found<'t, T>> {
    let Some(u) = union_for_device(st, device) else {
        return Vec::new();
    };
    u.compiled
        .scanner
        .scan_each_term_once(texts)
        .into_iter()
        .map(|(source, text, m)| Found {
            source,
            text,
            applied: u.origin(&m.term, &m.category).cloned(),
            m,
        })
        .collect()
}

/// Scans stored activity events of `device` and acts on every match; devices
/// that scan for themselves (and keep the evidence of the moment) are skipped.
pub async fn scan_events(st: &Shared, school: SchoolId, device: i64, events: &[ActivityEvent]) {
    if st
        .hub
        .policy_of(device)
        .is_some_and(|p| !p.keyword_policies)
        || st.hub.has_capability(device, Capability::KeywordScan)
    {
        return;
    }
    let mut found = Vec::new();
    for e in events {
        let texts = lectern_policy::safety::event_texts(e);
        for f in scan_device(st, device, &texts) {
            let v = violation_of(
                st,
                school,
                device,
                e,
                f.source,
                f.text,
                &f.m,
                f.applied.as_ref(),
            );
            found.push((v, f.applied));
        }
    }
    for (v, applied) in found {
        if !take_violation(st, device) {
            continue; // Counted and logged; the event itself is stored.
        }
        record_from(st, school, v, Finder::Server, applied.as_ref()).await;
    }
}

/// Takes one violation from the device's allowance; false (counted in the
/// metric, logged once per quiet window) when it is used up.
pub fn take_violation(st: &Shared, device: i64) -> bool {
    let limits = crate::device_rules::limits(st, device);
    match st.meters.take_violation(device, limits) {
        Ok(()) => true,
        Err(wait) => {
            crate::metrics::inc(&st.metrics.limited_violations);
            if st.meters.log_refusal(device, limits) {
                tracing::warn!(
                    device,
                    retry_after_ms = wait.as_millis() as u64,
                    "device exceeds its violations rate; refusing more (logged once per window)"
                );
            }
            false
        }
    }
}

/// Who found a violation, which decides how its evidence comes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finder {
    /// The server, scanning stored events: it asks the device for evidence
    /// (unless the action is only `log`).
    Server,
    /// The device itself, which sends evidence frames under this local id.
    Agent {
        /// The device's number for the violation.
        local_id: u64,
    },
}

#[allow(clippy::too_many_arguments)]
fn violation_of(
    st: &Shared,
    school: SchoolId,
    device: i64,
    e: &ActivityEvent,
    source: &str,
    text: &str,
    m: &Match,
    applied: Option<&Applied>,
) -> Violation {
    let person = e
        .user
        .as_deref()
        .and_then(|u| st.policies.of(school).person_for(u));
    Violation {
        id: 0,
        device_id: device,
        user: e.user.clone(),
        term: m.term.clone(),
        category: m.category.clone(),
        severity: m.severity,
        matched: m.matched.to_string(),
        context: lectern_policy::safety::context(text, m.start, m.end),
        source: source.into(),
        action: applied.map_or_else(
            || action_for(st, school, m.severity),
            |a| a.action(m.severity),
        ),
        screenshots: 0,
        at: e.at,
        // For the live event; the store records the id itself.
        person_id: person.as_ref().map(|p| p.id),
        person: person.map(|p| p.display_name),
        retrospective: false,
    }
}

/// A violation an agent found and reported itself (evidence frames follow),
/// and the library its term is in. The device's word is not taken for the
/// library: the term is looked up in the libraries that apply to the device
/// now, whose severity and action then count. A term none of them holds
/// (the agent scans with an older union, or invents one) keeps the reported
/// severity with the school's action and no library.
pub fn from_report(
    st: &Shared,
    school: SchoolId,
    device: i64,
    r: &lectern_proto::ViolationReport,
) -> (Violation, Option<Applied>) {
    let clip = |s: &str, n: usize| s.chars().take(n).collect::<String>();
    let person = r
        .user
        .as_deref()
        .and_then(|u| st.policies.of(school).person_for(u));
    let found = union_for_device(st, device).and_then(|u| {
        let a = u.origin(&r.term, &r.category)?.clone();
        let severity = u
            .compiled
            .library
            .terms
            .iter()
            .find(|t| t.term.eq_ignore_ascii_case(r.term.trim()))
            .map(|t| t.severity)?;
        Some((a, severity))
    });
    let severity = found.as_ref().map_or(r.severity.clamp(1, 5), |(_, s)| *s);
    let action = match &found {
        Some((a, _)) => a.action(severity),
        None => action_for(st, school, severity),
    };
    let v = Violation {
        id: 0,
        device_id: device,
        user: r.user.as_deref().map(|u| clip(u, 256)),
        term: clip(&r.term, 256),
        category: clip(&r.category, 64),
        severity,
        matched: clip(&r.matched, 512),
        context: clip(&r.context, 1024),
        source: clip(&r.source, 32),
        action,
        screenshots: 0,
        at: r.at,
        person_id: person.as_ref().map(|p| p.id),
        person: person.map(|p| p.display_name),
        retrospective: false,
    };
    (v, found.map(|(a, _)| a))
}

/// Stores a violation (see [`record_from`]) with no library.
pub async fn record(st: &Shared, school: SchoolId, v: Violation, finder: Finder) -> Option<i64> {
    record_from(st, school, v, finder, None).await
}

/// Stores a violation and carries out its action, granting (and for the
/// server's own finds, requesting) evidence. Within a burst of matches on one
/// device only the first announces itself (warning, audit) and only the first
/// lock-worthy one locks; the rest are stored quietly. The library the term
/// came from is recorded with it. Returns the new id.
pub async fn record_from(
    st: &Shared,
    school: SchoolId,
    mut v: Violation,
    finder: Finder,
    library: Option<&Applied>,
) -> Option<i64> {
    let row = v.clone();
    let lib = library.map(|a| (a.library_id, a.library.clone()));
    let id = match st
        .db(move |s| {
            let id = s.add_violation(school, &row)?;
            if let Some((lib_id, name)) = &lib {
                s.kwpolicy()
                    .set_violation_library(school, id, *lib_id, name)?;
            }
            Ok(id)
        })
        .await
    {
        Ok(id) => id,
        Err(e) => {
            tracing::error!(
                device = v.device_id,
                "cannot store a violation: {}",
                e.message
            );
            return None;
        }
    };
    v.id = id;
    // Never waits: the mail worker gets a note on a bounded queue.
    crate::mail::noted(st, school, &v);
    let limits = crate::device_rules::limits(st, v.device_id);
    let plan = st
        .meters
        .plan_action(v.device_id, v.action == "lock", limits);
    if plan.announce {
        tracing::warn!(device = v.device_id, term = %v.term, category = %v.category, severity = v.severity, action = %v.action, quiet_before = plan.quiet_before, "keyword violation");
    } else {
        crate::metrics::inc(&st.metrics.actions_quieted);
        tracing::debug!(
            device = v.device_id,
            violation = id,
            "keyword violation in a burst"
        );
    }
    match finder {
        Finder::Agent { local_id } => st.meters.grant(
            EvidenceKey::Reported(v.device_id, local_id),
            v.device_id,
            id,
            limits,
        ),
        Finder::Server if v.action != "log" => {
            // The device answers with its rolling buffer of recent frames.
            st.meters
                .grant(EvidenceKey::Requested(id), v.device_id, id, limits);
            st.hub.send(
                v.device_id,
                ServerMsg::EvidenceRequest {
                    violation_id: id as u64,
                    allowance: Some(limits.allowance()),
                },
            );
        }
        Finder::Server => {}
    }
    if matches!(v.action.as_str(), "alert" | "lock") {
        st.hub.publish(ConsoleEvent::Violation(Box::new(v.clone())));
    }
    if plan.lock {
        lock_device(st, school, &v).await;
    }
    Some(id)
}

async fn lock_device(st: &Shared, school: SchoolId, v: &Violation) {
    let command = Command::Lock {
        text: Some("This computer was locked by the school's online-safety policy.".into()),
        minutes: None,
    };
    let body = serde_json::to_string(&command).unwrap_or_default();
    let targets = vec![(v.device_id, TargetStatus::Pending)];
    let rec = match st
        .db(move |s| s.create_command(school, "online-safety policy", &body, &targets))
        .await
    {
        Ok(r) => r,
        Err(e) => {
            tracing::error!("cannot record the safety lock: {}", e.message);
            return;
        }
    };
    let msg = ServerMsg::Command {
        command_id: rec.id as u64,
        command,
    };
    let sent = st.hub.send_command(v.device_id, rec.id, msg);
    st.audit(NewAudit {
        devices: vec![v.device_id],
        command_id: Some(rec.id),
        detail: format!(
            "violation {}: {} ({}, severity {})",
            v.id, v.term, v.category, v.severity
        ),
        ..st.audit_entry(
            school,
            "online-safety policy",
            None,
            "command.lock",
            if sent { "sent to 1" } else { "device offline" },
        )
    })
    .await;
}

/// Most terms in one library.
pub const MAX_TERMS: usize = 10_000;

/// Most libraries in one school.
pub const MAX_LIBRARIES: usize = 100;

/// What [`save_library`] writes.
pub enum Save {
    /// A new library of this kind (`own` or `imported`), with its source.
    Create {
        /// `own` or `imported`.
        kind: &'static str,
        /// The file or library it came from.
        source: Option<String>,
    },
    /// An existing library (not the default).
    Update(i64),
}

/// Checks a library's name: one line of 1–100 characters.
pub fn check_name(name: &str) -> Result<String, crate::api::ApiError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(crate::api::ApiError::bad_request(
            "a library's name is 1 to 100 characters on one line",
        ));
    }
    Ok(name.to_string())
}

/// The one function that writes a library's name and terms (create, copy,
/// import, rename, edit): checks them, stores them, reloads the libraries
/// and sends agents whose libraries changed the new union. Anything to do
/// when terms change (a retrospective scan) belongs here.
pub async fn save_library(
    st: &Shared,
    school: SchoolId,
    actor: &str,
    what: Save,
    name: &str,
    library: Option<&Library>,
) -> Result<KeywordLibraryRow, crate::api::ApiError> {
    use crate::api::ApiError;
    let name = check_name(name)?;
    let terms = match library {
        Some(lib) => {
            if lib.terms.len() > MAX_TERMS {
                return Err(ApiError::bad_request(format!(
                    "a library holds at most {MAX_TERMS} terms; this one has {}",
                    lib.terms.len()
                )));
            }
            lib.validate()
                .map_err(|e| ApiError::bad_request(e.to_string()))?;
            Some(serde_json::to_string(lib).map_err(ApiError::internal)?)
        }
        None => None,
    };
    let before = school_terms(st, school);
    let by = actor.to_string();
    let row = match what {
        Save::Create { kind, source } => {
            if st.keywords.catalog(school).libs.len() >= MAX_LIBRARIES {
                return Err(ApiError::bad_request(format!(
                    "a school has at most {MAX_LIBRARIES} keyword libraries; delete one first"
                )));
            }
            let row = KeywordLibraryRow {
                id: 0,
                kind: kind.into(),
                name,
                terms: Some(terms.unwrap_or_else(|| r#"{"terms":[]}"#.into())),
                source,
                updated_by: by,
                updated_at: 0,
            };
            st.db(move |s| s.kwpolicy().create_keyword_library(school, &row))
                .await?
        }
        Save::Update(id) => st
            .db(move |s| {
                s.kwpolicy()
                    .save_keyword_library(school, id, &name, terms.as_deref(), &by)
            })
            .await?
            .ok_or_else(|| ApiError::not_found(format!("no library {id}")))?,
    };
    changed(st, school).await?;
    crate::retro::on_terms_changed(st, school, &before, &school_terms(st, school), actor).await;
    Ok(row)
}

/// Every term of the school's libraries, each once: what a rescan of stored
/// activity looks for (which of them applied to a device and its user is
/// decided per event by the rescan).
pub fn school_terms(st: &AppState, school: SchoolId) -> Library {
    let catalog = st.keywords.catalog(school);
    let mut seen = HashSet::new();
    let terms = catalog
        .libs
        .values()
        .flat_map(|l| l.library.terms.iter())
        .filter(|t| seen.insert((*t).clone()))
        .cloned()
        .collect();
    Library { terms }
}

/// After any change to libraries or assignments: reload them and re-send
/// agents whose union changed.
pub async fn changed(st: &Shared, school: SchoolId) -> Result<(), crate::api::ApiError> {
    reload(st, school)
        .await
        .map_err(crate::api::ApiError::internal)?;
    push_to_agents(st, school);
    crate::cluster::announce(st, school).await;
    Ok(())
}
