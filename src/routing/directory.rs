//! The live conference directory: which BBB server runs which conference, kept from each
//! server's Event Socket (a `conference list` snapshot on connect, then conference events).
//!
//! Pure: the ESL tasks feed it snapshots, events and link changes with the current time; routing
//! asks [`Directory::lookup`] at PIN time, from memory. Rules:
//! - a conference live on exactly one server runs there;
//! - live on two servers is a collision: nobody is sent there, and the collision is counted;
//! - a server whose Event Socket went quiet keeps its conferences for `grace`, then they are
//!   forgotten; while any watched server is not up, "not running" is uncertain;
//! - a server whose Event Socket was refused or closed ([`LinkLoss::Refused`]: the process is
//!   gone), or whose OPTIONS probes fail, is down for new calls at once: its conferences are
//!   still remembered for `grace`, as [`Presence::Unreachable`], so their callers hear
//!   "unavailable" instead of "invalid PIN" or the waiting room.
//!
//! [`Directory::health`] sums this up per server ([`ServerHealth`]) for routing and the call
//! core.

use crate::esl::client::LinkLoss;
use crate::esl::message::{Event, EventKind, ListedConference};
use crate::ids::ServerName;
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
    /// Lost quietly (timeouts); its conferences are still trusted (grace period).
    DownGrace,
    /// Refused or closed (the server process is gone), or quiet for longer than the grace
    /// period: no new calls go there.
    Down,
}

/// Whether a BBB server can take calls now, from its Event Socket and its OPTIONS probes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ServerHealth {
    /// Nothing says otherwise: the Event Socket is up (or not configured) and the probes (if
    /// any) answer.
    Up,
    /// The Event Socket went quiet (timeouts) or has not connected yet, within `esl.grace`:
    /// calls already bridged go on, its conferences are still trusted.
    Quiet,
    /// Dead for new calls: the Event Socket was refused or closed, or the OPTIONS probes
    /// failed `failures` times in a row, or the socket has been quiet longer than `esl.grace`.
    Down,
}

/// Where a conference is, as far as the directory knows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Presence {
    /// Live on exactly this server (its config name).
    Running(ServerName),
    /// Live on two or more servers: refuse, never guess.
    Collision,
    /// Last seen (within `esl.grace`) on this server, which is now [`ServerHealth::Down`] and
    /// trusted nowhere else: "unavailable", not "invalid" or the waiting room.
    Unreachable(ServerName),
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
    pub name: ServerName,
    /// Its Event Socket state.
    pub state: EslState,
    /// How many conferences it runs (as trusted now: 0 when down past the grace period).
    pub conferences: usize,
}

/// One watched server's Event Socket link.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Link {
    /// Never connected since start-up (a quiet failure does not change that).
    #[default]
    Connecting,
    /// Connected, snapshot taken.
    Up,
    /// Lost at `since`, in the way `loss` says (the worse one if several attempts failed).
    Lost {
        /// When the link was lost (or first refused).
        since: Instant,
        /// Refused/closed (down at once) or quiet (grace).
        loss: LinkLoss,
    },
}

/// One watched server.
#[derive(Debug)]
struct Entry {
    /// The config name.
    name: ServerName,
    /// The Event Socket link.
    link: Link,
    /// Live conferences: name → members (member id → channel Unique-ID).
    conferences: HashMap<String, HashMap<u32, String>>,
    /// Members muted now (by their key or a moderator), as (conference, member id).
    muted: std::collections::HashSet<(String, u32)>,
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
    /// Servers (by config name, watched or not) whose OPTIONS probes currently fail.
    probe_down: std::collections::HashSet<ServerName>,
    /// Every server's health as last reported by [`Directory::take_health_change`].
    reported: Vec<(ServerName, ServerHealth)>,
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
    pub fn new(servers: &[ServerName], grace: Duration) -> Directory {
        let servers = servers
            .iter()
            .map(|name| Entry {
                name: name.clone(),
                link: Link::default(),
                conferences: HashMap::new(),
                muted: Default::default(),
                calls: HashMap::new(),
                call_order: VecDeque::new(),
            })
            .collect();
        Directory {
            grace,
            servers,
            collisions: 0,
            probe_down: Default::default(),
            reported: Vec::new(),
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
        entry.link = Link::Up;
        entry.conferences = list
            .into_iter()
            .map(|c| (c.conference.0, c.members.into_iter().collect()))
            .collect();
        // Mute states are known from events only: those of members still there stay.
        let entry = &mut self.servers[idx];
        let conferences = &entry.conferences;
        entry
            .muted
            .retain(|(c, m)| conferences.get(c).is_some_and(|ms| ms.contains_key(m)));
        let names: Vec<String> = self.servers[idx].conferences.keys().cloned().collect();
        for name in names {
            self.check_collision(idx, &name, now);
        }
    }

    /// Server `idx` lost its Event Socket at `now`, or an attempt to connect failed, in the
    /// way `loss` says. A refusal makes it down at once (also before its first connection,
    /// and when it had gone quiet before: the loss time stays, so its conferences are still
    /// forgotten `grace` after the link was first lost). A quiet failure before the first
    /// connection or of an already lost link changes nothing.
    pub fn handle_down(&mut self, idx: usize, now: Instant, loss: LinkLoss) {
        let Some(entry) = self.servers.get_mut(idx) else {
            return;
        };
        entry.link = match (entry.link, loss) {
            (Link::Up, _) => Link::Lost { since: now, loss },
            (Link::Connecting, LinkLoss::Refused) => Link::Lost { since: now, loss },
            (Link::Lost { since, .. }, LinkLoss::Refused) => Link::Lost { since, loss },
            (link, LinkLoss::Quiet) => link,
        };
    }

    /// Server `server`'s OPTIONS probes now say `alive` (from the prober's verdict, after its
    /// failure or recovery threshold). Returns whether that changed anything.
    pub fn handle_probe(&mut self, server: &str, alive: bool) -> bool {
        if alive {
            self.probe_down.remove(server)
        } else {
            self.probe_down.insert(ServerName::new(server))
        }
    }

    /// Whether server `server` (any configured name, watched or not) can take calls at `now`.
    /// A server neither watched nor probed is [`ServerHealth::Up`]: nothing says otherwise.
    pub fn health(&self, server: &str, now: Instant) -> ServerHealth {
        if self.probe_down.contains(server) {
            return ServerHealth::Down;
        }
        match self.servers.iter().find(|s| s.name == server) {
            None => ServerHealth::Up,
            Some(s) => match self.state(s, now) {
                EslState::Up => ServerHealth::Up,
                EslState::Connecting | EslState::DownGrace => ServerHealth::Quiet,
                EslState::Down => ServerHealth::Down,
            },
        }
    }

    /// Whether any server's health differs at `now` from the last time this was asked (the
    /// first call compares with "nothing known"); remembers the current one. The shared
    /// directory asks after every input and timer, and wakes its subscribers on `true`.
    pub fn take_health_change(&mut self, now: Instant) -> bool {
        // Watched servers and probed-down ones; a server in neither is up (and a probed one
        // that recovers drops out of the list, which is a change too).
        let mut names: Vec<&ServerName> = self.servers.iter().map(|s| &s.name).collect();
        names.extend(self.probe_down.iter());
        names.sort();
        names.dedup();
        let current: Vec<(ServerName, ServerHealth)> = names
            .into_iter()
            .map(|n| (n.clone(), self.health(n, now)))
            .collect();
        let changed = current != self.reported;
        self.reported = current;
        changed
    }

    /// The earliest time after `now` at which some server's health changes by itself (a quiet
    /// link's grace ending, a refused link's conferences being forgotten), if any.
    pub fn next_change(&self, now: Instant) -> Option<Instant> {
        self.servers
            .iter()
            .filter_map(|s| match s.link {
                Link::Lost { since, .. } => Some(since + self.grace),
                _ => None,
            })
            .filter(|t| *t > now)
            .min()
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
                        entry.muted.retain(|(c, _)| c != name);
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
                        entry.muted.remove(&(name.to_string(), *member));
                    }
                    EventKind::Mute { member, muted } => {
                        // The member id and the server only: the conference is a PIN.
                        tracing::debug!(
                            server = %entry.name,
                            member,
                            muted,
                            "a conference member's mute changed"
                        );
                        let known = entry
                            .conferences
                            .get(name)
                            .is_some_and(|m| m.contains_key(member));
                        if *muted && known {
                            entry.muted.insert((name.to_string(), *member));
                        } else {
                            entry.muted.remove(&(name.to_string(), *member));
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

    /// Where conference `name` runs at `now`. Only trusted servers (up, or quiet within the
    /// grace period) count; a conference found on none of them but last seen on a server that
    /// was refused within the grace period is [`Presence::Unreachable`].
    pub fn lookup(&self, name: &str, now: Instant) -> Presence {
        let mut found: Option<&ServerName> = None;
        let mut dead: Option<&ServerName> = None;
        let mut count = 0;
        let mut certain = true;
        for s in &self.servers {
            let state = self.state(s, now);
            if state != EslState::Up {
                certain = false;
            }
            if !s.conferences.contains_key(name) {
                continue;
            }
            if matches!(state, EslState::Up | EslState::DownGrace) {
                count += 1;
                found = Some(&s.name);
            } else if self.remembered(s, now) {
                dead = Some(&s.name);
            }
        }
        match (count, found, dead) {
            (1, Some(server), _) => Presence::Running(server.clone()),
            (0, _, Some(server)) => Presence::Unreachable(server.clone()),
            (0, _, None) => Presence::NotRunning { certain },
            _ => Presence::Collision,
        }
    }

    /// Whether a refused server's conferences are still remembered (within `grace` of the
    /// loss) as "there, but unreachable".
    fn remembered(&self, s: &Entry, now: Instant) -> bool {
        matches!(s.link, Link::Lost { since, loss: LinkLoss::Refused } if now < since + self.grace)
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

    /// Whether our call's member (`call`: its `X-Dialin-Call`) on server `idx` is muted, by
    /// its key or a moderator; `None` when the member is not known.
    pub fn member_muted(&self, idx: usize, call: &str) -> Option<bool> {
        let (conference, member) = self.member(idx, call)?;
        let entry = self.servers.get(idx)?;
        Some(entry.muted.contains(&(conference.0, member)))
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

    /// A refused link is down at once; a quiet one keeps the grace period.
    fn state(&self, s: &Entry, now: Instant) -> EslState {
        match s.link {
            Link::Connecting => EslState::Connecting,
            Link::Up => EslState::Up,
            Link::Lost {
                loss: LinkLoss::Refused,
                ..
            } => EslState::Down,
            Link::Lost { since, .. } if now < since + self.grace => EslState::DownGrace,
            Link::Lost { .. } => EslState::Down,
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
