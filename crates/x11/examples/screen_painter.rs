//! Paints the whole X screen for live-view tests and the benchmark
//! (`xsetroot -solid` does not repaint Xvfb's root here):
//!
//! - `screen_painter colour`: one full-screen window; each line on stdin
//!   (`RRGGBB`) repaints it that colour (`tests/e2e/liveview-h264.mjs`).
//! - `screen_painter clock [SECS]`: a clock for glass-to-glass latency
//!   (`bench/liveview.sh`): the current time, ms since the epoch modulo
//!   2^24, as 24 blocks of 64x64 px along the top of the screen (bit 23
//!   first; white = 1, black = 0) on a grey screen, repainted every 4 ms
//!   for SECS seconds (default 60). A reader takes each block's centre.
//!
//! Uses `DISPLAY`.

use std::io::BufRead;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use x11rb::connection::Connection;
use x11rb::protocol::xproto::{
    ChangeWindowAttributesAux, ConnectionExt as _, CreateGCAux, CreateWindowAux, Rectangle,
    WindowClass,
};
use x11rb::COPY_DEPTH_FROM_PARENT;

/// Side of one clock block, px.
const BLOCK: u16 = 64;
/// Bits of the clock.
const BITS: u32 = 24;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (conn, screen_num) = x11rb::connect(None)?;
    let screen = &conn.setup().roots[screen_num];
    let (w, h) = (screen.width_in_pixels, screen.height_in_pixels);
    let win = conn.generate_id()?;
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
        0,
        &CreateWindowAux::new()
            .background_pixel(0x808080)
            .override_redirect(1),
    )?;
    conn.map_window(win)?;
    conn.flush()?;
    match args.first().map(String::as_str) {
        Some("colour") => colour(&conn, win),
        Some("clock") => {
            let secs = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(60);
            clock(&conn, win, Duration::from_secs(secs))
        }
        _ => Err("usage: screen_painter colour | clock [SECS]".into()),
    }
}

/// Repaints `win` in each colour read from stdin.
fn colour(conn: &impl Connection, win: u32) -> Result<(), Box<dyn std::error::Error>> {
    for line in std::io::stdin().lock().lines() {
        let Ok(pixel) = u32::from_str_radix(line?.trim(), 16) else {
            continue;
        };
        conn.change_window_attributes(
            win,
            &ChangeWindowAttributesAux::new().background_pixel(pixel),
        )?;
        conn.clear_area(false, win, 0, 0, 0, 0)?;
        conn.get_input_focus()?.reply()?; // Painted before the next line.
        println!("painted {pixel:06x}");
    }
    Ok(())
}

/// Paints the clock until `run` has passed.
fn clock(
    conn: &impl Connection,
    win: u32,
    run: Duration,
) -> Result<(), Box<dyn std::error::Error>> {
    let (white, black) = (conn.generate_id()?, conn.generate_id()?);
    conn.create_gc(white, win, &CreateGCAux::new().foreground(0xffffff))?;
    conn.create_gc(black, win, &CreateGCAux::new().foreground(0x000000))?;
    let start = Instant::now();
    while start.elapsed() < run {
        let ms =
            SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis() as u32 & ((1 << BITS) - 1);
        let (mut ones, mut zeros) = (Vec::new(), Vec::new());
        for bit in 0..BITS {
            let r = Rectangle {
                x: (bit as i16) * BLOCK as i16,
                y: 0,
                width: BLOCK,
                height: BLOCK,
            };
            if ms >> (BITS - 1 - bit) & 1 == 1 {
                ones.push(r);
            } else {
                zeros.push(r);
            }
        }
        conn.poly_fill_rectangle(win, white, &ones)?;
        conn.poly_fill_rectangle(win, black, &zeros)?;
        conn.get_input_focus()?.reply()?;
        std::thread::sleep(Duration::from_millis(4));
    }
    Ok(())
}
