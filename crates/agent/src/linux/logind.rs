//! User sessions straight from systemd-logind over the system D-Bus: the
//! sessions it lists (`org.freedesktop.login1.Manager.ListSessions`), each
//! one's properties (`org.freedesktop.login1.Session`), and its signals
//! (`SessionNew`, `SessionRemoved`, and a session's `PropertiesChanged` on a
//! VT switch, lock or logout), so the service learns of a change the moment
//! logind announces it, runs no `loginctl`, and does nothing in between.
//!
//! The bus is `DBUS_SYSTEM_BUS_ADDRESS` when set (tests run a private one),
//! else the standard system bus socket. Which sessions get a helper is
//! decided by [`SessionProps::usable`], the same rule as `loginctl`'s output
//! is judged by ([`super::sessions::parse_logind_session`]).

use std::collections::BTreeMap;

use futures_util::StreamExt;
use zbus::message::Type as MessageType;
use zbus::zvariant::{OwnedObjectPath, OwnedValue, Structure};
use zbus::{Connection, MatchRule, Message, MessageStream};

use super::sessions::LogindSession;

/// logind's bus name.
const LOGIND: &str = "org.freedesktop.login1";
/// The manager object and its interface.
const MANAGER_PATH: &str = "/org/freedesktop/login1";
const MANAGER: &str = "org.freedesktop.login1.Manager";
/// Where session objects live, and their interface.
const SESSION_PATHS: &str = "/org/freedesktop/login1/session";
const SESSION: &str = "org.freedesktop.login1.Session";
const PROPERTIES: &str = "org.freedesktop.DBus.Properties";
/// Signals queued per subscription while one is being handled (when full,
/// zbus stops reading the socket until there is room: nothing is lost);
/// logind sends a handful per login, so this only bounds memory.
const QUEUE: usize = 64;

/// The properties of one logind session that decide whether it gets a helper.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionProps {
    /// Session id (`Id`).
    pub id: String,
    /// User name (`Name`).
    pub name: String,
    /// User id (first field of `User`).
    pub uid: Option<u32>,
    /// X display (`Display`), empty for none.
    pub display: String,
    /// `Type`: x11, wayland, tty, mir, unspecified.
    pub kind: String,
    /// `Remote`: an ssh or remote-desktop login.
    pub remote: bool,
    /// `Active`: in the foreground of its seat.
    pub active: bool,
    /// `Class`: user, greeter, lock-screen, background.
    pub class: String,
    /// `State`: online, active or closing.
    pub state: String,
    /// Seat id (first field of `Seat`), empty for seatless sessions.
    pub seat: String,
    /// Session leader pid (`Leader`).
    pub leader: u32,
}

impl SessionProps {
    /// The session to serve, or `None` unless it is an active or online,
    /// local, user-class X11 session with a display. `Active` alone decides
    /// nothing: a session switched away from (State `online`) keeps its
    /// helper, one logging out (State `closing`) loses it.
    pub fn usable(&self) -> Option<LogindSession> {
        let usable = self.kind == "x11"
            && matches!(self.state.as_str(), "active" | "online")
            && !self.remote
            && self.class == "user"
            && !self.display.is_empty();
        usable.then(|| LogindSession {
            id: self.id.clone(),
            name: self.name.clone(),
            display: self.display.clone(),
            leader: self.leader,
        })
    }

    /// Reads the properties `GetAll` returned; a missing or mistyped one
    /// stays empty (and so fails [`Self::usable`] where it matters).
    fn from_dict(all: &BTreeMap<String, OwnedValue>) -> SessionProps {
        let text = |k: &str| {
            all.get(k)
                .and_then(|v| <&str>::try_from(v).ok())
                .unwrap_or("")
                .to_string()
        };
        let flag = |k: &str| all.get(k).and_then(|v| bool::try_from(v).ok()) == Some(true);
        // `User` is (uo) and `Seat` (so): the first field is the one we need.
        let first = |k: &str| {
            all.get(k)
                .and_then(|v| <&Structure>::try_from(v).ok())
                .and_then(|s| s.fields().first().cloned())
        };
        SessionProps {
            id: text("Id"),
            name: text("Name"),
            uid: first("User").and_then(|v| u32::try_from(&v).ok()),
            display: text("Display"),
            kind: text("Type"),
            remote: flag("Remote"),
            active: flag("Active"),
            class: text("Class"),
            state: text("State"),
            seat: first("Seat")
                .and_then(|v| <&str>::try_from(&v).ok().map(str::to_string))
                .unwrap_or_default(),
            leader: all
                .get("Leader")
                .and_then(|v| u32::try_from(v).ok())
                .unwrap_or(0),
        }
    }
}

/// A subscription to logind's session signals and what it has said so far.
pub struct LogindWatch {
    conn: Connection,
    signals: futures_util::stream::Select<MessageStream, MessageStream>,
    /// Every session logind knows of, by object path (unusable ones too: a
    /// later property change may make them usable).
    sessions: BTreeMap<String, SessionProps>,
}

impl LogindWatch {
    /// Connects to the system bus, subscribes to logind's session signals
    /// and then lists the sessions (in that order, so no change in between
    /// is missed). Fails when there is no bus or no logind on it.
    pub async fn start() -> zbus::Result<LogindWatch> {
        let conn = Connection::system().await?;
        Self::start_on(conn).await
    }

    /// [`Self::start`] on a connection already open.
    pub async fn start_on(conn: Connection) -> zbus::Result<LogindWatch> {
        let manager = MatchRule::builder()
            .msg_type(MessageType::Signal)
            .sender(LOGIND)?
            .path(MANAGER_PATH)?
            .interface(MANAGER)?
            .build();
        let changes = MatchRule::builder()
            .msg_type(MessageType::Signal)
            .sender(LOGIND)?
            .path_namespace(SESSION_PATHS)?
            .interface(PROPERTIES)?
            .member("PropertiesChanged")?
            .build();
        let signals = futures_util::stream::select(
            MessageStream::for_match_rule(manager, &conn, Some(QUEUE)).await?,
            MessageStream::for_match_rule(changes, &conn, Some(QUEUE)).await?,
        );
        let mut watch = LogindWatch {
            conn,
            signals,
            sessions: BTreeMap::new(),
        };
        for path in watch.list().await? {
            watch.refresh(path).await;
        }
        Ok(watch)
    }

    /// The sessions to serve now, in id order.
    pub fn usable(&self) -> Vec<LogindSession> {
        let mut out: Vec<LogindSession> =
            self.sessions.values().filter_map(|s| s.usable()).collect();
        out.sort_by(|a, b| a.id.cmp(&b.id));
        out
    }

    /// Waits for logind's next signals and returns the sessions to serve
    /// once they differ from before; `None` when the bus connection ends.
    pub async fn next_change(&mut self) -> Option<Vec<LogindSession>> {
        let before = self.usable();
        loop {
            let msg = match self.signals.next().await? {
                Ok(m) => m,
                Err(e) => {
                    tracing::warn!("unreadable message from logind: {e}");
                    continue;
                }
            };
            self.apply(&msg).await;
            let now = self.usable();
            if now != before {
                return Some(now);
            }
        }
    }

    /// Follows one signal: a new session is read, a removed one forgotten,
    /// a changed one read again.
    async fn apply(&mut self, msg: &Message) {
        let header = msg.header();
        let member = header.member().map(|m| m.as_str()).unwrap_or("");
        match member {
            "SessionNew" | "SessionRemoved" => {
                let Ok((_id, path)) = msg.body().deserialize::<(String, OwnedObjectPath)>() else {
                    tracing::warn!("logind's {member} signal has an unexpected body");
                    return;
                };
                if member == "SessionNew" {
                    self.refresh(path).await;
                } else {
                    self.sessions.remove(path.as_str());
                }
            }
            "PropertiesChanged" => {
                let Some(path) = header.path().map(|p| OwnedObjectPath::from(p.to_owned())) else {
                    return;
                };
                // Only the Session interface's properties matter; a body
                // that cannot be read is treated as a change, to be safe.
                let body = msg.body();
                let changed = body.deserialize::<(&str, BTreeMap<&str, OwnedValue>, Vec<&str>)>();
                if matches!(&changed, Ok((iface, _, _)) if *iface != SESSION) {
                    return;
                }
                // Read everything again: logind announces `Active` but not
                // every property that moves with it (`State`).
                self.refresh(path).await;
            }
            _ => {}
        }
    }

    /// The object paths of every session logind has.
    async fn list(&self) -> zbus::Result<Vec<OwnedObjectPath>> {
        let reply = self
            .conn
            .call_method(
                Some(LOGIND),
                MANAGER_PATH,
                Some(MANAGER),
                "ListSessions",
                &(),
            )
            .await?;
        let rows: Vec<(String, u32, String, String, OwnedObjectPath)> =
            reply.body().deserialize()?;
        Ok(rows.into_iter().map(|r| r.4).collect())
    }

    /// Reads one session's properties again; forgets it when it is gone.
    async fn refresh(&mut self, path: OwnedObjectPath) {
        let reply = self
            .conn
            .call_method(
                Some(LOGIND),
                path.as_ref(),
                Some(PROPERTIES),
                "GetAll",
                &(SESSION,),
            )
            .await;
        let all = reply.and_then(|r| r.body().deserialize::<BTreeMap<String, OwnedValue>>());
        match all {
            Ok(all) => {
                self.sessions
                    .insert(path.as_str().to_string(), SessionProps::from_dict(&all));
            }
            Err(e) => {
                tracing::debug!(session = %path.as_str(), "session gone: {e}");
                self.sessions.remove(path.as_str());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn x11() -> SessionProps {
        SessionProps {
            id: "4".into(),
            name: "amy".into(),
            uid: Some(1000),
            display: ":0".into(),
            kind: "x11".into(),
            remote: false,
            active: true,
            class: "user".into(),
            state: "active".into(),
            seat: "seat0".into(),
            leader: 812,
        }
    }

    #[test]
    fn the_bus_keeps_the_same_sessions_as_loginctl() {
        let text = "Id=4\nName=amy\nDisplay=:0\nType=x11\nState=active\nRemote=no\nClass=user\nLeader=812\n";
        assert_eq!(
            x11().usable(),
            super::super::sessions::parse_logind_session(text)
        );
        let online = SessionProps {
            active: false,
            state: "online".into(),
            ..x11()
        };
        assert!(online.usable().is_some(), "switched away: still served");
        for bad in [
            SessionProps {
                kind: "wayland".into(),
                ..x11()
            },
            SessionProps {
                kind: "tty".into(),
                ..x11()
            },
            SessionProps {
                state: "closing".into(),
                active: false,
                ..x11()
            },
            SessionProps {
                remote: true,
                ..x11()
            },
            SessionProps {
                class: "greeter".into(),
                ..x11()
            },
            SessionProps {
                display: String::new(),
                ..x11()
            },
        ] {
            assert_eq!(bad.usable(), None, "{bad:?}");
        }
    }
}
