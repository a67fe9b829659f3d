//! Raised hands and chat (migration 0010), per school.
//!
//! A device has at most one open help request (a partial unique index holds
//! it). Chat messages are kept per device and thread: the thread is the
//! lesson running over the device when the message was written, else the
//! UTC day (see [`chat_thread`]).

use crate::sql::{in_tx, Row, Sql};
use serde::Serialize;

use crate::{Result, SchoolId};

/// How a help request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HandOutcome {
    /// A teacher answered with a text the student saw.
    Answered,
    /// A teacher dismissed it without an answer.
    Dismissed,
    /// The student withdrew it.
    Withdrawn,
}

impl HandOutcome {
    fn as_str(self) -> &'static str {
        match self {
            HandOutcome::Answered => "answered",
            HandOutcome::Dismissed => "dismissed",
            HandOutcome::Withdrawn => "withdrawn",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "answered" => Some(HandOutcome::Answered),
            "dismissed" => Some(HandOutcome::Dismissed),
            "withdrawn" => Some(HandOutcome::Withdrawn),
            _ => None,
        }
    }
}

/// A stored help request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HelpRequest {
    /// Id.
    pub id: i64,
    /// The device that raised it.
    pub device_id: i64,
    /// The user logged in on it then, as the server knew it.
    pub username: Option<String>,
    /// The student's note (may be empty).
    pub note: String,
    /// When (ms since epoch).
    pub raised_at: i64,
    /// When it was closed, if it is.
    pub closed_at: Option<i64>,
    /// How it was closed.
    pub outcome: Option<HandOutcome>,
    /// Who closed it (a console user, or the student).
    pub closed_by: Option<String>,
    /// The teacher's answer.
    pub answer: Option<String>,
}

/// A help request to store.
#[derive(Debug, Clone)]
pub struct NewHelpRequest {
    /// The device.
    pub device_id: i64,
    /// Its user, as the server knows it.
    pub username: Option<String>,
    /// Note (checked).
    pub note: String,
    /// When (ms).
    pub at: i64,
}

/// Closing a device's open help request.
#[derive(Debug, Clone)]
pub struct HandClose {
    /// The device.
    pub device_id: i64,
    /// Only this request (a console answering one it saw); `None`: whichever
    /// is open.
    pub id: Option<i64>,
    /// How.
    pub outcome: HandOutcome,
    /// Who.
    pub by: String,
    /// The answer, for [`HandOutcome::Answered`].
    pub answer: Option<String>,
    /// When (ms).
    pub at: i64,
}

/// A stored chat message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChatMessage {
    /// Id.
    pub id: i64,
    /// The student's device the conversation is with.
    pub device_id: i64,
    /// `lesson:<id>` or `day:<YYYY-MM-DD>`.
    pub thread: String,
    /// Shared by the copies of one teacher message sent to several devices.
    pub batch: Option<i64>,
    /// Who wrote it.
    pub author: String,
    /// A teacher (true) or the student on the device.
    pub from_teacher: bool,
    /// The text.
    pub text: String,
    /// When (ms).
    pub at: i64,
}

/// A chat message to store (one per device).
#[derive(Debug, Clone)]
pub struct NewChat {
    /// The device.
    pub device_id: i64,
    /// Its thread, from [`chat_thread`].
    pub thread: String,
    /// Batch id shared by copies, if several.
    pub batch: Option<i64>,
    /// Who wrote it.
    pub author: String,
    /// A teacher wrote it.
    pub from_teacher: bool,
    /// Text (checked).
    pub text: String,
    /// When (ms).
    pub at: i64,
}

/// The thread a message written at `at` (ms) belongs to: the running
/// lesson's, or the UTC day's.
pub fn chat_thread(lesson: Option<i64>, at: i64) -> String {
    match lesson {
        Some(id) => format!("lesson:{id}"),
        None => {
            let days = at.div_euclid(86_400_000);
            let (y, m, d) = civil_from_days(days);
            format!("day:{y:04}-{m:02}-{d:02}")
        }
    }
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian
/// (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

const HAND_COLUMNS: &str =
    "id, device_id, username, note, raised_at, closed_at, outcome, closed_by, answer";

fn hand_of(r: &Row) -> Result<HelpRequest> {
    let outcome: Option<String> = r.get(6)?;
    Ok(HelpRequest {
        id: r.get(0)?,
        device_id: r.get(1)?,
        username: r.get(2)?,
        note: r.get(3)?,
        raised_at: r.get(4)?,
        closed_at: r.get(5)?,
        outcome: outcome.as_deref().and_then(HandOutcome::parse),
        closed_by: r.get(7)?,
        answer: r.get(8)?,
    })
}

/// Stores a raised hand; `None` when the device already has one open (a
/// partial unique index holds that, on both engines).
pub(crate) fn raise(
    db: &mut dyn Sql,
    school: SchoolId,
    h: &NewHelpRequest,
) -> Result<Option<HelpRequest>> {
    let added = db.query_opt(
        "INSERT INTO help_requests (school_id, device_id, username, note, raised_at)
         VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT DO NOTHING RETURNING id",
        &[&school, &h.device_id, &h.username, &h.note, &h.at],
    )?;
    match added {
        Some(row) => get(db, school, row.get(0)?),
        None => Ok(None),
    }
}

/// One help request of the school.
pub(crate) fn get(db: &mut dyn Sql, school: SchoolId, id: i64) -> Result<Option<HelpRequest>> {
    db.query_opt(
        &format!("SELECT {HAND_COLUMNS} FROM help_requests WHERE school_id = ?1 AND id = ?2"),
        &[&school, &id],
    )?
    .map(|r| hand_of(&r))
    .transpose()
}

/// Closes the device's open request (the one named, if `c.id` is given);
/// `None` if none was open.
pub(crate) fn close(
    db: &mut dyn Sql,
    school: SchoolId,
    c: &HandClose,
) -> Result<Option<HelpRequest>> {
    let closed = in_tx(db, |db| {
        let Some(row) = db.query_opt(
            "SELECT id FROM help_requests
             WHERE school_id = ?1 AND device_id = ?2 AND closed_at IS NULL
               AND (CAST(?3 AS BIGINT) IS NULL OR id = ?3)",
            &[&school, &c.device_id, &c.id],
        )?
        else {
            return Ok(None);
        };
        let id: i64 = row.get(0)?;
        db.execute(
            "UPDATE help_requests SET closed_at = ?3, outcome = ?4, closed_by = ?5, answer = ?6
             WHERE school_id = ?1 AND id = ?2 AND closed_at IS NULL",
            &[&school, &id, &c.at, &c.outcome.as_str(), &c.by, &c.answer],
        )?;
        Ok(Some(id))
    })?;
    match closed {
        Some(id) => get(db, school, id),
        None => Ok(None),
    }
}

/// Open help requests, oldest first.
pub(crate) fn open(db: &mut dyn Sql, school: SchoolId) -> Result<Vec<HelpRequest>> {
    db.query(
        &format!(
            "SELECT {HAND_COLUMNS} FROM help_requests
             WHERE school_id = ?1 AND closed_at IS NULL ORDER BY id"
        ),
        &[&school],
    )?
    .iter()
    .map(hand_of)
    .collect()
}

/// Stores chat messages in one transaction; returns them with their ids.
pub(crate) fn add_chat(
    db: &mut dyn Sql,
    school: SchoolId,
    msgs: &[NewChat],
) -> Result<Vec<ChatMessage>> {
    in_tx(db, |db| {
        let mut out = Vec::with_capacity(msgs.len());
        for m in msgs {
            let id: i64 = db.insert_id(
                "INSERT INTO chat_messages
                       (school_id, device_id, thread, batch, author, from_teacher, text, at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) RETURNING id",
                &[
                    &school,
                    &m.device_id,
                    &m.thread,
                    &m.batch,
                    &m.author,
                    &m.from_teacher,
                    &m.text,
                    &m.at,
                ],
            )?;
            out.push(ChatMessage {
                id,
                device_id: m.device_id,
                thread: m.thread.clone(),
                batch: m.batch,
                author: m.author.clone(),
                from_teacher: m.from_teacher,
                text: m.text.clone(),
                at: m.at,
            });
        }
        Ok(out)
    })
}

/// The last `limit` messages of a device's thread, oldest first.
pub(crate) fn chat(
    db: &mut dyn Sql,
    school: SchoolId,
    device: i64,
    thread: &str,
    limit: u32,
) -> Result<Vec<ChatMessage>> {
    db.query(
        "SELECT id, device_id, thread, batch, author, from_teacher, text, at FROM (
           SELECT * FROM chat_messages
           WHERE school_id = ?1 AND device_id = ?2 AND thread = ?3
           ORDER BY id DESC LIMIT ?4
         ) AS recent ORDER BY id",
        &[&school, &device, &thread, &i64::from(limit)],
    )?
    .iter()
    .map(|r| {
        Ok(ChatMessage {
            id: r.get(0)?,
            device_id: r.get(1)?,
            thread: r.get(2)?,
            batch: r.get(3)?,
            author: r.get(4)?,
            from_teacher: r.get(5)?,
            text: r.get(6)?,
            at: r.get(7)?,
        })
    })
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threads_are_lessons_or_utc_days() {
        assert_eq!(chat_thread(Some(7), 0), "lesson:7");
        assert_eq!(chat_thread(None, 0), "day:1970-01-01");
        // 2026-12-02T06:39:49Z
        assert_eq!(chat_thread(None, 1_796_193_589_000), "day:2026-12-02");
        assert_eq!(chat_thread(None, 951_782_400_000), "day:2000-02-29");
    }
}
