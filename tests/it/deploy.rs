//! The deployment files: the systemd unit passes `systemd-analyze verify`, and dialin speaks
//! systemd's notification protocol (READY, WATCHDOG, RELOADING, STOPPING) as `Type=notify` needs.

use crate::support::dialin::{Dialin, TestConfig};
use crate::support::ports::PortBlock;
use crate::support::wait::poll;
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

#[test]
fn the_systemd_unit_verifies_cleanly() {
    let unit = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/systemd/dialin.service"),
    )
    .unwrap();
    for needed in [
        "Type=notify",
        "WatchdogSec=",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "CapabilityBoundingSet=CAP_NET_BIND_SERVICE",
        "User=dialin",
        "SystemCallErrorNumber=EPERM",
        "StateDirectory=dialin",
    ] {
        assert!(unit.contains(needed), "the unit lacks {needed}");
    }
    // verify checks that ExecStart exists: point it at the binary under test.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dialin.service");
    std::fs::write(
        &path,
        unit.replace("/usr/bin/dialin", env!("CARGO_BIN_EXE_dialin")),
    )
    .unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .unwrap_or_else(|e| {
            panic!("systemd-analyze is missing ({e}): apt-get install systemd (the test does not skip)")
        });
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Unknown keys and bad values are only warnings: any output is a failure.
    assert!(
        out.status.success() && stderr.trim().is_empty(),
        "systemd-analyze verify: {stderr}"
    );
    // Logs kept 3 days at most: the unit logs to its own namespace, whose journald settings
    // delete a file once its newest entry is older than MaxRetentionSec (+ MaxFileSec open).
    assert!(unit.contains("\nLogNamespace=dialin\n"), "{unit}");
    let journald = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/systemd/journald@dialin.conf"),
    )
    .unwrap();
    let days = |key: &str| -> u32 {
        let line = journald
            .lines()
            .find(|l| l.starts_with(&format!("{key}=")))
            .unwrap_or_else(|| panic!("{key} missing from journald@dialin.conf"));
        let value = line.split('=').nth(1).unwrap();
        value
            .strip_suffix("day")
            .and_then(|d| d.parse().ok())
            .unwrap_or_else(|| panic!("{line}: expected whole days"))
    };
    assert!(days("MaxRetentionSec") + days("MaxFileSec") <= 3);
}

/// Receives notification datagrams until one equals `want`; panics after 5 s.
fn expect_notification(socket: &UnixDatagram, want: &str, log: impl Fn() -> String) {
    let mut buf = [0u8; 256];
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while std::time::Instant::now() < deadline {
        if let Ok(len) = socket.recv(&mut buf) {
            if &buf[..len] == want.as_bytes() {
                return;
            }
        }
    }
    panic!("no {want} notification; dialin's log:\n{}", log());
}

#[test]
fn dialin_notifies_systemd_of_ready_watchdog_reload_and_stop() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notify");
    let socket = UnixDatagram::bind(&path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let cfg = TestConfig::new(std::net::SocketAddr::from((
        [127, 0, 0, 1],
        PortBlock::take(1).base,
    )));
    let notify = path.display().to_string();
    let mut dialin = Dialin::start_with(
        &cfg.toml(),
        &[],
        &[
            ("NOTIFY_SOCKET", notify.as_str()),
            ("WATCHDOG_USEC", "400000"),
        ],
    );
    expect_notification(&socket, "READY=1", || dialin.log());
    expect_notification(&socket, "WATCHDOG=1", || dialin.log());
    expect_notification(&socket, "WATCHDOG=1", || dialin.log());
    dialin.signal("-HUP");
    expect_notification(&socket, "RELOADING=1", || dialin.log());
    expect_notification(&socket, "READY=1", || dialin.log());
    dialin.signal("-TERM");
    expect_notification(&socket, "STOPPING=1", || dialin.log());
    assert!(dialin.wait_exit(Duration::from_secs(5)).success());
}

/// A bridged call through the packaged dialin as `tests/deb/run` left it: installed from the
/// .deb in a container, run by systemd under the shipped unit (sandbox and syscall filter),
/// listening on the packaged configuration's 127.0.0.1:5060 and dialling its `bbb1` at
/// 127.0.0.1:5080 for the example PIN. The container shares this machine's network.
///
/// Ignored in a plain `cargo test`: the service it calls exists only while `tests/deb/run`
/// runs, which runs this test with `--ignored` (in `.ci/run`, so CI always runs it).
#[test]
#[ignore = "calls the packaged service that tests/deb/run starts under systemd"]
fn a_call_through_the_packaged_service_reaches_the_conference_both_ways() {
    use crate::support::media::{RtpPeer, SendTo};
    use crate::support::pcap::CallerStream;
    use crate::support::sipp::{Scenario, Sipp};
    let dialin = std::net::SocketAddr::from(([127, 0, 0, 1], 5060));
    let media = RtpPeer::start(
        std::net::SocketAddr::from(([127, 0, 0, 1], PortBlock::take(2).base)),
        SendTo::FirstSource,
    );
    let server = Sipp::new(Scenario::conference_waits_for_bye())
        .sip_port(5080)
        .sdp_media(media.local_addr())
        .spawn();
    let caller = Sipp::new(Scenario::caller_hangs_up())
        .pcap(CallerStream::new("8675309#").tail(Duration::from_secs(4)))
        .rtp_echo()
        .pause(Duration::from_secs(8))
        .remote(dialin)
        .service("4930555000")
        .spawn()
        .wait();
    caller.assert_success();
    let server = server.wait();
    server.assert_success();
    let invite = server.first_received("INVITE");
    let uri = invite.request_uri().unwrap();
    assert!(uri.starts_with("sip:71234@"), "Request-URI {uri}");
    let rec = media.stop();
    assert!(
        rec.caller_audio() >= 100 && rec.conference_audio() >= 50,
        "audio through the packaged service: {} caller frames, {} conference frames",
        rec.caller_audio(),
        rec.conference_audio()
    );
}

/// The container's HEALTHCHECK, exactly as `deploy/Containerfile` writes it: healthy while the
/// instance takes calls, unhealthy once it drains, and it needs no admin token (the shipped
/// configuration has none). No container engine runs on these machines (README, "Install"),
/// so the command runs here against the binary under test instead of inside the image.
#[test]
fn the_container_health_check_follows_readiness_without_a_token() {
    let containerfile =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/Containerfile"))
            .unwrap();
    let line = containerfile
        .lines()
        .find(|l| l.starts_with("HEALTHCHECK"))
        .expect("the Containerfile has a HEALTHCHECK");
    let json = &line[line.find("CMD [").expect("HEALTHCHECK ... CMD [\"...\"]") + 4..];
    let argv: Vec<String> = serde_json::from_str(json).expect("the CMD is a JSON array");
    assert_eq!(argv[0], "/usr/local/bin/dialin", "{line}");

    let cfg = TestConfig::new(std::net::SocketAddr::from((
        [127, 0, 0, 1],
        PortBlock::take(1).base,
    )));
    let mut dialin = cfg.start();
    // The image's config path becomes this test's config; the token stays unconfigured.
    let health = || {
        let args: Vec<String> = argv[1..]
            .iter()
            .map(|a| {
                if a == "/etc/dialin/dialin.toml" {
                    dialin.config_path.display().to_string()
                } else {
                    a.clone()
                }
            })
            .collect();
        Command::new(env!("CARGO_BIN_EXE_dialin"))
            .args(&args)
            .output()
            .unwrap()
    };
    let ready = health();
    assert!(
        ready.status.success(),
        "healthy while ready: {}",
        String::from_utf8_lossy(&ready.stderr)
    );
    dialin.signal("-TERM");
    let unhealthy = poll(Duration::from_secs(5), || {
        let out = health();
        (!out.status.success()).then_some(out)
    })
    .expect("still healthy 5 s into a drain");
    // Draining (503) while a call holds it up; with no call it exits at once.
    let why = String::from_utf8_lossy(&unhealthy.stderr);
    assert!(
        why.contains("HTTP 503") && why.contains("draining")
            || why.contains("cannot reach dialin's admin listener"),
        "{why}"
    );
    assert!(dialin.wait_exit(Duration::from_secs(5)).success());
}

/// BBB installs FreeSWITCH under /opt/freeswitch: the privacy inventory and the BBB install
/// guide name its files there, never at Debian's /etc/freeswitch or /var/log/freeswitch,
/// where an admin following them would change nothing.
#[test]
fn freeswitch_paths_in_the_docs_are_bbbs() {
    for doc in ["deploy/PRIVACY.md", "dialplan/freeswitch/README.md"] {
        let text =
            std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(doc)).unwrap();
        let mut named = 0;
        let paths = text
            .split(|c: char| c.is_whitespace() || "`()[],;\"'".contains(c))
            .filter(|t| t.starts_with('/') && t.contains("freeswitch"));
        for path in paths {
            named += 1;
            assert!(
                path.starts_with("/opt/freeswitch") || path.starts_with("/etc/bigbluebutton"),
                "{doc} names {path}, not under BBB's /opt/freeswitch"
            );
        }
        assert!(named > 0, "{doc} names no FreeSWITCH path");
    }
}
