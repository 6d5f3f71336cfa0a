//! The types of `[[servers]]`, `[routing]` and `[[pins]]`: the BBB servers and how a PIN
//! finds one.

use std::net::SocketAddr;
use std::time::Duration;

use super::EslServer;
use crate::routing::ConferenceId;
use crate::secret::Pin;

/// One `[[servers]]` entry: a BBB server's FreeSWITCH.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerConfig {
    /// Unique name (`[a-z0-9_-]+`), used in `[[pins]]`, logs and metrics.
    pub name: String,
    /// The host as written in the `sip` URI (IP or name), for the Request-URI and To header.
    pub host: String,
    /// The resolved address to send SIP to (resolved once at load time).
    pub sip: SocketAddr,
    /// Its Event Socket, if set: then the live directory watches it.
    pub esl: Option<EslServer>,
}

/// `[routing]`: how PINs without an admin mapping are routed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoutingConfig {
    /// A PIN with 5–11 digits is taken as the meeting's voiceBridge number (default true).
    pub pin_is_conference: bool,
    /// The server for PINs without one; `None` means the only server if there is exactly one.
    pub default_server: Option<String>,
    /// How long the server leg may take to answer (default 10 s).
    pub server_answer_timeout: Duration,
}

impl Default for RoutingConfig {
    fn default() -> RoutingConfig {
        RoutingConfig {
            pin_is_conference: true,
            default_server: None,
            server_answer_timeout: Duration::from_secs(10),
        }
    }
}

/// One `[[pins]]` entry: an admin mapping from a PIN to a conference. `Debug` hides both.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PinMapping {
    /// The PIN callers type.
    pub pin: Pin,
    /// The conference (voiceBridge) it leads to.
    pub conference: ConferenceId,
    /// The server's name; `None` follows the default-server rule.
    pub server: Option<String>,
}
