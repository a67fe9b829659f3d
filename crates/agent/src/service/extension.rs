//! The browser extension's side of the service: the native hosts that
//! browsers start (one per browser profile), the tabs they report, the pages
//! visited, and the web settings pushed to them.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use lectern_proto::{ActivityEvent, ExtensionState, Tab};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc as queue;

use crate::ipc::{self, ExtMsg, WebPolicy};

/// Silence after which an extension counts as gone (it beats every 10 s).
const SILENCE: Duration = Duration::from_secs(30);
/// Most tabs kept per report.
const MAX_TABS: usize = 500;
/// Most events kept while the server is unreachable.
const MAX_PENDING: usize = 10_000;
/// Longest URL or title kept.
const MAX_TEXT: usize = 2048;

struct Conn {
    id: u64,
    /// Encoded frames for the connection's writer task.
    outbox: queue::Sender<Vec<u8>>,
    tabs: Vec<Tab>,
}

impl Conn {
    fn send(&self, msg: &ExtMsg) -> std::io::Result<()> {
        ipc::queue_frame(&self.outbox, ipc::encode_frame(msg, &[])?)
    }
}

#[derive(Default)]
struct Inner {
    conns: Vec<Arc<Mutex<Conn>>>,
    next_id: u64,
    ever_connected: bool,
    last_seen: Option<Instant>,
    activity: VecDeque<ActivityEvent>,
    typed: VecDeque<crate::TypedText>,
    policy: WebPolicy,
}

/// Every connected extension of this machine.
#[derive(Default)]
pub struct Extensions {
    inner: Mutex<Inner>,
    /// Signalled when an extension comes, goes, reports, or falls silent.
    pub changes: Arc<lectern_desktop::Changes>,
    /// Notified on every message (heartbeats too).
    heard: tokio::sync::Notify,
}

fn guard<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn clip(s: Option<String>) -> Option<String> {
    s.map(|s| s.chars().take(MAX_TEXT).collect())
}

/// Signals the moment the extensions have been silent for [`SILENCE`] (their
/// state turns from connected to gone quiet), then waits for the next
/// message: one wake per [`SILENCE`] at most, instead of a poll.
async fn watch_silence(ext: Arc<Extensions>) {
    loop {
        let Some(last) = guard(&ext.inner).last_seen else {
            return;
        };
        tokio::time::sleep_until(tokio::time::Instant::from_std(last + SILENCE)).await;
        if guard(&ext.inner).last_seen == Some(last) {
            ext.changes.state.notify_one();
            ext.heard.notified().await;
        }
    }
}

impl Extensions {
    /// Connected, gone quiet or never seen.
    pub fn state(&self) -> ExtensionState {
        let i = guard(&self.inner);
        let fresh = i.last_seen.is_some_and(|t| t.elapsed() < SILENCE);
        if !i.conns.is_empty() && fresh {
            ExtensionState::Connected
        } else if i.ever_connected {
            ExtensionState::Disconnected
        } else {
            ExtensionState::Unknown
        }
    }

    /// Tabs of every connected browser.
    pub fn tabs(&self) -> Vec<Tab> {
        let conns = guard(&self.inner).conns.clone();
        conns.iter().flat_map(|c| guard(c).tabs.clone()).collect()
    }

    /// Sends `msg` to every extension; returns how many got it.
    pub fn send_all(&self, msg: &ExtMsg) -> usize {
        let conns = guard(&self.inner).conns.clone();
        conns.iter().filter(|c| guard(c).send(msg).is_ok()).count()
    }

    /// Closes `tab_id` in whichever browser has it.
    pub fn close_tab(&self, tab_id: i64) -> Result<(), String> {
        let conns = guard(&self.inner).conns.clone();
        if conns.is_empty() {
            return Err("the browser extension is not connected".into());
        }
        for c in conns {
            let c = guard(&c);
            if c.tabs.iter().any(|t| t.id == tab_id) {
                return c
                    .send(&ExtMsg::CloseTab { tab_id })
                    .map_err(|e| format!("the browser extension went away: {e}"));
            }
        }
        Err(format!("no tab {tab_id} is open"))
    }

    /// Sets and sends the web settings; returns how many extensions got them.
    pub fn set_policy(&self, p: WebPolicy) -> usize {
        guard(&self.inner).policy = p.clone();
        self.send_all(&ExtMsg::Policy { web: p })
    }

    /// Text typed since the last call, oldest first.
    pub fn take_typed(&self) -> Vec<crate::TypedText> {
        guard(&self.inner).typed.drain(..).collect()
    }

    /// Pages visited since the last call, oldest first.
    pub fn take_activity(&self) -> Vec<ActivityEvent> {
        guard(&self.inner).activity.drain(..).collect()
    }

    /// Serves one native host until it hangs up; `user` is whose browser it
    /// is. Its writer runs as a task on the current runtime.
    pub async fn serve<T>(self: &Arc<Self>, stream: T, user: Option<String>) -> std::io::Result<()>
    where
        T: AsyncRead + AsyncWrite + Send + 'static,
    {
        let (reader, writer) = tokio::io::split(stream);
        let (outbox, queued) = queue::channel(ipc::OUTBOX);
        let conn = {
            let mut i = guard(&self.inner);
            i.next_id += 1;
            i.ever_connected = true;
            i.last_seen = Some(Instant::now());
            let c = Conn {
                id: i.next_id,
                outbox,
                tabs: Vec::new(),
            };
            c.send(&ExtMsg::Policy {
                web: i.policy.clone(),
            })?;
            c.send(&ExtMsg::GetTabs)?;
            let c = Arc::new(Mutex::new(c));
            i.conns.push(c.clone());
            c
        };
        tokio::spawn(ipc::drain_outbox(writer, queued));
        let id = guard(&conn).id;
        self.changes.state.notify_one();
        let silence = tokio::spawn(watch_silence(self.clone()));
        let result = self.read_loop(&conn, reader, user).await;
        silence.abort();
        guard(&self.inner).conns.retain(|c| guard(c).id != id);
        self.changes.state.notify_one();
        tracing::info!(id, "browser extension disconnected");
        result
    }

    async fn read_loop<R: AsyncRead + Unpin>(
        &self,
        conn: &Mutex<Conn>,
        mut stream: R,
        user: Option<String>,
    ) -> std::io::Result<()> {
        loop {
            let (msg, _) = match ipc::read_frame::<ExtMsg, _>(&mut stream).await {
                Ok(m) => m,
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
                Err(e) => return Err(e),
            };
            guard(&self.inner).last_seen = Some(Instant::now());
            self.heard.notify_one();
            if !matches!(msg, ExtMsg::Heartbeat) {
                self.changes.state.notify_one();
            }
            match msg {
                ExtMsg::Hello { version, browser } => {
                    tracing::info!(%version, %browser, "browser extension connected");
                }
                ExtMsg::Heartbeat => {}
                ExtMsg::Tabs { mut tabs } => {
                    tabs.truncate(MAX_TABS);
                    for t in &mut tabs {
                        t.title = t.title.chars().take(MAX_TEXT).collect();
                        t.url = t.url.chars().take(MAX_TEXT).collect();
                    }
                    guard(conn).tabs = tabs;
                }
                ExtMsg::Typed { text, url, at } => {
                    let mut i = guard(&self.inner);
                    if i.typed.len() >= 1000 {
                        i.typed.pop_front();
                    }
                    i.typed.push_back(crate::TypedText {
                        text: text.chars().take(1000).collect(),
                        url: clip(url),
                        user: user.clone(),
                        at,
                    });
                }
                ExtMsg::Activity {
                    kind,
                    url,
                    title,
                    at,
                } => {
                    let web = url
                        .as_deref()
                        .is_some_and(|u| u.starts_with("http://") || u.starts_with("https://"));
                    if kind != "web" || !web {
                        tracing::debug!(%kind, "ignoring an activity event that is not a web page");
                        continue;
                    }
                    let mut i = guard(&self.inner);
                    if i.activity.len() >= MAX_PENDING {
                        i.activity.pop_front();
                    }
                    i.activity.push_back(ActivityEvent {
                        kind,
                        user: user.clone(),
                        url: clip(url),
                        title: clip(title),
                        app: Some("Web browser".into()),
                        at,
                        blocked: false,
                    });
                }
                other => {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!("the extension may not send {other:?}"),
                    ))
                }
            }
        }
    }
}
