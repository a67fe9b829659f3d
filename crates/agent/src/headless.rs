use lectern_proto::{Capability, DeviceState};

use crate::render::{Canvas, Rgb};
use crate::{Desktop, DesktopError, Frame};

/// Colour of the lock screen; tests look for it in thumbnails.
pub const LOCK_BG: Rgb = [24, 28, 64];
const DESKTOP_BG: Rgb = [38, 110, 150];
const MESSAGE_BG: Rgb = [250, 215, 80];

/// A synthetic desktop: it keeps a user, a focused app, an open URL, lock,
/// web-block and message state, and draws them into its screen image, so a lock
/// or a message shows in the thumbnail exactly as on a real machine.
#[derive(Debug, Clone)]
pub struct HeadlessDesktop {
    hostname: String,
    school: String,
    state: DeviceState,
    lock_text: Option<String>,
    message: Option<String>,
}

impl HeadlessDesktop {
    /// A desktop named `hostname` with `user` logged in (or at the sign-in screen).
    pub fn new(hostname: &str, user: Option<String>) -> Self {
        let logged_in = user.is_some();
        HeadlessDesktop {
            hostname: hostname.to_string(),
            school: String::new(),
            state: DeviceState {
                user,
                focused_app: logged_in.then(|| "Text Editor".to_string()),
                window_title: logged_in.then(|| "Essay draft".to_string()),
                ..DeviceState::default()
            },
            lock_text: None,
            message: None,
        }
    }

    /// Sets the school name shown on the lock screen.
    pub fn set_school(&mut self, school: &str) {
        self.school = school.to_string();
    }

    /// The student dismisses the message on screen.
    pub fn dismiss_message(&mut self) {
        self.message = None;
        self.state.message_shown = false;
    }

    /// A user signs in (scripted student action).
    pub fn login(&mut self, user: &str) {
        *self = HeadlessDesktop {
            school: std::mem::take(&mut self.school),
            ..Self::new(&self.hostname, Some(user.into()))
        };
    }

    /// The message currently on screen.
    pub fn message(&self) -> Option<&str> {
        self.message.as_deref()
    }
}

impl Desktop for HeadlessDesktop {
    fn capabilities(&self) -> Vec<Capability> {
        use Capability::*;
        vec![Thumbnails, Message, LaunchUrl, Lock, InternetBlock, Logout]
    }

    fn state(&self) -> DeviceState {
        self.state.clone()
    }

    fn capture(&mut self, width: u32) -> Result<Frame, DesktopError> {
        let white = [255, 255, 255];
        if self.state.locked {
            let mut c = Canvas::new(width, LOCK_BG);
            c.text(80, 200, 96, 1120, "LOCKED", white);
            c.text(80, 360, 40, 1120, &self.school, [200, 200, 255]);
            if let Some(t) = &self.lock_text {
                c.text(80, 440, 40, 1120, t, white);
            }
            return Ok(c.finish());
        }
        let mut c = Canvas::new(width, DESKTOP_BG);
        match &self.state.user {
            None => {
                c.rect(440, 220, 400, 240, [40, 40, 40]);
                c.text(480, 260, 40, 340, "Sign in", white);
                c.text(480, 340, 24, 340, &self.hostname, [180, 180, 180]);
            }
            Some(user) => {
                c.rect(100, 60, 1080, 560, [235, 235, 235]);
                c.rect(100, 60, 1080, 56, [60, 60, 80]);
                let title = format!(
                    "{} - {}",
                    self.state.focused_app.as_deref().unwrap_or(""),
                    self.state.window_title.as_deref().unwrap_or("")
                );
                c.text(120, 72, 32, 1040, &title, white);
                if let Some(url) = &self.state.url {
                    c.text(120, 140, 32, 1040, url, [20, 20, 140]);
                }
                // A moving bar so a live thumbnail visibly ticks.
                let secs = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_secs() % 60)
                    .unwrap_or(0) as u32;
                c.rect(120, 580, 18 * secs, 16, [90, 160, 90]);
                c.rect(0, 672, 1280, 48, [30, 30, 30]);
                c.text(
                    16,
                    684,
                    28,
                    1200,
                    &format!("{}  {}", self.hostname, user),
                    white,
                );
            }
        }
        if self.state.internet_blocked {
            c.rect(0, 0, 1280, 48, [200, 40, 40]);
            c.text(16, 8, 32, 1200, "Internet blocked", white);
        }
        if let Some(m) = &self.message {
            c.rect(240, 220, 800, 280, MESSAGE_BG);
            c.text(270, 240, 36, 740, "Message from your teacher", [60, 40, 0]);
            c.text(270, 300, 36, 740, m, [0, 0, 0]);
        }
        Ok(c.finish())
    }

    fn lock(&mut self, text: Option<&str>) -> Result<(), DesktopError> {
        self.state.locked = true;
        self.lock_text = text.map(str::to_string);
        Ok(())
    }

    fn unlock(&mut self) -> Result<(), DesktopError> {
        self.state.locked = false;
        self.lock_text = None;
        Ok(())
    }

    fn show_message(&mut self, text: &str) -> Result<(), DesktopError> {
        self.message = Some(text.to_string());
        self.state.message_shown = true;
        Ok(())
    }

    fn open_url(&mut self, url: &str) -> Result<(), DesktopError> {
        if self.state.user.is_none() {
            return Err(DesktopError::Failed(
                "no user is logged in to open the website for".into(),
            ));
        }
        if self.state.internet_blocked {
            return Err(DesktopError::Failed(
                "internet is blocked on this device".into(),
            ));
        }
        self.state.url = Some(url.to_string());
        self.state.focused_app = Some("Web Browser".into());
        self.state.window_title = Some(url.to_string());
        Ok(())
    }

    fn set_internet_blocked(&mut self, blocked: bool) -> Result<(), DesktopError> {
        self.state.internet_blocked = blocked;
        Ok(())
    }

    fn logout(&mut self) -> Result<(), DesktopError> {
        if self.state.user.is_none() {
            return Err(DesktopError::Failed("no user is logged in".into()));
        }
        let blocked = self.state.internet_blocked;
        let locked = self.state.locked;
        self.state = DeviceState {
            internet_blocked: blocked,
            locked,
            ..DeviceState::default()
        };
        self.message = None;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apply_command;
    use lectern_proto::{Command, CommandResult};

    fn share(frame: &Frame, c: Rgb) -> f32 {
        let n = frame.rgb.chunks(3).filter(|p| *p == c).count();
        n as f32 / (frame.width * frame.height) as f32
    }

    #[test]
    fn lock_and_message_show_in_the_picture() {
        let mut d = HeadlessDesktop::new("PC1", Some("amy".into()));
        let plain = d.capture(320).unwrap();
        assert!(share(&plain, LOCK_BG) < 0.01);
        assert_eq!(
            apply_command(
                &mut d,
                &Command::Lock {
                    text: Some("Eyes front".into())
                }
            ),
            CommandResult::Done
        );
        assert!(share(&d.capture(320).unwrap(), LOCK_BG) > 0.5);
        apply_command(&mut d, &Command::Unlock);
        apply_command(
            &mut d,
            &Command::Message {
                text: "Hello".into(),
            },
        );
        assert!(d.state().message_shown);
        assert!(share(&d.capture(320).unwrap(), MESSAGE_BG) > 0.1);
        d.dismiss_message();
        assert!(!d.state().message_shown);
    }

    #[test]
    fn commands_fail_with_reasons() {
        let mut d = HeadlessDesktop::new("PC1", None);
        let r = apply_command(&mut d, &Command::Logout);
        assert_eq!(
            r,
            CommandResult::Failed {
                reason: "no user is logged in".into()
            }
        );
        let r = apply_command(
            &mut d,
            &Command::LaunchUrl {
                url: "file:///etc/passwd".into(),
            },
        );
        assert!(matches!(r, CommandResult::Failed { reason } if reason.contains("scheme")));
        d.login("bob");
        apply_command(&mut d, &Command::BlockInternet);
        let r = apply_command(
            &mut d,
            &Command::LaunchUrl {
                url: "https://example.org".into(),
            },
        );
        assert!(matches!(r, CommandResult::Failed { .. }));
        apply_command(&mut d, &Command::UnblockInternet);
        assert_eq!(
            apply_command(
                &mut d,
                &Command::LaunchUrl {
                    url: "https://example.org".into()
                }
            ),
            CommandResult::Done
        );
        assert_eq!(d.state().url.as_deref(), Some("https://example.org"));
        assert_eq!(apply_command(&mut d, &Command::Logout), CommandResult::Done);
        assert_eq!(d.state().user, None);
    }
}
