use std::collections::{BTreeSet, HashMap};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use lectern_proto::{Command, ServerMsg};
use lectern_store::{now_ms, CommandRecord, TargetStatus, TargetUpdate};
use serde::Deserialize;
use serde_json::json;

use super::auth::Authed;
use super::{ApiError, JsonBody};
use crate::state::Shared;
use lectern_policy::access::Access;

/// Every command feature; a caller needs at least one to send anything.
const COMMAND_FEATURES: [&str; 9] = [
    "command.message",
    "command.launch_url",
    "command.meeting",
    "command.lock",
    "command.internet",
    "command.logout",
    "command.tabs",
    "command.web_filter",
    "command.power",
];

/// Most devices one command may target.
const MAX_TARGETS: usize = 100_000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewCommand {
    devices: Vec<i64>,
    command: Command,
}

/// `POST /commands`: validates, records, sends to every online target and
/// answers at once with the command id; outcomes arrive as agents acknowledge.
pub async fn create(
    State(st): State<Shared>,
    auth: Authed,
    body: Result<JsonBody<NewCommand>, ApiError>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    // Check rights before looking at the body: no right, no validation hints.
    auth.require_any(&st, &COMMAND_FEATURES).await?;
    let JsonBody(body) = body?;
    let kind = body.command.kind();
    let ids: BTreeSet<i64> = body.devices.iter().copied().collect();
    let mut entry = auth.audit_entry(&st, &format!("command.{kind}"), "refused");
    entry.devices = ids.iter().copied().take(10_000).collect();
    entry.detail = serde_json::to_string(&body.command).unwrap_or_default();
    let refuse = |e: ApiError, mut entry: lectern_store::NewAudit| {
        entry.outcome = format!("refused: {}", e.message);
        (e, entry)
    };
    auth.require(&st, lectern_policy::access::command_feature(&body.command))
        .await?;
    let checked = check(&st, &auth, &ids, &body.command).await;
    let targets = match checked {
        Ok(t) => t,
        Err(e) => {
            let (e, entry) = refuse(e, entry);
            st.audit(entry).await;
            return Err(e);
        }
    };
    let (school, actor, json_body) = (
        auth.school(),
        auth.username().to_string(),
        entry.detail.clone(),
    );
    let t = targets.clone();
    let rec = st
        .db(move |s| s.create_command(school, &actor, &json_body, &t))
        .await?;
    let mut sent = 0usize;
    let mut lost = Vec::new();
    let mut elsewhere = Vec::new();
    for (device, status) in &targets {
        if *status != TargetStatus::Pending {
            continue;
        }
        if !st.hub.is_online(*device) {
            // Held by another node of the cluster (`check` said online).
            elsewhere.push(*device);
            continue;
        }
        if let Some(reason) = lacks_capability(&st, *device, &body.command) {
            // Failed before sending: no "done" from a device that cannot.
            lost.push(*device);
            let _ = st.results.send(TargetUpdate {
                command_id: rec.id,
                device_id: *device,
                status: TargetStatus::Failed,
                reason: Some(reason),
                at: now_ms(),
            });
            continue;
        }
        let msg = ServerMsg::Command {
            command_id: rec.id as u64,
            command: body.command.clone(),
        };
        if st.hub.send_command(*device, rec.id, msg) {
            sent += 1;
        } else {
            lost.push(*device);
            let _ = st.results.send(TargetUpdate {
                command_id: rec.id,
                device_id: *device,
                status: TargetStatus::Failed,
                reason: Some("device disconnected before the command could be sent".into()),
                at: now_ms(),
            });
        }
    }
    if !elsewhere.is_empty() {
        let msg = ServerMsg::Command {
            command_id: rec.id as u64,
            command: body.command.clone(),
        };
        let (relayed, failed) = relay(&st, school, rec.id, &msg, &elsewhere).await;
        sent += relayed;
        lost.extend(failed);
    }
    st.metrics
        .commands_sent
        .fetch_add(sent as u64, std::sync::atomic::Ordering::Relaxed);
    let offline = targets.len() - sent - lost.len();
    entry.command_id = Some(rec.id);
    entry.outcome = format!("sent to {sent}, offline {offline}, failed {}", lost.len());
    st.audit(entry).await;
    let targets: Vec<_> = targets
        .iter()
        .map(|(d, s)| {
            let s = if lost.contains(d) {
                TargetStatus::Failed
            } else {
                *s
            };
            json!({ "device_id": d, "status": s })
        })
        .collect();
    Ok((
        StatusCode::CREATED,
        Json(json!({ "id": rec.id, "targets": targets })),
    ))
}

/// Sends a command to devices other nodes of the cluster hold, one message
/// per gateway; the ones that cannot be reached fail at once. Returns how
/// many went on and the ones that failed.
async fn relay(
    st: &Shared,
    school: lectern_store::SchoolId,
    command: i64,
    msg: &ServerMsg,
    devices: &[i64],
) -> (usize, Vec<i64>) {
    let fail = |device: i64, reason: &str| {
        let _ = st.results.send(TargetUpdate {
            command_id: command,
            device_id: device,
            status: TargetStatus::Failed,
            reason: Some(reason.into()),
            at: now_ms(),
        });
    };
    let Some(cluster) = st.cluster.get() else {
        devices
            .iter()
            .for_each(|d| fail(*d, "device disconnected before the command could be sent"));
        return (0, devices.to_vec());
    };
    match cluster.send(school, command, msg, devices).await {
        Ok(routed) => {
            let gone: Vec<i64> = routed
                .not_connected
                .iter()
                .chain(&routed.offline)
                .copied()
                .collect();
            for d in &gone {
                fail(*d, "device disconnected before the command could be sent");
            }
            let relayed = routed.relayed.iter().map(|(_, n)| n).sum::<usize>();
            (routed.here.len() + relayed, gone)
        }
        Err(e) => {
            tracing::error!(command, "relaying a command: {e}");
            devices.iter().for_each(|d| {
                fail(
                    *d,
                    "the command could not be passed to the device's gateway",
                )
            });
            (0, devices.to_vec())
        }
    }
}

/// Why `device` cannot run `command`, when it did not announce the capability
/// the command needs ([`Command::required_capability`]).
pub(crate) fn lacks_capability(st: &Shared, device: i64, command: &Command) -> Option<String> {
    let cap = command.required_capability()?;
    if st.hub.has_capability(device, cap) {
        return None;
    }
    let what = match command {
        Command::Logout => {
            "end the user's session (a browser extension cannot end a ChromeOS session, and this agent has no logout configured)"
        }
        Command::Lock { .. } | Command::Unlock => "lock the screen",
        Command::Message { .. } | Command::ClearMessage => "show messages",
        _ => "open websites",
    };
    Some(format!("this device cannot {what}"))
}

async fn check(
    st: &Shared,
    auth: &Authed,
    ids: &BTreeSet<i64>,
    command: &Command,
) -> Result<Vec<(i64, TargetStatus)>, ApiError> {
    if ids.is_empty() {
        return Err(ApiError::bad_request("choose at least one device"));
    }
    if ids.len() > MAX_TARGETS {
        return Err(ApiError::bad_request(format!(
            "at most {MAX_TARGETS} devices per command"
        )));
    }
    lectern_policy::validate_command(command).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let school = auth.school();
    let known: HashMap<i64, bool> = st
        .db(move |s| s.list_devices(school))
        .await?
        .into_iter()
        .map(|d| (d.id, d.revoked_at.is_some()))
        .collect();
    let unknown: Vec<_> = ids
        .iter()
        .filter(|id| !known.contains_key(id))
        .take(20)
        .collect();
    if !unknown.is_empty() {
        return Err(ApiError::bad_request(format!(
            "unknown device ids: {unknown:?}"
        )));
    }
    let revoked: Vec<_> = ids.iter().filter(|id| known[id]).take(20).collect();
    if !revoked.is_empty() {
        return Err(ApiError::bad_request(format!(
            "revoked devices: {revoked:?}"
        )));
    }
    // Administrators control every device: no need to resolve each one's groups
    // (which costs most of a command to a whole school).
    let access: HashMap<i64, Access> = if auth.rights.all {
        HashMap::new()
    } else {
        super::devices::visible(st, auth)
            .await?
            .into_iter()
            .map(|(v, a)| (v.id, a))
            .collect()
    };
    let refused: Vec<_> = ids
        .iter()
        .filter(|_| !auth.rights.all)
        .filter(|id| access.get(id).is_none_or(|a| *a < Access::Control))
        .copied()
        .collect();
    if !refused.is_empty() {
        auth.deny(
            st,
            "command on devices without control access",
            refused.clone(),
        )
        .await;
        return Err(ApiError::no_control(&refused));
    }
    let online = st.hub.online_ids();
    let cluster = st.cluster.get();
    Ok(ids
        .iter()
        .map(|id| {
            (
                *id,
                if online.contains(id) || cluster.is_some_and(|c| c.is_online(school, *id)) {
                    TargetStatus::Pending
                } else {
                    TargetStatus::Offline
                },
            )
        })
        .collect())
}

/// `GET /commands/{id}`: the command and the outcome on each device the caller
/// may see (administrators: all). A command with no such device is "not
/// found", as if it did not exist.
pub async fn get_one(
    State(st): State<Shared>,
    auth: Authed,
    Path(id): Path<i64>,
) -> Result<Json<serde_json::Value>, ApiError> {
    auth.require(&st, "devices.view").await?;
    let school = auth.school();
    let not_found = || ApiError::not_found(format!("no command {id}"));
    let mut rec: CommandRecord = st
        .db(move |s| s.command(school, id))
        .await?
        .ok_or_else(not_found)?;
    if !auth.rights.all {
        let visible = crate::scope::visible_devices(&st, school, &auth.rights).await?;
        rec.targets.retain(|t| visible.contains(&t.device_id));
        if rec.targets.is_empty() {
            return Err(not_found());
        }
    }
    let mut summary: HashMap<&str, usize> = ["pending", "done", "failed", "offline"]
        .into_iter()
        .map(|k| (k, 0))
        .collect();
    for t in &rec.targets {
        *summary.entry(t.status.as_str()).or_default() += 1;
    }
    let mut v = serde_json::to_value(&rec).map_err(ApiError::internal)?;
    v["summary"] = json!(summary);
    Ok(Json(v))
}
