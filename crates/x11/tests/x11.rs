//! The X11 backend under a real X server: each test starts its own Xvfb on a
//! free display (Xvfb picks it with `-displayfd`), drives an `X11Desktop` in this
//! process, and checks the screen through an independent client connection.

mod common;

use common::{quiet_options, Xvfb};
use std::process::Command;
use std::time::{Duration, Instant};

use lectern_desktop::{encode_jpeg, Desktop, Frame};
use lectern_proto::{Capability, Policy};
use lectern_x11::{X11Desktop, X11Options};
use lectern_x11::{LOCK_BG, MESSAGE_BG};
use x11rb::connection::Connection;
use x11rb::protocol::xproto::{
    AtomEnum, ConnectionExt as _, CreateWindowAux, GrabMode, GrabStatus, ImageFormat, InputFocus,
    PropMode, Window, WindowClass, BUTTON_PRESS_EVENT, BUTTON_RELEASE_EVENT, KEY_PRESS_EVENT,
    KEY_RELEASE_EVENT, MOTION_NOTIFY_EVENT,
};
use x11rb::protocol::xtest::ConnectionExt as _;
use x11rb::rust_connection::RustConnection;
use x11rb::wrapper::ConnectionExt as _;
use x11rb::{COPY_DEPTH_FROM_PARENT, COPY_FROM_PARENT, CURRENT_TIME};

type Rgb = [u8; 3];

/// The buttons' colours as the student UI draws them (crates/student-ui's
/// view): the tests find a button by its colour and click its middle.
const OK_BUTTON: Rgb = [60, 60, 80];
const ALLOW_BUTTON: Rgb = [40, 140, 60];
const DENY_BUTTON: Rgb = [180, 50, 50];

/// Another X client: takes screenshots, maps windows, fakes input.
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

    /// The root window through core GetImage (Xvfb at depth 24 is BGRX).
    fn screenshot(&self) -> Vec<Rgb> {
        let img = self
            .conn
            .get_image(ImageFormat::Z_PIXMAP, self.root, 0, 0, 1280, 720, !0)
            .unwrap()
            .reply()
            .unwrap();
        img.data
            .chunks_exact(4)
            .map(|p| [p[2], p[1], p[0]])
            .collect()
    }

    fn share(&self, c: Rgb) -> f32 {
        share(&self.screenshot(), c, 0)
    }

    fn window(&self, (x, y, w, h): (i16, i16, u16, u16), colour: Rgb, over: bool) -> Window {
        let win = self.conn.generate_id().unwrap();
        let pixel = u32::from(colour[0]) << 16 | u32::from(colour[1]) << 8 | u32::from(colour[2]);
        self.conn
            .create_window(
                COPY_DEPTH_FROM_PARENT,
                win,
                self.root,
                x,
                y,
                w,
                h,
                0,
                WindowClass::INPUT_OUTPUT,
                COPY_FROM_PARENT,
                &CreateWindowAux::new()
                    .background_pixel(pixel)
                    .override_redirect(u32::from(over)),
            )
            .unwrap();
        self.conn.map_window(win).unwrap();
        self.sync();
        win
    }

    fn find_window(&self, name: &str) -> Option<(i16, i16, u16, u16)> {
        let tree = self.conn.query_tree(self.root).ok()?.reply().ok()?;
        tree.children.into_iter().find_map(|w| {
            let p = self
                .conn
                .get_property(false, w, AtomEnum::WM_NAME, AtomEnum::STRING, 0, 64)
                .ok()?
                .reply()
                .ok()?;
            let attrs = self.conn.get_window_attributes(w).ok()?.reply().ok()?;
            if p.value != name.as_bytes()
                || attrs.map_state != x11rb::protocol::xproto::MapState::VIEWABLE
            {
                return None;
            }
            let g = self.conn.get_geometry(w).ok()?.reply().ok()?;
            Some((g.x, g.y, g.width, g.height))
        })
    }

    /// Clicks the middle of the button drawn in `colour` in the window named
    /// `name` (the middle of the pixels of that colour on screen there).
    fn click_button(&self, name: &str, colour: Rgb) {
        let (x, y, w, h) = self.find_window(name).expect("window on screen");
        let shot = self.screenshot();
        let (mut sx, mut sy, mut n) = (0usize, 0usize, 0usize);
        for py in y as usize..(y as usize + usize::from(h)).min(720) {
            for px in x as usize..(x as usize + usize::from(w)).min(1280) {
                if shot[py * 1280 + px] == colour {
                    (sx, sy, n) = (sx + px, sy + py, n + 1);
                }
            }
        }
        assert!(n > 100, "button {colour:?} drawn in {name:?} ({n} pixels)");
        let (bx, by) = ((sx / n) as i16, (sy / n) as i16);
        let c = &self.conn;
        c.xtest_fake_input(MOTION_NOTIFY_EVENT, 0, CURRENT_TIME, self.root, bx, by, 0)
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

    fn atom(&self, name: &str) -> u32 {
        self.conn
            .intern_atom(false, name.as_bytes())
            .unwrap()
            .reply()
            .unwrap()
            .atom
    }
}

/// Share of pixels within `tol` of `c` in every channel.
fn share(px: &[Rgb], c: Rgb, tol: u8) -> f32 {
    let near = |p: &Rgb| (0..3).all(|i| p[i].abs_diff(c[i]) <= tol);
    px.iter().filter(|p| near(p)).count() as f32 / px.len() as f32
}

/// Polls `cond` every 50 ms for up to 30 s: a debug build lays out and draws
/// each surface with the UI toolkit for every input event, which takes
/// seconds on a loaded 2-core machine (a 5 s limit failed once there).
fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let end = Instant::now() + Duration::from_secs(30);
    while !cond() {
        assert!(Instant::now() < end, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn desktop(x: &Xvfb, opts: X11Options) -> X11Desktop {
    X11Desktop::with_options(Some(&x.display), opts).expect("X11Desktop connects")
}

#[test]
fn lock_covers_the_screen_stays_on_top_and_takes_input() {
    let x = Xvfb::start();
    let client = Client::new(&x.display);
    let mut d = desktop(&x, quiet_options());
    d.set_school("Hill School");
    assert!(client.share(LOCK_BG) < 0.01);

    d.lock(Some("Eyes front")).unwrap();
    assert!(d.state().locked);
    let s = client.share(LOCK_BG);
    assert!(s >= 0.95, "lock colour covers {s}");

    // A window mapped afterwards (managed or override-redirect) ends up below.
    client.window((100, 100, 400, 300), [255, 0, 0], false);
    client.window((600, 200, 300, 200), [0, 255, 0], true);
    wait_until("the lock is back on top", || {
        let shot = client.screenshot();
        share(&shot, LOCK_BG, 0) >= 0.95 && share(&shot, [255, 0, 0], 0) == 0.0
    });
    std::thread::sleep(Duration::from_millis(600));
    let shot = client.screenshot();
    assert!(share(&shot, LOCK_BG, 0) >= 0.95);
    assert_eq!(share(&shot, [0, 255, 0], 0), 0.0);

    // The keyboard and pointer are taken.
    let kb = client
        .conn
        .grab_keyboard(
            false,
            client.root,
            CURRENT_TIME,
            GrabMode::ASYNC,
            GrabMode::ASYNC,
        )
        .unwrap()
        .reply()
        .unwrap();
    assert_eq!(kb.status, GrabStatus::ALREADY_GRABBED);
    let ptr = client
        .conn
        .grab_pointer(
            false,
            client.root,
            Default::default(),
            GrabMode::ASYNC,
            GrabMode::ASYNC,
            0u32,
            0u32,
            CURRENT_TIME,
        )
        .unwrap()
        .reply()
        .unwrap();
    assert_eq!(ptr.status, GrabStatus::ALREADY_GRABBED);

    d.unlock().unwrap();
    assert!(!d.state().locked);
    wait_until("the lock colour is gone", || client.share(LOCK_BG) < 0.01);
    let kb = client
        .conn
        .grab_keyboard(
            false,
            client.root,
            CURRENT_TIME,
            GrabMode::ASYNC,
            GrabMode::ASYNC,
        )
        .unwrap()
        .reply()
        .unwrap();
    assert_eq!(kb.status, GrabStatus::SUCCESS, "grab released on unlock");
    client.conn.ungrab_keyboard(CURRENT_TIME).unwrap();
    client.sync();

    // A policy lock outlasts a teacher's unlock, and goes with the policy.
    let locked = Policy {
        version: 3,
        screen_locked: true,
        ..Policy::default()
    };
    assert!(d.apply_policy(&locked).is_empty());
    assert!(client.share(LOCK_BG) >= 0.95);
    let e = d.unlock().unwrap_err();
    assert!(e.to_string().contains("policy"), "{e}");
    assert!(d.state().locked && client.share(LOCK_BG) >= 0.95);
    d.apply_policy(&Policy::default());
    assert!(!d.state().locked);
    assert!(client.share(LOCK_BG) < 0.01);
}

#[test]
fn message_is_shown_until_clicked_or_dismissed_by_key() {
    let x = Xvfb::start();
    let client = Client::new(&x.display);
    let mut d = desktop(&x, quiet_options());

    d.show_message("Hand in your essays by Friday").unwrap();
    assert!(d.state().message_shown);
    let s = client.share(MESSAGE_BG);
    assert!(s > 0.1, "message visible: {s}");
    client.click_button("Message from your teacher", OK_BUTTON);
    wait_until("the click dismisses the message", || {
        !d.state().message_shown
    });
    assert!(client.share(MESSAGE_BG) < 0.01);

    // Without a window manager the agent gives the window the focus itself,
    // so Enter reaches it.
    d.show_message("Second message").unwrap();
    assert!(client.share(MESSAGE_BG) > 0.1);
    std::thread::sleep(Duration::from_millis(200));
    client.press_key(0xff0d); // Return
    wait_until("Enter dismisses the message", || !d.state().message_shown);
    assert!(client.share(MESSAGE_BG) < 0.01);

    d.show_message("Third").unwrap();
    std::thread::sleep(Duration::from_millis(200));
    client.press_key(0xff1b); // Escape
    wait_until("Escape dismisses the message", || !d.state().message_shown);
}

#[test]
fn remote_view_question_is_answered_by_a_click() {
    let x = Xvfb::start();
    let client = Client::new(&x.display);
    let mut d = desktop(&x, quiet_options());
    for (button, answer) in [(ALLOW_BUTTON, true), (DENY_BUTTON, false)] {
        let rx = d.ask_remote_view("Ms Smith");
        client.click_button("Screen view request", button);
        assert_eq!(rx.blocking_recv(), Ok(answer));
        wait_until("the question is gone", || {
            client.find_window("Screen view request").is_none()
        });
    }
}

#[test]
fn remote_view_question_goes_away_after_the_servers_time() {
    let x = Xvfb::start();
    let client = Client::new(&x.display);
    let mut d = desktop(&x, quiet_options());
    // One second, where the prompt's own default is ten: gone well within
    // wait_until's five, unanswered.
    let rx = d.ask_remote_view_for("Ms Smith", Duration::from_secs(1));
    wait_until("the question is shown", || {
        client.find_window("Screen view request").is_some()
    });
    wait_until("the question is gone after its time", || {
        client.find_window("Screen view request").is_none()
    });
    assert!(rx.blocking_recv().is_err(), "no answer");
}

fn solid_jpeg(c: Rgb) -> Vec<u8> {
    let f = Frame {
        width: 320,
        height: 180,
        rgb: c.repeat(320 * 180),
    };
    encode_jpeg(&f, 90).unwrap()
}

#[test]
fn broadcast_frames_fill_the_screen_under_the_lock() {
    let x = Xvfb::start();
    let client = Client::new(&x.display);
    let mut d = desktop(&x, quiet_options());
    let (red, blue) = ([220, 30, 30], [30, 30, 220]);

    assert!(
        d.broadcast_frame(&solid_jpeg(red)).is_err(),
        "no broadcast yet"
    );
    d.start_broadcast("Ms Smith's screen").unwrap();
    assert!(d.state().broadcast_shown);
    d.broadcast_frame(&solid_jpeg(red)).unwrap();
    wait_until("the red frame fills the screen", || {
        share(&client.screenshot(), red, 8) > 0.9
    });
    d.broadcast_frame(&solid_jpeg(blue)).unwrap();
    wait_until("the blue frame replaces it", || {
        share(&client.screenshot(), blue, 8) > 0.9
    });
    assert!(d.broadcast_frame(b"not a jpeg").is_err());

    // The lock stays above a broadcast.
    d.lock(None).unwrap();
    assert!(client.share(LOCK_BG) >= 0.95);
    d.broadcast_frame(&solid_jpeg(red)).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert!(client.share(LOCK_BG) >= 0.95);
    d.unlock().unwrap();
    wait_until("the broadcast shows again", || {
        share(&client.screenshot(), red, 8) > 0.9
    });

    d.stop_broadcast().unwrap();
    assert!(!d.state().broadcast_shown);
    wait_until("the broadcast is gone", || {
        share(&client.screenshot(), red, 8) < 0.01
    });
}

#[test]
fn capture_scales_the_screen_and_shows_windows() {
    let x = Xvfb::start();
    let client = Client::new(&x.display);
    let mut d = desktop(&x, quiet_options());
    assert!(d.uses_shm(), "Xvfb offers MIT-SHM 1.2");
    let green = [20, 200, 60];
    client.window((0, 0, 640, 360), green, true);

    let f = d.capture(320).unwrap();
    assert_eq!((f.width, f.height), (320, 180));
    assert_eq!(f.rgb.len(), 320 * 180 * 3);
    let px = |x: usize, y: usize| -> Rgb {
        let i = (y * 320 + x) * 3;
        [f.rgb[i], f.rgb[i + 1], f.rgb[i + 2]]
    };
    assert_eq!(px(10, 10), green);
    assert_eq!(px(150, 80), green);
    assert_ne!(px(250, 150), green);
    let rgb: Vec<Rgb> = f.rgb.chunks(3).map(|p| [p[0], p[1], p[2]]).collect();
    let s = share(&rgb, green, 0);
    assert!(
        (0.24..=0.26).contains(&s),
        "a quarter of the screen is green: {s}"
    );

    // Another size, and the SHM segment is reused across calls.
    let big = d.capture(1280).unwrap();
    assert_eq!((big.width, big.height), (1280, 720));
    let small = d.capture(160).unwrap();
    assert_eq!((small.width, small.height), (160, 90));
}

#[test]
fn logout_and_urls_run_configured_commands_without_a_shell() {
    let x = Xvfb::start();
    let mut session = Command::new("sleep").arg("1000").spawn().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("opened");
    let kill = format!("kill -TERM {}", session.id());
    let opener = format!(
        "sh -c 'printf \"%s|%s\" \"$DISPLAY\" \"$1\" > \"{}\"' opener",
        out.display()
    );
    let env = |k: &str| match k {
        "LECTERN_LOGOUT_COMMAND" => Some(kill.clone()),
        "LECTERN_URL_OPENER" => Some(opener.clone()),
        _ => None,
    };
    let mut d = desktop(&x, X11Options::from_lookup(env).unwrap());
    assert!(d.capabilities().contains(&Capability::Logout));

    // Shell syntax in the URL stays inert: it is one argument.
    let url = "https://example.org/?q=a;touch${IFS}pwned&x=$(id)";
    d.open_url(url).unwrap();
    wait_until("the opener ran", || out.exists());
    std::thread::sleep(Duration::from_millis(100));
    let got = std::fs::read_to_string(&out).unwrap();
    assert_eq!(got, format!("{}|{url}", x.display));

    d.set_internet_blocked(true).unwrap();
    assert!(d.open_url("https://example.org/").is_err());
    d.set_internet_blocked(false).unwrap();

    d.logout().unwrap();
    let end = Instant::now() + Duration::from_secs(5);
    let status = loop {
        if let Some(st) = session.try_wait().unwrap() {
            break st;
        }
        assert!(Instant::now() < end, "the session process survived logout");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(!status.success(), "ended by the signal: {status}");

    let mut no_logout = desktop(&x, quiet_options());
    assert!(!no_logout.capabilities().contains(&Capability::Logout));
    assert!(no_logout.logout().is_err());
}

#[test]
fn session_info_names_the_active_window() {
    let x = Xvfb::start();
    let client = Client::new(&x.display);
    let d = desktop(&x, quiet_options());
    assert!(d.state().user.is_some());
    assert_eq!(d.state().focused_app, None);

    let c = &client.conn;
    let win = client.window((0, 0, 200, 100), [1, 2, 3], false);
    c.change_property8(
        PropMode::REPLACE,
        win,
        AtomEnum::WM_CLASS,
        AtomEnum::STRING,
        b"essay\0TextEditor\0",
    )
    .unwrap();
    let utf8 = client.atom("UTF8_STRING");
    c.change_property8(
        PropMode::REPLACE,
        win,
        client.atom("_NET_WM_NAME"),
        utf8,
        "Essay draft – Ünïcode".as_bytes(),
    )
    .unwrap();
    c.change_property32(
        PropMode::REPLACE,
        client.root,
        client.atom("_NET_ACTIVE_WINDOW"),
        AtomEnum::WINDOW,
        &[win],
    )
    .unwrap();
    client.sync();
    let s = d.state();
    assert_eq!(s.focused_app.as_deref(), Some("TextEditor"));
    assert_eq!(s.window_title.as_deref(), Some("Essay draft – Ünïcode"));

    // No window manager: the input focus, walked up to the named window, and
    // the Latin-1 WM_NAME.
    c.delete_property(client.root, client.atom("_NET_ACTIVE_WINDOW"))
        .unwrap();
    let other = client.window((300, 0, 200, 100), [4, 5, 6], false);
    c.change_property8(
        PropMode::REPLACE,
        other,
        AtomEnum::WM_CLASS,
        AtomEnum::STRING,
        b"calc\0Calculator\0",
    )
    .unwrap();
    c.change_property8(
        PropMode::REPLACE,
        other,
        AtomEnum::WM_NAME,
        AtomEnum::STRING,
        b"Caf\xe9",
    )
    .unwrap();
    let child = c.generate_id().unwrap();
    c.create_window(
        COPY_DEPTH_FROM_PARENT,
        child,
        other,
        0,
        0,
        50,
        50,
        0,
        WindowClass::INPUT_OUTPUT,
        COPY_FROM_PARENT,
        &CreateWindowAux::new(),
    )
    .unwrap();
    c.map_window(child).unwrap();
    client.sync();
    c.set_input_focus(InputFocus::PARENT, child, CURRENT_TIME)
        .unwrap();
    client.sync();
    let s = d.state();
    assert_eq!(s.focused_app.as_deref(), Some("Calculator"));
    assert_eq!(s.window_title.as_deref(), Some("Café"));
}

#[test]
fn policy_reports_what_it_cannot_enforce_and_mutes_with_pactl() {
    let x = Xvfb::start();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("pactl.log");
    let pactl = dir.path().join("pactl");
    std::fs::write(
        &pactl,
        format!("#!/bin/sh\necho \"$*\" >> \"{}\"\n", log.display()),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&pactl, std::fs::Permissions::from_mode(0o755)).unwrap();

    let p = Policy {
        version: 7,
        printing_disabled: true,
        removable_media_disabled: true,
        sound_muted: true,
        ..Policy::default()
    };
    let mut d = desktop(
        &x,
        X11Options {
            pactl: Some(pactl),
            ..quiet_options()
        },
    );
    let u = d.apply_policy(&p);
    assert_eq!(u, vec!["printing_disabled", "removable_media_disabled"]);
    let s = d.state();
    assert!(s.sound_muted && s.policy_version == 7);
    assert_eq!(s.unsupported, u);
    d.apply_policy(&p); // unchanged: pactl is not run again
    d.apply_policy(&Policy::default());
    assert!(!d.state().sound_muted && d.state().unsupported.is_empty());
    assert_eq!(
        std::fs::read_to_string(&log).unwrap(),
        "set-sink-mute @DEFAULT_SINK@ 1\nset-sink-mute @DEFAULT_SINK@ 0\n"
    );

    // Without pactl, muting is reported as not enforced.
    let mut bare = desktop(&x, quiet_options());
    let u = bare.apply_policy(&Policy {
        sound_muted: true,
        ..Policy::default()
    });
    assert_eq!(u, vec!["sound_muted"]);
    assert!(!bare.state().sound_muted);
}
