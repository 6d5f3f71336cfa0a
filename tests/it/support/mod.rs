//! Harness for integration tests that run the real `dialin` binary against real SIP/RTP peers.
//!
//! `tests/it/main.rs` declares it as `mod support;`; the test modules use `crate::support`.
//! The peers are sipp processes (the phone caller on the trunk side, the stand-in for a BBB
//! server's FreeSWITCH on the other side) and small Rust RTP sockets that play and record audio,
//! all on 127.0.0.1.
//!
//! # Layout
//! | module | job |
//! |---|---|
//! | [`admin`] | the admin API app on a store, served on 127.0.0.1, and a client for it |
//! | [`db`] | a SQLite file or a fresh PostgreSQL database per test |
//! | [`ports`] | distinct free UDP/TCP port blocks for tests running in parallel (threads and processes) |
//! | [`rtp`] | RTP header and RFC 4733 event encode/parse, digit decoding of a received stream |
//! | [`payload`] | recognisable 20 ms PCMU frames: the caller's and the conference's signatures |
//! | [`pcap`] | one realistic caller RTP stream (audio + RFC 4733 in one SSRC) as a classic pcap file |
//! | [`kamailio`] | Kamailio (deploy/kamailio/kamailio.cfg) in front of dialin instances |
//! | [`scenario`] | the sipp scenarios in `tests/sipp/` with their default keys; INFO digits templating |
//! | [`sipp`] | spawning sipp with the common flags, deadline, exit status and logs |
//! | [`rawsip`] | a hand-driven SIP caller over UDP/TCP for odd message orders (no ACK, early BYE, CANCEL races) |
//! | [`siplog`] | parsing sipp's message log into SIP messages (Request-URI, headers) |
//! | [`media`] | [`media::RtpPeer`]: a Rust RTP endpoint that sends its own frames and records what arrives |
//! | [`esl`] | a stand-in FreeSWITCH Event Socket replaying captured frames, with faults on request |
//! | [`freeswitch`] | a real FreeSWITCH 1.10.12 configured like a BBB server: own ports, SIGKILL, restart |
//! | [`wait`] | polling a condition with a deadline, in place of fixed sleeps |
//!
//! # Verifying both audio directions
//! sipp cannot record RTP. Caller → conference: the caller's pcap carries [`payload::caller_frame`]s;
//! an [`media::RtpPeer`] at the conference side (the `sdp_ip`/`sdp_port` keys of the conference
//! scenarios point at it) counts them. Conference → caller: run the caller sipp with `-rtp_echo`
//! ([`sipp::Sipp::rtp_echo`]); sipp echoes every packet arriving on its `-mp` port back to its
//! sender, so the conference-side peer receives its own [`payload::conference_frame`]s back through
//! dialin. Verified here (sipp 3.6.1): `-rtp_echo` and `play_pcap_audio` work together on the same
//! `-mp` port, and both leave from that port. Alternatively the caller scenarios' `sdp_ip`/`sdp_port`
//! keys can point dialin's audio at a second `RtpPeer` to record the prompts themselves (this only
//! works if dialin sends to the SDP address rather than latching onto the pcap's source port).
//!
//! The echo also returns dialin's prompts to dialin during the IVR phase (as caller audio that
//! carries no signature), which is harmless as long as dialin ignores caller audio there.
//!
//! # A typical test
//! ```ignore
//! let rtp = RtpPeer::start(free_addr, SendTo::FirstSource);
//! let conference = Sipp::new(Scenario::conference_waits_for_bye()).sdp_media(rtp.local_addr()).spawn();
//! // ... start dialin, its server pointing at conference.sip_addr() ...
//! let caller = Sipp::new(Scenario::caller_hangs_up())
//!     .pcap(CallerStream::new("71234#").tail(Duration::from_secs(3)))
//!     .rtp_echo()
//!     .pause(Duration::from_secs(6))
//!     .remote(dialin_sip_addr)
//!     .service("+4930555000")
//!     .spawn();
//! caller.wait().assert_success();
//! let invite = conference.wait().assert_success().first_received("INVITE");
//! assert!(invite.request_uri().unwrap().starts_with("sip:71234@"));
//! assert!(!invite.text.contains("1234567")); // the caller's number never reaches the server
//! let rec = rtp.stop();
//! assert!(rec.caller_audio() > 100 && rec.conference_audio() > 100 && rec.other_audio() == 0);
//! ```
//!
//! [`sipp::Sipp::spawn`] calls [`require_sipp`]: a missing tool is a failure, never a skip.

pub mod admin;
pub mod db;
pub mod dialin;
pub mod esl;
pub mod freeswitch;
pub mod kamailio;
pub mod media;
pub mod payload;
pub mod pcap;
pub mod ports;
pub mod rawsip;
pub mod rtp;
pub mod scenario;
pub mod siplog;
pub mod sipp;
pub mod wait;

use std::path::PathBuf;

/// Finds the `sipp` binary on `PATH` and checks that replaying pcaps will work (root).
///
/// Panics with install instructions when sipp is missing: the integration tests need it and must
/// never pass by silently skipping.
pub fn require_sipp() -> PathBuf {
    let path = find_in_path("sipp").unwrap_or_else(|| {
        panic!(
            "sipp is not installed: apt-get install sip-tester \
             (the integration tests need it; they do not skip)"
        )
    });
    assert!(
        is_root(),
        "sipp's play_pcap_audio needs raw sockets: run the integration tests as root"
    );
    path
}

/// The first executable file called `name` in a `PATH` directory.
fn find_in_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// Whether this process runs with effective uid 0 (read from `/proc`, no libc needed).
fn is_root() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1))
        .is_some_and(|euid| euid == "0")
}
