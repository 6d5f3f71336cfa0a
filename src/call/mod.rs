//! One call: its core ([`core::Call`], pure: every decision and timer of the call, built on
//! the call flow and the PIN collector), and the driver task that carries out the core's
//! actions on the call's SIP legs and media path and feeds it what happens ([`driver`]).
//! Start reading at `core/mod.rs`: its doc holds the run loop contract.

pub mod admission;
pub mod context;
pub mod core;
pub mod driver;
pub mod flow;
pub mod meeting_poll;
pub mod pin;

/// The prompts the IVR can play. Each maps to `dialplan/sounds/<language>/<file_stem>.wav`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PromptId {
    /// "Welcome … please enter the conference PIN followed by the hash key."
    Welcome,
    /// "That PIN is not valid. Please enter the conference PIN followed by the hash key."
    InvalidPin,
    /// "Too many attempts. Goodbye."
    Goodbye,
    /// "Connecting you to the conference."
    Connecting,
    /// "The conference is not available right now. Goodbye."
    Unavailable,
    /// "The meeting has not started yet. Please hold."
    NotStarted,
    /// A calm hold loop, repeated while the caller waits for the meeting.
    Hold,
    /// "The connection to the meeting was lost. One moment please." (then the hold loop while
    /// dialin dials the meeting again).
    ConnectionLost,
}

impl PromptId {
    /// Every prompt, for loading and checking the sound set.
    pub const ALL: [PromptId; 8] = [
        PromptId::Welcome,
        PromptId::InvalidPin,
        PromptId::Goodbye,
        PromptId::Connecting,
        PromptId::Unavailable,
        PromptId::NotStarted,
        PromptId::Hold,
        PromptId::ConnectionLost,
    ];

    /// The file name without `.wav` inside `dialplan/sounds/<language>/`.
    pub fn file_stem(self) -> &'static str {
        match self {
            PromptId::Welcome => "welcome",
            PromptId::InvalidPin => "invalid-pin",
            PromptId::Goodbye => "goodbye",
            PromptId::Connecting => "connecting",
            PromptId::Unavailable => "unavailable",
            PromptId::NotStarted => "not-started",
            PromptId::Hold => "hold",
            PromptId::ConnectionLost => "connection-lost",
        }
    }

    /// Whether an operator's `ivr.sounds_dir` may lack this prompt (the built-in one plays
    /// then): prompts added after sound sets were made, so such a set keeps working.
    pub fn may_be_missing(self) -> bool {
        self == PromptId::ConnectionLost
    }
}
