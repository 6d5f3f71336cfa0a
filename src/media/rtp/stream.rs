//! [`OutStream`]: one SSRC and continuous sequence numbers and timestamps towards a peer, while
//! what we send switches between our own packets (prompts, silence, DTMF) and relayed packets
//! from the other leg, which may itself change SSRC (FreeSWITCH does on re-INVITE).
//!
//! Peers' jitter buffers and SRTP-less NATs cope badly with a stream that jumps; sending one
//! clean stream per leg avoids one-way audio after the bridge starts.

use std::time::Instant;

use super::{ts_is_after, write_header, RtpError, RtpPacketMut, SeqNo, Ssrc};

/// Samples per 20 ms frame at 8 kHz: the span assumed for a relayed packet, whose length we do
/// not inspect, and the spacing of RFC 4733 event packets.
pub const FRAME_SAMPLES: u32 = 160;

/// How far (in samples, 100 ms) our own packets may fall behind the wall clock before the next
/// one restarts the timeline at the wall-clock position with the marker bit set.
const OWN_GAP_SAMPLES: u32 = 800;

/// The header fields for a packet we generate ourselves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OwnHeader {
    /// Set on the first packet after a source switch or a gap, and on the first packet of a
    /// telephone event, so the peer resynchronises its jitter buffer.
    pub marker: bool,
    /// The sequence number to send.
    pub seq: SeqNo,
    /// The timestamp to send.
    pub ts: u32,
    /// Our SSRC on this leg.
    pub ssrc: Ssrc,
}

impl OwnHeader {
    /// Writes the 12-byte header with payload type `pt`; returns where the payload starts.
    pub fn write(&self, buf: &mut [u8], pt: u8) -> usize {
        write_header(buf, self.marker, pt, self.seq, self.ts, self.ssrc)
    }
}

/// Payload-type mapping for relayed packets: dynamic PTs (telephone-event, CN) are negotiated
/// per leg, so PT 101 from the trunk may have to go out as 96 to the server. Unmapped PTs are
/// dropped, which also stops codecs the other leg never agreed to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PtMap([Option<u8>; 128]);

impl PtMap {
    /// A map that drops everything; add entries with [`PtMap::with`].
    pub const fn empty() -> PtMap {
        PtMap([None; 128])
    }

    /// A map that passes every payload type unchanged.
    pub const fn identity() -> PtMap {
        let mut map = [None; 128];
        let mut pt = 0;
        while pt < 128 {
            map[pt] = Some(pt as u8);
            pt += 1;
        }
        PtMap(map)
    }

    /// This map plus `from → to` (both 7-bit; higher bits are ignored).
    pub const fn with(mut self, from: u8, to: u8) -> PtMap {
        self.0[(from & 0x7F) as usize] = Some(to & 0x7F);
        self
    }

    /// The outgoing payload type for incoming `pt`, or `None` to drop the packet.
    pub fn get(&self, pt: u8) -> Option<u8> {
        self.0[(pt & 0x7F) as usize]
    }
}

/// What to do with a buffer after [`OutStream::relay_with_pt`].
#[must_use]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RelayAction {
    /// The header was rewritten; send the buffer.
    Send,
    /// The payload type is not mapped; do not send (the buffer is untouched).
    Drop,
}

/// Where the packets we send currently come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// Nothing sent yet.
    Fresh,
    /// Our own packets; `event_ts` is the timestamp of the telephone event being sent, if any.
    Own { event_ts: Option<u32> },
    /// Relayed packets of `source`, shifted by fixed offsets so its own gaps and reordering pass.
    Relay {
        source: Ssrc,
        seq_offset: u16,
        ts_offset: u32,
    },
}

/// The sending side of one leg: rewrites relayed packets and numbers our own so the peer sees a
/// single continuous RTP stream. Pure: the caller passes the time of each packet.
#[derive(Clone, Debug)]
pub struct OutStream {
    /// Our SSRC towards this peer, never changed during the call.
    ssrc: Ssrc,
    /// Timestamp of the very first packet.
    initial_ts: u32,
    /// Highest sequence number sent (serial order).
    last_seq: SeqNo,
    /// When the packet at `anchor_ts` was sent; `None` before the first packet.
    anchor: Option<Instant>,
    /// Timestamp of the latest media position sent (for events: the latest 20 ms step).
    anchor_ts: u32,
    /// Samples covered by the packet at `anchor_ts` (known for ours, assumed 160 for relayed).
    span: u32,
    /// Current source.
    mode: Mode,
}

impl OutStream {
    /// A stream with our `ssrc`; the first packet gets `initial_seq` and `initial_ts` (RFC 3550
    /// wants both random).
    pub fn new(ssrc: impl Into<Ssrc>, initial_seq: impl Into<SeqNo>, initial_ts: u32) -> OutStream {
        let first: SeqNo = initial_seq.into();
        OutStream {
            ssrc: ssrc.into(),
            initial_ts,
            last_seq: SeqNo(first.0.wrapping_sub(1)),
            anchor: None,
            anchor_ts: initial_ts,
            span: 0,
            mode: Mode::Fresh,
        }
    }

    /// Our SSRC on this leg (for SDP `a=ssrc` or RTCP).
    pub fn ssrc(&self) -> Ssrc {
        self.ssrc
    }

    /// The header for our next own packet of `samples` samples (prompt or silence).
    ///
    /// While we keep sending our own packets the timestamp advances by the previous packet's
    /// length, so pacing jitter does not show; after relayed packets, or when more than 100 ms
    /// beyond the expected spacing passed, it advances by the wall-clock time elapsed since the
    /// last packet (at least the last packet's length) and the marker is set.
    pub fn next_own(&mut self, now: Instant, samples: u32) -> OwnHeader {
        let continuous = matches!(self.mode, Mode::Own { .. })
            && self.elapsed_samples(now) <= self.span.saturating_add(OWN_GAP_SAMPLES);
        let ts = if continuous {
            self.anchor_ts.wrapping_add(self.span)
        } else {
            self.rebased_ts(now)
        };
        self.last_seq = self.last_seq.next();
        self.anchor = Some(now);
        self.anchor_ts = ts;
        self.span = samples;
        self.mode = Mode::Own { event_ts: None };
        OwnHeader {
            marker: !continuous,
            seq: self.last_seq,
            ts,
            ssrc: self.ssrc,
        }
    }

    /// The header for an RFC 4733 packet we inject, one per 20 ms tick. `start` is true for the
    /// first packet of an event (marker set; its timestamp then stays for all packets of the
    /// event); audio sent afterwards continues 160 samples per event packet later.
    pub fn next_event(&mut self, now: Instant, start: bool) -> OwnHeader {
        match self.mode {
            Mode::Own {
                event_ts: Some(event_ts),
            } if !start => {
                self.last_seq = self.last_seq.next();
                self.anchor = Some(now);
                self.anchor_ts = self.anchor_ts.wrapping_add(self.span);
                self.span = FRAME_SAMPLES;
                OwnHeader {
                    marker: false,
                    seq: self.last_seq,
                    ts: event_ts,
                    ssrc: self.ssrc,
                }
            }
            _ => {
                let header = self.next_own(now, FRAME_SAMPLES);
                self.mode = Mode::Own {
                    event_ts: Some(header.ts),
                };
                OwnHeader {
                    marker: true,
                    ..header
                }
            }
        }
    }

    /// Rewrites a received packet in `buf` in place (SSRC, sequence number, timestamp, and the
    /// marker on a source switch) so it continues our stream; the payload type is kept.
    ///
    /// Within one source its own sequence/timestamp deltas are kept, so loss and reordering pass
    /// through. When the source SSRC changes, or after our own packets, the output continues at
    /// the next sequence number and at the wall-clock time elapsed since our last packet (at
    /// least 160 samples). A stray packet from a previous source counts as a switch.
    pub fn relay(&mut self, now: Instant, buf: &mut [u8]) -> Result<(), RtpError> {
        self.rewrite(now, buf, None).map(|_| ())
    }

    /// Like [`OutStream::relay`], but maps the payload type through `map` and leaves packets
    /// with an unmapped payload type untouched (returning [`RelayAction::Drop`]). A dropped
    /// packet from the current source shifts later sequence numbers down by one, so the peer
    /// sees no gap (exact unless the dropped packet was itself reordered).
    pub fn relay_with_pt(
        &mut self,
        now: Instant,
        buf: &mut [u8],
        map: &PtMap,
    ) -> Result<RelayAction, RtpError> {
        self.rewrite(now, buf, Some(map))
    }

    fn rewrite(
        &mut self,
        now: Instant,
        buf: &mut [u8],
        map: Option<&PtMap>,
    ) -> Result<RelayAction, RtpError> {
        let mut pkt = RtpPacketMut::parse(buf)?;
        let view = pkt.view();
        let (source, seq, ts, pt) = (
            view.ssrc(),
            view.sequence(),
            view.timestamp(),
            view.payload_type(),
        );
        if let Some(map) = map {
            match map.get(pt) {
                Some(out_pt) => pkt.set_payload_type(out_pt),
                None => {
                    // Close the sequence gap the drop would leave, so the peer sees no loss.
                    if let Mode::Relay {
                        source: current,
                        seq_offset,
                        ..
                    } = &mut self.mode
                    {
                        if *current == source
                            && SeqNo(seq.0.wrapping_add(*seq_offset)).is_after(self.last_seq)
                        {
                            *seq_offset = seq_offset.wrapping_sub(1);
                        }
                    }
                    return Ok(RelayAction::Drop);
                }
            }
        }
        let (out_seq, out_ts) = match self.mode {
            Mode::Relay {
                source: current,
                seq_offset,
                ts_offset,
            } if current == source => {
                let out_seq = SeqNo(seq.0.wrapping_add(seq_offset));
                let out_ts = ts.wrapping_add(ts_offset);
                if out_seq.is_after(self.last_seq) {
                    self.last_seq = out_seq;
                    if ts_is_after(out_ts, self.anchor_ts) {
                        self.anchor = Some(now);
                        self.anchor_ts = out_ts;
                        self.span = FRAME_SAMPLES;
                    }
                }
                (out_seq, out_ts)
            }
            _ => {
                let out_seq = self.last_seq.next();
                let out_ts = self.rebased_ts(now);
                self.mode = Mode::Relay {
                    source,
                    seq_offset: out_seq.0.wrapping_sub(seq.0),
                    ts_offset: out_ts.wrapping_sub(ts),
                };
                self.last_seq = out_seq;
                self.anchor = Some(now);
                self.anchor_ts = out_ts;
                self.span = FRAME_SAMPLES;
                pkt.set_marker(true);
                (out_seq, out_ts)
            }
        };
        pkt.set_ssrc(self.ssrc);
        pkt.set_sequence(out_seq);
        pkt.set_timestamp(out_ts);
        Ok(RelayAction::Send)
    }

    /// Samples (8 per ms) since the last packet; 0 before the first.
    fn elapsed_samples(&self, now: Instant) -> u32 {
        let Some(anchor) = self.anchor else { return 0 };
        let micros = now.saturating_duration_since(anchor).as_micros();
        (micros * 8 / 1000).min(i32::MAX as u128) as u32
    }

    /// Timestamp for a packet that starts a new timeline: wall-clock continuation.
    fn rebased_ts(&self, now: Instant) -> u32 {
        match self.anchor {
            None => self.initial_ts,
            Some(_) => self
                .anchor_ts
                .wrapping_add(self.elapsed_samples(now).max(self.span.max(1))),
        }
    }
}

#[cfg(test)]
#[path = "stream_tests.rs"]
mod tests;
