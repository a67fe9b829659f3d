//! The registration form on the screen (issue 16 point 2): a service with
//! neither a token nor a school code asks every session's helper for the
//! school's code and takes the first well-formed answer; a code the server
//! refuses is asked for again with the reason.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};

use super::enroll::registration;
use super::registry::{Registry, SessionInfo};
use crate::config::ServiceConfig;
use crate::HandshakeError;

/// How often new sessions are asked and the files looked at again.
const LOOK_AGAIN: Duration = Duration::from_secs(2);
/// How long a form closed unanswered (or one a backend cannot show) waits
/// before its session is asked again.
const ASK_AGAIN: Duration = Duration::from_secs(30);

/// What a session's form did.
enum Event {
    /// A code was typed.
    Typed(String),
    /// The form of this ask (session, ask number) closed unanswered, or its
    /// session went.
    Closed(String, u64),
}

/// Asks the sessions for the school's code until one is typed in a valid
/// form (canonical, returned), a token or code appears by other means, or
/// the service stops (both `None`). `error` is shown with the first ask.
pub(super) async fn ask_for_code<S: SessionInfo>(
    cfg: &ServiceConfig,
    registry: &Registry<S>,
    mut error: Option<String>,
    shutdown: &mut watch::Receiver<bool>,
) -> Option<String> {
    let (tx, mut events) = mpsc::channel::<Event>(16);
    // The sessions asked, with the number of their latest ask and when it
    // closed unanswered: asking again replaces a form's answer, which
    // closes the earlier ask, so only the latest one's closing counts.
    let mut asked: HashMap<String, (u64, Option<Instant>)> = HashMap::new();
    let mut next = 0u64;
    loop {
        for conn in registry.connected() {
            if asked.contains_key(&conn.session) {
                continue;
            }
            next += 1;
            asked.insert(conn.session.clone(), (next, None));
            tracing::info!(session = %conn.session, "asking for the school code on the screen");
            let answer = registry.ask_school_code(&conn, error.as_deref());
            let (tx, session, n) = (tx.clone(), conn.session.clone(), next);
            tokio::spawn(async move {
                let event = match answer.await {
                    Ok(code) => Event::Typed(code),
                    Err(_) => Event::Closed(session, n),
                };
                let _ = tx.send(event).await;
            });
        }
        tokio::select! {
            Some(event) = events.recv() => match event {
                Event::Typed(code) => match lectern_proto::schoolcode::normalize(&code) {
                    Ok(code) => return Some(code),
                    Err(e) => {
                        // Every form asks again, with the reason.
                        error = Some(format!("{e}, like 7KQ2M-XH4PD."));
                        asked.clear();
                    }
                },
                Event::Closed(session, n) => {
                    if let Some(ask) = asked.get_mut(&session).filter(|a| a.0 == n) {
                        ask.1 = Some(Instant::now());
                    }
                }
            },
            _ = tokio::time::sleep(LOOK_AGAIN) => {
                // Forms closed a while ago are asked again; sessions gone
                // are forgotten.
                let live: HashSet<String> =
                    registry.connected().iter().map(|c| c.session.clone()).collect();
                asked.retain(|s, (_, closed)| {
                    live.contains(s) && closed.is_none_or(|t| t.elapsed() < ASK_AGAIN)
                });
                if registration(cfg).is_ok() {
                    return None;
                }
            }
            _ = shutdown.changed() => return None,
        }
    }
}

/// Why the server refused a registration, when it refused the code itself
/// (unknown, changed, or too many wrong ones from here).
pub(super) fn refusal(e: &anyhow::Error) -> Option<String> {
    use lectern_proto::ErrorCode::{BadToken, RateLimited};
    match e.downcast_ref::<HandshakeError>() {
        Some(HandshakeError::Refused {
            code: BadToken | RateLimited,
            message,
        }) => Some(format!("The server refused the school code: {message}.")),
        _ => None,
    }
}
