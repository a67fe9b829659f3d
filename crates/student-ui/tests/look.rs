//! The student surfaces' look (issue 13 point 1): every surface (the
//! raise-hand button and the request and chat dialogs at the sizes the X11
//! backend gives them) at three
//! screens (1024×768 and 1920×1080 at scale 1, 3840×2160 at scale 2) with
//! text in Latin with accents, Polish, Welsh, Arabic, CJK and emoji: no
//! glyph is missing, no text leaves the screen, and the school's logo is
//! drawn on the lock screen. Screenshots go to `target/student-ui-out/look-*`.
//!
//! Needs the Noto fonts (Debian: `apt-get install -y fonts-noto-core
//! fonts-noto-cjk fonts-noto-color-emoji`); the test says so when they are
//! missing instead of passing on boxes.

use lectern_student_ui::{fonts, ChatEntry, Logo, LogoError, StudentUi, Surface, SURFACE_COLOURS};
use std::path::PathBuf;

/// The screens every surface is checked on: width, height, scale.
const SCREENS: [(u32, u32, f32); 3] = [(1024, 768, 1.0), (1920, 1080, 1.0), (3840, 2160, 2.0)];

const LATIN: &str = "Déjà vu — 10 € ✓ · Zoë · Zażółć gęślą jaźń · Ŵŷ";
const ARABIC: &str = "مرحبا بالعالم";
const CJK: &str = "北京市第一中学 · 東京 · 서울";
const EMOJI: &str = "🔒😀👍🏽👩‍🏫";

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

/// Fails with the install line when the fonts these checks need are absent.
fn need_fonts() {
    let families = fonts::families();
    for want in ["Noto Sans", "Noto Sans CJK SC", "Noto Color Emoji"] {
        assert!(
            families.iter().any(|f| f == want),
            "font {want:?} is not installed; run: apt-get install -y fonts-noto-core \
             fonts-noto-cjk fonts-noto-color-emoji"
        );
    }
}

/// Every surface, each with every script in the texts it shows.
fn surfaces() -> Vec<(&'static str, Surface)> {
    let all = format!("{LATIN} · {ARABIC} · {CJK} · {EMOJI}");
    vec![
        (
            "lock",
            Surface::Lock {
                school: format!("Ysgol Gŵyr · {CJK}"),
                text: Some(all.clone()),
            },
        ),
        (
            "message",
            Surface::Message {
                from: Some("Zoë Müller".into()),
                text: all.clone(),
            },
        ),
        (
            "question",
            Surface::Question {
                teacher: format!("Zoë {ARABIC} {EMOJI}"),
                seconds_left: 30,
            },
        ),
        (
            "broadcast",
            Surface::Broadcast {
                title: format!("Zażółć {ARABIC} {CJK} {EMOJI}"),
            },
        ),
        (
            "controlled",
            Surface::Controlled {
                teacher: format!("Zoë {ARABIC} 東京 {EMOJI}"),
            },
        ),
        (
            "sign-in",
            Surface::SignIn {
                school: format!("Szkoła Zażółć · {ARABIC} · {CJK} {EMOJI}"),
                pictures: vec![lectern_student_ui::Picture {
                    emoji: "🐸".into(),
                    name: format!("{CJK} frog"),
                }],
                error: Some(format!("Zoë {ARABIC} {EMOJI}")),
                schools: vec![],
            },
        ),
        (
            "hand-button",
            Surface::HandButton {
                raised: true,
                signed_in: true,
            },
        ),
        ("sign-out-button", Surface::SignOutButton),
        (
            "request",
            Surface::Request {
                raised: false,
                status: Some(all.clone()),
            },
        ),
        (
            "chat",
            Surface::Chat {
                lines: vec![
                    ChatEntry {
                        mine: false,
                        author: format!("Zoë {ARABIC}"),
                        text: all.clone(),
                    },
                    ChatEntry {
                        mine: true,
                        author: "You".into(),
                        text: format!("{CJK} {EMOJI} {LATIN}"),
                    },
                ],
                status: Some(format!("{ARABIC} {EMOJI}")),
            },
        ),
        (
            "aup",
            Surface::AcceptableUse {
                school: format!("Ysgol Gŵyr · {CJK}"),
                title: format!("Zażółć {CJK} {EMOJI}"),
                version: 3,
                text: format!("{all}\n\n{LATIN}"),
            },
        ),
    ]
}

/// A `w`×`h` PNG, red with a white square in the middle and a transparent
/// border (so both the colour and the alpha path are drawn).
fn logo_png(w: u32, h: u32) -> Vec<u8> {
    let mut rgba = Vec::with_capacity((w * h * 4) as usize);
    for y in 0..h {
        for x in 0..w {
            let border = x < 2 || y < 2 || x >= w - 2 || y >= h - 2;
            let mid = (w / 3..2 * w / 3).contains(&x) && (h / 3..2 * h / 3).contains(&y);
            rgba.extend_from_slice(match (border, mid) {
                (true, _) => &[0, 0, 0, 0],
                (false, true) => &[255, 255, 255, 255],
                (false, false) => &[220, 30, 30, 255],
            });
        }
    }
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, w, h);
    enc.set_color(png::ColorType::Rgba);
    enc.set_depth(png::BitDepth::Eight);
    let mut writer = enc.write_header().expect("png header");
    writer.write_image_data(&rgba).expect("png data");
    drop(writer);
    out
}

fn is_logo_red(p: &[u8]) -> bool {
    // BGRA in memory.
    p[2] > 190 && p[1] < 70 && p[0] < 70
}

#[test]
fn every_surface_at_every_screen_has_all_glyphs_and_fits() {
    need_fonts();
    let logo = Logo::from_png(&logo_png(240, 120)).expect("logo");
    for (w, h, scale) in SCREENS {
        for (name, surface) in surfaces() {
            // The control notice is a strip along the top, as the backends
            // make it: 1/24 of the screen high, 18 times as wide.
            // The raise-hand button and the request and chat dialogs are
            // sized as the X11 backend sizes them (crates/x11 ui/requests.rs).
            let (w, h) = match surface {
                Surface::Controlled { .. } => {
                    (((h / 24).clamp(28, 64) * 18).min(w), (h / 24).clamp(28, 64))
                }
                Surface::HandButton { .. } => {
                    let bh = (h / 20).clamp(36, 80);
                    ((bh * 15 / 2).min(w), bh)
                }
                // As the Windows agent sizes it (crates/windows ui.rs).
                Surface::SignOutButton => {
                    let bh = (h / 20).clamp(36, 80);
                    (
                        (bh as f32 * lectern_student_ui::SIGN_OUT_BUTTON_WIDTH) as u32,
                        bh,
                    )
                }
                Surface::Request { .. } | Surface::Chat { .. } => {
                    let dw = (w / 2).clamp(w.min(480), 960);
                    (dw, (dw * 9 / 16).min(h))
                }
                _ => (w, h),
            };
            let mut ui = StudentUi::new(surface, w, h, scale);
            ui.set_logo(Some(logo.clone()));
            let missing = ui.missing_glyphs();
            assert!(missing.is_empty(), "{name} {w}x{h}: missing {missing:?}");
            let texts = ui.texts();
            assert!(!texts.is_empty(), "{name}: no text found");
            for t in &texts {
                let inside = t.x >= -0.5
                    && t.y >= -0.5
                    && t.x + t.width <= w as f32 + 0.5
                    && t.y + t.height <= h as f32 + 0.5;
                assert!(
                    inside,
                    "{name} {w}x{h}@{scale}: text leaves the screen: {t:?}"
                );
            }
            let px = ui.render().to_vec();
            save(&format!("look-{name}-{w}x{h}@{scale}"), w, h, &px);
            // One-line texts shrink to fit rather than run off an edge:
            // the first and last columns of the strip and title bar are
            // plain.
            let rows = match name {
                "controlled" => Some(h),
                "broadcast" => Some(ui.title_bar_rows() - 1),
                _ => None,
            };
            if let Some(rows) = rows {
                let bg = [px[2], px[1], px[0]];
                for y in 0..rows {
                    for x in [0, 1, 2, w - 3, w - 2, w - 1] {
                        let i = ((y * w + x) * 4) as usize;
                        assert_eq!(
                            [px[i + 2], px[i + 1], px[i]],
                            bg,
                            "{name} {w}x{h}: ink at the edge ({x}, {y})"
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn the_glyph_check_finds_what_no_font_has() {
    // U+0378 is unassigned: no font anywhere has a glyph for it.
    let surface = Surface::Lock {
        school: "Hill School".into(),
        text: Some("Zoë \u{378} ok".into()),
    };
    let mut ui = StudentUi::new(surface, 1280, 720, 1.0);
    let missing = ui.missing_glyphs();
    assert_eq!(missing.len(), 1, "{missing:?}");
    assert_eq!(missing[0].chars, "\u{378}");
    assert_eq!(missing[0].text, "Zoë \u{378} ok");
}

#[test]
fn lock_texts_are_laid_out_logo_school_headline_note() {
    let surface = Surface::Lock {
        school: "Hill School".into(),
        text: Some("Eyes to the front".into()),
    };
    let mut ui = StudentUi::new(surface, 1920, 1080, 1.0);
    ui.set_logo(Some(Logo::from_png(&logo_png(200, 100)).expect("logo")));
    let texts = ui.texts();
    let y = |s: &str| {
        texts
            .iter()
            .find(|t| t.text == s)
            .unwrap_or_else(|| panic!("{s} not shown: {texts:?}"))
            .y
    };
    assert!(y("Hill School") < y("This computer is locked"));
    assert!(y("This computer is locked") < y("Eyes to the front"));
    let px = ui.render().to_vec();
    save("look-lock-logo-1920x1080", 1920, 1080, &px);
    // The logo's red is drawn, centred, above the school's name.
    let w = 1920usize;
    let red: Vec<(usize, usize)> = px
        .chunks(4)
        .enumerate()
        .filter(|(_, p)| is_logo_red(p))
        .map(|(i, _)| (i % w, i / w))
        .collect();
    assert!(red.len() > 5_000, "logo drawn: {} red pixels", red.len());
    let bottom = red.iter().map(|p| p.1).max().unwrap_or(0) as f32;
    assert!(bottom < y("Hill School"), "logo above the school's name");
    let mid_x = red.iter().map(|p| p.0).sum::<usize>() as f32 / red.len() as f32;
    assert!((mid_x - 960.0).abs() < 20.0, "logo centred: {mid_x}");
    // And gone again without a logo.
    ui.set_logo(None);
    assert!(!ui.render().chunks(4).any(is_logo_red));
}

#[test]
fn bad_logos_are_refused_with_a_reason() {
    assert!(matches!(
        Logo::from_png(b"not a png"),
        Err(LogoError::NotPng(_))
    ));
    assert!(matches!(
        Logo::from_png(&logo_png(1100, 20)),
        Err(LogoError::BadSize {
            width: 1100,
            height: 20
        })
    ));
    assert_eq!(
        Logo::from_png(&vec![0; lectern_student_ui::logo::MAX_BYTES + 1]),
        Err(LogoError::TooLarge)
    );
    let ok = Logo::from_png(&logo_png(64, 32)).expect("a good logo");
    assert_eq!((ok.width(), ok.height()), (64, 32));
}

#[test]
fn lock_background_stays_the_lock_colour() {
    let surface = Surface::Lock {
        school: "Hill School".into(),
        text: None,
    };
    let mut ui = StudentUi::new(surface, 1024, 768, 1.0);
    let px = ui.render();
    let bg = SURFACE_COLOURS.lock;
    assert_eq!([px[2], px[1], px[0]], bg);
}
