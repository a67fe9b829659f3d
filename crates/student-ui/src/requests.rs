//! The student's own requests: the small corner widget (raise a hand, open
//! the chat), the raise-hand form with an optional note, and the chat
//! (history and an input line).

use iced_graphics::core::text::{Shaping, Wrapping};
use iced_graphics::core::{Background, Border, Color, Length};
use iced_widget::{button, column, container, row, text, text_input, Column, Space};

use crate::style::{page, paragraph, rgb, solid, words};
use crate::view::{Element, Fields, Msg};

/// Id of the raise-hand form's note field (focused when it opens).
pub(crate) const NOTE_FIELD: &str = "lectern-hand-note";
/// Id of the chat's input field (focused when it opens).
pub(crate) const CHAT_FIELD: &str = "lectern-chat-input";

/// Background of the request surfaces, RGB.
pub const REQUEST_BG: [u8; 3] = [236, 242, 250];
/// Background of the corner widget, RGB.
pub const HAND_BUTTON_BG: [u8; 3] = [30, 60, 120];

/// Most chat lines a chat surface shows (the newest).
pub const CHAT_LINES_SHOWN: usize = 8;

/// One line of the chat as the student sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatEntry {
    /// Written by this student (shown on the right, "You").
    pub mine: bool,
    /// Who wrote it.
    pub author: String,
    /// What they wrote.
    pub text: String,
}

const DARK: [u8; 3] = [20, 26, 41];
const BLUE: [u8; 3] = [40, 90, 170];
const GREY: [u8; 3] = [90, 96, 110];
const SIGN_OUT: [u8; 3] = [150, 40, 60];

/// How wide the corner widget is, in multiples of its height: two buttons,
/// or three with "Sign out".
pub fn hand_button_width(signed_in: bool) -> f32 {
    if signed_in {
        10.6
    } else {
        7.5
    }
}

/// The corner widget: two buttons (three with a student signed in), sized
/// by the strip's height (not the 1280×720 design, which a strip does not
/// resemble).
pub(crate) fn hand_button<'a>(h: f32, raised: bool, signed_in: bool) -> Element<'a> {
    let size = (h * 0.4).max(8.0);
    let bh = (h * 0.78).max(12.0);
    let hand = if raised {
        "✋ Hand raised"
    } else {
        "✋ Raise hand"
    };
    let bg = if raised { [200, 110, 20] } else { BLUE };
    let mut r = row![
        small_button(hand, size, rgb(bg), h * 4.5, bh, Msg::HandOpen),
        small_button("💬 Chat", size, rgb(GREY), h * 2.6, bh, Msg::ChatOpen),
    ]
    .spacing(h * 0.15);
    if signed_in {
        r = r.push(small_button(
            "Sign out",
            size,
            rgb(SIGN_OUT),
            h * 2.9,
            bh,
            Msg::SignOut,
        ));
    }
    page(r, HAND_BUTTON_BG)
}

/// Width of [`Surface::SignOutButton`](crate::Surface::SignOutButton), in
/// heights: its one button and the strip's margins.
pub const SIGN_OUT_BUTTON_WIDTH: f32 = 3.3;

/// The sign-out widget: the corner widget's "Sign out" alone.
pub(crate) fn sign_out_button<'a>(h: f32) -> Element<'a> {
    let size = (h * 0.4).max(8.0);
    let bh = (h * 0.78).max(12.0);
    let b = small_button("Sign out", size, rgb(SIGN_OUT), h * 2.9, bh, Msg::SignOut);
    page(row![b], HAND_BUTTON_BG)
}

/// A button for the corner widget: one line, no padding, label centred.
fn small_button<'a>(label: &'a str, size: f32, bg: Color, w: f32, h: f32, msg: Msg) -> Element<'a> {
    let label = text(label)
        .size(size)
        .color(Color::WHITE)
        .shaping(Shaping::Advanced)
        .wrapping(Wrapping::None);
    button(container(label).center(Length::Fill))
        .width(w)
        .height(h)
        .padding(0)
        .on_press(msg)
        .style(move |_, status| {
            let shade = match status {
                button::Status::Hovered => 0.88,
                button::Status::Pressed => 0.75,
                _ => 1.0,
            };
            button::Style {
                background: Some(Background::Color(Color::from_rgb(
                    bg.r * shade,
                    bg.g * shade,
                    bg.b * shade,
                ))),
                text_color: Color::WHITE,
                border: Border::default().rounded(h / 6.0),
                ..button::Style::default()
            }
        })
        .into()
}

/// A header line for a request surface.
fn header<'a>(u: f32, title: &'a str) -> Element<'a> {
    container(
        text(title)
            .size(44.0 * u)
            .color(Color::WHITE)
            .shaping(Shaping::Advanced),
    )
    .padding([0.0, 40.0 * u])
    .center_y(96.0 * u)
    .width(Length::Fill)
    .style(|_| container::Style::default().background(rgb([30, 60, 120])))
    .into()
}

fn status_line<'a>(u: f32, status: Option<&'a str>) -> Element<'a> {
    match status {
        Some(s) => words(s, 30.0 * u, [170, 30, 30]).into(),
        None => Space::new().height(30.0 * u).into(),
    }
}

/// The raise-hand form: a note and Send / Cancel, or, with the hand raised,
/// Withdraw / Close.
pub(crate) fn request<'a>(
    u: f32,
    raised: bool,
    status: Option<&'a str>,
    fields: &'a Fields,
) -> Element<'a> {
    let body: Element<'a> = if raised {
        column![
            words(
                "Your hand is raised. Your teacher has been told.",
                44.0 * u,
                DARK
            ),
            status_line(u, status),
            row![
                Space::new().width(Length::Fill),
                solid(
                    "Withdraw",
                    40.0 * u,
                    [180, 60, 40],
                    (300.0 * u, 96.0 * u),
                    Msg::HandWithdraw
                ),
                solid("Close", 40.0 * u, GREY, (240.0 * u, 96.0 * u), Msg::Close),
            ]
            .spacing(30.0 * u),
        ]
        .spacing(30.0 * u)
        .into()
    } else {
        let input = text_input("What do you need help with? (optional)", &fields.note)
            .id(NOTE_FIELD)
            .on_input(Msg::Note)
            .on_submit(Msg::HandSend)
            .size(36.0 * u)
            .padding(16.0 * u)
            .width(Length::Fill);
        column![
            words("Ask your teacher for help", 44.0 * u, DARK),
            input,
            status_line(u, status),
            row![
                Space::new().width(Length::Fill),
                solid("Send", 40.0 * u, BLUE, (240.0 * u, 96.0 * u), Msg::HandSend),
                solid("Cancel", 40.0 * u, GREY, (240.0 * u, 96.0 * u), Msg::Close),
            ]
            .spacing(30.0 * u),
        ]
        .spacing(24.0 * u)
        .into()
    };
    let col = column![
        header(u, "Raise your hand"),
        container(body).padding([36.0 * u, 40.0 * u]),
        Space::new().height(Length::Fill),
    ];
    page(col, REQUEST_BG)
}

/// The chat: the newest lines, an input line, Send and Close.
pub(crate) fn chat<'a>(
    u: f32,
    lines: &'a [ChatEntry],
    status: Option<&'a str>,
    fields: &'a Fields,
) -> Element<'a> {
    let start = lines.len().saturating_sub(CHAT_LINES_SHOWN);
    let mut history = Column::new().spacing(12.0 * u).width(Length::Fill);
    if lines.is_empty() {
        history = history.push(words("No messages yet.", 30.0 * u, GREY));
    }
    for l in &lines[start..] {
        let who = if l.mine { "You" } else { l.author.as_str() };
        let colour = if l.mine {
            rgb([20, 100, 50])
        } else {
            rgb(BLUE)
        };
        history = history.push(
            column![
                text(who)
                    .size(24.0 * u)
                    .color(colour)
                    .shaping(Shaping::Advanced),
                paragraph(l.text.as_str(), 32.0 * u, DARK),
            ]
            .spacing(2.0 * u),
        );
    }
    let history = container(history)
        .padding([16.0 * u, 40.0 * u])
        .width(Length::Fill)
        .height(Length::Fill)
        .align_bottom(Length::Fill)
        .clip(true);
    let input = text_input("Write a message", &fields.chat)
        .id(CHAT_FIELD)
        .on_input(Msg::ChatInput)
        .on_submit(Msg::ChatSend)
        .size(32.0 * u)
        .padding(14.0 * u)
        .width(Length::Fill);
    let bar = row![
        input,
        solid("Send", 36.0 * u, BLUE, (200.0 * u, 80.0 * u), Msg::ChatSend),
        solid("Close", 36.0 * u, GREY, (200.0 * u, 80.0 * u), Msg::Close),
    ]
    .spacing(20.0 * u)
    .padding([0.0, 40.0 * u]);
    let col = column![
        header(u, "Chat with your teacher"),
        history,
        container(status_line(u, status)).padding([0.0, 40.0 * u]),
        bar,
        Space::new().height(30.0 * u),
    ];
    page(col, REQUEST_BG)
}
