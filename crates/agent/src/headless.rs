use std::time::Duration;

use lectern_proto::{
    ActivityEvent, Capability, DeviceState, ExtensionState, Policy, Tab, WebFilterMode,
};
use tokio::sync::oneshot;

use lectern_desktop::{Canvas, Desktop, DesktopError, Frame, Rgb, LOGICAL_W};
pub use lectern_desktop::{BROADCAST_BG, LOCK_BG};
use lectern_student_ui::{Logo, StudentUi, Surface};

const DESKTOP_BG: Rgb = [38, 110, 150];

/// A synthetic desktop: it keeps a user, a focused app, an open URL, lock,
/// web-block and message state, and draws them into its screen image, so a lock
/// or a message shows in the thumbnail exactly as on a real machine.
#[derive(Debug)]
pub struct HeadlessDesktop {
    hostname: String,
    school: String,
    state: DeviceState,
    lock_text: Option<String>,
    message: Option<String>,
    command_lock: bool,
    command_block: bool,
    policy: Policy,
    view_answer: Option<(bool, Duration)>,
    /// The times the student was given, per question asked with one.
    ask_timeouts: Vec<Duration>,
    unanswered: Vec<oneshot::Sender<bool>>,
    broadcast: Option<(String, u64)>,
    web_filter: Option<(WebFilterMode, Vec<String>, Vec<String>)>,
    activity: Vec<ActivityEvent>,
    lock_picture: SurfaceCache,
    message_picture: SurfaceCache,
    /// Who controls the synthetic desktop, and the input injected so far.
    controller: Option<String>,
    injected: Vec<lectern_proto::control::InputEvent>,
    /// What the synthetic student sent (raised hands, chat), not yet taken.
    requests: Vec<lectern_desktop::StudentRequest>,
    /// What the server said about them, oldest first.
    notices: Vec<lectern_desktop::StudentNotice>,
    /// The school's logo (PNG) the lock screen shows, and decoded.
    logo: Option<Vec<u8>>,
    logo_picture: Option<Logo>,
    /// The inventory it reports, if any (tests give a fixture tree).
    inventory: Option<std::sync::Arc<dyn lectern_desktop::InventorySource>>,
    /// Power actions carried out (recorded, not done).
    power_actions: Vec<lectern_proto::power::PowerAction>,
    /// Where Wake-on-LAN packets go instead of the broadcast (tests).
    wake_redirect: Option<std::net::SocketAddr>,
    /// Homes live here, one folder per user name (tests; `None`: no files).
    home_root: Option<std::path::PathBuf>,
    /// Whether it pretends to show acceptable use policies (tests); by
    /// default it cannot, and the agent says so to the server.
    aup_surface: bool,
    /// The policy it shows, waiting for the synthetic student.
    aup: Option<lectern_proto::aup::AcceptableUse>,
}

/// A student surface `w`×`h` pixels as RGB, drawn as it would look on a
/// 1280-pixel-wide screen shown `screen_width` wide (the same pixels as the
/// real backends, scaled), so a thumbnail shows the real lock and message.
fn student_surface(
    surface: Surface,
    logo: Option<Logo>,
    w: u32,
    h: u32,
    screen_width: u32,
) -> Vec<u8> {
    let scale = screen_width as f32 / LOGICAL_W as f32;
    let mut ui = StudentUi::new(surface, w, h, scale);
    ui.set_logo(logo);
    ui.render()
        .chunks_exact(4)
        .flat_map(|p| [p[2], p[1], p[0]])
        .collect()
}

/// The last student surface drawn, kept because the picture only changes with
/// the surface or the size: a locked device is captured every second, and the
/// simulator runs hundreds of these desktops in one process.
#[derive(Default)]
struct SurfaceCache(Option<(PictureKey, Vec<u8>)>);

/// What a cached picture shows: the surface, the school's logo, its size
/// and the screen width.
type PictureKey = (Surface, Option<Logo>, u32, u32, u32);

impl std::fmt::Debug for SurfaceCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "SurfaceCache(drawn)"
        } else {
            "SurfaceCache(empty)"
        })
    }
}

impl SurfaceCache {
    fn get(
        &mut self,
        surface: Surface,
        logo: Option<&Logo>,
        (w, h): (u32, u32),
        screen_width: u32,
    ) -> &[u8] {
        let key = (surface, logo.cloned(), w, h, screen_width);
        if self.0.as_ref().is_none_or(|(k, _)| *k != key) {
            let rgb = student_surface(key.0.clone(), key.1.clone(), w, h, screen_width);
            self.0 = Some((key, rgb));
        }
        self.0.as_ref().map_or(&[], |(_, rgb)| rgb)
    }
}

/// Copies the `w`-wide RGB picture `rgb` into `frame` at (`x`, `y`), clipped.
fn paste(frame: &mut Frame, rgb: &[u8], w: u32, x: u32, y: u32) {
    let (fw, w) = (frame.width as usize, w as usize);
    let cols = w.min(fw.saturating_sub(x as usize));
    let rows = (frame.height as usize).saturating_sub(y as usize);
    for (r, src) in rgb.chunks_exact(w * 3).take(rows).enumerate() {
        let d = ((y as usize + r) * fw + x as usize) * 3;
        frame.rgb[d..d + cols * 3].copy_from_slice(&src[..cols * 3]);
    }
}

/// Most activity events the headless desktop keeps between two reports.
const MAX_PENDING_ACTIVITY: usize = 10_000;

/// The synthetic browser tabs of a signed-in headless desktop.
fn sample_tabs() -> Vec<Tab> {
    vec![
        Tab {
            id: 1,
            window_id: 1,
            title: "Lesson notes".into(),
            url: "https://notes.school.example/year9/volcanoes".into(),
            active: true,
        },
        Tab {
            id: 2,
            window_id: 1,
            title: "Volcano - Encyclopedia".into(),
            url: "https://encyclopedia.example/wiki/Volcano".into(),
            active: false,
        },
    ]
}

impl HeadlessDesktop {
    /// The power actions carried out so far (the synthetic desktop records
    /// them instead of powering anything off).
    pub fn power_actions(&self) -> Vec<lectern_proto::power::PowerAction> {
        self.power_actions.clone()
    }

    /// Sends Wake-on-LAN packets to `to` instead of the broadcast address
    /// (tests listen on loopback).
    pub fn redirect_wake(&mut self, to: std::net::SocketAddr) {
        self.wake_redirect = Some(to);
    }

    /// Reports the inventory `source` gives.
    pub fn set_inventory(&mut self, source: std::sync::Arc<dyn lectern_desktop::InventorySource>) {
        self.inventory = Some(source);
    }

    /// Gives each user a home at `root/<user>` (created here), so sent and
    /// collected files work on the synthetic desktop (tests).
    pub fn set_home_root(&mut self, root: &std::path::Path) {
        self.home_root = Some(root.to_path_buf());
    }

    /// The policy last applied (tests).
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

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
                tabs: if logged_in { sample_tabs() } else { Vec::new() },
                extension: if logged_in {
                    ExtensionState::Connected
                } else {
                    ExtensionState::Unknown
                },
                ..DeviceState::default()
            },
            lock_text: None,
            message: None,
            command_lock: false,
            command_block: false,
            policy: Policy::default(),
            view_answer: None,
            ask_timeouts: Vec::new(),
            unanswered: Vec::new(),
            broadcast: None,
            web_filter: None,
            activity: Vec::new(),
            lock_picture: SurfaceCache::default(),
            message_picture: SurfaceCache::default(),
            controller: None,
            injected: Vec::new(),
            requests: Vec::new(),
            notices: Vec::new(),
            logo: None,
            logo_picture: None,
            inventory: None,
            power_actions: Vec::new(),
            wake_redirect: None,
            home_root: None,
            aup_surface: false,
            aup: None,
        }
    }

    fn record(&mut self, kind: &str, url: Option<String>, title: Option<String>) {
        if self.activity.len() >= MAX_PENDING_ACTIVITY {
            self.activity.remove(0);
        }
        self.activity.push(ActivityEvent {
            kind: kind.into(),
            user: self.state.user.clone(),
            url,
            title,
            app: self.state.focused_app.clone(),
            at: crate::now_ms(),
            blocked: false,
        });
    }

    /// Records `n` synthetic website visits (benchmarks and tests of the
    /// activity queue); beyond the desktop's own bound they go to the queue in
    /// one piece.
    pub fn synthesize_activity(&mut self, n: usize) {
        let at = crate::now_ms();
        self.activity.extend((0..n).map(|i| ActivityEvent {
            kind: "web".into(),
            user: self.state.user.clone(),
            url: Some(format!("https://site{}.example/page/{i}", i % 97)),
            title: Some(format!("Synthetic page {i}")),
            app: Some("Web Browser".into()),
            at: at + i as i64,
            blocked: false,
        }));
    }

    /// The teacher's web lists in force, if any.
    pub fn web_filter(&self) -> Option<&(WebFilterMode, Vec<String>, Vec<String>)> {
        self.web_filter.as_ref()
    }

    /// Scripts the student's answer to live-view requests: allow or deny after
    /// a delay, or (`None`) never answer.
    pub fn script_view_answer(&mut self, answer: Option<(bool, Duration)>) {
        self.view_answer = answer;
    }

    /// The time each question asked with one gave the student, in order.
    pub fn ask_timeouts(&self) -> &[Duration] {
        &self.ask_timeouts
    }

    fn refresh_enforcement(&mut self) {
        self.state.locked = self.command_lock || self.policy.screen_locked;
        self.state.internet_blocked = self.command_block || self.policy.internet_blocked;
    }

    /// The student dismisses the message on screen.
    pub fn dismiss_message(&mut self) {
        self.message = None;
        self.state.message_shown = false;
    }

    /// A user signs in (scripted student action).
    pub fn login(&mut self, user: &str) {
        let fresh = Self::new(&self.hostname, Some(user.into()));
        self.state.user = fresh.state.user;
        self.state.focused_app = fresh.state.focused_app;
        self.state.window_title = fresh.state.window_title;
        self.state.url = None;
        self.state.tabs = fresh.state.tabs;
        self.state.extension = fresh.state.extension;
        self.record("login", None, None);
    }

    /// The student starts the application `name` (scripted student action).
    /// With an application list in force that blocks it, it is closed at once
    /// and the attempt recorded as blocked, as the X11 guard does; else it
    /// takes the focus. Returns whether it was allowed.
    pub fn start_app(&mut self, name: &str) -> bool {
        let p = &self.policy;
        let listed = |list: &[String]| list.iter().any(|a| a.eq_ignore_ascii_case(name));
        let blocked = match p.app_mode {
            lectern_proto::AppMode::Off => false,
            lectern_proto::AppMode::BlockList => listed(&p.app_block_list),
            lectern_proto::AppMode::AllowList => !listed(&p.app_allow_list),
        };
        if blocked {
            self.activity.push(ActivityEvent {
                kind: "app".into(),
                user: self.state.user.clone(),
                app: Some(name.to_string()),
                title: Some("blocked".into()),
                at: crate::now_ms(),
                blocked: true,
                ..Default::default()
            });
            return false;
        }
        self.state.focused_app = Some(name.to_string());
        self.record("app", None, Some(name.to_string()));
        true
    }

    /// Broadcast frames shown since the broadcast started.
    pub fn broadcast_frames(&self) -> Option<u64> {
        self.broadcast.as_ref().map(|b| b.1)
    }

    /// The teacher controlling this desktop (the notice shown), if any.
    pub fn controller(&self) -> Option<&str> {
        self.controller.as_deref()
    }

    /// Every input event injected by remote control, oldest first.
    pub fn injected(&self) -> &[lectern_proto::control::InputEvent] {
        &self.injected
    }

    /// The school's name the lock screen shows.
    pub fn school(&self) -> &str {
        &self.school
    }

    /// The school's logo (PNG) the lock screen would show.
    pub fn school_logo(&self) -> Option<&[u8]> {
        self.logo.as_deref()
    }

    /// The message currently on screen.
    pub fn message(&self) -> Option<&str> {
        self.message.as_deref()
    }
}

impl HeadlessDesktop {
    /// The synthetic student raises a hand or chats (the simulator, tests).
    pub fn student_sends(&mut self, r: lectern_desktop::StudentRequest) {
        self.requests.push(r);
    }

    /// What the server said about the student's requests, oldest first.
    pub fn notices(&self) -> &[lectern_desktop::StudentNotice] {
        &self.notices
    }

    /// Pretends to show acceptable use policies (the synthetic student then
    /// accepts with [`HeadlessDesktop::student_sends`]).
    pub fn with_aup_surface(mut self) -> Self {
        self.aup_surface = true;
        self
    }

    /// The acceptable use policy shown now, if any.
    pub fn aup_shown(&self) -> Option<&lectern_proto::aup::AcceptableUse> {
        self.aup.as_ref()
    }
}

impl Desktop for HeadlessDesktop {
    fn user_home(&self) -> Result<lectern_desktop::UserHome, DesktopError> {
        let root = self
            .home_root
            .as_ref()
            .ok_or(DesktopError::Unsupported("files"))?;
        let user = self
            .state
            .user
            .clone()
            .ok_or_else(|| DesktopError::Failed("nobody is logged in".into()))?;
        let dir = root.join(&user);
        std::fs::create_dir_all(&dir).map_err(|e| DesktopError::Failed(e.to_string()))?;
        Ok(lectern_desktop::UserHome {
            user,
            dir,
            owner: None,
        })
    }

    // Remote control of the synthetic desktop records what it was given
    // (tests, the simulator), checked as the real backends check it.
    fn start_control(&mut self, controller: &str) -> Result<(), DesktopError> {
        self.controller = Some(controller.to_string());
        Ok(())
    }

    fn inject_input(
        &mut self,
        events: &[lectern_proto::control::InputEvent],
    ) -> Result<(), DesktopError> {
        if self.controller.is_none() {
            return Err(DesktopError::Failed("nobody controls this screen".into()));
        }
        let ok = events.iter().filter(|e| e.check().is_ok()).cloned();
        self.injected.extend(ok);
        // A long simulated session keeps only the newest.
        let excess = self.injected.len().saturating_sub(10_000);
        self.injected.drain(..excess);
        Ok(())
    }

    fn stop_control(&mut self) -> Result<(), DesktopError> {
        self.controller = None;
        Ok(())
    }

    fn set_school(&mut self, school: &str) {
        self.school = school.to_string();
    }

    fn set_school_logo(&mut self, png: Option<&[u8]>) {
        self.logo = png.map(<[u8]>::to_vec);
        self.logo_picture = png.and_then(|b| {
            Logo::from_png(b)
                .inspect_err(|e| tracing::warn!("school logo left out: {e}"))
                .ok()
        });
    }

    fn capabilities(&self) -> Vec<Capability> {
        use Capability::*;
        vec![
            Thumbnails,
            Message,
            LaunchUrl,
            Lock,
            InternetBlock,
            Logout,
            Tabs,
            WebFilter,
            RemoteControl,
            Broadcast,
            Power,
        ]
    }

    fn state(&self) -> DeviceState {
        self.state.clone()
    }

    fn capture(&mut self, width: u32) -> Result<Frame, DesktopError> {
        let white = [255, 255, 255];
        if self.state.locked {
            let mut f = Canvas::new(width, LOCK_BG).finish();
            let lock = Surface::Lock {
                school: self.school.clone(),
                text: self.lock_text.clone(),
            };
            f.rgb = self
                .lock_picture
                .get(
                    lock,
                    self.logo_picture.as_ref(),
                    (f.width, f.height),
                    f.width,
                )
                .to_vec();
            return Ok(f);
        }
        if let Some((title, frames)) = &self.broadcast {
            let mut c = Canvas::new(width, BROADCAST_BG);
            c.text(80, 80, 48, 1120, &format!("Broadcast: {title}"), white);
            c.text(
                80,
                160,
                32,
                1120,
                &format!("{frames} frames shown"),
                [200, 200, 200],
            );
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
        let restricted: Vec<&str> = [
            (self.state.printing_disabled, "no printing"),
            (self.state.removable_media_disabled, "no USB"),
            (self.state.sound_muted, "muted"),
        ]
        .iter()
        .filter(|(on, _)| *on)
        .map(|(_, t)| *t)
        .collect();
        if !restricted.is_empty() {
            c.text(900, 684, 28, 370, &restricted.join(" "), [255, 200, 120]);
        }
        let mut frame = c.finish();
        if let Some(m) = &self.message {
            // Where the X11 backend puts it: centred, half the screen wide, 16:9.
            let (w, h) = (frame.width / 2, frame.width * 9 / 32);
            let message = Surface::Message {
                from: None,
                text: m.clone(),
            };
            let rgb = self.message_picture.get(message, None, (w, h), frame.width);
            let (x, y) = ((frame.width - w) / 2, frame.height.saturating_sub(h) / 2);
            paste(&mut frame, rgb, w, x, y);
        }
        Ok(frame)
    }

    fn lock(&mut self, text: Option<&str>) -> Result<(), DesktopError> {
        self.command_lock = true;
        self.lock_text = text.map(str::to_string);
        self.refresh_enforcement();
        Ok(())
    }

    fn unlock(&mut self) -> Result<(), DesktopError> {
        self.command_lock = false;
        self.lock_text = None;
        self.refresh_enforcement();
        if self.policy.screen_locked {
            return Err(DesktopError::Failed(
                "the screen stays locked by policy (a group or lesson locks it)".into(),
            ));
        }
        Ok(())
    }

    fn show_message(&mut self, text: &str) -> Result<(), DesktopError> {
        self.message = Some(text.to_string());
        self.state.message_shown = true;
        Ok(())
    }

    fn clear_message(&mut self) -> Result<(), DesktopError> {
        self.dismiss_message();
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
        let id = self.state.tabs.iter().map(|t| t.id).max().unwrap_or(0) + 1;
        for t in &mut self.state.tabs {
            t.active = false;
        }
        self.state.tabs.push(Tab {
            id,
            window_id: 1,
            title: url.to_string(),
            url: url.to_string(),
            active: true,
        });
        self.record("web", Some(url.to_string()), Some(url.to_string()));
        Ok(())
    }

    fn set_internet_blocked(&mut self, blocked: bool) -> Result<(), DesktopError> {
        self.command_block = blocked;
        self.refresh_enforcement();
        if !blocked && self.policy.internet_blocked {
            return Err(DesktopError::Failed(
                "the internet stays blocked by policy (a group or lesson blocks it)".into(),
            ));
        }
        Ok(())
    }

    fn logout(&mut self) -> Result<(), DesktopError> {
        if self.state.user.is_none() {
            return Err(DesktopError::Failed("no user is logged in".into()));
        }
        self.record("logout", None, None);
        self.state = DeviceState {
            internet_blocked: self.state.internet_blocked,
            locked: self.state.locked,
            printing_disabled: self.state.printing_disabled,
            removable_media_disabled: self.state.removable_media_disabled,
            sound_muted: self.state.sound_muted,
            policy_version: self.state.policy_version,
            ..DeviceState::default()
        };
        self.message = None;
        Ok(())
    }

    fn apply_policy(&mut self, policy: &Policy) -> Vec<String> {
        self.policy = policy.clone();
        self.state.printing_disabled = policy.printing_disabled;
        self.state.removable_media_disabled = policy.removable_media_disabled;
        self.state.sound_muted = policy.sound_muted;
        self.state.policy_version = policy.version;
        self.refresh_enforcement();
        // The synthetic desktop can enforce everything.
        Vec::new()
    }

    fn start_broadcast(&mut self, title: &str) -> Result<(), DesktopError> {
        self.broadcast = Some((title.to_string(), 0));
        self.state.broadcast_shown = true;
        Ok(())
    }

    fn broadcast_frame(&mut self, jpeg: &[u8]) -> Result<(), DesktopError> {
        match &mut self.broadcast {
            Some((_, frames)) if jpeg.starts_with(&[0xFF, 0xD8]) => {
                *frames += 1;
                Ok(())
            }
            Some(_) => Err(DesktopError::Failed(
                "broadcast frame is not a JPEG image".into(),
            )),
            None => Err(DesktopError::Failed("no broadcast is running".into())),
        }
    }

    fn stop_broadcast(&mut self) -> Result<(), DesktopError> {
        self.broadcast = None;
        self.state.broadcast_shown = false;
        Ok(())
    }

    fn close_tab(&mut self, tab_id: i64) -> Result<(), DesktopError> {
        let before = self.state.tabs.len();
        self.state.tabs.retain(|t| t.id != tab_id);
        if self.state.tabs.len() == before {
            return Err(DesktopError::Failed(format!("no tab {tab_id} is open")));
        }
        if !self.state.tabs.iter().any(|t| t.active) {
            if let Some(t) = self.state.tabs.last_mut() {
                t.active = true;
            }
        }
        Ok(())
    }

    fn set_web_filter(
        &mut self,
        mode: WebFilterMode,
        allow: &[String],
        block: &[String],
    ) -> Result<(), DesktopError> {
        self.web_filter =
            (mode != WebFilterMode::Off).then(|| (mode, allow.to_vec(), block.to_vec()));
        Ok(())
    }

    fn take_activity(&mut self) -> Vec<ActivityEvent> {
        std::mem::take(&mut self.activity)
    }

    fn take_requests(&mut self) -> Vec<lectern_desktop::StudentRequest> {
        std::mem::take(&mut self.requests)
    }

    fn student_notice(
        &mut self,
        notice: lectern_desktop::StudentNotice,
    ) -> Result<(), DesktopError> {
        // A teacher's answer shows as their message would.
        if let lectern_desktop::StudentNotice::HandClosed { answer: Some(a) } = &notice {
            self.show_message(a)?;
        }
        self.notices.push(notice);
        Ok(())
    }

    fn show_acceptable_use(
        &mut self,
        policy: Option<&lectern_proto::aup::AcceptableUse>,
    ) -> Result<(), DesktopError> {
        if !self.aup_surface {
            return Err(DesktopError::Unsupported("acceptable use policies"));
        }
        self.aup = policy.cloned();
        Ok(())
    }

    fn inventory(&self) -> Option<std::sync::Arc<dyn lectern_desktop::InventorySource>> {
        self.inventory.clone()
    }

    fn power_supported(&self, _action: lectern_proto::power::PowerAction) -> bool {
        true
    }

    fn power(&mut self, action: lectern_proto::power::PowerAction) -> Result<(), DesktopError> {
        self.power_actions.push(action);
        Ok(())
    }

    fn send_wake(
        &mut self,
        packets: &[[u8; 102]],
        target: std::net::SocketAddr,
    ) -> Result<(), DesktopError> {
        let to = self.wake_redirect.unwrap_or(target);
        let sock = std::net::UdpSocket::bind("127.0.0.1:0")
            .map_err(|e| DesktopError::Failed(e.to_string()))?;
        for p in packets {
            sock.send_to(p, to)
                .map_err(|e| DesktopError::Failed(e.to_string()))?;
        }
        Ok(())
    }

    fn ask_remote_view_for(&mut self, teacher: &str, timeout: Duration) -> oneshot::Receiver<bool> {
        self.ask_timeouts.push(timeout);
        self.ask_remote_view(teacher)
    }

    fn ask_remote_view(&mut self, _teacher: &str) -> oneshot::Receiver<bool> {
        let (tx, rx) = oneshot::channel();
        match self.view_answer {
            Some((allow, delay)) => {
                std::thread::spawn(move || {
                    std::thread::sleep(delay);
                    let _ = tx.send(allow);
                });
            }
            // The student ignores the question: keep the sender so the request
            // stays open until the agent's timeout.
            None => self.unanswered.push(tx),
        }
        rx
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apply_command;
    use lectern_proto::{Command, CommandResult};

    const MESSAGE_BG: Rgb = lectern_student_ui::SURFACE_COLOURS.message;

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
                    text: Some("Eyes front".into()),
                    minutes: None
                }
            ),
            CommandResult::Done
        );
        let locked = d.capture(640).unwrap();
        assert!(share(&locked, LOCK_BG) > 0.8);
        // The student UI's lock screen, text and all: white glyph pixels
        // across the middle band (the note and the title).
        let white = locked
            .rgb
            .chunks(3)
            .skip(640 * 120)
            .take(640 * 120)
            .filter(|p| p.iter().all(|&c| c > 200))
            .count();
        assert!(white > 500, "lock text in the thumbnail: {white} pixels");
        apply_command(&mut d, &Command::Unlock);
        apply_command(
            &mut d,
            &Command::Message {
                text: "Hello".into(),
            },
        );
        assert!(d.state().message_shown);
        let shown = d.capture(320).unwrap();
        assert!(share(&shown, MESSAGE_BG) > 0.1);
        // Centred: the middle is the message, the corners the desktop.
        let at = |x: usize, y: usize| &shown.rgb[(y * 320 + x) * 3..][..3];
        assert_eq!(at(5, 5), DESKTOP_BG);
        assert_eq!(at(100, 110), MESSAGE_BG);
        d.dismiss_message();
        assert!(!d.state().message_shown);
    }

    #[test]
    fn policy_lock_outlasts_a_teacher_unlock() {
        let mut d = HeadlessDesktop::new("PC1", Some("amy".into()));
        let p = Policy {
            version: 4,
            screen_locked: true,
            sound_muted: true,
            ..Policy::default()
        };
        assert!(d.apply_policy(&p).is_empty());
        assert!(d.state().locked && d.state().sound_muted);
        assert_eq!(d.state().policy_version, 4);
        assert!(matches!(
            apply_command(&mut d, &Command::Unlock),
            CommandResult::Failed { .. }
        ));
        assert!(d.state().locked);
        apply_command(
            &mut d,
            &Command::Lock {
                text: None,
                minutes: None,
            },
        );
        d.apply_policy(&Policy::default());
        assert!(d.state().locked, "the teacher's own lock remains");
        apply_command(&mut d, &Command::Unlock);
        assert!(!d.state().locked && !d.state().sound_muted);
    }

    #[test]
    fn scripted_view_answers() {
        let mut d = HeadlessDesktop::new("PC1", None);
        d.script_view_answer(Some((true, Duration::from_millis(1))));
        assert_eq!(d.ask_remote_view("t").blocking_recv(), Ok(true));
        d.script_view_answer(None);
        let mut rx = d.ask_remote_view("t");
        std::thread::sleep(Duration::from_millis(20));
        assert!(
            rx.try_recv().is_err(),
            "no answer, but the question stays open"
        );
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
