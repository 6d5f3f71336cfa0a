//! One Event Socket session as a sans-IO state machine: the handshake (auth, event
//! subscription, `conference list` snapshot), request bookkeeping, and keepalive.
//!
//! The connection task feeds it typed messages and the current time ([`Session::handle_message`],
//! [`Session::handle_timeout`]), writes what [`Session::poll_output`] asks for, and sleeps until
//! [`Session::poll_timeout`]. Every wait has a deadline: a server that stops answering is an
//! error ([`SessionError::Silent`]) the task turns into a reconnect, never a hang.
//!
//! ```text
//! AwaitAuthRequest ─auth/request─▶ AwaitAuth ─+OK─▶ AwaitSubscribe ─+OK─▶ AwaitSnapshot ─list─▶ Ready
//! ```

use super::message::{parse_conference_list, Event, ListedConference, Message};
use crate::secret::Password;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// The events dialin subscribes to: conference life-cycle and members, and channel answers
/// (they carry our `X-Dialin-Call` header; conference events carry no channel variables).
/// `BACKGROUND_JOB` carries the results of `bgapi` commands.
pub const SUBSCRIPTION: &str =
    "event json CHANNEL_ANSWER BACKGROUND_JOB CUSTOM conference::maintenance";

/// The snapshot request.
const SNAPSHOT: &str = "api conference list";

/// The keepalive request: small, harmless, always answered.
const KEEPALIVE: &str = "api global_getvar hostname";

/// The most requests in flight; an `api` beyond this is refused, not queued.
pub const MAX_PENDING: usize = 32;

/// The most events kept while the snapshot is being taken; more is an overloaded server and a
/// reconnect.
const MAX_EARLY_EVENTS: usize = 1024;

/// Session timing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionSettings {
    /// How long each handshake step and each request may take before the server counts as
    /// silent.
    pub reply_timeout: Duration,
    /// After this long without a frame, a keepalive request is sent.
    pub keepalive: Duration,
}

impl Default for SessionSettings {
    fn default() -> SessionSettings {
        SessionSettings {
            reply_timeout: Duration::from_secs(5),
            keepalive: Duration::from_secs(15),
        }
    }
}

/// Why a session ended. Messages are for the operator; none contains the password.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// `-ERR invalid` to our `auth`.
    #[error("FreeSWITCH refused the Event Socket password; check esl_password_file/esl_password_env against event_socket.conf.xml")]
    WrongPassword,
    /// `text/rude-rejection`.
    #[error("FreeSWITCH refused dialin's address (Event Socket ACL); add dialin's address to apply-inbound-acl in event_socket.conf.xml")]
    AccessDenied,
    /// The server closed the session (`text/disconnect-notice`).
    #[error("FreeSWITCH closed the Event Socket: {0}")]
    Disconnected(String),
    /// No answer within the reply timeout.
    #[error("FreeSWITCH did not answer on the Event Socket within {0:?}; is the server overloaded or the network dropping packets?")]
    Silent(Duration),
    /// A reply that makes no sense in this state.
    #[error("unexpected Event Socket reply: {0}")]
    Protocol(String),
}

/// What the session asks of its connection task or reports to the directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SessionOutput {
    /// Write these bytes to the socket.
    Send(Vec<u8>),
    /// The snapshot is in: the server is up and runs these conferences.
    Ready(Vec<ListedConference>),
    /// A subscribed event, after the snapshot.
    Event(Event),
    /// The reply to an [`Session::api`] request, or the result of a [`Session::bgapi`] job:
    /// its tag and whether the output starts `+OK`.
    ApiReply {
        /// The tag given to [`Session::api`] or [`Session::bgapi`].
        tag: u64,
        /// Whether FreeSWITCH reported success.
        ok: bool,
    },
}

/// The handshake step or the running state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    AwaitAuthRequest,
    AwaitAuth,
    AwaitSubscribe,
    AwaitSnapshot,
    Ready,
}

/// A request waiting for its `api/response`, in the order sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Pending {
    Snapshot,
    Keepalive,
    Api(u64),
}

/// One session; see the module doc.
#[derive(Debug)]
pub struct Session {
    /// Timing.
    settings: SessionSettings,
    /// The password for `auth`.
    password: Password,
    /// Where the session is.
    state: State,
    /// When the current handshake step began.
    step_since: Instant,
    /// When the last frame arrived.
    last_rx: Instant,
    /// `api` requests in flight with the time each was sent.
    pending: VecDeque<(Pending, Instant)>,
    /// `bgapi` requests waiting for their `command/reply` (tag, time sent), in order.
    bg_sent: VecDeque<(u64, Instant)>,
    /// Accepted `bgapi` jobs waiting for their BACKGROUND_JOB event: (Job-UUID, tag).
    jobs: Vec<(String, u64)>,
    /// Outputs not yet taken.
    out: VecDeque<SessionOutput>,
    /// Events that arrived between the subscription and the snapshot's reply: applied on top
    /// of the snapshot, in order, so a conference created meanwhile is not missed.
    early: Vec<Event>,
}

impl Session {
    /// A session on a socket that has just connected at `now`.
    pub fn new(now: Instant, password: Password, settings: SessionSettings) -> Session {
        Session {
            settings,
            password,
            state: State::AwaitAuthRequest,
            step_since: now,
            last_rx: now,
            pending: VecDeque::new(),
            bg_sent: VecDeque::new(),
            jobs: Vec::new(),
            out: VecDeque::new(),
            early: Vec::new(),
        }
    }

    /// Whether the handshake is done and events flow.
    pub fn is_ready(&self) -> bool {
        self.state == State::Ready
    }

    /// Queues `api <command>`; its reply comes back as [`SessionOutput::ApiReply`] with `tag`.
    /// Refused (false) before the session is ready or with [`MAX_PENDING`] requests in flight.
    pub fn api(&mut self, now: Instant, command: &str, tag: u64) -> bool {
        if self.state != State::Ready || self.pending.len() >= MAX_PENDING {
            return false;
        }
        self.request(now, Pending::Api(tag), &format!("api {command}"));
        true
    }

    /// Queues `bgapi <command>` (FreeSWITCH runs it in the background and answers with a
    /// BACKGROUND_JOB event); its result comes back as [`SessionOutput::ApiReply`] with `tag`.
    /// Refused (false) before the session is ready or with [`MAX_PENDING`] jobs open.
    pub fn bgapi(&mut self, now: Instant, command: &str, tag: u64) -> bool {
        if self.state != State::Ready || self.bg_sent.len() + self.jobs.len() >= MAX_PENDING {
            return false;
        }
        self.bg_sent.push_back((tag, now));
        self.out.push_back(SessionOutput::Send(
            format!("bgapi {command}\n\n").into_bytes(),
        ));
        true
    }

    /// Takes one message received at `now`.
    pub fn handle_message(&mut self, now: Instant, msg: Message) -> Result<(), SessionError> {
        self.last_rx = now;
        match (self.state, msg) {
            (_, Message::RudeRejection) => Err(SessionError::AccessDenied),
            (_, Message::DisconnectNotice(text)) => Err(SessionError::Disconnected(
                text.lines().next().unwrap_or("").to_string(),
            )),
            (State::AwaitAuthRequest, Message::AuthRequest) => {
                let auth = format!("auth {}\n\n", self.password.expose());
                self.out.push_back(SessionOutput::Send(auth.into_bytes()));
                self.step(now, State::AwaitAuth);
                Ok(())
            }
            (State::AwaitAuth, Message::CommandReply { ok: true, .. }) => {
                let sub = format!("{SUBSCRIPTION}\n\n");
                self.out.push_back(SessionOutput::Send(sub.into_bytes()));
                self.step(now, State::AwaitSubscribe);
                Ok(())
            }
            (State::AwaitAuth, Message::CommandReply { ok: false, .. }) => {
                Err(SessionError::WrongPassword)
            }
            (State::AwaitSubscribe, Message::CommandReply { ok: true, .. }) => {
                self.step(now, State::AwaitSnapshot);
                self.request(now, Pending::Snapshot, SNAPSHOT);
                Ok(())
            }
            (State::AwaitSubscribe, Message::CommandReply { ok: false, text }) => Err(
                SessionError::Protocol(format!("the event subscription was refused ({text})")),
            ),
            (_, Message::ApiResponse(body)) => self.on_api_response(now, &body),
            (State::Ready, Message::Event(Event::BackgroundJob { job_uuid, ok })) => {
                if let Some(i) = self.jobs.iter().position(|(u, _)| *u == job_uuid) {
                    let (_, tag) = self.jobs.swap_remove(i);
                    self.out.push_back(SessionOutput::ApiReply { tag, ok });
                }
                Ok(())
            }
            (State::Ready, Message::Event(e)) => {
                if e != Event::Other {
                    self.out.push_back(SessionOutput::Event(e));
                }
                Ok(())
            }
            // Replaying these after the snapshot is safe whether the snapshot already saw
            // them or not: creating a known conference or destroying an unknown one is a no-op.
            (State::AwaitSnapshot, Message::Event(e)) => {
                if e != Event::Other {
                    if self.early.len() == MAX_EARLY_EVENTS {
                        return Err(SessionError::Protocol(
                            "too many events before the conference list arrived".into(),
                        ));
                    }
                    self.early.push(e);
                }
                Ok(())
            }
            (_, Message::Event(_)) | (_, Message::Other) => Ok(()),
            (State::Ready, Message::CommandReply { ok, text }) => {
                if let Some((tag, _)) = self.bg_sent.pop_front() {
                    match text.strip_prefix("+OK Job-UUID: ").filter(|_| ok) {
                        Some(uuid) => self.jobs.push((uuid.trim().to_string(), tag)),
                        None => self
                            .out
                            .push_back(SessionOutput::ApiReply { tag, ok: false }),
                    }
                }
                Ok(())
            }
            (state, msg) => Err(SessionError::Protocol(format!(
                "{} while {state:?}",
                describe(&msg)
            ))),
        }
    }

    fn on_api_response(&mut self, now: Instant, body: &str) -> Result<(), SessionError> {
        let Some((kind, _)) = self.pending.pop_front() else {
            return Err(SessionError::Protocol(
                "an api/response nobody asked for".into(),
            ));
        };
        match kind {
            Pending::Snapshot => match parse_conference_list(body) {
                Some(list) => {
                    self.out.push_back(SessionOutput::Ready(list));
                    let early = std::mem::take(&mut self.early);
                    self.out
                        .extend(early.into_iter().map(SessionOutput::Event));
                    self.step(now, State::Ready);
                    Ok(())
                }
                None => Err(SessionError::Protocol(
                    "`conference list` did not answer with a conference list; is mod_conference loaded?".into(),
                )),
            },
            Pending::Keepalive => Ok(()),
            Pending::Api(tag) => {
                self.out.push_back(SessionOutput::ApiReply {
                    tag,
                    ok: body.starts_with("+OK"),
                });
                Ok(())
            }
        }
    }

    /// Fires due deadlines: a silent server is an error; an idle one gets a keepalive.
    pub fn handle_timeout(&mut self, now: Instant) -> Result<(), SessionError> {
        let timeout = self.settings.reply_timeout;
        let overdue = match self.state {
            State::Ready => self.oldest_request().is_some_and(|at| now >= at + timeout),
            _ => now >= self.step_since + timeout,
        };
        if overdue {
            return Err(SessionError::Silent(timeout));
        }
        if self.state == State::Ready
            && self.pending.is_empty()
            && now >= self.last_rx + self.settings.keepalive
        {
            self.request(now, Pending::Keepalive, KEEPALIVE);
        }
        Ok(())
    }

    /// The next output, oldest first.
    #[must_use]
    pub fn poll_output(&mut self) -> Option<SessionOutput> {
        self.out.pop_front()
    }

    /// When [`Session::handle_timeout`] must run next.
    #[must_use]
    pub fn poll_timeout(&self) -> Instant {
        let timeout = self.settings.reply_timeout;
        match self.state {
            State::Ready => match self.oldest_request() {
                Some(at) => at + timeout,
                None => self.last_rx + self.settings.keepalive,
            },
            _ => self.step_since + timeout,
        }
    }

    /// When the oldest unanswered `api` or `bgapi` request was sent.
    fn oldest_request(&self) -> Option<Instant> {
        let api = self.pending.front().map(|p| p.1);
        let bg = self.bg_sent.front().map(|b| b.1);
        api.into_iter().chain(bg).min()
    }

    fn step(&mut self, now: Instant, next: State) {
        self.state = next;
        self.step_since = now;
    }

    fn request(&mut self, now: Instant, kind: Pending, command: &str) {
        self.pending.push_back((kind, now));
        self.out
            .push_back(SessionOutput::Send(format!("{command}\n\n").into_bytes()));
    }
}

/// A short description of a message for error text (no bodies: they may hold numbers).
fn describe(msg: &Message) -> &'static str {
    match msg {
        Message::AuthRequest => "auth/request",
        Message::CommandReply { .. } => "command/reply",
        Message::ApiResponse(_) => "api/response",
        Message::Event(_) => "an event",
        Message::DisconnectNotice(_) => "disconnect-notice",
        Message::RudeRejection => "rude-rejection",
        Message::Other => "an unknown frame",
    }
}

#[cfg(test)]
#[path = "session_tests.rs"]
mod tests;
