//! dialin: a privacy-respecting telephone dial-in bridge for BigBlueButton.
//!
//! A caller reaches dialin over a SIP trunk, types a conference PIN by DTMF and is bridged into
//! the FreeSWITCH voice conference of the BBB server that runs the meeting.
//!
//! # Layout
//! | module | job |
//! |---|---|
//! | [`config`] | TOML schema, defaults, validation with messages that name the key and line; turns the file into each module's own settings (`Config::routing_settings`, `store_rules`, `trunk_table`), so no domain module imports `config` |
//! | [`digit`] | the DTMF [`digit::Digit`] shared by every source of digits |
//! | [`ids`] | ids shared by several modules ([`ids::ConferenceId`], [`ids::ServerName`]), so `config`, `routing`, `esl`, `privacy` and `store` need not import each other |
//! | [`store_errors`] | the store's failure counter, counted by `store` and `privacy` without importing `ops` |
//! | [`secret`] | [`secret::Pin`] and [`secret::CallerNumber`], whose `Debug`/`Display` never leak |
//! | [`media`] | RTP view/rewrite and stream continuity, G.711, RFC 4733, in-band DTMF, WAV, prompt pacing, RTP port pool, SRTP; each call's media state (`call_media`, pure: relay rewriting, echo, prompts); the RTP relay (`relay`: call shards, their relay loops and path tables, the per-packet hot path) |
//! | [`call`] | the call core ([`call::core::Call`], pure: every decision and timer of one call, built on the call flow and the PIN collector; whole calls tested on simulated time), call admission (limits), when a waiting caller's meeting ID is asked about again (`meeting_poll`, pure), and the driver task per call that carries out the core's actions |
//! | [`sip`] | rsipstack endpoint and dispatch, source filter, ACL, trunks and per-source rate limits, TCP/TLS and admin connection caps and idle timeout (`conn_limits`); a new INVITE parsed once (`incoming`) and answered (`answer`: ringing, 200/183, 488, SRTP choice); SDP offer/answer and SDES, INFO digits, leg details, session timers and `Require`, outbound registration, TLS |
//! | [`esl`] | FreeSWITCH Event Socket: frame codec and typed messages (pure), session state machine (sans-IO), the reconnecting task per server |
//! | [`routing`] | PIN → target (conference on a server, the echo test, wait, unavailable): the rules (`routes`, pure: store snapshot, directory and time are inputs) and [`routing::Router`], the thin wrapper over the shared handles; the live conference directory (pure) and its shared handle (`shared_directory`) |
//! | [`store`] | PIN mappings in SQLite or PostgreSQL (sqlx, embedded migrations), validation, change watch, CSV/JSON |
//! | [`pins_cmd`] | `dialin pins ...`: the store from the shell |
//! | [`admin`] | HTTP admin API (axum): bearer token, `/api/v1/pins`, OpenAPI; routers merged from parts |
//! | [`bbb_api`] | BBB API client: checksum, getMeetingInfo/getMeetings XML, meeting ID → voiceBridge |
//! | [`privacy`] | caller-ID policy toward the meeting, log pseudonyms (keyed hash, daily key), guessing protection ([`privacy::ledger::AttemptLedger`]) |
//! | [`sounds`] | the prompt set: built in, or read from `ivr.sounds_dir` |
//! | [`ops`] | what the call layer counts and waits through: metrics, health, the registry of calls in progress, graceful drain, systemd notify, the allocator setting, the SIP threads' scheduler slice; imports nothing of `call`, `media`, `config` or `sounds` |
//! | [`serve`] | `dialin serve`: wiring (`start`: edge, Event Sockets, store watcher, ledger, admin listener, readiness checks), signals, drain and reload (`control`), and what looks at the whole service: status, config reload, refusals by reason, the admin HTTP routes (`status`, `reload`, `refusals`, `http`) |
//! | [`logging`] | log set-up (text or JSON) that keeps rsipstack's message dumps out |
//!
//! Protocol logic (the call core with its flow and PIN collector, RFC 4733, SDP, routing, the
//! conference directory, the Event Socket codec and session, the call's media state) is
//! sans-IO: state machines that take inputs and the current time and return actions. The tokio
//! layer (`call::driver`, `media::relay`, `sip::edge`, `esl::client`, `serve`) only does
//! sockets, timers and rsipstack.
//!
//! # One call
//! The SIP edge parses a new INVITE once ([`sip::incoming::IncomingCall`]); the call's set-up
//! (`call::driver::start`) admits it, answers it ([`sip::answer`]) and builds its core
//! ([`call::core::Call`]). From then on the call's task runs the core's loop (the contract is
//! in [`call::core`]): after every input it carries out `poll_action()` until `None`, then
//! sleeps until `poll_timeout()` (or the media path's packet clock) or the next dialog event,
//! digit, lookup answer or drain, and hands that to a `handle_*` method with `now`. The core
//! decides; the task owns the dialogs, tasks and the media path and decides nothing.
//!
//! One call is one task ([`call::driver`]): it owns the core and the call's SIP legs; its media
//! state and both RTP sockets are its path in [`media::relay`], whose loop relays packets in
//! place: no allocation, lock or log line per packet. Call tasks run on one single-threaded
//! runtime per core (so a packet's wake-up never crosses threads), owned by `serve` and
//! stopped with it, and read each socket's queued packets with one `recvmmsg` into buffers of
//! their thread; `bench/run` measures the result against rtpengine.

pub mod admin;
pub mod bbb_api;
pub mod call;
pub mod config;
pub mod digit;
pub mod esl;
pub mod ids;
pub mod logging;
pub mod media;
pub mod ops;
pub mod pins_cmd;
pub mod privacy;
pub mod routing;
pub mod secret;
pub mod serve;
pub mod sip;
pub mod sounds;
pub mod store;
pub mod store_errors;

#[cfg(test)]
mod module_graph_tests;
