//! SRTP (RFC 3711) with the AES_CM_128_HMAC_SHA1_80 suite, for the trunk leg when the
//! provider offers SDES keys (RFC 4568) or the trunk requires encrypted media.
//!
//! One [`SrtpContext`] protects or unprotects one direction of one leg. Everything happens in
//! the caller's buffers: the session keys are derived once, the AES key schedule and the keyed
//! HMAC state are kept, and each packet costs a few AES blocks and one HMAC, without allocating
//! (the HMAC state is copied on the stack). SRTCP is not needed: dialin sends no RTCP.

use aes::cipher::generic_array::GenericArray;
use aes::cipher::{BlockEncrypt, KeyInit};
use aes::Aes128;
use hmac::{Hmac, Mac};
use sha1::Sha1;

/// Bytes of a master key.
pub const MASTER_KEY_LEN: usize = 16;
/// Bytes of a master salt.
pub const MASTER_SALT_LEN: usize = 14;
/// Bytes of the SDES inline key (`key || salt`).
pub const INLINE_KEY_LEN: usize = MASTER_KEY_LEN + MASTER_SALT_LEN;
/// Bytes of the authentication tag (HMAC-SHA1 truncated to 80 bits).
pub const TAG_LEN: usize = 10;

type HmacSha1 = Hmac<Sha1>;

/// Why a packet was not protected or accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SrtpError {
    /// Shorter than an RTP header plus tag, or a header that runs past the end.
    #[error("not an SRTP packet")]
    Malformed,
    /// The buffer has no room for the tag.
    #[error("no room for the authentication tag")]
    NoRoom,
    /// The tag does not match: forged, corrupted, plain RTP or the wrong key.
    #[error("authentication failed")]
    AuthFailed,
    /// A packet index seen before, or too old to tell.
    #[error("replayed packet")]
    Replay,
}

/// The session keys of one direction (RFC 3711 §4.3, key derivation rate 0).
struct SessionKeys {
    /// The AES-128 key schedule of the session encryption key.
    cipher: Aes128,
    /// HMAC-SHA1 keyed with the session authentication key (copied per packet).
    mac: HmacSha1,
    /// The session salt.
    salt: [u8; MASTER_SALT_LEN],
}

/// AES in counter mode: XORs the keystream starting at counter block `iv` into `data`.
fn aes_cm(cipher: &Aes128, iv: [u8; 16], data: &mut [u8]) {
    let start = u128::from_be_bytes(iv);
    for (i, chunk) in data.chunks_mut(16).enumerate() {
        let mut block = GenericArray::from(start.wrapping_add(i as u128).to_be_bytes());
        cipher.encrypt_block(&mut block);
        for (d, k) in chunk.iter_mut().zip(block.iter()) {
            *d ^= k;
        }
    }
}

/// The session encryption key, authentication key and salt (labels 0, 1, 2 of the AES-CM PRF).
fn derive_raw(
    master_key: &[u8; MASTER_KEY_LEN],
    master_salt: &[u8; MASTER_SALT_LEN],
) -> ([u8; 16], [u8; 20], [u8; MASTER_SALT_LEN]) {
    let master = Aes128::new(GenericArray::from_slice(master_key));
    let prf = |label: u8, out: &mut [u8]| {
        let mut iv = [0u8; 16];
        iv[..MASTER_SALT_LEN].copy_from_slice(master_salt);
        iv[7] ^= label;
        out.fill(0);
        aes_cm(&master, iv, out);
    };
    let (mut key, mut auth, mut salt) = ([0u8; 16], [0u8; 20], [0u8; MASTER_SALT_LEN]);
    prf(0x00, &mut key);
    prf(0x01, &mut auth);
    prf(0x02, &mut salt);
    (key, auth, salt)
}

impl SessionKeys {
    /// Derives the session keys from a master key and salt.
    fn derive(master_key: &[u8; MASTER_KEY_LEN], master_salt: &[u8; MASTER_SALT_LEN]) -> Self {
        let (key, auth, salt) = derive_raw(master_key, master_salt);
        SessionKeys {
            cipher: Aes128::new(GenericArray::from_slice(&key)),
            mac: <HmacSha1 as Mac>::new_from_slice(&auth).expect("HMAC takes any key length"),
            salt,
        }
    }

    /// The counter block for packet `index` of `ssrc` (RFC 3711 §4.1.1).
    fn iv(&self, ssrc: u32, index: u64) -> [u8; 16] {
        let mut iv = [0u8; 16];
        iv[..MASTER_SALT_LEN].copy_from_slice(&self.salt);
        for (i, b) in ssrc.to_be_bytes().iter().enumerate() {
            iv[4 + i] ^= b;
        }
        for (i, b) in index.to_be_bytes()[2..].iter().enumerate() {
            iv[8 + i] ^= b;
        }
        iv
    }

    /// The keyed MAC over `authenticated` followed by the rollover counter.
    fn mac(&self, authenticated: &[u8], roc: u32) -> HmacSha1 {
        let mut mac = self.mac.clone();
        mac.update(authenticated);
        mac.update(&roc.to_be_bytes());
        mac
    }
}

/// The RTP header length of `packet` (fixed header, CSRCs, extension), if it fits.
fn header_len(packet: &[u8]) -> Option<usize> {
    if packet.len() < 12 || packet[0] >> 6 != 2 {
        return None;
    }
    let mut len = 12 + 4 * usize::from(packet[0] & 0x0f);
    if packet[0] & 0x10 != 0 {
        let words = packet.get(len + 2..len + 4)?;
        len += 4 + 4 * usize::from(u16::from_be_bytes([words[0], words[1]]));
    }
    (len <= packet.len()).then_some(len)
}

fn seq_ssrc(packet: &[u8]) -> (u16, u32) {
    (
        u16::from_be_bytes([packet[2], packet[3]]),
        u32::from_be_bytes([packet[8], packet[9], packet[10], packet[11]]),
    )
}

/// One direction of SRTP: the keys and the packet-index state of the stream.
pub struct SrtpContext {
    /// Session keys.
    keys: SessionKeys,
    /// The SSRC the index state belongs to; a new SSRC starts a new state.
    ssrc: Option<u32>,
    /// Rollover counter (upper 32 bits of the packet index).
    roc: u32,
    /// Highest sequence number seen (sent or authenticated).
    last_seq: u16,
    /// Replay window: bit i set = index `highest - i` was accepted.
    window: u64,
}

impl SrtpContext {
    /// A context for the SDES inline key `key || salt`.
    pub fn new(inline_key: &[u8; INLINE_KEY_LEN]) -> SrtpContext {
        let key: &[u8; MASTER_KEY_LEN] = inline_key[..MASTER_KEY_LEN]
            .try_into()
            .expect("the slice has the key length");
        let salt: &[u8; MASTER_SALT_LEN] = inline_key[MASTER_KEY_LEN..]
            .try_into()
            .expect("the slice has the salt length");
        SrtpContext {
            keys: SessionKeys::derive(key, salt),
            ssrc: None,
            roc: 0,
            last_seq: 0,
            window: 0,
        }
    }

    /// Protects the RTP packet in `buf[..len]` in place and appends the tag; returns the new
    /// length. `buf` needs [`TAG_LEN`] spare bytes.
    pub fn protect(&mut self, buf: &mut [u8], len: usize) -> Result<usize, SrtpError> {
        let header =
            header_len(buf.get(..len).ok_or(SrtpError::Malformed)?).ok_or(SrtpError::Malformed)?;
        if buf.len() < len + TAG_LEN {
            return Err(SrtpError::NoRoom);
        }
        let (seq, ssrc) = seq_ssrc(buf);
        if self.ssrc != Some(ssrc) {
            (self.ssrc, self.roc, self.last_seq) = (Some(ssrc), 0, seq);
        } else if seq < self.last_seq && self.last_seq - seq > 0x8000 {
            // The sequence number wrapped.
            self.roc = self.roc.wrapping_add(1);
            self.last_seq = seq;
        } else if seq > self.last_seq && seq - self.last_seq < 0x8000 {
            self.last_seq = seq;
        }
        let index = (u64::from(self.roc) << 16) | u64::from(seq);
        aes_cm(
            &self.keys.cipher,
            self.keys.iv(ssrc, index),
            &mut buf[header..len],
        );
        let tag = self.keys.mac(&buf[..len], self.roc).finalize().into_bytes();
        buf[len..len + TAG_LEN].copy_from_slice(&tag[..TAG_LEN]);
        Ok(len + TAG_LEN)
    }

    /// Checks and decrypts the SRTP packet in `buf[..len]` in place; returns the RTP length.
    /// A packet that fails is left unusable and must be dropped.
    pub fn unprotect(&mut self, buf: &mut [u8], len: usize) -> Result<usize, SrtpError> {
        let packet = buf.get(..len).ok_or(SrtpError::Malformed)?;
        let body_len = len.checked_sub(TAG_LEN).ok_or(SrtpError::Malformed)?;
        let header = header_len(&packet[..body_len]).ok_or(SrtpError::Malformed)?;
        let (seq, ssrc) = seq_ssrc(packet);
        let fresh = self.ssrc != Some(ssrc);
        // RFC 3711 Appendix A: guess the rollover counter from the highest sequence seen.
        let roc = if fresh {
            0
        } else if self.last_seq < 0x8000 {
            if seq > self.last_seq && seq - self.last_seq > 0x8000 {
                self.roc.wrapping_sub(1)
            } else {
                self.roc
            }
        } else if self.last_seq - 0x8000 > seq {
            self.roc.wrapping_add(1)
        } else {
            self.roc
        };
        let index = (u64::from(roc) << 16) | u64::from(seq);
        let highest = (u64::from(self.roc) << 16) | u64::from(self.last_seq);
        if !fresh && index <= highest {
            let age = highest - index;
            if age >= 64 || self.window & (1 << age) != 0 {
                return Err(SrtpError::Replay);
            }
        }
        self.keys
            .mac(&packet[..body_len], roc)
            .verify_truncated_left(&packet[body_len..len])
            .map_err(|_| SrtpError::AuthFailed)?;
        aes_cm(
            &self.keys.cipher,
            self.keys.iv(ssrc, index),
            &mut buf[header..body_len],
        );
        // Authenticated: move the index state.
        if fresh {
            (self.ssrc, self.roc, self.last_seq, self.window) = (Some(ssrc), roc, seq, 1);
        } else if index > highest {
            let shift = index - highest;
            self.window = if shift >= 64 {
                1
            } else {
                (self.window << shift) | 1
            };
            (self.roc, self.last_seq) = (roc, seq);
        } else {
            self.window |= 1 << (highest - index);
        }
        Ok(body_len)
    }
}

#[cfg(test)]
#[path = "srtp_tests.rs"]
mod tests;
