//! Opening files beneath a session's directory and nowhere else. Every open
//! resolves its whole path in the kernel with `openat2(RESOLVE_BENEATH |
//! RESOLVE_NO_MAGICLINKS)` from a descriptor of the directory, so a symlink
//! that leads out, whether it was there before the call or swapped in while
//! it runs, fails the open itself (there is no check-then-open gap). Where
//! the kernel lacks `openat2`, paths are walked one component at a time with
//! `O_NOFOLLOW`, and every symlink is refused.

use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use rustix::fs::{Mode, OFlags, ResolveFlags, Stat};
use rustix::io::Errno;

use super::error::FileError;
use super::path::RelPath;

/// Times an open is retried when the kernel saw a rename race (`EAGAIN`).
const RACE_RETRIES: usize = 16;

/// Set once `openat2` turned out to be missing (`ENOSYS`).
static NO_OPENAT2: AtomicBool = AtomicBool::new(false);

/// An open session directory, the root every path is resolved beneath.
#[derive(Debug)]
pub struct Root {
    fd: OwnedFd,
    dir: PathBuf,
}

impl Root {
    /// Opens `dir` (the session's directory; a symlink in its place is refused).
    pub fn open(dir: &Path) -> Result<Self, FileError> {
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let fd = rustix::fs::open(dir, flags, Mode::empty())
            .map_err(|err| FileError::from_errno(err, ""))?;
        Ok(Self {
            fd,
            dir: dir.to_path_buf(),
        })
    }

    /// The directory's absolute path (as the session's shell sees it).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Opens `path` beneath the root with `flags` (and `mode` when creating).
    pub fn open_at(&self, path: &RelPath, flags: OFlags, mode: Mode) -> Result<OwnedFd, FileError> {
        let flags = flags | OFlags::CLOEXEC | OFlags::NOCTTY;
        let opened = if NO_OPENAT2.load(Ordering::Relaxed) {
            walk(self.fd.as_fd(), path, flags, mode)
        } else {
            match openat2_beneath(self.fd.as_fd(), path, flags, mode) {
                Err(Errno::NOSYS) => {
                    NO_OPENAT2.store(true, Ordering::Relaxed);
                    tracing::warn!(
                        "openat2 is unavailable: symlinks in session directories are not followed"
                    );
                    walk(self.fd.as_fd(), path, flags, mode)
                }
                other => other,
            }
        };
        opened.map_err(|err| FileError::from_errno(err, &path.to_string()))
    }

    /// Opens the directory at `path`.
    pub fn open_dir(&self, path: &RelPath) -> Result<OwnedFd, FileError> {
        self.open_at(path, OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty())
    }

    /// Opens `path` for reading without side effects on a FIFO (`O_NONBLOCK`)
    /// and says what it is.
    pub fn open_read(&self, path: &RelPath) -> Result<(OwnedFd, Stat), FileError> {
        let fd = self.open_at(path, OFlags::RDONLY | OFlags::NONBLOCK, Mode::empty())?;
        let stat =
            rustix::fs::fstat(&fd).map_err(|err| FileError::from_errno(err, &path.to_string()))?;
        Ok((fd, stat))
    }
}

fn openat2_beneath(
    dir: std::os::fd::BorrowedFd<'_>,
    path: &RelPath,
    flags: OFlags,
    mode: Mode,
) -> Result<OwnedFd, Errno> {
    let resolve = ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS;
    let path = path.as_open_path();
    let mut attempt = 0;
    loop {
        match rustix::fs::openat2(dir, path.as_str(), flags, mode, resolve) {
            Err(Errno::AGAIN) if attempt < RACE_RETRIES => attempt += 1,
            other => return other,
        }
    }
}

/// Resolves `path` one component at a time without following any symlink.
fn walk(
    dir: std::os::fd::BorrowedFd<'_>,
    path: &RelPath,
    flags: OFlags,
    mode: Mode,
) -> Result<OwnedFd, Errno> {
    let Some((parent, name)) = path.split_last() else {
        return rustix::fs::openat(dir, ".", flags, mode);
    };
    let step = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let mut current = rustix::fs::openat(dir, ".", step, Mode::empty())?;
    for component in parent.names() {
        current = rustix::fs::openat(&current, component.as_str(), step, Mode::empty())?;
    }
    rustix::fs::openat(&current, name, flags | OFlags::NOFOLLOW, mode)
}

/// Whether `stat` is of a regular file.
pub fn is_regular(stat: &Stat) -> bool {
    rustix::fs::FileType::from_raw_mode(stat.st_mode) == rustix::fs::FileType::RegularFile
}

/// Whether `stat` is of a directory.
pub fn is_directory(stat: &Stat) -> bool {
    rustix::fs::FileType::from_raw_mode(stat.st_mode) == rustix::fs::FileType::Directory
}

/// Modification time in milliseconds since the Unix epoch.
pub fn modified_ms(stat: &Stat) -> i64 {
    stat.st_mtime.saturating_mul(1000) + (stat.st_mtime_nsec as i64) / 1_000_000
}

/// The refusal of a file that is neither regular nor a directory.
pub fn special_file(path: &RelPath, stat: &Stat) -> FileError {
    use rustix::fs::FileType;
    let what = match FileType::from_raw_mode(stat.st_mode) {
        FileType::Fifo => "a FIFO",
        FileType::Socket => "a socket",
        FileType::CharacterDevice | FileType::BlockDevice => "a device file",
        FileType::Symlink => "a symlink",
        _ => "not a regular file",
    };
    FileError::forbidden(format!(
        "{:?} is {what}; only regular files and directories are served",
        path.to_string()
    ))
}
