//! The `dispatch.v1.Files` gRPC service: finds a call's session, opens its
//! directory as the [`Root`] every path is resolved beneath, and runs the
//! listing, download or upload (file system work off the async threads).

use std::pin::Pin;

use dispatch_proto::v1 as pb;
use futures::Stream;
use pb::files_server::{Files, FilesServer};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use super::beneath::Root;
use super::error::FileError;
use super::path::RelPath;
use super::{download, list, upload};
use crate::registry::SessionRegistry;

/// The gRPC service.
#[derive(Debug, Clone)]
pub struct FilesService {
    registry: SessionRegistry,
}

type ChunkStream = Pin<Box<dyn Stream<Item = Result<pb::DownloadChunk, Status>> + Send>>;

impl FilesService {
    pub fn new(registry: SessionRegistry) -> Self {
        Self { registry }
    }

    pub fn into_server(self) -> FilesServer<Self> {
        FilesServer::new(self)
    }

    /// The directory of session `id`, opened.
    fn root(&self, id: &str) -> Result<Root, Status> {
        let session = self.registry.get(id)?;
        Ok(Root::open(&session.info().cwd)?)
    }
}

/// Runs blocking file system work off the async threads.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, FileError> + Send + 'static,
) -> Result<T, Status> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|err| Status::internal(format!("file task failed: {err}")))?
        .map_err(Status::from)
}

#[tonic::async_trait]
impl Files for FilesService {
    async fn list_files(
        &self,
        request: Request<pb::ListFilesRequest>,
    ) -> Result<Response<pb::ListFilesResponse>, Status> {
        let request = request.into_inner();
        let path = RelPath::parse(&request.path)?;
        let root = self.root(&request.session_id)?;
        let listing = blocking(move || list::list(&root, &path)).await?;
        Ok(Response::new(listing))
    }

    type DownloadFileStream = ChunkStream;

    async fn download_file(
        &self,
        request: Request<pb::DownloadFileRequest>,
    ) -> Result<Response<ChunkStream>, Status> {
        let request = request.into_inner();
        let path = RelPath::parse(&request.path)?;
        let root = self.root(&request.session_id)?;
        let (header, source) = blocking(move || download::open(&root, &path)).await?;
        let (sender, receiver) = mpsc::channel(download::BUFFERED_CHUNKS);
        let name = header.name.clone();
        let first = pb::DownloadChunk {
            chunk: Some(pb::download_chunk::Chunk::Header(header)),
        };
        sender
            .send(Ok(first))
            .await
            .map_err(|_| Status::cancelled("the client left"))?;
        tokio::task::spawn_blocking(move || download::stream(source, &name, sender));
        Ok(Response::new(Box::pin(ReceiverStream::new(receiver))))
    }

    async fn upload_file(
        &self,
        request: Request<Streaming<pb::UploadChunk>>,
    ) -> Result<Response<pb::UploadFileResponse>, Status> {
        let mut chunks = request.into_inner();
        let header = match chunks.message().await? {
            Some(pb::UploadChunk {
                chunk: Some(pb::upload_chunk::Chunk::Header(header)),
            }) => header,
            _ => return Err(Status::invalid_argument("an upload starts with its header")),
        };
        let root = self.root(&header.session_id)?;
        let written = upload::receive(root, header, chunks).await?;
        Ok(Response::new(written))
    }
}
