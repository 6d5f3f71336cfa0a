//! dialin: a privacy-respecting telephone dial-in bridge for BigBlueButton.
//!
//! A caller reaches dialin over a SIP trunk, types a conference PIN by DTMF and is bridged into
//! the FreeSWITCH voice conference of the BBB server that runs the meeting.
//!
//! # Layout
//! | module | job |
//! |---|---|
//! | [`config`] | TOML schema, defaults, validation with messages that name the key and line |
//! | [`digit`] | the DTMF [`digit::Digit`] shared by every source of digits |
//! | [`secret`] | [`secret::Pin`] and [`secret::CallerNumber`], whose `Debug`/`Display` never leak |
//! | [`media`] | RTP view/rewrite, G.711, RFC 4733, WAV prompts and their pacing, port pool, relay |
//! | [`call`] | the PIN collector and call-flow state machines, and the task that drives one call |
//! | [`sip`] | rsipstack endpoint, source ACL, SDP offer/answer, the trunk (UAS) and server (UAC) legs |
//! | [`routing`] | PIN → target (conference on a server, or the echo test) |
//! | [`privacy`] | the masked caller ID the meeting sees |
//! | [`sounds`] | the prompt set: built in, or read from `ivr.sounds_dir` |
//! | [`serve`] | `dialin serve`: wiring and signals |
//! | [`logging`] | log set-up that keeps rsipstack's message dumps out |
//!
//! Protocol logic (PIN collector, call flow, RFC 4733, SDP, routing) is sans-IO: state machines
//! that take inputs and the current time and return actions. The tokio layer only does sockets
//! and timers.

pub mod call;
pub mod config;
pub mod digit;
pub mod logging;
pub mod media;
pub mod privacy;
pub mod routing;
pub mod secret;
pub mod serve;
pub mod sip;
pub mod sounds;
