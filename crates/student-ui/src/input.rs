//! The input a backend forwards, in our own small types so that backends
//! depend on this crate only, never on the toolkit; and their translation
//! into iced events.

use iced_graphics::core::keyboard::{self, key, Location};
use iced_graphics::core::SmolStr;

/// A key the student pressed. Backends map their native key codes to these;
/// anything else that types text arrives as [`Key::Char`] (or with `text`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Key {
    /// Return / keypad Enter.
    Enter,
    /// Escape.
    Escape,
    /// Tab (with shift in [`Modifiers`] to go backwards).
    Tab,
    /// Backspace.
    Backspace,
    /// Delete (forward).
    Delete,
    /// Left arrow.
    Left,
    /// Right arrow.
    Right,
    /// Up arrow.
    Up,
    /// Down arrow.
    Down,
    /// Home.
    Home,
    /// End.
    End,
    /// Page Up.
    PageUp,
    /// Page Down.
    PageDown,
    /// A printable key, as the layout produced it (e.g. `'é'`).
    Char(char),
    /// A key with no meaning here (function keys, …): ignored.
    Other,
}

/// Modifier keys held while a key was pressed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Modifiers {
    /// Either shift key.
    pub shift: bool,
    /// Either control key.
    pub ctrl: bool,
    /// Either alt key.
    pub alt: bool,
    /// The Windows / super key.
    pub logo: bool,
}

impl From<Modifiers> for keyboard::Modifiers {
    fn from(m: Modifiers) -> Self {
        let mut out = keyboard::Modifiers::empty();
        out.set(keyboard::Modifiers::SHIFT, m.shift);
        out.set(keyboard::Modifiers::CTRL, m.ctrl);
        out.set(keyboard::Modifiers::ALT, m.alt);
        out.set(keyboard::Modifiers::LOGO, m.logo);
        out
    }
}

fn named(key: &Key) -> Option<key::Named> {
    Some(match key {
        Key::Enter => key::Named::Enter,
        Key::Escape => key::Named::Escape,
        Key::Tab => key::Named::Tab,
        Key::Backspace => key::Named::Backspace,
        Key::Delete => key::Named::Delete,
        Key::Left => key::Named::ArrowLeft,
        Key::Right => key::Named::ArrowRight,
        Key::Up => key::Named::ArrowUp,
        Key::Down => key::Named::ArrowDown,
        Key::Home => key::Named::Home,
        Key::End => key::Named::End,
        Key::PageUp => key::Named::PageUp,
        Key::PageDown => key::Named::PageDown,
        Key::Char(_) | Key::Other => return None,
    })
}

/// The iced key-press event for `key`. `text` is what the key typed (the
/// backend's layout-aware translation); a [`Key::Char`] without it types its
/// own character unless ctrl, alt or logo is held (shortcuts type nothing).
pub(crate) fn key_press(key: &Key, modifiers: Modifiers, text: Option<&str>) -> keyboard::Event {
    let k = match (named(key), key) {
        (Some(n), _) => keyboard::Key::Named(n),
        (None, Key::Char(c)) => keyboard::Key::Character(SmolStr::new(c.to_string())),
        _ => keyboard::Key::Unidentified,
    };
    let shortcut = modifiers.ctrl || modifiers.alt || modifiers.logo;
    let text = match (text, key) {
        (Some(t), _) => Some(SmolStr::new(t)),
        (None, Key::Char(c)) if !shortcut => Some(SmolStr::new(c.to_string())),
        _ => None,
    };
    keyboard::Event::KeyPressed {
        key: k.clone(),
        modified_key: k,
        physical_key: key::Physical::Unidentified(key::NativeCode::Unidentified),
        location: Location::Standard,
        modifiers: modifiers.into(),
        text,
        repeat: false,
    }
}
