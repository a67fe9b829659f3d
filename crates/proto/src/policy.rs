use serde::{Deserialize, Serialize};

/// Web filter mode.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WebFilterMode {
    /// No list filtering.
    #[default]
    Off,
    /// Only the allow list is reachable.
    AllowList,
    /// Everything but the block list is reachable.
    BlockList,
}

/// Which applications a session may run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AppMode {
    /// Every application may run.
    #[default]
    Off,
    /// Only the allowed applications (and the built-in exempt set) may run.
    AllowList,
    /// Every application but the blocked ones may run.
    BlockList,
}

/// What happens when a teacher opens a live view of the device.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RemoteView {
    /// Open without asking.
    #[default]
    Allow,
    /// Refuse.
    Deny,
    /// Ask the student; allow after 10 s without an answer.
    AskThenAllow,
    /// Ask the student; deny after 10 s without an answer.
    AskThenDeny,
}

/// The resultant settings the server sends a device, versioned. The agent stores
/// the last one and keeps enforcing it while offline and across restarts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Policy {
    /// Increases with every change the server makes.
    pub version: u64,
    /// Block all web access.
    pub internet_blocked: bool,
    /// Web filter mode.
    pub web_filter_mode: WebFilterMode,
    /// Allowed domain patterns.
    pub allow_list: Vec<String>,
    /// Blocked domain patterns.
    pub block_list: Vec<String>,
    /// Keep the screen locked.
    pub screen_locked: bool,
    /// Disable printing.
    pub printing_disabled: bool,
    /// Disable removable media.
    pub removable_media_disabled: bool,
    /// Mute sound.
    pub sound_muted: bool,
    /// Live view privacy.
    pub remote_view: RemoteView,
    /// Thumbnails may be taken.
    pub thumbnails_allowed: bool,
    /// Log activity.
    pub activity_logging: bool,
    /// Apply keyword policies.
    pub keyword_policies: bool,
    /// A browser that cannot identify its user shows the sign-in request
    /// instead of browsing (the extension; a desktop always has a login).
    pub require_sign_in: bool,
    /// A browser that cannot identify its user offers the student sign-in
    /// of [`crate::signin`] (user name and picture or text password), and
    /// is held at it as with `require_sign_in` until someone signs in.
    #[serde(default)]
    pub student_sign_in: bool,
    /// A device registered with several schools lets the student switch to
    /// another of them from its sign-in screen (a desktop agent) or popup
    /// (the extension). Set by the school the device is in now: a school
    /// that keeps its devices to itself leaves it off.
    #[serde(default)]
    pub school_switch: bool,
    /// Which applications may run.
    pub app_mode: AppMode,
    /// Applications that may run in allow-list mode (executable base names
    /// or WM_CLASS, case-insensitive).
    pub app_allow_list: Vec<String>,
    /// Applications closed in block-list mode.
    pub app_block_list: Vec<String>,
}

impl Policy {
    /// Whether the screen may be streamed: never with thumbnails off, and
    /// under `remote_view = deny` only for a viewer with the bypass right (the
    /// server decides the questions of the ask modes, per teacher).
    pub fn allows_stream(&self, privacy_bypass: bool) -> bool {
        self.thumbnails_allowed && (self.remote_view != RemoteView::Deny || privacy_bypass)
    }
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            version: 0,
            internet_blocked: false,
            web_filter_mode: WebFilterMode::Off,
            allow_list: Vec::new(),
            block_list: Vec::new(),
            screen_locked: false,
            printing_disabled: false,
            removable_media_disabled: false,
            sound_muted: false,
            remote_view: RemoteView::Allow,
            thumbnails_allowed: true,
            activity_logging: true,
            keyword_policies: true,
            require_sign_in: false,
            student_sign_in: false,
            school_switch: false,
            app_mode: AppMode::Off,
            app_allow_list: Vec::new(),
            app_block_list: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_agent_streams_only_what_the_policy_allows() {
        let with = |thumbnails_allowed, remote_view| Policy {
            thumbnails_allowed,
            remote_view,
            ..Policy::default()
        };
        assert!(with(true, RemoteView::Allow).allows_stream(false));
        assert!(with(true, RemoteView::AskThenDeny).allows_stream(false));
        assert!(!with(true, RemoteView::Deny).allows_stream(false));
        assert!(with(true, RemoteView::Deny).allows_stream(true));
        assert!(!with(false, RemoteView::Allow).allows_stream(true));
    }
}
