//! The gRPC contract of dispatch: generated tonic/prost code for package
//! `dispatch.v1`, plus the encoded file descriptor set that the broker serves
//! through gRPC server reflection.

#![allow(clippy::all, missing_docs)]

/// Package `dispatch.v1`.
pub mod v1 {
    tonic::include_proto!("dispatch.v1");
}

/// Encoded `FileDescriptorSet` of every `dispatch.v1` file, for reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/dispatch_descriptor.bin"));
