//! A stand-in FreeSWITCH Event Socket that answers with bytes captured from a real FreeSWITCH
//! 1.10.12 (`tests/fixtures/esl/`, copied from `shared/fixtures`), never retyped.
//!
//! Each reply is one whole captured frame, cut out of a capture by dialin's own frame codec
//! (the cut points are where the capture's frames begin and end). Which capture answers what:
//! - connect → a1's `auth/request`;
//! - `auth <right password>` → a1's `+OK accepted`; a wrong one → a2's `-ERR invalid` and
//!   disconnect-notice (then close);
//! - `event …` → c1's `+OK event listener enabled json`;
//! - `api conference list` → the snapshot chosen by the test (b1 empty, b2 71234, b3 71235+71234);
//! - any other `api` (keepalive `global_getvar`, `tmute`) → recorded, answered with c1's
//!   `+OK mute 2` (the captured tmute reply); the body of a keepalive reply is not looked at;
//! - `bgapi …` → c3's `+OK Job-UUID` reply and its BACKGROUND_JOB event;
//! - events are pushed by the test ([`EslStandIn::push`]), e.g. c1's conference-create.
//!
//! [`Fault`] makes it misbehave: silence, a cut after auth, a truncated or oversized frame.

use super::wait::{poll, wait_for};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The password of the captures.
pub const PASSWORD: &str = "fixture-secret";

const A1: &[u8] = include_bytes!("../../fixtures/esl/a1-auth-ok.s2c.raw");
const A2: &[u8] = include_bytes!("../../fixtures/esl/a2-auth-wrong-password.s2c.raw");
const B1: &[u8] = include_bytes!("../../fixtures/esl/b1-api-conference-list-empty.s2c.raw");
const B2: &[u8] =
    include_bytes!("../../fixtures/esl/b2-api-conference-list-one-conference-2-members.s2c.raw");
const B3: &[u8] =
    include_bytes!("../../fixtures/esl/b3-api-conference-list-two-conferences.s2c.raw");
const C3: &[u8] = include_bytes!("../../fixtures/esl/c3-bgapi-conference-list-json.s2c.raw");
const D1: &[u8] = include_bytes!("../../fixtures/esl/d1-shutdown-idle-client.s2c.raw");
/// The json conference life-cycle of 71234 (create, members 1 and 2, mutes, leave, destroy).
pub const C1: &[u8] =
    include_bytes!("../../fixtures/esl/c1-event-json-conference-lifecycle.s2c.raw");
/// CHANNEL_ANSWER etc. of the same calls; caller A sent `X-Dialin-Call: abc123`.
pub const C7: &[u8] =
    include_bytes!("../../fixtures/esl/c7-event-json-channel-answer-dtmf-hangup.s2c.raw");

/// The frames of a capture, as byte slices.
pub fn frames(raw: &'static [u8]) -> Vec<&'static [u8]> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < raw.len() {
        let (_, used) = dialin::esl::frame::parse(&raw[at..], 1 << 20).expect("captures parse");
        out.push(&raw[at..at + used]);
        at += used;
    }
    out
}

/// The first frame of `raw` whose bytes contain `needle`.
pub fn frame_with(raw: &'static [u8], needle: &str) -> &'static [u8] {
    frames(raw)
        .into_iter()
        .find(|f| f.windows(needle.len()).any(|w| w == needle.as_bytes()))
        .unwrap_or_else(|| panic!("no frame with {needle:?}"))
}

/// c1's conference-create event for 71234, with the conference number replaced by `conference`
/// (same length, so Content-Length stays right). Only tests that need a second conference
/// pass anything but "71234", and they say so.
pub fn conference_create(conference: &str) -> Vec<u8> {
    assert_eq!(
        conference.len(),
        5,
        "same length as 71234 keeps Content-Length valid"
    );
    let frame = frame_with(C1, "\"Action\":\"conference-create\"");
    String::from_utf8(frame.to_vec())
        .unwrap()
        .replace(
            "\"Conference-Name\":\"71234\"",
            &format!("\"Conference-Name\":\"{conference}\""),
        )
        .into_bytes()
}

/// `frame` with `from` replaced by `to` in its body and `Content-Length` set to the new body
/// length: for tests that must put a value only known at run time (our `X-Dialin-Call`
/// token) into a captured event. Everything else stays as captured.
pub fn substitute(frame: &[u8], from: &str, to: &str) -> Vec<u8> {
    let text = String::from_utf8(frame.to_vec()).expect("captured events are UTF-8");
    let (head, body) = text.split_once("\n\n").expect("a frame has a header block");
    assert!(body.contains(from), "{from:?} not in the frame");
    let body = body.replace(from, to);
    let head: Vec<String> = head
        .lines()
        .map(|l| match l.strip_prefix("Content-Length: ") {
            Some(_) => format!("Content-Length: {}", body.len()),
            None => l.to_string(),
        })
        .collect();
    format!("{}\n\n{body}", head.join("\n")).into_bytes()
}

/// What the snapshot (`api conference list`) answers.
#[derive(Clone, Copy, Debug)]
pub enum Snapshot {
    /// b1: no conferences.
    Empty,
    /// b2: 71234 with members 1 and 2.
    Only71234,
    /// b3: 71235 and 71234.
    Both,
}

/// A way to misbehave.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Behave.
    None,
    /// Accept the connection and never send a byte.
    Silent,
    /// Close the socket right after `+OK accepted`.
    CutAfterAuth,
    /// Send the first half of the snapshot frame, then close.
    Truncated,
    /// Answer the snapshot with a frame announcing a 1 GB body.
    Oversized,
    /// Answer the snapshot with bytes that are not ESL.
    Garbage,
}

/// The stand-in server; stops accepting when dropped (open connections end with the test).
pub struct EslStandIn {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Every command received (`api …`, `auth …`, `event …`), in order.
    commands: Arc<Mutex<Vec<String>>>,
    /// Connections accepted so far.
    connections: Arc<AtomicUsize>,
    /// Open connections, for pushing events.
    open: Arc<Mutex<Vec<TcpStream>>>,
    /// Once set, new connections are closed at once (a server whose ESL is gone).
    refuse: Arc<std::sync::atomic::AtomicBool>,
    /// Once set, the accept loop ends and drops the listener: connections are refused.
    stopped: Arc<std::sync::atomic::AtomicBool>,
}

impl EslStandIn {
    /// Starts listening on a free port of 127.0.0.1.
    pub fn start(snapshot: Snapshot, fault: Fault) -> EslStandIn {
        EslStandIn::start_on("127.0.0.1:0".parse().unwrap(), snapshot, fault)
    }

    /// Starts listening on `addr` (a restarted server on its old port).
    pub fn start_on(addr: SocketAddr, snapshot: Snapshot, fault: Fault) -> EslStandIn {
        let listener = TcpListener::bind(addr).unwrap();
        let addr = listener.local_addr().unwrap();
        let commands = Arc::new(Mutex::new(Vec::new()));
        let connections = Arc::new(AtomicUsize::new(0));
        let open = Arc::new(Mutex::new(Vec::new()));
        let refuse = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopped = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (c, n, o, r, st) = (
            commands.clone(),
            connections.clone(),
            open.clone(),
            refuse.clone(),
            stopped.clone(),
        );
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if st.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(stream) = stream else { return };
                n.fetch_add(1, Ordering::SeqCst);
                if r.load(Ordering::SeqCst) {
                    continue;
                }
                let (c, o) = (c.clone(), o.clone());
                std::thread::spawn(move || serve(stream, snapshot, fault, c, o));
            }
        });
        EslStandIn {
            addr,
            commands,
            connections,
            open,
            refuse,
            stopped,
        }
    }

    /// The server process gone: cuts every open connection and stops listening, so new
    /// connections are refused (RST); [`EslStandIn::start_on`] the same address restores it.
    pub fn stop_listening(&self) {
        self.stopped.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag and drops the listener.
        TcpStream::connect(self.addr).ok();
        self.cut();
        let refused = wait_for(Duration::from_secs(5), || {
            TcpStream::connect(self.addr).is_err()
        });
        assert!(refused, "the stand-in still accepts on {}", self.addr);
    }

    /// FreeSWITCH shutting down: d1's captured `The system is being shut down.` notice to every
    /// open connection, then close; new connections are closed at once.
    pub fn shut_down(&self) {
        self.refuse.store(true, Ordering::SeqCst);
        let notice = frame_with(D1, "text/disconnect-notice");
        for mut s in self.open.lock().unwrap().drain(..) {
            s.write_all(notice).ok();
            s.shutdown(std::net::Shutdown::Both).ok();
        }
    }

    /// Cuts every open connection and closes new ones at once from now on.
    pub fn cut_and_refuse(&self) {
        self.refuse.store(true, Ordering::SeqCst);
        self.cut();
    }

    /// Cuts every open connection (a network blip); new connections are served.
    pub fn cut(&self) {
        for s in self.open.lock().unwrap().drain(..) {
            s.shutdown(std::net::Shutdown::Both).ok();
        }
    }

    /// Sends `bytes` to every open, authenticated connection.
    pub fn push(&self, bytes: &[u8]) {
        for s in self.open.lock().unwrap().iter_mut() {
            s.write_all(bytes).ok();
        }
    }

    /// Every command received so far.
    pub fn commands(&self) -> Vec<String> {
        self.commands.lock().unwrap().clone()
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    /// Waits until a command satisfying `pred` arrives; panics after `timeout`.
    pub fn wait_for_command(&self, pred: impl Fn(&str) -> bool, timeout: Duration) -> String {
        poll(timeout, || self.commands().into_iter().find(|c| pred(c)))
            .unwrap_or_else(|| panic!("no such command; got {:?}", self.commands()))
    }

    /// Waits until at least `n` snapshots were asked for (i.e. sessions got that far).
    pub fn wait_for_snapshots(&self, n: usize, timeout: Duration) {
        let snapshots = || {
            self.commands()
                .iter()
                .filter(|c| *c == "api conference list")
                .count()
        };
        assert!(
            wait_for(timeout, || snapshots() >= n),
            "only {:?}",
            self.commands()
        );
    }
}

/// One connection.
fn serve(
    mut s: TcpStream,
    snapshot: Snapshot,
    fault: Fault,
    commands: Arc<Mutex<Vec<String>>>,
    open: Arc<Mutex<Vec<TcpStream>>>,
) {
    if fault == Fault::Silent {
        // Hold the socket open without a byte until the client gives up.
        let mut sink = [0u8; 256];
        while matches!(s.read(&mut sink), Ok(n) if n > 0) {}
        return;
    }
    let a1 = frames(A1);
    if s.write_all(a1[0]).is_err() {
        return;
    }
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let Some(end) = buf.windows(2).position(|w| w == b"\n\n") else {
            match s.read(&mut chunk) {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
            continue;
        };
        let command = String::from_utf8_lossy(&buf[..end]).to_string();
        buf.drain(..end + 2);
        commands.lock().unwrap().push(command.clone());
        let reply: Vec<u8> = if let Some(pw) = command.strip_prefix("auth ") {
            if pw != PASSWORD {
                let a2 = frames(A2);
                s.write_all(&[a2[1], a2[2]].concat()).ok();
                return;
            }
            if fault == Fault::CutAfterAuth {
                s.write_all(a1[1]).ok();
                return;
            }
            if let Ok(clone) = s.try_clone() {
                open.lock().unwrap().push(clone);
            }
            a1[1].to_vec()
        } else if command.starts_with("event ") {
            frame_with(C1, "event listener enabled").to_vec()
        } else if command == "api conference list" {
            let frame = match snapshot {
                Snapshot::Empty => frame_with(B1, "api/response"),
                Snapshot::Only71234 => frame_with(B2, "api/response"),
                Snapshot::Both => frame_with(B3, "api/response"),
            };
            match fault {
                Fault::Truncated => {
                    s.write_all(&frame[..frame.len() / 2]).ok();
                    return;
                }
                Fault::Oversized => {
                    b"Content-Type: api/response\nContent-Length: 1000000000\n\n".to_vec()
                }
                Fault::Garbage => b"\x00\x01 not an event socket \xff\n\n".to_vec(),
                _ => frame.to_vec(),
            }
        } else if command.starts_with("bgapi ") {
            let c3 = frames(C3);
            [c3[3], c3[4]].concat()
        } else if command.starts_with("api ") {
            frame_with(C1, "+OK mute 2").to_vec()
        } else if command == "exit" {
            let a1 = frames(A1);
            s.write_all(&[a1[2], a1[3]].concat()).ok();
            return;
        } else {
            continue;
        };
        if s.write_all(&reply).is_err() {
            return;
        }
    }
}
