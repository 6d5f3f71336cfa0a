//! Routing: which conference on which server a PIN leads to.

use std::fmt;
use std::net::SocketAddr;

/// A FreeSWITCH conference name (BBB's voiceBridge). Where PINs are voiceBridge numbers this is
/// PIN material too, so `Debug`/`Display` hide it; the server leg's Request-URI uses `expose`.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ConferenceId(pub String);

impl ConferenceId {
    /// The conference number, for the server leg's Request-URI only. Never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ConferenceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ConferenceId(<hidden>)")
    }
}

impl fmt::Display for ConferenceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<conference>")
    }
}

/// Where a caller goes: a conference on a named BBB server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConferenceTarget {
    /// The conference (voiceBridge) to call on the server.
    pub conference: ConferenceId,
    /// The server's name from the config (safe to log).
    pub server: String,
    /// The server's FreeSWITCH SIP address.
    pub server_addr: SocketAddr,
}

/// What a typed PIN leads to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RouteDecision {
    /// Bridge into this conference.
    Conference(ConferenceTarget),
    /// The built-in echo test.
    Echo,
    /// Unknown or malformed PIN: the caller hears "invalid PIN".
    Invalid,
}
