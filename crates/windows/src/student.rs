//! [`StudentUiPainter`]: the windows' surfaces drawn by `lectern-student-ui`
//! (iced's software renderer: real fonts, shaping, fallback per script and
//! colour emoji), so a Windows student sees the same pixels as a Linux one.

use std::path::PathBuf;
use std::sync::Once;

use lectern_student_ui::{fonts, Answer, Key, Logo, Modifiers, StudentUi, Surface as UiSurface};
use windows_sys::Win32::UI::Input::KeyboardAndMouse::{
    GetKeyState, VK_BACK, VK_CONTROL, VK_DELETE, VK_DOWN, VK_END, VK_ESCAPE, VK_HOME, VK_LEFT,
    VK_LWIN, VK_MENU, VK_NEXT, VK_PRIOR, VK_RETURN, VK_RIGHT, VK_RWIN, VK_SHIFT, VK_TAB, VK_UP,
};

use crate::paint::{fit_into, Surface, SurfaceAction, SurfaceInput, SurfacePainter};

/// An extra font folder for machines with few fonts (a bare Wine prefix):
/// every font file under it is added before the first surface is drawn. A
/// real Windows machine has Segoe UI and its fallbacks and needs none.
pub const FONT_DIR_ENV: &str = "LECTERN_FONT_DIR";

/// Paints one window's surfaces with a [`StudentUi`], made at the first
/// paint (on the window thread: it is not `Send`) and kept for the window's
/// life, so hover and press state carry from one input to the next.
#[derive(Default)]
pub struct StudentUiPainter {
    ui: Option<StudentUi>,
    /// The school's logo, given to the UI when it is made.
    logo: Option<Logo>,
    /// The monitor's DPI scale (1.0 until told).
    scale: Option<f32>,
}

impl StudentUiPainter {
    /// A painter with no surface yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// The UI showing `surface` at `width`×`height`, made or updated.
    fn ui(&mut self, surface: &Surface, width: u32, height: u32) -> &mut StudentUi {
        let wanted = to_ui(surface);
        let (width, height) = (width.max(1), height.max(1));
        let logo = &self.logo;
        let scale = self.scale.unwrap_or(1.0);
        let ui = self.ui.get_or_insert_with(|| {
            extra_fonts();
            let mut ui = StudentUi::new(wanted.clone(), width, height, scale);
            ui.set_logo(logo.clone());
            ui
        });
        if ui.size() != (width, height) {
            ui.resize(width, height, scale);
        }
        if *ui.surface() != wanted {
            ui.set_surface(wanted);
        }
        ui
    }
}

/// Adds the fonts under [`FONT_DIR_ENV`] once per process.
fn extra_fonts() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        if let Some(dir) = std::env::var_os(FONT_DIR_ENV) {
            fonts::add_font_dir(&PathBuf::from(dir));
        }
    });
}

/// The student-ui surface for a window's surface.
fn to_ui(surface: &Surface) -> UiSurface {
    match surface {
        Surface::Lock { school, text } => UiSurface::Lock {
            school: school.clone(),
            text: text.clone(),
        },
        Surface::Message { text } => UiSurface::Message {
            from: None,
            text: text.clone(),
        },
        Surface::Ask {
            teacher,
            seconds_left,
        } => UiSurface::Question {
            teacher: teacher.clone(),
            seconds_left: *seconds_left,
        },
        Surface::Broadcast { title, .. } => UiSurface::Broadcast {
            title: title.clone(),
        },
        Surface::Controlled { teacher } => UiSurface::Controlled {
            teacher: teacher.clone(),
        },
        Surface::SignOut => UiSurface::SignOutButton,
        Surface::Register { error } => UiSurface::Register {
            error: error.clone(),
        },
        Surface::SignIn {
            school,
            error,
            schools,
        } => UiSurface::SignIn {
            school: school.clone(),
            pictures: lectern_proto::signin::PICTURES
                .iter()
                .map(|(emoji, name)| lectern_student_ui::Picture {
                    emoji: (*emoji).to_owned(),
                    name: (*name).to_owned(),
                })
                .collect(),
            error: error.clone(),
            schools: schools.clone(),
        },
        Surface::AcceptableUse {
            school,
            title,
            version,
            text,
        } => UiSurface::AcceptableUse {
            school: school.clone(),
            title: title.clone(),
            version: *version,
            text: text.clone(),
        },
    }
}

fn action(answer: Answer) -> Option<SurfaceAction> {
    match answer {
        Answer::Dismissed => Some(SurfaceAction::Dismiss),
        Answer::Allowed => Some(SurfaceAction::Answer(true)),
        Answer::Denied => Some(SurfaceAction::Answer(false)),
        Answer::AcceptAup => Some(SurfaceAction::AcceptAup),
        Answer::SignIn { name, secret } => Some(SurfaceAction::SignIn {
            name,
            secret: match secret {
                lectern_student_ui::Secret::Pictures(picture) => {
                    lectern_proto::signin::StudentSecret::Picture { picture }
                }
                lectern_student_ui::Secret::Text(password) => {
                    lectern_proto::signin::StudentSecret::Text { password }
                }
            },
        }),
        Answer::Register { code } => Some(SurfaceAction::Register { code }),
        Answer::SwitchSchool { school } => Some(SurfaceAction::SwitchSchool { school }),
        Answer::SignOut => Some(SurfaceAction::SignOut),
        // No window shows the raise-hand widget or the chat on Windows yet.
        _ => None,
    }
}

/// The key of a virtual-key code; printable keys come as `WM_CHAR` instead.
fn key(vk: u16) -> Option<Key> {
    Some(match vk {
        VK_RETURN => Key::Enter,
        VK_ESCAPE => Key::Escape,
        VK_TAB => Key::Tab,
        VK_BACK => Key::Backspace,
        VK_DELETE => Key::Delete,
        VK_LEFT => Key::Left,
        VK_RIGHT => Key::Right,
        VK_UP => Key::Up,
        VK_DOWN => Key::Down,
        VK_HOME => Key::Home,
        VK_END => Key::End,
        VK_PRIOR => Key::PageUp,
        VK_NEXT => Key::PageDown,
        _ => return None,
    })
}

/// The modifier keys held now (for the message being handled).
fn modifiers() -> Modifiers {
    // SAFETY: reads this thread's keyboard state.
    let down = |vk: u16| unsafe { GetKeyState(i32::from(vk)) } < 0;
    Modifiers {
        shift: down(VK_SHIFT),
        ctrl: down(VK_CONTROL),
        alt: down(VK_MENU),
        logo: down(VK_LWIN) || down(VK_RWIN),
    }
}

/// Whether the pointer's look matters (buttons that shade on hover).
fn has_buttons(surface: &Surface) -> bool {
    matches!(
        surface,
        Surface::Message { .. }
            | Surface::Ask { .. }
            | Surface::AcceptableUse { .. }
            | Surface::SignIn { .. }
            | Surface::SignOut
            | Surface::Register { .. }
    )
}

impl SurfacePainter for StudentUiPainter {
    fn paint(&mut self, surface: &Surface, width: u32, height: u32) -> Vec<u8> {
        let ui = self.ui(surface, width, height);
        let top = ui.title_bar_rows();
        let (w, h) = ui.size();
        let mut out = ui.render().to_vec();
        if let Surface::Broadcast {
            frame: Some(frame), ..
        } = surface
        {
            fit_into(&mut out, w, h, top, frame);
        }
        out
    }

    fn input(
        &mut self,
        surface: &Surface,
        width: u32,
        height: u32,
        input: SurfaceInput,
    ) -> Option<SurfaceAction> {
        let buttons = has_buttons(surface);
        let ui = self.ui(surface, width, height);
        let answer = match input {
            SurfaceInput::PointerMove { x, y } => ui.pointer_moved(x as f32, y as f32),
            SurfaceInput::PointerDown { x, y } => {
                ui.pointer_moved(x as f32, y as f32);
                ui.pointer_button(true)
            }
            SurfaceInput::PointerUp { x, y } => {
                ui.pointer_moved(x as f32, y as f32);
                ui.pointer_button(false)
            }
            SurfaceInput::KeyDown(vk) => ui.key(key(vk)?, modifiers(), None),
            SurfaceInput::Char(c) if !c.is_control() => {
                let mut buf = [0u8; 4];
                let text: &str = c.encode_utf8(&mut buf);
                ui.key(Key::Char(c), modifiers(), Some(text))
            }
            // Windows counts the wheel away from the student as positive;
            // the UI counts notches towards them (scrolling down).
            SurfaceInput::Wheel { x, y, delta } => {
                ui.wheel(x as f32, y as f32, -(delta as f32) / 120.0);
                return Some(SurfaceAction::Redraw);
            }
            SurfaceInput::KeyUp(_) | SurfaceInput::Char(_) => None,
        };
        match answer {
            Some(a) => action(a),
            None if buttons => Some(SurfaceAction::Redraw),
            None => None,
        }
    }

    fn set_scale(&mut self, scale: f32) {
        if let Some(ui) = &mut self.ui {
            let (w, h) = ui.size();
            ui.resize(w, h, scale);
        }
        self.scale = Some(scale);
    }

    fn set_logo(&mut self, logo: Option<Logo>) {
        if let Some(ui) = &mut self.ui {
            ui.set_logo(logo.clone());
        }
        self.logo = logo;
    }
}
