//! One leg's RTP side: its negotiated codec, where its peer is (with source latching) and our
//! outgoing stream toward it.

use crate::media::g711::Law;
use crate::media::rtp::OutStream;
use std::net::SocketAddr;

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
    pub(super) sdp_remote: SocketAddr,
    /// Where we send: the SDP's address until the first packet latches the real source.
    pub(super) remote: SocketAddr,
    /// Whether `remote` was confirmed by a received packet.
    pub(super) latched: bool,
    /// Whether the first RTP packet from the SDP's host may move `remote` to another port
    /// (a phone behind a port-rewriting NAT). Off for BBB servers: only their SDP address.
    pub(super) port_latching: bool,
    /// The codec on this leg.
    pub(super) codec: LegCodec,
    /// Our outgoing stream toward this leg's peer (SSRC, sequence, timestamp continuity).
    pub(super) out: OutStream,
    /// False while the peer has put us on hold (sendonly/inactive): we send nothing.
    pub(super) sending: bool,
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
    pub(super) fn accept_source(&mut self, from: SocketAddr, pt: u8) -> bool {
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

    /// The one address this leg takes packets from, once that is fixed: the latched source,
    /// or, without port latching, the SDP's address. `None` while the port may still move.
    pub fn settled_peer(&self) -> Option<SocketAddr> {
        (self.latched || !self.port_latching).then_some(self.remote)
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
