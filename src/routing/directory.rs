//! The live conference directory: which BBB server runs which conference, kept from each
//! server's Event Socket (a `conference list` snapshot on connect, then conference events).
//!
//! Pure: the ESL tasks feed it snapshots, events and link changes with the current time; routing
//! asks [`Directory::lookup`] at PIN time, from memory. Rules:
//! - a conference live on exactly one server runs there;
//! - live on two servers is a collision: nobody is sent there, and the collision is counted;
//! - a server whose Event Socket is down keeps its conferences for `grace`, then they are
//!   forgotten; while any watched server is not up, "not running" is uncertain.

use crate::esl::message::{Event, EventKind, ListedConference};
use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

/// How many `X-Dialin-Call` → channel links a server keeps (oldest dropped first).
const MAX_CALL_LINKS: usize = 4096;

/// The state of one server's Event Socket, for routing and the metrics/status handle.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EslState {
    /// Never connected since start-up.
    Connecting,
    /// Connected, snapshot taken, events flowing.
    Up,
    /// Lost; its conferences are still trusted (grace period).
    DownGrace,
    /// Lost for longer than the grace period; its conferences are unknown.
    Down,
}

/// Where a conference is, as far as the directory knows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Presence {
    /// Live on exactly this server (its config name).
    Running(String),
    /// Live on two or more servers: refuse, never guess.
    Collision,
    /// Not live anywhere the directory can see. `certain` is false while a watched server is
    /// not up (the conference may run there).
    NotRunning {
        /// Every watched server is up, so the answer is definite.
        certain: bool,
    },
}

/// A read-only summary of one server, safe to log and to export as metrics.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerStatus {
    /// The server's config name.
    pub name: String,
    /// Its Event Socket state.
    pub state: EslState,
    /// How many conferences it runs (as trusted now: 0 when down past the grace period).
    pub conferences: usize,
}

/// One watched server.
#[derive(Debug, Default)]
struct Entry {
    /// The config name.
    name: String,
    /// `None` before the first connection; `Some(None)` up; `Some(Some(t))` down since `t`.
    link: Option<Option<Instant>>,
    /// Live conferences: name → members (member id → channel Unique-ID).
    conferences: HashMap<String, HashMap<u32, String>>,
    /// Our calls' `X-Dialin-Call` values → channel Unique-ID (from CHANNEL_ANSWER).
    calls: HashMap<String, String>,
    /// Insertion order of `calls`, to drop the oldest beyond [`MAX_CALL_LINKS`].
    call_order: VecDeque<String>,
}

/// The directory over all watched servers; see the module doc. `Debug` shows counts only.
pub struct Directory {
    /// How long a down server's conferences stay trusted.
    grace: Duration,
    /// The servers with an Event Socket, by index.
    servers: Vec<Entry>,
    /// Times a conference was seen live on two servers at once.
    collisions: u64,
}

impl std::fmt::Debug for Directory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Directory")
            .field("servers", &self.servers.len())
            .field("collisions", &self.collisions)
            .finish()
    }
}

impl Directory {
    /// A directory watching `servers` (config names), none connected yet.
    pub fn new(servers: &[String], grace: Duration) -> Directory {
        let servers = servers
            .iter()
            .map(|name| Entry {
                name: name.clone(),
                ..Entry::default()
            })
            .collect();
        Directory {
            grace,
            servers,
            collisions: 0,
        }
    }

    /// The index of the server named `name`, if watched.
    pub fn index(&self, name: &str) -> Option<usize> {
        self.servers.iter().position(|s| s.name == name)
    }

    /// Server `idx` connected and its snapshot is `list`: it replaces what was known.
    pub fn handle_snapshot(&mut self, idx: usize, now: Instant, list: Vec<ListedConference>) {
        let Some(entry) = self.servers.get_mut(idx) else {
            return;
        };
        entry.link = Some(None);
        entry.conferences = list
            .into_iter()
            .map(|c| (c.conference.0, c.members.into_iter().collect()))
            .collect();
        let names: Vec<String> = self.servers[idx].conferences.keys().cloned().collect();
        for name in names {
            self.check_collision(idx, &name, now);
        }
    }

    /// Server `idx` lost its Event Socket at `now` (no effect if it was already down).
    pub fn handle_down(&mut self, idx: usize, now: Instant) {
        if let Some(entry) = self.servers.get_mut(idx) {
            if entry.link == Some(None) {
                entry.link = Some(Some(now));
            }
        }
    }

    /// An event from server `idx`. Returns true if a conference was created (waiters re-check).
    pub fn handle_event(&mut self, idx: usize, now: Instant, event: &Event) -> bool {
        let Some(entry) = self.servers.get_mut(idx) else {
            return false;
        };
        match event {
            Event::Conference(c) => {
                let name = c.conference.expose();
                match &c.kind {
                    EventKind::Create => {
                        entry.conferences.entry(name.to_string()).or_default();
                        self.check_collision(idx, name, now);
                        return true;
                    }
                    EventKind::Destroy => {
                        entry.conferences.remove(name);
                    }
                    EventKind::AddMember { member, unique_id } => {
                        // An add-member for a conference we missed the creation of creates it.
                        let created = !entry.conferences.contains_key(name);
                        entry
                            .conferences
                            .entry(name.to_string())
                            .or_default()
                            .insert(*member, unique_id.clone());
                        if created {
                            self.check_collision(idx, name, now);
                        }
                        return created;
                    }
                    EventKind::DelMember { member } => {
                        if let Some(members) = entry.conferences.get_mut(name) {
                            members.remove(member);
                        }
                    }
                    EventKind::Other => {}
                }
            }
            Event::DialinChannel { unique_id, call } => {
                if entry.call_order.len() >= MAX_CALL_LINKS {
                    if let Some(old) = entry.call_order.pop_front() {
                        entry.calls.remove(&old);
                    }
                }
                entry.calls.insert(call.clone(), unique_id.clone());
                entry.call_order.push_back(call.clone());
            }
            Event::BackgroundJob { .. } | Event::Other => {}
        }
        false
    }

    /// Where conference `name` runs at `now`.
    pub fn lookup(&self, name: &str, now: Instant) -> Presence {
        let mut found: Option<&str> = None;
        let mut count = 0;
        let mut certain = true;
        for s in &self.servers {
            let state = self.state(s, now);
            if state != EslState::Up {
                certain = false;
            }
            if matches!(state, EslState::Up | EslState::DownGrace)
                && s.conferences.contains_key(name)
            {
                count += 1;
                found = Some(&s.name);
            }
        }
        match (count, found) {
            (1, Some(server)) => Presence::Running(server.to_string()),
            (0, _) => Presence::NotRunning { certain },
            _ => Presence::Collision,
        }
    }

    /// Our call `call` (its `X-Dialin-Call` value) as a member on server `idx`: the
    /// conference and member id, once both CHANNEL_ANSWER and add-member were seen.
    pub fn member(&self, idx: usize, call: &str) -> Option<(crate::ids::ConferenceId, u32)> {
        let entry = self.servers.get(idx)?;
        let uuid = entry.calls.get(call)?;
        entry.conferences.iter().find_map(|(name, members)| {
            members
                .iter()
                .find(|(_, u)| *u == uuid)
                .map(|(id, _)| (crate::ids::ConferenceId(name.clone()), *id))
        })
    }

    /// Every server's state and conference count at `now`.
    pub fn status(&self, now: Instant) -> Vec<ServerStatus> {
        self.servers
            .iter()
            .map(|s| {
                let state = self.state(s, now);
                let trusted = matches!(state, EslState::Up | EslState::DownGrace);
                ServerStatus {
                    name: s.name.clone(),
                    state,
                    conferences: if trusted { s.conferences.len() } else { 0 },
                }
            })
            .collect()
    }

    /// How many collisions were seen since start-up.
    pub fn collisions(&self) -> u64 {
        self.collisions
    }

    fn state(&self, s: &Entry, now: Instant) -> EslState {
        match s.link {
            None => EslState::Connecting,
            Some(None) => EslState::Up,
            Some(Some(since)) if now < since + self.grace => EslState::DownGrace,
            Some(Some(_)) => EslState::Down,
        }
    }

    /// Counts (and logs, by server names only) a conference that just became live on `idx`
    /// while another trusted server runs it too.
    fn check_collision(&mut self, idx: usize, name: &str, now: Instant) {
        let others: Vec<&str> = self
            .servers
            .iter()
            .enumerate()
            .filter(|(i, s)| {
                *i != idx
                    && matches!(self.state(s, now), EslState::Up | EslState::DownGrace)
                    && s.conferences.contains_key(name)
            })
            .map(|(_, s)| s.name.as_str())
            .collect();
        if !others.is_empty() {
            tracing::warn!(
                server = %self.servers[idx].name,
                also_on = %others.join(","),
                "the same conference runs on two servers; calls to it get \"unavailable\" until one ends (check the servers' voiceBridge ranges)"
            );
            self.collisions += 1;
        }
    }
}

#[cfg(test)]
#[path = "directory_tests.rs"]
mod tests;
