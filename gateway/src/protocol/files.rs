//! The files of a session's directory: the listing of
//! `GET /api/sessions/{id}/files` and the answer to an upload
//! (`PUT /api/sessions/{id}/files/content`).

use serde::{Deserialize, Serialize};
use ts_rs::TS;

/// What a directory entry is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "lowercase")]
pub enum FileKind {
    File,
    Directory,
    Symlink,
    /// A device file, FIFO or socket (never served).
    Other,
}

/// One entry of a directory.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct FileEntry {
    pub name: String,
    pub kind: FileKind,
    /// Bytes (of the link itself for a symlink).
    pub size: u64,
    /// Unix epoch milliseconds of the last modification.
    pub modified_at: i64,
}

/// `GET /api/sessions/{id}/files?path=`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct FileList {
    /// The listed directory relative to the session's (`""` for itself).
    pub path: String,
    /// Directories first, then by name.
    pub entries: Vec<FileEntry>,
    /// Whether entries were left out past the listing limit.
    pub truncated: bool,
}

/// The answer to `PUT /api/sessions/{id}/files/content?path=`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct UploadedFile {
    /// The written file relative to the session's directory.
    pub path: String,
    pub size: u64,
    /// Its absolute path, as a shell in the session names it.
    pub absolute_path: String,
}
