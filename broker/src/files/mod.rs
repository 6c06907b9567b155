//! Session files: the `dispatch.v1.Files` gRPC service, which lists,
//! downloads (a file, or a directory as a tar archive) and uploads files of a
//! session's directory. Every path is checked ([`path`]) and then opened
//! beneath the directory in the kernel ([`beneath`]), so no path, symlink or
//! race leads outside it.
//!
//! ```no_run
//! # fn demo(registry: dispatch_broker::SessionRegistry) {
//! use dispatch_broker::files::FilesService;
//! let server = FilesService::new(registry).into_server();
//! # }
//! ```

mod beneath;
mod download;
mod error;
mod list;
mod path;
mod service;
mod upload;

pub use download::CHUNK_BYTES;
pub use error::FileError;
pub use path::{MAX_NAME_BYTES, MAX_PATH_BYTES, RelPath};
pub use service::FilesService;
pub use upload::TEMP_PREFIX;
