//! The acceptable use policy surface (issue 14 point 1): Unicode text with
//! every glyph drawn, the text scrolls by keyboard and wheel, and only
//! "I accept" (button or Enter) answers. Screenshots go to
//! `target/student-ui-out/aup-*`.

use lectern_student_ui::{fonts, Answer, Key, Modifiers, StudentUi, Surface};
use std::path::PathBuf;

fn out_dir() -> PathBuf {
    let tmp = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let dir = tmp.parent().expect("target dir").join("student-ui-out");
    std::fs::create_dir_all(&dir).expect("create output dir");
    dir
}

fn save(name: &str, w: u32, h: u32, px: &[u8]) {
    let rgb: Vec<u8> = px.chunks(4).flat_map(|p| [p[2], p[1], p[0]]).collect();
    let file = std::fs::File::create(out_dir().join(format!("{name}.png"))).expect("create png");
    let mut enc = png::Encoder::new(std::io::BufWriter::new(file), w, h);
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    let mut writer = enc.write_header().expect("png header");
    writer.write_image_data(&rgb).expect("png data");
}

fn need_fonts() {
    let families = fonts::families();
    for want in ["Noto Sans", "Noto Sans CJK SC"] {
        assert!(
            families.iter().any(|f| f == want),
            "font {want:?} is not installed; run: apt-get install -y fonts-noto-core fonts-noto-cjk"
        );
    }
}

/// A policy long enough to scroll, in several scripts.
fn policy() -> Surface {
    let mut text = String::from(
        "Déjà vu: use school computers for school work. Zażółć gęślą jaźń.\n\n\
         Будьте вежливы в сети. 日本語のページも同じ規則です。 مرحبا بالعالم\n\n",
    );
    for i in 1..=30 {
        text.push_str(&format!(
            "{i}. Keep your password to yourself and log out when you leave ✓.\n\n"
        ));
    }
    Surface::AcceptableUse {
        school: "Ysgol Gŵyr".into(),
        title: "Acceptable use of school computers".into(),
        version: 3,
        text,
    }
}

fn none() -> Modifiers {
    Modifiers::default()
}

#[test]
fn the_policy_shows_every_glyph_scrolls_and_only_accept_answers() {
    need_fonts();
    for (w, h) in [(1024, 768), (1920, 1080)] {
        let mut ui = StudentUi::new(policy(), w, h, 1.0);
        let missing = ui.missing_glyphs();
        assert!(missing.is_empty(), "{w}x{h}: missing {missing:?}");
        let texts = ui.texts();
        let button = texts
            .iter()
            .find(|t| t.text == "I accept")
            .expect("an I accept button");
        assert!(
            button.y + button.height <= h as f32 && button.x + button.width <= w as f32,
            "{w}x{h}: the button is off screen: {button:?}"
        );
        assert!(texts.iter().any(|t| t.text.contains("日本語")));
        let top = ui.render().to_vec();
        save(&format!("aup-{w}x{h}"), w, h, &top);

        // Keys other than Enter scroll or do nothing; none answers.
        for key in [Key::Escape, Key::Tab, Key::Char('a')] {
            assert_eq!(ui.key(key, none(), None), None);
        }
        assert_eq!(ui.key(Key::Down, none(), None), None);
        let down = ui.render().to_vec();
        assert_ne!(top, down, "{w}x{h}: the arrow key scrolled nothing");
        assert_eq!(ui.key(Key::End, none(), None), None);
        let end = ui.render().to_vec();
        assert_ne!(down, end);
        save(&format!("aup-{w}x{h}-end"), w, h, &end);
        assert_eq!(ui.key(Key::Home, none(), None), None);
        assert_eq!(ui.render(), &top[..], "{w}x{h}: Home goes back to the top");
        // The wheel scrolls too.
        assert_eq!(ui.wheel(w as f32 / 2.0, h as f32 / 2.0, 3.0), None);
        assert_ne!(ui.render(), &top[..], "{w}x{h}: the wheel scrolled nothing");

        // The button accepts, as does Enter.
        let (x, y) = (
            button.x + button.width / 2.0,
            button.y + button.height / 2.0,
        );
        ui.pointer_moved(x, y);
        assert_eq!(ui.pointer_button(true), None);
        assert_eq!(ui.pointer_button(false), Some(Answer::AcceptAup));
        assert_eq!(ui.key(Key::Enter, none(), None), Some(Answer::AcceptAup));
    }
}
