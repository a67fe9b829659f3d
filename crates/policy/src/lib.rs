//! Lectern's pure rules: what a valid command looks like, which URLs a teacher may
//! send a class to, how hostname patterns match devices, the settings catalogue,
//! how groups' settings resolve by priority, and what console users may do.
//!
//! Nothing here does I/O, so the server (before sending) and the agent (before
//! acting) apply the same checks.
//!
//! ```
//! use lectern_policy::{validate_command, hostname_matches};
//! use lectern_proto::Command;
//! assert!(validate_command(&Command::LaunchUrl { url: "https://example.org".into() }).is_ok());
//! assert!(validate_command(&Command::LaunchUrl { url: "javascript:alert(1)".into() }).is_err());
//! assert!(hostname_matches("IT01*", "it01-pc07"));
//! ```

pub mod access;
mod commands;
pub mod delegation;
pub mod files;
pub mod groups;
pub mod kwpolicy;
pub mod safety;
pub mod settings;

pub use commands::*;
