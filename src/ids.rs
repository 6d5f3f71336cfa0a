//! Identifiers shared by several modules.
//!
//! They live here, below every domain module, so that `config`, `routing`, `esl`, `privacy`
//! and `store` can all name a conference without importing each other (issue 21: the import
//! cycle among those modules). Only types with no behaviour beyond naming and hiding belong here.

use std::fmt;

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
