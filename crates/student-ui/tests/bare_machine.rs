//! A machine with no fonts at all (a bare Wine prefix, a stripped image)
//! still shows Latin text, from the embedded face, and a backend can add a
//! font folder later. Its own test binary: it hides the system's fonts from
//! this process before the font system starts.

use lectern_student_ui::{fonts, StudentUi, Surface, SURFACE_COLOURS};

fn render(text: &str) -> Vec<u8> {
    let surface = Surface::Lock {
        school: "Hill School".into(),
        text: Some(text.into()),
    };
    StudentUi::new(surface, 1280, 720, 1.0).render().to_vec()
}

/// Writes BGRA `px` (1280×720) as `target/student-ui-out/<name>.png`.
fn save(name: &str, px: &[u8]) {
    let tmp = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let out = tmp.parent().expect("target dir").join("student-ui-out");
    std::fs::create_dir_all(&out).expect("output dir");
    let rgb: Vec<u8> = px.chunks(4).flat_map(|p| [p[2], p[1], p[0]]).collect();
    let file = std::fs::File::create(out.join(format!("{name}.png"))).expect("png file");
    let mut enc = png::Encoder::new(std::io::BufWriter::new(file), 1280, 720);
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    let mut w = enc.write_header().expect("png header");
    w.write_image_data(&rgb).expect("png data");
}

fn ink(px: &[u8]) -> usize {
    let bg = SURFACE_COLOURS.lock;
    px.chunks(4).filter(|p| [p[2], p[1], p[0]] != bg).count()
}

#[test]
fn no_system_fonts_still_draws_latin_and_takes_added_fonts() {
    // A fontconfig file naming one empty folder: no system fonts load.
    let dir = std::env::temp_dir().join(format!("lectern-no-fonts-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("empty")).expect("temp dir");
    let conf = dir.join("fonts.conf");
    let xml = format!(
        "<?xml version=\"1.0\"?><fontconfig><dir>{}</dir></fontconfig>",
        dir.join("empty").display()
    );
    std::fs::write(&conf, xml).expect("write fonts.conf");
    std::env::set_var("FONTCONFIG_FILE", &conf);

    let families = fonts::families();
    assert!(families.contains(&"Fira Sans".to_owned()), "{families:?}");
    assert!(!families.iter().any(|f| f.contains("Noto")), "{families:?}");
    let latin = render("Eyes to the front, please");
    save("bare-latin", &latin);
    assert!(ink(&latin) > 5_000, "Latin drawn from the embedded face");

    // CJK has no glyphs yet; once the backend adds a folder with a CJK face
    // it draws differently (real glyphs, not missing-glyph boxes).
    let cjk = "漢字かなカナ";
    let before = render(cjk);
    save("bare-cjk-no-font", &before);
    let noto = std::path::Path::new("/usr/share/fonts/opentype/noto");
    if noto.is_dir() {
        fonts::add_font_dir(noto);
        assert!(fonts::families()
            .iter()
            .any(|f| f.starts_with("Noto Sans CJK")));
        let after = render(cjk);
        save("bare-cjk-added-font", &after);
        assert_ne!(after, before, "CJK drawn with the added fonts");
    }
    std::fs::remove_dir_all(&dir).ok();
}
