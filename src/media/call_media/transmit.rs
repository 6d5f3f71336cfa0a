//! Packets the call generates itself: prompts and silence in the voice menu, the echo test's
//! delayed frames, and digits injected toward the server as RFC 4733 events.

use super::{CallMedia, EchoSlot, Received, ECHO_DELAY, ECHO_SLOTS, FRAME};
use crate::media::dtmf::DtmfEncoder;
use crate::media::prompt::silence_frame;
use crate::media::rtp::{FRAME_SAMPLES, HEADER_LEN};
use std::time::Instant;

impl CallMedia {
    pub(super) fn store_echo(&mut self, now: Instant, payload: &[u8]) {
        let Some(ring) = self.echo.as_mut() else {
            return;
        };
        let mut slot = EchoSlot {
            due: now + ECHO_DELAY,
            len: payload.len(),
            payload: [0; 160],
        };
        slot.payload[..payload.len()].copy_from_slice(payload);
        // Frames fall due in the order they came: only the first one after an empty ring
        // brings the next deadline forward.
        if ring.iter().all(Option::is_none) {
            self.deadline_moved = true;
        }
        ring[self.echo_head] = Some(slot);
        self.echo_head = (self.echo_head + 1) % ECHO_SLOTS;
    }

    pub(super) fn poll_ivr(&mut self, now: Instant, out: &mut [u8]) -> Option<Received> {
        let codec = self.caller.codec;
        let payload: &[u8] = if self.player.is_playing() {
            self.player.poll_frame(now)?
        } else {
            if now < self.next_tick {
                return None;
            }
            silence_frame(codec.law)
        };
        self.next_tick = now + FRAME;
        if !self.caller.sending {
            return None;
        }
        let n = payload.len();
        out[HEADER_LEN..HEADER_LEN + n].copy_from_slice(payload);
        self.caller
            .out
            .next_own(now, FRAME_SAMPLES)
            .write(out, codec.pt);
        Some(Received::ToCaller {
            len: HEADER_LEN + n,
            to: self.caller.remote,
        })
    }

    pub(super) fn poll_echo(&mut self, now: Instant, out: &mut [u8]) -> Option<Received> {
        let ring = self.echo.as_mut()?;
        let (idx, slot) = ring
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.map(|s| (i, s)))
            .filter(|(_, s)| s.due <= now)
            .min_by_key(|(_, s)| s.due)?;
        ring[idx] = None;
        let codec = self.caller.codec;
        out[HEADER_LEN..HEADER_LEN + slot.len].copy_from_slice(&slot.payload[..slot.len]);
        self.caller
            .out
            .next_own(now, slot.len as u32)
            .write(out, codec.pt);
        Some(Received::ToCaller {
            len: HEADER_LEN + slot.len,
            to: self.caller.remote,
        })
    }

    pub(super) fn poll_inject(&mut self, now: Instant, out: &mut [u8]) -> Option<Received> {
        if now < self.next_tick {
            return None;
        }
        let server = self.server.as_mut()?;
        let Some(te) = server.codec.telephone_event_pt else {
            // The server takes no RFC 4733: the digits cannot be sent, so none stay due.
            self.pending_digits = [None; 8];
            return None;
        };
        if self.injecting.is_none() {
            let digit = self.pending_digits[0].take()?;
            self.pending_digits.rotate_left(1);
            self.injecting = Some(DtmfEncoder::new(digit, 100));
        }
        let enc = self.injecting.as_mut()?;
        let Some((event, marker)) = enc.next_packet() else {
            self.injecting = None;
            return None;
        };
        self.next_tick = now + FRAME;
        let mut payload = [0u8; 4];
        event.write(&mut payload);
        out[HEADER_LEN..HEADER_LEN + 4].copy_from_slice(&payload);
        // All packets of one event share its start timestamp.
        server.out.next_event(now, marker).write(out, te);
        Some(Received::ToServer {
            len: HEADER_LEN + 4,
            to: server.remote,
        })
    }
}
