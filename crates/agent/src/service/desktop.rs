//! [`ServiceDesktop`]: the [`Desktop`] the root service hands to the server
//! session. It records what every session must show and fans each command out
//! to the helpers of all graphical sessions on the machine (a lab PC has one;
//! a terminal server has many). Captures and state come from the oldest
//! connected session.

use std::sync::Arc;
use std::time::Duration;

use lectern_proto::{
    ActivityEvent, Capability, DeviceState, ExtensionState, Policy, WebFilterMode,
};
use tokio::sync::oneshot;

use super::registry::{HelperConn, Registry, SessionInfo};
use crate::ipc::{Reply, Request, WebPolicy};
use crate::{Desktop, DesktopError, Frame};

/// A system-wide web block for every program, not only the browsers the
/// extension runs in (the Windows Filtering Platform on Windows). The
/// service holds it (it needs LocalSystem) and puts the current web settings
/// in force whenever they change.
pub trait SystemWebBlock: Send {
    /// Puts `web` in force for every program; an error says why it cannot
    /// (e.g. no filtering platform under Wine), and nothing is enforced.
    fn enforce(&mut self, web: &WebPolicy) -> Result<(), String>;
}

/// The service side of every session's desktop.
pub struct ServiceDesktop<S> {
    registry: Arc<Registry<S>>,
    system: Option<Box<dyn SystemWebBlock>>,
    /// The last [`SystemWebBlock::enforce`] result (`None`: no system block).
    system_result: Option<Result<(), String>>,
    /// The machine's inventory, read by the service (root: DMI serial).
    inventory: Option<Arc<dyn lectern_desktop::InventorySource>>,
    /// How the machine is shut down and restarted.
    power: Option<crate::config::PowerCommands>,
}

impl<S: SessionInfo> ServiceDesktop<S> {
    /// A desktop driving the helpers in `registry`.
    pub fn new(registry: Arc<Registry<S>>) -> Self {
        ServiceDesktop {
            registry,
            system: None,
            system_result: None,
            inventory: None,
            power: None,
        }
    }

    /// Shuts down and restarts with `commands`.
    pub fn with_power(mut self, commands: crate::config::PowerCommands) -> Self {
        self.power = Some(commands);
        self
    }

    /// Reports the inventory `source` gives.
    pub fn with_inventory(mut self, source: Arc<dyn lectern_desktop::InventorySource>) -> Self {
        self.inventory = Some(source);
        self
    }

    /// A desktop that also enforces the web settings through `system`
    /// (applied once now, so capabilities say whether it works).
    pub fn with_system_web_block(
        registry: Arc<Registry<S>>,
        system: Box<dyn SystemWebBlock>,
    ) -> Self {
        let mut d = ServiceDesktop {
            registry,
            system: Some(system),
            system_result: None,
            inventory: None,
            power: None,
        };
        d.enforce_system();
        d
    }

    /// Puts the current web settings in force system-wide, if there is a
    /// system block; true when it is in force.
    fn enforce_system(&mut self) -> bool {
        let Some(system) = self.system.as_mut() else {
            return false;
        };
        let web = self.registry.web_policy();
        let result = system.enforce(&web);
        if let Err(e) = &result {
            // Logged when it starts failing, not at every change.
            if !matches!(self.system_result, Some(Err(_))) {
                tracing::warn!("system-wide web blocking is not enforced: {e}");
            }
        }
        let ok = result.is_ok();
        self.system_result = Some(result);
        ok
    }

    /// Whether the system-wide block works here.
    fn system_enforces(&self) -> bool {
        matches!(self.system_result, Some(Ok(())))
    }

    /// Why the web settings are not enforced: nothing in the browsers and the
    /// system block failed (`None` when something enforces them, or there is
    /// no system block to blame).
    fn unenforced_reason(&self, browsers: usize) -> Option<String> {
        match &self.system_result {
            Some(Err(e)) if browsers == 0 => Some(format!(
                "no browser extension is connected and the system-wide web block is unavailable ({e}); the setting is kept and applies when either works"
            )),
            _ => None,
        }
    }

    /// Asks the primary session's student about live view, for `timeout`
    /// (the helper's default when `None`).
    fn ask(&self, teacher: &str, timeout: Option<Duration>) -> oneshot::Receiver<bool> {
        match self.primary() {
            Some(h) => self.registry.ask_view(&h, teacher, timeout),
            // Nobody to ask: the request times out into the policy's default.
            None => oneshot::channel().1,
        }
    }

    fn primary(&self) -> Option<Arc<HelperConn>> {
        self.registry.connected().into_iter().next()
    }

    /// Sends `req` to every helper; fails if any failed (naming the sessions).
    /// With no session at all, `needs_session` decides between failing and
    /// succeeding (the desired state is kept for the next login either way).
    fn fan_out(&self, req: Request, needs_session: bool) -> Result<(), DesktopError> {
        let helpers = self.registry.connected();
        if helpers.is_empty() {
            return if needs_session {
                Err(DesktopError::Failed("no one is signed in".into()))
            } else {
                Ok(())
            };
        }
        let mut failures = Vec::new();
        for h in &helpers {
            match self.registry.call(h, req.clone(), &[]) {
                Ok((Reply::Ok, _)) => {}
                Ok((Reply::Error { message, .. }, _)) => {
                    failures.push(format!("{}: {message}", h.session))
                }
                Ok((other, _)) => {
                    failures.push(format!("{}: unexpected reply {other:?}", h.session))
                }
                Err(e) => failures.push(e.to_string()),
            }
        }
        if failures.is_empty() {
            Ok(())
        } else {
            Err(DesktopError::Failed(failures.join("; ")))
        }
    }

    fn save(&self) {
        self.registry.save_desired();
    }

    /// Blocked applications from every session, asked for only while a
    /// policy sets application lists (nothing else is reported this way).
    /// A helper runs as the student, so only what the event says about the
    /// application is kept: the user is the session's and the time is now.
    fn session_activity(&self) -> Vec<ActivityEvent> {
        let lists = self
            .registry
            .desired()
            .policy
            .as_ref()
            .is_some_and(|p| p.app_mode != lectern_proto::AppMode::Off);
        if !lists {
            return Vec::new();
        }
        let mut out = Vec::new();
        for h in self.registry.connected() {
            if let Ok((Reply::Activity { events }, _)) =
                self.registry.call(&h, Request::TakeActivity, &[])
            {
                let user = self.registry.session_user(&h.session);
                out.extend(
                    events
                        .into_iter()
                        .take(SESSION_EVENTS_MAX)
                        .map(|e| blocked_app(e, user.clone())),
                );
            }
        }
        out
    }

    /// Replaces the helpers' word on the device settings (they cannot enforce
    /// them) by the service's, when it enforces them.
    fn merge_device(&self, unsupported: &mut Vec<String>) {
        if let Some(mine) = self.registry.device_unsupported() {
            unsupported.retain(|u| !super::DEVICE_SETTINGS.contains(&u.as_str()));
            unsupported.extend(mine);
        }
    }

    fn merge_device_state(&self, s: &mut DeviceState) {
        let Some(mine) = self.registry.device_unsupported() else {
            return;
        };
        let policy = self.registry.desired().policy.clone().unwrap_or_default();
        let on = |name: &str| !mine.iter().any(|u| u == name);
        s.printing_disabled = policy.printing_disabled && on("printing_disabled");
        s.removable_media_disabled =
            policy.removable_media_disabled && on("removable_media_disabled");
        self.merge_device(&mut s.unsupported);
    }

    /// Sends the current web settings to the browser extensions.
    fn push_web(&self) -> usize {
        self.registry
            .extensions
            .set_policy(self.registry.web_policy())
    }
}

impl<S: SessionInfo> Desktop for ServiceDesktop<S> {
    /// The school's name from the server (the enrolled name until then)
    /// goes to every session helper's lock screen.
    fn set_school(&mut self, school: &str) {
        self.registry.set_school(school);
    }

    fn set_school_logo(&mut self, png: Option<&[u8]>) {
        self.registry.set_school_logo(png);
    }

    // Files go to the user of the first session (the one the state shows),
    // owned by them; the service itself runs as root.
    #[cfg(target_os = "linux")]
    fn user_home(&self) -> Result<lectern_desktop::UserHome, DesktopError> {
        let user = self
            .state()
            .user
            .ok_or_else(|| DesktopError::Failed("nobody is logged in".into()))?;
        let ids = crate::linux::sessions::lookup_user(&user)
            .ok_or_else(|| DesktopError::Failed(format!("no such user: {user}")))?;
        Ok(lectern_desktop::UserHome {
            user,
            dir: ids.home,
            owner: Some((ids.uid, ids.gid)),
        })
    }

    fn changes(&self) -> Option<Arc<lectern_desktop::Changes>> {
        Some(self.registry.changes())
    }

    fn capabilities(&self) -> Vec<Capability> {
        use Capability::*;
        let mut caps: Vec<Capability> = vec![
            Thumbnails, Message, LaunchUrl, Lock, Logout, Broadcast, Power,
        ];
        // Every helper (X11 or Windows) shows the sign-in; said before any
        // helper connects, as the server hears it only at the connection's
        // start.
        caps.push(StudentSignIn);
        if self.registry.extensions.state() == ExtensionState::Connected {
            caps.extend([InternetBlock, Tabs, WebFilter]);
        } else if self.system_enforces() {
            caps.extend([InternetBlock, WebFilter]);
        }
        for h in self.registry.connected() {
            for c in &h.capabilities {
                if !caps.contains(c) {
                    caps.push(*c);
                }
            }
        }
        caps
    }

    /// The first session's key (a logind session id is never given out
    /// again before a reboot) and its helper's process id (a static
    /// session's helper is started again at each login).
    fn login_key(&self) -> Option<String> {
        self.primary().map(|h| format!("{}#{}", h.session, h.pid))
    }

    fn state(&self) -> DeviceState {
        let d = self.registry.desired().clone();
        let from_helper =
            self.primary()
                .and_then(|h| match self.registry.call(&h, Request::State, &[]) {
                    Ok((Reply::State { state }, _)) => Some(*state),
                    _ => None,
                });
        let mut s = from_helper.unwrap_or_default();
        self.registry.note_focus(
            s.user.as_deref(),
            s.focused_app.as_deref(),
            s.window_title.as_deref(),
        );
        if s.user.is_none() {
            // No session (or it did not answer): report what is enforced.
            s.locked = d.lock.is_some() || d.policy.as_ref().is_some_and(|p| p.screen_locked);
            s.internet_blocked = d.internet_blocked;
            s.broadcast_shown = d.broadcast.is_some();
            s.policy_version = d.policy.as_ref().map_or(0, |p| p.version);
        }
        s.extension = self.registry.extensions.state();
        s.tabs = if s.extension == ExtensionState::Connected {
            self.registry.extensions.tabs()
        } else {
            Vec::new()
        };
        if let Some(active) = s.tabs.iter().find(|t| t.active) {
            s.url = Some(active.url.clone());
            if s.window_title.is_none() {
                s.window_title = Some(active.title.clone());
            }
        }
        self.merge_device_state(&mut s);
        if s.extension == ExtensionState::Connected || self.system_enforces() {
            // The extension or the system block enforces the web settings
            // the desktop cannot.
            s.internet_blocked |= d.internet_blocked;
            s.unsupported
                .retain(|u| !matches!(u.as_str(), "internet_blocked" | "web_filter_mode"));
        }
        s
    }

    fn capture(&mut self, width: u32) -> Result<Frame, DesktopError> {
        let h = self
            .primary()
            .ok_or_else(|| DesktopError::Failed("no graphical session to capture".into()))?;
        match self.registry.call(&h, Request::Capture { width }, &[])? {
            (Reply::Frame { width, height }, rgb) if rgb.len() == (width * height * 3) as usize => {
                Ok(Frame { width, height, rgb })
            }
            (Reply::Error { message, .. }, _) => Err(DesktopError::Failed(message)),
            _ => Err(DesktopError::Failed(
                "the session helper sent a malformed capture".into(),
            )),
        }
    }

    fn lock(&mut self, text: Option<&str>) -> Result<(), DesktopError> {
        self.registry.desired().lock = Some(text.map(str::to_string));
        self.save();
        self.fan_out(
            Request::Lock {
                text: text.map(str::to_string),
            },
            false,
        )
    }

    fn unlock(&mut self) -> Result<(), DesktopError> {
        self.registry.desired().lock = None;
        self.save();
        self.fan_out(Request::Unlock, false)
    }

    fn show_message(&mut self, text: &str) -> Result<(), DesktopError> {
        self.fan_out(
            Request::Message {
                text: text.to_string(),
            },
            true,
        )
    }

    fn clear_message(&mut self) -> Result<(), DesktopError> {
        // Nobody signed in means no message on any screen: nothing to do.
        self.fan_out(Request::ClearMessage, false)
    }

    fn open_url(&mut self, url: &str) -> Result<(), DesktopError> {
        self.fan_out(
            Request::OpenUrl {
                url: url.to_string(),
            },
            true,
        )
    }

    fn set_internet_blocked(&mut self, blocked: bool) -> Result<(), DesktopError> {
        self.registry.desired().internet_blocked = blocked;
        self.save();
        let browsers = self.push_web();
        let system = self.enforce_system();
        let desktops = self.fan_out(Request::SetInternetBlocked { blocked }, false);
        // A connected extension or the system block enforces it even where
        // the desktop cannot; with a system block that failed and no
        // extension, nothing does, and the teacher is told why.
        if browsers > 0 || system {
            Ok(())
        } else if let Some(why) = self.unenforced_reason(browsers).filter(|_| blocked) {
            Err(DesktopError::Failed(why))
        } else {
            desktops
        }
    }

    fn logout(&mut self) -> Result<(), DesktopError> {
        let sessions: Vec<S> = self
            .registry
            .expected()
            .into_iter()
            .map(|e| e.session)
            .collect();
        if sessions.is_empty() {
            return Err(DesktopError::Failed("no one is signed in".into()));
        }
        let mut failures = Vec::new();
        for s in &sessions {
            if let Err(e) = s.end() {
                failures.push(format!("{}: {e}", s.key()));
            }
        }
        if failures.is_empty() {
            Ok(())
        } else {
            Err(DesktopError::Failed(failures.join("; ")))
        }
    }

    fn apply_policy(&mut self, policy: &Policy) -> Vec<String> {
        self.registry.desired().policy = Some(policy.clone());
        self.registry.enforce_devices();
        let browsers = self.push_web();
        let system = self.enforce_system();
        let mut unsupported = Vec::new();
        for h in self.registry.connected() {
            if let Ok((Reply::Unsupported { settings }, _)) = self.registry.call(
                &h,
                Request::ApplyPolicy {
                    policy: policy.clone(),
                },
                &[],
            ) {
                for s in settings {
                    if !unsupported.contains(&s) {
                        unsupported.push(s);
                    }
                }
            }
        }
        if browsers > 0 || system {
            // Web settings are the extension's (or the system block's) job.
            unsupported.retain(|s| !matches!(s.as_str(), "internet_blocked" | "web_filter_mode"));
        }
        self.merge_device(&mut unsupported);
        unsupported
    }

    fn close_tab(&mut self, tab_id: i64) -> Result<(), DesktopError> {
        self.registry
            .extensions
            .close_tab(tab_id)
            .map_err(DesktopError::Failed)
    }

    fn set_web_filter(
        &mut self,
        mode: WebFilterMode,
        allow: &[String],
        block: &[String],
    ) -> Result<(), DesktopError> {
        self.registry.desired().web_filter =
            (mode != WebFilterMode::Off).then(|| (mode, allow.to_vec(), block.to_vec()));
        self.save();
        let browsers = self.push_web();
        if self.enforce_system() {
            return Ok(());
        }
        if let Some(why) = self.unenforced_reason(browsers) {
            return Err(DesktopError::Failed(why));
        }
        if browsers == 0 {
            return Err(DesktopError::Failed(
                "no browser extension is connected on this device; the lists apply when it connects".into(),
            ));
        }
        Ok(())
    }

    fn take_typed(&mut self) -> Vec<crate::TypedText> {
        self.registry.extensions.take_typed()
    }

    /// What the students of every session sent (a helper that fails to
    /// answer loses nothing: its requests stay queued there).
    fn take_requests(&mut self) -> Vec<lectern_desktop::StudentRequest> {
        let mut all = Vec::new();
        for h in self.registry.connected() {
            if let Ok((Reply::Requests { requests }, _)) =
                self.registry.call(&h, Request::TakeRequests, &[])
            {
                all.extend(requests);
            }
        }
        all
    }

    /// Every session shows it (the device has one hand and one chat).
    fn student_notice(
        &mut self,
        notice: lectern_desktop::StudentNotice,
    ) -> Result<(), DesktopError> {
        self.registry.note_chat(&notice);
        self.fan_out(Request::Notice { notice }, true)
    }

    /// Every session shows it: the server offers it for the device's user.
    fn show_acceptable_use(
        &mut self,
        policy: Option<&lectern_proto::aup::AcceptableUse>,
    ) -> Result<(), DesktopError> {
        // A helper that restarts shows it again until it is accepted.
        self.registry.desired().aup = policy.cloned();
        let req = Request::AcceptableUse {
            policy: policy.cloned(),
        };
        self.fan_out(req, policy.is_some())
    }

    /// Every session shows it; a helper that restarts shows it again.
    fn show_student_sign_in(
        &mut self,
        screen: Option<&lectern_desktop::SignInScreen>,
    ) -> Result<(), DesktopError> {
        self.registry.desired().sign_in = screen.cloned();
        let req = Request::StudentSignIn {
            screen: screen.cloned(),
        };
        self.fan_out(req, screen.is_some())
    }

    /// Every session's corner widget; a helper that restarts is told again.
    fn show_signed_in(&mut self, signed_in: bool) {
        self.registry.desired().signed_in = signed_in;
        if let Err(e) = self.fan_out(Request::SignedIn { signed_in }, false) {
            tracing::warn!("cannot offer the student sign-out: {e}");
        }
    }

    fn inventory(&self) -> Option<Arc<dyn lectern_desktop::InventorySource>> {
        self.inventory.clone()
    }

    fn power_supported(&self, action: lectern_proto::power::PowerAction) -> bool {
        use lectern_proto::power::PowerAction;
        match (&self.power, action) {
            (_, PowerAction::Logoff) => true,
            (Some(p), PowerAction::Shutdown) => !p.shutdown.is_empty(),
            (Some(p), PowerAction::Restart) => !p.restart.is_empty(),
            (None, _) => false,
        }
    }

    fn power(&mut self, action: lectern_proto::power::PowerAction) -> Result<(), DesktopError> {
        if action == lectern_proto::power::PowerAction::Logoff {
            return self.logout();
        }
        let Some(p) = &self.power else {
            return Err(DesktopError::Unsupported("power control"));
        };
        p.run(action).map_err(DesktopError::Failed)
    }

    fn take_activity(&mut self) -> Vec<ActivityEvent> {
        let mut events = self.registry.take_activity();
        events.extend(self.session_activity());
        events.extend(self.registry.extensions.take_activity());
        events.sort_by_key(|e| e.at);
        events
    }

    fn ask_remote_view(&mut self, teacher: &str) -> oneshot::Receiver<bool> {
        self.ask(teacher, None)
    }

    fn ask_remote_view_for(&mut self, teacher: &str, timeout: Duration) -> oneshot::Receiver<bool> {
        self.ask(teacher, Some(timeout))
    }

    fn start_broadcast(&mut self, title: &str) -> Result<(), DesktopError> {
        self.registry.desired().broadcast = Some(title.to_string());
        self.save();
        self.fan_out(
            Request::StartBroadcast {
                title: title.to_string(),
            },
            false,
        )
    }

    fn broadcast_frame(&mut self, jpeg: &[u8]) -> Result<(), DesktopError> {
        let mut failures = Vec::new();
        for h in self.registry.connected() {
            match self.registry.call(&h, Request::BroadcastFrame, jpeg) {
                Ok((Reply::Ok, _)) => {}
                Ok((Reply::Error { message, .. }, _)) => failures.push(message),
                Ok(_) => failures.push("unexpected reply".into()),
                Err(e) => failures.push(e.to_string()),
            }
        }
        if failures.is_empty() {
            Ok(())
        } else {
            Err(DesktopError::Failed(failures.join("; ")))
        }
    }

    fn stop_broadcast(&mut self) -> Result<(), DesktopError> {
        self.registry.desired().broadcast = None;
        self.save();
        self.fan_out(Request::StopBroadcast, false)
    }

    /// Control goes to the session whose screen the teacher sees (the one
    /// captured).
    fn start_control(&mut self, controller: &str) -> Result<(), DesktopError> {
        let h = self
            .primary()
            .ok_or_else(|| DesktopError::Failed("no one is signed in".into()))?;
        let req = Request::StartControl {
            controller: controller.to_string(),
        };
        expect_ok(self.registry.call(&h, req, &[])?)
    }

    fn inject_input(
        &mut self,
        events: &[lectern_proto::control::InputEvent],
    ) -> Result<(), DesktopError> {
        let h = self
            .primary()
            .ok_or_else(|| DesktopError::Failed("no one is signed in".into()))?;
        let req = Request::ControlInput {
            events: events.to_vec(),
        };
        expect_ok(self.registry.call(&h, req, &[])?)
    }

    /// Every session is told, so no notice outlives control even if the
    /// captured session changed meanwhile.
    fn stop_control(&mut self) -> Result<(), DesktopError> {
        self.fan_out(Request::StopControl, false)
    }
}

/// Most events taken from one session per collection.
const SESSION_EVENTS_MAX: usize = 20;

/// A helper's blocked-application event, as the service reports it.
fn blocked_app(e: ActivityEvent, user: Option<String>) -> ActivityEvent {
    let cut = |s: String, n: usize| s.chars().take(n).collect::<String>();
    ActivityEvent {
        kind: "app".into(),
        user,
        url: None,
        title: e.title.map(|t| cut(t, 256)),
        app: e.app.map(|a| cut(a, 64)),
        at: crate::now_ms(),
        blocked: true,
    }
}

/// A helper's reply to a request that expects nothing back.
fn expect_ok((reply, _): (Reply, Vec<u8>)) -> Result<(), DesktopError> {
    match reply {
        Reply::Ok => Ok(()),
        Reply::Error {
            message,
            unsupported: true,
        } => Err(DesktopError::Failed(format!("not supported: {message}"))),
        Reply::Error { message, .. } => Err(DesktopError::Failed(message)),
        other => Err(DesktopError::Failed(format!(
            "unexpected reply from the session helper: {other:?}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sessions_blocked_application_keeps_only_what_it_says_about_the_application() {
        let forged = ActivityEvent {
            kind: "login".into(),
            user: Some("headteacher".into()),
            url: Some("https://example.org/".into()),
            title: Some("t".repeat(1000)),
            app: Some("a".repeat(1000)),
            at: 1,
            blocked: false,
        };
        let e = blocked_app(forged, Some("amy".into()));
        assert_eq!(e.kind, "app");
        assert_eq!(e.user.as_deref(), Some("amy"));
        assert!(e.url.is_none());
        assert_eq!(e.app.unwrap().len(), 64);
        assert_eq!(e.title.unwrap().len(), 256);
        assert!(e.at > 1);
        assert!(e.blocked, "the exam log counts it as a blocked attempt");
    }
}
