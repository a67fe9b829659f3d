//! State shared by every request and session.

use std::sync::Arc;

use lectern_store::{NewAudit, SchoolId, Store, TargetUpdate};
use tokio::sync::{mpsc, watch};

use crate::api::ApiError;
use crate::config::ServerConfig;
use crate::hub::Hub;
use crate::limiter::{LoginLimiter, SchoolLimiters};
use crate::metrics::Metrics;
use crate::policies::{to_policy, Policies, SchoolPolicies};

/// How a console sign-in's school was found ([`AppState::sign_in_school`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignInSchool {
    /// The sign-in named it (it may not exist).
    Named(SchoolId),
    /// The server's only school.
    Only(SchoolId),
    /// By the user name, on a server of several: the one school holding
    /// it, or `None`.
    ByName(Option<SchoolId>),
}

/// Handles every part of the server shares.
pub struct AppState {
    /// Persistence.
    pub store: Arc<dyn Store>,
    /// Live sessions.
    pub hub: Hub,
    /// Configuration.
    pub config: ServerConfig,
    /// Login rate limiters, one per school.
    pub limiter: SchoolLimiters,
    /// Students' sign-ins on shared devices, one per school: apart from
    /// console sign-ins, so that students guessing behind the school's one
    /// public address never slow their teachers down.
    pub student_limiter: SchoolLimiters,
    /// Wrong school codes, per address (see [`crate::limiter::school_code_policy`]).
    pub code_limiter: LoginLimiter,
    /// Counters.
    pub metrics: Metrics,
    /// Connection admission: pre-auth budget, promotions, limits.
    pub connections: std::sync::Arc<crate::connections::Connections>,
    /// Command outcomes on their way to the store, written in batches.
    pub results: mpsc::UnboundedSender<TargetUpdate>,
    /// Turns true when the server is stopping.
    pub shutdown: watch::Receiver<bool>,
    /// Each school's groups, lessons, directory and access rules, cached.
    pub policies: SchoolPolicies,
    /// Wakes the lesson timer after lessons change.
    pub lessons_changed: tokio::sync::Notify,
    /// Version given to each policy content since the last reload, so that a
    /// reconnecting classroom reuses versions instead of writing a counter per
    /// connection. Keyed by the policy's JSON with version 0.
    pub policy_versions: std::sync::Mutex<std::collections::HashMap<String, u64>>,
    /// The keyword library and scanner.
    pub keywords: crate::keywords::Keywords,
    /// Per-device rates and quotas, and the evidence allowances granted.
    pub meters: crate::device_rules::Meters,
    /// Who remotely controls which device.
    pub controls: crate::control::Controls,
    /// Per-device rates of raised hands and chat messages.
    pub requests: crate::requests::Meters,
    /// The data directory (evidence, reports, backups).
    pub data_dir: std::path::PathBuf,
    /// Files being sent and collected.
    pub files: crate::files::FilesState,
    /// Each school's settings in force (retention, keyword actions,
    /// thumbnails, backups, login limits).
    pub settings: crate::settings::SchoolSettings,
    /// Open console streams, to close those of an account signed out.
    pub signouts: crate::signout::SignOuts,
    /// Rate of the anonymous availability view, per client address.
    pub availability: crate::devadmin::PublicLimiter,
    /// The time the timetable runs on (movable in debug builds only).
    pub clock: crate::clock::Clock,
    /// Timetable edits and the scheduler's wake-up.
    pub timetable: crate::timetable::Timetable,
    /// This node on the cluster's bus, once joined (`[cluster] nats`);
    /// unset on a single server.
    pub cluster: std::sync::OnceLock<Arc<crate::cluster::Cluster>>,
    /// Acceptable use policies offered to devices, and their answer rates.
    pub aup: crate::aup::AupState,
    /// Safeguarding mail: the alert queue and delivery limits.
    pub mail: crate::mail::Mail,
    /// Per-user budgets of the violation review workflow's changes.
    pub review: crate::review::ReviewState,
    /// Each device's school: what every console's scope checks first.
    pub device_schools: Arc<crate::scope::DeviceSchools>,
    /// The students signed in on shared devices (`crate::students`).
    pub students: crate::students::SignedInStudents,
}

/// Shared pointer to the state.
pub type Shared = Arc<AppState>;

impl AppState {
    /// Runs a store call on a blocking thread, so SQLite never stalls the runtime.
    pub async fn db<T, F>(&self, f: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&dyn Store) -> lectern_store::Result<T> + Send + 'static,
    {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || f(&*store))
            .await
            .map_err(|e| ApiError::internal(format!("store task failed: {e}")))?
            .map_err(ApiError::from)
    }

    /// The server's only school, if it holds exactly one: what a request
    /// that names no school means there (a corridor screen, a script's
    /// sign-in). On a server of several, such a request must name one.
    pub async fn only_school(&self) -> Result<Option<SchoolId>, ApiError> {
        let schools = self.db(|s| s.schools()).await?;
        Ok(match schools.as_slice() {
            [only] => Some(only.id),
            _ => None,
        })
    }

    /// The school a console sign-in is for: the one it names; else the
    /// server's only school; else the one school with a local account of
    /// that name ([`SignInSchool::ByName`]). `None` when that is none or
    /// several: the sign-in page then asks which school (a directory
    /// account, which has no local account, always names its school on a
    /// server of several).
    pub async fn sign_in_school(
        &self,
        named: Option<SchoolId>,
        username: &str,
    ) -> Result<SignInSchool, ApiError> {
        if let Some(id) = named {
            return Ok(SignInSchool::Named(id));
        }
        if let Some(only) = self.only_school().await? {
            return Ok(SignInSchool::Only(only));
        }
        let name = username.to_string();
        let holding = self.db(move |s| s.schools_with_user(&name)).await?;
        Ok(match holding.as_slice() {
            [one] => SignInSchool::ByName(Some(*one)),
            _ => SignInSchool::ByName(None),
        })
    }

    /// A school's name as set up (empty if the school is unknown or the
    /// store fails: a name is for people, never a key).
    pub async fn school_name(&self, school: lectern_store::SchoolId) -> String {
        match self.db(move |s| s.school(school)).await {
            Ok(Some(s)) => s.name,
            Ok(None) => String::new(),
            Err(e) => {
                tracing::warn!(school, "cannot read the school's name: {}", e.message);
                String::new()
            }
        }
    }

    /// Writes an audit entry; a failure is logged, never shown to the user.
    pub async fn audit(&self, entry: NewAudit) {
        if let Err(e) = self.db(move |s| s.audit(&entry)).await {
            tracing::error!("audit write failed: {}", e.message);
        }
    }

    /// Reloads the school's groups, lessons, directory and rules, then
    /// pushes the policy of each of its connected devices if it changed;
    /// after a change, so the cluster's other nodes are told to read the
    /// school again too.
    pub async fn reload_policies(&self, school: SchoolId) -> Result<(), ApiError> {
        self.reload_policies_here(school).await?;
        crate::cluster::announce(self, school).await;
        Ok(())
    }

    /// [`AppState::reload_policies`] without telling the other nodes: for
    /// reading a school at start, and for a change another node told of.
    pub async fn reload_policies_here(&self, school: SchoolId) -> Result<(), ApiError> {
        let store = self.store.clone();
        // The snapshot lives in `self`, which a blocking task cannot borrow; load
        // into a fresh one and swap it in.
        let fresh = tokio::task::spawn_blocking(move || {
            let p = Policies::default();
            p.reload(&*store, school).map(|_| p)
        })
        .await
        .map_err(ApiError::internal)??;
        self.policies.of(school).replace(fresh);
        // New settings: new contents get fresh, higher versions.
        self.policy_versions.lock().unwrap().clear();
        self.push_policies(school, None).await?;
        // Group memberships decide which acceptable use policy applies.
        crate::aup::offer_all(self, school).await;
        // Rights and group memberships may have changed: so has what consoles see.
        crate::scope::refresh_all(self).await
    }

    /// Resolves and sends policies to the school's connected devices (all,
    /// or `only`), sending only to those whose settings changed. Versions
    /// come from a counter in the store, so they keep increasing across
    /// restarts.
    pub async fn push_policies(&self, school: SchoolId, only: Option<i64>) -> Result<(), ApiError> {
        let mut version = None;
        let policies = self.policies.of(school);
        for (id, hostname, user) in self.hub.subjects(school, only) {
            crate::keywords::push_if_changed(self, school, id, &hostname, user.as_deref());
            let res = policies.resolve(Some(&hostname), user.as_deref());
            let mut policy = to_policy(&res.resultant, 0);
            // A device whose own user is a student's automatic login
            // identifier is theirs already: no sign-in to offer (while a
            // student is signed in, the user is theirs and the offer stays,
            // so the device can sign them out).
            let automatic = || {
                user.as_deref()
                    .is_some_and(|u| policies.is_automatic_identifier(u))
            };
            if policy.student_sign_in && self.students.on(id).is_none() && automatic() {
                policy.student_sign_in = false;
            }
            if let Some(old) = self.hub.policy_of(id) {
                policy.version = old.version;
                if old == policy {
                    self.hub.set_policy(id, None, res.groups);
                    continue;
                }
            }
            let key = serde_json::to_string(&policy).unwrap_or_default();
            let known = self.policy_versions.lock().unwrap().get(&key).copied();
            let v = match (known, version) {
                (Some(v), _) => v,
                (None, Some(v)) => v,
                (None, None) => {
                    let v = self
                        .db(move |s| s.bump_counter(school, "policy_version"))
                        .await?;
                    version = Some(v);
                    v
                }
            };
            self.policy_versions.lock().unwrap().insert(key, v);
            policy.version = v;
            self.hub.set_policy(id, Some(policy), res.groups);
        }
        Ok(())
    }

    /// The groups a device belongs to: kept current for a connected device,
    /// resolved with the last known user for an offline one.
    pub fn device_groups(
        &self,
        school: SchoolId,
        id: i64,
        hostname: &str,
        user: Option<&str>,
    ) -> Vec<i64> {
        self.hub.groups_of(id).unwrap_or_else(|| {
            self.policies
                .of(school)
                .resolve(Some(hostname), user)
                .groups
        })
    }

    /// The school of a device (0, which holds nothing, if the server does
    /// not know it): what a device's own requests are keyed by.
    pub fn device_school(&self, device: i64) -> SchoolId {
        self.device_schools.school_of(device).unwrap_or(0)
    }

    /// An audit entry for the school with the common fields filled in.
    pub fn audit_entry(
        &self,
        school: SchoolId,
        actor: &str,
        address: Option<String>,
        action: &str,
        outcome: &str,
    ) -> NewAudit {
        NewAudit {
            school_id: school,
            actor: actor.to_string(),
            address,
            action: action.to_string(),
            detail: String::new(),
            devices: Vec::new(),
            command_id: None,
            outcome: outcome.to_string(),
        }
    }
}

/// Reads a school's settings, groups and libraries unless they are read
/// already: for a school added while the server runs, on its first device
/// or sign-in.
pub async fn ensure_school(st: &Shared, school: SchoolId) -> Result<(), ApiError> {
    if st.policies.loaded(school) && st.keywords.loaded(school) {
        return Ok(());
    }
    load_school(st, school).await
}

/// Reads everything a school is served by: its devices' school (for the
/// consoles' scopes), its settings, its keyword libraries and its groups.
/// At start for every school, and by the gateway for a school added since.
pub async fn load_school(st: &Shared, school: SchoolId) -> Result<(), ApiError> {
    crate::scope::learn_school(st, school).await?;
    crate::settings::reload(st, school).await?;
    crate::keywords::load(st, school).await.map_err(|e| {
        ApiError::new(
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            format!("the keyword libraries: {e}"),
        )
    })?;
    st.reload_policies_here(school).await
}
