//! Who is logged in and what has the focus.

use windows_sys::Win32::Foundation::CloseHandle;
use windows_sys::Win32::System::RemoteDesktop::{
    WTSFreeMemory, WTSQuerySessionInformationW, WTSUserName, WTS_CURRENT_SERVER_HANDLE,
    WTS_CURRENT_SESSION,
};
use windows_sys::Win32::System::Threading::{
    OpenProcess, QueryFullProcessImageNameW, PROCESS_NAME_WIN32, PROCESS_QUERY_LIMITED_INFORMATION,
};
use windows_sys::Win32::System::WindowsProgramming::GetUserNameW;
use windows_sys::Win32::UI::WindowsAndMessaging::{
    GetForegroundWindow, GetWindowTextW, GetWindowThreadProcessId,
};

use crate::wide::from_wide;

/// The user of this process's session: the session's user name from the
/// terminal services API, else this process's user (the helper runs as the
/// session's user).
pub fn user_name() -> Option<String> {
    session_user()
        .or_else(process_user)
        .filter(|u| !u.is_empty())
}

fn session_user() -> Option<String> {
    let mut buf: *mut u16 = std::ptr::null_mut();
    let mut bytes = 0u32;
    // SAFETY: the API allocates `buf` (freed below) holding `bytes` bytes.
    unsafe {
        if WTSQuerySessionInformationW(
            WTS_CURRENT_SERVER_HANDLE,
            WTS_CURRENT_SESSION,
            WTSUserName,
            &mut buf,
            &mut bytes,
        ) == 0
            || buf.is_null()
        {
            return None;
        }
        let s = from_wide(std::slice::from_raw_parts(buf, bytes as usize / 2));
        WTSFreeMemory(buf.cast());
        Some(s)
    }
}

fn process_user() -> Option<String> {
    let mut buf = [0u16; 257];
    let mut len = buf.len() as u32;
    // SAFETY: writes at most `len` UTF-16 units into `buf`.
    let ok = unsafe { GetUserNameW(buf.as_mut_ptr(), &mut len) } != 0;
    ok.then(|| from_wide(&buf))
}

/// The focused window's program (image file name, e.g. `chrome.exe`) and title.
pub fn focus() -> (Option<String>, Option<String>) {
    // SAFETY: queries about the foreground window; the process handle is closed.
    unsafe {
        let hwnd = GetForegroundWindow();
        if hwnd.is_null() {
            return (None, None);
        }
        let mut title = [0u16; 512];
        let n = GetWindowTextW(hwnd, title.as_mut_ptr(), title.len() as i32);
        let title = (n > 0).then(|| from_wide(&title[..n as usize]));
        let mut pid = 0u32;
        GetWindowThreadProcessId(hwnd, &mut pid);
        (image_name(pid), title)
    }
}

/// The file name of process `pid`'s executable.
fn image_name(pid: u32) -> Option<String> {
    if pid == 0 {
        return None;
    }
    // SAFETY: the handle is checked and closed; the buffer's size is passed.
    unsafe {
        let process = OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, 0, pid);
        if process.is_null() {
            return None;
        }
        let mut buf = [0u16; 1024];
        let mut len = buf.len() as u32;
        let ok =
            QueryFullProcessImageNameW(process, PROCESS_NAME_WIN32, buf.as_mut_ptr(), &mut len);
        CloseHandle(process);
        if ok == 0 {
            return None;
        }
        let path = from_wide(&buf[..len as usize]);
        path.rsplit(['\\', '/']).next().map(str::to_string)
    }
}
