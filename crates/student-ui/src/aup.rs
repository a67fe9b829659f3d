//! The acceptable use policy: a full-screen surface the student must
//! accept before using the computer. The policy's text scrolls in a light
//! panel (pointer wheel, arrow keys, Page Up/Down, Home/End, space);
//! "I accept" (button or Enter) is the only way out.

use iced_graphics::core::widget::operation::scrollable::{scroll_by, scroll_to, AbsoluteOffset};
use iced_graphics::core::widget::Id;
use iced_graphics::core::Length;
use iced_widget::{column, container, row, scrollable, Space};

use crate::style::{centred, colour, page, paragraph, rgb, size, solid, space, words};
use crate::view::{Element, Msg};

/// Id of the scrollable text.
pub(crate) const TEXT_ID: &str = "lectern-aup-text";

/// Background of the text panel, RGB (light, so long text reads well).
pub const AUP_PANEL: [u8; 3] = [246, 246, 250];

/// How far one arrow key scrolls, in design pixels.
pub(crate) const STEP: f32 = 48.0;

/// The widget tree of the policy surface.
pub(crate) fn view<'a>(
    u: f32,
    h: f32,
    school: &'a str,
    title: &'a str,
    version: i64,
    text: &'a str,
) -> Element<'a> {
    let mut body = column![].spacing(space::GAP * 0.8 * u);
    for p in paragraphs_of(text) {
        body = body.push(paragraph(p, size::SMALL * u, colour::INK));
    }
    let panel = container(
        scrollable(
            container(body)
                .padding([24.0 * u, 36.0 * u])
                .width(Length::Fill),
        )
        .id(TEXT_ID)
        .height(Length::Fill),
    )
    .width(Length::Fill)
    .height(Length::Fill)
    .style(|_| container::Style::default().background(rgb(AUP_PANEL)));
    let mut head = column![].spacing(10.0 * u);
    if !school.is_empty() {
        head = head.push(centred(school, size::SMALL * u, colour::SOFT));
    }
    head = head
        .push(centred(title, size::HEADER * u, [255, 255, 255]))
        .push(centred(
            format!("Version {version}. Read it, then accept it to use this computer."),
            size::SMALL * 0.8 * u,
            colour::SOFT,
        ));
    let accept = solid(
        "I accept",
        size::BUTTON * u,
        colour::GO,
        (360.0 * u, 96.0 * u),
        Msg::AcceptAup,
    );
    let foot = row![
        words(
            "Scroll with the arrow keys or the mouse wheel; Enter accepts.",
            size::SMALL * 0.7 * u,
            colour::SOFT
        ),
        Space::new().width(Length::Fill),
        accept
    ]
    .spacing(space::GAP * u)
    .align_y(iced_graphics::core::alignment::Vertical::Center);
    let col = column![head, panel, foot]
        .spacing(space::GAP * u)
        .max_width(space::COLUMN * u)
        .height(h - 2.0 * space::PAD * u);
    page(
        container(col)
            .padding(space::PAD * u)
            .center_x(Length::Fill),
        colour::LOCK,
    )
}

/// The policy's paragraphs (blank lines separate them).
fn paragraphs_of(text: &str) -> Vec<&str> {
    text.split("\n\n")
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect()
}

/// Scrolls the text by `dy` logical pixels.
pub(crate) fn by(dy: f32) -> impl iced_graphics::core::widget::Operation<()> {
    scroll_by(Id::new(TEXT_ID), AbsoluteOffset { x: 0.0, y: dy })
}

/// Scrolls the text to its start (`end` false) or end.
pub(crate) fn to(end: bool) -> impl iced_graphics::core::widget::Operation<()> {
    let y = if end { f32::MAX / 4.0 } else { 0.0 };
    scroll_to(
        Id::new(TEXT_ID),
        AbsoluteOffset {
            x: None,
            y: Some(y),
        },
    )
}
