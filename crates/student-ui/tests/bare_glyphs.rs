//! The glyph check on a machine with no fonts at all: the embedded Latin
//! face covers Latin with accents, Polish and Welsh (no glyph missing), and
//! the check names what it cannot draw (CJK) instead of passing on boxes.
//! Its own test binary: it hides the system's fonts from this process
//! before the font system starts.

use lectern_student_ui::{fonts, StudentUi, Surface};

#[test]
fn embedded_face_covers_latin_and_the_check_reports_the_rest() {
    let dir = std::env::temp_dir().join(format!("lectern-no-fonts-glyphs-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("empty")).expect("temp dir");
    let conf = dir.join("fonts.conf");
    let xml = format!(
        "<?xml version=\"1.0\"?><fontconfig><dir>{}</dir></fontconfig>",
        dir.join("empty").display()
    );
    std::fs::write(&conf, xml).expect("write fonts.conf");
    std::env::set_var("FONTCONFIG_FILE", &conf);
    let families = fonts::families();
    assert!(!families.iter().any(|f| f.contains("Noto")), "{families:?}");

    let latin = Surface::Lock {
        school: "Ysgol Gŵyr · Zoë".into(),
        text: Some("Déjà vu — 10 € · Zażółć gęślą jaźń · Ŵŷ".into()),
    };
    let mut ui = StudentUi::new(latin, 1280, 720, 1.0);
    assert_eq!(ui.missing_glyphs(), vec![], "Latin from the embedded face");

    let cjk = Surface::Lock {
        school: "Hill School".into(),
        text: Some("東京".into()),
    };
    let mut ui = StudentUi::new(cjk, 1280, 720, 1.0);
    let missing: Vec<String> = ui.missing_glyphs().into_iter().map(|m| m.chars).collect();
    assert_eq!(missing, ["東", "京"]);
    std::fs::remove_dir_all(&dir).ok();
}
