//! Just enough RTP (RFC 3550) and RFC 4733 for the harness: build packets for the caller pcap
//! and the Rust RTP peer, parse what a peer received, and decode the digits in a received stream.
//!
//! Written independently of dialin's own `media` module on purpose: the tests must not share
//! a bug with the code under test.

/// The RTP fixed header length (no CSRC, no extension) that the harness sends.
pub const HEADER_LEN: usize = 12;

/// A parsed RTP packet (borrowing its payload).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rtp<'a> {
    pub marker: bool,
    pub payload_type: u8,
    pub seq: u16,
    pub timestamp: u32,
    pub ssrc: u32,
    pub payload: &'a [u8],
}

impl<'a> Rtp<'a> {
    /// Parses version-2 RTP, skipping CSRCs, a header extension and padding. `None` if malformed.
    pub fn parse(data: &'a [u8]) -> Option<Rtp<'a>> {
        if data.len() < HEADER_LEN || data[0] >> 6 != 2 {
            return None;
        }
        let csrc_count = usize::from(data[0] & 0x0f);
        let mut start = HEADER_LEN + 4 * csrc_count;
        if data[0] & 0x10 != 0 {
            let ext = data.get(start..start + 4)?;
            start += 4 + 4 * usize::from(u16::from_be_bytes([ext[2], ext[3]]));
        }
        let mut end = data.len();
        if data[0] & 0x20 != 0 {
            end = end.checked_sub(usize::from(*data.last()?))?;
        }
        Some(Rtp {
            marker: data[1] & 0x80 != 0,
            payload_type: data[1] & 0x7f,
            seq: u16::from_be_bytes([data[2], data[3]]),
            timestamp: u32::from_be_bytes([data[4], data[5], data[6], data[7]]),
            ssrc: u32::from_be_bytes([data[8], data[9], data[10], data[11]]),
            payload: data.get(start..end)?,
        })
    }

    /// Serialises as version-2 RTP with a 12-byte header.
    pub fn to_bytes(self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_LEN + self.payload.len());
        out.push(0x80);
        out.push(u8::from(self.marker) << 7 | (self.payload_type & 0x7f));
        out.extend_from_slice(&self.seq.to_be_bytes());
        out.extend_from_slice(&self.timestamp.to_be_bytes());
        out.extend_from_slice(&self.ssrc.to_be_bytes());
        out.extend_from_slice(self.payload);
        out
    }
}

/// An RFC 4733 telephone-event payload (4 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Event {
    /// Event code: 0–9 digits, 10 `*`, 11 `#`, 12–15 `A`–`D`.
    pub code: u8,
    /// The E bit: this packet ends the event.
    pub end: bool,
    /// Power level in -dBm0 (0–63).
    pub volume: u8,
    /// Duration so far, in timestamp units (8 kHz: 160 per 20 ms).
    pub duration: u16,
}

impl Event {
    /// Parses the first 4 payload bytes; `None` if shorter.
    pub fn parse(payload: &[u8]) -> Option<Event> {
        let bytes = payload.get(..4)?;
        Some(Event {
            code: bytes[0],
            end: bytes[1] & 0x80 != 0,
            volume: bytes[1] & 0x3f,
            duration: u16::from_be_bytes([bytes[2], bytes[3]]),
        })
    }

    /// The 4-byte payload.
    pub fn to_bytes(self) -> [u8; 4] {
        let [d0, d1] = self.duration.to_be_bytes();
        [
            self.code,
            u8::from(self.end) << 7 | (self.volume & 0x3f),
            d0,
            d1,
        ]
    }
}

/// The RFC 4733 event code of a DTMF key (`0-9 * # A-D`, case-insensitive).
pub fn event_code(key: char) -> Option<u8> {
    match key.to_ascii_uppercase() {
        d @ '0'..='9' => Some(d as u8 - b'0'),
        '*' => Some(10),
        '#' => Some(11),
        l @ 'A'..='D' => Some(l as u8 - b'A' + 12),
        _ => None,
    }
}

/// The DTMF key of an RFC 4733 event code, `None` for codes above 15.
pub fn event_key(code: u8) -> Option<char> {
    "0123456789*#ABCD".chars().nth(usize::from(code))
}

/// The digits in a received stream, as a correct RFC 4733 receiver counts them: one digit per
/// distinct event timestamp (retransmitted end packets and continuation packets share the start
/// timestamp), in order of first appearance. Packets of other payload types are ignored.
pub fn decode_digits<'a>(packets: impl IntoIterator<Item = Rtp<'a>>, event_pt: u8) -> String {
    let mut seen: Vec<u32> = Vec::new();
    let mut digits = String::new();
    for packet in packets {
        if packet.payload_type != event_pt || seen.contains(&packet.timestamp) {
            continue;
        }
        if let Some(key) = Event::parse(packet.payload).and_then(|e| event_key(e.code)) {
            seen.push(packet.timestamp);
            digits.push(key);
        }
    }
    digits
}
