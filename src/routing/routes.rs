//! The pure part of routing: the configured routes and the rules that turn a PIN into a
//! [`Lookup`], given the store's current mappings, the conference directory and the time.
//!
//! [`Routes`] holds no shared handle and reads no clock: everything that changes while dialin
//! runs (the store snapshot, the directory, `now`) is an argument, so a test can replay any
//! situation. [`super::Router`] is the thin wrapper that takes the snapshot and the directory
//! lock and calls in here.

use super::directory::{Directory, Presence, ServerHealth};
use super::{ConferenceTarget, Lookup, RouteDecision, WaitingFor};
use crate::ids::{ConferenceId, ServerName};
use crate::secret::Pin;
use crate::store::model::{Mapping, Target};
use crate::store::shared_mappings::MeetingLookup;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Instant;

/// The smallest and largest voiceBridge numbers BBB uses: a PIN of this length may be one.
const CONFERENCE_DIGITS: std::ops::RangeInclusive<usize> = 5..=11;

/// What routing needs from the configuration, built by `config` (routing does not read the
/// config file's types, so the two modules do not import each other).
#[derive(Clone, Debug, Default)]
pub struct RoutingSettings {
    /// `ivr.echo_pin`: the echo test's PIN, if enabled.
    pub echo_pin: Option<Pin>,
    /// The config file's `[[pins]]`: PIN, conference, and the server name if one is given.
    pub pins: Vec<(Pin, ConferenceId, Option<ServerName>)>,
    /// `routing.pin_is_conference`: a 5–11 digit PIN without mapping is a conference number.
    pub pin_is_conference: bool,
    /// The name of the server for PINs that do not name one, if there is one.
    pub default_server: Option<ServerName>,
    /// Every `[[servers]]` entry: its name and FreeSWITCH SIP address.
    pub servers: Vec<(ServerName, SocketAddr)>,
}

/// A server a route can lead to.
#[derive(Clone)]
pub(super) struct Server {
    /// The server's name from the config.
    pub(super) name: ServerName,
    /// Its FreeSWITCH SIP address.
    addr: SocketAddr,
}

/// The configured routes: the echo test, the admin `[[pins]]` mappings already resolved to a
/// target, and (if `pin_is_conference`) the PIN as a voiceBridge number on the default server.
/// Pure: see the module doc.
#[derive(Clone)]
pub struct Routes {
    /// The echo test's PIN, if enabled.
    pub(super) echo_pin: Option<Pin>,
    /// Admin mappings by PIN digits, already resolved to a target.
    pub(super) mappings: HashMap<String, ConferenceTarget>,
    /// Whether a 5–11 digit PIN without mapping is taken as the conference number.
    pub(super) pin_is_conference: bool,
    /// The server for PINs that do not name one.
    pub(super) default_server: Option<Server>,
    /// Every server by name: store mappings name one, and the directory says where to go.
    servers: HashMap<ServerName, Server>,
}

impl Routes {
    /// Builds the routes. A mapping whose server cannot be found (impossible after config
    /// validation) is left out, so its PIN routes as if unmapped.
    pub fn new(settings: RoutingSettings) -> Routes {
        let servers: HashMap<ServerName, Server> = settings
            .servers
            .into_iter()
            .map(|(name, addr)| (name.clone(), Server { name, addr }))
            .collect();
        let default_server = settings
            .default_server
            .and_then(|name| servers.get(&name).cloned());
        let mut mappings = HashMap::new();
        for (pin, conference, server) in settings.pins {
            let target = match &server {
                Some(name) => servers.get(name).cloned(),
                None => default_server.clone(),
            };
            if let Some(s) = target {
                let target = ConferenceTarget {
                    conference,
                    server: s.name,
                    server_addr: s.addr,
                };
                mappings.insert(pin.expose().to_string(), target);
            }
        }
        Routes {
            echo_pin: settings.echo_pin,
            mappings,
            pin_is_conference: settings.pin_is_conference,
            default_server,
            servers,
        }
    }

    /// Where `pin` leads, given the store's mappings `store`, the directory `dir` (if any
    /// server has an Event Socket), the monotonic time `now` and the wall clock `unix` (Unix
    /// seconds, for the mappings' validity windows). See the routing module doc for the rules.
    pub fn lookup(
        &self,
        pin: &Pin,
        store: &HashMap<String, Mapping>,
        dir: Option<&Directory>,
        now: Instant,
        unix: i64,
    ) -> Lookup {
        if self.echo_pin.as_ref() == Some(pin) {
            return Lookup::Ready(RouteDecision::Echo);
        }
        if let Some(target) = self.mappings.get(pin.expose()) {
            let (conference, server) = (target.conference.clone(), Some(target.server.as_str()));
            return Lookup::Ready(self.mapped(conference, server, dir, now));
        }
        if let Some(m) = store.get(pin.expose()).filter(|m| m.is_valid_at(unix)) {
            return match &m.target {
                Target::Conference { conference, server } => {
                    Lookup::Ready(self.mapped(conference.clone(), server.as_deref(), dir, now))
                }
                Target::Meeting { meeting_id, server } => Lookup::Meeting(MeetingLookup {
                    meeting_id: meeting_id.clone(),
                    server: server.clone(),
                }),
            };
        }
        Lookup::Ready(self.identity(pin, dir, now))
    }

    /// Re-checks a waiting caller's meeting at `now`: [`RouteDecision::Conference`] once it runs.
    /// A [`WaitingFor::Meeting`] stays waiting: only the BBB API can say it started.
    pub fn recheck(
        &self,
        waiting: &WaitingFor,
        dir: Option<&Directory>,
        now: Instant,
    ) -> RouteDecision {
        match waiting {
            WaitingFor::Conference { conference, server } => {
                self.mapped(conference.clone(), server.as_deref(), dir, now)
            }
            WaitingFor::Meeting(_) => RouteDecision::Waiting(waiting.clone()),
        }
    }

    /// A mapped (known) meeting: where the directory sees it running; on its named (or the
    /// default) server when the directory does not watch that server; otherwise the waiting
    /// room, or unavailable on a collision.
    pub fn mapped(
        &self,
        conference: ConferenceId,
        server: Option<&str>,
        dir: Option<&Directory>,
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
        let Some(dir) = dir else {
            return target.map_or(RouteDecision::Invalid, RouteDecision::Conference);
        };
        if let Some(t) = target.filter(|t| dir.index(&t.server).is_none()) {
            return self.unless_down(RouteDecision::Conference(t), dir, now);
        }
        match dir.lookup(conference.expose(), now) {
            Presence::Running(server) => self.unless_down(self.on(server, conference), dir, now),
            Presence::Collision | Presence::Unreachable(_) => RouteDecision::Unavailable,
            Presence::NotRunning { .. } => RouteDecision::Waiting(WaitingFor::Conference {
                conference,
                server: server.map(ServerName::new),
            }),
        }
    }

    /// An unmapped PIN taken as a voiceBridge number (if `pin_is_conference`).
    fn identity(&self, pin: &Pin, dir: Option<&Directory>, now: Instant) -> RouteDecision {
        if !self.pin_is_conference || !CONFERENCE_DIGITS.contains(&pin.len()) {
            return RouteDecision::Invalid;
        }
        let conference = ConferenceId(pin.expose().to_string());
        let Some(dir) = dir else {
            return match &self.default_server {
                Some(s) => self.on(s.name.clone(), conference),
                None => RouteDecision::Invalid,
            };
        };
        match dir.lookup(pin.expose(), now) {
            Presence::Running(server) => self.unless_down(self.on(server, conference), dir, now),
            Presence::Collision
            | Presence::Unreachable(_)
            | Presence::NotRunning { certain: false } => RouteDecision::Unavailable,
            Presence::NotRunning { certain: true } => match &self.default_server {
                Some(s) if dir.index(&s.name).is_none() => {
                    self.unless_down(self.on(s.name.clone(), conference), dir, now)
                }
                _ => RouteDecision::Invalid,
            },
        }
    }

    /// `decision`, unless it leads to a server that is [`ServerHealth::Down`] at `now`
    /// (Event Socket refused or closed, OPTIONS probes failing): then "unavailable" at once,
    /// instead of dialling a dead server and waiting out `server_answer_timeout`.
    fn unless_down(&self, decision: RouteDecision, dir: &Directory, now: Instant) -> RouteDecision {
        match &decision {
            RouteDecision::Conference(t) if dir.health(&t.server, now) == ServerHealth::Down => {
                RouteDecision::Unavailable
            }
            _ => decision,
        }
    }

    /// `conference` on the server named `server`; unavailable if that name is not configured.
    fn on(&self, server: ServerName, conference: ConferenceId) -> RouteDecision {
        match self.servers.get(&server) {
            Some(s) => RouteDecision::Conference(ConferenceTarget {
                conference,
                server,
                server_addr: s.addr,
            }),
            None => RouteDecision::Unavailable,
        }
    }
}
