//! The BBB API client: turns a meeting ID into the running meeting's voiceBridge through
//! `getMeetingInfo` (or `getMeetings`), with BBB's checksum over call name + query + shared
//! secret (SHA-256 by default, SHA-1 configurable).
//!
//! [`MeetingDirectory`] is the seam the call driver awaits; [`BbbApis`] is the real one.

pub mod checksum;
pub mod client;
pub mod settings;
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
        reason: HttpFailure,
    },
    /// The answer was not what the API documents.
    #[error("BBB API at {url} answered unexpectedly: {reason}")]
    Response {
        /// The API base URL.
        url: String,
        /// What was wrong.
        reason: BadAnswer,
    },
}

/// How a request to a BBB API failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HttpFailure {
    /// No answer within the `[[bbb_api]]` timeout.
    #[error("timed out")]
    TimedOut,
    /// No connection to the API's host.
    #[error("cannot connect")]
    CannotConnect,
    /// An answer with a status other than 2xx.
    #[error("HTTP status {0}")]
    Status(u16),
    /// An answer larger than dialin reads.
    #[error("answer larger than 4 MiB")]
    TooLarge,
    /// Anything else the HTTP client reported, without the URL (its query holds the meeting
    /// ID and the checksum).
    #[error("{0}")]
    Other(String),
}

/// What was wrong with a BBB API's answer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BadAnswer {
    /// Not the XML the API documents.
    #[error(transparent)]
    Xml(#[from] xml::XmlError),
    /// The API refused the checksum.
    #[error("checksumError: check the secret and the checksum algorithm of this [[bbb_api]]")]
    Checksum,
    /// `FAILED` with another message key.
    #[error("FAILED ({0})")]
    Failed(String),
    /// A running meeting whose voiceBridge is not a number dialin can dial.
    #[error("the voiceBridge is not a number")]
    VoiceBridgeNotANumber,
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
