//! Finding the interactive sessions to serve (`WTSEnumerateSessionsW`) and
//! starting a helper in each as its user (`WTSQueryUserToken`,
//! `CreateProcessAsUserW` on the session's `winsta0\default` desktop with the
//! user's own environment).
//!
//! Wine has no Terminal Services: `WTSEnumerateSessionsW` lists nothing and
//! there are no per-user tokens. Under Wine only, the console session
//! (`WTSGetActiveConsoleSessionId`) is served as this process's own user and
//! its helper started with plain `CreateProcessW`; every such step logs that
//! it is the Wine fallback. On Windows a session without a user token gets
//! no helper (a helper must never run as LocalSystem in a user's session).

use std::io;
use std::ptr::null_mut;

use windows_sys::Win32::System::RemoteDesktop::{
    WTSDomainName, WTSEnumerateSessionsW, WTSFreeMemory, WTSGetActiveConsoleSessionId,
    WTSLogoffSession, WTSQuerySessionInformationW, WTSQueryUserToken, WTSUserName,
    WTS_CURRENT_SERVER_HANDLE, WTS_SESSION_INFOW,
};
use windows_sys::Win32::System::Threading::{
    CreateProcessAsUserW, CreateProcessW, CREATE_NO_WINDOW, CREATE_UNICODE_ENVIRONMENT,
    PROCESS_INFORMATION, STARTUPINFOW,
};

use super::win32::{check, from_wide_ptr, is_wine, own_user_sid, token_user_sid, wide, Handle};
use crate::ipc::Account;
use crate::service::SessionInfo;
use crate::windows_rules::serves_state;

/// One interactive Windows session that gets a helper.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WinSession {
    /// The session id as text: what the helper names when it connects.
    pub key: String,
    /// The Windows session id.
    pub id: u32,
    /// `DOMAIN\user`.
    pub user: String,
    /// The user's SID.
    pub account: Account,
    /// How `status` shows it: `session 1`.
    pub place: String,
    /// Found by the Wine fallback (the process's own user, no user token).
    pub wine_fallback: bool,
}

impl SessionInfo for WinSession {
    fn key(&self) -> &str {
        &self.key
    }

    fn user(&self) -> &str {
        &self.user
    }

    fn account(&self) -> &Account {
        &self.account
    }

    fn place(&self) -> &str {
        &self.place
    }

    /// `WTSLogoffSession` (asynchronous: the session closes its programs).
    fn end(&self) -> Result<(), String> {
        if self.wine_fallback {
            return Err("Wine has no user sessions to log off".into());
        }
        // SAFETY: plain call on the local server.
        let ok = unsafe { WTSLogoffSession(WTS_CURRENT_SERVER_HANDLE, self.id, 0) };
        check(ok, "WTSLogoffSession").map_err(|e| e.to_string())
    }
}

/// The sessions to serve now: every active or connected session with a
/// user, or under Wine (which lists none) the console session.
pub fn discover() -> Vec<WinSession> {
    let found = enumerate().unwrap_or_else(|e| {
        tracing::warn!("cannot list Windows sessions: {e}");
        Vec::new()
    });
    if found.is_empty() && is_wine() {
        return wine_console().into_iter().collect();
    }
    found
}

/// `WTSEnumerateSessionsW`, keeping sessions in a served state that have a
/// user and whose user token (hence SID) the service can get.
fn enumerate() -> io::Result<Vec<WinSession>> {
    let mut list: *mut WTS_SESSION_INFOW = null_mut();
    let mut count = 0u32;
    // SAFETY: the list is freed with WTSFreeMemory below.
    check(
        unsafe { WTSEnumerateSessionsW(WTS_CURRENT_SERVER_HANDLE, 0, 1, &mut list, &mut count) },
        "WTSEnumerateSessionsW",
    )?;
    // Wine answers "success, no sessions" with a null list.
    if list.is_null() || count == 0 {
        return Ok(Vec::new());
    }
    // SAFETY: the call returned `count` entries at `list`.
    let entries: Vec<(u32, i32)> = unsafe {
        let all = std::slice::from_raw_parts(list, count as usize);
        let v = all.iter().map(|s| (s.SessionId, s.State)).collect();
        WTSFreeMemory(list.cast());
        v
    };
    Ok(entries
        .into_iter()
        .filter(|(id, state)| *id != 0 && serves_state(*state))
        .filter_map(|(id, _)| session(id))
        .collect())
}

/// Session `id` with its user, if it has one and a token to match.
fn session(id: u32) -> Option<WinSession> {
    let name = query_string(id, WTSUserName)?;
    if name.is_empty() {
        return None;
    }
    let domain = query_string(id, WTSDomainName).unwrap_or_default();
    let token = user_token(id)
        .map_err(|e| tracing::warn!(session = id, "no user token for {name}: {e}"))
        .ok()?;
    let sid = token_user_sid(&token)
        .map_err(|e| tracing::warn!(session = id, "no SID for {name}: {e}"))
        .ok()?;
    Some(WinSession {
        key: id.to_string(),
        id,
        user: if domain.is_empty() {
            name
        } else {
            format!("{domain}\\{name}")
        },
        account: Account(sid),
        place: format!("session {id}"),
        wine_fallback: false,
    })
}

/// The console session as this process's own user: Wine only.
pub fn wine_console() -> Option<WinSession> {
    // SAFETY: no arguments.
    let id = unsafe { WTSGetActiveConsoleSessionId() };
    if id == u32::MAX {
        tracing::warn!("Wine fallback: no console session either");
        return None;
    }
    let sid = own_user_sid()
        .map_err(|e| tracing::warn!("Wine fallback: cannot read our own SID: {e}"))
        .ok()?;
    let user = std::env::var("USERNAME").unwrap_or_else(|_| "wine".into());
    // Said once: the supervisor asks every few seconds.
    static SAID: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if !SAID.swap(true, std::sync::atomic::Ordering::Relaxed) {
        tracing::info!(
            session = id,
            %user,
            "Wine fallback: WTSEnumerateSessions lists no sessions, serving the console session as this process's own user"
        );
    }
    Some(WinSession {
        key: id.to_string(),
        id,
        user,
        account: Account(sid),
        place: format!("session {id} (Wine console)"),
        wine_fallback: true,
    })
}

fn query_string(id: u32, class: i32) -> Option<String> {
    let mut buf = null_mut();
    let mut len = 0u32;
    // SAFETY: the buffer is freed with WTSFreeMemory.
    let ok = unsafe {
        WTSQuerySessionInformationW(WTS_CURRENT_SERVER_HANDLE, id, class, &mut buf, &mut len)
    };
    if ok == 0 {
        return None;
    }
    // SAFETY: the call returned a NUL-terminated string.
    let s = unsafe { from_wide_ptr(buf) };
    // SAFETY: allocated by WTSQuerySessionInformationW.
    unsafe { WTSFreeMemory(buf.cast()) };
    Some(s)
}

/// The primary token of the user logged on to session `id` (LocalSystem
/// with SE_TCB_NAME only).
fn user_token(id: u32) -> io::Result<Handle> {
    use windows_sys::Win32::Security::{DuplicateTokenEx, SecurityImpersonation, TokenPrimary};
    const MAXIMUM_ALLOWED: u32 = 0x0200_0000;
    let mut t = null_mut();
    // SAFETY: `t` receives a token we own.
    check(
        unsafe { WTSQueryUserToken(id, &mut t) },
        "WTSQueryUserToken",
    )?;
    let t = Handle(t);
    let mut dup = null_mut();
    // SAFETY: duplicates a token we own into one we own.
    check(
        unsafe {
            DuplicateTokenEx(
                t.0,
                MAXIMUM_ALLOWED,
                std::ptr::null(),
                SecurityImpersonation,
                TokenPrimary,
                &mut dup,
            )
        },
        "DuplicateTokenEx",
    )?;
    Ok(Handle(dup))
}

/// A started helper process.
pub struct Helper {
    /// Its process handle (waited on, terminated).
    pub process: Handle,
    /// Its process id.
    pub pid: u32,
}

/// Starts `exe helper --session <id>` in `s`: as its user with
/// `CreateProcessAsUserW`, or (Wine fallback) with `CreateProcessW`.
pub fn start_helper(exe: &str, s: &WinSession) -> io::Result<Helper> {
    let mut cmdline = wide(crate::windows_rules::helper_command_line(exe, s.id));
    let app = wide(exe);
    let mut desktop = wide(r"winsta0\default");
    // SAFETY: zeroed STARTUPINFOW/PROCESS_INFORMATION are valid inputs.
    let mut si: STARTUPINFOW = unsafe { std::mem::zeroed() };
    si.cb = std::mem::size_of::<STARTUPINFOW>() as u32;
    si.lpDesktop = desktop.as_mut_ptr();
    let mut pi: PROCESS_INFORMATION = unsafe { std::mem::zeroed() };
    if s.wine_fallback {
        tracing::info!(
            session = s.id,
            "Wine fallback: starting the helper with CreateProcessW as our own user"
        );
        // SAFETY: every pointer is valid for the call; `pi` receives handles we own.
        check(
            unsafe {
                CreateProcessW(
                    app.as_ptr(),
                    cmdline.as_mut_ptr(),
                    std::ptr::null(),
                    std::ptr::null(),
                    0,
                    CREATE_NO_WINDOW,
                    std::ptr::null(),
                    std::ptr::null(),
                    &si,
                    &mut pi,
                )
            },
            "CreateProcessW",
        )?;
    } else {
        let token = user_token(s.id)?;
        let env = Environment::of(&token)?;
        // SAFETY: as above; `env` is a Unicode block that lives through the call.
        check(
            unsafe {
                CreateProcessAsUserW(
                    token.0,
                    app.as_ptr(),
                    cmdline.as_mut_ptr(),
                    std::ptr::null(),
                    std::ptr::null(),
                    0,
                    CREATE_NO_WINDOW | CREATE_UNICODE_ENVIRONMENT,
                    env.0,
                    std::ptr::null(),
                    &si,
                    &mut pi,
                )
            },
            "CreateProcessAsUserW",
        )?;
    }
    drop(Handle(pi.hThread));
    Ok(Helper {
        process: Handle(pi.hProcess),
        pid: pi.dwProcessId,
    })
}

/// A user's environment block (`CreateEnvironmentBlock`), freed on drop.
struct Environment(*mut core::ffi::c_void);

impl Environment {
    fn of(token: &Handle) -> io::Result<Self> {
        use windows_sys::Win32::System::Environment::CreateEnvironmentBlock;
        let mut env = null_mut();
        // SAFETY: `env` receives a block freed by DestroyEnvironmentBlock.
        check(
            unsafe { CreateEnvironmentBlock(&mut env, token.0, 0) },
            "CreateEnvironmentBlock",
        )?;
        Ok(Environment(env))
    }
}

impl Drop for Environment {
    fn drop(&mut self) {
        use windows_sys::Win32::System::Environment::DestroyEnvironmentBlock;
        // SAFETY: made by CreateEnvironmentBlock.
        unsafe { DestroyEnvironmentBlock(self.0) };
    }
}

/// Whether `h` has exited.
pub fn has_exited(h: &Helper) -> bool {
    use windows_sys::Win32::System::Threading::WaitForSingleObject;
    const WAIT_OBJECT_0: u32 = 0;
    // SAFETY: a zero-timeout wait on a handle we own.
    unsafe { WaitForSingleObject(h.process.0, 0) == WAIT_OBJECT_0 }
}

/// Ends helper `h` (it holds nothing that needs a clean shutdown: the
/// service keeps all state).
pub fn terminate(h: &Helper) {
    use windows_sys::Win32::System::Threading::{TerminateProcess, WaitForSingleObject};
    // SAFETY: on a handle we own.
    unsafe {
        TerminateProcess(h.process.0, 1);
        WaitForSingleObject(h.process.0, 2000);
    }
}
