//! Raised hands and chat for consoles.
//!
//! - `GET /requests`: open raised hands of the devices the caller sees
//!   (`devices.view`).
//! - `POST /requests/{id}/answer {answer}` and `POST /requests/{id}/dismiss`:
//!   `command.chat` and control of the device; the answer is shown to the
//!   student; audited.
//! - `GET /chat?device=&thread=`: a device's chat history (its current
//!   thread unless one is named), for safeguarding (`activity.view`) or a
//!   teacher with `command.chat` and control of the device.
//! - `POST /chat {devices, text}`: a teacher's message to one or many
//!   devices (`command.chat` and control of every one), stored once per
//!   device with a shared batch id, delivered to those online; audited.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use lectern_policy::access::Access;
use lectern_proto::requests::{check_answer, check_chat};
use lectern_proto::ServerMsg;
use lectern_store::{ChatMessage, HandClose, HandOutcome, HelpRequest, NewChat};
use serde::Deserialize;
use serde_json::{json, Value};

use super::auth::Authed;
use super::ApiError;
use crate::hub::{ConsoleEvent, DeviceView};
use crate::requests::{
    audit, line_of, may_read_chat, publish_chat, thread_now, HandEvent, CHAT_RIGHT, HISTORY_LIMIT,
};
use crate::state::Shared;

/// Most devices one chat message may go to.
pub const MAX_CHAT_DEVICES: usize = 1000;

/// `GET /requests`: the open raised hands the caller may see, oldest first.
pub async fn list(
    State(st): State<Shared>,
    auth: Authed,
) -> Result<Json<Vec<HelpRequest>>, ApiError> {
    auth.require(&st, "devices.view").await?;
    let school = auth.session.user.school_id;
    let mut open = st.db(move |s| s.open_help_requests(school)).await?;
    if !auth.rights.all {
        let visible = crate::scope::visible_devices(&st, school, &auth.rights).await?;
        open.retain(|r| visible.contains(&r.device_id));
    }
    Ok(Json(open))
}

/// Body of `POST /requests/{id}/answer`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Answer {
    /// Shown to the student, at most 500 characters (default empty, so a
    /// caller without the right gets 403 rather than 422).
    #[serde(default)]
    pub answer: String,
}

/// The open request `id` and its device, if the caller may control it with
/// `command.chat` (404 when the caller may not see it, 403 when they only see
/// it, 409 when it is closed already).
async fn controlled_request(
    st: &Shared,
    auth: &Authed,
    id: i64,
) -> Result<(HelpRequest, DeviceView), ApiError> {
    auth.require(st, CHAT_RIGHT).await?;
    let school = auth.session.user.school_id;
    let gone = || ApiError::not_found(format!("no raised hand {id}"));
    let request = st
        .db(move |s| s.help_request(school, id))
        .await?
        .ok_or_else(gone)?;
    let (device, access) = super::devices::find(st, auth, request.device_id)
        .await
        .map_err(|_| gone())?;
    if access < Access::Control {
        auth.deny(st, "answer a raised hand", vec![device.id]).await;
        return Err(ApiError::no_control(&[device.id]));
    }
    if request.closed_at.is_some() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!("this raised hand of {} is already closed", device.hostname),
        ));
    }
    Ok((request, device))
}

/// Closes a request for a console and tells the device and the consoles.
async fn close(
    st: &Shared,
    auth: &Authed,
    request: &HelpRequest,
    outcome: HandOutcome,
    answer: Option<String>,
) -> Result<HelpRequest, ApiError> {
    let school = auth.session.user.school_id;
    let c = HandClose {
        device_id: request.device_id,
        id: Some(request.id),
        outcome,
        by: auth.username().to_string(),
        answer: answer.clone(),
        at: lectern_store::now_ms(),
    };
    let closed = st
        .db(move |s| s.close_hand(school, &c))
        .await?
        .ok_or_else(|| ApiError::new(StatusCode::CONFLICT, "this raised hand is already closed"))?;
    st.hub
        .send(request.device_id, ServerMsg::HandClosed { answer });
    let action = match outcome {
        HandOutcome::Answered => "hand.answer",
        _ => "hand.dismiss",
    };
    let detail = format!("request {}", closed.id);
    audit(
        st,
        school,
        auth.username(),
        auth.address.clone(),
        action,
        closed.device_id,
        detail,
    )
    .await;
    st.hub.publish(ConsoleEvent::Hand(Box::new(HandEvent {
        request: closed.clone(),
    })));
    Ok(closed)
}

/// `POST /requests/{id}/answer`: closes the raised hand with an answer the
/// student sees as a message.
pub async fn answer(
    State(st): State<Shared>,
    auth: Authed,
    Path(id): Path<i64>,
    Json(body): Json<Answer>,
) -> Result<Json<HelpRequest>, ApiError> {
    auth.require(&st, CHAT_RIGHT).await?;
    let text = check_answer(&body.answer).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let (request, _) = controlled_request(&st, &auth, id).await?;
    let closed = close(&st, &auth, &request, HandOutcome::Answered, Some(text)).await?;
    Ok(Json(closed))
}

/// `POST /requests/{id}/dismiss`: closes the raised hand without an answer.
pub async fn dismiss(
    State(st): State<Shared>,
    auth: Authed,
    Path(id): Path<i64>,
) -> Result<Json<HelpRequest>, ApiError> {
    let (request, _) = controlled_request(&st, &auth, id).await?;
    let closed = close(&st, &auth, &request, HandOutcome::Dismissed, None).await?;
    Ok(Json(closed))
}

/// Query of `GET /chat`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistoryQuery {
    /// The device (optional in the type so that a caller without the right
    /// gets 403 before a missing parameter gets 400).
    pub device: Option<i64>,
    /// A thread (`lesson:<id>`, `day:<YYYY-MM-DD>`); default: the current one.
    pub thread: Option<String>,
}

/// `GET /chat?device=&thread=`: a device's chat thread, oldest first (the
/// newest 200 messages).
pub async fn history(
    State(st): State<Shared>,
    auth: Authed,
    Query(q): Query<HistoryQuery>,
) -> Result<Json<Value>, ApiError> {
    // Safeguarding leads read chats with `activity.view`; anyone else needs
    // the chat right, and is refused in its words.
    if !auth.rights.allows("activity.view") {
        auth.require(&st, CHAT_RIGHT).await?;
    }
    let device = q
        .device
        .ok_or_else(|| ApiError::bad_request("device: required"))?;
    let (device, _) = super::devices::find(&st, &auth, device).await?;
    let groups = st.device_groups(
        auth.school(),
        device.id,
        &device.hostname,
        device.state.user.as_deref(),
    );
    if !may_read_chat(&auth.rights, &groups) {
        auth.deny(&st, "read a device's chat", vec![device.id])
            .await;
        return Err(ApiError::missing_right(CHAT_RIGHT));
    }
    let thread = match q.thread {
        Some(t) if t.len() <= 64 => t,
        Some(_) => return Err(ApiError::bad_request("thread: at most 64 characters")),
        None => thread_now(
            &st,
            auth.school(),
            &device.hostname,
            device.state.user.as_deref(),
        ),
    };
    let school = auth.session.user.school_id;
    let (id, t) = (device.id, thread.clone());
    let messages = st
        .db(move |s| s.chat_history(school, id, &t, HISTORY_LIMIT))
        .await?;
    Ok(Json(
        json!({ "device": device.id, "thread": thread, "messages": messages }),
    ))
}

/// Body of `POST /chat`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Send {
    /// The devices (one student, or a class). Defaults (empty, refused with
    /// 400 after the right is checked) let a caller without the right get 403.
    #[serde(default)]
    pub devices: Vec<i64>,
    /// The message, at most 1024 bytes.
    #[serde(default)]
    pub text: String,
}

/// `POST /chat`: a teacher's message to the students on `devices` (201).
pub async fn send(
    State(st): State<Shared>,
    auth: Authed,
    Json(body): Json<Send>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    auth.require(&st, CHAT_RIGHT).await?;
    let text = check_chat(&body.text).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let mut ids = body.devices;
    ids.sort_unstable();
    ids.dedup();
    if ids.is_empty() || ids.len() > MAX_CHAT_DEVICES {
        return Err(ApiError::bad_request(format!(
            "devices: between 1 and {MAX_CHAT_DEVICES}"
        )));
    }
    let visible = super::devices::visible(&st, &auth).await?;
    let mut targets = Vec::with_capacity(ids.len());
    let mut refused = Vec::new();
    for id in &ids {
        match visible.iter().find(|(v, _)| v.id == *id) {
            Some((v, a)) if *a >= Access::Control => targets.push(v.clone()),
            Some(_) => refused.push(*id),
            None => return Err(ApiError::not_found(format!("no device {id}"))),
        }
    }
    if !refused.is_empty() {
        auth.deny(&st, "chat with devices", refused.clone()).await;
        return Err(ApiError::no_control(&refused));
    }
    let at = lectern_store::now_ms();
    let batch = (targets.len() > 1).then_some(at);
    let rows: Vec<NewChat> = targets
        .iter()
        .map(|d| NewChat {
            device_id: d.id,
            thread: thread_now(&st, auth.school(), &d.hostname, d.state.user.as_deref()),
            batch,
            author: auth.username().to_string(),
            from_teacher: true,
            text: text.clone(),
            at,
        })
        .collect();
    let school = auth.session.user.school_id;
    let stored: Vec<ChatMessage> = st.db(move |s| s.add_chat(school, &rows)).await?;
    let mut delivered = Vec::new();
    for (m, d) in stored.iter().zip(&targets) {
        if st
            .hub
            .send(m.device_id, ServerMsg::Chat { line: line_of(m) })
        {
            delivered.push(m.device_id);
        }
        publish_chat(&st, school, m.clone(), &d.hostname, d.state.user.as_deref());
    }
    let mut entry = st.audit_entry(
        school,
        auth.username(),
        auth.address.clone(),
        "chat.send",
        "ok",
    );
    entry.devices = ids.clone();
    entry.detail = format!("{} bytes", text.len());
    st.audit(entry).await;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "messages": stored, "delivered": delivered })),
    ))
}
