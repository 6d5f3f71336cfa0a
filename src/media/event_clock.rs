//! Keeps every packet of one relayed RFC 4733 event on one output timestamp.
//!
//! All packets of a telephone event share its start timestamp; that is how the receiver tells
//! one key press from the next. The relay re-bases timestamps when the incoming source changes,
//! so a sender that interleaves streams (audio and events in different SSRCs, or audio echoed
//! back in another SSRC) would otherwise give each event packet a new timestamp, and the
//! meeting would see one key press many times (BBB's 0 would toggle mute over and over).

use crate::media::rtp::{RtpPacketMut, Ssrc};

/// Remembers the last relayed event (its source and timestamp, as received) and the output
/// timestamp it was given.
#[derive(Clone, Copy, Debug, Default)]
pub struct EventClock {
    /// The incoming `(SSRC, timestamp)` of the last event relayed.
    last: Option<(Ssrc, u32)>,
    /// The output timestamp that event was sent with.
    out_ts: u32,
}

impl EventClock {
    /// A clock that has seen no event yet.
    pub fn new() -> EventClock {
        EventClock::default()
    }

    /// Call after the relay rewrote the event packet in `buf`, with the packet's incoming
    /// `source` and `timestamp`: a further packet of the same event gets the timestamp its
    /// first packet went out with; a new event keeps the timestamp the relay gave it.
    pub fn pin(&mut self, buf: &mut [u8], source: Ssrc, timestamp: u32) {
        let Ok(mut packet) = RtpPacketMut::parse(buf) else {
            return;
        };
        if self.last == Some((source, timestamp)) {
            packet.set_timestamp(self.out_ts);
        } else {
            self.last = Some((source, timestamp));
            self.out_ts = packet.view().timestamp();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::rtp::{write_header, RtpPacket, SeqNo};

    fn packet(ts: u32) -> [u8; 16] {
        let mut buf = [0u8; 16];
        write_header(&mut buf, false, 101, SeqNo(1), ts, Ssrc(1));
        buf
    }

    #[test]
    fn packets_of_one_event_share_the_first_output_timestamp() {
        let mut clock = EventClock::new();
        let caller = Ssrc(7);
        // (incoming ts, ts the relay wrote) → ts that must go out
        let cases = [
            (8000, 500, 500),
            (8000, 660, 500), // re-based in between: pinned back
            (8000, 820, 500),
            (9600, 2000, 2000), // the next key press keeps its own
            (9600, 2400, 2000),
        ];
        for (incoming, relayed, want) in cases {
            let mut buf = packet(relayed);
            clock.pin(&mut buf, caller, incoming);
            assert_eq!(RtpPacket::parse(&buf).unwrap().timestamp(), want);
        }
        // The same incoming timestamp from another source is another event.
        let mut buf = packet(3000);
        clock.pin(&mut buf, Ssrc(8), 9600);
        assert_eq!(RtpPacket::parse(&buf).unwrap().timestamp(), 3000);
    }
}
