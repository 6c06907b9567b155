//! Uploads: the bytes of a client stream written to a temporary file in the
//! target's directory (opened beneath the session's directory), renamed onto
//! the target at the stream's `end` message. A stream that fails, is
//! cancelled or stops without `end` leaves nothing behind; the target is never followed if it is a symlink
//! (the rename replaces the link itself).

use std::os::fd::OwnedFd;

use dispatch_proto::v1 as pb;
use rustix::fs::{AtFlags, Mode, OFlags, RenameFlags};
use tokio::io::AsyncWriteExt;
use tonic::{Status, Streaming};

use super::beneath::{Root, is_directory};
use super::error::FileError;
use super::path::RelPath;

/// Name prefix of files being uploaded.
pub const TEMP_PREFIX: &str = ".dispatch-upload-";

/// Receives one upload whose header was already read.
pub async fn receive(
    root: Root,
    header: pb::UploadHeader,
    mut chunks: Streaming<pb::UploadChunk>,
) -> Result<pb::UploadFileResponse, Status> {
    let path = RelPath::parse(&header.path)?;
    let (parent, name) = path
        .split_last()
        .ok_or_else(|| FileError::invalid("the path must name a file"))?;
    let dir = root.open_dir(&parent)?;
    check_target(&dir, name, &path, header.overwrite)?;
    let temp = TempFile::create(dir, &path)?;
    let mut file = tokio::fs::File::from_std(temp.file()?);
    let mut size = 0u64;
    loop {
        let chunk = chunks.message().await?.ok_or_else(|| {
            Status::aborted("the upload stopped before its end; nothing was written")
        })?;
        match chunk.chunk {
            Some(pb::upload_chunk::Chunk::Data(data)) => {
                file.write_all(&data).await.map_err(write_failed)?;
                size += data.len() as u64;
            }
            Some(pb::upload_chunk::Chunk::End(_)) => break,
            Some(pb::upload_chunk::Chunk::Header(_)) => {
                return Err(FileError::invalid("an upload has one header").into());
            }
            None => {}
        }
    }
    file.flush().await.map_err(write_failed)?;
    drop(file);
    temp.commit(name, header.overwrite, &path)?;
    Ok(pb::UploadFileResponse {
        path: path.to_string(),
        size,
        absolute_path: root.dir().join(path.to_string()).display().to_string(),
    })
}

fn write_failed(err: std::io::Error) -> Status {
    Status::internal(format!("writing the file failed: {err}"))
}

/// Refuses a target that is a directory, or that exists unless `overwrite`.
fn check_target(
    dir: &OwnedFd,
    name: &str,
    path: &RelPath,
    overwrite: bool,
) -> Result<(), FileError> {
    let Ok(stat) = rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) else {
        return Ok(());
    };
    if is_directory(&stat) {
        return Err(FileError::Conflict(format!(
            "{:?} is a directory",
            path.to_string()
        )));
    }
    if !overwrite {
        return Err(FileError::Exists(format!(
            "{:?} already exists",
            path.to_string()
        )));
    }
    Ok(())
}

/// A temporary file in the target's directory, removed on drop unless
/// renamed onto the target.
struct TempFile {
    dir: OwnedFd,
    name: String,
    fd: Option<OwnedFd>,
    committed: bool,
}

impl TempFile {
    fn create(dir: OwnedFd, path: &RelPath) -> Result<Self, FileError> {
        let name = format!("{TEMP_PREFIX}{}", uuid::Uuid::new_v4().simple());
        let flags =
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let fd = rustix::fs::openat(&dir, name.as_str(), flags, Mode::from_raw_mode(0o644))
            .map_err(|err| FileError::from_errno(err, &path.to_string()))?;
        Ok(Self {
            dir,
            name,
            fd: Some(fd),
            committed: false,
        })
    }

    fn file(&self) -> Result<std::fs::File, FileError> {
        let fd = self
            .fd
            .as_ref()
            .ok_or_else(|| FileError::Io("no file".into()))?;
        fd.try_clone()
            .map(std::fs::File::from)
            .map_err(|err| FileError::Io(format!("duplicating the file: {err}")))
    }

    /// Renames the file onto `name` (`RENAME_NOREPLACE` unless `overwrite`).
    fn commit(mut self, name: &str, overwrite: bool, path: &RelPath) -> Result<(), FileError> {
        self.fd = None;
        let flags = if overwrite {
            RenameFlags::empty()
        } else {
            RenameFlags::NOREPLACE
        };
        rustix::fs::renameat_with(&self.dir, self.name.as_str(), &self.dir, name, flags)
            .map_err(|err| FileError::from_errno(err, &path.to_string()))?;
        self.committed = true;
        Ok(())
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.committed {
            let _ = rustix::fs::unlinkat(&self.dir, self.name.as_str(), AtFlags::empty());
        }
    }
}
