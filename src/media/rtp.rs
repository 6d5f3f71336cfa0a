//! RTP (RFC 3550) packets: a zero-copy view, in-place header rewriting, and [`OutStream`], which
//! keeps the stream we send to one peer continuous while its source changes.
//!
//! The relay hot path receives into a buffer, rewrites the 12-byte fixed header in place and
//! sends the same buffer: no allocation, no copy of the payload.

mod stream;

pub use stream::{OutStream, OwnHeader, PtMap, RelayAction, FRAME_SAMPLES};

use thiserror::Error;

/// Length of the fixed RTP header, without CSRCs or extension: what [`write_header`] writes.
pub const HEADER_LEN: usize = 12;

/// The synchronisation source of a stream; a newtype so it cannot be confused with a timestamp.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Ssrc(pub u32);

impl From<u32> for Ssrc {
    fn from(v: u32) -> Self {
        Ssrc(v)
    }
}

/// An RTP sequence number; a newtype because its order is serial (RFC 1982), not numeric.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct SeqNo(pub u16);

impl From<u16> for SeqNo {
    fn from(v: u16) -> Self {
        SeqNo(v)
    }
}

impl SeqNo {
    /// The following sequence number, wrapping after 65535.
    pub fn next(self) -> SeqNo {
        SeqNo(self.0.wrapping_add(1))
    }

    /// Whether `self` comes after `other` in serial order (up to 32767 ahead), so reordering
    /// across the wrap at 65535 is judged correctly.
    pub fn is_after(self, other: SeqNo) -> bool {
        (self.0.wrapping_sub(other.0) as i16) > 0
    }
}

/// Whether RTP timestamp `a` comes after `b` in serial order (wrap-aware).
pub fn ts_is_after(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) > 0
}

/// Why a datagram is not a usable RTP packet; the relay drops such datagrams and counts them.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RtpError {
    /// Fewer than 12 bytes.
    #[error("RTP packet of {len} bytes is shorter than the 12-byte fixed header")]
    TooShort {
        /// Length of the datagram.
        len: usize,
    },
    /// Version field other than 2 (e.g. STUN or a stray RTP v1 packet).
    #[error("RTP version is {0}, expected 2")]
    BadVersion(u8),
    /// The CSRC list announced by the CC field does not fit in the datagram.
    #[error("RTP header lists {csrc_count} CSRCs, which do not fit in {len} bytes")]
    CsrcPastEnd {
        /// The CC field.
        csrc_count: u8,
        /// Length of the datagram.
        len: usize,
    },
    /// The header extension (X bit) does not fit in the datagram.
    #[error("RTP header extension runs past the end of the {len}-byte packet")]
    ExtensionPastEnd {
        /// Length of the datagram.
        len: usize,
    },
    /// The padding count (P bit, last byte) is zero or larger than what follows the header.
    #[error("RTP padding of {padding} bytes is invalid: {available} bytes follow the header")]
    BadPadding {
        /// The padding count from the last byte.
        padding: u8,
        /// Bytes after the header, padding included.
        available: usize,
    },
}

/// A validated, borrowed RTP packet: parse once, then read fields without re-checking.
#[derive(Clone, Copy, Debug)]
pub struct RtpPacket<'a> {
    /// The whole datagram.
    buf: &'a [u8],
    /// Fixed header + CSRCs + extension.
    header_len: usize,
    /// End of the payload (start of padding).
    payload_end: usize,
}

impl<'a> RtpPacket<'a> {
    /// Validates `buf` as an RTP v2 packet (CSRCs, extension and padding must fit).
    pub fn parse(buf: &'a [u8]) -> Result<RtpPacket<'a>, RtpError> {
        let len = buf.len();
        if len < HEADER_LEN {
            return Err(RtpError::TooShort { len });
        }
        let version = buf[0] >> 6;
        if version != 2 {
            return Err(RtpError::BadVersion(version));
        }
        let csrc_count = buf[0] & 0x0F;
        let mut header_len = HEADER_LEN + 4 * csrc_count as usize;
        if header_len > len {
            return Err(RtpError::CsrcPastEnd { csrc_count, len });
        }
        if buf[0] & 0x10 != 0 {
            if header_len + 4 > len {
                return Err(RtpError::ExtensionPastEnd { len });
            }
            let words = u16::from_be_bytes([buf[header_len + 2], buf[header_len + 3]]) as usize;
            header_len += 4 + 4 * words;
            if header_len > len {
                return Err(RtpError::ExtensionPastEnd { len });
            }
        }
        let mut payload_end = len;
        if buf[0] & 0x20 != 0 {
            let padding = buf[len - 1];
            let available = len - header_len;
            if padding == 0 || padding as usize > available {
                return Err(RtpError::BadPadding { padding, available });
            }
            payload_end -= padding as usize;
        }
        Ok(RtpPacket {
            buf,
            header_len,
            payload_end,
        })
    }

    /// The marker bit: start of a talkspurt, or the first packet of an RFC 4733 event.
    pub fn marker(&self) -> bool {
        self.buf[1] & 0x80 != 0
    }

    /// The 7-bit payload type, which tells audio (0/8) from telephone events (dynamic).
    pub fn payload_type(&self) -> u8 {
        self.buf[1] & 0x7F
    }

    /// The sequence number, for loss and reordering.
    pub fn sequence(&self) -> SeqNo {
        SeqNo(u16::from_be_bytes([self.buf[2], self.buf[3]]))
    }

    /// The media timestamp (8 kHz for G.711 and telephone events).
    pub fn timestamp(&self) -> u32 {
        u32::from_be_bytes([self.buf[4], self.buf[5], self.buf[6], self.buf[7]])
    }

    /// The sender's synchronisation source.
    pub fn ssrc(&self) -> Ssrc {
        Ssrc(u32::from_be_bytes([
            self.buf[8],
            self.buf[9],
            self.buf[10],
            self.buf[11],
        ]))
    }

    /// The payload, without header, CSRCs, extension or padding.
    pub fn payload(&self) -> &'a [u8] {
        &self.buf[self.header_len..self.payload_end]
    }

    /// Length of the header including CSRCs and extension: where the payload starts.
    pub fn header_len(&self) -> usize {
        self.header_len
    }
}

/// A validated RTP packet in a mutable buffer, whose fixed header can be rewritten in place by
/// the relay (the CSRCs, extension, payload and padding are left alone).
#[derive(Debug)]
pub struct RtpPacketMut<'a> {
    /// The whole datagram, already validated by [`RtpPacket::parse`].
    buf: &'a mut [u8],
}

impl<'a> RtpPacketMut<'a> {
    /// Validates `buf` like [`RtpPacket::parse`] and gives write access to its header.
    pub fn parse(buf: &'a mut [u8]) -> Result<RtpPacketMut<'a>, RtpError> {
        RtpPacket::parse(buf)?;
        Ok(RtpPacketMut { buf })
    }

    /// A read-only view, to read any field.
    pub fn view(&self) -> RtpPacket<'_> {
        RtpPacket::parse(self.buf).expect(
            "validated when constructed; the header only changes in fields that keep it valid",
        )
    }

    /// Sets or clears the marker bit.
    pub fn set_marker(&mut self, marker: bool) {
        self.buf[1] = (self.buf[1] & 0x7F) | if marker { 0x80 } else { 0 };
    }

    /// Sets the payload type (the low 7 bits), e.g. to map telephone-event PTs between legs.
    pub fn set_payload_type(&mut self, pt: u8) {
        self.buf[1] = (self.buf[1] & 0x80) | (pt & 0x7F);
    }

    /// Sets the sequence number.
    pub fn set_sequence(&mut self, seq: SeqNo) {
        self.buf[2..4].copy_from_slice(&seq.0.to_be_bytes());
    }

    /// Sets the timestamp.
    pub fn set_timestamp(&mut self, ts: u32) {
        self.buf[4..8].copy_from_slice(&ts.to_be_bytes());
    }

    /// Sets the SSRC.
    pub fn set_ssrc(&mut self, ssrc: Ssrc) {
        self.buf[8..12].copy_from_slice(&ssrc.0.to_be_bytes());
    }
}

/// Writes a 12-byte RTP v2 header (no padding, extension or CSRC) for packets we generate
/// (prompts, silence, DTMF) and returns its length, where the payload goes.
///
/// # Panics
/// If `buf` is shorter than [`HEADER_LEN`]: send buffers are sized by the caller, so that is a bug.
pub fn write_header(
    buf: &mut [u8],
    marker: bool,
    pt: u8,
    seq: SeqNo,
    ts: u32,
    ssrc: Ssrc,
) -> usize {
    assert!(
        buf.len() >= HEADER_LEN,
        "RTP send buffer shorter than the header"
    );
    buf[0] = 0x80;
    buf[1] = (pt & 0x7F) | if marker { 0x80 } else { 0 };
    buf[2..4].copy_from_slice(&seq.0.to_be_bytes());
    buf[4..8].copy_from_slice(&ts.to_be_bytes());
    buf[8..12].copy_from_slice(&ssrc.0.to_be_bytes());
    HEADER_LEN
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(first: u8) -> Vec<u8> {
        vec![
            first,
            0x80 | 8,
            0x12,
            0x34,
            0,
            0,
            0x01,
            0x00,
            0xDE,
            0xAD,
            0xBE,
            0xEF,
        ]
    }

    #[test]
    fn parses_fixed_header() {
        let mut p = header(0x80);
        p.extend_from_slice(&[1, 2, 3]);
        let pkt = RtpPacket::parse(&p).unwrap();
        assert!(pkt.marker());
        assert_eq!(pkt.payload_type(), 8);
        assert_eq!(pkt.sequence(), SeqNo(0x1234));
        assert_eq!(pkt.timestamp(), 256);
        assert_eq!(pkt.ssrc(), Ssrc(0xDEADBEEF));
        assert_eq!(pkt.header_len(), 12);
        assert_eq!(pkt.payload(), &[1, 2, 3]);
    }

    #[test]
    fn parses_csrc_extension_and_padding() {
        // CC=2, X=1, P=1: 12 + 8 (CSRC) + 4 + 4 (one extension word), payload 2, padding 3.
        let mut p = header(0x80 | 0x20 | 0x10 | 2);
        p.extend_from_slice(&[0; 8]);
        p.extend_from_slice(&[0xBE, 0xDE, 0, 1, 9, 9, 9, 9]);
        p.extend_from_slice(&[0xAA, 0xBB, 0, 0, 3]);
        let pkt = RtpPacket::parse(&p).unwrap();
        assert_eq!(pkt.header_len(), 28);
        assert_eq!(pkt.payload(), &[0xAA, 0xBB]);
    }

    #[test]
    fn rejects_malformed() {
        let with = |first: u8, tail: &[u8]| {
            let mut p = header(first);
            p.extend_from_slice(tail);
            p
        };
        let cases: Vec<(Vec<u8>, RtpError)> = vec![
            (vec![0x80; 11], RtpError::TooShort { len: 11 }),
            (vec![], RtpError::TooShort { len: 0 }),
            (with(0x40, &[]), RtpError::BadVersion(1)),
            (with(0x00, &[]), RtpError::BadVersion(0)),
            (
                with(0x82, &[0; 7]),
                RtpError::CsrcPastEnd {
                    csrc_count: 2,
                    len: 19,
                },
            ),
            (with(0x90, &[0, 0]), RtpError::ExtensionPastEnd { len: 14 }),
            (
                with(0x90, &[0, 0, 0, 2, 1, 2, 3, 4]),
                RtpError::ExtensionPastEnd { len: 20 },
            ),
            (
                with(0xA0, &[1, 0]),
                RtpError::BadPadding {
                    padding: 0,
                    available: 2,
                },
            ),
            (
                with(0xA0, &[1, 3]),
                RtpError::BadPadding {
                    padding: 3,
                    available: 2,
                },
            ),
        ];
        for (bytes, want) in cases {
            assert_eq!(RtpPacket::parse(&bytes).unwrap_err(), want, "{bytes:02x?}");
        }
        // Padding may take the whole body.
        assert_eq!(
            RtpPacket::parse(&with(0xA0, &[0, 2])).unwrap().payload(),
            &[] as &[u8]
        );
    }

    #[test]
    fn write_then_rewrite_in_place() {
        let mut buf = [0u8; 15];
        let n = write_header(&mut buf, false, 101, SeqNo(65535), u32::MAX, Ssrc(7));
        assert_eq!(n, HEADER_LEN);
        buf[12..].copy_from_slice(&[1, 2, 3]);
        let mut pkt = RtpPacketMut::parse(&mut buf).unwrap();
        pkt.set_marker(true);
        pkt.set_payload_type(96);
        pkt.set_sequence(SeqNo(1));
        pkt.set_timestamp(2);
        pkt.set_ssrc(Ssrc(3));
        let v = pkt.view();
        assert_eq!(
            (
                v.marker(),
                v.payload_type(),
                v.sequence(),
                v.timestamp(),
                v.ssrc()
            ),
            (true, 96, SeqNo(1), 2, Ssrc(3))
        );
        assert_eq!(v.payload(), &[1, 2, 3]);
        pkt.set_marker(false);
        assert_eq!(
            (pkt.view().marker(), pkt.view().payload_type()),
            (false, 96)
        );
    }

    #[test]
    fn serial_order() {
        let cases = [
            (1u16, 0u16, true),
            (0, 1, false),
            (0, 65535, true),
            (65535, 0, false),
            (5, 5, false),
        ];
        for (a, b, want) in cases {
            assert_eq!(SeqNo(a).is_after(SeqNo(b)), want, "{a} after {b}");
        }
        assert!(ts_is_after(3, u32::MAX - 3));
        assert!(!ts_is_after(u32::MAX - 3, 3));
    }
}
