//! The relay hot path: every packet queued on a leg's socket is received, handed to the media
//! state, rewritten in place and sent on (or decoded as a digit for the flow); and the packets
//! the media state originates (prompts, digits) are sent the same way. No allocation, lock or
//! log line per packet.

use super::rtp_socket::RtpSocket;
use super::{recv_batch, srtp, CallDriver};
use crate::call::flow::{DigitSource, FlowInput};
use crate::call::media::Received;
use crate::digit::Digit;
use crate::ops::metrics::{Direction, RtpCounters};
use std::time::Instant;

impl CallDriver {
    /// Reads every packet queued on one leg's socket and relays each at once: receive,
    /// rewrite in place and send without an `.await`, so the buffers can be the worker
    /// thread's. A send that would block drops the packet, as a full network would. Returns
    /// whether a packet gave the flow a digit (its actions may add wake-up sources).
    pub(super) fn relay_queued(&mut self, now: Instant, from_server: bool) -> bool {
        let socket = match (from_server, self.server.as_ref()) {
            (false, _) => &self.caller_socket,
            (true, Some(s)) => &s.socket,
            (true, None) => return false,
        };
        let mut fed_flow = false;
        recv_batch::with_received(socket, |batch, n| {
            for i in 0..n {
                let (buf, len, Some(from)) = batch.packet(i) else {
                    continue;
                };
                let r = if from_server {
                    self.rtp.count(Direction::ServerRx, len);
                    if let Some(leg) = &self.media.server {
                        self.quality[1].observe(now, &buf[..len], leg.codec().pt);
                    }
                    self.media.handle_server_packet(now, from, buf, len)
                } else {
                    // SRTP: authenticated and decrypted in place first; a forgery is dropped.
                    let len = match self.srtp.as_mut() {
                        Some(s) => match s.unprotect(buf, len) {
                            Some(len) => len,
                            None => continue,
                        },
                        None => len,
                    };
                    self.rtp.count(Direction::CallerRx, len);
                    let pt = self.media.caller.codec().pt;
                    self.quality[0].observe(now, &buf[..len], pt);
                    self.media.handle_caller_packet(now, from, buf, len)
                };
                let out = Outputs {
                    srtp: &mut self.srtp,
                    caller: &self.caller_socket,
                    server: self.server.as_ref().map(|s| &s.socket),
                    rtp: &self.rtp,
                };
                if let Some(d) = out.send(r, buf) {
                    let digit = FlowInput::Digit(d, DigitSource::Rtp);
                    self.flow.handle_input(now, digit);
                    fed_flow = true;
                }
            }
        });
        fed_flow
    }

    /// Sends what the media state asked for, or feeds a decoded digit to the flow.
    pub(super) fn deliver(&mut self, now: Instant, r: Received, buf: &[u8]) {
        let out = Outputs {
            srtp: &mut self.srtp,
            caller: &self.caller_socket,
            server: self.server.as_ref().map(|s| &s.socket),
            rtp: &self.rtp,
        };
        if let Some(d) = out.send(r, buf) {
            self.flow
                .handle_input(now, FlowInput::Digit(d, DigitSource::Rtp));
        }
    }
}

/// The parts of the driver a send needs, borrowed apart from the socket being read, so the
/// batched relay and the originated packets (prompts, digits) share one send path.
struct Outputs<'a> {
    /// The caller leg's SRTP context, if the trunk leg is encrypted.
    srtp: &'a mut Option<Box<srtp::SrtpLeg>>,
    /// The caller leg's RTP socket.
    caller: &'a RtpSocket,
    /// The server leg's RTP socket, once dialled.
    server: Option<&'a RtpSocket>,
    /// Packet and byte counters per direction.
    rtp: &'a RtpCounters,
}

impl Outputs<'_> {
    /// Sends `r`'s packet from `buf` (protected toward an SRTP caller); a decoded digit is
    /// handed back for the flow. A send that would block drops the packet.
    fn send(self, r: Received, buf: &[u8]) -> Option<Digit> {
        match r {
            Received::Ignored => None,
            Received::Digit(d) => Some(d),
            Received::ToCaller { len, to } => {
                let packet = match self.srtp.as_mut() {
                    Some(s) => s.protect(&buf[..len])?,
                    None => &buf[..len],
                };
                if self.caller.send_to(packet, to).is_ok() {
                    self.rtp.count(Direction::CallerTx, packet.len());
                }
                None
            }
            Received::ToServer { len, to } => {
                if let Some(socket) = self.server {
                    if socket.send_to(&buf[..len], to).is_ok() {
                        self.rtp.count(Direction::ServerTx, len);
                    }
                }
                None
            }
        }
    }
}
