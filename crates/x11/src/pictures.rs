//! What the agent's windows show, drawn in software with [`Canvas`] (so no X
//! fonts are needed), and where their buttons are.

use lectern_desktop::Frame;
use lectern_desktop::{Canvas, Rgb, LOGICAL_H, LOGICAL_W};
use lectern_desktop::{BROADCAST_BG, LOCK_BG};

/// Background of the message window.
pub const MESSAGE_BG: Rgb = [250, 215, 80];
/// Background of the remote-view question.
pub const PROMPT_BG: Rgb = [235, 235, 240];
const WHITE: Rgb = [255, 255, 255];

/// A logical rectangle (1280×720 space): x, y, width, height.
pub type Area = (u32, u32, u32, u32);
/// The message window's OK button.
pub const OK_BUTTON: Area = (980, 560, 240, 110);
/// The remote-view question's Allow button.
pub const ALLOW_BUTTON: Area = (80, 440, 520, 200);
/// The remote-view question's Deny button.
pub const DENY_BUTTON: Area = (680, 440, 520, 200);

/// Whether window point (`x`, `y`) of a `w`×`h` window drawn in logical
/// coordinates falls in `area`.
pub fn hit(area: Area, x: i16, y: i16, w: u16, h: u16) -> bool {
    if x < 0 || y < 0 || w == 0 || h == 0 {
        return false;
    }
    let lx = x as u32 * LOGICAL_W / u32::from(w);
    let ly = y as u32 * LOGICAL_H / u32::from(h);
    let (ax, ay, aw, ah) = area;
    lx >= ax && lx < ax + aw && ly >= ay && ly < ay + ah
}

/// An RGB buffer of `w`×`h` filled with `bg`.
fn filled(w: usize, h: usize, bg: Rgb) -> Vec<u8> {
    bg.repeat(w * h)
}

/// Copies `src` into the `dw`-wide RGB buffer `dst` at (`x`, `y`), clipped.
pub fn blit(dst: &mut [u8], dw: usize, src: &Frame, x: usize, y: usize) {
    let dh = dst.len() / 3 / dw.max(1);
    let sw = src.width as usize;
    let cols = sw.min(dw.saturating_sub(x));
    for row in 0..(src.height as usize).min(dh.saturating_sub(y)) {
        let s = &src.rgb[row * sw * 3..(row * sw + cols) * 3];
        let d = ((y + row) * dw + x) * 3;
        dst[d..d + cols * 3].copy_from_slice(s);
    }
}

/// A 16:9 canvas as large as fits in `w`×`h`, and where it goes to be centred.
fn fitted(w: usize, h: usize, bg: Rgb) -> (Canvas, usize, usize) {
    let cw = w.min(h * 16 / 9).clamp(16, 3840);
    let ch = cw * LOGICAL_H as usize / LOGICAL_W as usize;
    let c = Canvas::new(cw as u32, bg);
    (c, w.saturating_sub(cw) / 2, h.saturating_sub(ch) / 2)
}

/// The lock screen for a `w`×`h` screen: the same layout as the headless one.
pub fn lock(w: usize, h: usize, school: &str, text: Option<&str>) -> Vec<u8> {
    let (mut c, x, y) = fitted(w, h, LOCK_BG);
    c.text(80, 200, 96, 1120, "LOCKED", WHITE);
    c.text(80, 360, 40, 1120, school, [200, 200, 255]);
    if let Some(t) = text {
        c.text(80, 440, 40, 1120, t, WHITE);
    }
    let mut out = filled(w, h, LOCK_BG);
    blit(&mut out, w, &c.finish(), x, y);
    out
}

/// Logical width of `text` drawn `size` high on a canvas `width` pixels wide,
/// mirroring [`Canvas::text`]'s whole-pixel glyph scaling.
fn text_width(width: u32, size: u32, text: &str) -> u32 {
    let scale = width as f32 / LOGICAL_W as f32;
    let glyph = ((size as f32 * scale).round() as u32).max(8) / 8;
    (text.chars().count() as f32 * 8.0 * glyph as f32 / scale) as u32
}

/// A filled button with its label centred.
fn button(c: &mut Canvas, width: u32, (x, y, w, h): Area, size: u32, label: &str, bg: Rgb) {
    c.rect(x, y, w, h, bg);
    let tw = text_width(width, size, label);
    c.text(
        x + w.saturating_sub(tw) / 2,
        y + h.saturating_sub(size) / 2,
        size,
        w,
        label,
        WHITE,
    );
}

/// The message window's picture; the window is exactly this frame's size.
pub fn message(width: u32, text: &str) -> Frame {
    let mut c = Canvas::new(width, MESSAGE_BG);
    c.rect(0, 0, 1280, 100, [60, 40, 0]);
    c.text(50, 30, 44, 1180, "Message from your teacher", WHITE);
    // Long messages get a smaller font so more of them fits above the button.
    let size = if text.chars().count() > 160 { 40 } else { 52 };
    c.text(50, 140, size, 1180, text, [0, 0, 0]);
    button(&mut c, width, OK_BUTTON, 56, "OK", [60, 60, 80]);
    c.finish()
}

/// The remote-view question's picture.
pub fn prompt(width: u32, teacher: &str) -> Frame {
    let mut c = Canvas::new(width, PROMPT_BG);
    // A name long enough to reach the buttons is cut.
    let name: String = teacher.chars().take(40).collect();
    c.text(
        60,
        50,
        72,
        1160,
        &format!("{name} wants to see your screen"),
        [20, 20, 40],
    );
    button(&mut c, width, ALLOW_BUTTON, 96, "Allow", [40, 140, 60]);
    button(&mut c, width, DENY_BUTTON, 96, "Deny", [180, 50, 50]);
    c.finish()
}

/// Height in pixels of the broadcast title bar on a `w`-wide screen.
pub fn title_bar_height(w: usize) -> usize {
    (56 * w / LOGICAL_W as usize).max(12)
}

/// The broadcast title bar: the first [`title_bar_height`] rows of a canvas.
pub fn title_bar(w: usize, title: &str) -> Vec<u8> {
    let mut c = Canvas::new(w.clamp(16, 3840) as u32, [20, 20, 24]);
    c.text(16, 12, 32, 1240, &format!("Broadcast: {title}"), WHITE);
    let f = c.finish();
    let rows = title_bar_height(w).min(f.height as usize);
    let mut out = filled(w, rows, [20, 20, 24]);
    let strip = Frame {
        width: f.width,
        height: rows as u32,
        rgb: f.rgb[..f.width as usize * rows * 3].to_vec(),
    };
    blit(&mut out, w, &strip, 0, 0);
    out
}

/// The broadcast screen before its first frame.
pub fn broadcast_waiting(w: usize, h: usize, title: &str) -> Vec<u8> {
    let (mut c, x, y) = fitted(w, h, BROADCAST_BG);
    c.text(80, 80, 48, 1120, &format!("Broadcast: {title}"), WHITE);
    c.text(
        80,
        160,
        32,
        1120,
        "Waiting for the picture...",
        [200, 200, 200],
    );
    let mut out = filled(w, h, BROADCAST_BG);
    blit(&mut out, w, &c.finish(), x, y);
    out
}

/// A broadcast frame fitted to a `w`×`h` screen (aspect kept, black bars) with
/// the title bar over its top.
pub fn broadcast_frame(w: usize, h: usize, frame: &Frame, bar: &[u8]) -> Vec<u8> {
    let (fw, fh) = (frame.width as usize, frame.height as usize);
    let mut out = filled(w, h, [0, 0, 0]);
    if fw > 0 && fh > 0 {
        // Fit: the larger of the two scale factors that still fits both ways.
        let (dw, dh) = if w * fh <= h * fw {
            (w, (fh * w / fw).max(1))
        } else {
            ((fw * h / fh).max(1), h)
        };
        let scaled = Frame {
            width: dw as u32,
            height: dh as u32,
            rgb: super::scale::resize_rgb(&frame.rgb, fw, fh, dw, dh),
        };
        blit(&mut out, w, &scaled, (w - dw) / 2, (h - dh) / 2);
    }
    let n = bar.len().min(out.len());
    out[..n].copy_from_slice(&bar[..n]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn share(rgb: &[u8], c: Rgb) -> f32 {
        rgb.chunks(3).filter(|p| *p == c).count() as f32 / (rgb.len() / 3) as f32
    }

    #[test]
    fn lock_fills_any_screen_shape() {
        for (w, h) in [(1280, 720), (1024, 768), (2560, 1080), (640, 480)] {
            let px = lock(w, h, "Hill School", Some("Eyes front"));
            assert_eq!(px.len(), w * h * 3);
            assert!(share(&px, LOCK_BG) > 0.9, "{w}x{h}");
        }
    }

    #[test]
    fn buttons_are_where_they_are_drawn() {
        let m = message(640, "Hello");
        let (w, h) = (m.width as u16, m.height as u16);
        assert_eq!((w, h), (640, 360));
        let (x, y, bw, bh) = OK_BUTTON;
        let (cx, cy) = ((x + bw / 2) / 2, (y + bh / 2) / 2);
        assert!(hit(OK_BUTTON, cx as i16, cy as i16, w, h));
        assert!(!hit(OK_BUTTON, 10, 10, w, h));
        let i = ((cy * 640 + cx - 40) * 3) as usize;
        assert_eq!(&m.rgb[i..i + 3], &[60, 60, 80]);
        let p = prompt(640, "Ms Smith");
        assert!(hit(ALLOW_BUTTON, 160, 270, p.width as u16, p.height as u16));
        assert!(hit(DENY_BUTTON, 460, 270, p.width as u16, p.height as u16));
        assert_eq!(text_width(640, 56, "OK"), 96); // 3-pixel glyphs at half scale
    }

    #[test]
    fn broadcast_frames_fit_and_carry_the_title() {
        let red = Frame {
            width: 32,
            height: 18,
            rgb: [200, 0, 0].repeat(32 * 18),
        };
        let bar = title_bar(1280, "Ms Smith");
        assert_eq!(bar.len(), 1280 * 56 * 3);
        let px = broadcast_frame(1280, 720, &red, &bar);
        assert!(share(&px, [200, 0, 0]) > 0.9);
        // A 4:3 screen gets bars top and bottom.
        let px = broadcast_frame(1024, 768, &red, &title_bar(1024, "t"));
        assert!(share(&px, [0, 0, 0]) > 0.15);
    }
}
