//! Operating a running dialin: graceful drain, configuration reload, metrics, health and status,
//! all against the real binary with sipp callers and stand-in servers on 127.0.0.1.

use crate::support::dialin::{
    calls_refused, http, metric, sip_options, TestConfig, ADMIN_TOKEN, ADMIN_TOKEN_ENV,
};
use crate::support::media::{RtpPeer, SendTo};
use crate::support::pcap::CallerStream;
use crate::support::ports::PortBlock;
use crate::support::sipp::{Scenario, Sipp};
use crate::support::wait::{poll, wait_for};
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

/// The config-file PIN and its conference.
const PIN: &str = "8675309";
const CONFERENCE: &str = "71234";
/// The number the callers dial.
const DIALLED: &str = "4930555000";

fn conference_media() -> RtpPeer {
    let port = PortBlock::take(2).base;
    RtpPeer::start(
        SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
        SendTo::FirstSource,
    )
}

fn no_server() -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, PortBlock::take(1).base))
}

/// A caller that types `keys` and hangs up `after` the answer, echoing what it hears.
fn caller(cfg: &TestConfig, keys: &str, after: Duration) -> Sipp {
    Sipp::new(Scenario::caller_hangs_up())
        .pcap(CallerStream::new(keys).tail(after))
        .rtp_echo()
        .pause(after)
        .remote(cfg.sip)
        .service(DIALLED)
        .deadline(after + Duration::from_secs(30))
}

#[test]
fn drain_keeps_bridged_calls_refuses_new_ones_and_exits_0_after_the_last() {
    let media = conference_media();
    let server = Sipp::new(Scenario::conference_waits_for_bye())
        .sdp_media(media.local_addr())
        .spawn();
    let cfg = TestConfig::new(server.sip_addr());
    let mut dialin = cfg.start();
    assert_eq!(sip_options(cfg.sip).0, 200, "OPTIONS before the drain");
    assert_eq!(http(cfg.admin, "GET", "/readyz").0, 200);
    let call = caller(&cfg, &format!("{PIN}#"), Duration::from_secs(14)).spawn();
    dialin.wait_for_line("bridged", Duration::from_secs(15));

    dialin.signal("-TERM");
    dialin.wait_for_line("draining", Duration::from_secs(5));
    let before = media.recording();
    // A load balancer's probe and /readyz now say "go elsewhere"; so do new INVITEs.
    assert_eq!(sip_options(cfg.sip), (503, Some("30".to_string())));
    let (code, body) = http(cfg.admin, "GET", "/readyz");
    assert_eq!(code, 503, "{body}");
    assert!(body.contains("draining"), "{body}");
    let refused = Sipp::new(Scenario::caller_rejected())
        .remote(cfg.sip)
        .service(DIALLED)
        .spawn()
        .wait();
    refused.assert_success();
    assert_eq!(refused.final_response_code(), Some(503));
    assert!(dialin.is_running(), "dialin must wait for the bridged call");
    let (_, text) = http(cfg.admin, "GET", "/metrics");
    let refused = |reason: &str| calls_refused(&text, reason);
    assert_eq!(refused("draining"), 1.0, "{text}");
    assert_eq!(refused("max_calls"), 0.0, "{text}");

    // The bridged call goes on with audio and ends normally: the caller's BYE reaches the
    // server through dialin.
    call.wait().assert_success();
    server.wait().assert_success();
    let after = media.stop();
    assert!(
        after.caller_audio() > before.caller_audio() + 100,
        "audio kept flowing during the drain ({} → {} frames)",
        before.caller_audio(),
        after.caller_audio()
    );
    let status = dialin.wait_exit(Duration::from_secs(10));
    assert!(status.success(), "exit status {status:?}");
    dialin.wait_for_line("drained, stopping", Duration::from_secs(1));
}

#[test]
fn drain_deadline_says_goodbye_in_the_menu_and_hangs_up_bridged_calls() {
    let media = conference_media();
    let server = Sipp::new(Scenario::conference_waits_for_bye())
        .sdp_media(media.local_addr())
        .spawn();
    let mut cfg = TestConfig::new(server.sip_addr());
    cfg.drain_max = "3s";
    cfg.first_digit_timeout = "30s";
    let mut dialin = cfg.start();
    // One call bridged, one listening to the menu without typing; both wait for dialin's BYE.
    let bridged = Sipp::new(Scenario::caller_waits_for_bye())
        .pcap(CallerStream::new(&format!("{PIN}#")).tail(Duration::from_secs(20)))
        .remote(cfg.sip)
        .service(DIALLED)
        .spawn();
    dialin.wait_for_line("bridged", Duration::from_secs(15));
    let in_menu = Sipp::new(Scenario::caller_waits_for_bye())
        .pcap(CallerStream::new("").lead(Duration::from_secs(20)))
        .remote(cfg.sip)
        .service(DIALLED)
        .spawn();
    dialin.wait_for_nth_line("incoming call", 2, Duration::from_secs(5));
    // Drain once the second call is answered and in the menu (its ACK sent).
    assert!(
        wait_for(Duration::from_secs(5), || in_menu
            .sent_so_far("ACK")
            .is_some()),
        "the second call was not answered"
    );
    dialin.signal("-TERM");
    let in_menu = in_menu.wait();
    in_menu.assert_success();
    bridged.wait().assert_success();
    server.wait().assert_success();
    let status = dialin.wait_exit(Duration::from_secs(20));
    assert!(status.success(), "exit status {status:?}");
    assert_eq!(in_menu.received_requests("BYE").len(), 1);
    dialin.wait_for_nth_line("outcome=Shutdown", 2, Duration::from_secs(1));
    media.stop();
}

#[test]
fn reload_puts_a_new_pin_mapping_in_force_and_refuses_a_broken_file() {
    let media = conference_media();
    let server = Sipp::new(Scenario::conference_waits_for_bye())
        .sdp_media(media.local_addr())
        .spawn();
    let mut cfg = TestConfig::new(server.sip_addr());
    cfg.pin_is_conference = false;
    cfg.attempts = 1;
    let dialin = cfg.start();
    let mut with_mapping = cfg.clone();
    with_mapping.extra_pins =
        "[[pins]]\npin = \"2468024\"\nconference = \"55555\"\nserver = \"bbb1\"\n".into();

    // A broken file (the new mapping plus a typo'd value): refused, the old one stays.
    let broken = with_mapping
        .toml()
        .replace("attempts = 1", "attempts = \"one\"");
    std::fs::write(&dialin.config_path, broken).unwrap();
    dialin.signal("-HUP");
    let refusal = dialin.wait_for_line("reload refused", Duration::from_secs(5));
    assert!(refusal.contains("keeping the old one"), "{refusal}");
    dialin.wait_for_line("ivr.attempts", Duration::from_secs(2));
    let unknown = Sipp::new(Scenario::caller_waits_for_bye())
        .pcap(CallerStream::new("2468024#").tail(Duration::from_secs(6)))
        .remote(cfg.sip)
        .service(DIALLED)
        .spawn()
        .wait();
    unknown.assert_success();
    dialin.wait_for_line("outcome=InvalidPin", Duration::from_secs(2));
    assert!(!dialin.log().contains("dialling server"));

    // The valid file: the next call uses the new mapping.
    std::fs::write(&dialin.config_path, with_mapping.toml()).unwrap();
    dialin.signal("-HUP");
    dialin.wait_for_line("configuration reloaded", Duration::from_secs(5));
    caller(&cfg, "2468024#", Duration::from_secs(6))
        .spawn()
        .wait()
        .assert_success();
    let server = server.wait();
    server.assert_success();
    let invite = server.first_received("INVITE");
    let uri = invite.request_uri().unwrap();
    assert!(uri.starts_with("sip:55555@"), "Request-URI {uri}");
    media.stop();
    dialin.assert_log_free_of(&["2468024", "55555", PIN, CONFERENCE]);
}

#[test]
fn metrics_after_a_scripted_set_of_calls_match_the_calls() {
    let media = conference_media();
    let server = Sipp::new(Scenario::conference_waits_for_bye())
        .sdp_media(media.local_addr())
        .spawn();
    let mut cfg = TestConfig::new(server.sip_addr());
    cfg.pin_is_conference = false;
    cfg.attempts = 1;
    let dialin = cfg.start();
    let (code, text) = http(cfg.admin, "GET", "/metrics");
    assert_eq!(code, 200);
    assert_eq!(
        metric(&text, "dialin_calls_total", "outcome=\"bridged\""),
        0.0
    );
    assert_eq!(
        metric(
            &text,
            "dialin_build_info",
            &format!("version=\"{}\"", env!("CARGO_PKG_VERSION"))
        ),
        1.0
    );

    // One bridged call, one echo test, one wrong PIN, all at once.
    let bridged = caller(&cfg, &format!("{PIN}#"), Duration::from_secs(6)).spawn();
    let echo = caller(&cfg, "00000#", Duration::from_secs(5)).spawn();
    let wrong = Sipp::new(Scenario::caller_waits_for_bye())
        .pcap(CallerStream::new("1111111#").tail(Duration::from_secs(6)))
        .remote(cfg.sip)
        .service(DIALLED)
        .spawn();
    // While they run, the calls list shows them by number and state only.
    let mut calls = String::new();
    let listed = wait_for(Duration::from_secs(5), || {
        let code;
        (code, calls) = http(cfg.admin, "GET", "/api/v1/calls");
        assert_eq!(code, 200);
        calls.matches("\"caller\":").count() == 3
    });
    assert!(listed, "not three calls in {calls}");
    assert!(calls.contains("\"state\""), "{calls}");
    for secret in [PIN, CONFERENCE, "1111111", "1234567", "127.0.0.1"] {
        assert!(
            !calls.contains(secret),
            "/api/v1/calls shows {secret}: {calls}"
        );
    }
    // ... and by the same caller pseudonyms the log uses (once the test has read those lines).
    dialin.wait_for_nth_line("incoming call", 3, Duration::from_secs(2));
    let log = dialin.log();
    let pseudonyms: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("incoming call"))
        .filter_map(|l| l.split("caller=").nth(1)?.split_whitespace().next())
        .collect();
    assert_eq!(pseudonyms.len(), 3, "{log}");
    for p in pseudonyms {
        assert!(
            calls.contains(&format!("\"caller\":\"{p}\"")),
            "{p} not in {calls}"
        );
    }
    bridged.wait().assert_success();
    echo.wait().assert_success();
    wrong.wait().assert_success();
    server.wait().assert_success();
    media.stop();
    dialin.assert_idle(Duration::from_secs(5));

    let (_, text) = http(cfg.admin, "GET", "/metrics");
    let m = |name: &str, labels: &str| metric(&text, name, labels);
    assert_eq!(
        m("dialin_calls_total", "outcome=\"bridged\""),
        1.0,
        "{text}"
    );
    assert_eq!(m("dialin_calls_total", "outcome=\"echo\""), 1.0, "{text}");
    assert_eq!(
        m("dialin_calls_total", "outcome=\"invalid_pin\""),
        1.0,
        "{text}"
    );
    assert_eq!(
        m("dialin_calls_total", "outcome=\"caller_hangup\""),
        0.0,
        "{text}"
    );
    assert_eq!(m("dialin_pin_attempts_total", "result=\"conference\""), 1.0);
    assert_eq!(m("dialin_pin_attempts_total", "result=\"echo\""), 1.0);
    assert_eq!(m("dialin_pin_attempts_total", "result=\"invalid\""), 1.0);
    assert_eq!(
        m("dialin_call_setup_seconds_count", "phase=\"caller_answer\""),
        3.0,
        "{text}"
    );
    assert_eq!(
        m("dialin_call_setup_seconds_count", "phase=\"server_answer\""),
        1.0
    );
    for state in ["answering", "bridged", "collecting_pin", "echo"] {
        assert_eq!(
            m("dialin_calls_active", &format!("state=\"{state}\"")),
            0.0,
            "{state}"
        );
    }
    // Audio went both ways on both legs.
    for (leg, dir) in [
        ("caller", "rx"),
        ("caller", "tx"),
        ("server", "rx"),
        ("server", "tx"),
    ] {
        let labels = format!("leg=\"{leg}\",direction=\"{dir}\"");
        assert!(
            m("dialin_rtp_packets_total", &labels) > 50.0,
            "{labels}: {text}"
        );
        // 160 bytes of G.711 + 12 of header per audio packet; the caller's key presses are
        // 16-byte RFC 4733 packets, a few among hundreds.
        let per_packet = if leg == "server" { 172.0 } else { 150.0 };
        assert!(
            m("dialin_rtp_bytes_total", &labels)
                >= per_packet * m("dialin_rtp_packets_total", &labels),
            "{labels}: {text}"
        );
    }
    // Loopback loses nothing; each call's jitter is recorded once per leg that had audio.
    assert_eq!(
        m("dialin_rtp_packets_lost_total", "leg=\"caller\""),
        0.0,
        "{text}"
    );
    assert_eq!(
        m("dialin_rtp_packets_lost_total", "leg=\"server\""),
        0.0,
        "{text}"
    );
    assert_eq!(
        m("dialin_rtp_jitter_seconds_count", "leg=\"caller\""),
        3.0,
        "{text}"
    );
    assert_eq!(
        m("dialin_rtp_jitter_seconds_count", "leg=\"server\""),
        1.0,
        "{text}"
    );
    assert_eq!(m("dialin_rtp_port_pairs_in_use", ""), 0.0);
    for secret in [PIN, CONFERENCE, "1111111", "1234567", "127.0.0.1"] {
        assert!(!text.contains(secret), "/metrics shows {secret}");
    }

    // Health, readiness and the status summary of the same instance.
    assert_eq!(
        http(cfg.admin, "GET", "/healthz"),
        (200, "ok\n".to_string())
    );
    assert_eq!(http(cfg.admin, "GET", "/readyz").0, 200);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_dialin"))
        .args(["status", "--config"])
        .arg(&dialin.config_path)
        .env(ADMIN_TOKEN_ENV, ADMIN_TOKEN)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("0 active, 3 since start, 1 bridged, 1 echo tests"),
        "{stdout}"
    );
    assert!(stdout.contains("servers: bbb1"), "{stdout}");
}

#[test]
fn dialin_drain_command_drains_an_idle_instance_which_exits_0() {
    let cfg = TestConfig::new(no_server());
    let mut dialin = cfg.start();
    // Without the token the API refuses, and says why.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_dialin"))
        .args(["drain", "--admin", &cfg.admin.to_string()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("401"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(dialin.is_running());
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_dialin"))
        .args(["drain", "--config"])
        .arg(&dialin.config_path)
        .env(ADMIN_TOKEN_ENV, ADMIN_TOKEN)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let status = dialin.wait_exit(Duration::from_secs(5));
    assert!(status.success(), "exit status {status:?}");
    // Nothing listens any more: the commands say so clearly.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_dialin"))
        .args(["status", "--admin", &cfg.admin.to_string()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("is dialin running"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn json_logs_are_one_object_per_line() {
    let cfg = TestConfig::new(no_server());
    let dialin =
        crate::support::dialin::Dialin::start_with_args(&cfg.toml(), &["--log-format", "json"]);
    let line = dialin.wait_for_line("dialin listening", Duration::from_secs(1));
    let v: serde_json::Value =
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
    assert_eq!(v["level"], "INFO", "{line}");
    assert_eq!(v["message"], "dialin listening (UDP and TCP)", "{line}");
    assert!(v["timestamp"].is_string(), "{line}");
}

#[test]
fn event_socket_state_shows_in_metrics_readyz_and_status() {
    use crate::support::esl::{EslStandIn, Fault, Snapshot, PASSWORD};
    let esl = EslStandIn::start(Snapshot::Only71234, Fault::None);
    let dir = tempfile::tempdir().unwrap();
    let pw = dir.path().join("esl.pw");
    std::fs::write(&pw, format!("{PASSWORD}\n")).unwrap();
    let cfg = TestConfig::new(no_server());
    let toml = cfg.toml().replace(
        "name = \"bbb1\"\n",
        &format!(
            "name = \"bbb1\"\nesl = \"{}\"\nesl_password_file = \"{}\"\n",
            esl.addr,
            pw.display()
        ),
    ) + "[esl]\ngrace = \"1s\"\n";
    let dialin = crate::support::dialin::Dialin::start(&toml);
    esl.wait_for_snapshots(1, Duration::from_secs(5));
    let mut text = String::new();
    wait_for(Duration::from_secs(5), || {
        (_, text) = http(cfg.admin, "GET", "/metrics");
        metric(&text, "dialin_esl_connected", "server=\"bbb1\"") == 1.0
            && metric(&text, "dialin_conferences_known", "server=\"bbb1\"") == 1.0
    });
    assert_eq!(
        metric(&text, "dialin_esl_connected", "server=\"bbb1\""),
        1.0,
        "{text}"
    );
    assert_eq!(
        metric(&text, "dialin_conferences_known", "server=\"bbb1\""),
        1.0,
        "{text}"
    );
    assert!(!text.contains("71234"), "no conference number in /metrics");
    assert_eq!(http(cfg.admin, "GET", "/readyz").0, 200);
    let (_, status) = http(cfg.admin, "GET", "/api/v1/status");
    assert!(status.contains("\"event_socket\":\"Up\""), "{status}");

    // FreeSWITCH goes away: not ready (no Event Socket up), but still alive.
    esl.cut_and_refuse();
    let mut body = String::new();
    let unready = wait_for(Duration::from_secs(5), || {
        let code;
        (code, body) = http(cfg.admin, "GET", "/readyz");
        code == 503
    });
    assert!(unready, "still ready: {body}");
    assert!(body.contains("event_socket"), "{body}");
    let (_, text) = http(cfg.admin, "GET", "/metrics");
    assert_eq!(
        metric(&text, "dialin_esl_connected", "server=\"bbb1\""),
        0.0,
        "{text}"
    );
    assert_eq!(http(cfg.admin, "GET", "/healthz").0, 200);
    drop(dialin);
}

#[test]
fn a_store_that_cannot_be_read_shows_in_readyz_and_metrics() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let db = rt.block_on(crate::support::db::TestDb::postgres());
    let mut cfg = TestConfig::new(no_server());
    cfg.extra = format!("[store]\nurl = \"{}\"\n", db.url());
    let dialin = cfg.start();
    assert_eq!(http(cfg.admin, "GET", "/readyz").0, 200);
    let (_, text) = http(cfg.admin, "GET", "/metrics");
    assert_eq!(
        metric(&text, "dialin_store_errors_total", "op=\"mappings\""),
        0.0,
        "{text}"
    );

    // The database goes away under the running instance.
    let crate::support::db::TestDb::Postgres(name) = &db else {
        unreachable!("asked for PostgreSQL")
    };
    rt.block_on(async {
        use sqlx::Connection;
        let mut c = sqlx::PgConnection::connect("postgres://postgres@127.0.0.1:5432/postgres")
            .await
            .unwrap();
        sqlx::query(&format!("DROP DATABASE {name} WITH (FORCE)"))
            .execute(&mut c)
            .await
            .unwrap();
    });
    let mut body = String::new();
    let unready = wait_for(Duration::from_secs(5), || {
        let code;
        (code, body) = http(cfg.admin, "GET", "/readyz");
        code == 503
    });
    assert!(unready, "still ready: {body}");
    assert!(body.contains("store"), "{body}");
    let (_, text) = http(cfg.admin, "GET", "/metrics");
    assert!(
        metric(&text, "dialin_store_errors_total", "op=\"mappings\"") >= 1.0,
        "{text}"
    );
    // Calls still route from the last mappings read: the process stays alive.
    assert_eq!(http(cfg.admin, "GET", "/healthz").0, 200);
    drop(dialin);
}

/// Instances on one host need their own `[admin] listen` (README, "Scaling out"): a second
/// instance whose admin port is taken does not start, and says which key to change.
#[test]
fn a_second_instance_on_a_taken_admin_port_refuses_to_start() {
    let first_cfg = TestConfig::new(no_server());
    let _first = first_cfg.start();
    let mut second = TestConfig::new(no_server());
    second.admin = first_cfg.admin;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("second.toml");
    std::fs::write(&path, second.toml()).unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_dialin"))
        .args(["serve", "--config"])
        .arg(&path)
        .env("STATE_DIRECTORY", dir.path())
        .env(ADMIN_TOKEN_ENV, ADMIN_TOKEN)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let Some(status) = poll(Duration::from_secs(10), || child.try_wait().unwrap()) else {
        child.kill().ok();
        panic!("the second instance kept running on a taken admin port");
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(!status.success(), "{stderr}");
    assert!(
        stderr.contains("admin.listen") && stderr.contains(&first_cfg.admin.to_string()),
        "{stderr}"
    );
}

/// Forwards every TCP connection to `listen` on to `to` (a stand-in for a database server
/// coming back), until the process ends.
fn forward_tcp(listen: SocketAddr, to: SocketAddr) {
    let listener = std::net::TcpListener::bind(listen).expect("bind the forwarder");
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            let Ok(server) = std::net::TcpStream::connect(to) else {
                continue;
            };
            let (mut c2, mut s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
            let (mut c, mut s) = (client, server);
            std::thread::spawn(move || std::io::copy(&mut c2, &mut s2).ok());
            std::thread::spawn(move || std::io::copy(&mut s, &mut c).ok());
        }
    });
}

/// Issue 24: a PostgreSQL store that does not answer at start does not keep dialin from
/// taking calls with its config-file `[[pins]]`; `/readyz` names the store until it answers.
#[test]
fn a_store_unreachable_at_start_still_serves_config_pins_until_it_answers() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let db = rt.block_on(crate::support::db::TestDb::postgres());
    let crate::support::db::TestDb::Postgres(name) = &db else {
        unreachable!("asked for PostgreSQL")
    };
    // Nothing listens here yet.
    let db_port = SocketAddr::from((Ipv4Addr::LOCALHOST, PortBlock::take(1).base));
    let media = conference_media();
    let server = Sipp::new(Scenario::conference_hangs_up())
        .sdp_media(media.local_addr())
        .pause(Duration::from_secs(2))
        .spawn();
    let mut cfg = TestConfig::new(server.sip_addr());
    cfg.extra = format!("[store]\nurl = \"postgres://postgres@{db_port}/{name}\"\n");
    let dialin = cfg.start();
    assert_eq!(http(cfg.admin, "GET", "/healthz").0, 200);
    let (code, body) = http(cfg.admin, "GET", "/readyz");
    assert_eq!(code, 503, "{body}");
    assert!(body.contains("store"), "{body}");

    // The config-file PIN reaches its conference meanwhile.
    let caller = Sipp::new(Scenario::caller_waits_for_bye())
        .pcap(CallerStream::new(&format!("{PIN}#")).tail(Duration::from_secs(4)))
        .remote(cfg.sip)
        .service(DIALLED)
        .spawn();
    let server = server.wait();
    server.assert_success();
    caller.wait().assert_success();
    let invite = server.first_received("INVITE");
    assert!(
        invite
            .request_uri()
            .unwrap()
            .starts_with(&format!("sip:{CONFERENCE}@")),
        "{}",
        invite.text
    );
    assert_eq!(http(cfg.admin, "GET", "/readyz").0, 503);

    // The database answers: dialin migrates it, reads it and becomes ready.
    forward_tcp(db_port, SocketAddr::from((Ipv4Addr::LOCALHOST, 5432)));
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (code, body) = http(cfg.admin, "GET", "/readyz");
        if code == 200 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "never ready: {body}");
        std::thread::sleep(Duration::from_millis(200));
    }
    dialin.wait_for_line("PIN store open", Duration::from_secs(1));
    media.stop();
    drop(dialin);
}
