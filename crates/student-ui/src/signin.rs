//! Student sign-in on a shared computer: the student's user name, then
//! either their picture password (3 or 4 pictures tapped on a 4 × 4 grid,
//! for children who cannot yet type a password) or a text password. The
//! pictures tapped so far show as dots, never as pictures, so a neighbour
//! cannot read them off the screen; "Undo" takes the last one back.
//!
//! The grid is the caller's (the agent passes `lectern_proto::signin`'s):
//! this crate knows nothing of the protocol, only what to draw.

use iced_graphics::core::alignment::Horizontal;
use iced_graphics::core::{Background, Border, Color, Length};
use iced_widget::{button, column, container, row, text_input, Column, Row, Space};

use crate::logo::Logo;
use crate::style::{colour, page, paragraph, rgb, size, solid, space, words};
use crate::view::{Element, Fields, Msg};

/// Id of the user-name field (focused when the screen opens).
pub(crate) const NAME_FIELD: &str = "lectern-student-name";
/// Id of the text-password field.
pub(crate) const SECRET_FIELD: &str = "lectern-student-password";

/// Most pictures a picture password has (the grid stops taking taps then).
pub const MAX_PICTURES: usize = 4;

/// Background of a picture button, RGB (light, so colour emoji read well on
/// the dark sign-in blue; tests look for it).
pub const PICTURE_BG: [u8; 3] = [236, 240, 250];

/// One picture of the grid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Picture {
    /// What is drawn (an emoji).
    pub emoji: String,
    /// Its name, written under it (what a teacher reads out).
    pub name: String,
}

/// What the student signs in with, as typed or tapped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Secret {
    /// The pictures tapped, as indexes into the grid, in order.
    Pictures(Vec<u8>),
    /// A text password, as typed.
    Text(String),
}

/// Columns of the picture grid.
const COLUMNS: usize = 4;
/// A picture button's side, in design pixels.
const CELL: f32 = 120.0;
const CELL_GAP: f32 = 14.0;

/// The widget tree of the sign-in screen.
pub(crate) fn view<'a>(
    u: f32,
    school: &'a str,
    pictures: &'a [Picture],
    error: Option<&'a str>,
    schools: &'a [String],
    fields: &'a Fields,
    logo: Option<&Logo>,
) -> Element<'a> {
    let text_mode = fields.text_mode || pictures.is_empty();
    let mut left = column![]
        .spacing(space::GAP * 0.5 * u)
        .width(520.0 * u)
        .align_x(Horizontal::Left);
    if let Some(b) = crate::view::logo_box(u, logo) {
        left = left.push(b);
    }
    if !school.is_empty() {
        left = left.push(paragraph(school, size::SMALL * u, colour::SOFT));
    }
    left = left
        .push(words("Sign in", 56.0 * u, [255, 255, 255]))
        .push(input(
            u,
            "Your user name",
            NAME_FIELD,
            &fields.name,
            false,
            Msg::StudentName,
        ));
    left = if text_mode {
        left.push(input(
            u,
            "Your password",
            SECRET_FIELD,
            &fields.password,
            true,
            Msg::Password,
        ))
    } else {
        left.push(picked_row(u, fields.picked.len()))
    };
    if let Some(e) = error {
        left = left.push(paragraph(e, size::SMALL * 0.9 * u, colour::ALERT));
    }
    left = left.push(solid(
        "Sign in",
        size::BUTTON * 0.8 * u,
        colour::GO,
        (520.0 * u, 80.0 * u),
        Msg::SignIn,
    ));
    if !pictures.is_empty() {
        let other = if text_mode {
            "Use my pictures instead"
        } else {
            "Use a text password instead"
        };
        left = left.push(solid(
            other,
            size::SMALL * 0.8 * u,
            colour::NEUTRAL,
            (520.0 * u, 52.0 * u),
            Msg::SwitchSecret,
        ));
    }
    if !schools.is_empty() {
        left = left.push(other_schools(u, schools));
    }
    let mut all = row![left]
        .spacing(80.0 * u)
        .align_y(iced_graphics::core::alignment::Vertical::Center);
    if !text_mode {
        all = all.push(grid(u, pictures, fields.picked.len() < MAX_PICTURES));
    }
    page(all, colour::LOCK)
}

/// "Another school?" and a button for each school the student may switch
/// to, each as wide as its name, on as few lines of the form's width as
/// they fit (one, for the handful of schools a device holds); a name too
/// long for a line gets a line of its own, its text shrunk to fit.
fn other_schools<'a>(u: f32, schools: &'a [String]) -> Element<'a> {
    const FORM: f32 = 520.0;
    const GAP: f32 = 10.0;
    const PAD: f32 = 32.0;
    let text = size::SMALL * 0.7;
    let label = "Another school?";
    let mut lines = Column::new().spacing(GAP * u);
    let mut line = Row::new()
        .spacing(GAP * u)
        .align_y(iced_graphics::core::alignment::Vertical::Center)
        .push(words(label, size::SMALL * 0.8 * u, colour::SOFT));
    let mut used = crate::style::line_width(label, size::SMALL * 0.8) + GAP;
    for (i, name) in schools.iter().enumerate() {
        let width = (crate::style::line_width(name, text) + PAD).min(FORM);
        if used + width > FORM {
            lines = lines.push(line);
            line = Row::new().spacing(GAP * u);
            used = 0.0;
        }
        let fit = crate::style::fit_one_line(name, text, width - PAD);
        line = line.push(solid(
            name,
            fit * u,
            colour::NEUTRAL,
            (width * u, 44.0 * u),
            Msg::SwitchSchool(i),
        ));
        used += width + GAP;
    }
    lines.push(line).into()
}

/// A labelled text field; Enter in it signs in.
fn input<'a>(
    u: f32,
    label: &'a str,
    id: &'static str,
    value: &'a str,
    secure: bool,
    on_input: fn(String) -> Msg,
) -> Element<'a> {
    let field = text_input("", value)
        .id(id)
        .secure(secure)
        .on_input(on_input)
        .on_submit(Msg::SignIn)
        .size(34.0 * u)
        .padding(14.0 * u)
        .width(Length::Fill);
    column![words(label, size::SMALL * u, colour::SOFT), field]
        .spacing(8.0 * u)
        .into()
}

/// "Pictures", a dot for each tapped (up to four places), and Undo, on
/// one line.
fn picked_row<'a>(u: f32, picked: usize) -> Element<'a> {
    let mut line = Row::new()
        .spacing(12.0 * u)
        .align_y(iced_graphics::core::alignment::Vertical::Center)
        .push(words("Pictures", size::SMALL * u, colour::SOFT));
    for i in 0..MAX_PICTURES {
        let (mark, c) = if i < picked {
            ("●", [255, 255, 255])
        } else {
            ("○", colour::LOCK_FRAME)
        };
        line = line.push(words(mark, 40.0 * u, c));
    }
    let undo = solid(
        "Undo",
        size::SMALL * 0.8 * u,
        colour::NEUTRAL,
        (140.0 * u, 52.0 * u),
        Msg::UndoPicture,
    );
    line.push(Space::new().width(Length::Fill))
        .push(undo)
        .into()
}

/// The 4 × 4 grid; a full password (four tapped) greys it out.
fn grid<'a>(u: f32, pictures: &'a [Picture], open: bool) -> Element<'a> {
    let mut rows = Column::new().spacing(CELL_GAP * u).push(words(
        "Tap your 3 or 4 pictures, in order",
        size::SMALL * u,
        colour::SOFT,
    ));
    for chunk in pictures.chunks(COLUMNS).enumerate() {
        let (r, cells) = chunk;
        let mut line = Row::new().spacing(CELL_GAP * u);
        for (c, p) in cells.iter().enumerate() {
            let index = (r * COLUMNS + c) as u8;
            line = line.push(picture_button(u, p, open.then_some(Msg::Pick(index))));
        }
        rows = rows.push(line);
    }
    rows.into()
}

fn picture_button<'a>(u: f32, p: &'a Picture, msg: Option<Msg>) -> Element<'a> {
    let face = column![
        words(p.emoji.as_str(), 56.0 * u, colour::INK),
        words(p.name.as_str(), 18.0 * u, colour::INK_SOFT),
    ]
    .spacing(2.0 * u)
    .align_x(Horizontal::Center);
    let bg = rgb(PICTURE_BG);
    button(container(face).center(Length::Fill))
        .width(CELL * u)
        .height(CELL * u)
        .padding(0)
        .on_press_maybe(msg)
        .style(move |_, status| {
            let shade = match status {
                button::Status::Hovered => 0.88,
                button::Status::Pressed => 0.75,
                button::Status::Disabled => 0.6,
                button::Status::Active => 1.0,
            };
            button::Style {
                background: Some(Background::Color(Color::from_rgb(
                    bg.r * shade,
                    bg.g * shade,
                    bg.b * shade,
                ))),
                text_color: Color::BLACK,
                border: Border::default().rounded(CELL * u / 8.0),
                ..button::Style::default()
            }
        })
        .into()
}
