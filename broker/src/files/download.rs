//! Downloads: a regular file's bytes, or a directory as a tar archive built
//! while it streams. Both run on a blocking thread that hands chunks to the
//! gRPC stream through a small channel, so a slow client holds back the
//! reading (a few chunks are buffered, never the file).

use std::io::{Read, Write};
use std::os::fd::OwnedFd;

use dispatch_proto::v1 as pb;
use rustix::fs::{AtFlags, Dir, FileType, Mode, OFlags};
use tokio::sync::mpsc;
use tonic::Status;

use super::beneath::{Root, is_directory, is_regular, modified_ms, special_file};
use super::error::FileError;
use super::path::{RelPath, is_listable};

/// Bytes per data message.
pub const CHUNK_BYTES: usize = 64 * 1024;
/// Data messages buffered ahead of the client.
pub const BUFFERED_CHUNKS: usize = 8;
/// Deepest directory nesting an archive descends into.
const MAX_ARCHIVE_DEPTH: usize = 64;

/// What is being downloaded, opened and checked.
pub enum Source {
    File(std::fs::File),
    Directory(OwnedFd),
}

/// Opens `path` for download: its header, and what to stream.
pub fn open(root: &Root, path: &RelPath) -> Result<(pb::DownloadHeader, Source), FileError> {
    let (fd, stat) = root.open_read(path)?;
    let (kind, size, source) = if is_regular(&stat) {
        let size = u64::try_from(stat.st_size).unwrap_or(0);
        (pb::FileKind::File, size, Source::File(fd.into()))
    } else if is_directory(&stat) {
        (pb::FileKind::Directory, 0, Source::Directory(fd))
    } else {
        return Err(special_file(path, &stat));
    };
    let header = pb::DownloadHeader {
        kind: kind as i32,
        name: path.file_name().to_owned(),
        size,
        modified_ms: modified_ms(&stat),
    };
    Ok((header, source))
}

/// Streams `source` into `sink` (blocking; run off the async threads).
pub fn stream(source: Source, name: &str, sink: mpsc::Sender<Result<pb::DownloadChunk, Status>>) {
    let mut writer = ChunkWriter::new(sink);
    let result = match source {
        Source::File(mut file) => std::io::copy(&mut file, &mut writer).map(drop),
        Source::Directory(fd) => archive(fd, name, &mut writer),
    };
    let result = result.and_then(|()| writer.flush());
    if let Err(err) = result
        && err.kind() != std::io::ErrorKind::BrokenPipe
    {
        tracing::warn!("download failed: {err}");
        writer.fail(Status::internal(format!("reading failed: {err}")));
    }
}

/// Writes the tar archive of the directory `fd` (its entries under `name/`).
fn archive(fd: OwnedFd, name: &str, writer: &mut ChunkWriter) -> std::io::Result<()> {
    let mut builder = tar::Builder::new(writer);
    let prefix = if name.is_empty() {
        String::new()
    } else {
        format!("{name}/")
    };
    append_dir(&mut builder, &fd, &prefix, 0)?;
    builder.finish()
}

/// Appends a directory's regular files and directories, each opened from
/// its parent's descriptor by a single name with `O_NOFOLLOW`: nothing
/// outside is ever reached. Symlinks and special files are left out.
fn append_dir<W: Write>(
    builder: &mut tar::Builder<W>,
    dir: &OwnedFd,
    prefix: &str,
    depth: usize,
) -> std::io::Result<()> {
    if !prefix.is_empty() {
        let stat = rustix::fs::fstat(dir)?;
        let mut header = entry_header(&stat, tar::EntryType::Directory, 0);
        builder.append_data(&mut header, prefix, std::io::empty())?;
    }
    let mut names: Vec<String> = Dir::read_from(dir)?
        .filter_map(Result::ok)
        .filter_map(|entry| entry.file_name().to_str().ok().map(str::to_owned))
        .filter(|name| name != "." && name != ".." && is_listable(name))
        .collect();
    names.sort();
    for name in names {
        let Ok(stat) = rustix::fs::statat(dir, name.as_str(), AtFlags::SYMLINK_NOFOLLOW) else {
            continue;
        };
        let path = format!("{prefix}{name}");
        match FileType::from_raw_mode(stat.st_mode) {
            FileType::Directory if depth < MAX_ARCHIVE_DEPTH => {
                let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
                if let Ok(sub) = rustix::fs::openat(dir, name.as_str(), flags, Mode::empty()) {
                    append_dir(builder, &sub, &format!("{path}/"), depth + 1)?;
                }
            }
            FileType::RegularFile => append_file(builder, dir, &name, &path)?,
            _ => {}
        }
    }
    Ok(())
}

fn append_file<W: Write>(
    builder: &mut tar::Builder<W>,
    dir: &OwnedFd,
    name: &str,
    path: &str,
) -> std::io::Result<()> {
    let flags =
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC;
    let Ok(fd) = rustix::fs::openat(dir, name, flags, Mode::empty()) else {
        return Ok(());
    };
    let stat = rustix::fs::fstat(&fd)?;
    if !is_regular(&stat) {
        return Ok(());
    }
    let size = u64::try_from(stat.st_size).unwrap_or(0);
    let mut header = entry_header(&stat, tar::EntryType::Regular, size);
    let file = std::fs::File::from(fd);
    builder.append_data(&mut header, path, Exact::new(file, size))
}

fn entry_header(stat: &rustix::fs::Stat, kind: tar::EntryType, size: u64) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(kind);
    header.set_size(size);
    header.set_mode(stat.st_mode & 0o777);
    header.set_mtime(u64::try_from(stat.st_mtime).unwrap_or(0));
    header
}

/// Exactly `size` bytes of a file: cut when it grew since its header was
/// written, zero-padded when it shrank, so the archive stays well formed.
struct Exact<R> {
    inner: std::io::Take<R>,
    left: u64,
}

impl<R: Read> Exact<R> {
    fn new(inner: R, size: u64) -> Self {
        Self {
            inner: inner.take(size),
            left: size,
        }
    }
}

impl<R: Read> Read for Exact<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.left == 0 || buf.is_empty() {
            return Ok(0);
        }
        let mut n = self.inner.read(buf)?;
        if n == 0 {
            n = buf
                .len()
                .min(usize::try_from(self.left).unwrap_or(usize::MAX));
            buf[..n].fill(0);
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// Cuts what is written into data messages of [`CHUNK_BYTES`] and sends
/// them, waiting while the channel is full. A gone receiver (the client
/// left) is `BrokenPipe`.
struct ChunkWriter {
    buffer: Vec<u8>,
    sink: mpsc::Sender<Result<pb::DownloadChunk, Status>>,
}

impl ChunkWriter {
    fn new(sink: mpsc::Sender<Result<pb::DownloadChunk, Status>>) -> Self {
        Self {
            buffer: Vec::with_capacity(CHUNK_BYTES),
            sink,
        }
    }

    fn send_buffer(&mut self) -> std::io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let data = std::mem::replace(&mut self.buffer, Vec::with_capacity(CHUNK_BYTES));
        let chunk = pb::DownloadChunk {
            chunk: Some(pb::download_chunk::Chunk::Data(data.into())),
        };
        self.sink
            .blocking_send(Ok(chunk))
            .map_err(|_| std::io::ErrorKind::BrokenPipe.into())
    }

    fn fail(&self, status: Status) {
        let _ = self.sink.blocking_send(Err(status));
    }
}

impl Write for ChunkWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = buf.len().min(CHUNK_BYTES - self.buffer.len());
        self.buffer.extend_from_slice(&buf[..n]);
        if self.buffer.len() == CHUNK_BYTES {
            self.send_buffer()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.send_buffer()
    }
}
