//! What a call's packets touch, kept apart from the rest of the call: its media state, both
//! legs' RTP sockets, SRTP, counters and quality. It lives in the shard's table
//! (`path_table`), where the shard's relay loop reads it per packet without waking the call's
//! task; the task reaches it through its `PathHandle` for everything else (prompts, digits to
//! send, bridging, re-INVITEs, the timer's packets).

use super::connected;
use super::srtp_leg::SrtpLeg;
use crate::digit::Digit;
use crate::media::call_media::{CallMedia, Leg};
use crate::media::Side;
use crate::ops::metrics::RtpCounters;
use crate::ops::rtp_quality::RtpQuality;
use std::net::{SocketAddr, UdpSocket};
use std::task::Waker;

/// How many decoded digits wait for the call's task at most; more within one wake-up of the
/// task are dropped (nobody types that fast).
const DIGIT_QUEUE: usize = 8;

/// A call's media and everything its packets need.
pub(crate) struct MediaPath {
    /// The media state (legs, rewriting, prompts, DTMF decoding).
    pub media: CallMedia,
    /// The caller leg's RTP socket (non-blocking).
    pub caller: UdpSocket,
    /// The server leg's RTP socket, once dialled.
    pub server: Option<UdpSocket>,
    /// SRTP on the caller leg, when negotiated.
    pub srtp: Option<Box<SrtpLeg>>,
    /// RTP packet and byte counters, looked up once for the call.
    pub rtp: RtpCounters,
    /// Loss and jitter of the caller's (0) and the server's (1) audio.
    pub quality: [RtpQuality; 2],
    /// The peer each leg's socket (caller, server) is connected to (`connected`).
    pub connected: [Option<SocketAddr>; 2],
    /// Digits decoded from packets, oldest first, not yet taken by the call's task.
    digits: [Option<Digit>; DIGIT_QUEUE],
    /// Whether a packet brought the media's next deadline forward since the task last looked.
    deadline_moved: bool,
    /// Set when relaying this call's packets panicked (a bug): the path relays nothing more
    /// and the call's task ends the call.
    failed: bool,
    /// Whether the task was told of the failure (it is told once).
    failure_told: bool,
    /// The server leg's socket reported an ICMP error (its port is closed: FreeSWITCH is gone
    /// or dropped the channel) that the task has not heard of yet.
    server_unreachable: bool,
    /// A send to the server was refused in this batch (see `forward`).
    pub(super) refused: bool,
    /// Makes the next relayed packet panic, to test that only this call ends.
    #[cfg(test)]
    pub panic_on_packet: bool,
    /// The call's task, woken when a packet has news for it.
    waker: Option<Waker>,
}

/// What the call's packets tell its task.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PathEvent {
    /// A key press (RFC 4733) for the flow.
    Digit(Digit),
    /// The media's next deadline moved earlier: the task must re-arm its timer.
    DeadlineMoved,
    /// Relaying the call's packets failed (a bug): the call must end.
    Failed,
    /// The server leg's peer refused our packets (ICMP port unreachable): it may be gone.
    ServerUnreachable,
}

impl MediaPath {
    /// The path of a call whose caller leg uses `caller` (already non-blocking).
    pub fn new(
        media: CallMedia,
        caller: UdpSocket,
        srtp: Option<Box<SrtpLeg>>,
        quality: [RtpQuality; 2],
    ) -> MediaPath {
        MediaPath {
            media,
            caller,
            server: None,
            srtp,
            rtp: RtpCounters::new(),
            quality,
            connected: [None; 2],
            digits: [None; DIGIT_QUEUE],
            deadline_moved: false,
            failed: false,
            failure_told: false,
            server_unreachable: false,
            refused: false,
            #[cfg(test)]
            panic_on_packet: false,
            waker: None,
        }
    }

    /// Connects each leg's socket to its settled peer, or disconnects it while the peer may
    /// still move (see `connected`). Cheap when nothing changed, so it runs after every
    /// batch of packets and every change the call's task makes.
    pub fn sync_peers(&mut self) {
        let caller = self.media.caller.settled_peer();
        set_peer(&self.caller, caller, &mut self.connected[0]);
        if let Some(socket) = &self.server {
            let server = self.media.server.as_ref().and_then(Leg::settled_peer);
            set_peer(socket, server, &mut self.connected[1]);
        }
    }

    /// Puts `socket` in as the server leg's (a new leg, or a leg dialled again after the
    /// first was lost); the old socket, if any, is handed back to be unwatched. Nothing the
    /// old leg's peer did counts for the new one.
    pub fn replace_server(&mut self, socket: UdpSocket) -> Option<UdpSocket> {
        let old = self.take_server();
        self.server = Some(socket);
        old
    }

    /// Takes the server leg's socket out (to be unwatched and closed).
    pub fn take_server(&mut self) -> Option<UdpSocket> {
        self.connected[Side::Server.index()] = None;
        self.server_unreachable = false;
        self.refused = false;
        self.server.take()
    }

    /// Queues a digit a packet carried and wakes the call's task for it.
    pub fn push_digit(&mut self, digit: Digit) {
        if let Some(slot) = self.digits.iter_mut().find(|d| d.is_none()) {
            *slot = Some(digit);
        }
        self.wake();
    }

    /// After a packet was handled: wakes the call's task if it moved the media's deadline.
    pub fn check_deadline(&mut self) {
        if self.media.take_deadline_moved() {
            self.deadline_moved = true;
            self.wake();
        }
    }

    /// Marks the path failed (relaying it panicked) and tells the call's task.
    pub fn fail(&mut self) {
        self.failed = true;
        self.wake();
    }

    /// The server leg's socket reported an ICMP error: tells the call's task (once per
    /// wake-up, however many errors come).
    pub fn server_refused(&mut self) {
        if !self.server_unreachable {
            self.server_unreachable = true;
            self.wake();
        }
    }

    /// Whether relaying this path panicked once; its packets are then left alone.
    pub fn failed(&self) -> bool {
        self.failed
    }

    fn wake(&self) {
        if let Some(w) = &self.waker {
            w.wake_by_ref();
        }
    }

    /// The oldest news for the call's task (digits first, in order); otherwise remembers
    /// `waker` to be woken by the next.
    pub fn take_event(&mut self, waker: &Waker) -> Option<PathEvent> {
        if self.failed && !self.failure_told {
            self.failure_told = true;
            return Some(PathEvent::Failed);
        }
        let first = self.digits[0].take();
        if let Some(d) = first {
            self.digits.rotate_left(1);
            return Some(PathEvent::Digit(d));
        }
        if std::mem::take(&mut self.deadline_moved) {
            return Some(PathEvent::DeadlineMoved);
        }
        if std::mem::take(&mut self.server_unreachable) {
            return Some(PathEvent::ServerUnreachable);
        }
        if !self.waker.as_ref().is_some_and(|w| w.will_wake(waker)) {
            self.waker = Some(waker.clone());
        }
        None
    }
}

/// Connects `socket` to `want` unless it is connected there already (`have`). If that fails,
/// it is left unconnected: sends then name their address and nothing is filtered.
fn set_peer(socket: &UdpSocket, want: Option<SocketAddr>, have: &mut Option<SocketAddr>) {
    if want == *have {
        return;
    }
    *have = match connected::connect(socket, want) {
        Ok(()) => want,
        Err(_) => {
            let _ = connected::connect(socket, None);
            None
        }
    };
}
