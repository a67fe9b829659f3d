//! Thumbnail capture benchmark for the X11 backend: covers the screen with
//! random-ish rectangles, then times N rounds of grab (MIT-SHM or core
//! GetImage), scale to the thumbnail width, and JPEG encoding, the same three
//! steps the agent runs for every thumbnail. Run through `bench/capture.sh`.
//!
//! ```text
//! capture_bench --display :99 [--iterations 200] [--width 320] [--core]
//! ```

use std::time::{Duration, Instant};

use lectern_desktop::encode_jpeg;
use lectern_x11::{X11Desktop, X11Options};
use x11rb::connection::Connection;
use x11rb::protocol::xproto::{
    ConnectionExt as _, CreateGCAux, CreateWindowAux, Rectangle, WindowClass,
};
use x11rb::rust_connection::RustConnection;
use x11rb::{COPY_DEPTH_FROM_PARENT, COPY_FROM_PARENT};

/// JPEG quality the agent uses for thumbnails.
const QUALITY: u8 = 70;

struct Args {
    display: String,
    iterations: usize,
    width: u32,
    core: bool,
}

fn args() -> Args {
    let mut a = Args {
        display: std::env::var("DISPLAY").unwrap_or_default(),
        iterations: 200,
        width: 320,
        core: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let mut val = || it.next().unwrap_or_else(|| panic!("{k} needs a value"));
        match k.as_str() {
            "--display" => a.display = val(),
            "--iterations" => a.iterations = val().parse().expect("--iterations N"),
            "--width" => a.width = val().parse().expect("--width PX"),
            "--core" => a.core = true,
            other => panic!("unknown argument {other}"),
        }
    }
    a
}

/// Covers the screen with a window of 3000 rectangles in pseudo-random
/// colours and sizes, so the JPEG encoder has real detail to work on. The
/// returned connection keeps the window alive.
fn draw_content(display: &str) -> (RustConnection, (u16, u16)) {
    let (conn, n) = x11rb::connect(Some(display)).expect("connect");
    let screen = conn.setup().roots[n].clone();
    let (w, h) = (screen.width_in_pixels, screen.height_in_pixels);
    let win = conn.generate_id().unwrap();
    conn.create_window(
        COPY_DEPTH_FROM_PARENT,
        win,
        screen.root,
        0,
        0,
        w,
        h,
        0,
        WindowClass::INPUT_OUTPUT,
        COPY_FROM_PARENT,
        &CreateWindowAux::new()
            .background_pixel(0x00f0_f0f0)
            .override_redirect(1),
    )
    .unwrap();
    conn.map_window(win).unwrap();
    let gc = conn.generate_id().unwrap();
    conn.create_gc(gc, win, &CreateGCAux::new()).unwrap();
    // A fixed LCG: the same picture every run.
    let mut seed: u64 = 0x1234_5678;
    let mut next = move |m: u32| -> u32 {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((seed >> 33) as u32) % m.max(1)
    };
    for i in 0..3000u32 {
        // Mostly small rectangles (text-like detail), some large (windows).
        let (max_w, max_h) = if i % 10 == 0 { (600, 400) } else { (60, 20) };
        let rect = Rectangle {
            x: next(u32::from(w)) as i16,
            y: next(u32::from(h)) as i16,
            width: 2 + next(max_w) as u16,
            height: 2 + next(max_h) as u16,
        };
        let colour = next(0x0100_0000);
        conn.change_gc(
            gc,
            &x11rb::protocol::xproto::ChangeGCAux::new().foreground(colour),
        )
        .unwrap();
        conn.poly_fill_rectangle(win, gc, &[rect]).unwrap();
    }
    conn.get_input_focus().unwrap().reply().unwrap();
    (conn, (w, h))
}

fn stats(mut v: Vec<Duration>) -> (f64, f64) {
    v.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let p99 = ((v.len() as f64 * 0.99).ceil() as usize).clamp(1, v.len()) - 1;
    (ms(v[v.len() / 2]), ms(v[p99]))
}

fn main() {
    let a = args();
    assert!(!a.display.is_empty(), "give --display or set $DISPLAY");
    let (_content, screen) = draw_content(&a.display);
    let opts = X11Options {
        url_opener: vec!["true".into()],
        session_id: None,
        logout_command: None,
        pactl: None,
    };
    let mut d = X11Desktop::with_options(Some(&a.display), opts).expect("connect");
    if a.core {
        d.force_core_capture();
    }
    let (mut grab, mut scale, mut jpeg, mut total) = (vec![], vec![], vec![], vec![]);
    let mut bytes = 0;
    let mut size = (0, 0);
    // Warm-up: the first grab creates the shared-memory segment.
    d.capture_timed(a.width).expect("capture");
    for _ in 0..a.iterations {
        let t = Instant::now();
        let (frame, times) = d.capture_timed(a.width).expect("capture");
        let t_enc = Instant::now();
        let out = encode_jpeg(&frame, QUALITY).expect("jpeg");
        let done = Instant::now();
        grab.push(times.grab);
        scale.push(times.scale);
        jpeg.push(done - t_enc);
        total.push(done - t);
        bytes = out.len();
        size = (frame.width, frame.height);
    }
    println!(
        "screen {}x{}, capture path: {}; thumbnail {}x{}, JPEG q{QUALITY} {bytes} bytes; {} iterations",
        screen.0,
        screen.1,
        if d.uses_shm() { "MIT-SHM" } else { "core GetImage" },
        size.0,
        size.1,
        a.iterations
    );
    for (name, v) in [
        ("grab", grab),
        ("scale", scale),
        ("jpeg", jpeg),
        ("total", total),
    ] {
        let (median, p99) = stats(v);
        println!("{name:>6}: median {median:7.3} ms   p99 {p99:7.3} ms");
    }
}
