//! The school's keyword library and its compiled scanner, and what happens
//! when activity text matches: a violation with context, evidence screenshots
//! from the device's rolling buffer, a live alert, and a lock for the most
//! severe terms.

use std::sync::{Arc, RwLock};

use lectern_keywords::{Library, Match, Scanner};
use lectern_proto::{ActivityEvent, Capability, Command, ServerMsg};
use lectern_store::{NewAudit, TargetStatus, Violation};

use crate::device_rules::EvidenceKey;
use crate::hub::ConsoleEvent;
use crate::state::Shared;

/// Name of the library in the store's documents.
pub const DOCUMENT: &str = "keyword_library";

/// The library in force and its scanner.
pub struct Keywords {
    inner: RwLock<(Arc<Library>, Arc<Scanner>)>,
}

impl Default for Keywords {
    fn default() -> Self {
        let lib = Library::default_library();
        let scanner = Scanner::new(&lib).expect("the default library compiles");
        Keywords {
            inner: RwLock::new((Arc::new(lib), Arc::new(scanner))),
        }
    }
}

impl Keywords {
    /// The library in force.
    pub fn library(&self) -> Arc<Library> {
        self.inner
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .0
            .clone()
    }

    /// The scanner for the library in force.
    pub fn scanner(&self) -> Arc<Scanner> {
        self.inner
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .1
            .clone()
    }

    /// Validates, compiles and installs `lib`.
    pub fn replace(&self, lib: Library) -> Result<(), String> {
        lib.validate().map_err(|e| e.to_string())?;
        let scanner = Scanner::new(&lib).map_err(|e| e.to_string())?;
        *self.inner.write().unwrap_or_else(|p| p.into_inner()) = (Arc::new(lib), Arc::new(scanner));
        Ok(())
    }
}

/// Installs the stored library, if the school has one.
pub async fn load(st: &Shared) -> Result<(), String> {
    let school = st.school.id;
    let doc = st
        .db(move |s| s.document(school, DOCUMENT))
        .await
        .map_err(|e| e.message)?;
    if let Some(json) = doc {
        let lib: Library = serde_json::from_str(&json).map_err(|e| e.to_string())?;
        st.keywords.replace(lib)?;
    }
    Ok(())
}

/// The action for a severity, from `keyword_actions` in `server.toml`.
pub fn action_for(st: &Shared, severity: u8) -> String {
    let i = usize::from(severity.clamp(1, 5)) - 1;
    st.config.keyword_actions[i].as_str().to_string()
}

/// The library as the JSON agents get.
pub fn library_json(st: &Shared) -> serde_json::Value {
    serde_json::to_value(&*st.keywords.library()).unwrap_or_default()
}

/// Sends the library to every connected agent that scans for itself.
pub fn push_to_agents(st: &Shared) {
    let msg = ServerMsg::Keywords {
        library: library_json(st),
    };
    for id in st.hub.with_capability(Capability::KeywordScan) {
        st.hub.send(id, msg.clone());
    }
}

/// Scans stored activity events of `device` and acts on every match; devices
/// that scan for themselves (and keep the evidence of the moment) are skipped.
pub async fn scan_events(st: &Shared, device: i64, events: &[ActivityEvent]) {
    if st
        .hub
        .policy_of(device)
        .is_some_and(|p| !p.keyword_policies)
        || st.hub.has_capability(device, Capability::KeywordScan)
    {
        return;
    }
    let scanner = st.keywords.scanner();
    let mut found = Vec::new();
    for e in events {
        let texts = lectern_policy::safety::event_texts(e);
        for (source, text, m) in scanner.scan_each_term_once(&texts) {
            found.push(violation_of(st, device, e, source, text, &m));
        }
    }
    for v in found {
        if !take_violation(st, device) {
            continue; // Counted and logged; the event itself is stored.
        }
        record(st, v, Finder::Server).await;
    }
}

/// Takes one violation from the device's allowance; false (counted in the
/// metric, logged once per quiet window) when it is used up.
pub fn take_violation(st: &Shared, device: i64) -> bool {
    let limits = crate::device_rules::limits(st);
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

fn violation_of(
    st: &Shared,
    device: i64,
    e: &ActivityEvent,
    source: &str,
    text: &str,
    m: &Match,
) -> Violation {
    let person = e.user.as_deref().and_then(|u| st.policies.person_for(u));
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
        action: action_for(st, m.severity),
        screenshots: 0,
        at: e.at,
        // For the live event; the store records the id itself.
        person_id: person.as_ref().map(|p| p.id),
        person: person.map(|p| p.display_name),
    }
}

/// A violation an agent found and reported itself (evidence frames follow).
pub fn from_report(st: &Shared, device: i64, r: &lectern_proto::ViolationReport) -> Violation {
    let clip = |s: &str, n: usize| s.chars().take(n).collect::<String>();
    let person = r.user.as_deref().and_then(|u| st.policies.person_for(u));
    Violation {
        id: 0,
        device_id: device,
        user: r.user.as_deref().map(|u| clip(u, 256)),
        term: clip(&r.term, 256),
        category: clip(&r.category, 64),
        severity: r.severity.clamp(1, 5),
        matched: clip(&r.matched, 512),
        context: clip(&r.context, 1024),
        source: clip(&r.source, 32),
        action: action_for(st, r.severity.clamp(1, 5)),
        screenshots: 0,
        at: r.at,
        person_id: person.as_ref().map(|p| p.id),
        person: person.map(|p| p.display_name),
    }
}

/// Stores a violation and carries out its action, granting (and for the
/// server's own finds, requesting) evidence. Within a burst of matches on one
/// device only the first announces itself (warning, audit) and only the first
/// lock-worthy one locks; the rest are stored quietly. Returns the new id.
pub async fn record(st: &Shared, mut v: Violation, finder: Finder) -> Option<i64> {
    let school = st.school.id;
    let row = v.clone();
    let id = match st.db(move |s| s.add_violation(school, &row)).await {
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
    let limits = crate::device_rules::limits(st);
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
        lock_device(st, &v).await;
    }
    Some(id)
}

async fn lock_device(st: &Shared, v: &Violation) {
    let command = Command::Lock {
        text: Some("This computer was locked by the school's online-safety policy.".into()),
        minutes: None,
    };
    let school = st.school.id;
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
            "online-safety policy",
            None,
            "command.lock",
            if sent { "sent to 1" } else { "device offline" },
        )
    })
    .await;
}
