//! The Files service through a real broker: listing, downloading (files and
//! folder archives) and uploading in a session's directory, and every hostile
//! path refused: `..`, absolute paths, symlinks out (also swapped in while
//! requests run), NUL and control characters, over-long names, FIFOs and
//! device files.

mod common;

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use common::{TOKEN, TestBroker, create_shell};
use dispatch_broker::client::BearerToken;
use dispatch_proto::v1 as pb;
use dispatch_proto::v1::files_client::FilesClient;
use tonic::Code;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

type Files = FilesClient<InterceptedService<Channel, BearerToken>>;

struct Fixture {
    broker: TestBroker,
    files: Files,
    id: String,
    dir: PathBuf,
}

impl Fixture {
    async fn start() -> Self {
        let broker = TestBroker::start().await;
        let mut sessions = broker.client().await;
        let session = create_shell(&mut sessions, 80, 24).await;
        let files =
            FilesClient::with_interceptor(broker.channel().await, BearerToken::new(TOKEN).unwrap())
                .max_decoding_message_size(8 << 20);
        let dir = PathBuf::from(&session.cwd);
        assert!(dir.is_dir(), "the session's directory {dir:?}");
        Self {
            broker,
            files,
            id: session.id,
            dir,
        }
    }

    /// A directory outside the session's, with a secret in it.
    fn outside(&self) -> PathBuf {
        let outside = self.broker.root.path().join("outside");
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(outside.join("secret"), "OUTSIDE-SECRET").unwrap();
        outside
    }

    async fn list(&self, path: &str) -> Result<pb::ListFilesResponse, tonic::Status> {
        let request = pb::ListFilesRequest {
            session_id: self.id.clone(),
            path: path.into(),
        };
        self.files
            .clone()
            .list_files(request)
            .await
            .map(|r| r.into_inner())
    }

    async fn download(&self, path: &str) -> Result<(pb::DownloadHeader, Vec<u8>), tonic::Status> {
        download(&self.files, &self.id, path).await
    }

    async fn upload(
        &self,
        path: &str,
        data: &[u8],
        overwrite: bool,
    ) -> Result<pb::UploadFileResponse, tonic::Status> {
        upload(&self.files, &self.id, path, data, overwrite).await
    }
}

async fn download(
    files: &Files,
    id: &str,
    path: &str,
) -> Result<(pb::DownloadHeader, Vec<u8>), tonic::Status> {
    let request = pb::DownloadFileRequest {
        session_id: id.into(),
        path: path.into(),
    };
    let mut stream = files.clone().download_file(request).await?.into_inner();
    let Some(pb::DownloadChunk {
        chunk: Some(pb::download_chunk::Chunk::Header(header)),
    }) = stream.message().await?
    else {
        panic!("a download starts with its header");
    };
    let mut data = Vec::new();
    while let Some(chunk) = stream.message().await? {
        match chunk.chunk {
            Some(pb::download_chunk::Chunk::Data(bytes)) => data.extend_from_slice(&bytes),
            other => panic!("unexpected {other:?}"),
        }
    }
    Ok((header, data))
}

async fn upload(
    files: &Files,
    id: &str,
    path: &str,
    data: &[u8],
    overwrite: bool,
) -> Result<pb::UploadFileResponse, tonic::Status> {
    let header = pb::UploadChunk {
        chunk: Some(pb::upload_chunk::Chunk::Header(pb::UploadHeader {
            session_id: id.into(),
            path: path.into(),
            overwrite,
        })),
    };
    let chunks: Vec<pb::UploadChunk> = std::iter::once(header)
        .chain(data.chunks(64 * 1024).map(|part| pb::UploadChunk {
            chunk: Some(pb::upload_chunk::Chunk::Data(part.to_vec().into())),
        }))
        .chain(std::iter::once(pb::UploadChunk {
            chunk: Some(pb::upload_chunk::Chunk::End(pb::UploadEnd {})),
        }))
        .collect();
    files
        .clone()
        .upload_file(tokio_stream::iter(chunks))
        .await
        .map(|r| r.into_inner())
}

/// Every file below `dir` (relative names), to prove nothing was written.
fn tree(dir: &Path) -> Vec<String> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().to_string_lossy().into_owned();
        if entry.file_type().unwrap().is_dir() {
            names.extend(
                tree(&entry.path())
                    .into_iter()
                    .map(|n| format!("{name}/{n}")),
            );
        }
        names.push(name);
    }
    names.sort();
    names
}

#[tokio::test]
async fn lists_downloads_and_uploads_in_the_session_directory() {
    let f = Fixture::start().await;
    std::fs::create_dir(f.dir.join("docs")).unwrap();
    std::fs::write(f.dir.join("docs/readme.txt"), "hello files").unwrap();
    std::fs::write(f.dir.join("a.bin"), vec![7u8; 200_000]).unwrap();
    symlink("docs/readme.txt", f.dir.join("link")).unwrap();

    let listing = f.list("").await.unwrap();
    let names: Vec<(&str, i32)> = listing
        .entries
        .iter()
        .map(|e| (e.name.as_str(), e.kind))
        .collect();
    assert_eq!(
        names,
        [
            ("docs", pb::FileKind::Directory as i32),
            ("a.bin", pb::FileKind::File as i32),
            ("link", pb::FileKind::Symlink as i32),
        ]
    );
    assert_eq!(
        (listing.entries[1].size, listing.entries[2].size),
        (200_000, 15)
    );
    assert!(
        listing
            .entries
            .iter()
            .all(|e| e.modified_ms > 1_600_000_000_000)
    );
    assert_eq!(f.list("docs/").await.unwrap().path, "docs");

    let (header, data) = f.download("a.bin").await.unwrap();
    assert_eq!(
        (header.kind, header.size),
        (pb::FileKind::File as i32, 200_000)
    );
    assert_eq!(header.name, "a.bin");
    assert_eq!(data, vec![7u8; 200_000]);
    // A symlink that stays inside is followed.
    assert_eq!(f.download("link").await.unwrap().1, b"hello files");

    let written = f.upload("docs/new.txt", b"uploaded", false).await.unwrap();
    assert_eq!((written.path.as_str(), written.size), ("docs/new.txt", 8));
    assert_eq!(
        PathBuf::from(&written.absolute_path),
        f.dir.join("docs/new.txt")
    );
    assert_eq!(
        std::fs::read(f.dir.join("docs/new.txt")).unwrap(),
        b"uploaded"
    );
    let refused = f.upload("docs/new.txt", b"again", false).await.unwrap_err();
    assert_eq!(refused.code(), Code::AlreadyExists, "{refused:?}");
    f.upload("docs/new.txt", b"again", true).await.unwrap();
    assert_eq!(std::fs::read(f.dir.join("docs/new.txt")).unwrap(), b"again");
    let onto_dir = f.upload("docs", b"x", true).await.unwrap_err();
    assert_eq!(onto_dir.code(), Code::FailedPrecondition, "{onto_dir:?}");
    let no_parent = f.upload("nowhere/x.txt", b"x", false).await.unwrap_err();
    assert_eq!(no_parent.code(), Code::NotFound, "{no_parent:?}");
    let no_name = f.upload("", b"x", false).await.unwrap_err();
    assert_eq!(no_name.code(), Code::InvalidArgument, "{no_name:?}");
    assert!(
        !tree(&f.dir).iter().any(|n| n.contains(".dispatch-upload-")),
        "no temporary file is left: {:?}",
        tree(&f.dir)
    );
    // An unknown session is 404.
    let unknown = download(&f.files, &uuid_like(), "a.bin").await.unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound, "{unknown:?}");
}

fn uuid_like() -> String {
    "00000000-0000-4000-8000-000000000000".into()
}

#[tokio::test]
async fn a_folder_downloads_as_a_tar_of_its_files_and_folders_only() {
    let f = Fixture::start().await;
    let outside = f.outside();
    std::fs::create_dir_all(f.dir.join("proj/src")).unwrap();
    std::fs::write(f.dir.join("proj/src/main.rs"), "fn main() {}").unwrap();
    std::fs::write(f.dir.join("proj/big"), vec![1u8; 300_000]).unwrap();
    symlink(&outside, f.dir.join("proj/out")).unwrap();
    symlink(outside.join("secret"), f.dir.join("proj/secret")).unwrap();
    nix::unistd::mkfifo(&f.dir.join("proj/fifo"), nix::sys::stat::Mode::S_IRWXU).unwrap();

    let (header, data) = f.download("proj").await.unwrap();
    assert_eq!(header.kind, pb::FileKind::Directory as i32);
    assert_eq!(header.name, "proj");
    let mut archive = tar::Archive::new(data.as_slice());
    let mut found = Vec::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let path = entry.path().unwrap().display().to_string();
        let mut content = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut content).unwrap();
        assert!(!contains(&content, b"OUTSIDE-SECRET"));
        found.push((path, content.len()));
    }
    assert_eq!(
        found,
        [
            ("proj/".to_owned(), 0),
            ("proj/big".to_owned(), 300_000),
            ("proj/src/".to_owned(), 0),
            ("proj/src/main.rs".to_owned(), 12),
        ]
    );
    // The whole session directory downloads too (entries at the top).
    let (header, data) = f.download("").await.unwrap();
    assert_eq!(
        (header.kind, header.name.as_str()),
        (pb::FileKind::Directory as i32, "")
    );
    let mut archive = tar::Archive::new(data.as_slice());
    let first = archive.entries().unwrap().next().unwrap().unwrap();
    assert_eq!(first.path().unwrap().display().to_string(), "proj/");
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test]
async fn hostile_paths_are_refused_for_every_call() {
    let f = Fixture::start().await;
    let outside = f.outside();
    std::fs::create_dir(f.dir.join("sub")).unwrap();
    std::fs::write(f.dir.join("sub/ok.txt"), "ok").unwrap();
    symlink(&outside, f.dir.join("out")).unwrap();
    symlink(outside.join("secret"), f.dir.join("secret-link")).unwrap();
    symlink("/etc/passwd", f.dir.join("passwd")).unwrap();
    symlink("../../outside/secret", f.dir.join("sub/up")).unwrap();
    nix::unistd::mkfifo(&f.dir.join("fifo"), nix::sys::stat::Mode::S_IRWXU).unwrap();
    let device = nix::sys::stat::mknod(
        &f.dir.join("null"),
        nix::sys::stat::SFlag::S_IFCHR,
        nix::sys::stat::Mode::S_IRUSR | nix::sys::stat::Mode::S_IWUSR,
        nix::sys::stat::makedev(1, 3),
    )
    .is_ok();
    let long_name = "n".repeat(256);
    let long_path = "d/".repeat(2049);
    let mut cases: Vec<(String, Code)> = vec![
        ("..".into(), Code::InvalidArgument),
        ("../outside/secret".into(), Code::InvalidArgument),
        ("sub/../../outside/secret".into(), Code::InvalidArgument),
        ("./sub/ok.txt".into(), Code::InvalidArgument),
        ("/etc/passwd".into(), Code::InvalidArgument),
        (
            outside.join("secret").display().to_string(),
            Code::InvalidArgument,
        ),
        ("sub/ok.txt\0.png".into(), Code::InvalidArgument),
        ("sub/ok\n.txt".into(), Code::InvalidArgument),
        ("sub/\x1b[31m".into(), Code::InvalidArgument),
        (long_name.clone(), Code::InvalidArgument),
        (long_path, Code::InvalidArgument),
        ("out/secret".into(), Code::PermissionDenied),
        ("secret-link".into(), Code::PermissionDenied),
        ("passwd".into(), Code::PermissionDenied),
        ("sub/up".into(), Code::PermissionDenied),
        ("fifo".into(), Code::PermissionDenied),
        ("missing.txt".into(), Code::NotFound),
    ];
    if device {
        cases.push(("null".into(), Code::PermissionDenied));
    } else {
        eprintln!("mknod is not permitted here: the device file case is left out");
    }
    for (path, code) in &cases {
        let refused = f.download(path).await.expect_err(path);
        assert_eq!(refused.code(), *code, "download {path:?}: {refused:?}");
        assert!(!refused.message().is_empty());
    }
    for (path, code) in [
        ("..", Code::InvalidArgument),
        ("/", Code::InvalidArgument),
        ("out", Code::PermissionDenied),
        ("sub/ok.txt", Code::FailedPrecondition),
        ("nothing", Code::NotFound),
    ] {
        let refused = f.list(path).await.expect_err(path);
        assert_eq!(refused.code(), code, "list {path:?}: {refused:?}");
    }
    for (path, code) in [
        ("../outside/new", Code::InvalidArgument),
        ("/tmp/new", Code::InvalidArgument),
        ("out/new", Code::PermissionDenied),
        ("sub/new\0", Code::InvalidArgument),
        ("sub/new\r", Code::InvalidArgument),
        (long_name.as_str(), Code::InvalidArgument),
    ] {
        let refused = f.upload(path, b"planted", true).await.expect_err(path);
        assert_eq!(refused.code(), code, "upload {path:?}: {refused:?}");
    }
    // Uploading onto a symlink replaces the link; its target is untouched.
    f.upload("secret-link", b"replaced", true).await.unwrap();
    assert_eq!(
        std::fs::read(outside.join("secret")).unwrap(),
        b"OUTSIDE-SECRET"
    );
    assert!(
        !std::fs::symlink_metadata(f.dir.join("secret-link"))
            .unwrap()
            .is_symlink()
    );
    assert_eq!(tree(&outside), ["secret"]);
    // The FIFO open did not block and wrote nothing.
    assert!(
        std::fs::symlink_metadata(f.dir.join("fifo"))
            .unwrap()
            .file_type()
            .is_fifo_like()
    );
}

trait FifoLike {
    fn is_fifo_like(&self) -> bool;
}

impl FifoLike for std::fs::FileType {
    fn is_fifo_like(&self) -> bool {
        std::os::unix::fs::FileTypeExt::is_fifo(self)
    }
}

#[tokio::test]
async fn a_symlink_swapped_in_while_requests_run_never_leads_outside() {
    let f = Fixture::start().await;
    let outside = f.outside();
    // `d` flips between a real directory and a symlink to `outside`,
    // atomically (RENAME_EXCHANGE), as fast as the thread can.
    std::fs::create_dir(f.dir.join("real")).unwrap();
    std::fs::write(f.dir.join("real/secret"), "inside").unwrap();
    std::fs::write(f.dir.join("real/inside-marker"), "").unwrap();
    symlink(&outside, f.dir.join("d")).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let swapper = {
        let (dir, stop) = (f.dir.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut swaps = 0u64;
            while !stop.load(Ordering::Relaxed) {
                nix::fcntl::renameat2(
                    nix::fcntl::AT_FDCWD,
                    &dir.join("d"),
                    nix::fcntl::AT_FDCWD,
                    &dir.join("real"),
                    nix::fcntl::RenameFlags::RENAME_EXCHANGE,
                )
                .unwrap();
                swaps += 1;
            }
            swaps
        })
    };
    let (mut read_inside, mut refused) = (0, 0);
    for round in 0..300 {
        match f.download("d/secret").await {
            Ok((_, data)) => {
                assert_eq!(data, b"inside", "round {round} read outside");
                read_inside += 1;
            }
            Err(status) => {
                assert!(
                    matches!(status.code(), Code::PermissionDenied | Code::NotFound),
                    "{status:?}"
                );
                refused += 1;
            }
        }
        let _ = f
            .upload(&format!("d/planted-{round}"), b"planted", true)
            .await;
        if let Ok(listing) = f.list("d").await {
            assert!(
                listing.entries.iter().any(|e| e.name == "inside-marker"),
                "round {round} listed outside: {listing:?}"
            );
        }
        if let Ok((_, data)) = f.download("d").await {
            assert!(
                !contains(&data, b"OUTSIDE-SECRET"),
                "round {round} archived outside"
            );
        }
    }
    stop.store(true, Ordering::Relaxed);
    let swaps = swapper.join().unwrap();
    assert_eq!(tree(&outside), ["secret"], "nothing was written outside");
    assert_eq!(
        std::fs::read(outside.join("secret")).unwrap(),
        b"OUTSIDE-SECRET"
    );
    eprintln!("{swaps} swaps; {read_inside} reads inside, {refused} refused");
    assert!(swaps > 300, "the swap raced the requests ({swaps} swaps)");
    assert!(
        read_inside > 0 && refused > 0,
        "both sides of the race were hit: {read_inside} inside, {refused} refused"
    );
}

#[tokio::test]
async fn an_upload_cut_off_midway_leaves_nothing_behind() {
    let f = Fixture::start().await;
    let (sender, receiver) = tokio::sync::mpsc::channel(4);
    sender
        .send(pb::UploadChunk {
            chunk: Some(pb::upload_chunk::Chunk::Header(pb::UploadHeader {
                session_id: f.id.clone(),
                path: "partial.bin".into(),
                overwrite: false,
            })),
        })
        .await
        .unwrap();
    sender
        .send(pb::UploadChunk {
            chunk: Some(pb::upload_chunk::Chunk::Data(vec![1u8; 100_000].into())),
        })
        .await
        .unwrap();
    let mut files = f.files.clone();
    let call = tokio::spawn(async move {
        files
            .upload_file(tokio_stream::wrappers::ReceiverStream::new(receiver))
            .await
    });
    common::eventually("the upload's temporary file appears", || {
        tree(&f.dir)
            .iter()
            .any(|n| n.starts_with(".dispatch-upload-"))
    })
    .await;
    // The stream stops without its end message: nothing is written.
    drop(sender);
    let refused = call.await.unwrap().unwrap_err();
    assert_eq!(refused.code(), Code::Aborted, "{refused:?}");
    common::eventually("the temporary file is removed", || tree(&f.dir).is_empty()).await;
}

#[tokio::test]
async fn an_upload_whose_call_is_dropped_leaves_nothing_behind() {
    let f = Fixture::start().await;
    let (sender, receiver) = tokio::sync::mpsc::channel(4);
    for chunk in [
        pb::upload_chunk::Chunk::Header(pb::UploadHeader {
            session_id: f.id.clone(),
            path: "dropped.bin".into(),
            overwrite: false,
        }),
        pb::upload_chunk::Chunk::Data(vec![1u8; 100_000].into()),
    ] {
        sender
            .send(pb::UploadChunk { chunk: Some(chunk) })
            .await
            .unwrap();
    }
    let mut files = f.files.clone();
    let call = tokio::spawn(async move {
        files
            .upload_file(tokio_stream::wrappers::ReceiverStream::new(receiver))
            .await
    });
    common::eventually("the upload's temporary file appears", || {
        tree(&f.dir)
            .iter()
            .any(|n| n.starts_with(".dispatch-upload-"))
    })
    .await;
    call.abort();
    common::eventually("the temporary file is removed", || tree(&f.dir).is_empty()).await;
    drop(sender);
}
