//! UTF-16 strings and Windows errors.

use lectern_desktop::DesktopError;
use windows_sys::Win32::Foundation::GetLastError;

/// `s` as a NUL-terminated UTF-16 string.
pub(crate) fn wide(s: &str) -> Vec<u16> {
    s.encode_utf16().chain(Some(0)).collect()
}

/// The text of a UTF-16 buffer up to its first NUL (lossy).
pub(crate) fn from_wide(buf: &[u16]) -> String {
    let end = buf.iter().position(|&c| c == 0).unwrap_or(buf.len());
    String::from_utf16_lossy(&buf[..end])
}

/// `what` failed, with the thread's last Windows error code.
pub(crate) fn last_error(what: &str) -> DesktopError {
    // SAFETY: reads the calling thread's last-error value.
    let code = unsafe { GetLastError() };
    DesktopError::Failed(format!("{what} failed (Windows error {code})"))
}
