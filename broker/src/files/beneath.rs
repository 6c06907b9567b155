//! Opening files beneath a session's directory and nowhere else. Every open
//! resolves its whole path in the kernel with `openat2(RESOLVE_BENEATH |
//! RESOLVE_NO_MAGICLINKS)` from a descriptor of the directory, so a symlink
//! that leads out, whether it was there before the call or swapped in while
//! it runs, fails the open itself (there is no check-then-open gap). Where
//! the kernel lacks `openat2` (or a seccomp filter refuses it), paths are
//! walked one component at a time with `O_NOFOLLOW`, and every symlink is
//! refused.

use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use rustix::fs::{Mode, OFlags, ResolveFlags, Stat};
use rustix::io::Errno;

use super::error::FileError;
use super::path::RelPath;

/// Times an open is retried when the kernel saw a rename race (`EAGAIN`).
const RACE_RETRIES: usize = 16;

/// Set once `openat2` turned out to be missing (`ENOSYS`) or filtered (`EPERM`).
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
                // ENOSYS: an old kernel; EPERM: a seccomp profile that
                // predates the call (older container runtimes). The walk is
                // stricter (no symlink at all), never looser.
                Err(Errno::NOSYS | Errno::PERM) => {
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

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    /// `root/sub/file`, `root/inner -> sub/file`, `root/outer -> ../secret`.
    fn fixture() -> (tempfile::TempDir, Root) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::fs::write(root.join("sub/file"), "inside").unwrap();
        std::fs::write(dir.path().join("secret"), "outside").unwrap();
        std::os::unix::fs::symlink("sub/file", root.join("inner")).unwrap();
        std::os::unix::fs::symlink("../secret", root.join("outer")).unwrap();
        let opened = Root::open(&root).unwrap();
        (dir, opened)
    }

    fn read(fd: OwnedFd) -> String {
        let mut text = String::new();
        std::fs::File::from(fd).read_to_string(&mut text).unwrap();
        text
    }

    fn open(
        how: fn(std::os::fd::BorrowedFd<'_>, &RelPath, OFlags, Mode) -> Result<OwnedFd, Errno>,
        root: &Root,
        path: &str,
    ) -> Result<OwnedFd, Errno> {
        let flags = OFlags::RDONLY | OFlags::CLOEXEC;
        how(
            root.fd.as_fd(),
            &RelPath::parse(path).unwrap(),
            flags,
            Mode::empty(),
        )
    }

    #[test]
    fn openat2_follows_links_inside_and_refuses_links_out() {
        let (_dir, root) = fixture();
        assert_eq!(
            read(open(openat2_beneath, &root, "sub/file").unwrap()),
            "inside"
        );
        assert_eq!(
            read(open(openat2_beneath, &root, "inner").unwrap()),
            "inside"
        );
        assert_eq!(
            open(openat2_beneath, &root, "outer").unwrap_err(),
            Errno::XDEV
        );
    }

    #[test]
    fn the_walk_without_openat2_refuses_every_symlink() {
        let (_dir, root) = fixture();
        assert_eq!(read(open(walk, &root, "sub/file").unwrap()), "inside");
        assert!(open(walk, &root, "").is_ok(), "the directory itself");
        assert_eq!(open(walk, &root, "inner").unwrap_err(), Errno::LOOP);
        assert_eq!(open(walk, &root, "outer").unwrap_err(), Errno::LOOP);
        std::os::unix::fs::symlink("sub", root.dir().join("dirlink")).unwrap();
        assert!(open(walk, &root, "dirlink/file").is_err());
    }
}
