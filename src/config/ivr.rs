//! The types of `[ivr]`: the voice menu (PIN entry, prompts, echo test, waiting, mute key).
//! Parsed in `build`.

use std::path::PathBuf;
use std::time::Duration;

use super::MuteMode;
use crate::secret::Pin;

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
