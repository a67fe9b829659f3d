//! Every surface a student sees — the lock screen, a teacher's message, the
//! remote-view question, the broadcast screen and the sign-in form — drawn
//! with a real UI toolkit into a pixel buffer, with pointer and keyboard
//! input, and no window-system code at all. Each platform backend (X11,
//! Windows) makes its own window (override-redirect or topmost, with its
//! keyboard grab or hook), blits [`StudentUi::render`]'s pixels and forwards
//! input through [`StudentUi::pointer_moved`], [`StudentUi::pointer_button`]
//! and [`StudentUi::key`]; so both platforms show the same pixels.
//!
//! # Why iced (and not Slint)
//!
//! Both can run headless: iced through its renderer-agnostic runtime
//! (`iced_runtime::UserInterface`, driven here by our own events) with the
//! `iced_tiny_skia` software renderer drawing into a `tiny_skia` pixmap;
//! Slint through a custom platform with `MinimalSoftwareWindow` and its
//! `SoftwareRenderer`. Neither needs winit or a GPU when set up this way.
//! iced won on the points that matter here:
//!
//! * **Text.** iced lays text out with cosmic-text: HarfBuzz-grade shaping
//!   (harfrust), bidirectional text (Arabic, Hebrew), per-script font
//!   fallback across the system's fonts (CJK, …) and colour emoji (swash
//!   renders CBDT/COLR glyphs; the tiny-skia renderer blits them in colour).
//!   Slint's software renderer rasterises glyphs to alpha-only coverage maps
//!   (its `GlyphAlphaMap`), so colour emoji cannot appear there, and its
//!   fallback is coarser.
//! * **Licence.** iced and its whole tree are MIT/Apache/OFL. Slint is
//!   `GPL-3.0-only OR` its own royalty-free/commercial licences; GPL-3.0-only
//!   may be combined with our AGPL-3.0-or-later, but it would pin the combined
//!   work to version 3 and adds a licence to track.
//! * **Build.** This crate's tree is 95 crates (110 lines of `cargo tree`
//!   on Linux, 98 for Windows), with no build-time UI compiler (Slint
//!   compiles `.slint` markup at build time, a large extra build on 2
//!   cores). A clean debug build of this crate took 1 min 48 s on the
//!   shared 2-core machine (`cargo build -p lectern-student-ui -j2` into an
//!   empty target directory, other builds running beside it).
//! * **Input.** Both have text inputs with selection, secure (password)
//!   mode, focus traversal and IME hooks; iced's widgets are plain Rust, so
//!   the sign-in and chat forms later are ordinary code.
//! * **Maintenance.** Both are active (iced 0.14, late 2025; Slint 1.x
//!   monthly). iced's API moves between minor versions, which is the price:
//!   it is pinned to 0.14 and wrapped by this small API, so backends never
//!   see it.
//!
//! # Pixels
//!
//! [`StudentUi::render`] returns `width × height` pixels, row-major, 4 bytes
//! each in memory order B, G, R, A (A = 255), stride `width * 4`: what an X11
//! `ZPixmap` of depth 24/32 and a Windows 32-bit top-down DIB take as is.
//!
//! # Fonts
//!
//! See [`fonts`]: system fonts, one embedded Latin face, and
//! [`fonts::add_font_dir`] / [`fonts::add_font_data`] for a backend that
//! knows better (a bare Wine prefix has almost none).

mod aup;
mod check;
pub mod fonts;
mod input;
pub mod logo;
mod requests;
mod signin;
pub mod style;
mod view;
pub mod wrap;

pub use aup::AUP_PANEL;
pub use check::{MissingGlyph, ShownText};
pub use input::{Key, Modifiers};
pub use logo::{Logo, LogoError};
pub use requests::{
    hand_button_width, ChatEntry, CHAT_LINES_SHOWN, HAND_BUTTON_BG, REQUEST_BG,
    SIGN_OUT_BUTTON_WIDTH,
};
pub use signin::{Picture, Secret, MAX_PICTURES, PICTURE_BG};

use iced_graphics::core::clipboard;
use iced_graphics::core::mouse;
use iced_graphics::core::renderer::Style;
use iced_graphics::core::time::Instant;
use iced_graphics::core::widget::operation::{focusable, Outcome};
use iced_graphics::core::widget::Operation;
use iced_graphics::core::{window, Color, Event, Font, Pixels, Point, Rectangle, Size, Theme};
use iced_graphics::Viewport;
use iced_runtime::user_interface::{Cache, UserInterface};
use iced_tiny_skia::Renderer;
use view::{Fields, Msg};

/// What the student is shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Surface {
    /// The screen is locked by a teacher; `text` is the teacher's note.
    Lock {
        /// The school's name.
        school: String,
        /// What the teacher wrote on the lock screen, if anything.
        text: Option<String>,
    },
    /// A message from a teacher, with an OK button.
    Message {
        /// Who sent it (`None`: "your teacher").
        from: Option<String>,
        /// The message.
        text: String,
    },
    /// A teacher asks to see the screen: Allow or Deny.
    Question {
        /// The teacher's name.
        teacher: String,
        /// Seconds before no answer counts as Deny (shown to the student).
        seconds_left: u32,
    },
    /// A teacher's screen is being shown; this is the screen before the
    /// first picture, with the title bar across the top.
    Broadcast {
        /// The broadcast's title (usually the teacher's name).
        title: String,
    },
    /// A teacher controls the mouse and keyboard: a strip along the top
    /// edge saying who (the window over it must let input through).
    Controlled {
        /// The teacher's name.
        teacher: String,
    },
    /// A student signs in on a shared computer: their user name, then
    /// their picture password (tapped on the grid) or a text password.
    SignIn {
        /// The school's name.
        school: String,
        /// The picture grid, in order (4 per row); empty: text passwords
        /// only.
        pictures: Vec<Picture>,
        /// Why the last try was refused, if it was.
        error: Option<String>,
        /// Other schools this computer is registered with that the student
        /// may switch to (empty: none offered).
        schools: Vec<String>,
    },
    /// Register this computer with a school: one field for the school's
    /// code, shown by the agent when it has neither a token nor a code.
    Register {
        /// Why the code typed before was refused, if it was.
        error: Option<String>,
    },
    /// The small corner widget: "Raise hand" (or "Hand raised") and "Chat".
    HandButton {
        /// The student's hand is raised.
        raised: bool,
        /// A student signed in on this shared computer: a third button
        /// signs them out.
        signed_in: bool,
    },
    /// The corner widget of a platform without raise-hand and chat (the
    /// Windows agent): one "Sign out" button while a student is signed in
    /// on a shared computer, so the next person is not taken for them.
    SignOutButton,
    /// The raise-hand form: a note and Send / Cancel; with the hand raised,
    /// Withdraw / Close.
    Request {
        /// The student's hand is raised.
        raised: bool,
        /// A line for the student (e.g. why the server refused).
        status: Option<String>,
    },
    /// The chat with the teacher: the newest lines and an input line.
    Chat {
        /// The conversation so far, oldest first.
        lines: Vec<ChatEntry>,
        /// A line for the student (e.g. why the server refused).
        status: Option<String>,
    },
    /// The school's acceptable use policy, covering the screen, with its
    /// text scrolling and an "I accept" button.
    AcceptableUse {
        /// The school's name.
        school: String,
        /// The policy's title.
        title: String,
        /// Its version number.
        version: i64,
        /// Its text, paragraphs separated by blank lines.
        text: String,
    },
}

/// The student's answer to a surface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// The message was acknowledged (OK, Enter or Escape).
    Dismissed,
    /// The student allowed the remote view.
    Allowed,
    /// The student denied it (Deny or Escape).
    Denied,
    /// The registration form was submitted (button or Enter) with this
    /// code (trimmed; the agent checks its form).
    Register {
        /// What was typed.
        code: String,
    },
    /// The sign-in form was submitted (button or Enter).
    SignIn {
        /// The user name typed (trimmed).
        name: String,
        /// The pictures tapped or the password typed.
        secret: Secret,
    },
    /// The student chose another school on the sign-in screen.
    SwitchSchool {
        /// Its name, one of [`Surface::SignIn`]'s `schools`.
        school: String,
    },
    /// The corner widget's "Raise hand" was pressed.
    OpenRequest,
    /// The corner widget's "Chat" was pressed.
    OpenChat,
    /// The corner widget's "Sign out" was pressed (a student signed in on
    /// a shared computer).
    SignOut,
    /// The raise-hand form was sent (Send or Enter) with this note (trimmed).
    RaiseHand {
        /// The note, maybe empty.
        note: String,
    },
    /// The student withdrew their raised hand.
    LowerHand,
    /// A chat message was sent (Send or Enter); the input is cleared.
    SendChat {
        /// The text, trimmed and not empty.
        text: String,
    },
    /// The request or chat surface was closed (Close, Cancel or Escape).
    Close,
    /// The student accepted the acceptable use policy ("I accept" or Enter).
    AcceptAup,
}

/// Background colours of the surfaces, RGB; tests and thumbnails look for them.
#[derive(Debug, Clone, Copy)]
pub struct Colours {
    /// Lock screen and sign-in.
    pub lock: [u8; 3],
    /// Message window.
    pub message: [u8; 3],
    /// Remote-view question.
    pub question: [u8; 3],
    /// Broadcast screen.
    pub broadcast: [u8; 3],
}

/// The colours of today's surfaces, kept so screenshots still match.
pub const SURFACE_COLOURS: Colours = Colours {
    lock: style::colour::LOCK,
    message: style::colour::MESSAGE,
    question: style::colour::QUESTION,
    broadcast: style::colour::BROADCAST,
};

/// Background of the remote-control notice ([`Surface::Controlled`]): a
/// warning orange that stands out on any desktop.
pub const CONTROLLED_BG: [u8; 3] = style::colour::WARNING;

/// One student surface: its state, its widgets' state and its pixels. One per
/// window (so one per monitor for the lock screen). It is not `Send` (iced
/// keeps widget state as `dyn Any`): make it on the thread that runs the
/// window. The fonts are shared by all of them.
pub struct StudentUi {
    surface: Surface,
    fields: Fields,
    /// The school's logo, shown on the lock and sign-in screens.
    logo: Option<Logo>,
    width: u32,
    height: u32,
    scale: f32,
    cursor: Point,
    renderer: Renderer,
    cache: Option<Cache>,
    /// The text field to focus at the next event: a fresh form's first
    /// field, or the sign-in's field after a tap took the focus away.
    focus: Option<&'static str>,
    pixels: Vec<u8>,
    mask: tiny_skia::Mask,
}

impl StudentUi {
    /// A surface `width`×`height` physical pixels (each at least 1) drawn at
    /// `scale` physical pixels per logical pixel (the monitor's DPI factor;
    /// 1.0 when unknown).
    pub fn new(surface: Surface, width: u32, height: u32, scale: f32) -> Self {
        fonts::init();
        let (width, height) = (width.max(1), height.max(1));
        let mut ui = StudentUi {
            focus: view::first_field(&surface),
            surface,
            fields: Fields::default(),
            logo: None,
            width,
            height,
            scale: sane_scale(scale),
            cursor: Point::new(-1.0, -1.0),
            renderer: Renderer::new(Font::DEFAULT, Pixels(16.0)),
            cache: None,
            pixels: Vec::new(),
            mask: mask(width, height),
        };
        ui.pixels = vec![0; ui.len()];
        ui
    }

    fn len(&self) -> usize {
        self.width as usize * self.height as usize * 4
    }

    /// The window's new size (and scale); layout follows at the next render.
    pub fn resize(&mut self, width: u32, height: u32, scale: f32) {
        (self.width, self.height) = (width.max(1), height.max(1));
        self.scale = sane_scale(scale);
        self.pixels = vec![0; self.len()];
        self.mask = mask(self.width, self.height);
        self.cache = None;
    }

    /// Shows `surface` instead. Text typed into a sign-in form stays when the
    /// new surface is a sign-in form too.
    pub fn set_surface(&mut self, surface: Surface) {
        // A form that only changes (a status line, a new chat line) keeps
        // what the student typed and its focus.
        let same_form = view::first_field(&surface).is_some()
            && std::mem::discriminant(&self.surface) == std::mem::discriminant(&surface);
        if !same_form {
            self.fields = Fields::default();
            self.cache = None;
            self.focus = view::first_field(&surface);
        }
        // A refused sign-in keeps the name and asks for the secret again.
        if let Surface::SignIn { error: Some(_), .. } = &surface {
            if self.surface != surface {
                self.fields.picked.clear();
                self.fields.password.clear();
            }
        }
        self.surface = surface;
    }

    /// Shows the school's logo (or none) on the lock and sign-in screens,
    /// above the school's name.
    pub fn set_logo(&mut self, logo: Option<Logo>) {
        if self.logo != logo {
            self.logo = logo;
            self.cache = None;
        }
    }

    /// Every text on the surface now and where it is laid out, in physical
    /// pixels, in drawing order.
    pub fn texts(&mut self) -> Vec<ShownText> {
        let scale = self.scale;
        let found = self.collect();
        found
            .texts
            .into_iter()
            .map(|(text, b)| ShownText {
                text,
                x: b.x * scale,
                y: b.y * scale,
                width: b.width * scale,
                height: b.height * scale,
            })
            .collect()
    }

    /// The characters of the surface's texts that no loaded font has a
    /// glyph for (they would show as empty boxes); empty when every one is
    /// drawn with a real glyph. Asks the same font system the surfaces draw
    /// with, so installing or adding fonts changes the answer.
    pub fn missing_glyphs(&mut self) -> Vec<MissingGlyph> {
        let found = self.collect();
        check::missing_glyphs(found.texts.iter().map(|(t, _)| t.as_str()))
    }

    /// Walks the laid-out widgets once, collecting their texts and the
    /// logo's box.
    fn collect(&mut self) -> check::Collect {
        let mut found = check::Collect::default();
        self.with_ui(|ui, renderer| ui.operate(renderer, &mut found));
        found
    }

    /// What is shown now.
    pub fn surface(&self) -> &Surface {
        &self.surface
    }

    /// The size in physical pixels.
    pub fn size(&self) -> (u32, u32) {
        (self.width, self.height)
    }

    /// How many rows at the top of [`Surface::Broadcast`]'s pixels are its
    /// title bar: a backend showing the teacher's frames keeps these rows
    /// over them.
    pub fn title_bar_rows(&self) -> u32 {
        let size = self.logical_size();
        let rows = view::TITLE_BAR * view::unit(size.width, size.height) * self.scale;
        (rows.round() as u32).min(self.height)
    }

    /// The pointer moved to physical pixel (`x`, `y`) of the surface.
    pub fn pointer_moved(&mut self, x: f32, y: f32) -> Option<Answer> {
        self.cursor = Point::new(x / self.scale, y / self.scale);
        let position = self.cursor;
        self.dispatch(&[Event::Mouse(mouse::Event::CursorMoved { position })])
    }

    /// The primary button went down (`pressed`) or up; a button answers
    /// when released over it, as everywhere else.
    pub fn pointer_button(&mut self, pressed: bool) -> Option<Answer> {
        let e = if pressed {
            mouse::Event::ButtonPressed(mouse::Button::Left)
        } else {
            mouse::Event::ButtonReleased(mouse::Button::Left)
        };
        self.dispatch(&[Event::Mouse(e)])
    }

    /// A key was pressed; `text` is what it typed in the student's layout
    /// (`None` for keys that type nothing). Enter and Escape answer where
    /// that makes sense: Enter or Escape dismiss a message, Escape denies
    /// the remote view (Enter does not allow it: a stray key must never
    /// share a screen), Enter submits the sign-in form and Tab moves
    /// between its fields.
    pub fn key(&mut self, key: Key, modifiers: Modifiers, text: Option<&str>) -> Option<Answer> {
        match (&self.surface, &key) {
            (Surface::Message { .. }, Key::Enter | Key::Escape) => Some(Answer::Dismissed),
            (Surface::Question { .. }, Key::Escape) => Some(Answer::Denied),
            (Surface::SignIn { .. }, Key::Enter) => Some(self.sign_in()),
            (Surface::SignIn { .. }, Key::Tab) => {
                self.move_focus(modifiers.shift);
                None
            }
            (Surface::SignIn { .. }, _) => {
                let e = input::key_press(&key, modifiers, text);
                self.dispatch(&[Event::Keyboard(e)])
            }
            (Surface::Register { .. }, Key::Enter) => Some(self.register()),
            (Surface::Register { .. }, Key::Tab) => None,
            (Surface::Register { .. }, _) => {
                let e = input::key_press(&key, modifiers, text);
                self.dispatch(&[Event::Keyboard(e)])
            }
            (Surface::AcceptableUse { .. }, Key::Enter) => Some(Answer::AcceptAup),
            (Surface::AcceptableUse { .. }, _) => {
                self.scroll_key(&key, text);
                None
            }
            (Surface::Request { .. } | Surface::Chat { .. }, Key::Escape) => Some(Answer::Close),
            (Surface::Request { .. } | Surface::Chat { .. }, _) => {
                let e = input::key_press(&key, modifiers, text);
                self.dispatch(&[Event::Keyboard(e)])
            }
            _ => None,
        }
    }

    /// Scrolls the policy's text for an arrow, Page Up/Down, Home, End or
    /// space.
    fn scroll_key(&mut self, key: &Key, text: Option<&str>) {
        let size = self.logical_size();
        let step = aup::STEP * view::unit(size.width, size.height);
        let page = size.height * 0.6;
        let space = matches!(key, Key::Char(' ')) || text == Some(" ");
        let mut op: Box<dyn Operation> = match key {
            Key::Down => Box::new(aup::by(step)),
            Key::Up => Box::new(aup::by(-step)),
            Key::Home => Box::new(aup::to(false)),
            Key::End => Box::new(aup::to(true)),
            Key::PageUp => Box::new(aup::by(-page)),
            Key::PageDown => Box::new(aup::by(page)),
            _ if space => Box::new(aup::by(page)),
            _ => return,
        };
        self.with_ui(|ui, renderer| ui.operate(renderer, op.as_mut()));
    }

    /// The mouse wheel turned by `lines` notches (positive: towards the
    /// student, i.e. scroll down), over physical pixel (`x`, `y`).
    pub fn wheel(&mut self, x: f32, y: f32, lines: f32) -> Option<Answer> {
        self.cursor = Point::new(x / self.scale, y / self.scale);
        let delta = mouse::ScrollDelta::Lines { x: 0.0, y: -lines };
        self.dispatch(&[Event::Mouse(mouse::Event::WheelScrolled { delta })])
    }

    fn register(&self) -> Answer {
        Answer::Register {
            code: self.fields.code.trim().to_owned(),
        }
    }

    fn sign_in(&self) -> Answer {
        let pictures = match &self.surface {
            Surface::SignIn { pictures, .. } => !pictures.is_empty(),
            _ => false,
        };
        let secret = if self.fields.text_mode || !pictures {
            Secret::Text(self.fields.password.clone())
        } else {
            Secret::Pictures(self.fields.picked.clone())
        };
        Answer::SignIn {
            name: self.fields.name.trim().to_owned(),
            secret,
        }
    }

    fn logical_size(&self) -> Size {
        Size::new(
            self.width as f32 / self.scale,
            self.height as f32 / self.scale,
        )
    }

    /// Builds the widget tree, lets `f` work on it, and keeps its state.
    fn with_ui<T>(
        &mut self,
        f: impl FnOnce(&mut UserInterface<'_, Msg, Theme, Renderer>, &mut Renderer) -> T,
    ) -> T {
        let size = self.logical_size();
        let element = view::view(
            &self.surface,
            &self.fields,
            self.logo.as_ref(),
            size.width,
            size.height,
        );
        let cache = self.cache.take().unwrap_or_default();
        let mut ui = UserInterface::build(element, size, cache, &mut self.renderer);
        if let Some(id) = self.focus.take() {
            let mut focus = focusable::focus(id.into());
            ui.operate(&self.renderer, &mut focus);
        }
        let out = f(&mut ui, &mut self.renderer);
        self.cache = Some(ui.into_cache());
        out
    }

    /// Feeds `events` to the widgets and applies what they report.
    fn dispatch(&mut self, events: &[Event]) -> Option<Answer> {
        let cursor = mouse::Cursor::Available(self.cursor);
        let mut messages = Vec::new();
        self.with_ui(|ui, renderer| {
            ui.update(
                events,
                cursor,
                renderer,
                &mut clipboard::Null,
                &mut messages,
            );
        });
        let mut answer = None;
        for m in messages {
            answer = answer.or(self.apply(m));
        }
        answer
    }

    fn move_focus(&mut self, back: bool) {
        let op: Box<dyn Operation> = if back {
            Box::new(focusable::focus_previous::<()>())
        } else {
            Box::new(focusable::focus_next::<()>())
        };
        self.with_ui(|ui, renderer| run(ui, renderer, op));
    }

    fn apply(&mut self, msg: Msg) -> Option<Answer> {
        match msg {
            Msg::Ok => Some(Answer::Dismissed),
            Msg::Allow => Some(Answer::Allowed),
            Msg::Deny => Some(Answer::Denied),
            Msg::Code(s) => {
                self.fields.code = s;
                None
            }
            Msg::Password(s) => {
                self.fields.password = s;
                None
            }
            Msg::SignIn => Some(self.sign_in()),
            Msg::StudentName(s) => {
                self.fields.name = s;
                None
            }
            // A tap takes the focus from the name field; it goes back, so
            // a name typed after the pictures still lands there.
            Msg::Pick(i) => {
                if self.fields.picked.len() < MAX_PICTURES {
                    self.fields.picked.push(i);
                }
                self.focus = Some(signin::NAME_FIELD);
                None
            }
            Msg::UndoPicture => {
                self.fields.picked.pop();
                self.focus = Some(signin::NAME_FIELD);
                None
            }
            Msg::SwitchSchool(i) => match &self.surface {
                Surface::SignIn { schools, .. } => schools
                    .get(i)
                    .map(|s| Answer::SwitchSchool { school: s.clone() }),
                _ => None,
            },
            Msg::SwitchSecret => {
                self.fields.text_mode = !self.fields.text_mode;
                self.fields.picked.clear();
                self.fields.password.clear();
                self.focus = Some(if self.fields.text_mode {
                    signin::SECRET_FIELD
                } else {
                    signin::NAME_FIELD
                });
                None
            }
            Msg::Register => Some(self.register()),
            Msg::HandOpen => Some(Answer::OpenRequest),
            Msg::ChatOpen => Some(Answer::OpenChat),
            Msg::SignOut => Some(Answer::SignOut),
            Msg::Note(s) => {
                self.fields.note = s;
                None
            }
            Msg::HandSend => Some(Answer::RaiseHand {
                note: std::mem::take(&mut self.fields.note).trim().to_owned(),
            }),
            Msg::HandWithdraw => Some(Answer::LowerHand),
            Msg::Close => Some(Answer::Close),
            Msg::ChatInput(s) => {
                self.fields.chat = s;
                None
            }
            Msg::AcceptAup => Some(Answer::AcceptAup),
            Msg::ChatSend => {
                let text = self.fields.chat.trim().to_owned();
                if text.is_empty() {
                    return None;
                }
                self.fields.chat.clear();
                Some(Answer::SendChat { text })
            }
        }
    }

    /// Draws the surface and returns its pixels: `width × height`, row-major,
    /// B, G, R, A bytes (A = 255), stride `width * 4`.
    pub fn render(&mut self) -> &[u8] {
        let cursor = mouse::Cursor::Available(self.cursor);
        // Widgets settle their hover/focus look on a redraw request.
        let redraw = [Event::Window(
            window::Event::RedrawRequested(Instant::now()),
        )];
        let theme = Theme::Dark;
        let needs_logo = self.logo.is_some();
        let style = Style {
            text_color: Color::WHITE,
        };
        let mut ignored = Vec::new();
        let mut found = check::Collect::default();
        self.with_ui(|ui, renderer| {
            ui.update(
                &redraw,
                cursor,
                renderer,
                &mut clipboard::Null,
                &mut ignored,
            );
            ui.draw(renderer, &theme, &style, cursor);
            if needs_logo {
                ui.operate(renderer, &mut found);
            }
        });
        let viewport = Viewport::with_physical_size(Size::new(self.width, self.height), self.scale);
        let (w, h) = (self.width, self.height);
        let mut pixmap = tiny_skia::PixmapMut::from_bytes(&mut self.pixels, w, h)
            .expect("buffer is width*height*4 bytes");
        let all = [Rectangle::with_size(viewport.logical_size())];
        self.renderer
            .draw(&mut pixmap, &mut self.mask, &viewport, &all, Color::BLACK);
        if let (Some(logo), Some(place)) = (&self.logo, found.logo) {
            draw_logo(&mut pixmap, logo, place, self.scale);
        }
        &self.pixels
    }
}

/// Runs `op` and the operations it chains to (focus traversal first counts
/// the focusable widgets, then moves the focus), as iced's own shell does.
fn run(
    ui: &mut UserInterface<'_, Msg, Theme, Renderer>,
    renderer: &Renderer,
    mut op: Box<dyn Operation>,
) {
    loop {
        ui.operate(renderer, op.as_mut());
        match op.finish() {
            Outcome::Chain(next) => op = next,
            Outcome::None | Outcome::Some(()) => break,
        }
    }
}

/// Draws `logo` over the widgets, filling the box the layout kept for it
/// (`place`, logical pixels), smoothly scaled.
fn draw_logo(pixmap: &mut tiny_skia::PixmapMut<'_>, logo: &Logo, place: Rectangle, scale: f32) {
    let sx = place.width * scale / logo.width() as f32;
    let sy = place.height * scale / logo.height() as f32;
    let at = tiny_skia::Transform::from_scale(sx, sy)
        .post_translate((place.x * scale).round(), (place.y * scale).round());
    let paint = tiny_skia::PixmapPaint {
        quality: tiny_skia::FilterQuality::Bicubic,
        ..tiny_skia::PixmapPaint::default()
    };
    pixmap.draw_pixmap(0, 0, logo.pixmap(), &paint, at, None);
}

fn sane_scale(scale: f32) -> f32 {
    if scale.is_finite() {
        scale.clamp(0.25, 8.0)
    } else {
        1.0
    }
}

fn mask(width: u32, height: u32) -> tiny_skia::Mask {
    tiny_skia::Mask::new(width, height).expect("non-zero size")
}
