//! The low-level keyboard hook that keeps a locked student from switching
//! away: Alt+Tab, the Windows keys, Alt+Esc, Ctrl+Esc, Alt+F4, Alt+Space,
//! Ctrl+Shift+Esc. It runs on its own thread, whose message loop Windows
//! needs to call the hook. Ctrl+Alt+Del (the secure attention sequence) never
//! reaches any hook: Windows reserves it, so it cannot be blocked.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;

use lectern_desktop::DesktopError;
use windows_sys::Win32::Foundation::{LPARAM, LRESULT, WPARAM};
use windows_sys::Win32::System::LibraryLoader::GetModuleHandleW;
use windows_sys::Win32::System::Threading::GetCurrentThreadId;
use windows_sys::Win32::UI::Input::KeyboardAndMouse::{
    VK_APPS, VK_CONTROL, VK_ESCAPE, VK_F4, VK_LCONTROL, VK_LMENU, VK_LSHIFT, VK_LWIN, VK_MENU,
    VK_RCONTROL, VK_RMENU, VK_RSHIFT, VK_RWIN, VK_SHIFT, VK_SPACE, VK_TAB,
};
use windows_sys::Win32::UI::WindowsAndMessaging::{
    CallNextHookEx, DispatchMessageW, GetMessageW, PeekMessageW, PostThreadMessageW,
    SetWindowsHookExW, TranslateMessage, UnhookWindowsHookEx, HC_ACTION, KBDLLHOOKSTRUCT,
    LLKHF_ALTDOWN, LLKHF_UP, MSG, PM_NOREMOVE, WH_KEYBOARD_LL, WM_QUIT,
};

use crate::wide::last_error;

/// Keys swallowed by the hook since the process started (for tests and logs).
static SWALLOWED: AtomicU64 = AtomicU64::new(0);
/// Whether a hook is installed (there is at most one per process).
static INSTALLED: AtomicBool = AtomicBool::new(false);
/// Modifier keys as seen by the hook (bit per modifier, see [`Mods`]).
static MODS: AtomicU64 = AtomicU64::new(0);

/// How many keys the keyboard hook has swallowed in this process.
pub fn swallowed_keys() -> u64 {
    SWALLOWED.load(Ordering::SeqCst)
}

/// Modifier keys held down.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Mods {
    /// Ctrl.
    pub ctrl: bool,
    /// Alt.
    pub alt: bool,
    /// Shift.
    pub shift: bool,
    /// A Windows key.
    pub win: bool,
}

impl Mods {
    fn bits(self) -> u64 {
        u64::from(self.ctrl)
            | u64::from(self.alt) << 1
            | u64::from(self.shift) << 2
            | u64::from(self.win) << 3
    }
    fn from_bits(b: u64) -> Self {
        Mods {
            ctrl: b & 1 != 0,
            alt: b & 2 != 0,
            shift: b & 4 != 0,
            win: b & 8 != 0,
        }
    }
}

/// Whether a locked screen swallows key `vk` pressed with `mods` held: the
/// shortcuts that switch or close windows or open the Start menu or the task
/// manager. Plain typing still reaches the lock window.
pub fn swallows(vk: u16, mods: Mods) -> bool {
    match vk {
        VK_LWIN | VK_RWIN | VK_APPS => true,
        VK_TAB => mods.alt,
        VK_ESCAPE => mods.alt || mods.ctrl,
        VK_F4 => mods.alt,
        VK_SPACE => mods.alt,
        _ => mods.win,
    }
}

/// The modifier `vk` is, as a [`Mods`] with that one flag set.
fn modifier(vk: u16) -> Option<Mods> {
    let m = Mods::default();
    match vk {
        VK_CONTROL | VK_LCONTROL | VK_RCONTROL => Some(Mods { ctrl: true, ..m }),
        VK_MENU | VK_LMENU | VK_RMENU => Some(Mods { alt: true, ..m }),
        VK_SHIFT | VK_LSHIFT | VK_RSHIFT => Some(Mods { shift: true, ..m }),
        VK_LWIN | VK_RWIN => Some(Mods { win: true, ..m }),
        _ => None,
    }
}

unsafe extern "system" fn hook_proc(code: i32, wparam: WPARAM, lparam: LPARAM) -> LRESULT {
    if code == HC_ACTION as i32 {
        // SAFETY: for HC_ACTION, lparam points to a KBDLLHOOKSTRUCT.
        let kb = &*(lparam as *const KBDLLHOOKSTRUCT);
        let vk = kb.vkCode as u16;
        let up = kb.flags & LLKHF_UP != 0;
        if let Some(m) = modifier(vk) {
            // Modifiers are tracked even when swallowed (the Windows key),
            // so a later Win+R is still recognised.
            if up {
                MODS.fetch_and(!m.bits(), Ordering::SeqCst);
            } else {
                MODS.fetch_or(m.bits(), Ordering::SeqCst);
            }
        }
        let mut mods = Mods::from_bits(MODS.load(Ordering::SeqCst));
        mods.alt |= kb.flags & LLKHF_ALTDOWN != 0;
        if swallows(vk, mods) {
            if !up {
                SWALLOWED.fetch_add(1, Ordering::SeqCst);
            }
            return 1;
        }
    }
    CallNextHookEx(std::ptr::null_mut(), code, wparam, lparam)
}

/// An installed keyboard hook; dropping it removes the hook and ends its thread.
pub struct KeyboardHook {
    thread_id: u32,
    join: Option<JoinHandle<()>>,
}

impl KeyboardHook {
    /// Installs the hook on a new thread.
    pub fn install() -> Result<Self, DesktopError> {
        if INSTALLED.swap(true, Ordering::SeqCst) {
            return Err(DesktopError::Failed(
                "a keyboard hook is already installed".into(),
            ));
        }
        let (tx, rx) = mpsc::channel();
        let join = std::thread::Builder::new()
            .name("lectern-keyboard-hook".into())
            .spawn(move || run(tx))
            .map_err(|e| DesktopError::Failed(format!("cannot start the hook thread: {e}")));
        let join = match join {
            Ok(j) => j,
            Err(e) => {
                INSTALLED.store(false, Ordering::SeqCst);
                return Err(e);
            }
        };
        match rx.recv() {
            Ok(Ok(thread_id)) => Ok(KeyboardHook {
                thread_id,
                join: Some(join),
            }),
            Ok(Err(e)) => {
                let _ = join.join();
                INSTALLED.store(false, Ordering::SeqCst);
                Err(e)
            }
            Err(_) => {
                INSTALLED.store(false, Ordering::SeqCst);
                Err(DesktopError::Failed("the hook thread ended".into()))
            }
        }
    }
}

/// The hook thread: installs the hook, reports, then pumps messages until
/// WM_QUIT (Windows calls the hook from this loop).
fn run(ready: mpsc::Sender<Result<u32, DesktopError>>) {
    // SAFETY: standard hook installation and message loop on this thread.
    unsafe {
        let mut msg: MSG = std::mem::zeroed();
        // Creates this thread's message queue before anyone posts WM_QUIT.
        PeekMessageW(&mut msg, std::ptr::null_mut(), 0, 0, PM_NOREMOVE);
        let hook = SetWindowsHookExW(
            WH_KEYBOARD_LL,
            Some(hook_proc),
            GetModuleHandleW(std::ptr::null()),
            0,
        );
        if hook.is_null() {
            let _ = ready.send(Err(last_error("SetWindowsHookExW(WH_KEYBOARD_LL)")));
            return;
        }
        MODS.store(0, Ordering::SeqCst);
        let _ = ready.send(Ok(GetCurrentThreadId()));
        while GetMessageW(&mut msg, std::ptr::null_mut(), 0, 0) > 0 {
            TranslateMessage(&msg);
            DispatchMessageW(&msg);
        }
        UnhookWindowsHookEx(hook);
    }
}

impl Drop for KeyboardHook {
    fn drop(&mut self) {
        // SAFETY: posts to the hook thread's queue, made before it reported.
        unsafe { PostThreadMessageW(self.thread_id, WM_QUIT, 0, 0) };
        if let Some(j) = self.join.take() {
            let _ = j.join();
        }
        INSTALLED.store(false, Ordering::SeqCst);
    }
}
