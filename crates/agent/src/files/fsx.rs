//! File-system steps that never follow a symbolic link: every folder is opened
//! under its parent's descriptor with `O_NOFOLLOW | O_DIRECTORY`, every file
//! with `O_NOFOLLOW`, so a student cannot point the (root) agent elsewhere by
//! swapping a folder for a link.

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

fn cstr(name: &str) -> io::Result<CString> {
    CString::new(name).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in a name"))
}

fn check(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// Opens the folder `path` itself (the user's home), not following a link.
pub fn open_root(path: &Path) -> io::Result<OwnedFd> {
    use std::os::unix::ffi::OsStrExt;
    let c = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in a path"))?;
    let flags = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC;
    // SAFETY: `c` is a valid C string; the descriptor is owned by the result.
    let fd = check(unsafe { libc::open(c.as_ptr(), flags) })?;
    // SAFETY: `fd` was just opened and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Opens the folder `name` under `dir`, without following a link.
pub fn open_dir(dir: &OwnedFd, name: &str) -> io::Result<OwnedFd> {
    let c = cstr(name)?;
    let flags = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC;
    // SAFETY: valid descriptor and C string; the result is owned below.
    let fd = check(unsafe { libc::openat(dir.as_raw_fd(), c.as_ptr(), flags) })?;
    // SAFETY: `fd` was just opened and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Opens (making it if missing, owned by `owner`) the folder `name` under `dir`.
pub fn make_dir(dir: &OwnedFd, name: &str, owner: Option<(u32, u32)>) -> io::Result<OwnedFd> {
    let c = cstr(name)?;
    // SAFETY: valid descriptor and C string.
    let made = unsafe { libc::mkdirat(dir.as_raw_fd(), c.as_ptr(), 0o755) };
    if made < 0 {
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::AlreadyExists {
            return Err(e);
        }
    }
    let fd = open_dir(dir, name)?;
    if made == 0 {
        chown(&fd, owner)?;
    }
    Ok(fd)
}

/// Gives a new file or folder to the user.
pub fn chown(fd: &impl AsRawFd, owner: Option<(u32, u32)>) -> io::Result<()> {
    if let Some((uid, gid)) = owner {
        // SAFETY: valid descriptor.
        check(unsafe { libc::fchown(fd.as_raw_fd(), uid, gid) })?;
    }
    Ok(())
}

/// Opens `name` under `dir` for appending, creating it (0644, owned by
/// `owner`) if missing; never through a link.
pub fn open_part(dir: &OwnedFd, name: &str, owner: Option<(u32, u32)>) -> io::Result<File> {
    let c = cstr(name)?;
    let flags = libc::O_RDWR | libc::O_CREAT | libc::O_NOFOLLOW | libc::O_CLOEXEC;
    // SAFETY: valid descriptor and C string; the result is owned below.
    let fd = check(unsafe { libc::openat(dir.as_raw_fd(), c.as_ptr(), flags, 0o644) })?;
    // SAFETY: `fd` was just opened and is owned by nobody else.
    let file = unsafe { File::from_raw_fd(fd) };
    if !file.metadata()?.is_file() {
        return Err(io::Error::other("not a regular file"));
    }
    chown(&file, owner)?;
    Ok(file)
}

/// Opens the regular file `name` under `dir` for reading, not through a link.
pub fn open_read(dir: &OwnedFd, name: &str) -> io::Result<File> {
    let c = cstr(name)?;
    let flags = libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK;
    // SAFETY: valid descriptor and C string; the result is owned below.
    let fd = check(unsafe { libc::openat(dir.as_raw_fd(), c.as_ptr(), flags) })?;
    // SAFETY: `fd` was just opened and is owned by nobody else.
    Ok(unsafe { File::from_raw_fd(fd) })
}

/// Gives `from` under `dir` the new name `to` without replacing anything
/// (`AlreadyExists` if `to` is taken).
pub fn link_new(dir: &OwnedFd, from: &str, to: &str) -> io::Result<()> {
    let (f, t) = (cstr(from)?, cstr(to)?);
    let d = dir.as_raw_fd();
    // SAFETY: valid descriptors and C strings; flags 0 never follows links.
    check(unsafe { libc::linkat(d, f.as_ptr(), d, t.as_ptr(), 0) })?;
    Ok(())
}

/// Removes the file `name` under `dir`.
pub fn unlink(dir: &OwnedFd, name: &str) -> io::Result<()> {
    let c = cstr(name)?;
    // SAFETY: valid descriptor and C string.
    check(unsafe { libc::unlinkat(dir.as_raw_fd(), c.as_ptr(), 0) })?;
    Ok(())
}

/// What `name` under `dir` is, without following a link.
pub fn kind(dir: &OwnedFd, name: &str) -> io::Result<Kind> {
    let c = cstr(name)?;
    // SAFETY: zeroed stat is a valid out-parameter.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: valid descriptor, C string and out-pointer.
    check(unsafe {
        libc::fstatat(
            dir.as_raw_fd(),
            c.as_ptr(),
            &mut st,
            libc::AT_SYMLINK_NOFOLLOW,
        )
    })?;
    Ok(match st.st_mode & libc::S_IFMT {
        libc::S_IFREG => Kind::File(st.st_size as u64),
        libc::S_IFDIR => Kind::Dir,
        _ => Kind::Other,
    })
}

/// A directory entry's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A regular file of this size.
    File(u64),
    /// A folder.
    Dir,
    /// A link, device, socket…: never collected.
    Other,
}

/// The names in the folder `dir` (through `/proc/self/fd`, so the folder
/// read is the one opened, whatever its path now points at).
pub fn names(dir: &OwnedFd) -> io::Result<Vec<String>> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(format!("/proc/self/fd/{}", dir.as_raw_fd()))? {
        if let Some(n) = e?.file_name().to_str() {
            out.push(n.to_string());
        }
    }
    out.sort();
    Ok(out)
}
