//! The gRPC contract of dispatch: generated tonic/prost code for package
//! `dispatch.v1`, the encoded file descriptor set that the broker serves
//! through gRPC server reflection, and the HTTP/2 settings with which clients
//! open their channel to the broker. [`egress`] holds the egress proxy
//! credentials that both ends derive from the broker token; [`limits`] the
//! sizes both ends (and the web UI) agree on; [`input`] what counts as a
//! user typing; [`time`] the wall clock both ends read; [`sync`] the way
//! both take a standard lock; [`text`] what text shown to people may hold;
//! [`memory`] how both hand freed memory back after bursts; [`codec`] the
//! codec every service uses.

#![allow(clippy::all, missing_docs)]

pub mod codec;
pub mod egress;
pub mod input;
pub mod limits;
pub mod memory;
pub mod sync;
pub mod text;
pub mod time;

/// Package `dispatch.v1`.
pub mod v1 {
    tonic::include_proto!("dispatch.v1");
}

/// Encoded `FileDescriptorSet` of every `dispatch.v1` file, for reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/dispatch_descriptor.bin"));

/// How both ends' clients open their HTTP/2 channel to the broker.
pub mod transport {
    use tonic::transport::Endpoint;

    /// HTTP/2 stream window of a channel: a stream of terminal output is
    /// paced by the broker's own window (acknowledgements), so HTTP/2's
    /// default of 64 KiB would only add round trips.
    pub const STREAM_WINDOW: u32 = 2 << 20;
    /// HTTP/2 connection window of a channel, shared by its streams.
    pub const CONNECTION_WINDOW: u32 = 16 << 20;
    /// Largest HTTP/2 frame the broker may send: a whole output message
    /// fits in one frame, so bulk output costs one write per message
    /// rather than one per 16 KiB.
    pub const MAX_FRAME_SIZE: u32 = 1 << 20;

    /// `endpoint` with the windows and frame size above.
    pub fn tuned(endpoint: Endpoint) -> Endpoint {
        endpoint
            .initial_stream_window_size(STREAM_WINDOW)
            .initial_connection_window_size(CONNECTION_WINDOW)
            .max_frame_size(MAX_FRAME_SIZE)
    }
}
