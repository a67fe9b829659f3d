//! Remote-control input through the XTEST extension: what a teacher's
//! pointer and keys do on the student's screen. Keys arrive as Linux evdev
//! codes (physical keys); X servers using the evdev keycodes (Xorg with
//! evdev or libinput, Xvfb, Xwayland) number them 8 higher.

use lectern_desktop::DesktopError;
use lectern_proto::control::{InputEvent, Mods, MouseButton};
use x11rb::connection::RequestConnection;
use x11rb::protocol::xproto::{
    ConnectionExt as _, Window, BUTTON_PRESS_EVENT, BUTTON_RELEASE_EVENT, KEY_PRESS_EVENT,
    KEY_RELEASE_EVENT, MOTION_NOTIFY_EVENT,
};
use x11rb::protocol::xtest::{self, ConnectionExt as _};
use x11rb::rust_connection::RustConnection;
use x11rb::CURRENT_TIME;

use crate::capture::failed;

/// The X keycodes of the left modifier keys `mods` holds: Ctrl, Alt,
/// Shift, Super (evdev 29, 56, 42, 125, plus 8).
fn mod_keys(mods: Mods) -> Vec<u8> {
    [
        (mods.ctrl, 29 + 8),
        (mods.alt, 56 + 8),
        (mods.shift, 42 + 8),
        (mods.meta, 125 + 8),
    ]
    .into_iter()
    .filter(|(on, _)| *on)
    .map(|(_, k)| k)
    .collect()
}

/// Injects input on one display and remembers the buttons it holds down,
/// so that they are released when control ends.
pub(crate) struct Injector {
    root: Window,
    held: Vec<u8>,
}

/// Whether the server offers XTEST.
pub(crate) fn available(conn: &RustConnection) -> bool {
    conn.extension_information(xtest::X11_EXTENSION_NAME)
        .ok()
        .flatten()
        .is_some()
}

impl Injector {
    pub(crate) fn new(root: Window) -> Self {
        Injector {
            root,
            held: Vec::new(),
        }
    }

    fn fake(
        &self,
        conn: &RustConnection,
        kind: u8,
        detail: u8,
        x: i16,
        y: i16,
    ) -> Result<(), DesktopError> {
        conn.xtest_fake_input(kind, detail, CURRENT_TIME, self.root, x, y, 0)
            .map_err(failed)?;
        Ok(())
    }

    /// Injects `events` in order, skipping any that fails
    /// [`InputEvent::check`]; returns once the X server has them.
    pub(crate) fn inject(
        &mut self,
        conn: &RustConnection,
        events: &[InputEvent],
    ) -> Result<(), DesktopError> {
        let mut size = None;
        // Checked by the server and the agent's session already; checked
        // again here, the last step before the X server, so Ctrl+Alt+Del
        // can never be injected whoever calls this.
        for e in events.iter().filter(|e| e.check().is_ok()) {
            match e {
                InputEvent::Move { x, y } => {
                    let (w, h) = match size {
                        Some(s) => s,
                        None => {
                            let g = conn
                                .get_geometry(self.root)
                                .map_err(failed)?
                                .reply()
                                .map_err(failed)?;
                            *size.insert((g.width, g.height))
                        }
                    };
                    // v/65535 of the extent; the far edge is its last pixel.
                    let scale = |v: u16, extent: u16| {
                        let px = u32::from(v) * u32::from(extent) / 65535;
                        px.min(u32::from(extent.saturating_sub(1))) as i16
                    };
                    self.fake(conn, MOTION_NOTIFY_EVENT, 0, scale(*x, w), scale(*y, h))?;
                }
                InputEvent::Button { button, down } => {
                    self.button(conn, button_number(*button), *down)?
                }
                InputEvent::Wheel { dx, dy } => {
                    // X reports wheel notches as presses of buttons 4–7.
                    let (v, h) = (if *dy < 0 { 4 } else { 5 }, if *dx < 0 { 6 } else { 7 });
                    for (button, n) in [(v, dy.unsigned_abs()), (h, dx.unsigned_abs())] {
                        for _ in 0..n {
                            self.fake(conn, BUTTON_PRESS_EVENT, button, 0, 0)?;
                            self.fake(conn, BUTTON_RELEASE_EVENT, button, 0, 0)?;
                        }
                    }
                }
                InputEvent::Key { mods, .. } => {
                    let Some(code) = e.evdev().and_then(|c| u8::try_from(c + 8).ok()) else {
                        continue;
                    };
                    self.key(conn, code, *mods)?;
                }
            }
        }
        conn.get_input_focus()
            .map_err(failed)?
            .reply()
            .map_err(failed)?;
        Ok(())
    }

    fn button(&mut self, conn: &RustConnection, b: u8, down: bool) -> Result<(), DesktopError> {
        let held = self.held.contains(&b);
        match (down, held) {
            (true, false) => self.held.push(b),
            (false, true) => self.held.retain(|h| *h != b),
            // A press of a held button or a release of a free one changes nothing.
            _ => return Ok(()),
        }
        let kind = if down {
            BUTTON_PRESS_EVENT
        } else {
            BUTTON_RELEASE_EVENT
        };
        self.fake(conn, kind, b, 0, 0)
    }

    /// Presses the modifiers, presses and releases the key, releases the
    /// modifiers: nothing stays held after the event.
    fn key(&self, conn: &RustConnection, code: u8, mods: Mods) -> Result<(), DesktopError> {
        let held = mod_keys(mods);
        for k in &held {
            self.fake(conn, KEY_PRESS_EVENT, *k, 0, 0)?;
        }
        self.fake(conn, KEY_PRESS_EVENT, code, 0, 0)?;
        self.fake(conn, KEY_RELEASE_EVENT, code, 0, 0)?;
        for k in held.iter().rev() {
            self.fake(conn, KEY_RELEASE_EVENT, *k, 0, 0)?;
        }
        Ok(())
    }

    /// Releases every button still held (control ended mid-drag).
    pub(crate) fn release_all(&mut self, conn: &RustConnection) -> Result<(), DesktopError> {
        for b in std::mem::take(&mut self.held) {
            self.fake(conn, BUTTON_RELEASE_EVENT, b, 0, 0)?;
        }
        // A round trip, so the releases are done when control is reported
        // stopped (other connections, e.g. the student's, see them at once).
        conn.get_input_focus()
            .map_err(failed)?
            .reply()
            .map_err(failed)?;
        Ok(())
    }
}

fn button_number(b: MouseButton) -> u8 {
    match b {
        MouseButton::Left => 1,
        MouseButton::Middle => 2,
        MouseButton::Right => 3,
    }
}
