//! The gateway's private state directory (`STATE_DIR`): where the login-token
//! salt and the logout revocations outlive a restart. The directory is
//! created with mode 0700 and every file in it with mode 0600; a file is
//! replaced by writing a sibling and renaming it over, so a crash never
//! leaves half a file.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::Context;

/// The directory used when `STATE_DIR` is unset: `$XDG_STATE_HOME/dispatch-gateway`,
/// else `$HOME/.local/state/dispatch-gateway`.
pub fn default_dir() -> Option<PathBuf> {
    let non_empty = |name| std::env::var_os(name).filter(|v| !v.is_empty());
    if let Some(state) = non_empty("XDG_STATE_HOME") {
        return Some(PathBuf::from(state).join("dispatch-gateway"));
    }
    non_empty("HOME").map(|home| PathBuf::from(home).join(".local/state/dispatch-gateway"))
}

/// An opened, private state directory.
#[derive(Clone, Debug)]
pub struct StateDir {
    path: PathBuf,
}

impl StateDir {
    /// Creates `path` (mode 0700) if needed and checks that it is writable.
    pub fn open(path: &Path) -> anyhow::Result<Self> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(path)
            .with_context(|| {
                format!(
                    "ERROR: cannot create the state directory {} (set STATE_DIR to a writable directory)",
                    path.display()
                )
            })?;
        let dir = Self {
            path: path.to_path_buf(),
        };
        let probe = dir.temp_path("writable");
        dir.write_new(&probe, b"")
            .and_then(|()| fs::remove_file(&probe))
            .with_context(|| {
                format!(
                    "ERROR: the state directory {} is not writable (set STATE_DIR to a writable directory)",
                    path.display()
                )
            })?;
        Ok(dir)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The contents of file `name`, `None` when it does not exist.
    pub fn read(&self, name: &str) -> io::Result<Option<Vec<u8>>> {
        match fs::read(self.path.join(name)) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(err) => Err(err),
        }
    }

    /// Replaces file `name` with `bytes` atomically.
    pub fn replace(&self, name: &str, bytes: &[u8]) -> io::Result<()> {
        let temp = self.temp_path(name);
        self.write_new(&temp, bytes)?;
        fs::rename(&temp, self.path.join(name)).inspect_err(|_| {
            let _ = fs::remove_file(&temp);
        })
    }

    /// Writes file `name` unless it exists; returns what the file holds
    /// afterwards (`bytes`, or what another process wrote first).
    pub fn create_once(&self, name: &str, bytes: &[u8]) -> io::Result<Vec<u8>> {
        let temp = self.temp_path(name);
        self.write_new(&temp, bytes)?;
        let linked = fs::hard_link(&temp, self.path.join(name));
        let _ = fs::remove_file(&temp);
        match linked {
            Ok(()) => Ok(bytes.to_vec()),
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists => {
                fs::read(self.path.join(name))
            }
            Err(err) => Err(err),
        }
    }

    fn temp_path(&self, name: &str) -> PathBuf {
        self.path.join(format!(
            ".{name}.{}.{}",
            std::process::id(),
            crate::auth::random_secret().get(..12).unwrap_or_default()
        ))
    }

    fn write_new(&self, path: &Path, bytes: &[u8]) -> io::Result<()> {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)?;
        file.set_permissions(fs::Permissions::from_mode(0o600))?;
        file.write_all(bytes)?;
        file.sync_all()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_private_replaced_and_created_once() {
        let root = tempfile::tempdir().unwrap();
        let dir = StateDir::open(&root.path().join("a/b")).unwrap();
        let mode = fs::metadata(dir.path()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        assert_eq!(dir.read("x").unwrap(), None);
        dir.replace("x", b"one").unwrap();
        dir.replace("x", b"two").unwrap();
        assert_eq!(dir.read("x").unwrap().unwrap(), b"two");
        let mode = fs::metadata(dir.path().join("x"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(dir.create_once("y", b"first").unwrap(), b"first");
        assert_eq!(dir.create_once("y", b"second").unwrap(), b"first");
        assert_eq!(
            fs::read_dir(dir.path()).unwrap().count(),
            2,
            "no temp files left"
        );
    }
}
