//! Exams (issue 13.7), the parts beside the API: the lock-down an exam
//! applies (a synthetic group, see `policies`), the notices students see,
//! and the exam log's entries for hand-outs, hand-ins and what happens on a
//! device during the exam.

use lectern_policy::settings::{SettingKey, SettingsMap};
use lectern_proto::{Command, ServerMsg};
use lectern_store::files::Exam;
use lectern_store::{SchoolId, TargetStatus};
use serde_json::json;

use crate::state::Shared;

/// Logs a paper's delivery result on `device` in its exam's log, if the
/// transfer is an exam's paper.
pub async fn note_delivery(st: &Shared, transfer: i64, device: i64, detail: &str) {
    let school = st.device_school(device);
    let detail = detail.to_string();
    let _ = st
        .db(move |s| {
            if let Some(exam) = s
                .files()
                .transfer(school, transfer)?
                .and_then(|t| t.exam_id)
            {
                s.files()
                    .exam_log_add(exam, Some(device), "paper", &detail)?;
            }
            Ok(())
        })
        .await;
}

/// Logs a hand-in's result on `device` in its exam's log, if the collection
/// is an exam's.
pub async fn note_hand_in(st: &Shared, collection: i64, device: i64, detail: &str) {
    let school = st.device_school(device);
    let detail = detail.to_string();
    let _ = st
        .db(move |s| {
            if let Some(exam) = s
                .files()
                .collection(school, collection)?
                .and_then(|c| c.exam_id)
            {
                s.files()
                    .exam_log_add(exam, Some(device), "collected", &detail)?;
            }
            Ok(())
        })
        .await;
}

/// The lock-down an exam applies while it runs: the web only to its allowed
/// sites (none: no web at all) and, when it names any, only its allowed
/// applications.
pub fn restrictions(e: &Exam) -> SettingsMap {
    let mut s = SettingsMap::new();
    if e.allowed_sites.is_empty() {
        s.insert(SettingKey::InternetBlocked, json!(true));
    } else {
        s.insert(SettingKey::InternetBlocked, json!(false));
        s.insert(SettingKey::WebFilterMode, json!("allow_list"));
        s.insert(SettingKey::AllowList, json!(e.allowed_sites));
    }
    if !e.allowed_apps.is_empty() {
        s.insert(SettingKey::AppMode, json!("allow_list"));
        s.insert(SettingKey::AppAllowList, json!(e.allowed_apps));
    }
    s
}

/// The running exams a device sits.
async fn exams_of(st: &Shared, device: i64) -> Vec<i64> {
    let school = st.device_school(device);
    st.db(move |s| s.files().exams(school))
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|e| e.status == "running" && e.devices.contains(&device))
        .map(|e| e.id)
        .collect()
}

/// Logs something that happened on `device` in each running exam it sits
/// (connections, violations, blocked attempts).
pub async fn note_event(st: &Shared, device: i64, kind: &'static str, detail: String) {
    for exam in exams_of(st, device).await {
        let detail = detail.clone();
        let _ = st
            .db(move |s| s.files().exam_log_add(exam, Some(device), kind, &detail))
            .await;
    }
}

/// Most blocked attempts logged from one batch of activity.
const BLOCKED_PER_BATCH: usize = 20;

/// Logs blocked attempts (activity events marked `blocked`: an application
/// the agent closed) in the exams the device sits.
pub async fn note_blocked(st: &Shared, device: i64, events: &[lectern_proto::ActivityEvent]) {
    let blocked: Vec<String> = events
        .iter()
        .filter(|e| e.blocked)
        .take(BLOCKED_PER_BATCH)
        .map(|e| {
            let what = e.app.as_deref().or(e.url.as_deref()).unwrap_or("");
            crate::files::clean(&format!("{}: {what}", e.kind), 300)
        })
        .collect();
    if blocked.is_empty() {
        return;
    }
    for detail in blocked {
        note_event(st, device, "blocked", detail).await;
    }
}

/// Shows `text` on the devices as a teacher's message (recorded as a
/// command by `actor`, like any other).
pub async fn notice(st: &Shared, school: SchoolId, actor: &str, devices: &[i64], text: String) {
    let command = Command::Message { text };
    let online = st.hub.online_ids();
    let targets: Vec<(i64, TargetStatus)> = devices
        .iter()
        .map(|d| {
            let status = if online.contains(d) {
                TargetStatus::Pending
            } else {
                TargetStatus::Offline
            };
            (*d, status)
        })
        .collect();
    let body = serde_json::to_string(&command).unwrap_or_default();
    let (actor, t) = (actor.to_string(), targets.clone());
    let Ok(rec) = st
        .db(move |s| s.create_command(school, &actor, &body, &t))
        .await
    else {
        return;
    };
    for (d, status) in targets {
        if status == TargetStatus::Pending {
            let msg = ServerMsg::Command {
                command_id: rec.id as u64,
                command: command.clone(),
            };
            st.hub.send_command(d, rec.id, msg);
        }
    }
}

/// What the student is told when an exam starts.
pub fn start_text(e: &Exam, paper_title: Option<&str>) -> String {
    let mut text = format!("Exam \"{}\" has started.", e.name);
    if let Some(t) = paper_title {
        text.push_str(&format!(" Your paper is in Lectern/Received/{t}."));
    }
    if let Some(p) = &e.collect_path {
        text.push_str(&format!(
            " Save your answers in Lectern/{p}: they are collected at the end."
        ));
    }
    text
}
