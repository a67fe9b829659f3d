//! Mixed right-to-left and left-to-right text stays inside its box (issue
//! 13 point 1's gap): cosmic-text 0.15 let a left-to-right line holding an
//! Arabic run grow past its box (the 1024 px message cut "مرحبا" at the
//! right edge); the surfaces now break such text themselves
//! (`lectern_student_ui::wrap`). Pure Arabic and Hebrew paragraphs stay
//! right to left and right-aligned. Screenshots go to
//! `target/student-ui-out/bidi-*`.
//!
//! Needs the Noto fonts (Debian: `apt-get install -y fonts-noto-core
//! fonts-noto-cjk fonts-noto-color-emoji`).

use lectern_student_ui::style::line_width;
use lectern_student_ui::wrap::break_lines;
use lectern_student_ui::{fonts, ShownText, StudentUi, Surface};
use std::path::PathBuf;

const MIXED: &str = "Déjà vu — 10 € ✓ · Zoë · Zażółć gęślą jaźń · Ŵŷ · مرحبا بالعالم · \
                     北京市第一中学 · 東京 · 서울 · 🔒😀👍🏽👩‍🏫";
const ARABIC: &str = "مرحبا بالعالم، هذه رسالة من معلمك. يرجى حفظ عملك الآن لأن الدرس \
                      سينتهي بعد خمس دقائق وسنلتقي غدا في الصباح";
const HEBREW: &str = "שלום עולם, זו הודעה מהמורה שלך. נא לשמור את העבודה עכשיו כי השיעור \
                      יסתיים בעוד חמש דקות ונתראה מחר בבוקר";
/// The message window's background (`style::colour::MESSAGE`), BGRA.
const MESSAGE_BGRA: [u8; 3] = [80, 215, 250];
/// iced's default line height: 1.3 times the font size.
const LINE: f32 = 1.3;

fn need_fonts() {
    let families = fonts::families();
    for want in [
        "Noto Sans",
        "Noto Sans Arabic",
        "Noto Sans Hebrew",
        "Noto Sans CJK SC",
    ] {
        assert!(
            families.iter().any(|f| f == want),
            "font {want:?} is not installed; run: apt-get install -y fonts-noto-core \
             fonts-noto-cjk fonts-noto-color-emoji"
        );
    }
}

fn save(name: &str, w: u32, h: u32, px: &[u8]) {
    let tmp = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let dir = tmp.parent().expect("target dir").join("student-ui-out");
    std::fs::create_dir_all(&dir).expect("create output dir");
    let rgb: Vec<u8> = px.chunks(4).flat_map(|p| [p[2], p[1], p[0]]).collect();
    let file = std::fs::File::create(dir.join(format!("{name}.png"))).expect("create png");
    let mut enc = png::Encoder::new(std::io::BufWriter::new(file), w, h);
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    let mut writer = enc.write_header().expect("png header");
    writer.write_image_data(&rgb).expect("png data");
}

/// A message showing `text` at `w`×`h`: its pixels and the body's box.
fn message(name: &str, text: &str, w: u32, h: u32) -> (Vec<u8>, ShownText) {
    let mut ui = StudentUi::new(
        Surface::Message {
            from: Some("Zoë".into()),
            text: text.into(),
        },
        w,
        h,
        1.0,
    );
    let missing = ui.missing_glyphs();
    assert!(missing.is_empty(), "{name}: missing {missing:?}");
    let first = text.split_whitespace().next().expect("a word");
    let body = ui
        .texts()
        .into_iter()
        .find(|t| t.text.contains(first))
        .expect("the message body is shown");
    let px = ui.render().to_vec();
    save(&format!("bidi-{name}-{w}x{h}"), w, h, &px);
    (px, body)
}

/// The middle of line `i` of a text at `y` with lines `line_px` apart:
/// its x-height band, clear of the tails of the lines above and below
/// (Arabic descenders reach into the next line's box).
fn band(y: f32, i: usize, line_px: f32) -> (f32, f32) {
    let top = y + i as f32 * line_px;
    (top + 0.35 * line_px, top + 0.7 * line_px)
}

/// The columns with ink (not the message background) in rows `y0..y1`.
fn ink_columns(px: &[u8], w: u32, y0: f32, y1: f32) -> Vec<u32> {
    let (y0, y1) = (y0.max(0.0) as u32, y1 as u32);
    (0..w)
        .filter(|&x| {
            (y0..y1).any(|y| {
                let i = ((y * w + x) * 4) as usize;
                px[i..i + 3] != MESSAGE_BGRA
            })
        })
        .collect()
}

/// The message body's size at `w`×`h` (view.rs: 52 design pixels for a
/// short message, scaled by the design unit).
fn body_size(text: &str, w: u32, h: u32) -> f32 {
    let u = lectern_student_ui::style::unit(w as f32, h as f32);
    if text.chars().count() > 160 {
        40.0 * u
    } else {
        52.0 * u
    }
}

#[test]
fn a_mixed_direction_message_stays_in_its_box() {
    need_fonts();
    for (w, h) in [(1024, 768), (1280, 720), (800, 600)] {
        let (px, body) = message("mixed", MIXED, w, h);
        let right = body.x + body.width;
        // No ink right of the body's box (its padding and the window's
        // edge): before the fix "مرحبا" ran to x = 1024 and was cut.
        let ink = ink_columns(&px, w, body.y, body.y + body.height);
        let past: Vec<_> = ink.iter().filter(|&&x| x as f32 > right + 2.0).collect();
        assert!(
            past.is_empty(),
            "{w}x{h}: ink right of the box ({right}) at columns {past:?}"
        );
        // Every laid-out line, measured shaped as drawn, fits the box.
        let size = body_size(MIXED, w, h);
        for line in body.text.lines() {
            let lw = line_width(line, size);
            assert!(
                lw <= body.width + 0.5,
                "{w}x{h}: {line:?} is {lw} wide in {body:?}"
            );
        }
        assert!(
            body.text.lines().count() >= 2,
            "{w}x{h}: not wrapped: {body:?}"
        );
        // Left to right: every line starts at the box's left edge.
        let size_px = size * LINE;
        for (i, _) in body.text.lines().enumerate() {
            let (y0, y1) = band(body.y, i, size_px);
            let cols = ink_columns(&px, w, y0, y1);
            let first = *cols.first().expect("ink on every line") as f32;
            assert!(
                first <= body.x + 8.0,
                "{w}x{h}: line {i} starts at {first}, box at {}",
                body.x
            );
        }
    }
}

/// A right-to-left paragraph: continuation lines carry a right-to-left
/// mark, every line ends at the box's right edge and the last, short one
/// starts well right of its left edge.
fn right_to_left(name: &str, text: &str) {
    need_fonts();
    let (w, h) = (1024, 768);
    let (px, body) = message(name, text, w, h);
    let lines: Vec<&str> = body.text.lines().collect();
    assert!(lines.len() >= 2, "{name}: not wrapped: {body:?}");
    for l in &lines[1..] {
        assert!(l.starts_with('\u{200F}'), "{name}: {l:?} lacks its RLM");
    }
    let size = body_size(text, w, h);
    let line_px = size * LINE;
    let right = body.x + body.width;
    for (i, l) in lines.iter().enumerate() {
        let (y0, y1) = band(body.y, i, line_px);
        let cols = ink_columns(&px, w, y0, y1);
        let (first, last) = (cols[0] as f32, *cols.last().expect("ink") as f32);
        assert!(
            last >= right - 8.0 && last <= right + 2.0,
            "{name}: line {i} ends at {last}, box ends at {right}"
        );
        let lw = line_width(l, size);
        if lw < body.width - 40.0 {
            assert!(
                first >= right - lw - 8.0,
                "{name}: short line {i} ({lw} wide) starts at {first}: not right-aligned"
            );
        }
    }
}

#[test]
fn an_arabic_paragraph_is_right_to_left_and_right_aligned() {
    right_to_left("arabic", ARABIC);
}

#[test]
fn a_hebrew_paragraph_is_right_to_left_and_right_aligned() {
    right_to_left("hebrew", HEBREW);
}

#[test]
fn broken_lines_fit_and_keep_every_word() {
    need_fonts();
    for text in [
        MIXED,
        ARABIC,
        HEBREW,
        "a\n\nb",
        "",
        "北京市第一中学東京北京市第一中学東京",
    ] {
        for width in [60.0, 180.0, 400.0, 944.0] {
            let broken = break_lines(text, 40.0, width);
            for line in broken.lines() {
                // A single grapheme wider than the line is allowed alone.
                let one = line
                    .trim_start_matches(['\u{200E}', '\u{200F}'])
                    .chars()
                    .count()
                    <= 1;
                let lw = line_width(line, 40.0);
                assert!(one || lw <= width, "{width}: {line:?} is {lw} wide");
            }
            let words = |s: &str| -> String {
                s.chars()
                    .filter(|c| !c.is_whitespace() && !matches!(c, '\u{200E}' | '\u{200F}'))
                    .collect()
            };
            assert_eq!(words(&broken), words(text), "{width}: text changed");
            assert!(
                broken.matches('\n').count() >= text.matches('\n').count(),
                "paragraph breaks kept"
            );
        }
    }
}
