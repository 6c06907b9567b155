//! The conversation browser's HTTP routes (`/api/conversations`,
//! `/api/search`, ...), in front of the broker's conversation index.
//!
//! Hook: [`handle`] is called by the dispatcher for every authenticated
//! request that the gateway's own routes did not take; it answers `None` for
//! paths that are not its own. Routes listed in [`ROUTES`] join the route
//! table that the authentication test walks.

use std::sync::Arc;

use warp::reply::Response;

use crate::router::{ApiRequest, Route};
use crate::state::AppState;

/// The conversation browser's routes (all authenticated).
pub const ROUTES: &[Route] = &[];

/// Answers a conversation-browser request, or `None` when the path is not one.
pub async fn handle(_state: &Arc<AppState>, _request: &mut ApiRequest) -> Option<Response> {
    None
}
