//! dispatch-broker: owns every PTY, session directory and the Claude Code
//! conversation index, and serves them over gRPC.

pub mod conversations;
