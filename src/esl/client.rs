//! The tokio side of the Event Socket: one task per watched server owns the socket, drives a
//! [`Session`], feeds the live directory, and reconnects with backoff and jitter.
//!
//! Every wait is bounded: connecting and each reply by `esl.reply_timeout`, frames by
//! `esl.max_frame`, idle time by keepalive requests. Any failure (refused, wrong password,
//! cut, garbage, oversized frame, silence) ends the session with one clear log line, tells the
//! directory how the link was lost ([`LinkLoss`]) and retries after the backoff delay, so a
//! broken server costs a reconnect attempt now and then, never a busy loop.
//!
//! Reconnecting: the delay doubles from [`BACKOFF_MIN`] but never exceeds [`BACKOFF_MAX`]
//! (1.5 s; jittered into 0.75–1.5 s), so a server that accepts connections again is connected
//! within 2 s whatever the outage length (issue 22: a 30 s cap had kept a restarted server
//! unused for up to 25 s). The jitter spreads a fleet of dialin instances over the last
//! 0.75 s of each cycle; an attempt against a dead server is one refused SYN, so even a
//! large fleet costs a server little while it is down.

use super::frame::{parse, FrameError};
use super::message::{Event, ListedConference, Message};
use super::session::{Session, SessionError, SessionOutput, SessionSettings};
use crate::secret::Password;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

/// How many `api` commands (mute toggles) may wait for the connection task.
const COMMAND_QUEUE: usize = 64;

/// The shortest reconnect delay (the first retry after a session that got through its
/// handshake is 125–250 ms later).
pub const BACKOFF_MIN: Duration = Duration::from_millis(250);

/// The longest reconnect delay: a server that accepts again is connected within this plus one
/// handshake (well under the 2 s promised in the README).
pub const BACKOFF_MAX: Duration = Duration::from_millis(1500);

/// How a server's Event Socket link was lost: decides whether its conferences keep their
/// grace period.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LinkLoss {
    /// The server process is gone or going: the connection was refused or reset, the peer
    /// closed the socket, or FreeSWITCH said goodbye (`text/disconnect-notice`, which it sends
    /// on an orderly shutdown after the SHUTDOWN event, hanging up every call with cause 701:
    /// its conferences end with it). New calls to it are refused at once.
    Refused,
    /// The socket only went quiet (connect or reply timeouts) or the session broke in a way
    /// that says the server runs (wrong password, ACL, garbage): the network may be blipping
    /// while the conferences go on, so they stay trusted for `esl.grace`.
    Quiet,
}

/// Where the connection task reports what it learns about a server's conferences.
///
/// Defined here, implemented by the routing module's shared directory, so the Event Socket
/// client does not depend on routing (routing depends on the Event Socket's message types).
/// `idx` is the server's index in the directory; `now` is when the input arrived.
pub trait ConferenceFeed: Clone + Send + Sync + 'static {
    /// Server `idx` connected and its conferences are `list` (replaces what was known).
    fn handle_snapshot(&self, idx: usize, now: Instant, list: Vec<ListedConference>);
    /// Server `idx` lost its Event Socket (or failed to connect) in the way `loss` says.
    fn handle_down(&self, idx: usize, now: Instant, loss: LinkLoss);
    /// An event from server `idx`.
    fn handle_event(&self, idx: usize, now: Instant, event: &Event);
}

/// One watched server's connection settings.
#[derive(Clone, Debug)]
pub struct ClientSettings {
    /// The server's config name (for logs and the directory).
    pub name: crate::ids::ServerName,
    /// Its Event Socket address.
    pub addr: SocketAddr,
    /// Its password.
    pub password: Password,
    /// Handshake/reply timeout and keepalive.
    pub session: SessionSettings,
    /// The largest frame accepted.
    pub max_frame: usize,
    /// The first reconnect delay; doubles per failed attempt ([`BACKOFF_MIN`] in service).
    pub backoff_min: Duration,
    /// The longest reconnect delay ([`BACKOFF_MAX`] in service).
    pub backoff_max: Duration,
}

/// Why a session ended, for the one log line per failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// TCP connect failed (refused, unreachable).
    #[error("cannot connect to the Event Socket ({0}); check servers.esl and that FreeSWITCH runs and listens there for dialin's address")]
    Connect(std::io::Error),
    /// TCP connect got no answer in time.
    #[error("the Event Socket did not answer a connection within {0:?}; check that the server is up and no firewall drops dialin's packets")]
    ConnectTimeout(Duration),
    /// The peer closed the socket.
    #[error("FreeSWITCH closed the Event Socket connection")]
    Closed,
    /// Reading or writing failed.
    #[error("Event Socket I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// The byte stream is not valid ESL or a frame is too big.
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// The session's own rules (auth, replies, silence).
    #[error(transparent)]
    Session(#[from] SessionError),
}

impl ClientError {
    /// How this failure lost the link: see [`LinkLoss`].
    pub fn loss(&self) -> LinkLoss {
        use std::io::ErrorKind as K;
        let gone = |e: &std::io::Error| {
            matches!(
                e.kind(),
                K::ConnectionRefused
                    | K::ConnectionReset
                    | K::ConnectionAborted
                    | K::BrokenPipe
                    | K::UnexpectedEof
            )
        };
        match self {
            ClientError::Closed => LinkLoss::Refused,
            ClientError::Connect(e) | ClientError::Io(e) if gone(e) => LinkLoss::Refused,
            ClientError::Session(SessionError::Disconnected(_)) => LinkLoss::Refused,
            _ => LinkLoss::Quiet,
        }
    }
}

/// A command for the connection task.
#[derive(Debug)]
enum Command {
    /// `api <command>`.
    Api(String),
    /// `bgapi <command>`.
    Bgapi(String),
}

/// Sends commands to a server's Event Socket; cheap to clone. Dropping every handle does not
/// stop the task (the directory still needs it); cancellation does.
#[derive(Clone, Debug)]
pub struct EslHandle {
    /// The connection task's command queue.
    tx: mpsc::Sender<Command>,
}

impl EslHandle {
    /// Queues `api <command>`; false when the queue is full or the task is gone. The reply is
    /// only logged (as ok or not), never the command: it holds a conference number.
    pub fn api(&self, command: String) -> bool {
        self.tx.try_send(Command::Api(command)).is_ok()
    }

    /// Queues `bgapi <command>` (for commands that may take a while); like [`EslHandle::api`]
    /// its result is only logged.
    pub fn bgapi(&self, command: String) -> bool {
        self.tx.try_send(Command::Bgapi(command)).is_ok()
    }
}

/// Exponential backoff with "equal jitter": half the delay fixed, half random, so a fleet of
/// dialin instances does not reconnect in lockstep after a server restart; capped low
/// ([`BACKOFF_MAX`]) so a restarted server is used again within 2 s.
#[derive(Clone, Debug)]
pub struct Backoff {
    /// The first delay.
    min: Duration,
    /// The cap.
    max: Duration,
    /// Failed attempts since the last good session.
    attempt: u32,
}

impl Backoff {
    /// A fresh backoff.
    pub fn new(min: Duration, max: Duration) -> Backoff {
        Backoff {
            min,
            max,
            attempt: 0,
        }
    }

    /// The next delay; `jitter` in `[0, 1)` picks where in the upper half it falls.
    pub fn next_delay(&mut self, jitter: f64) -> Duration {
        let base = self
            .min
            .saturating_mul(1u32 << self.attempt.min(16))
            .min(self.max);
        self.attempt = self.attempt.saturating_add(1);
        base / 2 + base.mul_f64(jitter.clamp(0.0, 1.0) / 2.0)
    }

    /// After a session that got through its handshake: start from the minimum again.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

/// Starts the connection task of server `idx` in `directory`.
pub fn spawn(
    settings: ClientSettings,
    idx: usize,
    directory: impl ConferenceFeed,
    cancel: CancellationToken,
) -> EslHandle {
    let (tx, rx) = mpsc::channel(COMMAND_QUEUE);
    tokio::spawn(run(settings, idx, directory, rx, cancel));
    EslHandle { tx }
}

async fn run(
    settings: ClientSettings,
    idx: usize,
    directory: impl ConferenceFeed,
    mut rx: mpsc::Receiver<Command>,
    cancel: CancellationToken,
) {
    let mut backoff = Backoff::new(settings.backoff_min, settings.backoff_max);
    // Failed attempts since the last good session (0: none yet), to log a long outage once.
    let mut attempts_down: u32 = 0;
    loop {
        let mut ready = false;
        let result = tokio::select! {
            r = session(&settings, idx, &directory, &mut rx, &mut ready) => r,
            _ = cancel.cancelled() => return,
        };
        let error = match result {
            Ok(()) => ClientError::Closed,
            Err(e) => e,
        };
        let loss = error.loss();
        directory.handle_down(idx, Instant::now(), loss);
        if ready {
            backoff.reset();
        }
        let delay = backoff.next_delay(rand::random::<f64>());
        // One line per lost session; a server that stays down is not logged again each retry.
        if ready || attempts_down == 0 {
            match loss {
                LinkLoss::Refused => {
                    warn!(server = %settings.name, %error, retry_in = ?delay, "Event Socket down, the server refused or closed it: new calls to its conferences get \"unavailable\" until it is back")
                }
                LinkLoss::Quiet => {
                    warn!(server = %settings.name, %error, retry_in = ?delay, "Event Socket down; its conferences stay known for esl.grace, then calls to them get \"unavailable\"")
                }
            }
        } else {
            debug!(server = %settings.name, %error, retry_in = ?delay, "Event Socket still down");
        }
        attempts_down = if ready { 1 } else { attempts_down + 1 };
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = cancel.cancelled() => return,
        }
    }
}

/// One connection, from connect to failure. Sets `ready` once the snapshot is in.
async fn session(
    settings: &ClientSettings,
    idx: usize,
    directory: &impl ConferenceFeed,
    rx: &mut mpsc::Receiver<Command>,
    ready: &mut bool,
) -> Result<(), ClientError> {
    let timeout = settings.session.reply_timeout;
    let mut stream = tokio::time::timeout(timeout, TcpStream::connect(settings.addr))
        .await
        .map_err(|_| ClientError::ConnectTimeout(timeout))?
        .map_err(ClientError::Connect)?;
    let mut session = Session::new(Instant::now(), settings.password.clone(), settings.session);
    let mut buf: Vec<u8> = Vec::with_capacity(8192);
    let mut tag: u64 = 0;
    loop {
        while let Some(out) = session.poll_output() {
            match out {
                SessionOutput::Send(bytes) => {
                    tokio::time::timeout(timeout, stream.write_all(&bytes))
                        .await
                        .map_err(|_| SessionError::Silent(timeout))??;
                }
                SessionOutput::Ready(list) => {
                    let n = list.len();
                    directory.handle_snapshot(idx, Instant::now(), list);
                    *ready = true;
                    info!(server = %settings.name, conferences = n, "Event Socket up");
                }
                SessionOutput::Event(e) => {
                    directory.handle_event(idx, Instant::now(), &e);
                }
                SessionOutput::ApiReply { tag, ok } => {
                    if ok {
                        debug!(server = %settings.name, tag, "api command done");
                    } else {
                        warn!(server = %settings.name, tag, "FreeSWITCH refused an api command");
                    }
                }
            }
        }
        let deadline = session.poll_timeout();
        tokio::select! {
            n = stream.read_buf(&mut buf) => {
                if n? == 0 {
                    return Err(ClientError::Closed);
                }
                loop {
                    match parse(&buf, settings.max_frame) {
                        Ok((frame, used)) => {
                            buf.drain(..used);
                            session.handle_message(Instant::now(), Message::from_frame(&frame))?;
                        }
                        Err(FrameError::Incomplete) => break,
                        Err(e) => return Err(e.into()),
                    }
                }
            }
            _ = tokio::time::sleep_until(deadline.into()) => session.handle_timeout(Instant::now())?,
            cmd = rx.recv() => {
                if let Some(cmd) = cmd {
                    tag = tag.wrapping_add(1);
                    let accepted = match &cmd {
                        Command::Api(c) => session.api(Instant::now(), c, tag),
                        Command::Bgapi(c) => session.bgapi(Instant::now(), c, tag),
                    };
                    if !accepted {
                        warn!(server = %settings.name, "api command dropped: the Event Socket is not ready or too busy");
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_the_cap_with_jitter_in_the_upper_half() {
        let mut b = Backoff::new(Duration::from_millis(500), Duration::from_secs(30));
        let lows: Vec<_> = (0..9).map(|_| b.next_delay(0.0)).collect();
        let ms: Vec<u128> = lows.iter().map(|d| d.as_millis()).collect();
        assert_eq!(ms, [250, 500, 1000, 2000, 4000, 8000, 15000, 15000, 15000]);
        let mut b = Backoff::new(Duration::from_millis(500), Duration::from_secs(30));
        assert_eq!(b.next_delay(0.999_999).as_millis(), 499);
        b.reset();
        assert_eq!(b.next_delay(0.5).as_millis(), 375);
        // Many failures never overflow.
        for _ in 0..1000 {
            assert!(b.next_delay(0.5) <= Duration::from_secs(30));
        }
    }

    /// Issue 22: whatever the outage length, a server that accepts again is retried within
    /// 1.5 s, so it is connected within 2 s (a loopback handshake takes milliseconds); the
    /// delays stay spread (jitter) and never zero (no busy loop).
    #[test]
    fn service_backoff_retries_within_one_and_a_half_seconds_after_any_outage() {
        for outage_attempts in [1, 3, 10, 40, 1000] {
            for jitter in [0.0, 0.25, 0.5, 0.999_999] {
                let mut b = Backoff::new(BACKOFF_MIN, BACKOFF_MAX);
                let delays: Vec<Duration> =
                    (0..outage_attempts).map(|_| b.next_delay(jitter)).collect();
                let last = *delays.last().unwrap();
                assert!(
                    last <= BACKOFF_MAX,
                    "{last:?} after {outage_attempts} attempts"
                );
                assert!(delays.iter().all(|d| *d >= BACKOFF_MIN / 2));
            }
        }
        // Simulated outage of 40 s: attempts at the sum of the delays; the first attempt after
        // the server is back (t = 40 s) comes at most 1.5 s later.
        for jitter in [0.0, 0.3, 0.7, 0.999] {
            let mut b = Backoff::new(BACKOFF_MIN, BACKOFF_MAX);
            let mut t = Duration::ZERO;
            while t < Duration::from_secs(40) {
                t += b.next_delay(jitter);
            }
            assert!(t - Duration::from_secs(40) <= BACKOFF_MAX);
        }
        // In the cap, jitter spreads a fleet over 0.75–1.5 s.
        let mut b = Backoff::new(BACKOFF_MIN, BACKOFF_MAX);
        for _ in 0..10 {
            b.next_delay(0.0);
        }
        assert_eq!(b.clone().next_delay(0.0).as_millis(), 750);
        assert_eq!(b.next_delay(0.999_999).as_millis(), 1499);
    }

    #[test]
    fn refused_reset_closed_and_goodbye_are_down_at_once_timeouts_keep_grace() {
        use std::io::{Error, ErrorKind as K};
        let refused = [
            ClientError::Connect(Error::from(K::ConnectionRefused)),
            ClientError::Connect(Error::from(K::ConnectionReset)),
            ClientError::Io(Error::from(K::ConnectionReset)),
            ClientError::Io(Error::from(K::BrokenPipe)),
            ClientError::Closed,
            ClientError::Session(SessionError::Disconnected("shutdown".into())),
        ];
        for e in refused {
            assert_eq!(e.loss(), LinkLoss::Refused, "{e}");
        }
        let quiet = [
            ClientError::ConnectTimeout(Duration::from_secs(5)),
            ClientError::Connect(Error::from(K::HostUnreachable)),
            ClientError::Io(Error::from(K::TimedOut)),
            ClientError::Session(SessionError::Silent(Duration::from_secs(5))),
            ClientError::Session(SessionError::WrongPassword),
            ClientError::Frame(FrameError::Incomplete),
        ];
        for e in quiet {
            assert_eq!(e.loss(), LinkLoss::Quiet, "{e}");
        }
    }
}
