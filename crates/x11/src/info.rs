//! Who is logged in and what they are looking at: the user name, the focused
//! application (its `WM_CLASS`) and the focused window's title.

use x11rb::protocol::xproto::{AtomEnum, ConnectionExt as _, Window};
use x11rb::rust_connection::RustConnection;

x11rb::atom_manager! {
    /// Atoms the backend uses, interned once per connection.
    pub Atoms: AtomsCookie {
        _NET_ACTIVE_WINDOW,
        _NET_WM_NAME,
        _NET_WM_STATE,
        _NET_WM_STATE_ABOVE,
        _NET_WM_WINDOW_TYPE,
        _NET_WM_WINDOW_TYPE_DIALOG,
        WM_PROTOCOLS,
        WM_DELETE_WINDOW,
        UTF8_STRING,
    }
}

/// The logged-in user: `$USER`, else the name of this process's uid in
/// `/etc/passwd`, else the uid as a number.
pub fn user_name() -> Option<String> {
    if let Ok(u) = std::env::var("USER") {
        if !u.is_empty() {
            return Some(u);
        }
    }
    // SAFETY: getuid has no preconditions and cannot fail.
    let uid = unsafe { libc::getuid() };
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    Some(name_for_uid(&passwd, uid).unwrap_or_else(|| uid.to_string()))
}

fn name_for_uid(passwd: &str, uid: u32) -> Option<String> {
    passwd.lines().find_map(|l| {
        let mut f = l.split(':');
        let name = f.next()?;
        let id = f.nth(1)?;
        (id.parse::<u32>().ok()? == uid).then(|| name.to_string())
    })
}

/// The focused application's class and window title. The window is the EWMH
/// `_NET_ACTIVE_WINDOW` (set by any current window manager), else the X input
/// focus walked up to the first ancestor that names itself.
pub fn focus(
    conn: &RustConnection,
    atoms: &Atoms,
    root: Window,
) -> (Option<String>, Option<String>) {
    let Some(win) = active_window(conn, atoms, root) else {
        return (None, None);
    };
    (wm_class(conn, win), title(conn, atoms, win))
}

fn active_window(conn: &RustConnection, atoms: &Atoms, root: Window) -> Option<Window> {
    let active = conn
        .get_property(
            false,
            root,
            atoms._NET_ACTIVE_WINDOW,
            AtomEnum::WINDOW,
            0,
            1,
        )
        .ok()?
        .reply()
        .ok()
        .and_then(|r| r.value32()?.next())
        .filter(|&w| w != 0);
    if active.is_some() {
        return active;
    }
    let mut win = conn.get_input_focus().ok()?.reply().ok()?.focus;
    // Walk up from the focused subwindow to the client window that carries
    // WM_CLASS; 0 (None) and 1 (PointerRoot) are not windows.
    for _ in 0..16 {
        if win <= 1 || win == root {
            return None;
        }
        if wm_class(conn, win).is_some() {
            return Some(win);
        }
        win = conn.query_tree(win).ok()?.reply().ok()?.parent;
    }
    None
}

fn property(conn: &RustConnection, win: Window, prop: u32, ty: u32) -> Option<(u32, Vec<u8>)> {
    let r = conn
        .get_property(false, win, prop, ty, 0, 1024)
        .ok()?
        .reply()
        .ok()?;
    (r.format == 8 && !r.value.is_empty()).then_some((r.type_, r.value))
}

/// `WM_CLASS` is "instance\0class\0"; the class ("Firefox") names the
/// application, the instance is only a fallback.
fn wm_class(conn: &RustConnection, win: Window) -> Option<String> {
    let (_, v) = property(
        conn,
        win,
        AtomEnum::WM_CLASS.into(),
        AtomEnum::STRING.into(),
    )?;
    let mut parts = v.split(|&b| b == 0).filter(|p| !p.is_empty());
    let instance = parts.next();
    let class = parts.next().or(instance)?;
    Some(latin1(class))
}

fn title(conn: &RustConnection, atoms: &Atoms, win: Window) -> Option<String> {
    if let Some((_, v)) = property(conn, win, atoms._NET_WM_NAME, atoms.UTF8_STRING) {
        return Some(String::from_utf8_lossy(&v).into_owned());
    }
    let (ty, v) = property(conn, win, AtomEnum::WM_NAME.into(), AtomEnum::ANY.into())?;
    // STRING is Latin-1 by ICCCM; anything else (COMPOUND_TEXT, UTF8_STRING) is
    // shown as UTF-8, which is right for the text most toolkits put there.
    Some(if ty == u32::from(AtomEnum::STRING) {
        latin1(&v)
    } else {
        String::from_utf8_lossy(&v).into_owned()
    })
}

fn latin1(b: &[u8]) -> String {
    b.iter().map(|&c| char::from(c)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_names_in_passwd() {
        let p = "root:x:0:0:root:/root:/bin/bash\namy:x:1000:1000::/home/amy:/bin/sh\n";
        assert_eq!(name_for_uid(p, 1000).as_deref(), Some("amy"));
        assert_eq!(name_for_uid(p, 0).as_deref(), Some("root"));
        assert_eq!(name_for_uid(p, 5), None);
        assert_eq!(latin1(b"caf\xe9"), "café");
    }
}
