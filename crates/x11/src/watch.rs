//! Changes from X events instead of polling: a thread on a connection of its
//! own waits for `PropertyNotify` on the root (`_NET_ACTIVE_WINDOW`,
//! `_NET_CLIENT_LIST`) and on the active window (`_NET_WM_NAME`, `WM_NAME`),
//! and for XDamage on the root, and signals [`Changes`]. While nothing
//! happens on the screen the thread sleeps in the kernel: no timer wakes it.
//! Without an EWMH window manager (no `_NET_SUPPORTING_WM_CHECK` on the
//! root) focus changes make no event here, so the source counts as
//! unsignalled (the agent polls) until one starts.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use lectern_desktop::{Changes, DesktopError};
use x11rb::connection::{Connection, RequestConnection as _};
use x11rb::protocol::damage::{self, ConnectionExt as _, ReportLevel};
use x11rb::protocol::xproto::{
    AtomEnum, ChangeWindowAttributesAux, ClientMessageEvent, ConnectionExt as _, CreateWindowAux,
    EventMask, Window, WindowClass,
};
use x11rb::protocol::Event;
use x11rb::rust_connection::RustConnection;

x11rb::atom_manager! {
    /// The properties whose changes matter.
    Watched: WatchedCookie {
        _NET_ACTIVE_WINDOW,
        _NET_CLIENT_LIST,
        _NET_SUPPORTING_WM_CHECK,
        _NET_WM_NAME,
        WM_NAME,
    }
}

/// The watching thread; stopped and joined when dropped.
pub struct Watcher {
    conn: Arc<RustConnection>,
    /// The XDamage object on the root, when the server has the extension.
    damage: Option<damage::Damage>,
    /// An unmapped window of ours that a stop message is sent to.
    wake: Window,
    stop: Arc<AtomicBool>,
    changes: Arc<Changes>,
    thread: Option<JoinHandle<()>>,
}

impl Watcher {
    /// Connects to `display` and starts watching its first screen.
    pub fn start(display: &str) -> Result<Watcher, DesktopError> {
        let failed = |e: &dyn std::fmt::Display| DesktopError::Failed(format!("X11 watch: {e}"));
        let (conn, screen_num) = x11rb::connect(Some(display)).map_err(|e| failed(&e))?;
        let conn = Arc::new(conn);
        let root = conn.setup().roots[screen_num].root;
        let atoms = Watched::new(&*conn)
            .map_err(|e| failed(&e))?
            .reply()
            .map_err(|e| failed(&e))?;
        let root_mask = ChangeWindowAttributesAux::new().event_mask(EventMask::PROPERTY_CHANGE);
        conn.change_window_attributes(root, &root_mask)
            .map_err(|e| failed(&e))?;
        let wake = conn.generate_id().map_err(|e| failed(&e))?;
        conn.create_window(
            0,
            wake,
            root,
            0,
            0,
            1,
            1,
            0,
            WindowClass::INPUT_ONLY,
            0,
            &CreateWindowAux::new(),
        )
        .map_err(|e| failed(&e))?;
        let damage = start_damage(&conn, root);
        conn.flush().map_err(|e| failed(&e))?;
        let changes = Arc::new(Changes::default());
        let stop = Arc::new(AtomicBool::new(false));
        let mut state = WatchState {
            conn: conn.clone(),
            atoms,
            root,
            active: None,
            changes: changes.clone(),
            managed: true,
        };
        state.follow_wm();
        state.follow_active();
        let thread_stop = stop.clone();
        // The default stack: only the pages it touches count as memory.
        let thread = std::thread::Builder::new()
            .name("x11-watch".into())
            .spawn(move || state.run(&thread_stop))
            .map_err(|e| failed(&e))?;
        Ok(Watcher {
            conn,
            damage,
            wake,
            stop,
            changes,
            thread: Some(thread),
        })
    }

    /// What this watcher signals.
    pub fn changes(&self) -> Arc<Changes> {
        self.changes.clone()
    }

    /// Called before each capture: what was drawn so far is taken, and the
    /// next drawing signals [`Changes::screen`] again (once).
    pub fn rearm(&self) {
        if let Some(d) = self.damage {
            let _ = self.conn.damage_subtract(d, x11rb::NONE, x11rb::NONE);
            let _ = self.conn.flush();
        }
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let wake = ClientMessageEvent::new(32, self.wake, AtomEnum::NONE, [0u32; 5]);
        let _ = self
            .conn
            .send_event(false, self.wake, EventMask::NO_EVENT, wake);
        let _ = self.conn.flush();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// XDamage on the root, reporting once when the damaged region stops being
/// empty; `None` when the server lacks the extension.
fn start_damage(conn: &RustConnection, root: Window) -> Option<damage::Damage> {
    conn.extension_information(damage::X11_EXTENSION_NAME)
        .ok()
        .flatten()?;
    conn.damage_query_version(1, 1).ok()?.reply().ok()?;
    let id = conn.generate_id().ok()?;
    conn.damage_create(id, root, ReportLevel::NON_EMPTY).ok()?;
    Some(id)
}

/// What the watching thread owns.
struct WatchState {
    conn: Arc<RustConnection>,
    atoms: Watched,
    root: Window,
    /// The active window whose title is watched.
    active: Option<Window>,
    changes: Arc<Changes>,
    /// An EWMH window manager runs (it sets `_NET_ACTIVE_WINDOW`).
    managed: bool,
}

impl WatchState {
    fn run(mut self, stop: &AtomicBool) {
        while !stop.load(Ordering::SeqCst) {
            match self.conn.wait_for_event() {
                Ok(event) => self.event(event),
                Err(e) => {
                    tracing::warn!("X11 watch ends: {e}");
                    return;
                }
            }
        }
    }

    /// One event from the server.
    fn event(&mut self, event: Event) {
        match event {
            Event::PropertyNotify(p) if p.window == self.root => {
                if p.atom == self.atoms._NET_ACTIVE_WINDOW {
                    self.follow_active();
                    self.changes.state.notify_one();
                } else if p.atom == self.atoms._NET_CLIENT_LIST {
                    self.changes.state.notify_one();
                } else if p.atom == self.atoms._NET_SUPPORTING_WM_CHECK {
                    self.follow_wm();
                }
            }
            Event::PropertyNotify(p)
                if Some(p.window) == self.active
                    && (p.atom == self.atoms._NET_WM_NAME || p.atom == self.atoms.WM_NAME) =>
            {
                self.changes.state.notify_one();
            }
            Event::DamageNotify(_) => self.changes.screen.notify_one(),
            _ => {}
        }
    }

    /// Counts this source as unsignalled while no window manager runs.
    fn follow_wm(&mut self) {
        let managed = self
            .conn
            .get_property(
                false,
                self.root,
                self.atoms._NET_SUPPORTING_WM_CHECK,
                AtomEnum::WINDOW,
                0,
                1,
            )
            .ok()
            .and_then(|c| c.reply().ok())
            .is_some_and(|r| r.value_len > 0);
        if managed != self.managed {
            self.managed = managed;
            self.changes.unsignalled_source(!managed);
        }
    }

    /// Watches the title of the window that is active now (and no longer
    /// that of the one before).
    fn follow_active(&mut self) {
        let now = self
            .conn
            .get_property(
                false,
                self.root,
                self.atoms._NET_ACTIVE_WINDOW,
                AtomEnum::WINDOW,
                0,
                1,
            )
            .ok()
            .and_then(|c| c.reply().ok())
            .and_then(|r| r.value32()?.next())
            .filter(|&w| w != 0);
        if now == self.active {
            return;
        }
        if let Some(old) = self.active {
            let none = ChangeWindowAttributesAux::new().event_mask(EventMask::NO_EVENT);
            // The old window may be gone already: errors are expected.
            let _ = self.conn.change_window_attributes(old, &none);
        }
        if let Some(new) = now {
            let props = ChangeWindowAttributesAux::new().event_mask(EventMask::PROPERTY_CHANGE);
            let _ = self.conn.change_window_attributes(new, &props);
        }
        let _ = self.conn.flush();
        self.active = now;
    }
}
