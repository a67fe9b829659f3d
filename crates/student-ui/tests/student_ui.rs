//! Renders every surface at two screen sizes into PNGs under
//! `target/student-ui-out/` (to look at), and checks the pixels and the
//! answers: buttons answer where they are drawn, the sign-in form takes typed
//! text, and text in any script reaches the screen.

use lectern_student_ui::{
    fonts, Answer, Key, Modifiers, Picture, Secret, StudentUi, Surface, PICTURE_BG, SURFACE_COLOURS,
};
use std::path::PathBuf;

const SIZES: [(u32, u32); 2] = [(1024, 768), (1920, 1080)];

fn out_dir() -> PathBuf {
    let tmp = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let dir = tmp.parent().expect("target dir").join("student-ui-out");
    std::fs::create_dir_all(&dir).expect("create output dir");
    dir
}

/// Writes BGRA `px` as an RGB PNG named `name`.
fn save(name: &str, w: u32, h: u32, px: &[u8]) {
    let rgb: Vec<u8> = px.chunks(4).flat_map(|p| [p[2], p[1], p[0]]).collect();
    let file = std::fs::File::create(out_dir().join(format!("{name}.png"))).expect("create png");
    let mut enc = png::Encoder::new(std::io::BufWriter::new(file), w, h);
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    let mut writer = enc.write_header().expect("png header");
    writer.write_image_data(&rgb).expect("png data");
}

/// The RGB colour of pixel (`x`, `y`).
fn at(px: &[u8], w: u32, x: u32, y: u32) -> [u8; 3] {
    let i = ((y * w + x) * 4) as usize;
    [px[i + 2], px[i + 1], px[i]]
}

/// Share of pixels exactly `c`.
fn share(px: &[u8], c: [u8; 3]) -> f32 {
    let n = px.chunks(4).filter(|p| [p[2], p[1], p[0]] == c).count();
    n as f32 / (px.len() / 4) as f32
}

/// Centre and pixel count of the pixels exactly `c` (a button's fill).
fn blob(px: &[u8], w: u32, c: [u8; 3]) -> Option<(f32, f32, usize)> {
    let (mut sx, mut sy, mut n) = (0.0, 0.0, 0usize);
    for (i, p) in px.chunks(4).enumerate() {
        if [p[2], p[1], p[0]] == c {
            sx += (i as u32 % w) as f32;
            sy += (i as u32 / w) as f32;
            n += 1;
        }
    }
    (n > 0).then(|| (sx / n as f32, sy / n as f32, n))
}

/// Pixels in rows `y0..y1` that are neither `bg` nor transparent-looking:
/// the ink of text drawn there.
fn ink(px: &[u8], w: u32, y0: u32, y1: u32, bg: [u8; 3]) -> usize {
    (y0..y1)
        .flat_map(|y| (0..w).map(move |x| (x, y)))
        .filter(|&(x, y)| at(px, w, x, y) != bg)
        .count()
}

/// The picture grid the agent passes (`lectern_proto::signin::PICTURES`).
fn grid() -> Vec<Picture> {
    [
        ("🐶", "dog"),
        ("🐱", "cat"),
        ("🐸", "frog"),
        ("🦊", "fox"),
        ("🐻", "bear"),
        ("🐼", "panda"),
        ("🦁", "lion"),
        ("🐷", "pig"),
        ("🍎", "apple"),
        ("🍌", "banana"),
        ("🍓", "strawberry"),
        ("🍕", "pizza"),
        ("⚽", "ball"),
        ("🚗", "car"),
        ("🚀", "rocket"),
        ("⭐", "star"),
    ]
    .into_iter()
    .map(|(emoji, name)| Picture {
        emoji: emoji.into(),
        name: name.into(),
    })
    .collect()
}

fn surfaces() -> Vec<(&'static str, Surface)> {
    vec![
        (
            "lock",
            Surface::Lock {
                school: "Hill School".into(),
                text: Some("Eyes to the front, please — Café élève naïve".into()),
            },
        ),
        (
            "lock-unicode",
            Surface::Lock {
                school: "北京市第一中学 · 東京 · 서울".into(),
                text: Some("مرحبا بالعالم · שלום עולם · Привет · 🔒😀👍🏽👩‍🏫".into()),
            },
        ),
        (
            "message",
            Surface::Message {
                from: Some("Ms Smith".into()),
                text: "Please save your work and look at the board. Merci beaucoup, 谢谢 🙂".into(),
            },
        ),
        (
            "message-long",
            Surface::Message {
                from: None,
                text: "A long message. ".repeat(40),
            },
        ),
        (
            "question",
            Surface::Question {
                teacher: "Mr García".into(),
                seconds_left: 30,
            },
        ),
        (
            "broadcast",
            Surface::Broadcast {
                title: "Ms Smith — Year 9 Maths".into(),
            },
        ),
        (
            "sign-in",
            Surface::SignIn {
                school: "Hill School".into(),
                pictures: grid(),
                error: None,
                schools: vec![],
            },
        ),
        (
            "controlled",
            Surface::Controlled {
                teacher: "Ms Smith".into(),
            },
        ),
        (
            "request",
            Surface::Request {
                raised: false,
                status: Some("too many raised hands; wait 30 s".into()),
            },
        ),
        (
            "chat",
            Surface::Chat {
                lines: vec![lectern_student_ui::ChatEntry {
                    mine: false,
                    author: "Ms Smith".into(),
                    text: "Déjà vu — 10 € ✓ مرحبا 你好 👋".into(),
                }],
                status: None,
            },
        ),
        (
            "aup",
            Surface::AcceptableUse {
                school: "Ysgol Gŵyr".into(),
                title: "Acceptable use".into(),
                version: 2,
                text: "Déjà vu — 10 € ✓\n\nمرحبا 你好 👋".into(),
            },
        ),
        (
            "register",
            Surface::Register {
                error: Some(
                    "The server refused the school code: the school code is unknown, or the school has changed it."
                        .into(),
                ),
            },
        ),
    ]
}

fn background(s: &Surface) -> [u8; 3] {
    match s {
        Surface::Lock { .. }
        | Surface::SignIn { .. }
        | Surface::AcceptableUse { .. }
        | Surface::Register { .. } => SURFACE_COLOURS.lock,
        Surface::Message { .. } => SURFACE_COLOURS.message,
        Surface::Question { .. } => SURFACE_COLOURS.question,
        Surface::Broadcast { .. } => SURFACE_COLOURS.broadcast,
        Surface::Controlled { .. } => lectern_student_ui::CONTROLLED_BG,
        Surface::HandButton { .. } | Surface::SignOutButton => lectern_student_ui::HAND_BUTTON_BG,
        Surface::Request { .. } | Surface::Chat { .. } => lectern_student_ui::REQUEST_BG,
    }
}

#[test]
fn every_surface_renders_at_both_sizes() {
    for (w, h) in SIZES {
        for (name, surface) in surfaces() {
            let bg = background(&surface);
            let mut ui = StudentUi::new(surface, w, h, 1.0);
            let px = ui.render().to_vec();
            assert_eq!(px.len(), (w * h * 4) as usize, "{name}");
            assert!(px.chunks(4).all(|p| p[3] == 255), "{name}: opaque");
            save(&format!("{name}-{w}x{h}"), w, h, &px);
            // Mostly its own colour, but with something drawn on it.
            let s = share(&px, bg);
            assert!(s > 0.4 && s < 0.995, "{name} {w}x{h}: background share {s}");
        }
    }
}

#[test]
fn lock_text_is_in_the_middle_and_the_edges_are_plain() {
    let (w, h) = (1920, 1080);
    let mut ui = StudentUi::new(surfaces()[0].1.clone(), w, h, 1.0);
    let px = ui.render().to_vec();
    let bg = SURFACE_COLOURS.lock;
    assert_eq!(ink(&px, w, 0, 100, bg), 0, "top rows are plain");
    assert_eq!(ink(&px, w, h - 100, h, bg), 0, "bottom rows are plain");
    assert!(ink(&px, w, 300, 800, bg) > 20_000, "text in the middle");
}

#[test]
fn message_text_shows_and_ok_answers() {
    let (w, h) = (1024, 768);
    let mut ui = StudentUi::new(surfaces()[2].1.clone(), w, h, 1.0);
    let px = ui.render().to_vec();
    // The header bar is across the top; the body text below it.
    assert_eq!(at(&px, w, 5, 5), [60, 40, 0]);
    assert!(ink(&px, w, 120, 400, SURFACE_COLOURS.message) > 5_000);
    let (x, y, n) = blob(&px, w, [60, 60, 80]).expect("OK button drawn");
    assert!(n > 10_000, "OK button size {n}");
    assert!(x > w as f32 / 2.0 && y > h as f32 / 2.0, "bottom right");
    // A click elsewhere does nothing; on the button, it answers.
    ui.pointer_moved(10.0, 300.0);
    assert_eq!(ui.pointer_button(true), None);
    assert_eq!(ui.pointer_button(false), None);
    ui.pointer_moved(x, y);
    assert_eq!(ui.pointer_button(true), None);
    assert_eq!(ui.pointer_button(false), Some(Answer::Dismissed));
    // So does Enter.
    assert_eq!(
        ui.key(Key::Enter, Modifiers::default(), None),
        Some(Answer::Dismissed)
    );
}

fn click(ui: &mut StudentUi, (x, y): (f32, f32)) -> Option<Answer> {
    ui.pointer_moved(x, y);
    ui.pointer_button(true);
    ui.pointer_button(false)
}

#[test]
fn question_buttons_answer_where_they_are_drawn() {
    for (w, h) in SIZES {
        let mut ui = StudentUi::new(surfaces()[4].1.clone(), w, h, 1.0);
        let px = ui.render().to_vec();
        let (ax, ay, _) = blob(&px, w, [40, 140, 60]).expect("Allow drawn");
        let (dx, dy, _) = blob(&px, w, [180, 50, 50]).expect("Deny drawn");
        assert!(ax < dx && (ay - dy).abs() < 2.0, "side by side");
        assert_eq!(click(&mut ui, (ax, ay)), Some(Answer::Allowed));
        assert_eq!(click(&mut ui, (dx, dy)), Some(Answer::Denied));
        // Pressing on Allow and releasing elsewhere answers nothing.
        ui.pointer_moved(ax, ay);
        ui.pointer_button(true);
        ui.pointer_moved(5.0, 5.0);
        assert_eq!(ui.pointer_button(false), None);
        // Enter never allows; Escape denies.
        assert_eq!(ui.key(Key::Enter, Modifiers::default(), None), None);
        assert_eq!(
            ui.key(Key::Escape, Modifiers::default(), None),
            Some(Answer::Denied)
        );
    }
}

#[test]
fn question_scales_with_hidpi() {
    // 2× scale: same layout in logical pixels, so the buttons sit at the
    // same fraction of the screen.
    let mut ui = StudentUi::new(surfaces()[4].1.clone(), 2048, 1536, 2.0);
    let px = ui.render().to_vec();
    let (ax, ay, _) = blob(&px, 2048, [40, 140, 60]).expect("Allow drawn");
    assert_eq!(click(&mut ui, (ax, ay)), Some(Answer::Allowed));
}

fn typed(ui: &mut StudentUi, s: &str) {
    for c in s.chars() {
        assert_eq!(ui.key(Key::Char(c), Modifiers::default(), None), None);
    }
}

/// The centre of the text `t` on the surface (a button's label).
fn centre_of(ui: &mut StudentUi, t: &str) -> (f32, f32) {
    let found = ui
        .texts()
        .into_iter()
        .find(|s| s.text == t)
        .unwrap_or_else(|| panic!("{t:?} is not on the surface"));
    (found.x + found.width / 2.0, found.y + found.height / 2.0)
}

#[test]
fn sign_in_takes_a_name_and_tapped_pictures() {
    let (w, h) = (1024, 768);
    let mut ui = StudentUi::new(surfaces()[6].1.clone(), w, h, 1.0);
    let px = ui.render().to_vec();
    save("sign-in-grid-1024x768", w, h, &px);
    // Sixteen light picture buttons beside the form, every glyph drawn.
    let (gx, _, n) = blob(&px, w, PICTURE_BG).expect("the grid is drawn");
    assert!(gx > w as f32 / 2.0, "the grid is on the right");
    assert!(n > 16 * 60 * 60, "grid size {n}");
    assert!(ui.missing_glyphs().is_empty(), "{:?}", ui.missing_glyphs());
    // The name field has focus when the screen opens.
    typed(&mut ui, "amy.ngx");
    ui.key(Key::Backspace, Modifiers::default(), None);
    for emoji in ["🐸", "🍌", "🚀", "🐶", "⭐"] {
        let at = centre_of(&mut ui, emoji);
        assert_eq!(click(&mut ui, at), None, "a tap answers nothing");
    }
    // The fifth tap is not taken; Undo takes the fourth back.
    let undo = centre_of(&mut ui, "Undo");
    click(&mut ui, undo);
    let px = ui.render().to_vec();
    save("sign-in-picked-1024x768", w, h, &px);
    // The pictures tapped show as dots, never as pictures.
    let dots = ui.texts().iter().filter(|t| t.text == "●").count();
    assert_eq!(dots, 3);
    assert_eq!(
        ui.key(Key::Enter, Modifiers::default(), None),
        Some(Answer::SignIn {
            name: "amy.ng".into(),
            secret: Secret::Pictures(vec![2, 9, 14]),
        })
    );
    // Refused: the name stays, the pictures go, the reason shows.
    ui.set_surface(Surface::SignIn {
        school: "Hill School".into(),
        pictures: grid(),
        error: Some("That user name and password do not match.".into()),
        schools: vec![],
    });
    let px = ui.render().to_vec();
    save("sign-in-refused-1024x768", w, h, &px);
    assert!(ui
        .texts()
        .iter()
        .any(|t| t.text.starts_with("That user name")));
    assert_eq!(
        ui.key(Key::Enter, Modifiers::default(), None),
        Some(Answer::SignIn {
            name: "amy.ng".into(),
            secret: Secret::Pictures(vec![]),
        })
    );
}

#[test]
fn sign_in_takes_a_text_password_instead() {
    let (w, h) = (1920, 1080);
    let mut ui = StudentUi::new(surfaces()[6].1.clone(), w, h, 1.0);
    ui.render();
    typed(&mut ui, "ben.w");
    let switch = centre_of(&mut ui, "Use a text password instead");
    assert_eq!(click(&mut ui, switch), None);
    let px = ui.render().to_vec();
    assert_eq!(share(&px, PICTURE_BG), 0.0, "no grid with a text password");
    // The password field has the focus now.
    typed(&mut ui, "pässwörd🙂");
    // Layout-aware text wins over the key's own character.
    ui.key(
        Key::Char('2'),
        Modifiers {
            shift: true,
            ..Default::default()
        },
        Some("\""),
    );
    let px = ui.render().to_vec();
    save("sign-in-text-1920x1080", w, h, &px);
    // The password is hidden: no letter of it is laid out as text.
    assert!(!ui.texts().iter().any(|t| t.text.contains("pässwörd")));
    let (x, y, _) = blob(&px, w, [40, 110, 200]).expect("Sign in button drawn");
    assert_eq!(
        click(&mut ui, (x, y)),
        Some(Answer::SignIn {
            name: "ben.w".into(),
            secret: Secret::Text("pässwörd🙂\"".into()),
        })
    );
    // The click took the focus; Tab gives it to the name, Shift+Tab from
    // the password goes back there too. Left + Delete edit in place, and
    // Ctrl+A is a shortcut (select all), not an "a".
    ui.key(Key::Tab, Modifiers::default(), None);
    ui.key(Key::Tab, Modifiers::default(), None);
    ui.key(
        Key::Tab,
        Modifiers {
            shift: true,
            ..Default::default()
        },
        None,
    );
    ui.key(Key::Left, Modifiers::default(), None);
    ui.key(Key::Delete, Modifiers::default(), None);
    ui.key(
        Key::Char('a'),
        Modifiers {
            ctrl: true,
            ..Default::default()
        },
        None,
    );
    let Some(Answer::SignIn { name, .. }) = ui.key(Key::Enter, Modifiers::default(), None) else {
        panic!("no sign-in")
    };
    assert_eq!(name, "ben.");
    // Back to pictures: the grid returns.
    let back = centre_of(&mut ui, "Use my pictures instead");
    click(&mut ui, back);
    assert!(share(ui.render(), PICTURE_BG) > 0.01);
    // Other surfaces ignore typing and keep no text.
    ui.set_surface(surfaces()[0].1.clone());
    assert_eq!(ui.key(Key::Char('x'), Modifiers::default(), None), None);
    assert_eq!(ui.key(Key::Enter, Modifiers::default(), None), None);
}

#[test]
fn every_script_reaches_the_screen() {
    let families = fonts::families();
    let has = |f: &str| families.iter().any(|n| n == f);
    let (w, h) = (1280, 720);
    let render = |text: &str| {
        let surface = Surface::Lock {
            school: "Hill School".into(),
            text: Some(text.into()),
        };
        StudentUi::new(surface, w, h, 1.0).render().to_vec()
    };
    let bg = SURFACE_COLOURS.lock;
    // Private-use code points have no glyph in any font: what they leave
    // (empty boxes) is what a missing font would look like.
    let missing = render("\u{E000}\u{E001}\u{E002}\u{E003}\u{E004}\u{E005}");
    for (script, sample, font) in [
        ("cjk", "漢字かなカナ한글", "Noto Sans CJK SC"),
        ("arabic", "مرحبا بالعالم", "Noto Sans Arabic"),
        ("hebrew", "שלום עולם", "Noto Sans Hebrew"),
        ("latin", "Ça été naïve", "DejaVu Sans"),
    ] {
        if !has(font) {
            eprintln!("{font} not installed: {script} not checked");
            continue;
        }
        let px = render(sample);
        save(&format!("script-{script}"), w, h, &px);
        let n = ink(&px, w, 0, h, bg);
        assert!(n > 1_000, "{script}: {n} ink pixels");
        assert_ne!(px, missing, "{script} drawn as missing glyphs");
    }
    if has("Noto Color Emoji") {
        let px = render("😀😀😀");
        save("script-emoji", w, h, &px);
        // Yellow faces: the emoji came out in colour, not as white outlines.
        let yellow = px
            .chunks(4)
            .filter(|p| p[2] > 200 && p[1] > 120 && p[0] < 90)
            .count();
        assert!(yellow > 500, "emoji in colour: {yellow} yellow pixels");
    }
}

#[test]
fn broadcast_title_bar_rows_are_the_bar() {
    let (w, h) = (1920, 1080);
    let mut ui = StudentUi::new(surfaces()[5].1.clone(), w, h, 1.0);
    let rows = ui.title_bar_rows();
    assert_eq!(rows, 84); // 56 design pixels at 1.5×
    let px = ui.render().to_vec();
    assert_eq!(at(&px, w, w - 5, rows - 2), [20, 20, 24]);
    assert_eq!(at(&px, w, w - 5, rows + 1), SURFACE_COLOURS.broadcast);
}

#[test]
fn register_takes_the_typed_code() {
    let (w, h) = (1024, 768);
    let mut ui = StudentUi::new(Surface::Register { error: None }, w, h, 1.0);
    ui.render();
    // The code field has focus when the form opens; Tab stays in it.
    typed(&mut ui, " 7kq2m-xh4pdd");
    ui.key(Key::Backspace, Modifiers::default(), None);
    assert_eq!(ui.key(Key::Tab, Modifiers::default(), None), None);
    let px = ui.render().to_vec();
    save("register-typed-1024x768", w, h, &px);
    assert_eq!(
        ui.key(Key::Enter, Modifiers::default(), None),
        Some(Answer::Register {
            code: "7kq2m-xh4pd".into()
        })
    );
    // Refused: the reason shows and what was typed stays to correct.
    ui.set_surface(Surface::Register {
        error: Some("The server refused the school code.".into()),
    });
    let texts: Vec<String> = ui.texts().into_iter().map(|t| t.text).collect();
    assert!(
        texts
            .iter()
            .any(|t| t == "The server refused the school code."),
        "{texts:?}"
    );
    let px = ui.render().to_vec();
    save("register-refused-1024x768", w, h, &px);
    let (x, y, _) = blob(&px, w, [40, 110, 200]).expect("Register button drawn");
    assert_eq!(
        click(&mut ui, (x, y)),
        Some(Answer::Register {
            code: "7kq2m-xh4pd".into()
        })
    );
}

#[test]
fn the_sign_in_offers_the_other_schools_and_a_choice_answers_with_its_name() {
    let (w, h) = (1280, 720);
    let mut ui = StudentUi::new(
        Surface::SignIn {
            school: "Hill School".into(),
            pictures: grid(),
            error: None,
            schools: vec!["Oak Academy".into(), "Ysgol y Môr 🌊".into()],
        },
        w,
        h,
        1.0,
    );
    let px = ui.render().to_vec();
    save("sign-in-schools-1280x720", w, h, &px);
    assert!(ui.missing_glyphs().is_empty(), "{:?}", ui.missing_glyphs());
    let at = centre_of(&mut ui, "Ysgol y Môr 🌊");
    assert_eq!(
        click(&mut ui, at),
        Some(Answer::SwitchSchool {
            school: "Ysgol y Môr 🌊".into()
        })
    );
    // Without schools to offer, there is nothing to press.
    ui.set_surface(Surface::SignIn {
        school: "Hill School".into(),
        pictures: grid(),
        error: None,
        schools: vec![],
    });
    assert!(!ui.texts().iter().any(|t| t.text == "Oak Academy"));
    assert!(!ui.texts().iter().any(|t| t.text == "Another school?"));
}

#[test]
fn the_sign_in_fits_small_screens_with_a_reason_and_other_schools_shown() {
    for (w, h) in [(1280, 720), (1024, 768), (1366, 768)] {
        let mut ui = StudentUi::new(
            Surface::SignIn {
                school: "Ysgol Gymraeg Gŵyr — Primary".into(),
                pictures: grid(),
                error: Some(
                    "That user name and password do not match. Try again, or ask your teacher."
                        .into(),
                ),
                schools: vec![
                    "St Mary's Catholic Primary School".into(),
                    "Oak Academy".into(),
                ],
            },
            w,
            h,
            1.0,
        );
        let px = ui.render().to_vec();
        save(&format!("sign-in-refused-{w}x{h}"), w, h, &px);
        for t in ui.texts() {
            assert!(
                t.x >= 0.0 && t.y >= 0.0 && t.x + t.width <= w as f32 && t.y + t.height <= h as f32,
                "{w}x{h}: {:?} is off the screen at ({}, {})",
                t.text,
                t.x,
                t.y
            );
        }
    }
}

#[test]
fn the_sign_out_widget_fits_its_strip_and_answers_sign_out() {
    let h = 40;
    let w = (h as f32 * lectern_student_ui::SIGN_OUT_BUTTON_WIDTH) as u32;
    let mut ui = StudentUi::new(Surface::SignOutButton, w, h, 1.0);
    let px = ui.render().to_vec();
    save("sign-out-button-strip", w, h, &px);
    let label = ui
        .texts()
        .into_iter()
        .find(|t| t.text == "Sign out")
        .expect("the label is drawn");
    assert!(
        label.x >= 0.0 && label.x + label.width <= w as f32,
        "{label:?}"
    );
    let at = centre_of(&mut ui, "Sign out");
    assert_eq!(click(&mut ui, at), Some(Answer::SignOut));
}
