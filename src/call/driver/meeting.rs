//! Resolving a store mapping to a BBB meeting ID at call time: ask the meeting directory (the
//! BBB API) for the running meeting's voiceBridge, bounded by a timeout, and turn the answer
//! into a route. Runs as its own small task so the call's loop keeps relaying and timing.

use crate::call::context::CallContext;
use crate::routing::RouteDecision;
use crate::store::live::MeetingLookup;
use std::sync::Arc;
use std::time::Duration;
use tracing::{info, warn};

/// The longest a caller waits for the BBB API before hearing "invalid PIN".
pub const MEETING_LOOKUP_TIMEOUT: Duration = Duration::from_secs(5);

/// The route for `lookup`: the meeting's conference, or [`RouteDecision::Invalid`] when it is not
/// running, the API fails, or it takes longer than [`MEETING_LOOKUP_TIMEOUT`].
pub(super) async fn resolve_meeting(
    ctx: Arc<CallContext>,
    call_no: u64,
    lookup: MeetingLookup,
) -> RouteDecision {
    match tokio::time::timeout(MEETING_LOOKUP_TIMEOUT, ctx.meetings.voice_bridge(&lookup)).await {
        Ok(Ok(Some(found))) => ctx
            .settings()
            .router
            .meeting_target(found.conference, found.server.as_deref()),
        Ok(Ok(None)) => {
            info!(call = call_no, "the mapped meeting is not running");
            RouteDecision::Invalid
        }
        Ok(Err(e)) => {
            warn!(call = call_no, "meeting lookup failed: {e}");
            RouteDecision::Invalid
        }
        Err(_) => {
            warn!(call = call_no, "meeting lookup timed out");
            RouteDecision::Invalid
        }
    }
}
