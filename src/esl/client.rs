//! The tokio side of the Event Socket: one task per watched server owns the socket, drives a
//! [`Session`], feeds the live directory, and reconnects with exponential backoff and jitter.
//!
//! Every wait is bounded: connecting and each reply by `esl.reply_timeout`, frames by
//! `esl.max_frame`, idle time by keepalive requests. Any failure (refused, wrong password,
//! cut, garbage, oversized frame, silence) ends the session with one clear log line, marks the
//! server down in the directory (its conferences stay trusted for `esl.grace`) and retries
//! after the backoff delay, so a broken server costs a reconnect attempt now and then, never a
//! busy loop.

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

/// Where the connection task reports what it learns about a server's conferences.
///
/// Defined here, implemented by the routing module's shared directory, so the Event Socket
/// client does not depend on routing (routing depends on the Event Socket's message types).
/// `idx` is the server's index in the directory; `now` is when the input arrived.
pub trait ConferenceFeed: Clone + Send + Sync + 'static {
    /// Server `idx` connected and its conferences are `list` (replaces what was known).
    fn handle_snapshot(&self, idx: usize, now: Instant, list: Vec<ListedConference>);
    /// Server `idx` lost its Event Socket.
    fn handle_down(&self, idx: usize, now: Instant);
    /// An event from server `idx`.
    fn handle_event(&self, idx: usize, now: Instant, event: &Event);
}

/// One watched server's connection settings.
#[derive(Clone, Debug)]
pub struct ClientSettings {
    /// The server's config name (for logs and the directory).
    pub name: String,
    /// Its Event Socket address.
    pub addr: SocketAddr,
    /// Its password.
    pub password: Password,
    /// Handshake/reply timeout and keepalive.
    pub session: SessionSettings,
    /// The largest frame accepted.
    pub max_frame: usize,
    /// The first reconnect delay; doubles per failed attempt.
    pub backoff_min: Duration,
    /// The longest reconnect delay.
    pub backoff_max: Duration,
}

/// Why a session ended, for the one log line per failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// TCP connect failed or timed out.
    #[error("cannot connect to the Event Socket ({0}); check servers.esl and that FreeSWITCH listens there for dialin's address")]
    Connect(String),
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
/// dialin instances does not reconnect in lockstep after a server restart.
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
    loop {
        let mut ready = false;
        let result = tokio::select! {
            r = session(&settings, idx, &directory, &mut rx, &mut ready) => r,
            _ = cancel.cancelled() => return,
        };
        directory.handle_down(idx, Instant::now());
        if ready {
            backoff.reset();
        }
        let delay = backoff.next_delay(rand::random::<f64>());
        let error = match result {
            Ok(()) => ClientError::Closed,
            Err(e) => e,
        };
        warn!(server = %settings.name, %error, retry_in = ?delay, "Event Socket down; its conferences stay known for esl.grace, then calls to them get \"unavailable\"");
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
        .map_err(|_| ClientError::Connect(format!("no answer within {timeout:?}")))?
        .map_err(|e| ClientError::Connect(e.to_string()))?;
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
}
