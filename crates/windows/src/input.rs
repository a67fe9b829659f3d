//! Remote-control input (`SendInput`): what a teacher's pointer and keys do
//! on the student's screen.

use lectern_desktop::DesktopError;
use lectern_proto::control::{InputEvent, MouseButton as ProtoButton};
use windows_sys::Win32::UI::Input::KeyboardAndMouse::{
    MapVirtualKeyW, SendInput, INPUT, INPUT_0, INPUT_KEYBOARD, INPUT_MOUSE, KEYBDINPUT,
    KEYEVENTF_KEYUP, MAPVK_VSC_TO_VK_EX, MOUSEEVENTF_ABSOLUTE, MOUSEEVENTF_HWHEEL,
    MOUSEEVENTF_LEFTDOWN, MOUSEEVENTF_LEFTUP, MOUSEEVENTF_MIDDLEDOWN, MOUSEEVENTF_MIDDLEUP,
    MOUSEEVENTF_MOVE, MOUSEEVENTF_RIGHTDOWN, MOUSEEVENTF_RIGHTUP, MOUSEEVENTF_VIRTUALDESK,
    MOUSEEVENTF_WHEEL, MOUSEINPUT, VK_CONTROL, VK_DELETE, VK_LWIN, VK_MENU, VK_SHIFT,
};

use crate::wide::last_error;

/// A mouse button.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MouseButton {
    /// Primary.
    Left,
    /// Secondary.
    Right,
    /// Wheel button.
    Middle,
}

/// Modifier keys held around a key press.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Modifiers {
    /// Ctrl.
    pub ctrl: bool,
    /// Alt.
    pub alt: bool,
    /// Shift.
    pub shift: bool,
    /// The Windows key.
    pub win: bool,
}

/// One remote-control event.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RemoteInput {
    /// Moves the pointer to a point of the whole (virtual) screen given as
    /// fractions of its width and height, 0.0–1.0 (clamped), so the viewer
    /// needs no pixel sizes.
    PointerMove {
        /// 0.0 left edge, 1.0 right edge.
        x: f64,
        /// 0.0 top edge, 1.0 bottom edge.
        y: f64,
    },
    /// Presses or releases a button at the pointer.
    Button {
        /// Which button.
        button: MouseButton,
        /// Pressed (true) or released.
        down: bool,
    },
    /// Turns the wheel by `delta` (120 per notch; positive away from the
    /// user / right when `horizontal`).
    Wheel {
        /// Amount.
        delta: i32,
        /// Horizontal wheel.
        horizontal: bool,
    },
    /// Presses and releases virtual-key `vk` with `modifiers` held.
    Key {
        /// The Windows virtual-key code.
        vk: u16,
        /// Held around the key.
        modifiers: Modifiers,
    },
}

/// Why remote input was not sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InputError {
    /// Ctrl+Alt+Del is the secure attention sequence: not the teacher's to send.
    #[error("Ctrl+Alt+Del cannot be sent remotely")]
    CtrlAltDel,
    /// Windows refused the input (e.g. a higher-integrity window has focus).
    #[error("{0}")]
    Failed(DesktopError),
}

/// Sends `input` to the session this process runs in.
///
/// Windows delivers it to whatever has the focus, within the limits of
/// UIPI: a program running elevated (or the UAC and Ctrl+Alt+Del screens)
/// ignores input from this unelevated helper. Ctrl+Alt+Del is refused here.
pub fn send_input(input: RemoteInput) -> Result<(), InputError> {
    let events = events(input)?;
    // SAFETY: `events` is a slice of initialised INPUT records.
    let sent = unsafe {
        SendInput(
            events.len() as u32,
            events.as_ptr(),
            std::mem::size_of::<INPUT>() as i32,
        )
    };
    if sent as usize != events.len() {
        return Err(InputError::Failed(last_error("SendInput")));
    }
    Ok(())
}

/// The INPUT records for `input`.
fn events(input: RemoteInput) -> Result<Vec<INPUT>, InputError> {
    Ok(match input {
        RemoteInput::PointerMove { x, y } => {
            let norm = |v: f64| (v.clamp(0.0, 1.0) * 65535.0).round() as i32;
            vec![mouse(
                norm(x),
                norm(y),
                0,
                MOUSEEVENTF_MOVE | MOUSEEVENTF_ABSOLUTE | MOUSEEVENTF_VIRTUALDESK,
            )]
        }
        RemoteInput::Button { button, down } => {
            let flag = match (button, down) {
                (MouseButton::Left, true) => MOUSEEVENTF_LEFTDOWN,
                (MouseButton::Left, false) => MOUSEEVENTF_LEFTUP,
                (MouseButton::Right, true) => MOUSEEVENTF_RIGHTDOWN,
                (MouseButton::Right, false) => MOUSEEVENTF_RIGHTUP,
                (MouseButton::Middle, true) => MOUSEEVENTF_MIDDLEDOWN,
                (MouseButton::Middle, false) => MOUSEEVENTF_MIDDLEUP,
            };
            vec![mouse(0, 0, 0, flag)]
        }
        RemoteInput::Wheel { delta, horizontal } => {
            let flag = if horizontal {
                MOUSEEVENTF_HWHEEL
            } else {
                MOUSEEVENTF_WHEEL
            };
            vec![mouse(0, 0, delta as u32, flag)]
        }
        RemoteInput::Key { vk, modifiers: m } => {
            if vk == VK_DELETE && m.ctrl && m.alt {
                return Err(InputError::CtrlAltDel);
            }
            let held: Vec<u16> = [
                (m.ctrl, VK_CONTROL),
                (m.alt, VK_MENU),
                (m.shift, VK_SHIFT),
                (m.win, VK_LWIN),
            ]
            .iter()
            .filter(|(on, _)| *on)
            .map(|(_, k)| *k)
            .collect();
            let mut v: Vec<INPUT> = held.iter().map(|&k| key(k, false)).collect();
            v.push(key(vk, false));
            v.push(key(vk, true));
            v.extend(held.iter().rev().map(|&k| key(k, true)));
            v
        }
    })
}

fn mouse(dx: i32, dy: i32, data: u32, flags: u32) -> INPUT {
    INPUT {
        r#type: INPUT_MOUSE,
        Anonymous: INPUT_0 {
            mi: MOUSEINPUT {
                dx,
                dy,
                mouseData: data,
                dwFlags: flags,
                time: 0,
                dwExtraInfo: 0,
            },
        },
    }
}

fn key(vk: u16, up: bool) -> INPUT {
    INPUT {
        r#type: INPUT_KEYBOARD,
        Anonymous: INPUT_0 {
            ki: KEYBDINPUT {
                wVk: vk,
                wScan: 0,
                dwFlags: if up { KEYEVENTF_KEYUP } else { 0 },
                time: 0,
                dwExtraInfo: 0,
            },
        },
    }
}

/// The [`RemoteInput`] for a checked remote-control event from the server;
/// `None` for a key without a scan code here. Keys are physical (evdev
/// codes): their set-1 scan code is mapped to the virtual key the
/// student's keyboard layout gives that key, so the key pressed is where
/// the teacher pressed it.
pub fn remote_input(e: &InputEvent) -> Option<RemoteInput> {
    Some(match e {
        InputEvent::Move { x, y } => RemoteInput::PointerMove {
            x: f64::from(*x) / 65535.0,
            y: f64::from(*y) / 65535.0,
        },
        InputEvent::Button { button, down } => RemoteInput::Button {
            button: match button {
                ProtoButton::Left => MouseButton::Left,
                ProtoButton::Middle => MouseButton::Middle,
                ProtoButton::Right => MouseButton::Right,
            },
            down: *down,
        },
        // One notch is 120; X's and the console's "down" is Windows' negative.
        InputEvent::Wheel { dx, dy } if *dy != 0 => RemoteInput::Wheel {
            delta: -i32::from(*dy) * 120,
            horizontal: false,
        },
        InputEvent::Wheel { dx, .. } => RemoteInput::Wheel {
            delta: i32::from(*dx) * 120,
            horizontal: true,
        },
        InputEvent::Key { mods, .. } => {
            let sc = lectern_proto::control::scan_code(e.evdev()?)?;
            // SAFETY: a pure lookup in the current keyboard layout.
            let vk = unsafe { MapVirtualKeyW(u32::from(sc), MAPVK_VSC_TO_VK_EX) } as u16;
            if vk == 0 {
                return None;
            }
            RemoteInput::Key {
                vk,
                modifiers: Modifiers {
                    ctrl: mods.ctrl,
                    alt: mods.alt,
                    shift: mods.shift,
                    win: mods.meta,
                },
            }
        }
    })
}
