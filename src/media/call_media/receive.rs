//! Received packets: the caller's (digits in the voice menu, frames for the echo test, relayed
//! to the server once bridged) and the server's (relayed to the caller). In place, no
//! allocation.

use super::{CallMedia, Mode, Received};
use crate::media::g711;
use crate::media::rtp::{RelayAction, RtpPacket, Ssrc};
use crate::media::Side;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// An RFC 4733 press of the key just heard in-band, within this long, is the same press (a
/// phone that sends both; its first event packet may come after the tone was recognised).
const SAME_PRESS: Duration = Duration::from_millis(500);

impl CallMedia {
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
        self.last_rx[Side::Caller.index()] = now;
        let pt = pkt.payload_type();
        match self.mode {
            Mode::Ivr => self.caller_menu_packet(now, &pkt),
            Mode::Echo => {
                if pt == self.caller.codec.pt && pkt.payload().len() <= 160 {
                    self.store_echo(now, pkt.payload());
                }
                Received::Ignored
            }
            Mode::Bridged => {
                let is_event = Some(pt) == self.caller.codec.telephone_event_pt;
                if let Some(kept) = self.keep_from_server(&pkt, is_event) {
                    return kept;
                }
                let (source, ts) = (pkt.ssrc(), pkt.timestamp());
                self.relay_to_server(now, &mut buf[..len], is_event, source, ts)
            }
        }
    }

    /// In the voice menu: decodes the caller's telephone events, or the tones in its audio,
    /// into digits.
    fn caller_menu_packet(&mut self, now: Instant, pkt: &RtpPacket<'_>) -> Received {
        if Some(pkt.payload_type()) == self.caller.codec.telephone_event_pt {
            // The phone sends RFC 4733: its audio is not listened to any more.
            self.inband = None;
            // Event timestamps only compare within one stream: a new SSRC (a phone
            // that restarted its stream) starts a fresh decoder. Audio of other
            // streams (e.g. echoed back by the phone) does not count.
            if self.caller_ssrc != Some(pkt.ssrc()) {
                self.caller_ssrc = Some(pkt.ssrc());
                self.decoder.reset();
            }
            if let Some(d) = self.decoder.handle_packet(pkt.timestamp(), pkt.payload()) {
                if let Some((heard, at)) = self.inband_last.take() {
                    if heard == d && now.saturating_duration_since(at) < SAME_PRESS {
                        return Received::Ignored;
                    }
                }
                return Received::Digit(d);
            }
        } else if pkt.payload_type() == self.caller.codec.pt {
            if let Some(inband) = self.inband.as_mut() {
                let mut pcm = [0i16; 160];
                let mut heard = None;
                for chunk in pkt.payload().chunks(pcm.len()) {
                    let pcm = &mut pcm[..chunk.len()];
                    g711::decode(self.caller.codec.law, chunk, pcm);
                    heard = inband.push(pcm).or(heard);
                }
                if let Some(d) = heard {
                    self.inband_last = Some((d, now));
                    return Received::Digit(d);
                }
            }
        }
        Received::Ignored
    }

    /// Bridged: what of the caller's packet stays here (`Some`) rather than going to the
    /// server: audio while a digit is injected, the PIN's last key press, the mute key.
    fn keep_from_server(&mut self, pkt: &RtpPacket<'_>, is_event: bool) -> Option<Received> {
        if self.injecting.is_some() && !is_event {
            return Some(Received::Ignored);
        }
        // The tail of the key press that ended the PIN (usually `#`) is not the
        // meeting's business.
        if is_event
            && self.caller_ssrc == Some(pkt.ssrc())
            && self.decoder.last_event_timestamp() == Some(pkt.timestamp())
        {
            return Some(Received::Ignored);
        }
        if let Some(key) = self.intercept.filter(|_| is_event) {
            if pkt.payload().first() == Some(&key.event_code()) {
                // Every packet of the press stays here; the first one reports it.
                return Some(
                    match self.decoder.handle_packet(pkt.timestamp(), pkt.payload()) {
                        Some(d) => Received::Digit(d),
                        None => Received::Ignored,
                    },
                );
            }
        }
        None
    }

    /// Bridged: rewrites the caller's packet (`packet` is `buf[..len]`) into our stream
    /// toward the server; `source` and `ts` are its original SSRC and timestamp.
    fn relay_to_server(
        &mut self,
        now: Instant,
        packet: &mut [u8],
        is_event: bool,
        source: Ssrc,
        ts: u32,
    ) -> Received {
        let Some(server) = self.server.as_mut() else {
            return Received::Ignored;
        };
        // Nothing goes to a server that holds us, and nothing of a caller who holds (its
        // music on hold is not the meeting's business).
        if !server.sending || !self.caller.sending {
            return Received::Ignored;
        }
        match server.out.relay_with_pt(now, packet, &self.to_server_pt) {
            Ok(RelayAction::Send) => {
                if is_event {
                    self.to_server_events.pin(packet, source, ts);
                }
                Received::ToServer {
                    len: packet.len(),
                    to: server.remote,
                }
            }
            _ => Received::Ignored,
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
        self.last_rx[Side::Server.index()] = now;
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
}
