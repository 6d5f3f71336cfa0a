//! The types of `[ivr]`: the voice menu (PIN entry, prompts, echo test, waiting, mute key),
//! and their parsing.

use std::path::PathBuf;
use std::time::Duration;

use super::MuteMode;
use crate::secret::Pin;

use super::error::Problems;
use super::reader::{Section, Spanned};
use super::values::{all_digits, parse_duration};

/// `[ivr]`: prompts and PIN collection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IvrConfig {
    /// The prompt language (default English).
    pub language: Language,
    /// Where to read prompts from (`<sounds_dir>/<language>/*.wav`); `None` uses the prompts
    /// built into the binary.
    pub sounds_dir: Option<PathBuf>,
    /// The fewest digits a PIN has (1..=20, default 5).
    pub pin_min_digits: usize,
    /// The most digits a PIN has (1..=20, default 11); collection stops here.
    pub pin_max_digits: usize,
    /// How many PINs a caller may try before dialin hangs up (1..=10, default 3).
    pub attempts: u32,
    /// How long to wait for the first digit (default 10 s).
    pub first_digit_timeout: Duration,
    /// How long to wait for each further digit before taking the PIN as complete (default 5 s).
    pub inter_digit_timeout: Duration,
    /// The PIN of the built-in echo test (default `00000`); `None` disables it.
    pub echo_pin: Option<Pin>,
    /// How long an echo test may last before dialin hangs up.
    pub echo_max: Duration,
    /// How long a caller waits for a mapped meeting that has not started (default 15 min).
    pub max_wait: Duration,
    /// The key that toggles mute in the meeting (default `0`); `None` disables it.
    pub mute_key: Option<crate::digit::Digit>,
    /// What the mute key does (default [`MuteMode::Esl`]).
    pub mute_mode: MuteMode,
}

impl Default for IvrConfig {
    fn default() -> IvrConfig {
        IvrConfig {
            language: Language::En,
            sounds_dir: None,
            pin_min_digits: 5,
            pin_max_digits: 11,
            attempts: 3,
            first_digit_timeout: Duration::from_secs(10),
            inter_digit_timeout: Duration::from_secs(5),
            echo_pin: Pin::new("00000"),
            echo_max: Duration::from_secs(300),
            max_wait: Duration::from_secs(15 * 60),
            mute_key: Some(crate::digit::Digit::Num(0)),
            mute_mode: MuteMode::Esl,
        }
    }
}

/// The language of the voice prompts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Language {
    /// English (`en`).
    En,
    /// German (`de`).
    De,
}

impl Language {
    /// The code used in the file and as the prompt directory name.
    pub fn code(self) -> &'static str {
        match self {
            Language::En => "en",
            Language::De => "de",
        }
    }
}

/// `[ivr]`.
pub(super) fn ivr(root: &Section<'_>, p: &mut Problems<'_>) -> IvrConfig {
    let known = [
        "language",
        "sounds_dir",
        "pin_min_digits",
        "pin_max_digits",
        "attempts",
        "first_digit_timeout",
        "inter_digit_timeout",
        "echo_pin",
        "echo_max",
        "max_wait",
        "mute_key",
        "mute_mode",
    ];
    let s = root.table(p, "ivr", &known);
    let mut c = IvrConfig::default();
    if let Some(v) = s.parsed(p, "language", |t| match t {
        "en" => Ok(Language::En),
        "de" => Ok(Language::De),
        _ => Err("unsupported language; use \"en\" or \"de\""),
    }) {
        c.language = v.value;
    }
    if let Some(v) = s.parsed(p, "sounds_dir", |t| {
        (!t.trim().is_empty()).then(|| PathBuf::from(t)).ok_or("empty; name a directory holding <language>/*.wav, or remove the key to use the built-in prompts")
    }) {
        c.sounds_dir = Some(v.value);
    }
    let min = pin_lengths(&s, p, &mut c);
    if let Some(v) = s.integer(p, "attempts", 1..=10) {
        c.attempts = v.value as u32;
    }
    if let Some(v) = s.parsed(p, "first_digit_timeout", parse_duration) {
        c.first_digit_timeout = v.value;
    }
    if let Some(v) = s.parsed(p, "inter_digit_timeout", parse_duration) {
        c.inter_digit_timeout = v.value;
    }
    if let Some(v) = s.parsed(p, "echo_max", parse_duration) {
        c.echo_max = v.value;
    }
    if let Some(v) = s.parsed(p, "max_wait", parse_duration) {
        c.max_wait = v.value;
    }
    mute(&s, p, &mut c);
    echo_pin(&s, p, &mut c, min.as_ref());
    c
}

/// `pin_min_digits` and `pin_max_digits`, which must not cross; returns the minimum as read
/// (its line names the problem when the echo PIN's length does not fit).
fn pin_lengths(s: &Section<'_>, p: &mut Problems<'_>, c: &mut IvrConfig) -> Option<Spanned<i64>> {
    let min = s.integer(p, "pin_min_digits", 1..=20);
    let max = s.integer(p, "pin_max_digits", 1..=20);
    if let Some(v) = &min {
        c.pin_min_digits = v.value as usize;
    }
    if let Some(v) = &max {
        c.pin_max_digits = v.value as usize;
    }
    if c.pin_min_digits > c.pin_max_digits {
        let (path, line) = match (&min, &max) {
            (Some(v), _) | (None, Some(v)) => (v.path.clone(), v.line),
            (None, None) => (s.path_of("pin_min_digits"), s.line),
        };
        p.push(
            line,
            path,
            "pin_min_digits is above pin_max_digits; make pin_min_digits <= pin_max_digits",
        );
    }
    min
}

/// `mute_key` and `mute_mode`.
fn mute(s: &Section<'_>, p: &mut Problems<'_>, c: &mut IvrConfig) {
    if let Some(v) = s.parsed(p, "mute_key", |t| match t {
        "" => Ok(None),
        t if t.len() == 1 => crate::digit::Digit::from_char(t.chars().next().unwrap_or(' '))
            .map(Some)
            .ok_or("must be one key: 0-9, * or #; or \"\" to disable"),
        _ => Err("must be one key: 0-9, * or #; or \"\" to disable"),
    }) {
        c.mute_key = v.value;
    }
    if let Some(v) = s.parsed(p, "mute_mode", |t| match t {
        "esl" => Ok(MuteMode::Esl),
        "passthrough" => Ok(MuteMode::Passthrough),
        _ => {
            Err("must be \"esl\" (mute over the Event Socket) or \"passthrough\" (forward the key)")
        }
    }) {
        c.mute_mode = v.value;
    }
}

/// `echo_pin`, whose length must fit the PIN lengths or callers could never reach the test.
fn echo_pin(s: &Section<'_>, p: &mut Problems<'_>, c: &mut IvrConfig, min: Option<&Spanned<i64>>) {
    let echo = s.parsed(p, "echo_pin", |t| match t {
        "" => Ok(None),
        t if all_digits(t) => Ok(Pin::new(t)),
        _ => Err("must be digits only, or \"\" to disable the echo test"),
    });
    if let Some(v) = &echo {
        c.echo_pin = v.value.clone();
    }
    if let Some(pin) = &c.echo_pin {
        if !(c.pin_min_digits..=c.pin_max_digits).contains(&pin.len()) {
            let (path, line) = match &echo {
                Some(v) => (v.path.clone(), v.line),
                None => (
                    s.path_of("pin_min_digits"),
                    min.and_then(|v| v.line).or(s.line),
                ),
            };
            let message = format!(
                "the echo_pin has {} digits, outside pin_min_digits..pin_max_digits, so callers could never reach the echo test; set echo_pin to a PIN within that range, or \"\" to disable it",
                pin.len()
            );
            p.push(line, path, message);
        }
    }
}
