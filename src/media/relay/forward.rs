//! The relay hot path: every packet queued on a leg's socket is received, handed to the media
//! state, rewritten in place and sent on (or decoded as a digit for the call's task); and the
//! packets the media state originates (prompts, digits) are sent the same way. No allocation,
//! lock or log line per packet.

use super::path::MediaPath;
use super::recv_batch::Batch;
use super::srtp_leg as srtp;
use crate::digit::Digit;
use crate::media::call_media::Received;
use crate::media::Side;
use crate::ops::metrics::{Direction, RtpCounters};
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::time::Instant;

impl MediaPath {
    /// Reads up to a batch of the packets queued on one leg's socket into `batch` and relays
    /// each at once: receive, rewrite in place and send. A send that would block drops the
    /// packet, as a full network would. A digit a packet carries is queued for the call's
    /// task. `from` names the leg whose socket is read. Returns whether the batch was full
    /// (more may be queued).
    pub fn relay_queued(&mut self, batch: &mut Batch, now: Instant, from: Side) -> bool {
        let socket = match (from, self.server.as_ref()) {
            (Side::Caller, _) => &self.caller,
            (Side::Server, Some(s)) => s,
            (Side::Server, None) => return false,
        };
        let fd = socket.as_raw_fd();
        let n = match batch.recv(fd) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => 0,
            // A connected socket reports an ICMP error (the peer's port closed) once, in
            // place of its packets: read what is queued behind it. On the server leg it means
            // the conference may be gone: the call's core decides.
            Err(_) => {
                if from == Side::Server {
                    self.server_refused();
                }
                batch.recv(fd).unwrap_or(0)
            }
        };
        for i in 0..n {
            let (buf, len, Some(peer)) = batch.packet(i) else {
                continue;
            };
            #[cfg(test)]
            assert!(!self.panic_on_packet, "a test asked for this panic");
            let r = if from == Side::Server {
                self.rtp.count(Direction::ServerRx, len);
                if let Some(leg) = &self.media.server {
                    self.quality[1].observe(now, &buf[..len], leg.codec().pt);
                }
                self.media.handle_server_packet(now, peer, buf, len)
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
                let r = self.media.handle_caller_packet(now, peer, buf, len);
                self.check_deadline();
                r
            };
            if let Some(d) = self.outputs().send(r, buf) {
                self.push_digit(d);
            }
        }
        self.check_refused();
        // A packet may have latched the caller's port.
        self.sync_peers();
        n == super::recv_batch::BATCH
    }

    /// Sends what the media state asked for (a packet it originated into `buf`); a digit
    /// is handed back.
    pub fn deliver(&mut self, r: Received, buf: &[u8]) -> Option<Digit> {
        let d = self.outputs().send(r, buf);
        self.check_refused();
        d
    }

    fn outputs(&mut self) -> Outputs<'_> {
        Outputs {
            srtp: &mut self.srtp,
            caller: &self.caller,
            server: self.server.as_ref(),
            connected: self.connected,
            rtp: &self.rtp,
            refused: &mut self.refused,
        }
    }

    /// A send toward the server was refused (the ICMP error came back on a send rather than
    /// a receive): the call's task hears it like one on a receive.
    fn check_refused(&mut self) {
        if std::mem::take(&mut self.refused) {
            self.server_refused();
        }
    }
}

/// The parts of the path a send needs, borrowed apart from the media state, so the relayed
/// and the originated packets (prompts, digits) share one send path.
struct Outputs<'a> {
    /// The caller leg's SRTP context, if the trunk leg is encrypted.
    srtp: &'a mut Option<Box<srtp::SrtpLeg>>,
    /// The caller leg's RTP socket.
    caller: &'a UdpSocket,
    /// The server leg's RTP socket, once dialled.
    server: Option<&'a UdpSocket>,
    /// The peers the caller's and the server's socket are connected to.
    connected: [Option<SocketAddr>; 2],
    /// Packet and byte counters per direction.
    rtp: &'a RtpCounters,
    /// Set when a send to the server was refused (ICMP port unreachable).
    refused: &'a mut bool,
}

impl Outputs<'_> {
    /// Sends `r`'s packet from `buf` (protected toward an SRTP caller); a decoded digit is
    /// handed back. A send that would block drops the packet.
    fn send(self, r: Received, buf: &[u8]) -> Option<Digit> {
        match r {
            Received::Ignored => None,
            Received::Digit(d) => Some(d),
            Received::ToCaller { len, to } => {
                let packet = match self.srtp.as_mut() {
                    Some(s) => s.protect(&buf[..len])?,
                    None => &buf[..len],
                };
                if send(self.caller, self.connected[0], packet, to).is_ok() {
                    self.rtp.count(Direction::CallerTx, packet.len());
                }
                None
            }
            Received::ToServer { len, to } => {
                if let Some(socket) = self.server {
                    match send(socket, self.connected[1], &buf[..len], to) {
                        Ok(_) => self.rtp.count(Direction::ServerTx, len),
                        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                            *self.refused = true;
                        }
                        Err(_) => {}
                    }
                }
                None
            }
        }
    }
}

/// Sends `packet` to `to`: without an address (the route the kernel cached) when the socket
/// is connected there.
fn send(
    socket: &UdpSocket,
    peer: Option<SocketAddr>,
    packet: &[u8],
    to: SocketAddr,
) -> io::Result<usize> {
    if peer == Some(to) {
        socket.send(packet)
    } else {
        socket.send_to(packet, to)
    }
}

#[cfg(test)]
#[path = "forward_tests.rs"]
mod tests;
