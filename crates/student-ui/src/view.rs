//! What each surface shows, as iced widgets. Sizes are the old 1280×720
//! layout's, scaled by how much of that the window has (`u`), so the lock
//! screen looks the same on a 4:3 projector and a 4K panel.

use crate::{Surface, SURFACE_COLOURS};
use iced_graphics::core::alignment::Horizontal;
use iced_graphics::core::text::{Shaping, Wrapping};
use iced_graphics::core::{Background, Border, Color, Element as CoreElement, Length, Theme};
use iced_tiny_skia::Renderer;
use iced_widget::{button, column, container, row, text, text_input, Space};

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
}

/// Id of the sign-in form's school-code field (focused when it opens).
pub(crate) const CODE_FIELD: &str = "lectern-school-code";
const PASSWORD_FIELD: &str = "lectern-password";

const WHITE: Color = Color::WHITE;

/// The text typed into the sign-in form so far.
#[derive(Debug, Default, Clone)]
pub(crate) struct Fields {
    pub code: String,
    pub password: String,
}

/// The widget tree for `surface` in a window of `w`×`h` logical pixels.
pub(crate) fn view<'a>(surface: &'a Surface, fields: &'a Fields, w: f32, h: f32) -> Element<'a> {
    let u = unit(w, h);
    match surface {
        Surface::Lock { school, text } => lock(u, school, text.as_deref()),
        Surface::Message { from, text } => message(u, from.as_deref(), text),
        Surface::Question {
            teacher,
            seconds_left,
        } => question(u, teacher, *seconds_left),
        Surface::Broadcast { title } => broadcast(u, title),
        Surface::SignIn { school } => sign_in(u, school, fields),
        Surface::Controlled { teacher } => controlled(h, teacher),
    }
}

/// How much of the 1280×720 design a `w`×`h` logical window holds.
pub(crate) fn unit(w: f32, h: f32) -> f32 {
    (w / 1280.0).min(h / 720.0).clamp(0.25, 4.0)
}

/// Height of the broadcast title bar, in design pixels.
pub(crate) const TITLE_BAR: f32 = 56.0;

fn rgb([r, g, b]: [u8; 3]) -> Color {
    Color::from_rgb8(r, g, b)
}

/// Text the student or teacher wrote: fully shaped (RTL, ligatures, emoji
/// sequences) and wrapped at word or, failing that, glyph boundaries.
fn words<'a>(s: &'a str, size: f32, colour: Color) -> iced_widget::Text<'a, Theme, Renderer> {
    text(s)
        .size(size)
        .color(colour)
        .shaping(Shaping::Advanced)
        .wrapping(Wrapping::WordOrGlyph)
}

/// `content` centred on a full window of `bg`.
fn page<'a>(content: impl Into<Element<'a>>, bg: Color) -> Element<'a> {
    container(content)
        .center(Length::Fill)
        .style(move |_| container::Style::default().background(bg))
        .into()
}

/// A filled button of a fixed size with its label centred.
fn solid<'a>(label: &'a str, size: f32, bg: Color, w: f32, h: f32, msg: Msg) -> Element<'a> {
    let radius = h / 8.0;
    button(container(words(label, size, WHITE)).center(Length::Fill))
        .width(w)
        .height(h)
        .on_press(msg)
        .style(move |_, status| {
            let shade = match status {
                button::Status::Hovered => 0.88,
                button::Status::Pressed => 0.75,
                _ => 1.0,
            };
            let c = Color::from_rgb(bg.r * shade, bg.g * shade, bg.b * shade);
            button::Style {
                background: Some(Background::Color(c)),
                text_color: WHITE,
                border: Border::default().rounded(radius),
                ..button::Style::default()
            }
        })
        .into()
}

fn lock<'a>(u: f32, school: &'a str, note: Option<&'a str>) -> Element<'a> {
    let mut col = column![
        words("This computer is locked", 88.0 * u, WHITE),
        words(school, 40.0 * u, rgb([200, 200, 255])),
    ]
    .spacing(28.0 * u)
    .max_width(1120.0 * u);
    if let Some(t) = note {
        col = col.push(words(t, 44.0 * u, WHITE));
    }
    page(col, rgb(SURFACE_COLOURS.lock))
}

fn message<'a>(u: f32, from: Option<&'a str>, body: &'a str) -> Element<'a> {
    let title = match from {
        Some(name) => format!("Message from {name}"),
        None => "Message from your teacher".to_owned(),
    };
    let header = container(
        text(title)
            .size(44.0 * u)
            .color(WHITE)
            .shaping(Shaping::Advanced),
    )
    .padding([0.0, 50.0 * u])
    .center_y(100.0 * u)
    .width(Length::Fill)
    .style(|_| container::Style::default().background(rgb([60, 40, 0])));
    // Long messages get a smaller font so more of them fits above the button.
    let size = if body.chars().count() > 160 {
        40.0
    } else {
        52.0
    } * u;
    let text_area = container(words(body, size, Color::BLACK))
        .padding([40.0 * u, 50.0 * u])
        .width(Length::Fill)
        .height(Length::Fill)
        .clip(true);
    let ok = solid(
        "OK",
        56.0 * u,
        rgb([60, 60, 80]),
        240.0 * u,
        110.0 * u,
        Msg::Ok,
    );
    let footer = row![Space::new().width(Length::Fill), ok].padding([0.0, 60.0 * u]);
    let col = column![header, text_area, footer, Space::new().height(50.0 * u)];
    page(col, rgb(SURFACE_COLOURS.message))
}

fn question<'a>(u: f32, teacher: &'a str, seconds_left: u32) -> Element<'a> {
    let dark = rgb([20, 20, 40]);
    let col = column![
        text(format!("{teacher} wants to see your screen"))
            .size(72.0 * u)
            .color(dark)
            .shaping(Shaping::Advanced)
            .wrapping(Wrapping::WordOrGlyph),
        text(format!(
            "If you do not answer within {seconds_left} s, your school's setting decides."
        ))
        .size(32.0 * u)
        .color(rgb([70, 70, 90])),
        row![
            solid(
                "Allow",
                96.0 * u,
                rgb([40, 140, 60]),
                520.0 * u,
                200.0 * u,
                Msg::Allow
            ),
            solid(
                "Deny",
                96.0 * u,
                rgb([180, 50, 50]),
                520.0 * u,
                200.0 * u,
                Msg::Deny
            ),
        ]
        .spacing(80.0 * u),
    ]
    .spacing(30.0 * u)
    .max_width(1120.0 * u);
    page(col, rgb(SURFACE_COLOURS.question))
}

fn broadcast<'a>(u: f32, title: &'a str) -> Element<'a> {
    let bar = container(
        text(format!("Broadcast: {title}"))
            .size(32.0 * u)
            .color(WHITE)
            .shaping(Shaping::Advanced),
    )
    .padding([0.0, 16.0 * u])
    .center_y(TITLE_BAR * u)
    .width(Length::Fill)
    .style(|_| container::Style::default().background(rgb([20, 20, 24])));
    let waiting = container(
        text("Waiting for the picture…")
            .size(40.0 * u)
            .color(rgb([200, 200, 200])),
    )
    .center(Length::Fill);
    let col = column![bar, waiting];
    page(col, rgb(SURFACE_COLOURS.broadcast))
}

/// The remote-control notice: one line, sized by the strip's height (not
/// the 1280×720 design, which a strip does not resemble).
fn controlled<'a>(h: f32, teacher: &'a str) -> Element<'a> {
    container(
        text(format!("{teacher} is controlling this computer"))
            .size((h * 0.5).max(8.0))
            .color(WHITE)
            .shaping(Shaping::Advanced)
            .wrapping(Wrapping::None),
    )
    .center(Length::Fill)
    .style(|_| container::Style::default().background(rgb(crate::CONTROLLED_BG)))
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
    column![words(label, 32.0 * u, rgb([200, 200, 255])), input]
        .spacing(10.0 * u)
        .into()
}

fn sign_in<'a>(u: f32, school: &'a str, fields: &'a Fields) -> Element<'a> {
    let col = column![
        words("Sign in", 72.0 * u, WHITE),
        words(school, 40.0 * u, rgb([200, 200, 255])),
        field(u, "School code", CODE_FIELD, &fields.code, false, Msg::Code),
        field(
            u,
            "Password",
            PASSWORD_FIELD,
            &fields.password,
            true,
            Msg::Password
        ),
        solid(
            "Sign in",
            40.0 * u,
            rgb([40, 110, 200]),
            640.0 * u,
            90.0 * u,
            Msg::SignIn
        ),
    ]
    .spacing(28.0 * u)
    .width(640.0 * u)
    .align_x(Horizontal::Left);
    page(col, rgb(SURFACE_COLOURS.lock))
}
