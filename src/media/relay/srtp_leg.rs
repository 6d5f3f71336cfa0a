//! SRTP on the caller leg in the driver: decrypting what the caller sends, encrypting what
//! dialin sends it, with the keys the SDES exchange (`sip::sdes`) agreed. Per packet: no
//! allocation (one scratch buffer per call) and no log line; packets that fail authentication
//! (including plain RTP) are dropped.

use crate::media::srtp::{SrtpContext, INLINE_KEY_LEN, TAG_LEN};

/// The SRTP state of a call's trunk leg.
pub(crate) struct SrtpLeg {
    /// Decrypts the caller's packets (its key).
    inbound: SrtpContext,
    /// Encrypts our packets (our key).
    outbound: SrtpContext,
    /// Where outgoing packets are encrypted (the relay's buffers are shared with decoding).
    scratch: Box<[u8]>,
}

impl SrtpLeg {
    /// The leg for the negotiated keys: the caller's (`remote`) and ours (`local`);
    /// `max_packet` is the largest RTP packet sent.
    pub fn new(
        remote: &[u8; INLINE_KEY_LEN],
        local: &[u8; INLINE_KEY_LEN],
        max_packet: usize,
    ) -> SrtpLeg {
        SrtpLeg {
            inbound: SrtpContext::new(remote),
            outbound: SrtpContext::new(local),
            scratch: vec![0u8; max_packet + TAG_LEN].into_boxed_slice(),
        }
    }

    /// Authenticates and decrypts the caller's packet in place; `None` when it must be dropped.
    pub fn unprotect(&mut self, buf: &mut [u8], len: usize) -> Option<usize> {
        self.inbound.unprotect(buf, len).ok()
    }

    /// Encrypts a copy of `packet`; `None` when it is not RTP (then nothing is sent).
    pub fn protect(&mut self, packet: &[u8]) -> Option<&[u8]> {
        let room = self.scratch.get_mut(..packet.len())?;
        room.copy_from_slice(packet);
        let len = self
            .outbound
            .protect(&mut self.scratch, packet.len())
            .ok()?;
        Some(&self.scratch[..len])
    }

    /// The caller's re-INVITE brought a new key (the core noticed): decrypt with it.
    pub fn rekey(&mut self, key: [u8; INLINE_KEY_LEN]) {
        self.inbound = SrtpContext::new(&key);
    }
}
