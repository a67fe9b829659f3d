use serde::{Deserialize, Serialize};

/// A command a console user sends to one or more devices.
///
/// Serialized with a `type` tag, e.g. `{"type":"message","text":"Eyes up!"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Command {
    /// Show a message to the student until dismissed.
    Message {
        /// The teacher's text.
        text: String,
    },
    /// Open a website in the student's browser.
    LaunchUrl {
        /// An absolute `http` or `https` URL.
        url: String,
    },
    /// Lock the screen, optionally with a line of text for the student and
    /// for a limited time.
    Lock {
        /// Text shown on the lock screen.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        text: Option<String>,
        /// Unlock by itself after this many minutes (1 to
        /// [`MAX_LOCK_MINUTES`]), counted on the device, so it unlocks even if
        /// the server is unreachable by then. `None`: until unlocked.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        minutes: Option<u32>,
    },
    /// Remove the lock screen.
    Unlock,
    /// Take a teacher's message off the screen (the student need not dismiss it).
    ClearMessage,
    /// Block all web access.
    BlockInternet,
    /// Lift a web block.
    UnblockInternet,
    /// End the current user's session.
    Logout,
    /// Close one browser tab (ids from [`DeviceState::tabs`]).
    CloseTab {
        /// The browser's tab id.
        tab_id: i64,
    },
    /// "Eyes on me": close every browser tab but the school's home page.
    CloseAllTabs,
    /// A teacher's web lists for the device, over the policy's; `off` clears them.
    SetWebFilter {
        /// Allow-list or block-list mode, or off.
        mode: crate::WebFilterMode,
        /// Allowed domain patterns (allow-list mode).
        #[serde(default)]
        allow: Vec<String>,
        /// Blocked domain patterns (block-list mode).
        #[serde(default)]
        block: Vec<String>,
    },
    /// Shut down, restart or log off after a countdown the student sees
    /// (0 to [`crate::power::MAX_COUNTDOWN_SECS`] seconds; 0: at once).
    Power {
        /// What to do.
        action: crate::power::PowerAction,
        /// Seconds of countdown.
        #[serde(default = "default_countdown")]
        countdown_secs: u32,
    },
    /// Cancel a power action whose countdown is running.
    CancelPower,
    /// Invite the student to a video meeting: the link opens in the
    /// browser as a website would, so a device whose web access is blocked
    /// reports that it could not join.
    Meeting {
        /// An absolute `https` link to the meeting (Google Meet or any other).
        url: String,
    },
}

fn default_countdown() -> u32 {
    crate::power::DEFAULT_COUNTDOWN_SECS
}

impl Command {
    /// The command's `type` tag, as used in the API, the audit log and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Command::Message { .. } => "message",
            Command::LaunchUrl { .. } => "launch_url",
            Command::Lock { .. } => "lock",
            Command::Unlock => "unlock",
            Command::ClearMessage => "clear_message",
            Command::BlockInternet => "block_internet",
            Command::UnblockInternet => "unblock_internet",
            Command::Logout => "logout",
            Command::CloseTab { .. } => "close_tab",
            Command::CloseAllTabs => "close_all_tabs",
            Command::SetWebFilter { .. } => "set_web_filter",
            Command::Power { .. } => "power",
            Command::CancelPower => "cancel_power",
            Command::Meeting { .. } => "meeting",
        }
    }
}

impl Command {
    /// The capability a device must announce for the server to send it this
    /// command, where every agent announces it truthfully at hello time.
    /// `None`: the agent answers for itself (capabilities such as tabs and the
    /// web block follow the browser extension, which may connect later).
    pub fn required_capability(&self) -> Option<crate::Capability> {
        use crate::Capability as C;
        match self {
            Command::Message { .. } | Command::ClearMessage => Some(C::Message),
            Command::LaunchUrl { .. } | Command::Meeting { .. } => Some(C::LaunchUrl),
            Command::Lock { .. } | Command::Unlock => Some(C::Lock),
            Command::Logout => Some(C::Logout),
            Command::BlockInternet
            | Command::UnblockInternet
            | Command::CloseTab { .. }
            | Command::CloseAllTabs
            | Command::SetWebFilter { .. } => None,
            Command::Power { .. } | Command::CancelPower => Some(C::Power),
        }
    }
}

/// The longest timed lock, in minutes (a school day).
pub const MAX_LOCK_MINUTES: u32 = 600;

/// What an agent reports after running a command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case", deny_unknown_fields)]
pub enum CommandResult {
    /// The command took effect.
    Done,
    /// The command could not be carried out.
    Failed {
        /// Why, in words a teacher can act on.
        reason: String,
    },
}

/// The visible state of a device, shown on the teacher's tile.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct DeviceState {
    /// Logged-in user, if any.
    pub user: Option<String>,
    /// The screen is locked by a teacher.
    pub locked: bool,
    /// Web access is blocked.
    pub internet_blocked: bool,
    /// Application that has the focus.
    pub focused_app: Option<String>,
    /// Title of the focused window.
    pub window_title: Option<String>,
    /// Website open in the focused browser, if any.
    pub url: Option<String>,
    /// A teacher's message is on screen and not yet dismissed.
    pub message_shown: bool,
    /// A teacher's timed lock ends at this time (ms since the epoch, the
    /// device's clock); `None` when no timed lock holds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub locked_until: Option<i64>,
    /// Printing is disabled by policy.
    pub printing_disabled: bool,
    /// Removable media are disabled by policy.
    pub removable_media_disabled: bool,
    /// Sound is muted by policy.
    pub sound_muted: bool,
    /// Version of the policy in force.
    pub policy_version: u64,
    /// Policy settings this device cannot enforce (e.g. `printing_disabled`).
    pub unsupported: Vec<String>,
    /// A broadcast covers the screen.
    pub broadcast_shown: bool,
    /// Open browser tabs, as the Lectern extension reports them.
    pub tabs: Vec<Tab>,
    /// Whether the browser extension is talking to the agent.
    pub extension: ExtensionState,
}

/// One open browser tab.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Tab {
    /// The browser's tab id.
    pub id: i64,
    /// The browser's window id.
    pub window_id: i64,
    /// Page title.
    pub title: String,
    /// Page URL.
    pub url: String,
    /// The active tab of its window.
    pub active: bool,
}

/// The browser extension's link with the agent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExtensionState {
    /// Never heard from (no extension on this device, or not yet).
    #[default]
    Unknown,
    /// Talking to the agent.
    Connected,
    /// It was connected and stopped: disabled, removed or its browser closed.
    Disconnected,
}

/// What a student did, for the activity log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ActivityEvent {
    /// `web`, `app`, `login`, `logout`, `power_on`, `power_off`.
    pub kind: String,
    /// The user, when known.
    pub user: Option<String>,
    /// Website address (web events).
    pub url: Option<String>,
    /// Page or window title.
    pub title: Option<String>,
    /// Application (app events).
    pub app: Option<String>,
    /// When, in milliseconds since the Unix epoch.
    pub at: i64,
    /// The attempt was stopped: a blocked application closed by the agent.
    /// Exams log these; the activity log shows the event as usual.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub blocked: bool,
}

impl Default for ActivityEvent {
    fn default() -> Self {
        ActivityEvent {
            kind: "web".into(),
            user: None,
            url: None,
            title: None,
            app: None,
            at: 0,
            blocked: false,
        }
    }
}

/// Kinds of activity event the server accepts.
pub const ACTIVITY_KINDS: &[&str] = &["web", "app", "login", "logout", "power_on", "power_off"];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_round_trip_with_type_tag() {
        let all = [
            Command::Message { text: "hi".into() },
            Command::LaunchUrl {
                url: "https://example.org/".into(),
            },
            Command::Lock {
                text: None,
                minutes: None,
            },
            Command::Lock {
                text: Some("Eyes front".into()),
                minutes: Some(5),
            },
            Command::Unlock,
            Command::ClearMessage,
            Command::BlockInternet,
            Command::UnblockInternet,
            Command::Logout,
            Command::CloseTab { tab_id: 7 },
            Command::SetWebFilter {
                mode: crate::WebFilterMode::AllowList,
                allow: vec!["*.example.org".into()],
                block: vec![],
            },
        ];
        for c in all {
            let json = serde_json::to_value(&c).unwrap();
            assert_eq!(json["type"], c.kind());
            let back: Command = serde_json::from_value(json).unwrap();
            assert_eq!(back, c);
        }
    }

    #[test]
    fn unknown_command_and_fields_are_refused() {
        assert!(serde_json::from_str::<Command>(r#"{"type":"format_disk"}"#).is_err());
        assert!(serde_json::from_str::<Command>(r#"{"type":"message","text":"a","x":1}"#).is_err());
        assert!(serde_json::from_str::<Command>(r#"{"type":"message"}"#).is_err());
    }

    #[test]
    fn results_are_tagged_by_status() {
        let r = CommandResult::Failed {
            reason: "no user".into(),
        };
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            r#"{"status":"failed","reason":"no user"}"#
        );
    }
}
