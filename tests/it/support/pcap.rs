//! The caller's RTP as a real phone sends it, written as a classic pcap file for sipp's
//! `<exec play_pcap_audio="caller.pcap"/>`.
//!
//! sipp's own DTMF pcaps (`/usr/share/sip-tester/dtmf_2833_*.pcap`) each carry their own SSRC,
//! sequence numbers and timestamps, and `play_dtmf` uses payload type 96 after no-op packets.
//! Neither looks like a phone. A phone sends ONE stream: one SSRC, continuous sequence numbers,
//! 20 ms PCMU frames, and RFC 4733 events in the same stream. [`CallerStream`] builds exactly that:
//!
//! * `lead` of audio, then for each key: event packets every 20 ms sharing the event's start
//!   timestamp, duration growing by 160 (the marker bit on the first), then the end packet
//!   (E bit, final duration) sent 3 times, 20 ms apart, each with its own sequence number;
//! * **no audio while an event is in progress** (like typical phones: the event replaces the
//!   voice frames), and `gap` of audio between keys;
//! * `tail` of audio after the last key.
//!
//! With the defaults (`event` 120 ms, `gap` 100 ms) a key occupies 160 ms of wall time: 5 growing
//! packets at 0–80 ms with durations 160–800, then 3 end packets at 100–140 ms with duration 960. Audio timestamps follow wall time (8 per ms), so the first audio
//! packet after an event jumps past the event's samples, as on the wire from a phone.
//!
//! The audio frames come from a generator, by default [`payload::caller_frame`] so the receiver can
//! recognise them with [`payload::is_caller_audio`]. sipp rewrites only the addresses and ports when
//! replaying (it sends from its `-mp` port to the media address in the peer's SDP), keeping the
//! pcap's timing.

use super::payload;
use super::rtp::{event_code, Event, Rtp};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::Path;
use std::time::Duration;

/// One packet of the stream: when (from the stream's start) and the RTP bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimedPacket {
    pub at: Duration,
    pub rtp: Vec<u8>,
}

/// A caller's RTP stream: audio with RFC 4733 key presses in one SSRC. See the module docs.
#[derive(Clone)]
pub struct CallerStream {
    /// Audio before the first key.
    pub lead: Duration,
    /// The keys to press (`0-9 * # A-D`).
    pub keys: String,
    /// Audio after the last key.
    pub tail: Duration,
    /// Media time of one key press (rounded down to 20 ms steps, at least 40 ms).
    pub event: Duration,
    /// Audio between two key presses.
    pub gap: Duration,
    /// Payload type of the audio frames (0 = PCMU).
    pub audio_pt: u8,
    /// Payload type of telephone-event (101 as in the scenarios' SDP).
    pub event_pt: u8,
    /// The stream's SSRC.
    pub ssrc: u32,
    /// First sequence number (wraps at 65535 like a real stream).
    pub first_seq: u16,
    /// First timestamp.
    pub first_timestamp: u32,
    /// Makes the n-th audio frame's payload.
    pub audio: fn(u32) -> [u8; payload::FRAME_LEN],
}

impl CallerStream {
    /// A stream pressing `keys` after 1 s of caller audio, with 1 s of audio after them.
    /// Panics on a character that is not a DTMF key.
    pub fn new(keys: &str) -> CallerStream {
        for key in keys.chars() {
            assert!(event_code(key).is_some(), "{key:?} is not a DTMF key");
        }
        CallerStream {
            lead: Duration::from_secs(1),
            keys: keys.to_owned(),
            tail: Duration::from_secs(1),
            event: Duration::from_millis(120),
            gap: Duration::from_millis(100),
            audio_pt: 0,
            event_pt: 101,
            ssrc: 0x4d54_4631,
            first_seq: 1000,
            first_timestamp: 16_000,
            audio: payload::caller_frame,
        }
    }

    /// Sets the audio before the first key.
    pub fn lead(mut self, lead: Duration) -> Self {
        self.lead = lead;
        self
    }

    /// Sets the audio after the last key.
    pub fn tail(mut self, tail: Duration) -> Self {
        self.tail = tail;
        self
    }

    /// Sets the audio between two key presses.
    pub fn gap(mut self, gap: Duration) -> Self {
        self.gap = gap;
        self
    }

    /// How long the stream lasts, from the first to one frame after the last packet.
    pub fn duration(&self) -> Duration {
        self.packets()
            .last()
            .map_or(Duration::ZERO, |p| p.at + Duration::from_millis(20))
    }

    /// Every packet of the stream in sending order.
    pub fn packets(&self) -> Vec<TimedPacket> {
        let mut out = Packets {
            stream: self,
            seq: self.first_seq,
            now: Duration::ZERO,
            audio_counter: 0,
            packets: Vec::new(),
        };
        out.audio(self.lead);
        let steps = (self.event.as_millis() / 20).max(2) as u16;
        for (i, key) in self.keys.chars().enumerate() {
            if i > 0 {
                out.audio(self.gap);
            }
            let code = event_code(key).expect("keys are checked in new()");
            let start_ts = out.timestamp();
            // Growing packets: durations 160, 320, ... up to (steps - 1) * 160.
            for step in 1..steps {
                let event = Event {
                    code,
                    end: false,
                    volume: 10,
                    duration: step * 160,
                };
                out.push(step == 1, self.event_pt, start_ts, &event.to_bytes());
            }
            // The end packet, three times.
            let event = Event {
                code,
                end: true,
                volume: 10,
                duration: steps * 160,
            };
            for _ in 0..3 {
                out.push(false, self.event_pt, start_ts, &event.to_bytes());
            }
        }
        out.audio(self.tail);
        out.packets
    }

    /// Writes the stream as a classic pcap (Ethernet, IPv4, UDP) from `src` to `dst`.
    /// sipp replaces both addresses when replaying; they only need to be plausible.
    pub fn write_pcap(&self, path: &Path, src: SocketAddrV4, dst: SocketAddrV4) {
        let bytes = pcap_bytes(&self.packets(), src, dst);
        std::fs::write(path, bytes).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
    }

    /// Writes the stream with placeholder addresses (sipp rewrites them anyway).
    pub fn write(&self, path: &Path) {
        self.write_pcap(
            path,
            SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 1), 16000),
            SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 2), 20000),
        );
    }
}

/// Accumulates packets 20 ms apart with continuous sequence numbers.
struct Packets<'a> {
    stream: &'a CallerStream,
    seq: u16,
    now: Duration,
    audio_counter: u32,
    packets: Vec<TimedPacket>,
}

impl Packets<'_> {
    /// The RTP timestamp of the current wall time (8 kHz clock).
    fn timestamp(&self) -> u32 {
        let samples = self.now.as_millis() as u32 * 8;
        self.stream.first_timestamp.wrapping_add(samples)
    }

    /// Appends a packet at the current time and advances time by one frame.
    fn push(&mut self, marker: bool, payload_type: u8, timestamp: u32, payload: &[u8]) {
        let rtp = Rtp {
            marker,
            payload_type,
            seq: self.seq,
            timestamp,
            ssrc: self.stream.ssrc,
            payload,
        };
        self.packets.push(TimedPacket {
            at: self.now,
            rtp: rtp.to_bytes(),
        });
        self.seq = self.seq.wrapping_add(1);
        self.now += Duration::from_millis(20);
    }

    /// Appends audio frames covering `length`; the very first packet of the stream gets the marker.
    fn audio(&mut self, length: Duration) {
        let end = self.now + length;
        while self.now < end {
            let frame = (self.stream.audio)(self.audio_counter);
            let first = self.packets.is_empty();
            self.push(first, self.stream.audio_pt, self.timestamp(), &frame);
            self.audio_counter += 1;
        }
    }
}

/// A classic pcap file (magic a1b2c3d4, microsecond timestamps, linktype 1 = Ethernet) holding
/// each packet's RTP in Ethernet/IPv4/UDP, with a correct IPv4 header checksum and UDP checksum 0
/// (allowed for IPv4: "not computed").
pub fn pcap_bytes(packets: &[TimedPacket], src: SocketAddrV4, dst: SocketAddrV4) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes()); // version major
    out.extend_from_slice(&4u16.to_le_bytes()); // version minor
    out.extend_from_slice(&0i32.to_le_bytes()); // thiszone
    out.extend_from_slice(&0u32.to_le_bytes()); // sigfigs
    out.extend_from_slice(&65_535u32.to_le_bytes()); // snaplen
    out.extend_from_slice(&1u32.to_le_bytes()); // linktype Ethernet
    let base_secs = 1_700_000_000u32;
    for (index, packet) in packets.iter().enumerate() {
        let frame = ethernet_ipv4_udp(&packet.rtp, src, dst, index as u16);
        out.extend_from_slice(&(base_secs + packet.at.as_secs() as u32).to_le_bytes());
        out.extend_from_slice(&packet.at.subsec_micros().to_le_bytes());
        out.extend_from_slice(&(frame.len() as u32).to_le_bytes()); // captured length
        out.extend_from_slice(&(frame.len() as u32).to_le_bytes()); // original length
        out.extend_from_slice(&frame);
    }
    out
}

/// One Ethernet frame carrying `payload` in UDP over IPv4.
fn ethernet_ipv4_udp(payload: &[u8], src: SocketAddrV4, dst: SocketAddrV4, id: u16) -> Vec<u8> {
    let udp_len = 8 + payload.len() as u16;
    let ip_len = 20 + udp_len;
    let mut frame = Vec::with_capacity(14 + usize::from(ip_len));
    frame.extend_from_slice(&[0x02, 0, 0, 0, 0, 0x02]); // destination MAC (locally administered)
    frame.extend_from_slice(&[0x02, 0, 0, 0, 0, 0x01]); // source MAC
    frame.extend_from_slice(&0x0800u16.to_be_bytes()); // IPv4

    let mut ip = [0u8; 20];
    ip[0] = 0x45; // version 4, 5-word header
    ip[2..4].copy_from_slice(&ip_len.to_be_bytes());
    ip[4..6].copy_from_slice(&id.to_be_bytes());
    ip[6] = 0x40; // don't fragment
    ip[8] = 64; // TTL
    ip[9] = 17; // UDP
    ip[12..16].copy_from_slice(&src.ip().octets());
    ip[16..20].copy_from_slice(&dst.ip().octets());
    let checksum = ipv4_checksum(&ip);
    ip[10..12].copy_from_slice(&checksum.to_be_bytes());
    frame.extend_from_slice(&ip);

    frame.extend_from_slice(&src.port().to_be_bytes());
    frame.extend_from_slice(&dst.port().to_be_bytes());
    frame.extend_from_slice(&udp_len.to_be_bytes());
    frame.extend_from_slice(&0u16.to_be_bytes()); // checksum not computed
    frame.extend_from_slice(payload);
    frame
}

/// The one's-complement sum over the header with its checksum field zero.
fn ipv4_checksum(header: &[u8; 20]) -> u16 {
    let sum: u32 = header
        .chunks(2)
        .map(|pair| u32::from(u16::from_be_bytes([pair[0], pair[1]])))
        .sum();
    let folded = (sum & 0xffff) + (sum >> 16);
    !(((folded & 0xffff) + (folded >> 16)) as u16)
}
