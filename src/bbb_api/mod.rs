//! The BBB API client: turns a meeting ID into the running meeting's voiceBridge through
//! `getMeetingInfo` (or `getMeetings`), with BBB's checksum over call name + query + shared
//! secret (SHA-256 by default, SHA-1 configurable).
//!
//! [`MeetingDirectory`] is the seam the call driver awaits; [`BbbApis`] is the real one.

pub mod checksum;
pub mod client;
pub mod xml;

use crate::ids::ConferenceId;
use crate::store::shared_mappings::MeetingLookup;

pub use client::BbbApis;

/// A running meeting found for a lookup.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FoundMeeting {
    /// Its voiceBridge.
    pub conference: ConferenceId,
    /// The `[[servers]]` name to dial it on; `None`: the default server.
    pub server: Option<String>,
}

/// Why a lookup failed (not "not running": that is `Ok(None)`). Messages never hold the
/// meeting ID or the secret.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LookupError {
    /// No `[[bbb_api]]` can answer this lookup.
    #[error("no [[bbb_api]] configured for this mapping; add one, or map the PIN to a conference number")]
    NoApi,
    /// The HTTP request failed.
    #[error("BBB API request to {url} failed: {reason}")]
    Http {
        /// The API base URL (no query, so no checksum).
        url: String,
        /// What happened.
        reason: String,
    },
    /// The answer was not what the API documents.
    #[error("BBB API at {url} answered unexpectedly: {reason}")]
    Response {
        /// The API base URL.
        url: String,
        /// What was wrong.
        reason: String,
    },
}

/// Finds a meeting's voiceBridge at call time. Implemented by [`BbbApis`]; tests plug in others.
#[async_trait::async_trait]
pub trait MeetingDirectory: Send + Sync {
    /// The running meeting of `lookup`, `Ok(None)` when it is not running.
    async fn voice_bridge(
        &self,
        lookup: &MeetingLookup,
    ) -> Result<Option<FoundMeeting>, LookupError>;
}
