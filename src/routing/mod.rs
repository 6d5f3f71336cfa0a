//! Routing: which conference on which server a PIN leads to.
//!
//! [`Router::resolve_at`] answers from memory at PIN time: the echo test, admin mappings, the
//! PIN as a voiceBridge number, and (when servers have an Event Socket) the live
//! [`directory`] of which server runs which conference. Rules with a directory:
//! - a conference live on one server routes there, wherever a mapping said it would be;
//! - live on two servers (a collision) or possibly on a server whose Event Socket is down:
//!   [`RouteDecision::Unavailable`], never a guess;
//! - on a server that is [`directory::ServerHealth::Down`] (Event Socket refused or closed,
//!   OPTIONS probes failing, or quiet past `esl.grace`): [`RouteDecision::Unavailable`] at
//!   once, instead of dialling a dead server;
//! - a mapped PIN whose conference is not running yet: [`RouteDecision::Waiting`] (the
//!   waiting room);
//! - an identity PIN (voiceBridge) that is not running: [`RouteDecision::Invalid`], as it
//!   cannot be told apart from a typo; the default server takes it only if that server has no
//!   Event Socket (the old, directory-less behaviour).
//!
//! The rules are pure ([`routes::Routes`]: the store snapshot, the directory and the time are
//! arguments); [`Router`] is the thin wrapper that holds the shared handles (directory, store
//! snapshot) and passes them in.

pub mod directory;
pub mod probe;
pub mod routes;
pub mod shared_directory;

use crate::store::shared_mappings::SharedMappings;
use directory::Directory;
pub use routes::{Routes, RoutingSettings};
use shared_directory::SharedDirectory;
use std::fmt;
use std::net::SocketAddr;
use std::time::Instant;

use crate::ids::{ConferenceId, ServerName};

/// Where a caller goes: a conference on a named BBB server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConferenceTarget {
    /// The conference (voiceBridge) to call on the server.
    pub conference: ConferenceId,
    /// The server's name from the config (safe to log).
    pub server: ServerName,
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
    /// A known meeting (admin mapping) that has not started: hold until it runs, then
    /// [`Router::recheck`].
    Waiting(WaitingFor),
    /// The conference cannot be reached now (collision, or its server's Event Socket is
    /// down): the caller hears "unavailable".
    Unavailable,
}

/// A mapped meeting that has not started yet: what the waiting room re-checks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WaitingFor {
    /// A conference number the live directory will report once it runs.
    Conference {
        /// The meeting's conference (voiceBridge).
        conference: ConferenceId,
        /// The server the mapping names, if any (`None`: wherever it starts, or the default).
        server: Option<ServerName>,
    },
    /// A BBB meeting ID (PIN store mapping) the BBB API does not report running yet: only
    /// the API can tell when it starts, so the call driver asks it again (see
    /// `call::meeting_poll`); [`Router::recheck`] cannot decide it.
    Meeting(crate::store::shared_mappings::MeetingLookup),
}

/// What a typed PIN leads to, when it may need a lookup first: store mappings to a BBB
/// meeting ID are resolved by the call driver (through the BBB API, with a timeout) and then
/// become a [`RouteDecision`] via [`Router::meeting_target`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Lookup {
    /// The decision is known now.
    Ready(RouteDecision),
    /// Ask the BBB API for this meeting's voiceBridge first.
    Meeting(crate::store::shared_mappings::MeetingLookup),
}

/// The routes plus the two shared, changing inputs routing reads: the live directory (written
/// by the Event Socket tasks) and the store's mapping snapshot (swapped by the store watcher).
///
/// A thin wrapper: each call takes the current store snapshot and the directory lock, then asks
/// the pure [`Routes`] (which holds the rules and reads no clock). Cheap to clone (clones share
/// the handles); a config reload builds a new one. `Debug` shows only counts: the mapping table
/// is PIN material.
#[derive(Clone)]
pub struct Router {
    /// The configured routes (pure).
    routes: Routes,
    /// The live directory, when any server has an Event Socket.
    directory: Option<SharedDirectory>,
    /// The PIN store's mappings, swapped live by the store watcher (shared by clones).
    store: SharedMappings,
}

impl Router {
    /// Builds the router from the settings `config` derives from the file.
    pub fn new(settings: RoutingSettings) -> Router {
        Router {
            routes: Routes::new(settings),
            directory: None,
            store: Default::default(),
        }
    }

    /// The same router consulting `directory` for servers it watches.
    pub fn with_directory(mut self, directory: SharedDirectory) -> Router {
        self.directory = Some(directory);
        self
    }

    /// The same router reading `store`'s mappings (a reloaded router keeps the store's live
    /// handle, which the store watcher keeps current).
    pub fn with_store(mut self, store: SharedMappings) -> Router {
        self.store = store;
        self
    }

    /// The live directory, if any (for waiting callers and the mute key).
    pub fn directory(&self) -> Option<&SharedDirectory> {
        self.directory.as_ref()
    }

    /// The handle the store watcher swaps new mapping sets into.
    pub fn store_mappings(&self) -> SharedMappings {
        self.store.clone()
    }

    /// Runs `f` on the directory (locked for the duration) or on none.
    fn with_dir<R>(&self, f: impl FnOnce(Option<&Directory>) -> R) -> R {
        match &self.directory {
            Some(d) => d.read(|dir| f(Some(dir))),
            None => f(None),
        }
    }

    /// Where `pin` leads at `now`; see the module doc for the rules. A store mapping to a BBB
    /// meeting ID needs a lookup ([`Router::lookup_at`]) and counts as invalid here. Reads the
    /// wall clock for the store mappings' validity windows.
    pub fn resolve_at(&self, pin: &crate::secret::Pin, now: Instant) -> RouteDecision {
        match self.lookup_at(pin, now, crate::store::model::unix_now()) {
            Lookup::Ready(d) => d,
            Lookup::Meeting(_) => RouteDecision::Invalid,
        }
    }

    /// Like [`Router::resolve_at`], but a store mapping to a BBB meeting ID asks for a lookup.
    /// Store mappings are checked after the config file's `[[pins]]` (which win) and only
    /// within their validity window (`unix`: wall clock, Unix seconds).
    pub fn lookup_at(&self, pin: &crate::secret::Pin, now: Instant, unix: i64) -> Lookup {
        let snapshot = self.store.snapshot();
        self.with_dir(|dir| self.routes.lookup(pin, &snapshot, dir, now, unix))
    }

    /// The route to the running meeting `conference` that the BBB API reported (on the server
    /// named `server`, or where the directory finds it, or on the default server), at `now`.
    pub fn meeting_target(
        &self,
        conference: ConferenceId,
        server: Option<&str>,
        now: Instant,
    ) -> RouteDecision {
        self.with_dir(|dir| self.routes.mapped(conference, server, dir, now))
    }

    /// Re-checks a waiting caller's meeting at `now` (see [`Routes::recheck`]).
    pub fn recheck(&self, waiting: &WaitingFor, now: Instant) -> RouteDecision {
        self.with_dir(|dir| self.routes.recheck(waiting, dir, now))
    }

    /// Where `pin` leads now (see [`Router::resolve_at`]; reads the clock): for tests.
    #[cfg(test)]
    pub fn resolve(&self, pin: &crate::secret::Pin) -> RouteDecision {
        self.resolve_at(pin, Instant::now())
    }
}

impl fmt::Debug for Router {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Router")
            .field("echo", &self.routes.echo_pin.is_some())
            .field("mappings", &self.routes.mappings.len())
            .field("store", &self.store.len())
            .field("pin_is_conference", &self.routes.pin_is_conference)
            .field(
                "default_server",
                &self.routes.default_server.as_ref().map(|s| &s.name),
            )
            .field("directory", &self.directory.is_some())
            .finish()
    }
}

#[cfg(test)]
#[path = "router_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "resolve_tests.rs"]
mod resolve_tests;

#[cfg(test)]
#[path = "store_tests.rs"]
mod store_tests;
