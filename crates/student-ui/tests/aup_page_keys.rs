//! Page Down and Page Up scroll the acceptable use policy by a page (the
//! Windows and X11 agents send them), and answer nothing: only "I accept"
//! or Enter does.

use lectern_student_ui::{Key, Modifiers, StudentUi, Surface};

/// A policy several pages long.
fn policy() -> Surface {
    let text = (1..=60)
        .map(|i| format!("{i}. Keep your password to yourself and log out when you leave."))
        .collect::<Vec<_>>()
        .join("\n\n");
    Surface::AcceptableUse {
        school: "Hillside School".into(),
        title: "Acceptable use".into(),
        version: 1,
        text,
    }
}

#[test]
fn page_down_and_page_up_scroll_the_policy_by_a_page() {
    let none = Modifiers::default();
    let mut ui = StudentUi::new(policy(), 1024, 768, 1.0);
    let top = ui.render().to_vec();
    assert_eq!(ui.key(Key::Down, none, None), None);
    let line = ui.render().to_vec();
    assert_eq!(ui.key(Key::Home, none, None), None);
    assert_eq!(ui.key(Key::PageDown, none, None), None);
    let page = ui.render().to_vec();
    assert_ne!(page, top, "Page Down scrolled nothing");
    assert_ne!(page, line, "Page Down scrolls further than an arrow");
    assert_eq!(ui.key(Key::PageUp, none, None), None);
    assert_eq!(ui.render(), &top[..], "Page Up goes back a page");
}
