//! Prompts ready to send, and their pacing.
//!
//! Each prompt is encoded in both G.711 laws once at startup ([`EncodedPrompt`]), so playing it
//! to a call only copies 160-byte frames. [`PromptPlayer`] is the pure pacing: frame `k` of a
//! prompt started at `t` is due at `t + k × 20 ms`; the driver asks for due frames and sleeps
//! until [`PromptPlayer::next_deadline`].

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::media::g711::{self, Law};
use crate::media::wav::{parse_wav, WavError};

/// Bytes (and samples) in one 20 ms G.711 frame at 8 kHz.
pub const FRAME_BYTES: usize = 160;

/// Duration of one frame: the packet interval dialin sends at.
pub const FRAME_DURATION: Duration = Duration::from_millis(20);

/// How far behind schedule the player lets a slow caller fall before sliding the schedule; see
/// [`PromptPlayer::poll_frame`].
pub const MAX_LAG: Duration = Duration::from_millis(200);

/// A prompt encoded in both laws, padded with silence to whole frames. Cheap to clone (two
/// `Arc`s), so every call can hold the prompts it plays.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EncodedPrompt {
    /// µ-law bytes, a multiple of [`FRAME_BYTES`] long.
    ulaw: Arc<[u8]>,
    /// A-law bytes, a multiple of [`FRAME_BYTES`] long.
    alaw: Arc<[u8]>,
}

impl EncodedPrompt {
    /// Encodes 8 kHz samples in both laws, padding the last frame with silence.
    pub fn from_samples(samples: &[i16]) -> EncodedPrompt {
        let len = samples.len().div_ceil(FRAME_BYTES) * FRAME_BYTES;
        let encode = |law: Law| -> Arc<[u8]> {
            let mut bytes = vec![law.silence_byte(); len];
            g711::encode(law, samples, &mut bytes[..samples.len()]);
            bytes.into()
        };
        EncodedPrompt {
            ulaw: encode(Law::Ulaw),
            alaw: encode(Law::Alaw),
        }
    }

    /// Loads and encodes a WAV file's bytes (8000 Hz mono 16-bit PCM, see [`parse_wav`]).
    pub fn from_wav(bytes: &[u8]) -> Result<EncodedPrompt, WavError> {
        Ok(EncodedPrompt::from_samples(&parse_wav(bytes)?))
    }

    /// Number of 20 ms frames.
    pub fn frames(&self) -> usize {
        self.ulaw.len() / FRAME_BYTES
    }

    /// Playing time.
    pub fn duration(&self) -> Duration {
        FRAME_DURATION * self.frames() as u32
    }

    /// All encoded bytes in `law`.
    pub fn bytes(&self, law: Law) -> &[u8] {
        match law {
            Law::Ulaw => &self.ulaw,
            Law::Alaw => &self.alaw,
        }
    }

    /// Frame `k` in `law`, or `None` past the end.
    pub fn frame(&self, law: Law, k: usize) -> Option<&[u8]> {
        self.bytes(law).get(k * FRAME_BYTES..(k + 1) * FRAME_BYTES)
    }
}

/// One frame of digital silence in `law`, which the driver sends when no prompt plays.
pub fn silence_frame(law: Law) -> &'static [u8; FRAME_BYTES] {
    static ULAW: [u8; FRAME_BYTES] = [0xFF; FRAME_BYTES];
    static ALAW: [u8; FRAME_BYTES] = [0xD5; FRAME_BYTES];
    match law {
        Law::Ulaw => &ULAW,
        Law::Alaw => &ALAW,
    }
}

/// The prompt being played.
#[derive(Clone, Debug)]
struct Playing {
    /// What plays.
    prompt: EncodedPrompt,
    /// When frame 0 was due (moves later if the caller falls more than [`MAX_LAG`] behind).
    start: Instant,
    /// The next frame to hand out.
    next: usize,
}

/// Paces one prompt at a time for one leg. Pure: the caller passes the time and sends the
/// frames; nothing is allocated per frame.
#[derive(Clone, Debug)]
pub struct PromptPlayer {
    /// The leg's law, fixed at answer time.
    law: Law,
    /// The current prompt, until it has finished or was stopped.
    playing: Option<Playing>,
    /// A prompt finished and [`PromptPlayer::poll_finished`] has not reported it yet.
    finished: bool,
}

impl PromptPlayer {
    /// An idle player for a leg using `law`.
    pub fn new(law: Law) -> PromptPlayer {
        PromptPlayer {
            law,
            playing: None,
            finished: false,
        }
    }

    /// Starts `prompt` now, replacing whatever played (which then never reports finished, and
    /// a finish not yet polled is discarded: the flow has moved on).
    pub fn start(&mut self, prompt: EncodedPrompt, now: Instant) {
        self.playing = Some(Playing {
            prompt,
            start: now,
            next: 0,
        });
        self.finished = false;
    }

    /// Stops playing; a stopped prompt does not report finished.
    pub fn stop(&mut self) {
        self.playing = None;
        self.finished = false;
    }

    /// Whether a prompt is playing (until the end of its last frame's playing time).
    pub fn is_playing(&self) -> bool {
        self.playing.is_some()
    }

    /// The next frame if it is due at `now`; call until `None`, then sleep until
    /// [`PromptPlayer::next_deadline`].
    ///
    /// Late callers get every frame, never a skipped one: all frames due by `now` come back to
    /// back. If the caller is more than [`MAX_LAG`] behind, the schedule slides later so that no
    /// more than that is sent in one burst (the prompt then ends correspondingly later). The
    /// prompt finishes when the playing time of its last frame has passed; that is detected here
    /// and reported by [`PromptPlayer::poll_finished`].
    pub fn poll_frame(&mut self, now: Instant) -> Option<&[u8]> {
        let playing = self.playing.as_ref()?;
        let frames = playing.prompt.frames();
        let next = playing.next;
        let due = playing.start + FRAME_DURATION * next as u32;
        if now < due {
            return None;
        }
        if next >= frames {
            // `due` is now the end of the last frame's playing time.
            self.playing = None;
            self.finished = true;
            return None;
        }
        let playing = self.playing.as_mut().expect("checked to be playing above");
        let lag = now - due;
        if lag > MAX_LAG {
            playing.start += lag - MAX_LAG;
        }
        playing.next += 1;
        playing.prompt.frame(self.law, next)
    }

    /// When [`PromptPlayer::poll_frame`] next has something to do (a frame or the finish);
    /// `None` when idle. May be in the past if the caller is behind.
    pub fn next_deadline(&self) -> Option<Instant> {
        let playing = self.playing.as_ref()?;
        Some(playing.start + FRAME_DURATION * playing.next as u32)
    }

    /// True exactly once after a started prompt has finished playing.
    #[must_use]
    pub fn poll_finished(&mut self) -> bool {
        std::mem::take(&mut self.finished)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// A prompt whose frame `k` (k < 127) is all µ-law code `k` (decode/encode is exact).
    fn numbered(frames: usize) -> EncodedPrompt {
        let samples: Vec<i16> = (0..frames * FRAME_BYTES)
            .map(|i| g711::ulaw_decode((i / FRAME_BYTES) as u8))
            .collect();
        EncodedPrompt::from_samples(&samples)
    }

    fn frame_no(frame: &[u8]) -> usize {
        frame[0] as usize
    }

    #[test]
    fn encodes_both_laws_and_pads_with_silence() {
        let samples = vec![1000i16; FRAME_BYTES + 1];
        let p = EncodedPrompt::from_samples(&samples);
        assert_eq!((p.frames(), p.duration()), (2, ms(40)));
        for law in [Law::Ulaw, Law::Alaw] {
            let bytes = p.bytes(law);
            assert_eq!(bytes.len(), 2 * FRAME_BYTES);
            let mut want = vec![0u8; FRAME_BYTES + 1];
            g711::encode(law, &samples, &mut want);
            assert_eq!(&bytes[..FRAME_BYTES + 1], &want[..]);
            assert!(bytes[FRAME_BYTES + 1..]
                .iter()
                .all(|&b| b == law.silence_byte()));
            assert_eq!(p.frame(law, 1), Some(&bytes[FRAME_BYTES..]));
            assert_eq!(p.frame(law, 2), None);
            assert!(silence_frame(law).iter().all(|&b| b == law.silence_byte()));
        }
        assert_eq!(EncodedPrompt::from_samples(&[]).frames(), 0);
    }

    /// Steps of (ms after start, frames expected from polling until None, finished?, deadline).
    fn run(player: &mut PromptPlayer, t0: Instant, steps: &[(u64, &[usize], bool, Option<u64>)]) {
        for &(at, want_frames, want_finished, want_deadline) in steps {
            let now = t0 + ms(at);
            let mut got = Vec::new();
            while let Some(f) = player.poll_frame(now) {
                assert_eq!(f.len(), FRAME_BYTES);
                got.push(frame_no(f));
            }
            assert_eq!(got, want_frames, "frames at {at} ms");
            assert_eq!(player.poll_finished(), want_finished, "finished at {at} ms");
            assert_eq!(
                player.next_deadline(),
                want_deadline.map(|d| t0 + ms(d)),
                "deadline at {at} ms"
            );
        }
    }

    #[test]
    fn paces_frames_and_reports_finish_once() {
        let t0 = Instant::now();
        let mut player = PromptPlayer::new(Law::Ulaw);
        assert_eq!((player.next_deadline(), player.is_playing()), (None, false));
        player.start(numbered(3), t0);
        run(
            &mut player,
            t0,
            &[
                (0, &[0], false, Some(20)),
                (19, &[], false, Some(20)),
                (20, &[1], false, Some(40)),
                (45, &[2], false, Some(60)),
                (59, &[], false, Some(60)),
                (60, &[], true, None),
                (80, &[], false, None),
            ],
        );
        assert!(!player.is_playing());
    }

    #[test]
    fn late_caller_gets_every_frame_back_to_back() {
        let t0 = Instant::now();
        let mut player = PromptPlayer::new(Law::Ulaw);
        player.start(numbered(20), t0);
        run(
            &mut player,
            t0,
            &[
                (65, &[0, 1, 2, 3], false, Some(80)),
                (80, &[4], false, Some(100)),
            ],
        );
    }

    #[test]
    fn very_late_caller_slides_the_schedule() {
        let t0 = Instant::now();
        let mut player = PromptPlayer::new(Law::Ulaw);
        player.start(numbered(30), t0);
        // 1 s late: the schedule slides 800 ms, so frames due up to 200 ms ago (0..=10) burst.
        let burst: Vec<usize> = (0..=10).collect();
        run(
            &mut player,
            t0,
            &[
                (1000, &burst, false, Some(1020)),
                (1020, &[11], false, Some(1040)),
            ],
        );
        // The prompt ends 800 ms later than scheduled at the start.
        let (middle, last): (Vec<usize>, Vec<usize>) = ((12..=20).collect(), (21..30).collect());
        run(
            &mut player,
            t0,
            &[
                (1200, &middle, false, Some(1220)),
                (1380, &last, false, Some(1400)),
                (1400, &[], true, None),
            ],
        );
    }

    #[test]
    fn stop_and_restart_do_not_report_finish() {
        let t0 = Instant::now();
        let mut player = PromptPlayer::new(Law::Alaw);
        player.start(numbered(1), t0);
        assert!(player.poll_frame(t0).is_some());
        player.stop();
        assert!(!player.is_playing());
        assert_eq!(player.poll_frame(t0 + ms(100)), None);
        assert!(!player.poll_finished());
        // Finished but not polled, then replaced: the old finish is dropped.
        player.start(numbered(1), t0);
        assert!(player.poll_frame(t0).is_some());
        assert_eq!(player.poll_frame(t0 + ms(20)), None);
        player.start(numbered(2), t0 + ms(20));
        assert!(!player.poll_finished());
        assert!(player.is_playing());
        let a_law_frame = player.poll_frame(t0 + ms(20)).unwrap();
        assert_eq!(a_law_frame, numbered(2).frame(Law::Alaw, 0).unwrap());
    }
}
