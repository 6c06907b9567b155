//! dispatch-gateway: the internet-facing half of dispatch.

pub mod tunnel;
