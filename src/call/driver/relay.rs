//! The relay hot path: every packet queued on a leg's socket is received, handed to the media
//! state, rewritten in place and sent on (or decoded as a digit for the flow); and the packets
//! the media state originates (prompts, digits) are sent the same way. No allocation, lock or
//! log line per packet.

use super::{recv_batch, CallDriver};
use crate::call::flow::{DigitSource, FlowInput};
use crate::call::media::Received;
use crate::ops::metrics::RtpCounters;
use std::time::Instant;

impl CallDriver {
    /// Reads every packet queued on one leg's socket and relays each at once: receive,
    /// rewrite in place and send without an `.await`, so the buffers can be the worker
    /// thread's. A send that would block drops the packet, as a full network would.
    pub(super) fn relay_queued(&mut self, now: Instant, from_server: bool) {
        let socket = match (from_server, self.server.as_ref()) {
            (false, _) => &self.caller_socket,
            (true, Some(s)) => &s.socket,
            (true, None) => return,
        };
        recv_batch::with_received(socket, |batch, n| {
            for i in 0..n {
                let (buf, len, Some(from)) = batch.packet(i) else {
                    continue;
                };
                let r = if from_server {
                    RtpCounters::count(&self.rtp.server_rx, len);
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
                    RtpCounters::count(&self.rtp.caller_rx, len);
                    let pt = self.media.caller.codec().pt;
                    self.quality[0].observe(now, &buf[..len], pt);
                    self.media.handle_caller_packet(now, from, buf, len)
                };
                match r {
                    Received::Ignored => {}
                    Received::Digit(d) => self
                        .flow
                        .handle_input(now, FlowInput::Digit(d, DigitSource::Rtp)),
                    Received::ToCaller { len, to } => {
                        let packet = match self.srtp.as_mut() {
                            Some(s) => match s.protect(&buf[..len]) {
                                Some(p) => p,
                                None => continue,
                            },
                            None => &buf[..len],
                        };
                        if self.caller_socket.send_to(packet, to).is_ok() {
                            RtpCounters::count(&self.rtp.caller_tx, packet.len());
                        }
                    }
                    Received::ToServer { len, to } => {
                        if let Some(s) = &self.server {
                            if s.socket.send_to(&buf[..len], to).is_ok() {
                                RtpCounters::count(&self.rtp.server_tx, len);
                            }
                        }
                    }
                }
            }
        });
    }

    /// Sends what the media state asked for, or feeds a decoded digit to the flow.
    pub(super) fn deliver(&mut self, now: Instant, r: Received, buf: &[u8]) {
        match r {
            Received::Ignored => {}
            Received::Digit(d) => self
                .flow
                .handle_input(now, FlowInput::Digit(d, DigitSource::Rtp)),
            Received::ToCaller { len, to } => {
                let packet = match self.srtp.as_mut() {
                    Some(s) => match s.protect(&buf[..len]) {
                        Some(p) => p,
                        None => return,
                    },
                    None => &buf[..len],
                };
                if self.caller_socket.send_to(packet, to).is_ok() {
                    RtpCounters::count(&self.rtp.caller_tx, packet.len());
                }
            }
            Received::ToServer { len, to } => {
                if let Some(s) = &self.server {
                    if s.socket.send_to(&buf[..len], to).is_ok() {
                        RtpCounters::count(&self.rtp.server_tx, len);
                    }
                }
            }
        }
    }
}
