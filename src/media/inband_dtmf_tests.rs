//! The detector against ITU-T Q.24's acceptance points, on synthesised tones sent through
//! both G.711 laws. (Talk-off on speech runs in `tests/it/inband.rs`: it needs espeak-ng.)

use super::*;
use crate::media::g711::{self, Law};

/// The frequencies of `key`: (row, column).
fn freqs(key: char) -> (f32, f32) {
    for (r, row) in KEYS.iter().enumerate() {
        if let Some(c) = row.iter().position(|k| *k == key) {
            return (ROWS[r], COLS[c]);
        }
    }
    panic!("not a key: {key}");
}

/// Amplitude of a sine at `dbm0`.
fn amplitude(dbm0: f32) -> f32 {
    (2.0 * DBM0_POWER * 10f32.powf(dbm0 / 10.0)).sqrt()
}

/// A signal built piece by piece, with a running phase so tones join without clicks.
#[derive(Default)]
struct Signal {
    samples: Vec<i16>,
}

impl Signal {
    /// `ms` of the two tones at the given levels and frequency factors.
    fn tones(&mut self, (f1, l1): (f32, f32), (f2, l2): (f32, f32), ms: u32) -> &mut Self {
        let (a1, a2) = (amplitude(l1), amplitude(l2));
        let start = self.samples.len();
        for n in 0..(ms * 8) as usize {
            let t = (start + n) as f32 / RATE;
            let x = a1 * (2.0 * std::f32::consts::PI * f1 * t).sin()
                + a2 * (2.0 * std::f32::consts::PI * f2 * t).sin();
            self.samples.push(x.clamp(-32767.0, 32767.0) as i16);
        }
        self
    }

    /// A key at −10 dBm0 per tone, exactly on frequency.
    fn key(&mut self, key: char, ms: u32) -> &mut Self {
        let (r, c) = freqs(key);
        self.tones((r, -10.0), (c, -10.0), ms)
    }

    fn silence(&mut self, ms: u32) -> &mut Self {
        self.samples
            .extend(std::iter::repeat_n(0, (ms * 8) as usize));
        self
    }

    /// White noise at `dbm0`, from a fixed xorshift sequence.
    fn noise(&mut self, dbm0: f32, ms: u32) -> &mut Self {
        let a = amplitude(dbm0) * 1.2;
        let mut s = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..(ms * 8) {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            let u = (s >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0;
            self.samples.push((u * a) as i16);
        }
        self
    }
}

/// What the detector hears in `samples` after G.711 `law`, fed in 20 ms packets.
fn detect(law: Law, samples: &[i16]) -> String {
    let mut d = InbandDetector::new();
    let mut out = String::new();
    let (mut coded, mut pcm) = ([0u8; 160], [0i16; 160]);
    for chunk in samples.chunks(160) {
        g711::encode(law, chunk, &mut coded[..chunk.len()]);
        g711::decode(law, &coded[..chunk.len()], &mut pcm[..chunk.len()]);
        if let Some(k) = d.push(&pcm[..chunk.len()]) {
            out.push(k.as_char());
        }
    }
    out
}

fn both_laws(samples: &[i16]) -> [String; 2] {
    [detect(Law::Ulaw, samples), detect(Law::Alaw, samples)]
}

const ALL_KEYS: &str = "123A456B789C*0#D";

#[test]
fn every_key_is_heard_once_in_both_laws() {
    let mut s = Signal::default();
    s.silence(30);
    for k in ALL_KEYS.chars() {
        s.key(k, 60).silence(60);
    }
    assert_eq!(both_laws(&s.samples), [ALL_KEYS, ALL_KEYS]);
}

#[test]
fn forty_ms_tones_and_forty_ms_pauses_are_heard_at_every_alignment() {
    // The same key three times: only the pauses tell the presses apart.
    for offset in 0..13 {
        let mut s = Signal::default();
        s.silence(offset);
        s.key('5', 40)
            .silence(40)
            .key('5', 40)
            .silence(40)
            .key('5', 40);
        s.silence(40);
        assert_eq!(both_laws(&s.samples), ["555", "555"], "offset {offset} ms");
    }
}

#[test]
fn tones_shorter_than_twenty_ms_are_not_keys() {
    let mut s = Signal::default();
    for k in "1397".chars() {
        s.silence(100).key(k, 20);
    }
    s.silence(100);
    assert_eq!(both_laws(&s.samples), ["", ""]);
}

#[test]
fn a_dropout_of_ten_ms_does_not_split_a_press() {
    let mut s = Signal::default();
    s.silence(20)
        .key('8', 60)
        .silence(10)
        .key('8', 60)
        .silence(60);
    assert_eq!(both_laws(&s.samples), ["8", "8"]);
}

/// Every key with both tones moved by `factor` of their frequency.
fn shifted(factor: f32) -> Vec<i16> {
    let mut s = Signal::default();
    for k in ALL_KEYS.chars() {
        let (r, c) = freqs(k);
        s.silence(60)
            .tones((r * factor, -10.0), (c * factor, -10.0), 60);
    }
    s.silence(60);
    s.samples
}

#[test]
fn tones_within_one_and_a_half_percent_are_accepted() {
    for factor in [0.985, 1.015] {
        assert_eq!(
            both_laws(&shifted(factor)),
            [ALL_KEYS, ALL_KEYS],
            "×{factor}"
        );
    }
}

#[test]
fn tones_three_and_a_half_percent_off_are_rejected() {
    for factor in [0.965, 1.035] {
        assert_eq!(both_laws(&shifted(factor)), ["", ""], "×{factor}");
    }
    // One tone off is enough.
    let mut s = Signal::default();
    for k in ALL_KEYS.chars() {
        let (r, c) = freqs(k);
        s.silence(60).tones((r * 1.035, -10.0), (c, -10.0), 60);
        s.silence(60).tones((r, -10.0), (c * 0.965, -10.0), 60);
    }
    assert_eq!(both_laws(&s.samples), ["", ""]);
}

#[test]
fn twist_within_limits_is_accepted_and_beyond_them_rejected() {
    let key = |row_db: f32, col_db: f32| {
        let mut s = Signal::default();
        for k in ALL_KEYS.chars() {
            let (r, c) = freqs(k);
            s.silence(60).tones((r, row_db), (c, col_db), 60);
        }
        s.silence(60);
        both_laws(&s.samples)
    };
    // Row tone 7 dB above the column tone (normal twist), column 3 dB above (reverse).
    assert_eq!(key(-6.0, -13.0), [ALL_KEYS, ALL_KEYS]);
    assert_eq!(key(-12.0, -9.0), [ALL_KEYS, ALL_KEYS]);
    // 10 dB normal, 6 dB reverse: too much.
    assert_eq!(key(-6.0, -16.0), ["", ""]);
    assert_eq!(key(-14.0, -8.0), ["", ""]);
}

#[test]
fn weak_tones_are_heard_down_to_minus_twenty_six_dbm0_and_not_below_minus_thirty_four() {
    let level = |db: f32| {
        let mut s = Signal::default();
        s.silence(60)
            .tones((770.0, db), (1336.0, db), 60)
            .silence(60);
        both_laws(&s.samples)
    };
    assert_eq!(level(-26.0), ["5", "5"]);
    assert_eq!(level(-34.0), ["", ""]);
}

#[test]
fn keys_are_heard_through_moderate_noise_and_noise_alone_is_no_key() {
    let mut s = Signal::default();
    s.noise(-40.0, 200);
    let noisy = |s: &mut Signal, k: char| {
        let (r, c) = freqs(k);
        let start = s.samples.len();
        s.tones((r, -10.0), (c, -10.0), 60);
        let mut n = Signal::default();
        n.noise(-30.0, 60);
        for (x, y) in s.samples[start..].iter_mut().zip(&n.samples) {
            *x = x.saturating_add(*y);
        }
    };
    for k in "2580".chars() {
        noisy(&mut s, k);
        s.noise(-40.0, 60);
    }
    assert_eq!(both_laws(&s.samples), ["2580", "2580"]);
    let mut quiet = Signal::default();
    quiet.noise(-10.0, 5_000);
    assert_eq!(both_laws(&quiet.samples), ["", ""]);
}

#[test]
fn a_single_tone_is_no_key() {
    let mut s = Signal::default();
    for f in ROWS.iter().chain(COLS.iter()) {
        s.silence(60).tones((*f, -6.0), (*f, -60.0), 200);
    }
    // Dial tone (350 + 440 Hz) and a ringback (440 + 480 Hz), long.
    s.tones((350.0, -10.0), (440.0, -10.0), 1000);
    s.tones((440.0, -10.0), (480.0, -10.0), 1000);
    assert_eq!(both_laws(&s.samples), ["", ""]);
}
