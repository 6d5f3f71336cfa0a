//! In-band DTMF: key presses sent as tones in the caller's audio, by phones and gateways
//! (older ones, analogue adapters) that offer no telephone-event. Without this such a caller
//! hears the PIN prompt three times, is hung up, and counts as a wrong PIN for the guessing
//! protection.
//!
//! [`InbandDetector`] takes decoded 8 kHz audio and looks at it in blocks of [`BLOCK`]
//! samples (12.75 ms) that overlap by half, one every 6.4 ms. A block holds a key when, for
//! the strongest row and the strongest column tone (measured at their exact frequencies):
//! - each is at least [`MIN_TONE_POWER`] (−30 dBm0);
//! - each is [`PEAK_RATIO`] (8 dB) above the other tones of its group;
//! - the twist is within ITU-T Q.24's usual limits: the row tone at most 8 dB above the
//!   column tone, the column tone at most 4 dB above the row tone;
//! - the two carry [`TONE_SHARE`] of the block's power (speech spreads its power wider);
//! - each is within 2.5 % of its nominal frequency, measured from the phase turn between the
//!   block's halves: Q.24 wants ±1.5 % accepted and ±3.5 % rejected, which the power of a
//!   12.75 ms block alone cannot tell apart.
//!
//! A key press is reported once, when [`HITS`] blocks in a row hold its key: a 40 ms tone
//! fills at least four whole blocks wherever it starts, a 20 ms tone at most three. It ends
//! after [`HITS`] blocks without its key: a 40 ms pause separates two presses of the same key,
//! a dropout of 10 ms does not split one. Pure and allocation free: it runs per packet of a
//! caller in the voice menu.

use crate::digit::Digit;

/// Samples per analysis block (12.75 ms at 8 kHz).
pub const BLOCK: usize = 102;
/// The half block: over which the phase turn is measured, and how far apart blocks start.
const HALF: usize = BLOCK / 2;
/// The sample rate the detector works at.
const RATE: f32 = 8000.0;

/// The row (low group) frequencies, Hz.
const ROWS: [f32; 4] = [697.0, 770.0, 852.0, 941.0];
/// The column (high group) frequencies, Hz.
const COLS: [f32; 4] = [1209.0, 1336.0, 1477.0, 1633.0];
/// The keys by row and column.
const KEYS: [[char; 4]; 4] = [
    ['1', '2', '3', 'A'],
    ['4', '5', '6', 'B'],
    ['7', '8', '9', 'C'],
    ['*', '0', '#', 'D'],
];

/// Mean power of a sine at 0 dBm0 in linear 16-bit PCM as G.711 decodes it: full scale
/// (32124) is +3.17 dBm0.
const DBM0_POWER: f32 = 32124.0 * 32124.0 / 2.0 / 2.075;
/// The weakest tone accepted: −30 dBm0.
pub const MIN_TONE_POWER: f32 = DBM0_POWER / 1000.0;
/// How much stronger than the rest of its group a tone must be: 8 dB.
pub const PEAK_RATIO: f32 = 6.3;
/// Normal twist (row tone stronger) accepted: 8 dB.
const NORMAL_TWIST: f32 = 6.3;
/// Reverse twist (column tone stronger) accepted: 4 dB.
const REVERSE_TWIST: f32 = 2.5;
/// The share of the block's power the two tones must carry.
pub const TONE_SHARE: f32 = 0.7;
/// The largest frequency deviation accepted, as a fraction of the nominal frequency.
pub const MAX_DEVIATION: f32 = 0.025;
/// Blocks in a row that make a key press, and without it that end one.
pub const HITS: u8 = 4;

/// One frequency's correlation over the two halves of a block.
#[derive(Clone, Copy, Default)]
struct Bin {
    /// Σ x·e^{−jωn} over the first half: (re, im).
    first: (f32, f32),
    /// The same over the second half (n counted from the block's start).
    second: (f32, f32),
}

impl Bin {
    /// Mean power of a tone at this frequency over the block (A²/2 for a sine of amplitude A).
    fn power(&self) -> f32 {
        let re = self.first.0 + self.second.0;
        let im = self.first.1 + self.second.1;
        2.0 * (re * re + im * im) / (BLOCK * BLOCK) as f32
    }

    /// How far the tone is from the nominal frequency, Hz: the phase it turned by between
    /// the halves, beyond what the nominal frequency turns.
    fn deviation(&self) -> f32 {
        let (a, b) = (self.first, self.second);
        // second × conj(first)
        let re = b.0 * a.0 + b.1 * a.1;
        let im = b.1 * a.0 - b.0 * a.1;
        im.atan2(re) * RATE / (2.0 * std::f32::consts::PI * HALF as f32)
    }
}

/// The per-frequency phasor steps e^{−jω}, rows then columns: computed once.
static STEPS: std::sync::LazyLock<[(f32, f32); 8]> = std::sync::LazyLock::new(|| {
    let mut out = [(0.0, 0.0); 8];
    for (i, f) in ROWS.iter().chain(COLS.iter()).enumerate() {
        let w = 2.0 * std::f32::consts::PI * f / RATE;
        out[i] = (w.cos(), -w.sin());
    }
    out
});

/// Which key, if any, one block of samples holds.
pub fn classify(block: &[f32; BLOCK]) -> Option<Digit> {
    let mut bins = [Bin::default(); 8];
    for (bin, step) in bins.iter_mut().zip(*STEPS) {
        let mut p = (1.0f32, 0.0f32);
        let mut acc = (0.0f32, 0.0f32);
        for (n, x) in block.iter().enumerate() {
            if n == HALF {
                bin.first = acc;
                acc = (0.0, 0.0);
            }
            acc.0 += x * p.0;
            acc.1 += x * p.1;
            p = (p.0 * step.0 - p.1 * step.1, p.0 * step.1 + p.1 * step.0);
        }
        bin.second = acc;
    }
    let total: f32 = block.iter().map(|x| x * x).sum::<f32>() / BLOCK as f32;
    let mut power = [0.0f32; 8];
    for (p, bin) in power.iter_mut().zip(&bins) {
        *p = bin.power();
    }
    let row = strongest(&power[..4])?;
    let col = strongest(&power[4..])?;
    let (pr, pc) = (power[row], power[4 + col]);
    if pr < MIN_TONE_POWER || pc < MIN_TONE_POWER {
        return None;
    }
    if pr > pc * NORMAL_TWIST || pc > pr * REVERSE_TWIST {
        return None;
    }
    if pr + pc < TONE_SHARE * total {
        return None;
    }
    let off = |i: usize, nominal: f32| bins[i].deviation().abs() <= nominal * MAX_DEVIATION;
    if !off(row, ROWS[row]) || !off(4 + col, COLS[col]) {
        return None;
    }
    Digit::from_char(KEYS[row][col])
}

/// The index of the strongest of `group` if it stands [`PEAK_RATIO`] above the others.
fn strongest(group: &[f32]) -> Option<usize> {
    let (best, &peak) = group.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1))?;
    let clear = group
        .iter()
        .enumerate()
        .all(|(i, &p)| i == best || p * PEAK_RATIO <= peak);
    clear.then_some(best)
}

/// Turns a caller's decoded audio into key presses, each reported once.
#[derive(Clone)]
pub struct InbandDetector {
    /// Samples of the block being filled.
    block: [f32; BLOCK],
    /// How many of `block` are filled.
    filled: usize,
    /// The last block's key.
    last: Option<Digit>,
    /// Blocks in a row with `last`.
    run: u8,
    /// The key press in progress (already reported).
    pressed: Option<Digit>,
    /// Blocks in a row without the pressed key.
    gone: u8,
}

impl Default for InbandDetector {
    fn default() -> Self {
        InbandDetector::new()
    }
}

impl InbandDetector {
    /// A detector that has heard nothing yet.
    pub fn new() -> InbandDetector {
        InbandDetector {
            block: [0.0; BLOCK],
            filled: 0,
            last: None,
            run: 0,
            pressed: None,
            gone: 0,
        }
    }

    /// Forgets everything heard (a new stream).
    pub fn reset(&mut self) {
        *self = InbandDetector::new();
    }

    /// Feeds 8 kHz samples; returns a key press the moment it is recognised. (A press needs
    /// four blocks and one packet of 20 or 30 ms completes at most five, and a press that ends
    /// needs four more, so a push starts at most one press.)
    pub fn push(&mut self, samples: &[i16]) -> Option<Digit> {
        let mut found = None;
        for &s in samples {
            self.block[self.filled] = f32::from(s);
            self.filled += 1;
            if self.filled == BLOCK {
                let key = classify(&self.block);
                if let Some(d) = self.step(key) {
                    found = Some(d);
                }
                // The next block starts half a block on.
                self.block.copy_within(HALF.., 0);
                self.filled = BLOCK - HALF;
            }
        }
        found
    }

    /// One block's verdict into the press state.
    fn step(&mut self, key: Option<Digit>) -> Option<Digit> {
        if key == self.last {
            self.run = self.run.saturating_add(1);
        } else {
            self.last = key;
            self.run = 1;
        }
        if let Some(p) = self.pressed {
            if key == Some(p) {
                self.gone = 0;
                return None;
            }
            self.gone += 1;
            if self.gone < HITS {
                return None;
            }
            self.pressed = None;
        }
        match key {
            Some(d) if self.run >= HITS => {
                self.pressed = Some(d);
                self.gone = 0;
                Some(d)
            }
            _ => None,
        }
    }
}

#[cfg(test)]
#[path = "inband_dtmf_tests.rs"]
mod tests;
