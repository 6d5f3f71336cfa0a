//! Routing: which conference on which server a PIN leads to.
//!
//! [`Router::resolve_at`] answers from memory at PIN time: the echo test, admin mappings, the
//! PIN as a voiceBridge number, and (when servers have an Event Socket) the live
//! [`directory`] of which server runs which conference. Rules with a directory:
//! - a conference live on one server routes there, wherever a mapping said it would be;
//! - live on two servers (a collision) or possibly on a server whose Event Socket is down:
//!   [`RouteDecision::Unavailable`], never a guess;
//! - a mapped PIN whose conference is not running yet: [`RouteDecision::Waiting`] (the
//!   waiting room);
//! - an identity PIN (voiceBridge) that is not running: [`RouteDecision::Invalid`], as it
//!   cannot be told apart from a typo; the default server takes it only if that server has no
//!   Event Socket (the old, directory-less behaviour).

pub mod directory;
pub mod live;

use directory::Presence;
use live::LiveDirectory;
use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::time::Instant;

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
        server: Option<String>,
    },
    /// A BBB meeting ID (PIN store mapping) the BBB API does not report running yet: only
    /// the API can tell when it starts, so the call driver asks it again (see
    /// `call::meeting_poll`); [`Router::recheck`] cannot decide it.
    Meeting(crate::store::live::MeetingLookup),
}

/// What a typed PIN leads to, when it may need a lookup first: store mappings to a BBB
/// meeting ID are resolved by the call driver (through the BBB API, with a timeout) and then
/// become a [`RouteDecision`] via [`Router::meeting_target`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Lookup {
    /// The decision is known now.
    Ready(RouteDecision),
    /// Ask the BBB API for this meeting's voiceBridge first.
    Meeting(crate::store::live::MeetingLookup),
}

/// The smallest and largest voiceBridge numbers BBB uses: a PIN of this length may be one.
const CONFERENCE_DIGITS: std::ops::RangeInclusive<usize> = 5..=11;

/// A server a route can lead to.
#[derive(Clone)]
struct Server {
    /// The server's name from the config.
    name: String,
    /// Its FreeSWITCH SIP address.
    addr: SocketAddr,
}

/// Resolves typed PINs to routes from the configuration: the echo test, the admin `[[pins]]`
/// mappings, and (if `pin_is_conference`) the PIN as a voiceBridge number on the default server.
///
/// Pure and cheap to build, so a config reload simply builds a new one. `Debug` shows only
/// counts: the mapping table is PIN material.
#[derive(Clone)]
pub struct Router {
    /// The echo test's PIN, if enabled.
    echo_pin: Option<crate::secret::Pin>,
    /// Admin mappings by PIN digits, already resolved to a target.
    mappings: std::collections::HashMap<String, ConferenceTarget>,
    /// Whether a 5–11 digit PIN without mapping is taken as the conference number.
    pin_is_conference: bool,
    /// The server for PINs that do not name one.
    default_server: Option<Server>,
    /// Every server by name: store mappings name one, and the directory says where to go.
    servers: HashMap<String, Server>,
    /// The live directory, when any server has an Event Socket.
    directory: Option<LiveDirectory>,
    /// The PIN store's mappings, swapped live by the store watcher (shared by clones).
    store: crate::store::live::LiveMappings,
}

impl Router {
    /// Builds the router from a validated configuration. A mapping whose server cannot be found
    /// (impossible after validation) is left out, so its PIN routes as if unmapped.
    pub fn new(config: &crate::config::Config) -> Router {
        let server = |s: &crate::config::ServerConfig| Server {
            name: s.name.clone(),
            addr: s.sip,
        };
        let default_server = config.default_server().map(server);
        let mut mappings = std::collections::HashMap::new();
        for m in &config.pins {
            let target = match &m.server {
                Some(name) => config.server(name).map(server),
                None => default_server.clone(),
            };
            if let Some(s) = target {
                let target = ConferenceTarget {
                    conference: m.conference.clone(),
                    server: s.name,
                    server_addr: s.addr,
                };
                mappings.insert(m.pin.expose().to_string(), target);
            }
        }
        Router {
            echo_pin: config.ivr.echo_pin.clone(),
            mappings,
            pin_is_conference: config.routing.pin_is_conference,
            default_server,
            servers: config
                .servers
                .iter()
                .map(|s| (s.name.clone(), server(s)))
                .collect(),
            directory: None,
            store: Default::default(),
        }
    }

    /// The same router consulting `directory` for servers it watches.
    pub fn with_directory(mut self, directory: LiveDirectory) -> Router {
        self.directory = Some(directory);
        self
    }

    /// The same router reading `store`'s mappings (a reloaded router keeps the store's live
    /// handle, which the store watcher keeps current).
    pub fn with_store(mut self, store: crate::store::live::LiveMappings) -> Router {
        self.store = store;
        self
    }

    /// The live directory, if any (for waiting callers and the mute key).
    pub fn directory(&self) -> Option<&LiveDirectory> {
        self.directory.as_ref()
    }

    /// The handle the store watcher swaps new mapping sets into.
    pub fn store_mappings(&self) -> crate::store::live::LiveMappings {
        self.store.clone()
    }

    /// Where `pin` leads at `now`; see the module doc for the rules. A store mapping to a BBB
    /// meeting ID needs a lookup ([`Router::lookup_at`]) and counts as invalid here.
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
        use crate::store::model::Target;
        if self.echo_pin.as_ref() == Some(pin) {
            return Lookup::Ready(RouteDecision::Echo);
        }
        if let Some(target) = self.mappings.get(pin.expose()) {
            let (conference, server) = (target.conference.clone(), Some(target.server.as_str()));
            return Lookup::Ready(self.mapped(conference, server, now));
        }
        let snapshot = self.store.snapshot();
        if let Some(m) = snapshot.get(pin.expose()).filter(|m| m.is_valid_at(unix)) {
            return match &m.target {
                Target::Conference { conference, server } => {
                    Lookup::Ready(self.mapped(conference.clone(), server.as_deref(), now))
                }
                Target::Meeting { meeting_id, server } => {
                    Lookup::Meeting(crate::store::live::MeetingLookup {
                        meeting_id: meeting_id.clone(),
                        server: server.clone(),
                    })
                }
            };
        }
        Lookup::Ready(self.identity(pin, now))
    }

    /// The route to the running meeting `conference` that the BBB API reported (on the server
    /// named `server`, or where the directory finds it, or on the default server).
    pub fn meeting_target(&self, conference: ConferenceId, server: Option<&str>) -> RouteDecision {
        self.mapped(conference, server, Instant::now())
    }

    /// Re-checks a waiting caller's meeting at `now`: [`RouteDecision::Conference`] once it runs.
    /// A [`WaitingFor::Meeting`] stays waiting: only the BBB API can say it started.
    pub fn recheck(&self, waiting: &WaitingFor, now: Instant) -> RouteDecision {
        match waiting {
            WaitingFor::Conference { conference, server } => {
                self.mapped(conference.clone(), server.as_deref(), now)
            }
            WaitingFor::Meeting(_) => RouteDecision::Waiting(waiting.clone()),
        }
    }

    /// A mapped (known) meeting: where the directory sees it running; on its named (or the
    /// default) server when the directory does not watch that server; otherwise the waiting
    /// room, or unavailable on a collision.
    fn mapped(
        &self,
        conference: ConferenceId,
        server: Option<&str>,
        now: Instant,
    ) -> RouteDecision {
        let named = match server {
            Some(name) => self.servers.get(name),
            None => self.default_server.as_ref(),
        };
        let target = named.map(|s| ConferenceTarget {
            conference: conference.clone(),
            server: s.name.clone(),
            server_addr: s.addr,
        });
        let Some(dir) = &self.directory else {
            return target.map_or(RouteDecision::Invalid, RouteDecision::Conference);
        };
        if let Some(t) = target.filter(|t| !dir.watches(&t.server)) {
            return RouteDecision::Conference(t);
        }
        match dir.lookup(conference.expose(), now) {
            Presence::Running(server) => self.on(server, conference),
            Presence::Collision => RouteDecision::Unavailable,
            Presence::NotRunning { .. } => RouteDecision::Waiting(WaitingFor::Conference {
                conference,
                server: server.map(str::to_string),
            }),
        }
    }

    /// An unmapped PIN taken as a voiceBridge number (if `pin_is_conference`).
    fn identity(&self, pin: &crate::secret::Pin, now: Instant) -> RouteDecision {
        if !self.pin_is_conference || !CONFERENCE_DIGITS.contains(&pin.len()) {
            return RouteDecision::Invalid;
        }
        let conference = ConferenceId(pin.expose().to_string());
        let Some(dir) = &self.directory else {
            return match &self.default_server {
                Some(s) => self.on(s.name.clone(), conference),
                None => RouteDecision::Invalid,
            };
        };
        match dir.lookup(pin.expose(), now) {
            Presence::Running(server) => self.on(server, conference),
            Presence::Collision | Presence::NotRunning { certain: false } => {
                RouteDecision::Unavailable
            }
            Presence::NotRunning { certain: true } => match &self.default_server {
                Some(s) if !dir.watches(&s.name) => self.on(s.name.clone(), conference),
                _ => RouteDecision::Invalid,
            },
        }
    }

    /// `conference` on the server named `server`; unavailable if that name is not configured.
    fn on(&self, server: String, conference: ConferenceId) -> RouteDecision {
        match self.servers.get(&server) {
            Some(s) => RouteDecision::Conference(ConferenceTarget {
                conference,
                server,
                server_addr: s.addr,
            }),
            None => RouteDecision::Unavailable,
        }
    }

    /// Where `pin` leads now (see [`Router::resolve_at`]).
    pub fn resolve(&self, pin: &crate::secret::Pin) -> RouteDecision {
        self.resolve_at(pin, Instant::now())
    }
}

impl fmt::Debug for Router {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Router")
            .field("echo", &self.echo_pin.is_some())
            .field("mappings", &self.mappings.len())
            .field("store", &self.store.len())
            .field("pin_is_conference", &self.pin_is_conference)
            .field(
                "default_server",
                &self.default_server.as_ref().map(|s| &s.name),
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
