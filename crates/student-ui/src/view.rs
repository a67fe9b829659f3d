//! What each surface shows, as iced widgets, in the shared look of
//! [`crate::style`]: sizes are design pixels of a 1280×720 layout scaled by
//! how much of that the window has (`u`).

use crate::logo::Logo;
use crate::style::{self, centred, colour, frame, page, paragraph, rgb, size, solid, space, words};
use crate::Surface;
use iced_graphics::core::alignment::Horizontal;
use iced_graphics::core::text::Wrapping;
use iced_graphics::core::{Element as CoreElement, Length, Theme};
use iced_tiny_skia::Renderer;
use iced_widget::{column, container, row, text_input, Space};

/// An element of a student surface.
pub(crate) type Element<'a> = CoreElement<'a, Msg, Theme, Renderer>;

/// What the widgets report.
#[derive(Debug, Clone)]
pub(crate) enum Msg {
    Ok,
    Allow,
    Deny,
    Code(String),
    Password(String),
    SignIn,
    Register,
    HandOpen,
    ChatOpen,
    SignOut,
    Note(String),
    HandSend,
    HandWithdraw,
    Close,
    ChatInput(String),
    ChatSend,
    AcceptAup,
    StudentName(String),
    Pick(u8),
    UndoPicture,
    SwitchSecret,
    /// One of the other schools on the sign-in screen, by index.
    SwitchSchool(usize),
}

/// Id of the registration form's school-code field (focused when it
/// opens).
pub(crate) const CODE_FIELD: &str = "lectern-school-code";
/// Id of the empty box the school's logo is drawn into after the widgets.
pub(crate) const LOGO_BOX: &str = "lectern-school-logo";

const WHITE: [u8; 3] = [255, 255, 255];

/// What was typed or tapped into a form so far.
#[derive(Debug, Default, Clone)]
pub(crate) struct Fields {
    pub code: String,
    pub password: String,
    pub note: String,
    pub chat: String,
    /// The sign-in's user name.
    pub name: String,
    /// The sign-in's pictures tapped, in order.
    pub picked: Vec<u8>,
    /// The sign-in takes a text password instead of pictures.
    pub text_mode: bool,
}

/// The widget tree for `surface` in a window of `w`×`h` logical pixels.
pub(crate) fn view<'a>(
    surface: &'a Surface,
    fields: &'a Fields,
    logo: Option<&Logo>,
    w: f32,
    h: f32,
) -> Element<'a> {
    let u = unit(w, h);
    match surface {
        Surface::Lock { school, text } => lock(u, school, text.as_deref(), logo),
        Surface::Message { from, text } => message(u, w, from.as_deref(), text),
        Surface::Question {
            teacher,
            seconds_left,
        } => question(u, teacher, *seconds_left),
        Surface::Broadcast { title } => broadcast(u, w, title),
        Surface::SignIn {
            school,
            pictures,
            error,
            schools,
        } => crate::signin::view(u, school, pictures, error.as_deref(), schools, fields, logo),
        Surface::Register { error } => register(u, error.as_deref(), fields),
        Surface::Controlled { teacher } => controlled(w, h, teacher),
        Surface::HandButton { raised, signed_in } => {
            crate::requests::hand_button(h, *raised, *signed_in)
        }
        Surface::SignOutButton => crate::requests::sign_out_button(h),
        Surface::Request { raised, status } => {
            crate::requests::request(u, *raised, status.as_deref(), fields)
        }
        Surface::Chat { lines, status } => {
            crate::requests::chat(u, lines, status.as_deref(), fields)
        }
        Surface::AcceptableUse {
            school,
            title,
            version,
            text,
        } => crate::aup::view(u, h, school, title, *version, text),
    }
}

/// The text field a surface focuses when it opens, if it has one.
pub(crate) fn first_field(surface: &Surface) -> Option<&'static str> {
    match surface {
        Surface::SignIn { .. } => Some(crate::signin::NAME_FIELD),
        Surface::Register { .. } => Some(CODE_FIELD),
        Surface::Request { raised: false, .. } => Some(crate::requests::NOTE_FIELD),
        Surface::Chat { .. } => Some(crate::requests::CHAT_FIELD),
        _ => None,
    }
}

pub(crate) use style::unit;

/// Height of the broadcast title bar, in design pixels.
pub(crate) const TITLE_BAR: f32 = 56.0;

/// Tallest the logo is drawn, in design pixels, and widest.
const LOGO_H: f32 = 140.0;
const LOGO_W: f32 = 420.0;

/// An empty box the size the logo is drawn at (its aspect kept), centred in
/// its line; nothing when there is no logo.
pub(crate) fn logo_box<'a>(u: f32, logo: Option<&Logo>) -> Option<Element<'a>> {
    let logo = logo?;
    let (lw, lh) = (logo.width() as f32, logo.height() as f32);
    let k = (LOGO_H * u / lh).min(LOGO_W * u / lw);
    let inner = container(Space::new().width(lw * k).height(lh * k)).id(LOGO_BOX);
    Some(container(inner).center_x(Length::Fill).into())
}

fn lock<'a>(u: f32, school: &'a str, note: Option<&'a str>, logo: Option<&Logo>) -> Element<'a> {
    let mut col = column![]
        .spacing(space::GAP * u)
        .max_width(space::COLUMN * u);
    if let Some(b) = logo_box(u, logo) {
        col = col.push(b);
    }
    if !school.is_empty() {
        col = col.push(centred(school, size::SUBTITLE * u, colour::SOFT));
    }
    col = col.push(centred(
        "This computer is locked",
        size::HEADLINE * u,
        WHITE,
    ));
    if let Some(t) = note.filter(|t| !t.trim().is_empty()) {
        let note = centred(t, size::BODY * u, WHITE);
        col = col.push(frame(note, colour::LOCK_FRAME, 28.0 * u));
    }
    page(col, colour::LOCK)
}

fn message<'a>(u: f32, w: f32, from: Option<&'a str>, body: &'a str) -> Element<'a> {
    let title = match from {
        Some(name) => format!("Message from {name}"),
        None => "Message from your teacher".to_owned(),
    };
    let size = style::fit_one_line(&title, size::HEADER * u, w - 2.0 * space::PAD * u);
    let header = container(words(title, size, WHITE).wrapping(Wrapping::None))
        .padding([0.0, space::PAD * u])
        .center_y(100.0 * u)
        .width(Length::Fill)
        .clip(true)
        .style(|_| container::Style::default().background(rgb(colour::MESSAGE_HEADER)));
    // Long messages get a smaller font so more of them fits above the button.
    let size = if body.chars().count() > 160 {
        40.0
    } else {
        52.0
    } * u;
    let text_area = container(paragraph(body, size, [0, 0, 0]))
        .padding([40.0 * u, 50.0 * u])
        .width(Length::Fill)
        .height(Length::Fill)
        .clip(true);
    let ok = solid(
        "OK",
        56.0 * u,
        colour::NEUTRAL,
        (240.0 * u, 110.0 * u),
        Msg::Ok,
    );
    let footer = row![Space::new().width(Length::Fill), ok].padding([0.0, 60.0 * u]);
    let col = column![header, text_area, footer, Space::new().height(50.0 * u)];
    page(col, colour::MESSAGE)
}

fn question<'a>(u: f32, teacher: &'a str, seconds_left: u32) -> Element<'a> {
    let col = column![
        paragraph(
            format!("{teacher} wants to see your screen"),
            72.0 * u,
            colour::INK
        ),
        words(
            format!("If you do not answer within {seconds_left} s, your school's setting decides."),
            32.0 * u,
            colour::INK_SOFT
        ),
        row![
            solid(
                "Allow",
                96.0 * u,
                colour::YES,
                (520.0 * u, 200.0 * u),
                Msg::Allow
            ),
            solid(
                "Deny",
                96.0 * u,
                colour::NO,
                (520.0 * u, 200.0 * u),
                Msg::Deny
            ),
        ]
        .spacing(80.0 * u),
    ]
    .spacing(30.0 * u)
    .max_width(1120.0 * u);
    page(col, colour::QUESTION)
}

fn broadcast<'a>(u: f32, w: f32, title: &'a str) -> Element<'a> {
    let title = format!("Broadcast: {title}");
    let size = style::fit_one_line(&title, 32.0 * u, w - 32.0 * u);
    let bar = container(words(title, size, WHITE).wrapping(Wrapping::None))
        .padding([0.0, 16.0 * u])
        .center_y(TITLE_BAR * u)
        .width(Length::Fill)
        .clip(true)
        .style(|_| container::Style::default().background(rgb(colour::BAR)));
    let waiting = container(words("Waiting for the picture…", 40.0 * u, [200, 200, 200]))
        .center(Length::Fill);
    let col = column![bar, waiting];
    page(col, colour::BROADCAST)
}

/// The remote-control notice: one line, sized by the strip's height (not
/// the 1280×720 design, which a strip does not resemble).
fn controlled<'a>(w: f32, h: f32, teacher: &'a str) -> Element<'a> {
    let line = format!("{teacher} is controlling this computer");
    let size = style::fit_one_line(&line, (h * 0.5).max(8.0), w - h);
    container(words(line, size, WHITE).wrapping(Wrapping::None))
        .center(Length::Fill)
        .style(|_| container::Style::default().background(rgb(colour::WARNING)))
        .into()
}

fn field<'a>(
    u: f32,
    label: &'a str,
    id: &'static str,
    value: &'a str,
    secure: bool,
    on_input: fn(String) -> Msg,
) -> Element<'a> {
    let input = text_input("", value)
        .id(id)
        .secure(secure)
        .on_input(on_input)
        .on_submit(Msg::SignIn)
        .size(36.0 * u)
        .padding(16.0 * u)
        .width(640.0 * u);
    column![words(label, 32.0 * u, colour::SOFT), input]
        .spacing(10.0 * u)
        .into()
}

fn register<'a>(u: f32, error: Option<&'a str>, fields: &'a Fields) -> Element<'a> {
    let mut col = column![]
        .spacing(space::GAP * u)
        .width(760.0 * u)
        .align_x(Horizontal::Left)
        .push(words("Register this computer", 64.0 * u, WHITE))
        .push(paragraph(
            "Type the school code your school’s IT team gave you: ten letters and digits, like 7KQ2M-XH4PD.",
            32.0 * u,
            colour::SOFT,
        ))
        .push(field(
            u,
            "School code",
            CODE_FIELD,
            &fields.code,
            false,
            Msg::Code,
        ));
    if let Some(e) = error {
        col = col.push(paragraph(e, 30.0 * u, colour::ALERT));
    }
    let col = col.push(solid(
        "Register",
        40.0 * u,
        colour::GO,
        (760.0 * u, 90.0 * u),
        Msg::Register,
    ));
    page(col, colour::LOCK)
}
