//! Students' raised hands and chat, as the devices send them.
//!
//! Everything here is attributed to the sending device's own identity and
//! the user the server knows is logged in on it (from the device's state),
//! never to a name in the frame. Each device is metered: at most
//! [`HANDS_PER_MINUTE`] raise/withdraw frames and [`CHATS_PER_MINUTE`] chat
//! messages in any 60 seconds, one open request at a time, notes of at most
//! [`lectern_proto::requests::MAX_NOTE_CHARS`] (500) characters and
//! messages of at most [`lectern_proto::requests::MAX_CHAT_BYTES`] (1024)
//! bytes. A refused frame gets `refused` and the session goes on.
//!
//! Consoles hear of hands if they may see the device; of chat if they hold
//! `activity.view` on it (safeguarding) or `command.chat` with control of it.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use lectern_policy::access::{Access, Rights};
use lectern_proto::requests::{check_chat, check_note, ChatLine, TextError, HISTORY_LINES};
use lectern_proto::{ErrorCode, RefusedFrame, ServerMsg};
use lectern_store::{
    chat_thread, ChatMessage, HandClose, HandOutcome, HelpRequest, NewChat, NewHelpRequest,
    SchoolId, Violation,
};

use crate::hub::ConsoleEvent;
use crate::state::{AppState, Shared};

/// Raise and withdraw frames a device may send in any 60 seconds.
pub const HANDS_PER_MINUTE: usize = 6;
/// Chat messages a device may send in any 60 seconds.
pub const CHATS_PER_MINUTE: usize = 20;
/// Most messages a chat history answer holds (the newest).
pub const HISTORY_LIMIT: u32 = 200;
/// The right to answer raised hands and chat with students.
pub const CHAT_RIGHT: &str = "command.chat";

/// A hand's change, for consoles that may see its device.
#[derive(Debug, Clone)]
pub struct HandEvent {
    /// The request as stored now (open, or closed with its outcome).
    pub request: HelpRequest,
}

/// A chat message, for consoles that may read its device's chat.
#[derive(Debug, Clone)]
pub struct ChatEvent {
    /// The message as stored.
    pub message: ChatMessage,
    /// The device's groups when it was sent (decides who may read it).
    pub groups: Vec<i64>,
}

/// Whether `rights` may read the chat of a device in `groups`: safeguarding
/// (`activity.view` with view access) or a teacher with `command.chat` and
/// control of the device.
pub fn may_read_chat(rights: &Rights, groups: &[i64]) -> bool {
    let access = rights.device_access(groups);
    (rights.allows("activity.view") && access >= Access::View)
        || (rights.allows(CHAT_RIGHT) && access >= Access::Control)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    Hand,
    Chat,
}

/// Per-device sliding windows of the last minute's frames: two small
/// queues per device that sent any (at most 6 and 20 instants).
#[derive(Debug, Default)]
pub struct Meters {
    windows: Mutex<HashMap<(i64, Kind), VecDeque<Instant>>>,
}

impl Meters {
    /// Takes one frame of `kind` for `device`, or says how long to wait.
    fn take(
        &self,
        device: i64,
        kind: Kind,
        per_minute: usize,
        now: Instant,
    ) -> Result<(), Duration> {
        const WINDOW: Duration = Duration::from_secs(60);
        let mut all = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        let w = all.entry((device, kind)).or_default();
        while w
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) >= WINDOW)
        {
            w.pop_front();
        }
        if w.len() >= per_minute {
            let oldest = w.front().copied().unwrap_or(now);
            return Err((oldest + WINDOW)
                .saturating_duration_since(now)
                .max(Duration::from_millis(100)));
        }
        w.push_back(now);
        Ok(())
    }
}

/// One refused frame: the gateway answers `refused` and goes on.
#[derive(Debug)]
pub struct Refusal {
    /// Why.
    pub code: ErrorCode,
    /// Which frame.
    pub frame: RefusedFrame,
    /// When to try again.
    pub retry_after: Option<Duration>,
    /// For the student.
    pub message: String,
}

impl Refusal {
    fn text(frame: RefusedFrame, e: TextError) -> Self {
        let code = match e {
            TextError::TooLong { .. } => ErrorCode::TooLarge,
            TextError::Empty(_) | TextError::Control(_) => ErrorCode::Malformed,
        };
        Refusal {
            code,
            frame,
            retry_after: None,
            message: e.to_string(),
        }
    }

    fn rate(frame: RefusedFrame, wait: Duration, what: &str) -> Self {
        Refusal {
            code: ErrorCode::RateLimited,
            frame,
            retry_after: Some(wait),
            message: format!("too many {what}; wait {} s", wait.as_secs().max(1)),
        }
    }

    fn internal(frame: RefusedFrame) -> Self {
        Refusal {
            code: ErrorCode::Internal,
            frame,
            retry_after: Some(Duration::from_secs(5)),
            message: "the server could not store it; try again".into(),
        }
    }
}

/// The device's school, its host name and the user the server knows is
/// logged in (school 0, which holds nothing, once it is gone).
fn subject(st: &AppState, device: i64) -> (SchoolId, String, Option<String>) {
    st.hub.subject(device).unwrap_or_default()
}

/// Who the student is for the record: their user name, or the device.
fn student_name(device: i64, user: Option<&str>) -> String {
    user.map_or_else(|| format!("device {device}"), str::to_string)
}

/// The chat thread a message to or from a device (its host name and user)
/// belongs to now.
pub fn thread_now(st: &AppState, school: SchoolId, hostname: &str, user: Option<&str>) -> String {
    let now = lectern_store::now_ms();
    chat_thread(
        st.policies.of(school).running_lesson(hostname, user, now),
        now,
    )
}

/// Writes an audit entry about `device` (actor: a person or `device N`).
pub async fn audit(
    st: &AppState,
    school: SchoolId,
    actor: &str,
    address: Option<String>,
    action: &str,
    device: i64,
    detail: String,
) {
    let mut entry = st.audit_entry(school, actor, address, action, "ok");
    entry.devices = vec![device];
    entry.detail = detail;
    st.audit(entry).await;
}

/// `raise_hand` from a device: checked, metered, stored (one open per
/// device), told to consoles; answers `hand_raised`.
pub async fn raise(st: &Shared, device: i64, note: &str) -> Result<ServerMsg, Refusal> {
    let frame = || RefusedFrame::Hand;
    let note = check_note(note).map_err(|e| Refusal::text(frame(), e))?;
    st.requests
        .take(device, Kind::Hand, HANDS_PER_MINUTE, Instant::now())
        .map_err(|w| Refusal::rate(frame(), w, "raised hands"))?;
    let (school, _, user) = subject(st, device);
    let new = NewHelpRequest {
        device_id: device,
        username: user.clone(),
        note,
        at: lectern_store::now_ms(),
    };
    let stored = st
        .db(move |s| s.raise_hand(school, &new))
        .await
        .map_err(|_| Refusal::internal(frame()))?;
    let Some(request) = stored else {
        return Err(Refusal {
            code: ErrorCode::NotAllowed,
            frame: frame(),
            retry_after: None,
            message: "your hand is already raised".into(),
        });
    };
    let actor = student_name(device, user.as_deref());
    audit(
        st,
        school,
        &actor,
        None,
        "hand.raise",
        device,
        format!("request {}", request.id),
    )
    .await;
    st.hub
        .publish(ConsoleEvent::Hand(Box::new(HandEvent { request })));
    Ok(ServerMsg::HandRaised)
}

/// `lower_hand` from a device: its open request is withdrawn (none open is
/// fine); answers `hand_closed`.
pub async fn lower(st: &Shared, device: i64) -> Result<ServerMsg, Refusal> {
    st.requests
        .take(device, Kind::Hand, HANDS_PER_MINUTE, Instant::now())
        .map_err(|w| Refusal::rate(RefusedFrame::Hand, w, "raised hands"))?;
    let (school, _, user) = subject(st, device);
    let by = student_name(device, user.as_deref());
    let close = HandClose {
        device_id: device,
        id: None,
        outcome: HandOutcome::Withdrawn,
        by: by.clone(),
        answer: None,
        at: lectern_store::now_ms(),
    };
    let closed = st
        .db(move |s| s.close_hand(school, &close))
        .await
        .map_err(|_| Refusal::internal(RefusedFrame::Hand))?;
    if let Some(request) = closed {
        audit(
            st,
            school,
            &by,
            None,
            "hand.withdraw",
            device,
            format!("request {}", request.id),
        )
        .await;
        st.hub
            .publish(ConsoleEvent::Hand(Box::new(HandEvent { request })));
    }
    Ok(ServerMsg::HandClosed { answer: None })
}

/// A chat line as the student's screen shows it.
pub fn line_of(m: &ChatMessage) -> ChatLine {
    ChatLine {
        id: m.id,
        from_teacher: m.from_teacher,
        author: m.author.clone(),
        text: m.text.clone(),
        at: m.at,
    }
}

/// Publishes a stored chat message to the consoles that may read it.
pub fn publish_chat(
    st: &AppState,
    school: SchoolId,
    message: ChatMessage,
    hostname: &str,
    user: Option<&str>,
) {
    let groups = st.device_groups(school, message.device_id, hostname, user);
    st.hub
        .publish(ConsoleEvent::Chat(Box::new(ChatEvent { message, groups })));
}

/// The chat history a device gets when it connects and when its user
/// changes: the newest [`HISTORY_LINES`] lines of its current thread that
/// belong to the user logged in now. Lines go back to the newest student line
/// written by someone else (a previous user's conversation stays theirs);
/// with no one logged in the history is empty, which clears the chat.
/// `None` if the store failed (the device keeps what it shows).
pub async fn history_for(st: &Shared, device: i64) -> Option<ServerMsg> {
    let (school, hostname, user) = subject(st, device);
    let Some(user) = user else {
        return Some(ServerMsg::ChatHistory { lines: Vec::new() });
    };
    let thread = thread_now(st, school, &hostname, Some(&user));
    let limit = HISTORY_LINES as u32;
    let rows = st
        .db(move |s| s.chat_history(school, device, &thread, limit))
        .await
        .ok()?;
    Some(ServerMsg::ChatHistory {
        lines: own_lines(&rows, &user).iter().map(line_of).collect(),
    })
}

/// The tail of `rows` (oldest first) after the newest student line not
/// written by `user`.
fn own_lines<'a>(rows: &'a [ChatMessage], user: &str) -> &'a [ChatMessage] {
    let start = rows
        .iter()
        .rposition(|m| !m.from_teacher && m.author != user)
        .map_or(0, |i| i + 1);
    &rows[start..]
}

/// `chat_send` from a device: checked, metered, stored in the device's
/// current thread, told to consoles, echoed to the device (so both sides
/// show the server's order) and keyword-scanned like typed text.
pub async fn chat_from_device(st: &Shared, device: i64, text: &str) -> Result<ServerMsg, Refusal> {
    let frame = || RefusedFrame::Chat;
    let text = check_chat(text).map_err(|e| Refusal::text(frame(), e))?;
    st.requests
        .take(device, Kind::Chat, CHATS_PER_MINUTE, Instant::now())
        .map_err(|w| Refusal::rate(frame(), w, "chat messages"))?;
    let (school, hostname, user) = subject(st, device);
    let at = lectern_store::now_ms();
    let new = NewChat {
        device_id: device,
        thread: thread_now(st, school, &hostname, user.as_deref()),
        batch: None,
        author: student_name(device, user.as_deref()),
        from_teacher: false,
        text: text.clone(),
        at,
    };
    let stored = st
        .db(move |s| s.add_chat(school, &[new]))
        .await
        .map_err(|_| Refusal::internal(frame()))?;
    let Some(message) = stored.into_iter().next() else {
        return Err(Refusal::internal(frame()));
    };
    let line = line_of(&message);
    publish_chat(st, school, message, &hostname, user.as_deref());
    scan_chat(st, school, device, user, &text, at).await;
    Ok(ServerMsg::Chat { line })
}

/// Scans a student's chat message with the keyword libraries that apply to
/// the device and its user, as typed text is: each term found once is a
/// violation (source `chat`) with its library's action for its severity and
/// evidence asked of the device.
async fn scan_chat(
    st: &Shared,
    school: SchoolId,
    device: i64,
    user: Option<String>,
    text: &str,
    at: i64,
) {
    if st
        .hub
        .policy_of(device)
        .is_some_and(|p| !p.keyword_policies)
    {
        return;
    }
    let texts = [("chat", text.to_string())];
    let found = crate::keywords::scan_device(st, device, &texts);
    for f in found {
        if !crate::keywords::take_violation(st, device) {
            continue;
        }
        let m = &f.m;
        let person = user
            .as_deref()
            .and_then(|u| st.policies.of(school).person_for(u));
        let action = match &f.applied {
            Some(a) => a.action(m.severity),
            None => crate::keywords::action_for(st, school, m.severity),
        };
        let v = Violation {
            id: 0,
            device_id: device,
            user: user.clone(),
            term: m.term.clone(),
            category: m.category.clone(),
            severity: m.severity,
            matched: m.matched.to_string(),
            context: lectern_policy::safety::context(f.text, m.start, m.end),
            source: f.source.into(),
            action,
            screenshots: 0,
            at,
            person_id: person.as_ref().map(|p| p.id),
            person: person.map(|p| p.display_name),
            retrospective: false,
        };
        let finder = crate::keywords::Finder::Server;
        crate::keywords::record_from(st, school, v, finder, f.applied.as_ref()).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(author: &str, from_teacher: bool) -> ChatMessage {
        ChatMessage {
            id: 0,
            device_id: 1,
            thread: "day:2026-12-02".into(),
            batch: None,
            author: author.into(),
            from_teacher,
            text: author.into(),
            at: 0,
        }
    }

    #[test]
    fn history_starts_after_another_students_last_line() {
        let rows = [
            msg("amy", false),
            msg("ms t", true),
            msg("ben", false),
            msg("ms t", true),
            msg("amy", false),
        ];
        let authors = |r: &[ChatMessage]| r.iter().map(|m| m.author.clone()).collect::<Vec<_>>();
        assert_eq!(authors(own_lines(&rows, "amy")), ["ms t", "amy"]);
        assert_eq!(authors(own_lines(&rows, "ben")), [] as [String; 0]);
        assert_eq!(authors(own_lines(&rows[..2], "amy")), ["amy", "ms t"]);
    }

    #[test]
    fn a_device_gets_its_per_minute_and_then_waits() {
        let m = Meters::default();
        let t0 = Instant::now();
        for _ in 0..HANDS_PER_MINUTE {
            m.take(1, Kind::Hand, HANDS_PER_MINUTE, t0).unwrap();
        }
        let wait = m.take(1, Kind::Hand, HANDS_PER_MINUTE, t0).unwrap_err();
        assert!(wait > Duration::from_secs(59));
        // Another device and another kind are metered apart.
        m.take(2, Kind::Hand, HANDS_PER_MINUTE, t0).unwrap();
        m.take(1, Kind::Chat, CHATS_PER_MINUTE, t0).unwrap();
        // A minute later the window has room again.
        m.take(
            1,
            Kind::Hand,
            HANDS_PER_MINUTE,
            t0 + Duration::from_secs(60),
        )
        .unwrap();
    }
}
