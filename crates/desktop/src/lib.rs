//! The platform boundary of the Lectern agent.
//!
//! The agent core (`lectern-agent`) speaks to the machine only through the
//! [`Desktop`] trait defined here; each platform is a crate that implements it
//! (`lectern-x11` for Linux desktops, `lectern-windows` for Windows, and the
//! agent's own synthetic `HeadlessDesktop` for tests and the simulator). The
//! crate has no platform code and no I/O, so every backend and the core build
//! for every target.

mod desktop;
mod render;
mod requests;

pub use desktop::{
    apply_command, Changes, Desktop, DesktopError, Frame, InventorySource, TypedText, UserHome,
};
pub use render::{
    decode_jpeg, encode_jpeg, Canvas, Rgb, BROADCAST_BG, LOCK_BG, LOGICAL_H, LOGICAL_W,
    MAX_FRAME_PIXELS,
};
pub use requests::{SignInScreen, StudentNotice, StudentRequest};
