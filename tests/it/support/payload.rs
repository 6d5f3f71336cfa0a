//! Recognisable 20 ms PCMU frames, so a receiver can tell whose audio arrived.
//!
//! A test must tell "the caller's voice reached the conference" from prompts, comfort noise or
//! silence, and "the conference's audio reached the caller" from an echo of the caller. Each
//! frame therefore starts with an 8-byte signature and a 4-byte big-endian frame counter; the
//! other 148 bytes are a quiet 1 kHz tone. Every byte value is a valid µ-law code, so the frames
//! are legal PCMU and sound like a faint beep with clicks.
//!
//! The check relies on dialin relaying G.711 payloads byte for byte (PCMU in, PCMU out). A
//! transcoding path (e.g. PCMA caller ↔ PCMU server) would need a tone detector instead.

/// Payload bytes of one 20 ms PCMU frame at 8 kHz.
pub const FRAME_LEN: usize = 160;

/// Marks audio that the caller (the sipp pcap) sends.
pub const CALLER_SIGNATURE: [u8; 8] = *b"CALLERau";
/// Marks audio that the conference side (a Rust [`super::media::RtpPeer`]) sends.
pub const CONFERENCE_SIGNATURE: [u8; 8] = *b"CONFERau";

/// One period (8 samples) of a 1 kHz sine at about -20 dBm0 in µ-law.
const TONE: [u8; 8] = [0xff, 0xa7, 0x9f, 0xa7, 0x7f, 0x27, 0x1f, 0x27];

/// A frame carrying `signature` and `counter`, the rest a 1 kHz tone.
pub fn signed_frame(signature: [u8; 8], counter: u32) -> [u8; FRAME_LEN] {
    let mut frame = [0u8; FRAME_LEN];
    frame[..8].copy_from_slice(&signature);
    frame[8..12].copy_from_slice(&counter.to_be_bytes());
    for (i, byte) in frame[12..].iter_mut().enumerate() {
        *byte = TONE[(i + 12) % TONE.len()];
    }
    frame
}

/// The caller's `counter`-th audio frame.
pub fn caller_frame(counter: u32) -> [u8; FRAME_LEN] {
    signed_frame(CALLER_SIGNATURE, counter)
}

/// The conference side's `counter`-th audio frame.
pub fn conference_frame(counter: u32) -> [u8; FRAME_LEN] {
    signed_frame(CONFERENCE_SIGNATURE, counter)
}

/// Whether an RTP payload is one of the caller's frames.
pub fn is_caller_audio(payload: &[u8]) -> bool {
    frame_counter(payload, CALLER_SIGNATURE).is_some()
}

/// The counter of a frame carrying `signature`, `None` for any other payload.
pub fn frame_counter(payload: &[u8], signature: [u8; 8]) -> Option<u32> {
    if payload.len() != FRAME_LEN || payload[..8] != signature {
        return None;
    }
    Some(u32::from_be_bytes([
        payload[8],
        payload[9],
        payload[10],
        payload[11],
    ]))
}

/// What a received audio payload is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayloadKind {
    /// A caller frame with its counter.
    Caller(u32),
    /// A conference-side frame with its counter.
    Conference(u32),
    /// Every byte is µ-law silence (0xff or 0x7f).
    Silence,
    /// Anything else: prompts, comfort noise, foreign audio.
    Other,
}

/// Classifies a PCMU payload.
pub fn classify(payload: &[u8]) -> PayloadKind {
    if let Some(n) = frame_counter(payload, CALLER_SIGNATURE) {
        PayloadKind::Caller(n)
    } else if let Some(n) = frame_counter(payload, CONFERENCE_SIGNATURE) {
        PayloadKind::Conference(n)
    } else if payload.iter().all(|&b| b == 0xff || b == 0x7f) {
        PayloadKind::Silence
    } else {
        PayloadKind::Other
    }
}
