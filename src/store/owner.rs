//! `dialin pins` started by root works as the owner of the SQLite store's directory.
//!
//! Why: the packaged service runs as the system user `dialin` and keeps its store in
//! `/var/lib/dialin` (mode 0700). An admin naturally runs `dialin pins` as root; SQLite would
//! then create the store, its `-wal` or its `-shm` file as root, and the service could no longer
//! write its own store. Taking the directory owner's user and group before opening the store
//! keeps every file the service's, without asking the admin to remember `runuser -u dialin`.

use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// Who the process now runs as, when it changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Switched {
    /// The directory owner's user id.
    pub uid: u32,
    /// The directory owner's group id.
    pub gid: u32,
}

/// When running as root and `dir` belongs to another user, gives up root for that user and
/// group for the rest of the process. Returns `None` when nothing changed: not root, the
/// directory is root's, or it does not exist yet.
pub fn become_owner_of(dir: &Path) -> io::Result<Option<Switched>> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Ok(None);
    }
    let meta = match std::fs::metadata(dir) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    if meta.uid() == 0 {
        return Ok(None);
    }
    let (uid, gid) = (meta.uid(), meta.gid());
    // Group first, while still allowed to; then the user. No supplementary groups of root's.
    // SAFETY: plain system calls on integers; glibc applies them to every thread.
    unsafe {
        if libc::setgroups(0, std::ptr::null()) != 0
            || libc::setgid(gid) != 0
            || libc::setuid(uid) != 0
        {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(Some(Switched { uid, gid }))
}
