//! The media state of one call: both legs' RTP addresses and streams, the prompt player, the
//! DTMF decoder, the echo test and the relay's payload-type maps.
//!
//! Sans-IO: the driver hands in received packets (in its own buffer, rewritten in place) and
//! the current time, and gets back what to send where. Nothing here allocates, locks or logs
//! per packet.

use crate::digit::Digit;
use crate::media::dtmf::{DtmfDecoder, DtmfEncoder};
use crate::media::event_clock::EventClock;
use crate::media::g711::Law;
use crate::media::prompt::{silence_frame, EncodedPrompt, PromptPlayer};
use crate::media::rtp::{
    OutStream, PtMap, RelayAction, RtpPacket, Ssrc, FRAME_SAMPLES, HEADER_LEN,
};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

const FRAME: Duration = Duration::from_millis(20);
/// How long the echo test holds the caller's audio before playing it back.
pub const ECHO_DELAY: Duration = Duration::from_millis(300);
const ECHO_SLOTS: usize = 32;

/// What was negotiated for one leg.
#[derive(Clone, Copy, Debug)]
pub struct LegCodec {
    /// The G.711 law both sides use on this leg.
    pub law: Law,
    /// Its payload type (0 or 8).
    pub pt: u8,
    /// The telephone-event payload type, if the peer offered RFC 4733.
    pub telephone_event_pt: Option<u8>,
}

/// The RTP side of one leg.
pub struct Leg {
    /// The address the peer's SDP gave.
    sdp_remote: SocketAddr,
    /// Where we send: the SDP's address until the first packet latches the real source.
    remote: SocketAddr,
    /// Whether `remote` was confirmed by a received packet.
    latched: bool,
    /// Whether the first RTP packet from the SDP's host may move `remote` to another port
    /// (a phone behind a port-rewriting NAT). Off for BBB servers: only their SDP address.
    port_latching: bool,
    /// The codec on this leg.
    codec: LegCodec,
    /// Our outgoing stream toward this leg's peer (SSRC, sequence, timestamp continuity).
    out: OutStream,
    /// False while the peer has put us on hold (sendonly/inactive): we send nothing.
    sending: bool,
}

impl Leg {
    /// A leg toward `remote` using `codec`, with a fresh random SSRC and sequence start.
    /// `port_latching` lets the first valid RTP packet from the SDP's host fix the port.
    pub fn new(remote: SocketAddr, codec: LegCodec, port_latching: bool) -> Leg {
        Leg {
            sdp_remote: remote,
            remote,
            latched: false,
            port_latching,
            codec,
            out: OutStream::new(
                rand::random::<u32>(),
                rand::random::<u16>(),
                rand::random::<u32>(),
            ),
            sending: true,
        }
    }

    /// Accepts a valid RTP packet of payload type `pt` only from the negotiated peer. The SDP
    /// address always counts until the first packet; with port latching, the first packet of a
    /// negotiated payload type from the SDP's host fixes the port instead (symmetric RTP).
    /// Afterwards only that exact source counts.
    fn accept_source(&mut self, from: SocketAddr, pt: u8) -> bool {
        if from == self.remote {
            self.latched = true;
            return true;
        }
        let negotiated = pt == self.codec.pt || Some(pt) == self.codec.telephone_event_pt;
        if self.port_latching && !self.latched && negotiated && from.ip() == self.remote.ip() {
            self.remote = from;
            self.latched = true;
            return true;
        }
        false
    }

    /// Updates the peer's address and hold state after a re-INVITE. A latched source stays
    /// unless the SDP names a new address.
    pub fn update(&mut self, sdp_remote: SocketAddr, sending: bool) {
        if sdp_remote != self.sdp_remote {
            self.sdp_remote = sdp_remote;
            self.remote = sdp_remote;
            self.latched = false;
        }
        self.sending = sending;
    }

    /// The address we send this leg's RTP to.
    pub fn remote(&self) -> SocketAddr {
        self.remote
    }

    /// The codec of this leg.
    pub fn codec(&self) -> LegCodec {
        self.codec
    }
}

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
    /// A key press decoded from RFC 4733 events while in the IVR (or, bridged, the
    /// intercepted mute key).
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
    /// Next 20 ms tick for silence (IVR with no prompt) and injected DTMF.
    next_tick: Instant,
    /// A digit being sent to the server as RFC 4733 (from SIP INFO).
    injecting: Option<DtmfEncoder>,
    /// Queue of digits waiting to be injected.
    pending_digits: [Option<Digit>; 8],
    /// Echo ring buffer, allocated once when the echo test starts.
    echo: Option<Box<[Option<EchoSlot>; ECHO_SLOTS]>>,
    echo_head: usize,
    /// Last time RTP arrived on either leg (for `media.timeout`).
    last_rx: Instant,
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
            next_tick: now,
            injecting: None,
            pending_digits: [None; 8],
            echo: None,
            echo_head: 0,
            last_rx: now,
            to_server_pt: PtMap::empty(),
            to_caller_pt: PtMap::empty(),
            caller_ssrc: None,
            to_server_events: EventClock::new(),
            intercept: None,
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
        self.echo = Some(Box::new([None; ECHO_SLOTS]));
    }

    /// Adds the answered server leg and starts relaying.
    pub fn bridge(&mut self, server: Leg) {
        self.player.stop();
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

    /// The last time RTP arrived on either leg.
    pub fn last_rx(&self) -> Instant {
        self.last_rx
    }

    /// Handles a packet that arrived on the caller's socket; `buf[..len]` may be rewritten.
    pub fn handle_caller_packet(
        &mut self,
        now: Instant,
        from: SocketAddr,
        buf: &mut [u8],
        len: usize,
    ) -> Received {
        let Ok(pkt) = RtpPacket::parse(&buf[..len]) else {
            return Received::Ignored;
        };
        if !self.caller.accept_source(from, pkt.payload_type()) {
            return Received::Ignored;
        }
        self.last_rx = now;
        let pt = pkt.payload_type();
        match self.mode {
            Mode::Ivr => {
                if Some(pt) == self.caller.codec.telephone_event_pt {
                    // Event timestamps only compare within one stream: a new SSRC (a phone
                    // that restarted its stream) starts a fresh decoder. Audio of other
                    // streams (e.g. echoed back by the phone) does not count.
                    if self.caller_ssrc != Some(pkt.ssrc()) {
                        self.caller_ssrc = Some(pkt.ssrc());
                        self.decoder.reset();
                    }
                    if let Some(d) = self.decoder.handle_packet(pkt.timestamp(), pkt.payload()) {
                        return Received::Digit(d);
                    }
                }
                Received::Ignored
            }
            Mode::Echo => {
                if pt == self.caller.codec.pt && pkt.payload().len() <= 160 {
                    self.store_echo(now, pkt.payload());
                }
                Received::Ignored
            }
            Mode::Bridged => {
                let is_event = Some(pt) == self.caller.codec.telephone_event_pt;
                if self.injecting.is_some() && !is_event {
                    return Received::Ignored;
                }
                // The tail of the key press that ended the PIN (usually `#`) is not the
                // meeting's business.
                if is_event
                    && self.caller_ssrc == Some(pkt.ssrc())
                    && self.decoder.last_event_timestamp() == Some(pkt.timestamp())
                {
                    return Received::Ignored;
                }
                if let Some(key) = self.intercept.filter(|_| is_event) {
                    if pkt.payload().first() == Some(&key.event_code()) {
                        // Every packet of the press stays here; the first one reports it.
                        return match self.decoder.handle_packet(pkt.timestamp(), pkt.payload()) {
                            Some(d) => Received::Digit(d),
                            None => Received::Ignored,
                        };
                    }
                }
                let Some(server) = self.server.as_mut() else {
                    return Received::Ignored;
                };
                if !server.sending {
                    return Received::Ignored;
                }
                let (source, ts) = (pkt.ssrc(), pkt.timestamp());
                match server
                    .out
                    .relay_with_pt(now, &mut buf[..len], &self.to_server_pt)
                {
                    Ok(RelayAction::Send) => {
                        if is_event {
                            self.to_server_events.pin(&mut buf[..len], source, ts);
                        }
                        Received::ToServer {
                            len,
                            to: server.remote,
                        }
                    }
                    _ => Received::Ignored,
                }
            }
        }
    }

    /// Handles a packet that arrived on the server leg's socket.
    pub fn handle_server_packet(
        &mut self,
        now: Instant,
        from: SocketAddr,
        buf: &mut [u8],
        len: usize,
    ) -> Received {
        let Some(server) = self.server.as_mut() else {
            return Received::Ignored;
        };
        let Ok(pkt) = RtpPacket::parse(&buf[..len]) else {
            return Received::Ignored;
        };
        if !server.accept_source(from, pkt.payload_type()) {
            return Received::Ignored;
        }
        self.last_rx = now;
        if self.mode != Mode::Bridged || !self.caller.sending {
            return Received::Ignored;
        }
        match self
            .caller
            .out
            .relay_with_pt(now, &mut buf[..len], &self.to_caller_pt)
        {
            Ok(RelayAction::Send) => Received::ToCaller {
                len,
                to: self.caller.remote,
            },
            _ => Received::Ignored,
        }
    }

    fn store_echo(&mut self, now: Instant, payload: &[u8]) {
        let Some(ring) = self.echo.as_mut() else {
            return;
        };
        let mut slot = EchoSlot {
            due: now + ECHO_DELAY,
            len: payload.len(),
            payload: [0; 160],
        };
        slot.payload[..payload.len()].copy_from_slice(payload);
        ring[self.echo_head] = Some(slot);
        self.echo_head = (self.echo_head + 1) % ECHO_SLOTS;
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

    fn poll_ivr(&mut self, now: Instant, out: &mut [u8]) -> Option<Received> {
        let codec = self.caller.codec;
        let payload: &[u8] = if self.player.is_playing() {
            self.player.poll_frame(now)?
        } else {
            if now < self.next_tick {
                return None;
            }
            silence_frame(codec.law)
        };
        self.next_tick = now + FRAME;
        if !self.caller.sending {
            return None;
        }
        let n = payload.len();
        out[HEADER_LEN..HEADER_LEN + n].copy_from_slice(payload);
        self.caller
            .out
            .next_own(now, FRAME_SAMPLES)
            .write(out, codec.pt);
        Some(Received::ToCaller {
            len: HEADER_LEN + n,
            to: self.caller.remote,
        })
    }

    fn poll_echo(&mut self, now: Instant, out: &mut [u8]) -> Option<Received> {
        let ring = self.echo.as_mut()?;
        let (idx, slot) = ring
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.map(|s| (i, s)))
            .filter(|(_, s)| s.due <= now)
            .min_by_key(|(_, s)| s.due)?;
        ring[idx] = None;
        let codec = self.caller.codec;
        out[HEADER_LEN..HEADER_LEN + slot.len].copy_from_slice(&slot.payload[..slot.len]);
        self.caller
            .out
            .next_own(now, slot.len as u32)
            .write(out, codec.pt);
        Some(Received::ToCaller {
            len: HEADER_LEN + slot.len,
            to: self.caller.remote,
        })
    }

    fn poll_inject(&mut self, now: Instant, out: &mut [u8]) -> Option<Received> {
        if now < self.next_tick {
            return None;
        }
        let server = self.server.as_mut()?;
        let Some(te) = server.codec.telephone_event_pt else {
            // The server takes no RFC 4733: the digits cannot be sent, so none stay due.
            self.pending_digits = [None; 8];
            return None;
        };
        if self.injecting.is_none() {
            let digit = self.pending_digits[0].take()?;
            self.pending_digits.rotate_left(1);
            self.injecting = Some(DtmfEncoder::new(digit, 100));
        }
        let enc = self.injecting.as_mut()?;
        let Some((event, marker)) = enc.next_packet() else {
            self.injecting = None;
            return None;
        };
        self.next_tick = now + FRAME;
        let mut payload = [0u8; 4];
        event.write(&mut payload);
        out[HEADER_LEN..HEADER_LEN + 4].copy_from_slice(&payload);
        // All packets of one event share its start timestamp.
        server.out.next_event(now, marker).write(out, te);
        Some(Received::ToServer {
            len: HEADER_LEN + 4,
            to: server.remote,
        })
    }
}

#[cfg(test)]
#[path = "media_tests.rs"]
mod tests;
