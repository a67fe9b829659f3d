//! `/roster`: OneRoster imports (upload, dry run, drop folder) and the
//! rostered classes. Everything needs `roster.manage`; an import that
//! writes teachers' access rules also needs `access.manage`, and every
//! group and rule it writes must pass the delegation rule for the importer
//! (see [`crate::roster`] for the bundle's checks).

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::Json;
use lectern_store::SchoolId;
use serde::Deserialize;
use serde_json::{json, Value};

use super::auth::Authed;
use super::delegation::{check, Change};
use super::ApiError;
use crate::roster::{self, Bundle, BundleError, Plan};
use crate::state::Shared;

const RIGHT: &str = "roster.manage";

/// Who runs an import: a signed-in user (rights checked), or the drop
/// folder, written by whoever owns the data directory (like the CLI).
pub enum Actor<'a> {
    /// A console user.
    User(&'a Authed),
    /// The scheduled folder import.
    Folder,
}

impl Actor<'_> {
    fn name(&self) -> &str {
        match self {
            Actor::User(a) => a.username(),
            Actor::Folder => "folder",
        }
    }
    fn address(&self) -> Option<String> {
        match self {
            Actor::User(a) => a.address.clone(),
            Actor::Folder => None,
        }
    }
    fn source(&self) -> &'static str {
        match self {
            Actor::User(_) => "upload",
            Actor::Folder => "folder",
        }
    }
}

impl BundleError {
    fn to_api(&self) -> ApiError {
        match self {
            BundleError::TooLarge(_) => {
                ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, self.to_string())
            }
            _ => ApiError::bad_request(self.to_string()),
        }
    }
}

#[derive(Deserialize, Default)]
pub struct ImportQuery {
    #[serde(default)]
    dry_run: Option<bool>,
}

/// `GET /roster`: the rostered classes (teachers, student counts, retired
/// or not), the last upload and the last folder import.
pub async fn overview(State(st): State<Shared>, auth: Authed) -> Result<Json<Value>, ApiError> {
    auth.require(&st, RIGHT).await?;
    let school = auth.session.user.school_id;
    let (classes, upload, folder) = st
        .db(move |s| {
            let r = s.roster();
            Ok((
                r.roster_classes(school)?,
                r.last_roster_import(school, "upload", true)?,
                r.last_roster_import(school, "folder", false)?,
            ))
        })
        .await?;
    let classes: Vec<Value> = classes
        .iter()
        .map(|c| {
            json!({
                "sourced_id": c.sourced_id, "title": c.title, "group_id": c.group_id,
                "teachers": c.teachers, "students": c.students.len(), "retired_at": c.retired_at,
            })
        })
        .collect();
    Ok(Json(json!({
        "classes": classes,
        "last_upload": upload,
        "last_folder": folder,
        "folder": format!("schools/{school}/oneroster/"),
        "folder_interval_secs": roster::interval(&st).as_secs(),
        "limits": {"upload_bytes": roster::MAX_UPLOAD_BYTES, "rows": roster::MAX_ROWS, "classes": roster::MAX_CLASSES},
    })))
}

/// `POST /roster/import[?dry_run=true]`, the body being the bundle's zip:
/// the report of what was (or would be) imported, with every bad row.
pub async fn import(
    State(st): State<Shared>,
    auth: Authed,
    query: Result<Query<ImportQuery>, axum::extract::rejection::QueryRejection>,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    // Rights before the request's shape: no right, no validation hints.
    auth.require(&st, RIGHT).await?;
    let Query(q) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let bytes = axum::body::to_bytes(body, roster::MAX_UPLOAD_BYTES)
        .await
        .map_err(|_| {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!(
                    "the upload is over {} bytes or was interrupted",
                    roster::MAX_UPLOAD_BYTES
                ),
            )
        })?;
    let bundle = tokio::task::spawn_blocking(move || Bundle::from_zip(&bytes))
        .await
        .map_err(ApiError::internal)?;
    let school = auth.session.user.school_id;
    run(
        &st,
        school,
        bundle,
        Actor::User(&auth),
        q.dry_run.unwrap_or(false),
    )
    .await
    .map(Json)
}

/// Parses, plans and (unless a dry run) writes an import; every outcome is
/// recorded and audited.
pub async fn run(
    st: &Shared,
    school: SchoolId,
    bundle: Result<Bundle, BundleError>,
    actor: Actor<'_>,
    dry_run: bool,
) -> Result<Value, ApiError> {
    let digest = digest_of(&bundle);
    let parsed = match bundle {
        Ok(b) => tokio::task::spawn_blocking(move || roster::parse(&b))
            .await
            .map_err(ApiError::internal)?,
        Err(e) => Err(e),
    };
    let parsed = match parsed {
        Ok(p) => p,
        Err(e) => {
            let report = json!({"error": e.to_string()});
            finish(st, school, &actor, dry_run, "refused", digest, report).await?;
            return Err(e.to_api());
        }
    };
    // One rights change at a time, each seeing the rules the last one left.
    let change = match &actor {
        Actor::User(a) => Some(Change::begin(st, a).await),
        Actor::Folder => None,
    };
    let _lock = match change {
        None => Some(st.policies.of(school).lock_changes().await),
        Some(_) => None,
    };
    let (stored, roster_rules) = st
        .db(move |s| {
            Ok((
                s.roster().roster_classes(school)?,
                s.roster().roster_rules(school)?,
            ))
        })
        .await?;
    let rules = match &change {
        Some(c) => c.rules.clone(),
        None => st.policies.of(school).rules(),
    };
    let plan = roster::plan(&parsed, &stored, &roster_rules, &rules);
    if !dry_run && plan.changes() {
        if let (Actor::User(auth), Some(change)) = (&actor, &change) {
            may_write(st, auth, change, &plan).await?;
        }
        let write = plan.write.clone();
        st.db(move |s| s.roster().apply_roster(school, &write))
            .await?;
        st.reload_policies(school).await?;
    }
    let mut report = roster::report(&parsed, &plan);
    report["dry_run"] = dry_run.into();
    let outcome = if plan.changes() { "ok" } else { "unchanged" };
    report["outcome"] = outcome.into();
    finish(st, school, &actor, dry_run, outcome, digest, report.clone()).await?;
    Ok(report)
}

/// What identifies a bundle between imports: its files' digest, or the
/// reason it cannot be read (so a folder that stays unreadable is reported
/// once, not at every look).
fn digest_of(bundle: &Result<Bundle, BundleError>) -> String {
    match bundle {
        Ok(b) => b.digest(),
        Err(e) => format!("unreadable: {e}"),
    }
}

/// Whether a user may write the plan: `access.manage` for rule changes, and
/// the delegation rule for every group and rule it makes or changes.
async fn may_write(
    st: &Shared,
    auth: &Authed,
    change: &Change,
    plan: &Plan,
) -> Result<(), ApiError> {
    if !plan.rule_changes.is_empty() {
        auth.require(st, "access.manage").await?;
    }
    let g = change.granter();
    if plan.new_groups > 0 {
        check(
            st,
            auth,
            "roster.import: new class groups",
            g.may_control_group(None),
        )
        .await?;
    }
    for id in &plan.member_changes {
        let what = format!("roster.import: members of group {id}");
        check(st, auth, &what, g.may_control_group(Some(*id))).await?;
        check(st, auth, &what, g.may_change_members(&change.rules, *id)).await?;
    }
    for (old, new) in &plan.rule_changes {
        let r = match (old, new) {
            (old, Some(new)) => g.may_write_rule(old.as_ref(), new),
            (Some(old), None) => g.may_delete_rule(old),
            (None, None) => Ok(()),
        };
        check(st, auth, "roster.import: teacher access", r).await?;
    }
    Ok(())
}

/// Records and audits an import's outcome.
async fn finish(
    st: &Shared,
    school: SchoolId,
    actor: &Actor<'_>,
    dry_run: bool,
    outcome: &str,
    digest: String,
    report: Value,
) -> Result<(), ApiError> {
    let summary = summary(&report);
    let rec = roster::record(
        actor.source(),
        actor.name(),
        dry_run,
        outcome,
        digest,
        report,
    );
    st.db(move |s| s.roster().add_roster_import(school, &rec))
        .await?;
    if dry_run {
        return Ok(());
    }
    let result = if outcome == "refused" { "error" } else { "ok" };
    let mut entry = st.audit_entry(
        school,
        actor.name(),
        actor.address(),
        "roster.import",
        result,
    );
    entry.detail = format!("{} import: {summary}", actor.source());
    st.audit(entry).await;
    Ok(())
}

/// One line for the audit log.
fn summary(report: &Value) -> String {
    if let Some(e) = report["error"].as_str() {
        return format!("refused: {e}");
    }
    let n = |v: &Value| v.as_array().map_or(0, Vec::len);
    let c = &report["classes"];
    format!(
        "{} classes created, {} updated, {} retired, {} unchanged; {} teachers granted, {} removed; {} bad rows",
        n(&c["created"]),
        n(&c["updated"]),
        n(&c["retired"]),
        c["unchanged"],
        n(&report["teachers"]["granted"]),
        n(&report["teachers"]["removed"]),
        report["problems_total"],
    )
}

/// Imports the school's drop folder when its contents changed since the
/// last folder import. Errors are recorded, logged and audited, never fatal.
pub async fn import_folder(st: &Shared, school: SchoolId) {
    let dir = roster::folder(&st.data_dir, school);
    let bundle = match tokio::task::spawn_blocking(move || Bundle::from_folder(&dir)).await {
        Ok(Ok(None)) | Err(_) => return,
        Ok(Ok(Some(b))) => Ok(b),
        Ok(Err(e)) => Err(e),
    };
    let digest = digest_of(&bundle);
    let last = st
        .db(move |s| s.roster().last_roster_import(school, "folder", false))
        .await;
    if let Ok(Some(last)) = last {
        if last.digest == digest {
            return;
        }
    }
    if let Err(e) = run(st, school, bundle, Actor::Folder, false).await {
        tracing::warn!("roster folder import: {}", e.message);
    }
}

/// Looks at the drop folder every `[roster] folder_interval_secs`.
pub async fn folder_timer(st: Shared) {
    let mut shutdown = st.shutdown.clone();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(roster::interval(&st)) => {}
            _ = shutdown.changed() => return,
        }
        // Each school's own folder (`schools/<id>/oneroster/`).
        let schools = match st.db(|s| s.schools()).await {
            Ok(schools) => schools,
            Err(e) => {
                tracing::warn!("roster folder import: {}", e.message);
                continue;
            }
        };
        for school in schools {
            import_folder(&st, school.id).await;
        }
    }
}
