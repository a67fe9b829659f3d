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
use crate::ipc::{Reply, Request};
use crate::{Desktop, DesktopError, Frame};

/// The service side of every session's desktop.
pub struct ServiceDesktop<S> {
    registry: Arc<Registry<S>>,
}

impl<S: SessionInfo> ServiceDesktop<S> {
    /// A desktop driving the helpers in `registry`.
    pub fn new(registry: Arc<Registry<S>>) -> Self {
        ServiceDesktop { registry }
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

    /// Sends the current web settings to the browser extensions.
    fn push_web(&self) -> usize {
        self.registry
            .extensions
            .set_policy(self.registry.web_policy())
    }
}

impl<S: SessionInfo> Desktop for ServiceDesktop<S> {
    fn capabilities(&self) -> Vec<Capability> {
        use Capability::*;
        let mut caps: Vec<Capability> = vec![Thumbnails, Message, LaunchUrl, Lock, Logout];
        if self.registry.extensions.state() == ExtensionState::Connected {
            caps.extend([InternetBlock, Tabs, WebFilter]);
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
        if s.extension == ExtensionState::Connected {
            // The extension enforces the web settings the desktop cannot.
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
        let desktops = self.fan_out(Request::SetInternetBlocked { blocked }, false);
        // A connected extension enforces the block even where the desktop cannot.
        if browsers > 0 {
            Ok(())
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
        let browsers = self.push_web();
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
        if browsers > 0 {
            // Web settings are the extension's job.
            unsupported.retain(|s| !matches!(s.as_str(), "internet_blocked" | "web_filter_mode"));
        }
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
        if self.push_web() == 0 {
            return Err(DesktopError::Failed(
                "no browser extension is connected on this device; the lists apply when it connects".into(),
            ));
        }
        Ok(())
    }

    fn take_typed(&mut self) -> Vec<crate::TypedText> {
        self.registry.extensions.take_typed()
    }

    fn take_activity(&mut self) -> Vec<ActivityEvent> {
        let mut events = self.registry.take_activity();
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
}
