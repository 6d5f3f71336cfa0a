//! The media state of one call: both legs' RTP addresses and streams, the prompt player, the
//! DTMF decoders (RFC 4733 and in-band), the echo test and the relay's payload-type maps.
//!
//! Sans-IO: the driver hands in received packets (in its own buffer, rewritten in place) and
//! the current time, and gets back what to send where. Nothing here allocates, locks or logs
//! per packet.
//!
//! Files: `leg` (one leg's codec, peer address and outgoing stream), `receive` (packets that
//! arrive), `transmit` (packets the call generates: prompts, echo, injected digits).

mod leg;
mod receive;
mod transmit;

pub use leg::{Leg, LegCodec};

use crate::digit::Digit;
use crate::media::dtmf::{DtmfDecoder, DtmfEncoder};
use crate::media::event_clock::EventClock;
use crate::media::inband_dtmf::InbandDetector;
use crate::media::prompt::{EncodedPrompt, PromptPlayer};
use crate::media::rtp::{PtMap, Ssrc};
use crate::media::Side;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

const FRAME: Duration = Duration::from_millis(20);
/// How long the echo test holds the caller's audio before playing it back.
pub const ECHO_DELAY: Duration = Duration::from_millis(300);
const ECHO_SLOTS: usize = 32;

/// Which way media flows at the moment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// IVR: prompts or silence to the caller, digits decoded from the caller.
    Ivr,
    /// Caller's audio comes back after [`ECHO_DELAY`].
    Echo,
    /// Relay between caller and server.
    Bridged,
}

/// What to do with a received packet.
#[derive(Debug, PartialEq, Eq)]
pub enum Received {
    /// Nothing to send (wrong source, not RTP, audio while in the IVR...).
    Ignored,
    /// A key press decoded from RFC 4733 events or from tones in the audio while in the IVR
    /// (or, bridged, the intercepted mute key).
    Digit(Digit),
    /// Send the (rewritten) first `len` bytes of the buffer to `to`, on the caller's socket.
    ToCaller { len: usize, to: SocketAddr },
    /// Send the (rewritten) first `len` bytes of the buffer to `to`, on the server's socket.
    ToServer { len: usize, to: SocketAddr },
}

/// One stored echo frame.
#[derive(Clone, Copy)]
struct EchoSlot {
    due: Instant,
    len: usize,
    payload: [u8; 160],
}

/// The media state of a call.
pub struct CallMedia {
    /// The trunk leg.
    pub caller: Leg,
    /// The server leg, once dialled and answered.
    pub server: Option<Leg>,
    mode: Mode,
    player: PromptPlayer,
    decoder: DtmfDecoder,
    /// Key presses as tones in the caller's audio, in the voice menu: for phones that send
    /// no telephone-event, and for those that offered it until their first event arrives
    /// (then dropped, so a phone that sends both is not heard twice). Dropped when bridged.
    inband: Option<Box<InbandDetector>>,
    /// The last key heard in-band and when: an RFC 4733 press of the same key right after it
    /// is the same press.
    inband_last: Option<(Digit, Instant)>,
    /// Next 20 ms tick for silence (IVR with no prompt) and injected DTMF.
    next_tick: Instant,
    /// A digit being sent to the server as RFC 4733 (from SIP INFO).
    injecting: Option<DtmfEncoder>,
    /// Queue of digits waiting to be injected.
    pending_digits: [Option<Digit>; 8],
    /// Echo ring buffer, allocated once when the echo test starts.
    echo: Option<Box<[Option<EchoSlot>; ECHO_SLOTS]>>,
    echo_head: usize,
    /// When RTP last arrived from the caller and from the server (`Side::index`): the
    /// caller's silence ends the call (`media.timeout`), the server's means it was lost.
    last_rx: [Instant; 2],
    /// Payload type map caller→server and server→caller.
    to_server_pt: PtMap,
    to_caller_pt: PtMap,
    /// Keeps each key press relayed to the server on one timestamp.
    to_server_events: EventClock,
    /// The SSRC of the caller's telephone events: a new one restarts the DTMF decoder.
    caller_ssrc: Option<Ssrc>,
    /// While bridged, this key's RFC 4733 events are kept from the server and reported as a
    /// digit instead (the mute key in `esl` mode).
    intercept: Option<Digit>,
    /// Set when a received packet made [`next_deadline`](Self::next_deadline) earlier (the
    /// echo test's first frame after a pause); see [`take_deadline_moved`](Self::take_deadline_moved).
    deadline_moved: bool,
}

impl CallMedia {
    /// Media for a newly answered caller.
    pub fn new(caller: Leg, now: Instant) -> CallMedia {
        CallMedia {
            player: PromptPlayer::new(caller.codec.law),
            caller,
            server: None,
            mode: Mode::Ivr,
            decoder: DtmfDecoder::new(),
            inband: Some(Box::new(InbandDetector::new())),
            inband_last: None,
            next_tick: now,
            injecting: None,
            pending_digits: [None; 8],
            echo: None,
            echo_head: 0,
            last_rx: [now; 2],
            to_server_pt: PtMap::empty(),
            to_caller_pt: PtMap::empty(),
            caller_ssrc: None,
            to_server_events: EventClock::new(),
            intercept: None,
            deadline_moved: false,
        }
    }

    /// Starts playing a prompt to the caller (replacing any other).
    pub fn play(&mut self, prompt: &EncodedPrompt, now: Instant) {
        self.player.start(prompt.clone(), now);
    }

    /// Stops the prompt (barge-in, bridging).
    pub fn stop_prompt(&mut self) {
        self.player.stop();
    }

    /// True once when the prompt last started has played to its end.
    pub fn poll_prompt_finished(&mut self) -> bool {
        self.player.poll_finished()
    }

    /// Switches to the echo test.
    pub fn start_echo(&mut self) {
        self.player.stop();
        self.mode = Mode::Echo;
        self.inband = None;
        self.echo = Some(Box::new([None; ECHO_SLOTS]));
    }

    /// Adds the answered server leg and starts relaying; the server's silence is counted
    /// from `now`.
    pub fn bridge(&mut self, server: Leg, now: Instant) {
        self.player.stop();
        self.last_rx[Side::Server.index()] = now;
        let (c, s) = (self.caller.codec, server.codec);
        // Audio and comfort noise (PT 13) pass; telephone events are renumbered per leg.
        let mut to_server = PtMap::empty().with(c.pt, s.pt).with(13, 13);
        let mut to_caller = PtMap::empty().with(s.pt, c.pt).with(13, 13);
        if let (Some(cte), Some(ste)) = (c.telephone_event_pt, s.telephone_event_pt) {
            to_server = to_server.with(cte, ste);
            to_caller = to_caller.with(ste, cte);
        }
        self.to_server_pt = to_server;
        self.to_caller_pt = to_caller;
        self.server = Some(server);
        self.mode = Mode::Bridged;
        self.inband = None;
    }

    /// The server leg is gone (lost, to be dialled again): back to the voice menu's media,
    /// prompts and silence to the caller, nothing relayed. Our stream toward the caller goes
    /// on (same SSRC, sequence and timestamps), so the phone hears one continuous call.
    pub fn unbridge(&mut self, now: Instant) {
        self.server = None;
        self.mode = Mode::Ivr;
        self.to_server_pt = PtMap::empty();
        self.to_caller_pt = PtMap::empty();
        self.intercept = None;
        self.injecting = None;
        self.pending_digits = [None; 8];
        self.next_tick = now;
    }

    /// Whether the caller has put the call on hold (its SDP says `sendonly` or `inactive`):
    /// we send it nothing, and nothing of its audio (music on hold) reaches the meeting.
    pub fn caller_holds(&self) -> bool {
        !self.caller.sending
    }

    /// While bridged, keeps `key`'s events from the server and reports each press as
    /// [`Received::Digit`] (`None`: relay every key).
    pub fn intercept(&mut self, key: Option<Digit>) {
        self.intercept = key;
    }

    /// Queues a digit (from SIP INFO) to be sent to the server as RFC 4733 events.
    pub fn send_digit(&mut self, digit: Digit) {
        if let Some(slot) = self.pending_digits.iter_mut().find(|d| d.is_none()) {
            *slot = Some(digit);
        }
    }

    /// True once after a received packet made [`next_deadline`](Self::next_deadline)
    /// earlier: whoever waits for that deadline must look again. Packets are handled apart
    /// from the call's timer (by the shard's relay loop), so this is how it hears of it.
    pub fn take_deadline_moved(&mut self) -> bool {
        std::mem::take(&mut self.deadline_moved)
    }

    /// The last time RTP arrived from `side` (for the server: or when it was bridged).
    pub fn last_rx(&self, side: Side) -> Instant {
        self.last_rx[side.index()]
    }

    /// The next time [`poll_transmit`](Self::poll_transmit) has something to send.
    pub fn next_deadline(&self) -> Option<Instant> {
        match self.mode {
            Mode::Ivr => Some(match self.player.next_deadline() {
                Some(t) => t,
                None => self.next_tick,
            }),
            Mode::Echo => self
                .echo
                .as_ref()
                .and_then(|ring| ring.iter().flatten().map(|s| s.due).min()),
            Mode::Bridged => (self.injecting.is_some() || self.pending_digits[0].is_some())
                .then_some(self.next_tick),
        }
    }

    /// Writes the next packet we generate ourselves (prompt, silence, echo, injected DTMF)
    /// into `out` and says where it goes, or `None` when nothing is due at `now`.
    pub fn poll_transmit(&mut self, now: Instant, out: &mut [u8]) -> Option<Received> {
        match self.mode {
            Mode::Ivr => self.poll_ivr(now, out),
            Mode::Echo => self.poll_echo(now, out),
            Mode::Bridged => self.poll_inject(now, out),
        }
    }
}

#[cfg(test)]
#[path = "call_media_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "call_media_inband_tests.rs"]
mod inband_tests;
