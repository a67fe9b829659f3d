//! Small safe wrappers over the Win32 calls the service needs: handles that
//! close themselves, wide strings, process tokens and their SIDs, security
//! descriptors from SDDL, registry strings. Every `unsafe` block is here or
//! next to the one call it guards.

use std::ffi::{c_void, OsStr, OsString};
use std::io;
use std::os::windows::ffi::{OsStrExt, OsStringExt};
use std::ptr::{null, null_mut};

use windows_sys::Win32::Foundation::{CloseHandle, LocalFree, HANDLE, HLOCAL};
use windows_sys::Win32::Security::Authorization::{
    ConvertSidToStringSidW, ConvertStringSecurityDescriptorToSecurityDescriptorW, SDDL_REVISION_1,
};
use windows_sys::Win32::Security::{
    GetTokenInformation, TokenGroups, TokenUser, PSECURITY_DESCRIPTOR, SECURITY_ATTRIBUTES,
    TOKEN_GROUPS, TOKEN_QUERY, TOKEN_USER,
};
use windows_sys::Win32::System::RemoteDesktop::ProcessIdToSessionId;
use windows_sys::Win32::System::Threading::{
    GetCurrentProcess, OpenProcess, OpenProcessToken, QueryFullProcessImageNameW,
    PROCESS_QUERY_LIMITED_INFORMATION,
};

/// A handle closed on drop.
pub struct Handle(pub HANDLE);

// SAFETY: a kernel handle may be used and closed from any thread.
unsafe impl Send for Handle {}
unsafe impl Sync for Handle {}

impl Drop for Handle {
    fn drop(&mut self) {
        if !self.0.is_null() {
            // SAFETY: we own the handle and close it once.
            unsafe { CloseHandle(self.0) };
        }
    }
}

/// `s` as a NUL-terminated UTF-16 string.
pub fn wide(s: impl AsRef<OsStr>) -> Vec<u16> {
    s.as_ref().encode_wide().chain(Some(0)).collect()
}

/// A NUL-terminated UTF-16 string at `p` as a `String`.
///
/// # Safety
/// `p` must be null or point to a NUL-terminated UTF-16 string.
pub unsafe fn from_wide_ptr(p: *const u16) -> String {
    if p.is_null() {
        return String::new();
    }
    let mut len = 0;
    while *p.add(len) != 0 {
        len += 1;
    }
    OsString::from_wide(std::slice::from_raw_parts(p, len))
        .to_string_lossy()
        .into_owned()
}

/// Fails with the last Win32 error unless `ok` is non-zero.
pub fn check(ok: i32, what: &str) -> io::Result<()> {
    if ok != 0 {
        return Ok(());
    }
    let e = io::Error::last_os_error();
    Err(io::Error::new(e.kind(), format!("{what}: {e}")))
}

/// Opens `pid` for querying (name, token).
pub fn open_process(pid: u32) -> io::Result<Handle> {
    // SAFETY: plain call; the handle is owned by the result.
    let h = unsafe { OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, 0, pid) };
    if h.is_null() {
        return Err(io::Error::last_os_error());
    }
    Ok(Handle(h))
}

/// The access token of `process`, for queries.
pub fn process_token(process: &Handle) -> io::Result<Handle> {
    let mut token = null_mut();
    // SAFETY: `token` receives a handle we then own.
    check(
        unsafe { OpenProcessToken(process.0, TOKEN_QUERY, &mut token) },
        "OpenProcessToken",
    )?;
    Ok(Handle(token))
}

/// One token information class, as bytes (aligned for the structs read from it).
fn token_info(token: &Handle, class: i32) -> io::Result<Vec<u64>> {
    let mut len = 0u32;
    // SAFETY: a size query with no buffer.
    unsafe { GetTokenInformation(token.0, class, null_mut(), 0, &mut len) };
    if len == 0 {
        return Err(io::Error::last_os_error());
    }
    let mut buf = vec![0u64; (len as usize).div_ceil(8)];
    // SAFETY: `buf` holds at least `len` bytes.
    check(
        unsafe { GetTokenInformation(token.0, class, buf.as_mut_ptr().cast(), len, &mut len) },
        "GetTokenInformation",
    )?;
    Ok(buf)
}

/// A SID as its string form (`S-1-5-18`).
///
/// # Safety
/// `sid` must point to a valid SID.
unsafe fn sid_string(sid: *mut c_void) -> io::Result<String> {
    let mut s = null_mut();
    check(
        ConvertSidToStringSidW(sid, &mut s),
        "ConvertSidToStringSidW",
    )?;
    let out = from_wide_ptr(s);
    LocalFree(s as HLOCAL);
    Ok(out)
}

/// The SID of the user a token belongs to.
pub fn token_user_sid(token: &Handle) -> io::Result<String> {
    let buf = token_info(token, TokenUser)?;
    // SAFETY: TokenUser fills a TOKEN_USER at the buffer's start, whose SID
    // points into the same buffer.
    unsafe { sid_string((*buf.as_ptr().cast::<TOKEN_USER>()).User.Sid) }
}

/// Whether the token has `group_sid` among its enabled groups (a filtered
/// administrator's token has Administrators only for deny: not enabled).
pub fn token_has_enabled_group(token: &Handle, group_sid: &str) -> io::Result<bool> {
    const SE_GROUP_ENABLED: u32 = 4;
    let buf = token_info(token, TokenGroups)?;
    // SAFETY: TokenGroups fills a TOKEN_GROUPS whose array follows in the buffer.
    unsafe {
        let groups = &*buf.as_ptr().cast::<TOKEN_GROUPS>();
        let all = std::slice::from_raw_parts(groups.Groups.as_ptr(), groups.GroupCount as usize);
        for g in all {
            if g.Attributes & SE_GROUP_ENABLED != 0 && sid_string(g.Sid)? == group_sid {
                return Ok(true);
            }
        }
    }
    Ok(false)
}

/// The user SID of process `pid`.
pub fn process_user_sid(pid: u32) -> io::Result<String> {
    let p = open_process(pid)?;
    let t = process_token(&p)?;
    token_user_sid(&t)
}

/// The user SID this process runs as.
pub fn own_user_sid() -> io::Result<String> {
    // SAFETY: a pseudo-handle, never closed (ManuallyDrop).
    let me = std::mem::ManuallyDrop::new(Handle(unsafe { GetCurrentProcess() }));
    let t = process_token(&me)?;
    token_user_sid(&t)
}

/// The Windows session process `pid` runs in.
pub fn process_session(pid: u32) -> io::Result<u32> {
    let mut id = 0;
    // SAFETY: plain call with an out parameter.
    check(
        unsafe { ProcessIdToSessionId(pid, &mut id) },
        "ProcessIdToSessionId",
    )?;
    Ok(id)
}

/// The full path of process `pid`'s program.
pub fn process_image(pid: u32) -> io::Result<String> {
    let p = open_process(pid)?;
    let mut buf = vec![0u16; 1024];
    let mut len = buf.len() as u32;
    // SAFETY: `buf` holds `len` UTF-16 units.
    check(
        unsafe { QueryFullProcessImageNameW(p.0, 0, buf.as_mut_ptr(), &mut len) },
        "QueryFullProcessImageNameW",
    )?;
    Ok(String::from_utf16_lossy(&buf[..len as usize]))
}

/// A security descriptor built from SDDL, freed on drop.
pub struct SecurityDescriptor(PSECURITY_DESCRIPTOR);

impl SecurityDescriptor {
    /// Parses `sddl`.
    pub fn from_sddl(sddl: &str) -> io::Result<Self> {
        let mut sd = null_mut();
        // SAFETY: `sd` receives a LocalAlloc'd descriptor we free on drop.
        check(
            unsafe {
                ConvertStringSecurityDescriptorToSecurityDescriptorW(
                    wide(sddl).as_ptr(),
                    SDDL_REVISION_1,
                    &mut sd,
                    null_mut(),
                )
            },
            "ConvertStringSecurityDescriptorToSecurityDescriptorW",
        )?;
        Ok(SecurityDescriptor(sd))
    }

    /// The raw descriptor, valid while `self` lives.
    pub fn as_ptr(&self) -> PSECURITY_DESCRIPTOR {
        self.0
    }

    /// Security attributes pointing at this descriptor (not inheritable).
    pub fn attributes(&self) -> SECURITY_ATTRIBUTES {
        SECURITY_ATTRIBUTES {
            nLength: std::mem::size_of::<SECURITY_ATTRIBUTES>() as u32,
            lpSecurityDescriptor: self.0,
            bInheritHandle: 0,
        }
    }
}

impl Drop for SecurityDescriptor {
    fn drop(&mut self) {
        // SAFETY: allocated by ConvertStringSecurityDescriptorToSecurityDescriptorW.
        unsafe { LocalFree(self.0 as HLOCAL) };
    }
}

/// Whether this process runs under Wine: its ntdll exports
/// `wine_get_version`, which no Windows ntdll has. Only Wine-only fallbacks
/// (no WTS sessions, one account for every process) depend on it.
pub fn is_wine() -> bool {
    use windows_sys::Win32::System::LibraryLoader::{GetModuleHandleW, GetProcAddress};
    // SAFETY: ntdll is always loaded; the name is NUL-terminated.
    unsafe {
        let ntdll = GetModuleHandleW(wide("ntdll.dll").as_ptr());
        !ntdll.is_null() && GetProcAddress(ntdll, c"wine_get_version".as_ptr().cast()).is_some()
    }
}

/// Reads the REG_SZ `value` of HKEY_LOCAL_MACHINE\\`key`; `None` when
/// missing.
pub fn read_hklm_string(key: &str, value: &str) -> Option<String> {
    use windows_sys::Win32::System::Registry::{RegGetValueW, HKEY_LOCAL_MACHINE, RRF_RT_REG_SZ};
    let (k, v) = (wide(key), wide(value));
    let mut len = 0u32;
    // SAFETY: a size query.
    let rc = unsafe {
        RegGetValueW(
            HKEY_LOCAL_MACHINE,
            k.as_ptr(),
            v.as_ptr(),
            RRF_RT_REG_SZ,
            null_mut(),
            null_mut(),
            &mut len,
        )
    };
    if rc != 0 || len == 0 {
        return None;
    }
    let mut buf = vec![0u16; (len as usize).div_ceil(2)];
    // SAFETY: `buf` holds `len` bytes.
    let rc = unsafe {
        RegGetValueW(
            HKEY_LOCAL_MACHINE,
            k.as_ptr(),
            v.as_ptr(),
            RRF_RT_REG_SZ,
            null_mut(),
            buf.as_mut_ptr().cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return None;
    }
    // SAFETY: RRF_RT_REG_SZ guarantees NUL termination within `buf`.
    Some(unsafe { from_wide_ptr(buf.as_ptr()) })
}

/// Deletes `value` of HKEY_LOCAL_MACHINE\\`key` (missing is fine).
pub fn delete_hklm_value(key: &str, value: &str) -> io::Result<()> {
    use windows_sys::Win32::System::Registry::{RegDeleteKeyValueW, HKEY_LOCAL_MACHINE};
    const ERROR_FILE_NOT_FOUND: u32 = 2;
    // SAFETY: both strings are NUL-terminated.
    let rc =
        unsafe { RegDeleteKeyValueW(HKEY_LOCAL_MACHINE, wide(key).as_ptr(), wide(value).as_ptr()) };
    match rc {
        0 | ERROR_FILE_NOT_FOUND => Ok(()),
        e => Err(io::Error::from_raw_os_error(e as i32)),
    }
}

/// The parent process id of `pid`, from a process snapshot.
pub fn parent_pid(pid: u32) -> io::Result<u32> {
    use windows_sys::Win32::System::Diagnostics::ToolHelp::{
        CreateToolhelp32Snapshot, Process32FirstW, Process32NextW, PROCESSENTRY32W,
        TH32CS_SNAPPROCESS,
    };
    // SAFETY: the snapshot handle is owned by `snap`; entries are plain data.
    unsafe {
        let h = CreateToolhelp32Snapshot(TH32CS_SNAPPROCESS, 0);
        if h.is_null() || h as isize == -1 {
            return Err(io::Error::last_os_error());
        }
        let snap = Handle(h);
        let mut e: PROCESSENTRY32W = std::mem::zeroed();
        e.dwSize = std::mem::size_of::<PROCESSENTRY32W>() as u32;
        let mut ok = Process32FirstW(snap.0, &mut e);
        while ok != 0 {
            if e.th32ProcessID == pid {
                return Ok(e.th32ParentProcessID);
            }
            ok = Process32NextW(snap.0, &mut e);
        }
    }
    Err(io::Error::new(
        io::ErrorKind::NotFound,
        format!("no process {pid}"),
    ))
}

/// A null `PCWSTR`.
pub fn no_string() -> *const u16 {
    null()
}
