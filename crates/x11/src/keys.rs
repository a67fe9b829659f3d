//! X key events to the student UI's keys: the keycode goes through the
//! server's keyboard mapping (`GetKeyboardMapping`, refreshed on
//! `MappingNotify`) to a keysym at the shift level the event's state asks
//! for, and the keysym to the character it types through `xkeysym`'s table
//! (the one libxkbcommon uses), so no keysym table lives here.

use lectern_student_ui::{Key, Modifiers};
use x11rb::protocol::xproto::{GetKeyboardMappingReply, KeyButMask};
use xkeysym::Keysym;

/// The server's keycode-to-keysym table.
pub struct Keymap {
    min_keycode: u8,
    max_keycode: u8,
    per_keycode: u8,
    keysyms: Vec<u32>,
}

/// One key press, as the student UI takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Press {
    /// The key.
    pub key: Key,
    /// The modifiers held.
    pub modifiers: Modifiers,
    /// What the key types (`None` for keys and shortcuts that type nothing).
    pub text: Option<String>,
}

impl Keymap {
    /// The table from a `GetKeyboardMapping` reply for keycodes `min..=max`.
    pub fn new(min_keycode: u8, max_keycode: u8, reply: GetKeyboardMappingReply) -> Keymap {
        Keymap {
            min_keycode,
            max_keycode,
            per_keycode: reply.keysyms_per_keycode,
            keysyms: reply.keysyms,
        }
    }

    /// The keysym of `keycode`, shifted or not, by the core protocol's
    /// rules: a key with one keysym stands for its lower case unshifted and
    /// its upper case shifted. (`xkeysym::keysym` swaps those two cases in
    /// 0.2.1, hence the few lines here.)
    fn keysym(&self, keycode: u8, shifted: bool) -> Option<Keysym> {
        if self.per_keycode == 0 || !(self.min_keycode..=self.max_keycode).contains(&keycode) {
            return None;
        }
        let per = usize::from(self.per_keycode);
        let start = usize::from(keycode - self.min_keycode) * per;
        let syms = self.keysyms.get(start..start + per)?;
        let sym = |i: usize| {
            syms.get(i)
                .map(|&s| Keysym::new(s))
                .filter(|&s| s != Keysym::NoSymbol)
        };
        match (sym(0)?, sym(1), shifted) {
            (plain, None, false) => Some(with_case(plain, false)),
            (plain, None, true) => Some(with_case(plain, true)),
            (plain, Some(_), false) => Some(plain),
            (_, Some(upper), true) => Some(upper),
        }
    }

    /// What pressing `keycode` with `state` (the event's modifier and button
    /// mask) means: the shifted keysym when Shift is held, or Caps Lock for
    /// a letter (Shift with Caps Lock gives the lower case back).
    pub fn press(&self, keycode: u8, state: KeyButMask) -> Press {
        let modifiers = Modifiers {
            shift: state.contains(KeyButMask::SHIFT),
            ctrl: state.contains(KeyButMask::CONTROL),
            alt: state.contains(KeyButMask::MOD1),
            logo: state.contains(KeyButMask::MOD4),
        };
        let plain = self.keysym(keycode, false);
        let caps = state.contains(KeyButMask::LOCK) && plain.is_some_and(is_letter);
        let Some(sym) = self.keysym(keycode, modifiers.shift != caps).or(plain) else {
            return Press {
                key: Key::Other,
                modifiers,
                text: None,
            };
        };
        let key = named(sym).unwrap_or_else(|| match printable(sym) {
            Some(c) => Key::Char(c),
            None => Key::Other,
        });
        // Shortcuts type nothing; AltGr is a separate level, not Alt.
        let text = match key {
            Key::Char(c) if !(modifiers.ctrl || modifiers.alt || modifiers.logo) => {
                Some(c.to_string())
            }
            _ => None,
        };
        Press {
            key,
            modifiers,
            text,
        }
    }

    /// The first keycode whose unshifted keysym is `keysym` (for grabbing a
    /// shortcut), if the keyboard has one.
    pub fn keycode_of(&self, keysym: u32) -> Option<u8> {
        (self.min_keycode..=self.max_keycode)
            .find(|&k| self.keysym(k, false).map(|s| s.raw()) == Some(keysym))
    }
}

/// `sym` in upper or lower case, where it has one (through the characters,
/// so `xkeysym`'s tables do the work both ways).
fn with_case(sym: Keysym, upper: bool) -> Keysym {
    let Some(c) = sym.key_char() else {
        return sym;
    };
    let mut changed = if upper {
        c.to_uppercase().collect::<Vec<char>>()
    } else {
        c.to_lowercase().collect()
    };
    match (changed.pop(), changed.is_empty()) {
        // Only a one-to-one change: ß stays ß rather than becoming "SS".
        (Some(one), true) if one != c => Keysym::from_char(one),
        _ => sym,
    }
}

fn is_letter(sym: Keysym) -> bool {
    sym.key_char().is_some_and(char::is_alphabetic)
}

/// The character a keysym types, if it types a visible one (not a control
/// character such as Return's CR).
fn printable(sym: Keysym) -> Option<char> {
    sym.key_char().filter(|c| !c.is_control())
}

/// The keys the student UI acts on by name.
fn named(sym: Keysym) -> Option<Key> {
    Some(match sym {
        Keysym::Return | Keysym::KP_Enter | Keysym::ISO_Enter => Key::Enter,
        Keysym::Escape => Key::Escape,
        Keysym::Tab | Keysym::ISO_Left_Tab | Keysym::KP_Tab => Key::Tab,
        Keysym::BackSpace => Key::Backspace,
        Keysym::Delete | Keysym::KP_Delete => Key::Delete,
        Keysym::Left | Keysym::KP_Left => Key::Left,
        Keysym::Right | Keysym::KP_Right => Key::Right,
        Keysym::Up | Keysym::KP_Up => Key::Up,
        Keysym::Down | Keysym::KP_Down => Key::Down,
        Keysym::Home | Keysym::KP_Home => Key::Home,
        Keysym::End | Keysym::KP_End => Key::End,
        Keysym::Prior | Keysym::KP_Prior => Key::PageUp,
        Keysym::Next | Keysym::KP_Next => Key::PageDown,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A keyboard of four keycodes (8..=11), two keysyms each, like a
    /// server's reply: `a`/`A`, `é`/`É` (one keysym: case derived), Return,
    /// and `1`/`!`.
    fn keymap() -> Keymap {
        let reply = GetKeyboardMappingReply {
            sequence: 0,
            keysyms_per_keycode: 2,
            keysyms: vec![
                Keysym::a.raw(),
                Keysym::A.raw(),
                Keysym::eacute.raw(),
                Keysym::NoSymbol.raw(),
                Keysym::Return.raw(),
                Keysym::NoSymbol.raw(),
                Keysym::_1.raw(),
                Keysym::exclam.raw(),
            ],
        };
        Keymap::new(8, 11, reply)
    }

    fn text(p: Press) -> Option<String> {
        p.text
    }

    #[test]
    fn keys_type_what_the_layout_and_shift_level_say() {
        let k = keymap();
        let none = KeyButMask::default();
        assert_eq!(k.press(8, none).key, Key::Char('a'));
        assert_eq!(text(k.press(8, KeyButMask::SHIFT)).as_deref(), Some("A"));
        assert_eq!(text(k.press(9, KeyButMask::SHIFT)).as_deref(), Some("É"));
        assert_eq!(text(k.press(9, KeyButMask::LOCK)).as_deref(), Some("É"));
        assert_eq!(
            text(k.press(9, KeyButMask::default())).as_deref(),
            Some("é")
        );
        // Shift with Caps Lock: lower case; Caps Lock leaves digits alone.
        let both = KeyButMask::SHIFT | KeyButMask::LOCK;
        assert_eq!(text(k.press(8, both)).as_deref(), Some("a"));
        assert_eq!(text(k.press(11, KeyButMask::LOCK)).as_deref(), Some("1"));
        assert_eq!(text(k.press(11, KeyButMask::SHIFT)).as_deref(), Some("!"));
    }

    #[test]
    fn named_keys_shortcuts_and_unknown_codes() {
        let k = keymap();
        let p = k.press(10, KeyButMask::default());
        assert_eq!((p.key, p.text), (Key::Enter, None));
        let p = k.press(8, KeyButMask::CONTROL);
        assert_eq!((p.key, p.text), (Key::Char('a'), None));
        assert!(p.modifiers.ctrl);
        // Outside the table: ignored, never a panic.
        for code in [0, 7, 12, 255] {
            assert_eq!(k.press(code, KeyButMask::default()).key, Key::Other);
        }
    }

    #[test]
    fn page_up_and_down_are_named_for_the_policy() {
        assert_eq!(named(Keysym::Prior), Some(Key::PageUp));
        assert_eq!(named(Keysym::KP_Next), Some(Key::PageDown));
    }
}
