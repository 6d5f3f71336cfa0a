//! Identifiers shared by several modules: [`ConferenceId`], [`ServerName`].
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

/// A BBB server's name from the config (`[[servers]] name`, `[a-z0-9_-]+`): the key of its
/// routes, its Event Socket, its conferences in the live directory, and its metrics label.
/// Not secret, so it logs as written. Shared, not copied: every call bridged to a server
/// holds its name.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServerName(std::sync::Arc<str>);

impl ServerName {
    /// The name as written in the config (already validated there).
    pub fn new(name: &str) -> ServerName {
        ServerName(name.into())
    }

    /// The name, for labels and lookups by text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<&str> for ServerName {
    fn from(name: &str) -> ServerName {
        ServerName::new(name)
    }
}

/// A name reads as its text wherever text is asked for (lookups, labels, log fields).
impl std::ops::Deref for ServerName {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl std::borrow::Borrow<str> for ServerName {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ServerName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for ServerName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl PartialEq<str> for ServerName {
    fn eq(&self, other: &str) -> bool {
        &*self.0 == other
    }
}

impl PartialEq<&str> for ServerName {
    fn eq(&self, other: &&str) -> bool {
        &*self.0 == *other
    }
}
