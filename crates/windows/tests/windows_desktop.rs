//! The Windows backend on a real (Wine) desktop: run with
//! `scripts/test-windows.sh`, or `cargo test -p lectern-windows --target
//! x86_64-pc-windows-gnu` with an X display. The tests share one screen, one
//! cursor and one keyboard hook, so they run one at a time (`SCREEN`).
#![cfg(windows)]

use std::sync::{mpsc, Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use lectern_desktop::{encode_jpeg, Desktop, DesktopError, Frame};
use lectern_proto::Capability;
use lectern_student_ui::SURFACE_COLOURS;
use lectern_windows::*;
use windows_sys::Win32::Foundation::{HWND, LPARAM, POINT, RECT};
use windows_sys::Win32::Graphics::Gdi::{
    CreateSolidBrush, EnumDisplayMonitors, GetMonitorInfoW, HDC, HMONITOR, MONITORINFO,
};
use windows_sys::Win32::System::LibraryLoader::GetModuleHandleW;
use windows_sys::Win32::System::Threading::GetCurrentThreadId;
use windows_sys::Win32::UI::Input::KeyboardAndMouse::{VK_LWIN, VK_TAB};
use windows_sys::Win32::UI::WindowsAndMessaging::*;

static SCREEN: Mutex<()> = Mutex::new(());

fn screen() -> MutexGuard<'static, ()> {
    SCREEN.lock().unwrap_or_else(|e| e.into_inner())
}

/// Generous: Wine on a busy 2-core machine is slow; no test asserts on time.
const DEADLINE: Duration = Duration::from_secs(30);

fn wait_until(what: &str, mut ok: impl FnMut() -> bool) {
    let end = Instant::now() + DEADLINE;
    while !ok() {
        assert!(Instant::now() < end, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn wide(s: &str) -> Vec<u16> {
    s.encode_utf16().chain(Some(0)).collect()
}

/// A topmost window of one colour on its own thread, until dropped.
struct ColourWindow {
    thread_id: u32,
    hwnd: usize,
    join: Option<std::thread::JoinHandle<()>>,
}

impl ColourWindow {
    fn show(rgb: [u8; 3], rect: RECT, title: &str) -> Self {
        let (tx, rx) = mpsc::channel();
        let title = title.to_string();
        let join = std::thread::spawn(move || unsafe {
            let mut msg: MSG = std::mem::zeroed();
            PeekMessageW(&mut msg, std::ptr::null_mut(), 0, 0, 0);
            let class = wide(&format!("LecternTest{}_{}_{}", rgb[0], rgb[1], rgb[2]));
            let colour = u32::from(rgb[0]) | u32::from(rgb[1]) << 8 | u32::from(rgb[2]) << 16;
            let wc = WNDCLASSW {
                style: 0,
                lpfnWndProc: Some(DefWindowProcW),
                cbClsExtra: 0,
                cbWndExtra: 0,
                hInstance: GetModuleHandleW(std::ptr::null()),
                hIcon: std::ptr::null_mut(),
                hCursor: std::ptr::null_mut(),
                hbrBackground: CreateSolidBrush(colour),
                lpszMenuName: std::ptr::null(),
                lpszClassName: class.as_ptr(),
            };
            RegisterClassW(&wc);
            let t = wide(&title);
            let h = CreateWindowExW(
                WS_EX_TOPMOST,
                class.as_ptr(),
                t.as_ptr(),
                WS_POPUP | WS_VISIBLE,
                rect.left,
                rect.top,
                rect.right - rect.left,
                rect.bottom - rect.top,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                GetModuleHandleW(std::ptr::null()),
                std::ptr::null(),
            );
            SetForegroundWindow(h);
            tx.send((GetCurrentThreadId(), h as usize)).unwrap();
            while GetMessageW(&mut msg, std::ptr::null_mut(), 0, 0) > 0 {
                TranslateMessage(&msg);
                DispatchMessageW(&msg);
            }
            DestroyWindow(h);
        });
        let (thread_id, hwnd) = rx.recv().unwrap();
        assert_ne!(hwnd, 0, "test window created");
        ColourWindow {
            thread_id,
            hwnd,
            join: Some(join),
        }
    }
}

impl Drop for ColourWindow {
    fn drop(&mut self) {
        unsafe { PostThreadMessageW(self.thread_id, WM_QUIT, 0, 0) };
        if let Some(j) = self.join.take() {
            let _ = j.join();
        }
    }
}

fn monitor_rects() -> Vec<RECT> {
    unsafe extern "system" fn each(m: HMONITOR, _: HDC, _: *mut RECT, data: LPARAM) -> i32 {
        let mut info: MONITORINFO = std::mem::zeroed();
        info.cbSize = std::mem::size_of::<MONITORINFO>() as u32;
        GetMonitorInfoW(m, &mut info);
        (*(data as *mut Vec<RECT>)).push(info.rcMonitor);
        1
    }
    let mut v: Vec<RECT> = Vec::new();
    unsafe {
        EnumDisplayMonitors(
            std::ptr::null_mut(),
            std::ptr::null(),
            Some(each),
            &mut v as *mut _ as LPARAM,
        )
    };
    v
}

/// Visible top-level windows of window class `class`.
fn windows_of(class: &str) -> Vec<HWND> {
    unsafe extern "system" fn each(h: HWND, data: LPARAM) -> i32 {
        let (class, out) = &mut *(data as *mut (String, Vec<HWND>));
        let mut buf = [0u16; 128];
        let n = GetClassNameW(h, buf.as_mut_ptr(), 128);
        if IsWindowVisible(h) != 0 && String::from_utf16_lossy(&buf[..n as usize]) == *class {
            out.push(h);
        }
        1
    }
    let mut data = (class.to_string(), Vec::new());
    unsafe { EnumWindows(Some(each), &mut data as *mut _ as LPARAM) };
    data.1
}

fn window_rect(h: HWND) -> (i32, i32, i32, i32) {
    let mut r = RECT {
        left: 0,
        top: 0,
        right: 0,
        bottom: 0,
    };
    unsafe { GetWindowRect(h, &mut r) };
    (r.left, r.top, r.right, r.bottom)
}

fn is_topmost(h: HWND) -> bool {
    unsafe { GetWindowLongW(h, GWL_EXSTYLE) as u32 & WS_EX_TOPMOST != 0 }
}

fn pixel(f: &Frame, x: u32, y: u32) -> [u8; 3] {
    let i = ((y * f.width + x) * 3) as usize;
    [f.rgb[i], f.rgb[i + 1], f.rgb[i + 2]]
}

fn near(a: [u8; 3], b: [u8; 3], tol: u8) -> bool {
    a.iter().zip(b).all(|(x, y)| x.abs_diff(y) <= tol)
}

fn whole_screen() -> RECT {
    let (w, h) = unsafe { (GetSystemMetrics(SM_CXSCREEN), GetSystemMetrics(SM_CYSCREEN)) };
    RECT {
        left: 0,
        top: 0,
        right: w,
        bottom: h,
    }
}

/// Records the input the windows forward to their painters (which are the
/// real [`StudentUiPainter`]s).
#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<(Surface, SurfaceInput)>>>);

struct Recording {
    log: Recorder,
    inner: StudentUiPainter,
}

impl SurfacePainter for Recording {
    fn paint(&mut self, surface: &Surface, width: u32, height: u32) -> Vec<u8> {
        self.inner.paint(surface, width, height)
    }
    fn input(
        &mut self,
        surface: &Surface,
        width: u32,
        height: u32,
        input: SurfaceInput,
    ) -> Option<SurfaceAction> {
        self.log.0.lock().unwrap().push((surface.clone(), input));
        self.inner.input(surface, width, height, input)
    }
}

impl Recorder {
    /// Painters for a desktop: each window's records into this log.
    fn painters(&self) -> PainterFactory {
        let log = self.clone();
        Box::new(move || {
            Box::new(Recording {
                log: log.clone(),
                inner: StudentUiPainter::new(),
            })
        })
    }

    fn keys_on_lock(&self) -> Vec<u16> {
        let v = self.0.lock().unwrap();
        v.iter()
            .filter_map(|(s, i)| match (s, i) {
                (Surface::Lock { .. }, SurfaceInput::KeyDown(k)) => Some(*k),
                _ => None,
            })
            .collect()
    }
}

fn key(vk: u16, modifiers: Modifiers) -> RemoteInput {
    RemoteInput::Key { vk, modifiers }
}

/// The student-ui button fills (exact colours while not hovered).
const OK_FILL: [u8; 3] = [60, 60, 80];
const ALLOW_FILL: [u8; 3] = [40, 140, 60];
const DENY_FILL: [u8; 3] = [180, 50, 50];

/// The screen point at the centre of the pixels of colour `fill` inside
/// window `h`, from a full-size capture of the screen: where the real UI
/// drew that button.
fn button_on_screen(desk: &mut WindowsDesktop, h: HWND, fill: [u8; 3]) -> POINT {
    let s = whole_screen();
    let (l, t, r, b) = window_rect(h);
    let mut found = None;
    wait_until("the button is drawn", || {
        let f = desk.capture(s.right as u32).unwrap();
        let (mut sx, mut sy, mut n) = (0i64, 0i64, 0i64);
        for y in t.max(0)..b.min(f.height as i32) {
            for x in l.max(0)..r.min(f.width as i32) {
                if pixel(&f, x as u32, y as u32) == fill {
                    (sx, sy, n) = (sx + i64::from(x), sy + i64::from(y), n + 1);
                }
            }
        }
        // A button is thousands of pixels; a few stray ones are not it.
        found = (n > 500).then(|| POINT {
            x: (sx / n) as i32,
            y: (sy / n) as i32,
        });
        found.is_some()
    });
    found.unwrap()
}

/// Clicks the button of colour `fill` in window `h` by moving the real
/// pointer there (send_input) and pressing the left button.
fn click_button(desk: &mut WindowsDesktop, h: HWND, fill: [u8; 3]) {
    let p = button_on_screen(desk, h, fill);
    let s = whole_screen();
    let frac = |v: i32, max: i32| f64::from(v) / f64::from(max - 1);
    send_input(RemoteInput::PointerMove {
        x: frac(p.x, s.right),
        y: frac(p.y, s.bottom),
    })
    .unwrap();
    // Under Wine a pointer event still on its way from the X server can move
    // the cursor back; click only once it is where it was sent.
    wait_until("the pointer is on the button", || {
        let mut c = POINT { x: 0, y: 0 };
        unsafe { GetCursorPos(&mut c) };
        (c.x - p.x).abs() <= 2 && (c.y - p.y).abs() <= 2
    });
    for down in [true, false] {
        send_input(RemoteInput::Button {
            button: MouseButton::Left,
            down,
        })
        .unwrap();
    }
}

#[test]
fn capture_returns_the_screen() {
    let _s = screen();
    let mut desk = WindowsDesktop::new().unwrap();
    let colour = [200, 30, 120];
    let _w = ColourWindow::show(colour, whole_screen(), "Lectern capture test");
    let mut last = None;
    wait_until("the capture shows the coloured window", || {
        let f = desk.capture(320).unwrap();
        let ok = [(10, 10), (160, 100), (300, 190)]
            .iter()
            .all(|&(x, y)| near(pixel(&f, x, y.min(f.height - 1)), colour, 2));
        last = Some(f);
        ok
    });
    let f = last.unwrap();
    let s = whole_screen();
    assert_eq!(f.width, 320);
    assert_eq!(
        f.height,
        (s.bottom as u32 * 320 + s.right as u32 / 2) / s.right as u32
    );
    // Widths are clamped to 16..=3840, aspect kept.
    assert_eq!(desk.capture(4).unwrap().width, 16);
}

#[test]
fn dxgi_failure_falls_back_to_gdi() {
    let _s = screen();
    let mut c = FallbackCapturer::with_first(|| Err(DesktopError::Failed("no duplication".into())));
    assert_eq!(c.active(), "gdi");
    assert!(c.fallback_reason().is_some());
    let img = c.grab().unwrap();
    assert_eq!(img.pixels.len(), (img.width * img.height * 4) as usize);

    // A preferred capturer that opens but then fails is dropped for GDI.
    struct Broken;
    impl Capturer for Broken {
        fn name(&self) -> &'static str {
            "dxgi"
        }
        fn grab(&mut self) -> Result<Bgra, DesktopError> {
            Err(DesktopError::Failed("access lost".into()))
        }
    }
    let mut c = FallbackCapturer::with_first(|| Ok(Box::new(Broken) as Box<dyn Capturer>));
    assert_eq!(c.active(), "dxgi");
    assert!(
        c.grab().is_ok(),
        "GDI answered when the preferred capturer failed"
    );
    assert_eq!(c.active(), "gdi");

    // The real thing: Wine has no desktop duplication, so the desktop uses GDI.
    let real = DxgiCapturer::open();
    let desk = WindowsDesktop::new().unwrap();
    if is_wine() {
        let e = real.err().expect("Wine 8 has no DXGI desktop duplication");
        println!("DXGI under Wine: {e}");
        assert_eq!(desk.capture_method(), "gdi");
        assert!(desk.capture_fallback_reason().is_some());
    }
}

#[test]
fn lock_covers_each_monitor_swallows_shortcuts_and_unlock_removes_it() {
    let _s = screen();
    let rec = Recorder::default();
    let mut desk = WindowsDesktop::with_painter(rec.painters()).unwrap();
    desk.set_school("Hillside School");
    desk.lock(Some("Eyes on the board, please")).unwrap();
    let monitors = monitor_rects();
    assert!(!monitors.is_empty());
    println!("monitors: {}", monitors.len());
    wait_until("a lock window per monitor", || {
        windows_of(LOCK_CLASS).len() == monitors.len()
    });
    let mut covered: Vec<_> = windows_of(LOCK_CLASS)
        .into_iter()
        .map(window_rect)
        .collect();
    let mut want: Vec<_> = monitors
        .iter()
        .map(|r| (r.left, r.top, r.right, r.bottom))
        .collect();
    covered.sort();
    want.sort();
    assert_eq!(covered, want, "each monitor covered exactly");
    assert!(windows_of(LOCK_CLASS).into_iter().all(is_topmost));
    assert!(desk.keyboard_hook_active());
    let st = desk.state();
    assert!(st.locked);
    assert!(st.unsupported.contains(&CTRL_ALT_DEL.to_string()));

    // The lock picture is on screen (its background shows at the bottom right).
    wait_until("the capture shows the lock screen", || {
        let f = desk.capture(320).unwrap();
        near(pixel(&f, 310, f.height - 4), SURFACE_COLOURS.lock, 3)
    });

    // Alt+Tab and the Windows key are swallowed; plain typing reaches the lock
    // window (through the painter), after them, so had Tab got through the
    // window would have seen it first.
    let before = swallowed_keys();
    let alt = Modifiers {
        alt: true,
        ..Modifiers::default()
    };
    let ctrl = Modifiers {
        ctrl: true,
        ..Modifiers::default()
    };
    send_input(key(VK_TAB, alt)).unwrap();
    send_input(key(VK_LWIN, Modifiers::default())).unwrap();
    send_input(key(0x73, alt)).unwrap(); // Alt+F4
    send_input(key(0x1B, ctrl)).unwrap(); // Ctrl+Esc
    send_input(key(0x41, Modifiers::default())).unwrap(); // 'A'
    wait_until(
        "the hook swallowed Alt+Tab, the Windows key, Alt+F4 and Ctrl+Esc",
        || swallowed_keys() >= before + 4,
    );
    wait_until("the lock window got the plain key", || {
        rec.keys_on_lock().contains(&0x41)
    });
    let keys = rec.keys_on_lock();
    assert!(!keys.contains(&VK_TAB), "Tab leaked to the lock: {keys:?}");
    assert!(!keys.contains(&VK_LWIN), "Win leaked to the lock: {keys:?}");
    assert!(!keys.contains(&0x73) && !keys.contains(&0x1B), "{keys:?}");
    assert_eq!(
        windows_of(LOCK_CLASS).len(),
        monitors.len(),
        "Alt+F4 closed nothing"
    );

    desk.unlock().unwrap();
    assert!(
        windows_of(LOCK_CLASS).is_empty(),
        "unlock removes the windows"
    );
    assert!(!desk.keyboard_hook_active(), "unlock removes the hook");
    assert!(!desk.state().locked);
    assert!(!desk.state().unsupported.contains(&CTRL_ALT_DEL.to_string()));
}

#[test]
fn a_second_lock_updates_the_text_and_a_dropped_desktop_cleans_up() {
    let _s = screen();
    let mut desk = WindowsDesktop::new().unwrap();
    desk.lock(None).unwrap();
    desk.lock(Some("new text")).unwrap();
    assert_eq!(windows_of(LOCK_CLASS).len(), monitor_rects().len());
    drop(desk);
    assert!(windows_of(LOCK_CLASS).is_empty());
    // The hook went with it: a new desktop can lock again.
    let mut desk = WindowsDesktop::new().unwrap();
    desk.lock(None).unwrap();
    assert!(desk.keyboard_hook_active());
    desk.unlock().unwrap();
}

#[test]
fn message_appears_on_top_and_is_dismissed() {
    let _s = screen();
    let mut desk = WindowsDesktop::new().unwrap();
    desk.show_message("Please save your work — 5 minutes left")
        .unwrap();
    let msg = windows_of(MESSAGE_CLASS);
    assert_eq!(msg.len(), 1);
    assert!(is_topmost(msg[0]));
    assert!(desk.state().message_shown);
    click_button(&mut desk, msg[0], OK_FILL);
    wait_until("the message is dismissed", || {
        !desk.state().message_shown && windows_of(MESSAGE_CLASS).is_empty()
    });

    // Enter dismisses too (the window has the focus).
    desk.show_message("again").unwrap();
    send_input(key(0x0D, Modifiers::default())).unwrap();
    wait_until("Enter dismisses the message", || {
        !desk.state().message_shown && windows_of(MESSAGE_CLASS).is_empty()
    });
}

#[test]
fn remote_view_question_answers_through_the_oneshot() {
    let _s = screen();
    let mut desk = WindowsDesktop::new().unwrap();
    let mut rx = desk.ask_remote_view("Ms Okafor");
    let ask = windows_of(ASK_CLASS);
    assert_eq!(ask.len(), 1);
    click_button(&mut desk, ask[0], ALLOW_FILL);
    let mut answer = None;
    wait_until("the student answered", || {
        answer = rx.try_recv().ok();
        answer.is_some()
    });
    assert_eq!(answer, Some(true));
    assert!(windows_of(ASK_CLASS).is_empty());

    let mut rx = desk.ask_remote_view("Mr Lee");
    let ask = windows_of(ASK_CLASS);
    click_button(&mut desk, ask[0], DENY_FILL);
    wait_until("the student denied", || rx.try_recv() == Ok(false));

    // A question left open is answered by nobody when the desktop goes.
    let mut rx = desk.ask_remote_view("Mr Lee");
    drop(desk);
    assert!(matches!(
        rx.try_recv(),
        Err(tokio::sync::oneshot::error::TryRecvError::Closed)
    ));
}

#[test]
fn remote_view_question_goes_away_after_the_servers_time() {
    let _s = screen();
    let mut desk = WindowsDesktop::new().unwrap();
    // Two seconds, where the backend's own default is ten.
    let mut rx = desk.ask_remote_view_for("Ms Smith", Duration::from_secs(2));
    assert_eq!(windows_of(ASK_CLASS).len(), 1, "the question is shown");
    // Both, in either order: the window thread destroys the window and
    // drops the answer one after the other.
    wait_until("the question is gone after its time, unanswered", || {
        windows_of(ASK_CLASS).is_empty()
            && matches!(
                rx.try_recv(),
                Err(tokio::sync::oneshot::error::TryRecvError::Closed)
            )
    });
    // The question counts those seconds down.
    let paint = |seconds_left| {
        let ask = Surface::Ask {
            teacher: "Ms Smith".into(),
            seconds_left,
        };
        StudentUiPainter::new().paint(&ask, 640, 360)
    };
    assert_ne!(paint(2), paint(1), "the seconds left are shown");
}

#[test]
fn broadcast_shows_jpeg_frames() {
    let _s = screen();
    let mut desk = WindowsDesktop::new().unwrap();
    assert!(desk.broadcast_frame(b"x").is_err(), "no broadcast yet");
    desk.start_broadcast("Mr Lee's screen").unwrap();
    assert_eq!(windows_of(BROADCAST_CLASS).len(), 1);
    let colour = [230, 200, 20];
    let f = Frame {
        width: 160,
        height: 90,
        rgb: colour.repeat(160 * 90),
    };
    desk.broadcast_frame(&encode_jpeg(&f, 90).unwrap()).unwrap();
    wait_until("the frame is on screen", || {
        let c = desk.capture(320).unwrap();
        near(pixel(&c, 160, c.height / 2), colour, 12)
    });
    assert!(desk.broadcast_frame(b"\xff\xd8 not a jpeg").is_err());
    assert!(desk.state().broadcast_shown);
    desk.stop_broadcast().unwrap();
    assert!(windows_of(BROADCAST_CLASS).is_empty());
}

#[test]
fn state_reports_the_user_and_the_foreground_window() {
    let _s = screen();
    let desk = WindowsDesktop::new().unwrap();
    let title = "Lectern focus test — Ünïcode ✓";
    let w = ColourWindow::show([10, 10, 10], whole_screen(), title);
    unsafe { SetForegroundWindow(w.hwnd as HWND) };
    wait_until("the test window has the focus", || {
        desk.state().window_title.as_deref() == Some(title)
    });
    let st = desk.state();
    assert!(st.user.as_deref().is_some_and(|u| !u.is_empty()), "{st:?}");
    let app = st.focused_app.unwrap();
    assert!(
        app.to_ascii_lowercase().ends_with(".exe"),
        "focused app is this test program: {app}"
    );
    let exe = std::env::current_exe().unwrap();
    assert_eq!(
        app.to_ascii_lowercase(),
        exe.file_name()
            .unwrap()
            .to_string_lossy()
            .to_ascii_lowercase()
    );
}

#[test]
fn send_input_moves_the_cursor_and_refuses_ctrl_alt_del() {
    let _s = screen();
    let s = whole_screen();
    for (fx, fy) in [(0.25, 0.5), (0.75, 0.1)] {
        send_input(RemoteInput::PointerMove { x: fx, y: fy }).unwrap();
        let want = (
            (fx * f64::from(s.right - 1)).round() as i32,
            (fy * f64::from(s.bottom - 1)).round() as i32,
        );
        wait_until("the cursor moved", || {
            let mut p = POINT { x: 0, y: 0 };
            unsafe { GetCursorPos(&mut p) };
            (p.x - want.0).abs() <= 2 && (p.y - want.1).abs() <= 2
        });
    }
    let cad = Modifiers {
        ctrl: true,
        alt: true,
        ..Modifiers::default()
    };
    assert_eq!(send_input(key(0x2E, cad)), Err(InputError::CtrlAltDel));
    send_input(RemoteInput::Wheel {
        delta: -120,
        horizontal: false,
    })
    .unwrap();
}

#[test]
fn capabilities_and_policy_are_honest() {
    let _s = screen();
    let mut desk = WindowsDesktop::new().unwrap();
    let caps = desk.capabilities();
    assert!(caps.contains(&Capability::Lock) && caps.contains(&Capability::Thumbnails));
    assert!(
        !caps.contains(&Capability::InternetBlock),
        "web block not enforced yet"
    );
    let p = lectern_proto::Policy {
        screen_locked: true,
        printing_disabled: true,
        app_mode: lectern_proto::AppMode::BlockList,
        ..Default::default()
    };
    let unsupported = desk.apply_policy(&p);
    assert!(unsupported.contains(&"printing_disabled".to_string()));
    assert!(
        unsupported.contains(&"app_mode".to_string()),
        "application lists are not built for Windows"
    );
    assert!(desk.state().locked, "the policy locks the screen");
    assert!(
        desk.unlock().is_err(),
        "a teacher's unlock leaves the policy lock"
    );
    desk.apply_policy(&lectern_proto::Policy::default());
    assert!(!desk.state().locked);
    assert!(windows_of(LOCK_CLASS).is_empty());
}

#[test]
fn shortcut_rules() {
    let none = Mods::default();
    let alt = Mods { alt: true, ..none };
    let ctrl = Mods { ctrl: true, ..none };
    let win = Mods { win: true, ..none };
    assert!(swallows(VK_TAB, alt));
    assert!(!swallows(VK_TAB, none));
    assert!(swallows(VK_LWIN, none));
    assert!(swallows(0x1B, alt) && swallows(0x1B, ctrl)); // Alt+Esc, Ctrl+Esc
    assert!(swallows(0x73, alt)); // Alt+F4
    assert!(swallows(0x52, win)); // Win+R
    assert!(!swallows(0x41, none) && !swallows(0x41, ctrl)); // typing, Ctrl+A
}

#[test]
fn scaling_averages_and_keeps_the_aspect() {
    // Columns alternate red and blue (BGRA); halving averages them to purple.
    let big = Bgra {
        width: 64,
        height: 32,
        pixels: [[0u8, 0, 255, 0], [255, 0, 0, 0]]
            .concat()
            .repeat(64 * 32 / 2),
    };
    let f = to_frame(&big, 32);
    assert_eq!((f.width, f.height), (32, 16));
    assert!(f
        .rgb
        .chunks(3)
        .all(|p| near([p[0], p[1], p[2]], [128, 0, 128], 1)));
}

#[test]
fn the_student_ui_painter_draws_real_surfaces_and_answers_on_its_buttons() {
    let mut p = StudentUiPainter::new();
    let lock = Surface::Lock {
        school: "École Hillside".into(),
        text: Some("Regardez le tableau — 请看黑板 👀".into()),
    };
    let px = p.paint(&lock, 640, 360);
    assert_eq!(px.len(), 640 * 360 * 4);
    let bg = SURFACE_COLOURS.lock;
    assert_eq!(&px[..3], &[bg[2], bg[1], bg[0]], "BGRA order");
    let ink = px
        .chunks(4)
        .filter(|q| q[..3] != [bg[2], bg[1], bg[0]])
        .count();
    assert!(ink > 2000, "the lock has text: {ink} pixels");
    assert_eq!(p.input(&lock, 640, 360, SurfaceInput::KeyDown(0x1B)), None);

    // The question's buttons answer where they are drawn, found by colour.
    let ask = Surface::Ask {
        teacher: "Ms Okafor".into(),
        seconds_left: 30,
    };
    let mut p = StudentUiPainter::new();
    let px = p.paint(&ask, 640, 360);
    let centre = |fill: [u8; 3]| {
        let (mut sx, mut sy, mut n) = (0usize, 0usize, 0usize);
        for (i, q) in px.chunks(4).enumerate() {
            if [q[2], q[1], q[0]] == fill {
                (sx, sy, n) = (sx + i % 640, sy + i / 640, n + 1);
            }
        }
        assert!(n > 100, "button {fill:?} drawn");
        ((sx / n) as i32, (sy / n) as i32)
    };
    let (allow, deny) = (centre(ALLOW_FILL), centre(DENY_FILL));
    let click = |p: &mut StudentUiPainter, (x, y): (i32, i32)| {
        p.input(&ask, 640, 360, SurfaceInput::PointerMove { x, y });
        p.input(&ask, 640, 360, SurfaceInput::PointerDown { x, y });
        p.input(&ask, 640, 360, SurfaceInput::PointerUp { x, y })
    };
    assert_eq!(click(&mut p, allow), Some(SurfaceAction::Answer(true)));
    assert_eq!(click(&mut p, deny), Some(SurfaceAction::Answer(false)));
    assert_eq!(
        click(&mut p, (1, 1)),
        Some(SurfaceAction::Redraw),
        "off the buttons: no answer"
    );
    assert_eq!(
        p.input(&ask, 640, 360, SurfaceInput::KeyDown(0x1B)),
        Some(SurfaceAction::Answer(false)),
        "Escape denies"
    );
    assert_eq!(
        p.input(&ask, 640, 360, SurfaceInput::KeyDown(0x0D)),
        Some(SurfaceAction::Redraw),
        "Enter never allows"
    );
    let msg = Surface::Message { text: "Hi".into() };
    assert_eq!(
        p.input(&msg, 640, 360, SurfaceInput::KeyDown(0x0D)),
        Some(SurfaceAction::Dismiss)
    );
}
