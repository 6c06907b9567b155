//! Relative paths as the Files service takes them: checked before any file
//! is touched, so that a hostile path is refused with a clear reason rather
//! than by whatever the kernel happens to say.

use super::error::FileError;

/// Longest name of one path component, in bytes (the usual `NAME_MAX`).
pub const MAX_NAME_BYTES: usize = 255;
/// Longest path, in bytes (the usual `PATH_MAX`).
pub const MAX_PATH_BYTES: usize = 4096;

/// A checked path beneath a session's directory: plain names only.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RelPath {
    names: Vec<String>,
}

impl RelPath {
    /// Checks `path`: `/`-separated names, none of them `.` or `..`, no NUL
    /// or other control character, no leading `/`, within the length limits.
    /// Empty segments (`a//b`, a trailing `/`) are ignored; `""` is the
    /// directory itself.
    pub fn parse(path: &str) -> Result<Self, FileError> {
        if path.len() > MAX_PATH_BYTES {
            return Err(FileError::invalid(format!(
                "the path is {} bytes long; the limit is {MAX_PATH_BYTES}",
                path.len()
            )));
        }
        if path.starts_with('/') {
            return Err(FileError::invalid(
                "the path must be relative to the session's directory",
            ));
        }
        if let Some(c) = path.chars().find(|c| c.is_control()) {
            return Err(FileError::invalid(format!(
                "the path holds the control character U+{:04X}",
                u32::from(c)
            )));
        }
        let names = path
            .split('/')
            .filter(|name| !name.is_empty())
            .map(check_name)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self { names })
    }

    /// Whether this is the session's directory itself.
    pub fn is_root(&self) -> bool {
        self.names.is_empty()
    }

    /// The components, in order.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The last component (`""` for the directory itself).
    pub fn file_name(&self) -> &str {
        self.names.last().map_or("", String::as_str)
    }

    /// The path without its last component, and that component.
    pub fn split_last(&self) -> Option<(RelPath, &str)> {
        let (last, parent) = self.names.split_last()?;
        Some((
            RelPath {
                names: parent.to_vec(),
            },
            last,
        ))
    }

    /// The path as `openat2` takes it (`"."` for the directory itself).
    pub fn as_open_path(&self) -> String {
        if self.names.is_empty() {
            ".".to_owned()
        } else {
            self.names.join("/")
        }
    }
}

impl std::fmt::Display for RelPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.names.join("/"))
    }
}

fn check_name(name: &str) -> Result<String, FileError> {
    match name {
        "." | ".." => Err(FileError::invalid(format!(
            "the path may not contain {name:?}"
        ))),
        _ if name.len() > MAX_NAME_BYTES => Err(FileError::invalid(format!(
            "a name is {} bytes long; the limit is {MAX_NAME_BYTES}",
            name.len()
        ))),
        _ => Ok(name.to_owned()),
    }
}

/// Whether a name read from a directory may be shown and used as a path
/// component (names with control characters are left out of listings).
pub fn is_listable(name: &str) -> bool {
    !name.chars().any(char::is_control) && name.len() <= MAX_NAME_BYTES
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_paths_are_taken() {
        assert!(RelPath::parse("").unwrap().is_root());
        assert_eq!(RelPath::parse("x//").unwrap().names(), ["x"]);
        assert!(RelPath::parse("//").is_err(), "absolute");
        let path = RelPath::parse("a/b c/d.txt/").unwrap();
        assert_eq!(path.names(), ["a", "b c", "d.txt"]);
        assert_eq!(path.to_string(), "a/b c/d.txt");
        assert_eq!(path.file_name(), "d.txt");
        assert_eq!(path.split_last().unwrap().0.to_string(), "a/b c");
        assert_eq!(RelPath::parse("...").unwrap().file_name(), "...");
    }

    #[test]
    fn hostile_paths_are_refused() {
        for path in [
            "/etc/passwd",
            "..",
            "a/../../b",
            "./a",
            "a\0b",
            "a\nb",
            "a\x1bb",
            "a\u{7f}",
            "a\u{85}",
        ] {
            assert!(RelPath::parse(path).is_err(), "{path:?}");
        }
        assert!(RelPath::parse(&"x".repeat(256)).is_err());
        assert!(RelPath::parse(&"x".repeat(255)).is_ok());
        assert!(RelPath::parse(&"d/".repeat(2100)).is_err());
    }
}
