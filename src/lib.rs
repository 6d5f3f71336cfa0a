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
//! | [`media`] | RTP view/rewrite and stream continuity, G.711, RFC 4733, WAV, prompt pacing, RTP port pool |
//! | [`call`] | PIN collector and call flow (pure), the call's media state (pure: relay, echo, prompts), and the driver task per call |
//! | [`sip`] | rsipstack endpoint and dispatch, source filter and ACL, SDP offer/answer, INFO digits, leg details |
//! | [`esl`] | FreeSWITCH Event Socket: frame codec and typed messages (pure), session state machine (sans-IO), the reconnecting task per server |
//! | [`routing`] | PIN → target (conference on a server, the echo test, wait, unavailable); the live conference directory (pure) and its shared handle |
//! | [`privacy`] | the masked caller ID the meeting sees |
//! | [`sounds`] | the prompt set: built in, or read from `ivr.sounds_dir` |
//! | [`ops`] | metrics, health and readiness, status, graceful drain, config reload, systemd notify; the admin HTTP routes |
//! | [`serve`] | `dialin serve`: wiring, signals, drain and reload |
//! | [`logging`] | log set-up (text or JSON) that keeps rsipstack's message dumps out |
//!
//! Protocol logic (PIN collector, call flow, RFC 4733, SDP, routing, the conference directory,
//! the Event Socket codec and session, the call's media state) is sans-IO: state machines that take inputs and the current time and return actions. The tokio
//! layer (`call::driver`, `sip::edge`, `esl::client`, `serve`) only does sockets, timers and rsipstack.
//!
//! One call is one task ([`call::driver`]): it owns the flow, the media state and both RTP
//! sockets, and relays packets in place in its own buffers: no allocation, lock or log line
//! per packet.

pub mod call;
pub mod config;
pub mod digit;
pub mod esl;
pub mod logging;
pub mod media;
pub mod ops;
pub mod privacy;
pub mod routing;
pub mod secret;
pub mod serve;
pub mod sip;
pub mod sounds;
