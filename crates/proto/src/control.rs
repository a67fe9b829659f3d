//! Remote control: the input a teacher's console sends to take over a
//! device's mouse and keyboard, checked here so that the server (and again the
//! agent) acts only on well-formed, bounded, permitted events.
//!
//! The console sends `{"type":"control","device":5,"on":true}` to take or
//! give up control and `{"type":"input","device":5,"events":[…]}` with at most
//! [`MAX_INPUT_EVENTS`] [`InputEvent`]s; the server forwards checked events to
//! the agent in [`crate::ServerMsg::ControlInput`].
//!
//! Keys are layout-independent physical keys: the DOM `KeyboardEvent.code`
//! name (`"KeyA"` is the key right of Caps Lock whatever it prints), pressed
//! and released with the modifiers held around it. A key is never left held
//! between events, so nothing is stuck when control ends. Key combinations
//! the operating system keeps for itself ([`reserved`]: Ctrl+Alt+Del,
//! Ctrl+Alt+Backspace, Ctrl+Alt+F1…F12) are refused.

use serde::{Deserialize, Serialize};

/// Most events in one input message.
pub const MAX_INPUT_EVENTS: usize = 64;

/// Largest wheel turn in one event, in notches either way.
pub const MAX_WHEEL: i8 = 10;

/// Modifier keys held around a key press.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Mods {
    /// Ctrl.
    pub ctrl: bool,
    /// Alt (Option).
    pub alt: bool,
    /// Shift.
    pub shift: bool,
    /// The Windows / Super / Command key.
    pub meta: bool,
}

/// A mouse button.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MouseButton {
    /// Primary.
    Left,
    /// Wheel button.
    Middle,
    /// Secondary.
    Right,
}

/// One input event, as the console sends it and the agent injects it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case", deny_unknown_fields)]
pub enum InputEvent {
    /// Moves the pointer to a point of the screen given in 1/65535ths of its
    /// width and height (0 is the left or top edge, 65535 the right or
    /// bottom), so the console needs no pixel sizes.
    Move {
        /// Horizontal position.
        x: u16,
        /// Vertical position.
        y: u16,
    },
    /// Presses or releases a mouse button where the pointer is.
    Button {
        /// Which button.
        button: MouseButton,
        /// Pressed (true) or released.
        down: bool,
    },
    /// Turns the wheel, in notches (positive: down / right).
    Wheel {
        /// Horizontal notches.
        #[serde(default)]
        dx: i8,
        /// Vertical notches.
        #[serde(default)]
        dy: i8,
    },
    /// Presses and releases one physical key with `mods` held.
    Key {
        /// The DOM `KeyboardEvent.code` name, e.g. `"KeyA"`, `"Enter"`.
        code: String,
        /// Modifiers held around it.
        #[serde(default)]
        mods: Mods,
    },
}

/// Why an input event is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InputError {
    /// A key name not in the table (see [`evdev_code`]).
    #[error("unknown key {0:?}")]
    UnknownKey(String),
    /// A combination the operating system keeps for itself.
    #[error("{0} is never sent to a device")]
    Reserved(&'static str),
    /// A wheel turn over [`MAX_WHEEL`] notches.
    #[error("wheel turns are at most {MAX_WHEEL} notches")]
    WheelTooFar,
}

impl InputEvent {
    /// Refuses an event no device may receive: an unknown key, a reserved
    /// combination, an oversized wheel turn.
    pub fn check(&self) -> Result<(), InputError> {
        match self {
            InputEvent::Key { code, mods } => {
                let evdev = evdev_code(code).ok_or_else(|| InputError::UnknownKey(code.clone()))?;
                match reserved(evdev, *mods) {
                    Some(name) => Err(InputError::Reserved(name)),
                    None => Ok(()),
                }
            }
            InputEvent::Wheel { dx, dy } => {
                let far = |v: &i8| v.unsigned_abs() > MAX_WHEEL.unsigned_abs();
                if far(dx) || far(dy) {
                    Err(InputError::WheelTooFar)
                } else {
                    Ok(())
                }
            }
            InputEvent::Move { .. } | InputEvent::Button { .. } => Ok(()),
        }
    }

    /// The Linux evdev code of a key event's key (`None` for other events
    /// and for unknown keys).
    pub fn evdev(&self) -> Option<u16> {
        match self {
            InputEvent::Key { code, .. } => evdev_code(code),
            _ => None,
        }
    }
}

const KEY_BACKSPACE: u16 = 14;
const KEY_F1: u16 = 59;
const KEY_F10: u16 = 68;
const KEY_KPDOT: u16 = 83;
const KEY_F11: u16 = 87;
const KEY_F12: u16 = 88;
const KEY_DELETE: u16 = 111;

/// The name of a combination the operating system reserves that `evdev`
/// with `mods` would make: Ctrl+Alt+Del (the secure attention sequence;
/// also with the keypad's Del), Ctrl+Alt+Backspace (may kill the X
/// server), Ctrl+Alt+F1…F12 (switches the Linux console away from the
/// student's session).
pub fn reserved(evdev: u16, mods: Mods) -> Option<&'static str> {
    if !(mods.ctrl && mods.alt) {
        return None;
    }
    match evdev {
        KEY_DELETE | KEY_KPDOT => Some("Ctrl+Alt+Del"),
        KEY_BACKSPACE => Some("Ctrl+Alt+Backspace"),
        KEY_F1..=KEY_F10 | KEY_F11 | KEY_F12 => Some("Ctrl+Alt+F-key"),
        _ => None,
    }
}

/// DOM `KeyboardEvent.code` names and their Linux evdev codes (X keycodes
/// are these plus 8).
const KEYS: &[(&str, u16)] = &[
    ("Escape", 1),
    ("Digit1", 2),
    ("Digit2", 3),
    ("Digit3", 4),
    ("Digit4", 5),
    ("Digit5", 6),
    ("Digit6", 7),
    ("Digit7", 8),
    ("Digit8", 9),
    ("Digit9", 10),
    ("Digit0", 11),
    ("Minus", 12),
    ("Equal", 13),
    ("Backspace", 14),
    ("Tab", 15),
    ("KeyQ", 16),
    ("KeyW", 17),
    ("KeyE", 18),
    ("KeyR", 19),
    ("KeyT", 20),
    ("KeyY", 21),
    ("KeyU", 22),
    ("KeyI", 23),
    ("KeyO", 24),
    ("KeyP", 25),
    ("BracketLeft", 26),
    ("BracketRight", 27),
    ("Enter", 28),
    ("ControlLeft", 29),
    ("KeyA", 30),
    ("KeyS", 31),
    ("KeyD", 32),
    ("KeyF", 33),
    ("KeyG", 34),
    ("KeyH", 35),
    ("KeyJ", 36),
    ("KeyK", 37),
    ("KeyL", 38),
    ("Semicolon", 39),
    ("Quote", 40),
    ("Backquote", 41),
    ("ShiftLeft", 42),
    ("Backslash", 43),
    ("KeyZ", 44),
    ("KeyX", 45),
    ("KeyC", 46),
    ("KeyV", 47),
    ("KeyB", 48),
    ("KeyN", 49),
    ("KeyM", 50),
    ("Comma", 51),
    ("Period", 52),
    ("Slash", 53),
    ("ShiftRight", 54),
    ("NumpadMultiply", 55),
    ("AltLeft", 56),
    ("Space", 57),
    ("CapsLock", 58),
    ("F1", 59),
    ("F2", 60),
    ("F3", 61),
    ("F4", 62),
    ("F5", 63),
    ("F6", 64),
    ("F7", 65),
    ("F8", 66),
    ("F9", 67),
    ("F10", 68),
    ("NumLock", 69),
    ("ScrollLock", 70),
    ("Numpad7", 71),
    ("Numpad8", 72),
    ("Numpad9", 73),
    ("NumpadSubtract", 74),
    ("Numpad4", 75),
    ("Numpad5", 76),
    ("Numpad6", 77),
    ("NumpadAdd", 78),
    ("Numpad1", 79),
    ("Numpad2", 80),
    ("Numpad3", 81),
    ("Numpad0", 82),
    ("NumpadDecimal", 83),
    ("IntlBackslash", 86),
    ("F11", 87),
    ("F12", 88),
    ("NumpadEnter", 96),
    ("ControlRight", 97),
    ("NumpadDivide", 98),
    ("PrintScreen", 99),
    ("AltRight", 100),
    ("Home", 102),
    ("ArrowUp", 103),
    ("PageUp", 104),
    ("ArrowLeft", 105),
    ("ArrowRight", 106),
    ("End", 107),
    ("ArrowDown", 108),
    ("PageDown", 109),
    ("Insert", 110),
    ("Delete", 111),
    ("Pause", 119),
    ("MetaLeft", 125),
    ("MetaRight", 126),
    ("ContextMenu", 127),
];

/// The Linux evdev code of the key the DOM calls `code`.
pub fn evdev_code(code: &str) -> Option<u16> {
    KEYS.iter().find(|(n, _)| *n == code).map(|(_, c)| *c)
}

/// The PC (set 1) scan code of evdev key `evdev`, with `0xE000` added for
/// extended keys, as Windows' `SendInput` takes them; `None` for keys
/// without one (Pause).
pub fn scan_code(evdev: u16) -> Option<u16> {
    // The first 88 evdev codes were defined as the set 1 scan codes.
    if (1..=88).contains(&evdev) {
        return Some(evdev);
    }
    let ext = match evdev {
        96 => 0x1C,
        97 => 0x1D,
        98 => 0x35,
        99 => 0x37,
        100 => 0x38,
        102 => 0x47,
        103 => 0x48,
        104 => 0x49,
        105 => 0x4B,
        106 => 0x4D,
        107 => 0x4F,
        108 => 0x50,
        109 => 0x51,
        110 => 0x52,
        111 => 0x53,
        125 => 0x5B,
        126 => 0x5C,
        127 => 0x5D,
        _ => return None,
    };
    Some(0xE000 | ext)
}

/// What a console asks of the server besides its watch list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ControlRequest {
    /// Take (`on`) or give up control of a device shown in the live view.
    Control {
        /// The device.
        device: i64,
        /// Take (true) or give up.
        on: bool,
    },
    /// Input for the device this console controls.
    Input {
        /// The device.
        device: i64,
        /// At most [`MAX_INPUT_EVENTS`].
        events: Vec<InputEvent>,
    },
}

/// Why a [`ControlRequest`] is refused as a whole.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// More than [`MAX_INPUT_EVENTS`] events.
    #[error("at most {MAX_INPUT_EVENTS} input events per message")]
    TooManyEvents,
}

impl ControlRequest {
    /// Refuses a message the server must not act on at all. Single events
    /// are checked one by one ([`InputEvent::check`]): one refused key does
    /// not lose the pointer moves around it.
    pub fn check(&self) -> Result<(), RequestError> {
        match self {
            ControlRequest::Input { events, .. } if events.len() > MAX_INPUT_EVENTS => {
                Err(RequestError::TooManyEvents)
            }
            _ => Ok(()),
        }
    }
}

/// A text message on the console stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConsoleText {
    /// Which devices it shows.
    Watch(crate::console::Watch),
    /// A remote-control request.
    Control(ControlRequest),
}

/// Parses a console stream text message: an object with a `"type"` is a
/// [`ControlRequest`], any other a [`crate::console::Watch`]. The error is a
/// sentence for the console.
pub fn parse_console_text(text: &str) -> Result<ConsoleText, String> {
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("bad request: {e}"))?;
    if value.get("type").is_some() {
        let r: ControlRequest =
            serde_json::from_value(value).map_err(|e| format!("bad request: {e}"))?;
        r.check().map_err(|e| e.to_string())?;
        Ok(ConsoleText::Control(r))
    } else {
        let w: crate::console::Watch =
            serde_json::from_value(value).map_err(|e| format!("bad request: {e}"))?;
        w.check().map_err(|e| e.to_string())?;
        Ok(ConsoleText::Watch(w))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(code: &str, ctrl: bool, alt: bool) -> InputEvent {
        InputEvent::Key {
            code: code.into(),
            mods: Mods {
                ctrl,
                alt,
                ..Mods::default()
            },
        }
    }

    #[test]
    fn ctrl_alt_del_and_other_reserved_combinations_are_refused() {
        for code in ["Delete", "NumpadDecimal"] {
            assert_eq!(
                key(code, true, true).check(),
                Err(InputError::Reserved("Ctrl+Alt+Del"))
            );
            assert_eq!(key(code, true, false).check(), Ok(()));
            assert_eq!(key(code, false, true).check(), Ok(()));
        }
        assert!(key("Backspace", true, true).check().is_err());
        assert!(key("F1", true, true).check().is_err());
        assert!(key("F12", true, true).check().is_err());
        assert_eq!(key("KeyT", true, true).check(), Ok(()));
        assert_eq!(key("F1", false, false).check(), Ok(()));
    }

    #[test]
    fn keys_are_physical_codes() {
        assert_eq!(evdev_code("KeyA"), Some(30));
        assert_eq!(evdev_code("Enter"), Some(28));
        assert_eq!(evdev_code("KeyÄ"), None);
        assert_eq!(
            key("Nope", false, false).check(),
            Err(InputError::UnknownKey("Nope".into()))
        );
        // Every key in the table has a distinct code, and all but Pause a
        // scan code.
        let mut codes: Vec<u16> = KEYS.iter().map(|(_, c)| *c).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), KEYS.len());
        for (name, c) in KEYS {
            assert_eq!(scan_code(*c).is_none(), *name == "Pause", "{name}");
        }
        assert_eq!(scan_code(111), Some(0xE053));
    }

    #[test]
    fn messages_parse_and_bad_ones_are_refused() {
        let t = r#"{"type":"input","device":3,"events":[{"t":"move","x":0,"y":65535},
            {"t":"button","button":"left","down":true},{"t":"wheel","dy":-2},
            {"t":"key","code":"KeyA","mods":{"shift":true}}]}"#;
        let ConsoleText::Control(ControlRequest::Input { device, events }) =
            parse_console_text(t).unwrap()
        else {
            panic!("not input")
        };
        assert_eq!(device, 3);
        assert_eq!(events.len(), 4);
        assert!(events.iter().all(|e| e.check().is_ok()));
        assert!(matches!(
            parse_console_text(r#"{"type":"control","device":3,"on":true}"#),
            Ok(ConsoleText::Control(ControlRequest::Control {
                on: true,
                ..
            }))
        ));
        assert!(matches!(
            parse_console_text(r#"{"watch":[1]}"#),
            Ok(ConsoleText::Watch(_))
        ));
        for bad in [
            r#"{"type":"control","device":3}"#,
            r#"{"type":"shutdown"}"#,
            r#"{"type":"input","device":3,"events":[{"t":"move","x":-1,"y":0}]}"#,
            r#"{"type":"input","device":3,"events":[{"t":"move","x":70000,"y":0}]}"#,
            r#"{"type":"input","device":3,"events":[{"t":"key","code":"KeyA","x":1}]}"#,
            r#"{"watch":[1],"live":2}"#,
            "[",
        ] {
            assert!(parse_console_text(bad).is_err(), "{bad}");
        }
        let many = serde_json::json!({"type":"input","device":1,
            "events": vec![serde_json::json!({"t":"move","x":1,"y":1}); MAX_INPUT_EVENTS + 1]});
        assert_eq!(
            parse_console_text(&many.to_string()),
            Err(RequestError::TooManyEvents.to_string())
        );
        let wheel = InputEvent::Wheel { dx: 0, dy: 11 };
        assert_eq!(wheel.check(), Err(InputError::WheelTooFar));
        assert_eq!(InputEvent::Wheel { dx: -10, dy: 10 }.check(), Ok(()));
    }
}
