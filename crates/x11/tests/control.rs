//! Remote control on a real X server (Xvfb): the X11 backend injects a
//! teacher's pointer and keys with XTEST, shows the student a notice that
//! lets input through, never injects Ctrl+Alt+Del, and releases what is
//! held when control stops. Checked through an independent X client (a test
//! window recording its events, the pointer as the server reports it) and a
//! real `xterm` typing into a file.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use lectern_desktop::Desktop;
use lectern_proto::control::{InputEvent, Mods, MouseButton};
use lectern_proto::Capability;
use x11rb::connection::Connection;
use x11rb::protocol::xproto::{
    ConnectionExt as _, CreateWindowAux, EventMask, ImageFormat, InputFocus, KeyButMask, Window,
    WindowClass,
};
use x11rb::protocol::Event;
use x11rb::rust_connection::RustConnection;
use x11rb::{COPY_DEPTH_FROM_PARENT, COPY_FROM_PARENT, CURRENT_TIME};

mod common;

use common::{Xvfb, H, W};

/// Another X client: a window that records its events, screenshots, the
/// pointer.
struct Client {
    conn: RustConnection,
    root: Window,
}

impl Client {
    fn new(display: &str) -> Client {
        let (conn, n) = x11rb::connect(Some(display)).expect("connect to Xvfb");
        let root = conn.setup().roots[n].root;
        Client { conn, root }
    }

    fn sync(&self) {
        self.conn.get_input_focus().unwrap().reply().unwrap();
    }

    /// A grey window over the top of the screen (under where the notice
    /// goes) that has the keyboard focus and records its input.
    fn target(&self) -> Window {
        let win = self.conn.generate_id().unwrap();
        self.conn
            .create_window(
                COPY_DEPTH_FROM_PARENT,
                win,
                self.root,
                0,
                0,
                W as u16,
                400,
                0,
                WindowClass::INPUT_OUTPUT,
                COPY_FROM_PARENT,
                &CreateWindowAux::new()
                    .background_pixel(0x808080)
                    .override_redirect(1)
                    .event_mask(
                        EventMask::KEY_PRESS | EventMask::BUTTON_PRESS | EventMask::BUTTON_RELEASE,
                    ),
            )
            .unwrap();
        self.conn.map_window(win).unwrap();
        self.conn
            .set_input_focus(InputFocus::POINTER_ROOT, win, CURRENT_TIME)
            .unwrap();
        self.sync();
        win
    }

    /// Events that reached the client so far.
    fn events(&self) -> Vec<Event> {
        self.sync();
        std::iter::from_fn(|| self.conn.poll_for_event().unwrap()).collect()
    }

    fn pointer(&self) -> (i16, i16, KeyButMask) {
        let p = self.conn.query_pointer(self.root).unwrap().reply().unwrap();
        (p.root_x, p.root_y, p.mask)
    }

    fn screenshot(&self) -> Vec<[u8; 3]> {
        let img = self
            .conn
            .get_image(
                ImageFormat::Z_PIXMAP,
                self.root,
                0,
                0,
                W as u16,
                H as u16,
                !0,
            )
            .unwrap()
            .reply()
            .unwrap();
        img.data
            .chunks_exact(4)
            .map(|p| [p[2], p[1], p[0]])
            .collect()
    }
}

/// Pixels of the notice's colour in the top 80 rows.
fn notice_pixels(shot: &[[u8; 3]]) -> usize {
    shot[..W * 80]
        .iter()
        .filter(|p| **p == lectern_student_ui::CONTROLLED_BG)
        .count()
}

/// Saves a screenshot as `target/x11-out/<name>.png` for a person to look at.
fn save(shot: &[[u8; 3]], name: &str) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/x11-out");
    std::fs::create_dir_all(&dir).unwrap();
    let file = std::io::BufWriter::new(std::fs::File::create(dir.join(name)).unwrap());
    let mut enc = png::Encoder::new(file, W as u32, H as u32);
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    let data: Vec<u8> = shot.iter().flatten().copied().collect();
    enc.write_header().unwrap().write_image_data(&data).unwrap();
}

/// The point (`px`, `py`) in 1/65535ths of the 1280×720 screen.
fn at(px: u32, py: u32) -> InputEvent {
    InputEvent::Move {
        x: (px * 65535).div_ceil(W as u32) as u16,
        y: (py * 65535).div_ceil(H as u32) as u16,
    }
}

fn key(code: &str, mods: Mods) -> InputEvent {
    InputEvent::Key {
        code: code.into(),
        mods,
    }
}

fn button(down: bool) -> InputEvent {
    InputEvent::Button {
        button: MouseButton::Left,
        down,
    }
}

fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let end = Instant::now() + Duration::from_secs(30);
    while !cond() {
        assert!(Instant::now() < end, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn control_moves_clicks_and_types_under_a_notice_that_lets_input_through() {
    let x = Xvfb::start();
    let client = Client::new(&x.display);
    let target = client.target();
    let mut d = x.desktop();
    assert!(d.capabilities().contains(&Capability::RemoteControl));
    // Nobody controls: input is refused.
    assert!(d.inject_input(&[at(10, 10)]).is_err());

    d.start_control("Ms Smith").unwrap();
    let shot = client.screenshot();
    save(&shot, "control-notice.png");
    let notice = notice_pixels(&shot);
    assert!(
        notice > 10_000,
        "the notice is shown at the top ({notice} pixels)"
    );

    // The pointer goes where the console says, in screen pixels.
    d.inject_input(&[at(640, 360)]).unwrap();
    assert_eq!(client.pointer().0, 640);
    assert_eq!(client.pointer().1, 360);

    // A click on the notice reaches the window under it.
    client.events();
    d.inject_input(&[at(640, 10), button(true), button(false)])
        .unwrap();
    let ev = client.events();
    let pressed = ev.iter().any(|e| matches!(e, Event::ButtonPress(b) if b.event == target && b.detail == 1 && b.root_y == 10));
    assert!(pressed, "the click went through the notice: {ev:?}");

    // Keys: physical keys with their modifiers; nothing stays held.
    d.inject_input(&[
        key(
            "KeyH",
            Mods {
                shift: true,
                ..Mods::default()
            },
        ),
        key("KeyI", Mods::default()),
        key(
            "Delete",
            Mods {
                ctrl: true,
                alt: true,
                ..Mods::default()
            },
        ),
        key("Enter", Mods::default()),
    ])
    .unwrap();
    let presses: Vec<(u8, bool)> = client
        .events()
        .iter()
        .filter_map(|e| match e {
            Event::KeyPress(k) if k.event == target => {
                Some((k.detail, k.state.contains(KeyButMask::SHIFT)))
            }
            _ => None,
        })
        .collect();
    // Shift (50) down, then H (43) with Shift held, I (31), Enter (36);
    // Ctrl+Alt+Del (Delete is 119) never arrives, nor its modifiers.
    assert_eq!(
        presses,
        vec![(50, false), (43, true), (31, false), (36, false)],
        "keycodes and shift state"
    );
    let (_, _, mask) = client.pointer();
    assert!(!mask.contains(KeyButMask::SHIFT) && !mask.contains(KeyButMask::CONTROL));

    // A button held when control stops is released, and the notice goes.
    d.inject_input(&[at(100, 100), button(true)]).unwrap();
    assert!(client.pointer().2.contains(KeyButMask::BUTTON1));
    d.stop_control().unwrap();
    assert!(!client.pointer().2.contains(KeyButMask::BUTTON1));
    wait_until("the notice is gone", || {
        notice_pixels(&client.screenshot()) == 0
    });
    assert!(d.inject_input(&[at(10, 10)]).is_err(), "refused after stop");
}

#[test]
fn typing_reaches_a_real_xterm() {
    if Command::new("xterm").arg("-version").output().is_err() {
        panic!("xterm is needed for this test: apt-get install -y xterm");
    }
    let x = Xvfb::start();
    let client = Client::new(&x.display);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("typed.txt");
    let mut xterm = Command::new("xterm")
        .env("DISPLAY", &x.display)
        .args(["-geometry", "80x24+0+0", "-e", "sh", "-c"])
        .arg(format!("cat > '{}'", file.display()))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start xterm");
    // xterm is up once it maps a window (a child of the root).
    wait_until("xterm shows its window", || {
        let tree = client
            .conn
            .query_tree(client.root)
            .unwrap()
            .reply()
            .unwrap();
        tree.children.iter().any(|w| {
            client
                .conn
                .get_window_attributes(*w)
                .ok()
                .and_then(|c| c.reply().ok())
                .is_some_and(|a| a.map_state == x11rb::protocol::xproto::MapState::VIEWABLE)
        })
    });
    let mut d = x.desktop();
    d.start_control("Ms Smith").unwrap();
    // Without a window manager the keyboard follows the pointer: over xterm.
    d.inject_input(&[at(100, 100)]).unwrap();
    let shift = Mods {
        shift: true,
        ..Mods::default()
    };
    let typed = [
        key("KeyH", shift),
        key("KeyI", Mods::default()),
        key("Space", Mods::default()),
        key("Digit4", Mods::default()),
        key("Digit2", Mods::default()),
        key("Enter", Mods::default()),
    ];
    d.inject_input(&typed).unwrap();
    wait_until("xterm wrote the typed line", || {
        std::fs::read_to_string(&file).is_ok_and(|s| s == "Hi 42\n")
    });
    d.stop_control().unwrap();
    let _ = xterm.kill();
    let _ = xterm.wait();
}
