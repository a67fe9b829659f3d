//! The student surfaces (lectern-student-ui) on a real X server: Unicode
//! text reaches the screen, the message's OK and the question's Escape work
//! through real input (XTest), and the question counts down. Each test
//! starts its own 1024×768 Xvfb and saves what the screen showed as PNG
//! under `target/x11-out/` for a person to look at.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use lectern_desktop::Desktop;
use lectern_x11::{LOCK_BG, MESSAGE_BG, PROMPT_BG};
use x11rb::connection::Connection;
use x11rb::protocol::xproto::{
    AtomEnum, ConnectionExt as _, ImageFormat, MapState, Window, BUTTON_PRESS_EVENT,
    BUTTON_RELEASE_EVENT, KEY_PRESS_EVENT, KEY_RELEASE_EVENT, MOTION_NOTIFY_EVENT,
};
use x11rb::protocol::xtest::ConnectionExt as _;
use x11rb::rust_connection::RustConnection;
use x11rb::CURRENT_TIME;

type Rgb = [u8; 3];

mod common;

use common::Xvfb;

const W: usize = 1024;
const H: usize = 768;
/// The message's OK button as the student UI draws it.
const OK_BUTTON: Rgb = [60, 60, 80];
const ESCAPE: u32 = 0xff1b;

/// The screen as the user sees it, through an independent connection.
struct Client {
    conn: RustConnection,
    root: Window,
}

/// A screenshot, RGB, `W`×`H`.
struct Shot(Vec<Rgb>);

impl Shot {
    fn at(&self, x: usize, y: usize) -> Rgb {
        self.0[y * W + x]
    }

    /// Pixels in the rectangle for which `f` holds.
    fn count(&self, (x, y, w, h): (usize, usize, usize, usize), f: impl Fn(Rgb) -> bool) -> usize {
        (y..y + h)
            .flat_map(|py| (x..x + w).map(move |px| (px, py)))
            .filter(|&(px, py)| f(self.at(px, py)))
            .count()
    }

    /// Saves the shot as `target/x11-out/<name>.png`.
    fn save(&self, name: &str) -> PathBuf {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/x11-out");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{name}.png"));
        let file = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
        let mut enc = png::Encoder::new(file, W as u32, H as u32);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        let data: Vec<u8> = self.0.iter().flatten().copied().collect();
        enc.write_header().unwrap().write_image_data(&data).unwrap();
        path
    }
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

    /// The root window through core GetImage (Xvfb at depth 24 is BGRX).
    fn shot(&self) -> Shot {
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
        Shot(
            img.data
                .chunks_exact(4)
                .map(|p| [p[2], p[1], p[0]])
                .collect(),
        )
    }

    /// The viewable top-level window titled `name`: x, y, width, height.
    fn find_window(&self, name: &str) -> Option<(usize, usize, usize, usize)> {
        let tree = self.conn.query_tree(self.root).ok()?.reply().ok()?;
        tree.children.into_iter().find_map(|w| {
            let p = self
                .conn
                .get_property(false, w, AtomEnum::WM_NAME, AtomEnum::STRING, 0, 64)
                .ok()?
                .reply()
                .ok()?;
            let attrs = self.conn.get_window_attributes(w).ok()?.reply().ok()?;
            if p.value != name.as_bytes() || attrs.map_state != MapState::VIEWABLE {
                return None;
            }
            let g = self.conn.get_geometry(w).ok()?.reply().ok()?;
            Some((g.x as usize, g.y as usize, g.width.into(), g.height.into()))
        })
    }

    fn wait_window(&self, name: &str) -> (usize, usize, usize, usize) {
        let mut found = None;
        wait_until(&format!("{name:?} is on screen"), || {
            found = self.find_window(name);
            found.is_some()
        });
        found.unwrap()
    }

    /// Clicks the middle of the pixels drawn in `colour` inside `area`.
    fn click_colour(&self, area: (usize, usize, usize, usize), colour: Rgb) {
        let shot = self.shot();
        let (x, y, w, h) = area;
        let hits: Vec<(usize, usize)> = (y..y + h)
            .flat_map(|py| (x..x + w).map(move |px| (px, py)))
            .filter(|&(px, py)| shot.at(px, py) == colour)
            .collect();
        assert!(hits.len() > 100, "{colour:?} drawn: {} pixels", hits.len());
        let n = hits.len();
        let cx = hits.iter().map(|p| p.0).sum::<usize>() / n;
        let cy = hits.iter().map(|p| p.1).sum::<usize>() / n;
        let c = &self.conn;
        let (cx, cy) = (cx as i16, cy as i16);
        c.xtest_fake_input(MOTION_NOTIFY_EVENT, 0, CURRENT_TIME, self.root, cx, cy, 0)
            .unwrap();
        c.xtest_fake_input(BUTTON_PRESS_EVENT, 1, CURRENT_TIME, self.root, 0, 0, 0)
            .unwrap();
        c.xtest_fake_input(BUTTON_RELEASE_EVENT, 1, CURRENT_TIME, self.root, 0, 0, 0)
            .unwrap();
        self.sync();
    }

    fn press_key(&self, keysym: u32) {
        let setup = self.conn.setup();
        let (min, max) = (setup.min_keycode, setup.max_keycode);
        let map = self
            .conn
            .get_keyboard_mapping(min, max - min + 1)
            .unwrap()
            .reply()
            .unwrap();
        let per = usize::from(map.keysyms_per_keycode);
        let code = map
            .keysyms
            .chunks(per)
            .position(|s| s.contains(&keysym))
            .expect("key on the keyboard") as u8
            + min;
        let c = &self.conn;
        c.xtest_fake_input(KEY_PRESS_EVENT, code, CURRENT_TIME, self.root, 0, 0, 0)
            .unwrap();
        c.xtest_fake_input(KEY_RELEASE_EVENT, code, CURRENT_TIME, self.root, 0, 0, 0)
            .unwrap();
        self.sync();
    }
}

/// Polls `cond` every 50 ms for up to 10 s (debug builds draw slowly).
fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    // Generous: debug builds redraw slowly on a loaded machine.
    let end = Instant::now() + Duration::from_secs(30);
    while !cond() {
        assert!(Instant::now() < end, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn is(c: Rgb) -> impl Fn(Rgb) -> bool {
    move |p| p == c
}

/// Bright, saturated yellow/orange: a colour emoji's face, never the lock's
/// white, blue-grey or dark blue.
fn emoji_yellow(p: Rgb) -> bool {
    p[0] > 200 && p[1] > 120 && p[2] < 90
}

#[test]
fn lock_screen_shows_unicode_text_in_real_fonts() {
    let x = Xvfb::with_size(W, H);
    let client = Client::new(&x.display);
    let mut d = x.desktop();
    d.set_school("École Saint-Éloi · 北京市第一中学");
    d.lock(Some("مرحبا بالجميع — Ünïcödé 日本語 😀👍")).unwrap();
    let shot = client.shot();
    let path = shot.save("lock-unicode");
    eprintln!("saved {}", path.display());

    let all = (0, 0, W, H);
    let bg = shot.count(all, is(LOCK_BG)) as f32 / (W * H) as f32;
    assert!((0.8..0.995).contains(&bg), "lock colour covers {bg}");
    // Text in the middle of the screen: white and light-blue glyph pixels
    // (anti-aliased edges blend into the background).
    let middle = (W / 8, H / 4, W * 3 / 4, H / 2);
    let bright = shot.count(middle, |p| p.iter().all(|&c| c > 180));
    assert!(bright > 2000, "text pixels in the middle: {bright}");
    // The corners stay plain background.
    assert_eq!(shot.count((0, 0, 40, 40), |p| p != LOCK_BG), 0);
    // The emoji are drawn in colour, not as outlines or boxes.
    let yellow = shot.count(all, emoji_yellow);
    assert!(yellow > 30, "colour emoji pixels: {yellow}");
}

#[test]
fn message_shows_and_ok_dismisses_it_when_clicked() {
    let x = Xvfb::with_size(W, H);
    let client = Client::new(&x.display);
    let mut d = x.desktop();
    d.show_message("Rendez vos essais vendredi — 请周五交作文 📚 — سلموا المقالات يوم الجمعة")
        .unwrap();
    assert!(d.state().message_shown);
    let win = client.wait_window("Message from your teacher");
    let shot = client.shot();
    shot.save("message");
    let bg = shot.count(win, is(MESSAGE_BG)) as f32 / (win.2 * win.3) as f32;
    assert!(bg > 0.4, "message colour fills its window: {bg}");
    let dark_text = shot.count(win, |p| p.iter().all(|&c| c < 60));
    assert!(dark_text > 300, "message text drawn: {dark_text}");

    client.click_colour(win, OK_BUTTON);
    wait_until("OK dismisses the message", || !d.state().message_shown);
    wait_until("the message window is gone", || {
        client.find_window("Message from your teacher").is_none()
    });
    assert_eq!(client.shot().count((0, 0, W, H), is(MESSAGE_BG)), 0);
}

#[test]
fn question_counts_down_and_escape_denies() {
    let x = Xvfb::with_size(W, H);
    let client = Client::new(&x.display);
    let mut d = x.desktop();
    let mut rx = d.ask_remote_view("Mme Dupré");
    let win = client.wait_window("Screen view request");
    let first = client.shot();
    first.save("question");
    let bg = first.count(win, is(PROMPT_BG)) as f32 / (win.2 * win.3) as f32;
    assert!(bg > 0.3, "question colour fills its window: {bg}");
    let (allow, deny) = ([40, 140, 60], [180, 50, 50]);
    assert!(first.count(win, is(allow)) > 500, "Allow button drawn");
    assert!(first.count(win, is(deny)) > 500, "Deny button drawn");

    // The seconds left change on screen while nobody answers.
    let pixels = |s: &Shot| -> Vec<Rgb> {
        let (x, y, w, h) = win;
        (y..y + h)
            .flat_map(|py| (x..x + w).map(move |px| (px, py)))
            .map(|(px, py)| s.at(px, py))
            .collect()
    };
    let before = pixels(&first);
    wait_until("the countdown changes the picture", || {
        pixels(&client.shot()) != before
    });
    // Still the question (not its timeout closing it) that changed.
    assert!(client.find_window("Screen view request").is_some());
    assert!(rx.try_recv().is_err(), "no answer yet");

    client.press_key(ESCAPE);
    assert_eq!(rx.blocking_recv(), Ok(false), "Escape denies");
    wait_until("the question is gone", || {
        client.find_window("Screen view request").is_none()
    });
}

#[test]
fn plain_lock_picture_at_1024x768_and_unlock() {
    let x = Xvfb::with_size(W, H);
    let client = Client::new(&x.display);
    let mut d = x.desktop();
    d.set_school("Hill School");
    d.lock(Some("Eyes to the front, please")).unwrap();
    let shot = client.shot();
    shot.save("lock");
    let bg = shot.count((0, 0, W, H), is(LOCK_BG)) as f32 / (W * H) as f32;
    assert!((0.8..0.995).contains(&bg), "lock colour covers {bg}");
    d.unlock().unwrap();
    wait_until("the lock is gone", || {
        client.shot().count((0, 0, W, H), is(LOCK_BG)) == 0
    });
}
