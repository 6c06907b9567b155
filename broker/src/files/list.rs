//! Directory listings: the entries of one directory beneath a session's
//! directory, each described without following it (`AT_SYMLINK_NOFOLLOW`).

use dispatch_proto::v1 as pb;
use rustix::fs::{AtFlags, Dir, FileType};

use super::beneath::{Root, modified_ms};
use super::error::FileError;
use super::path::{RelPath, is_listable};

/// Most entries one listing holds; more set `truncated`.
pub const MAX_ENTRIES: usize = 10_000;

/// Lists the directory at `path`: directories first, then by name. Names
/// that are not UTF-8 or hold control characters are left out (no path can
/// name them).
pub fn list(root: &Root, path: &RelPath) -> Result<pb::ListFilesResponse, FileError> {
    let fd = root.open_dir(path)?;
    let shown = path.to_string();
    let dir = Dir::read_from(&fd).map_err(|err| FileError::from_errno(err, &shown))?;
    let mut entries = Vec::new();
    let mut truncated = false;
    for entry in dir {
        let entry = entry.map_err(|err| FileError::from_errno(err, &shown))?;
        let Ok(name) = entry.file_name().to_str() else {
            continue;
        };
        if name == "." || name == ".." || !is_listable(name) {
            continue;
        }
        if entries.len() == MAX_ENTRIES {
            truncated = true;
            break;
        }
        // An entry removed since it was read is simply not listed.
        let Ok(stat) = rustix::fs::statat(&fd, name, AtFlags::SYMLINK_NOFOLLOW) else {
            continue;
        };
        entries.push(pb::FileEntry {
            name: name.to_owned(),
            kind: kind_of(FileType::from_raw_mode(stat.st_mode)) as i32,
            size: u64::try_from(stat.st_size).unwrap_or(0),
            modified_ms: modified_ms(&stat),
        });
    }
    entries.sort_by(|a, b| {
        let dir = |e: &pb::FileEntry| e.kind != pb::FileKind::Directory as i32;
        dir(a).cmp(&dir(b)).then_with(|| a.name.cmp(&b.name))
    });
    Ok(pb::ListFilesResponse {
        path: shown,
        entries,
        truncated,
    })
}

/// The wire kind of a file type.
pub fn kind_of(file_type: FileType) -> pb::FileKind {
    match file_type {
        FileType::RegularFile => pb::FileKind::File,
        FileType::Directory => pb::FileKind::Directory,
        FileType::Symlink => pb::FileKind::Symlink,
        _ => pb::FileKind::Other,
    }
}
