//! The integration tests, as one test binary.
//!
//! Each file here used to be a test target of its own, and each of those linked the whole
//! crate and its dependencies again: the links dominated a cold build. As modules of one
//! binary they link once. Cargo runs the tests of one binary in parallel threads of one
//! process, so a test must not rely on a process of its own (no `std::env::set_var`, no
//! fixed ports: [`support::ports`] hands out distinct blocks across threads and processes).
//!
//! Run one area with `cargo test --test it calls::`, one test with its full path and `--exact`.

mod support;

mod admin_api;
mod admin_api_sets;
mod calls;
mod cli;
mod cluster;
mod compat;
mod deploy;
mod directory;
mod esl;
mod freeswitch_config;
mod holding;
mod inband;
mod leaks;
mod openapi;
mod ops;
mod overload;
mod pins_cli;
mod pins_e2e;
mod privacy;
mod prompts;
mod reconnect;
mod register;
mod server_loss;
mod soak;
mod srtp;
mod stuck;
mod support_selftest;
mod tls;
mod torture;
