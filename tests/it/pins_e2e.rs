//! End to end: a PIN mapping added over the admin API routes the next call without restart
//! (sipp caller → dialin → sipp stand-in conference), for a conference number and for a BBB
//! meeting ID resolved through a local stand-in of the BBB API.

use crate::support::dialin::{Dialin, TestConfig, ADMIN_TOKEN};
use crate::support::media::{RtpPeer, SendTo};
use crate::support::pcap::CallerStream;
use crate::support::ports::PortBlock;
use crate::support::sipp::{Scenario, Sipp};
use crate::support::wait::wait_for;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use std::time::Instant;

/// The number the callers dial; it plays no part in routing.
const DIALLED: &str = "4930555000";

fn conference_media() -> RtpPeer {
    let port = PortBlock::take(2).base;
    RtpPeer::start(
        SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
        SendTo::FirstSource,
    )
}

/// One admin API request: (status, body).
fn api(dialin: &Dialin, method: reqwest::Method, path: &str, body: Option<&str>) -> (u16, String) {
    let url = format!("{}{path}", dialin.admin_url());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut r = reqwest::Client::new()
            .request(method, url)
            .bearer_auth(ADMIN_TOKEN);
        if let Some(b) = body {
            r = r
                .header("content-type", "application/json")
                .body(b.to_string());
        }
        let resp = r.send().await.expect("admin API reachable");
        (resp.status().as_u16(), resp.text().await.unwrap())
    })
}

/// Calls dialin, types `pin`, and returns the Request-URI the stand-in conference received.
fn call_and_get_conference_uri(cfg: &TestConfig, server: Sipp, pin: &str) -> String {
    let server = server.spawn();
    let caller = Sipp::new(Scenario::caller_hangs_up())
        .pcap(CallerStream::new(&format!("{pin}#")).tail(Duration::from_secs(2)))
        .pause(Duration::from_secs(5))
        .remote(cfg.sip)
        .service(DIALLED)
        .spawn();
    caller.wait().assert_success();
    let server = server.wait();
    server.assert_success();
    server
        .first_received("INVITE")
        .request_uri()
        .unwrap()
        .to_string()
}

#[test]
fn a_mapping_added_over_the_api_routes_the_next_call() {
    let media = conference_media();
    let server = Sipp::new(Scenario::conference_waits_for_bye()).sdp_media(media.local_addr());
    let mut cfg = TestConfig::new(server.sip_addr());
    // Only mappings route: the PIN is not taken as a conference number.
    cfg.pin_is_conference = false;
    let dialin = cfg.start();
    assert_eq!(
        api(&dialin, reqwest::Method::GET, "/api/v1/pins/5551234", None).0,
        404
    );
    let (status, body) = api(
        &dialin,
        reqwest::Method::PUT,
        "/api/v1/pins/5551234",
        Some(r#"{"conference": "72345", "server": "bbb1", "label": "e2e"}"#),
    );
    assert_eq!(status, 201, "{body}");
    let uri = call_and_get_conference_uri(&cfg, server, "5551234");
    assert!(uri.starts_with("sip:72345@"), "Request-URI {uri}");
    dialin.wait_for_line("PIN mappings updated", Duration::from_secs(1));
    dialin.assert_idle(Duration::from_secs(5));
    dialin.assert_log_free_of(&["5551234", "72345"]);
}

/// The stand-in BBB API and its controls.
struct FakeBbb {
    /// Where it listens.
    addr: SocketAddr,
    /// Whether `room-late` (voiceBridge 73457) runs; before, the API says `notFound`.
    late_running: Arc<AtomicBool>,
    /// How many `getMeetingInfo` requests it answered.
    asked: Arc<AtomicUsize>,
}

/// A stand-in BBB API: `getMeetingInfo` for `room-9` answers a running meeting with voiceBridge
/// 73456 (the documented answer's shape), `room-late` likewise with 73457 once
/// [`FakeBbb::late_running`] is set, but only with a correct SHA-256 checksum.
fn fake_bbb_api(secret: &'static str) -> FakeBbb {
    use axum::extract::RawQuery;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    let late_running = Arc::new(AtomicBool::new(false));
    let asked = Arc::new(AtomicUsize::new(0));
    let fake = FakeBbb {
        addr,
        late_running: late_running.clone(),
        asked: asked.clone(),
    };
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let app = axum::Router::new().route(
                "/bigbluebutton/api/getMeetingInfo",
                axum::routing::get(move |RawQuery(q): RawQuery| async move {
                    asked.fetch_add(1, Ordering::SeqCst);
                    let q = q.unwrap_or_default();
                    let (query, sum) = q.rsplit_once("&checksum=").unwrap_or((&q, ""));
                    let want = dialin::bbb_api::checksum::checksum(
                        dialin::config::ChecksumAlgorithm::Sha256,
                        "getMeetingInfo",
                        query,
                        secret,
                    );
                    if sum != want {
                        return "<response><returncode>FAILED</returncode><messageKey>checksumError</messageKey></response>".to_string();
                    }
                    let late = query == "meetingID=room-late" && late_running.load(Ordering::SeqCst);
                    if late {
                        return "<response><returncode>SUCCESS</returncode><meetingName>Late</meetingName><meetingID>room-late</meetingID><voiceBridge>73457</voiceBridge><running>true</running><attendees/><metadata/></response>".to_string();
                    }
                    if query != "meetingID=room-9" {
                        return "<response><returncode>FAILED</returncode><messageKey>notFound</messageKey></response>".to_string();
                    }
                    "<response><returncode>SUCCESS</returncode><meetingName>Room 9</meetingName><meetingID>room-9</meetingID><voiceBridge>73456</voiceBridge><running>true</running><attendees/><metadata/></response>".to_string()
                }),
            );
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            axum::serve(listener, app).await.unwrap();
        });
    });
    fake
}

/// A test config with a `[[bbb_api]]` at `bbb` for server bbb1, PINs routed by mappings only,
/// and `ivr.max_wait` set to `max_wait`.
fn meeting_config(server: SocketAddr, bbb: SocketAddr, secret: &str, max_wait: &str) -> String {
    let mut cfg = TestConfig::new(server);
    cfg.pin_is_conference = false;
    cfg.extra = format!(
        "[[bbb_api]]\nurl = \"http://{bbb}/bigbluebutton/api\"\nsecret = \"{secret}\"\nserver = \"bbb1\"\n"
    );
    let toml = cfg.toml();
    assert!(
        toml.contains("[ivr]\n"),
        "the test config has an [ivr] section"
    );
    toml.replacen("[ivr]\n", &format!("[ivr]\nmax_wait = \"{max_wait}\"\n"), 1)
}

/// The `[sip] listen` address in a config made by [`meeting_config`].
fn sip_listen(toml: &str) -> SocketAddr {
    let line = toml
        .lines()
        .find(|l| l.starts_with("listen = ") && l.contains(":"))
        .expect("listen line");
    line.trim_start_matches("listen = ")
        .trim_matches('"')
        .parse()
        .unwrap()
}

#[test]
fn a_meeting_id_mapping_is_resolved_through_the_bbb_api() {
    let secret = "fake-bbb-shared-secret-123";
    let bbb = fake_bbb_api(secret).addr;
    let media = conference_media();
    let server = Sipp::new(Scenario::conference_waits_for_bye()).sdp_media(media.local_addr());
    let mut cfg = TestConfig::new(server.sip_addr());
    cfg.pin_is_conference = false;
    cfg.extra = format!(
        "[[bbb_api]]\nurl = \"http://{bbb}/bigbluebutton/api\"\nsecret = \"{secret}\"\nserver = \"bbb1\"\n"
    );
    let dialin = cfg.start();
    let (status, body) = api(
        &dialin,
        reqwest::Method::PUT,
        "/api/v1/pins/5559876",
        Some(r#"{"meeting_id": "room-9"}"#),
    );
    assert_eq!(status, 201, "{body}");
    let uri = call_and_get_conference_uri(&cfg, server, "5559876");
    assert!(uri.starts_with("sip:73456@"), "Request-URI {uri}");
    dialin.assert_idle(Duration::from_secs(5));
    dialin.assert_log_free_of(&["5559876", "73456", "room-9", secret]);
}

#[test]
fn a_mapping_set_with_the_cli_reaches_the_running_dialin_within_a_second() {
    let media = conference_media();
    let server = Sipp::new(Scenario::conference_waits_for_bye()).sdp_media(media.local_addr());
    let mut cfg = TestConfig::new(server.sip_addr());
    cfg.pin_is_conference = false;
    let dialin = cfg.start();
    // Another process writes the store dialin uses (the SQLite file in its state directory).
    let state = dialin.config_path.parent().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_dialin"))
        .args([
            "pins",
            "set",
            "5552468",
            "--conference",
            "72468",
            "--config",
        ])
        .arg(&dialin.config_path)
        .env("STATE_DIRECTORY", state)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    // It says which store it wrote: the one dialin created in its state directory.
    let file = state.join("dialin-pins.db");
    assert_eq!(
        err,
        format!("dialin pins: store sqlite://{}\n", file.display())
    );
    assert!(dialin
        .wait_for_line("PIN store open", Duration::from_secs(1))
        .contains(&format!("location=sqlite://{}", file.display())));
    dialin.wait_for_line("PIN mappings updated", Duration::from_secs(1));
    let uri = call_and_get_conference_uri(&cfg, server, "5552468");
    assert!(uri.starts_with("sip:72468@"), "Request-URI {uri}");
    dialin.assert_log_free_of(&["5552468", "72468"]);
}

#[test]
fn a_caller_waits_for_a_meeting_id_until_the_bbb_api_reports_it_running() {
    let secret = "fake-bbb-shared-secret-456";
    let bbb = fake_bbb_api(secret);
    let media = conference_media();
    let server = Sipp::new(Scenario::conference_waits_for_bye())
        .sdp_media(media.local_addr())
        .spawn();
    let toml = meeting_config(server.sip_addr(), bbb.addr, secret, "1m");
    let dialin = Dialin::start(&toml);
    let (status, body) = api(
        &dialin,
        reqwest::Method::PUT,
        "/api/v1/pins/5557777",
        Some(r#"{"meeting_id": "room-late"}"#),
    );
    assert_eq!(status, 201, "{body}");
    dialin.wait_for_line("PIN mappings updated", Duration::from_secs(1));
    let caller = Sipp::new(Scenario::caller_hangs_up())
        .pcap(CallerStream::new("5557777#").tail(Duration::from_secs(14)))
        .pause(Duration::from_secs(16))
        .remote(sip_listen(&toml))
        .service(DIALLED)
        .spawn();
    dialin.wait_for_line("meeting not started: caller waits", Duration::from_secs(10));
    // Holding: nothing is dialled while the API says the meeting does not exist. A fixed
    // wait on purpose: that nothing happens for a time is the behaviour under test.
    std::thread::sleep(Duration::from_secs(3));
    assert!(server.received_so_far("INVITE").is_none());
    assert!(
        dialin
            .log()
            .contains("the mapped meeting is not running yet"),
        "not an invalid PIN"
    );
    let started = Instant::now();
    bbb.late_running.store(true, Ordering::SeqCst);
    // The API is asked every 5 s while the caller waits (no Event Socket here).
    let invite = server.wait_received("INVITE", Duration::from_secs(7));
    let took = started.elapsed();
    assert!(
        took <= Duration::from_millis(5_500),
        "joined {took:?} after the meeting started"
    );
    let uri = invite.request_uri().unwrap().to_string();
    assert!(uri.starts_with("sip:73457@"), "Request-URI {uri}");
    // Bounded: the first lookup plus one every 5 s (about 3 in these ~8 s), never a flood.
    let asked = bbb.asked.load(Ordering::SeqCst);
    assert!((2..=4).contains(&asked), "the API was asked {asked} times");
    caller.wait().assert_success();
    server.wait().assert_success();
    assert!(media.stop().caller_audio() > 50, "bridged audio flowed");
    dialin.wait_for_line("meeting started: joining", Duration::from_secs(1));
    dialin.assert_idle(Duration::from_secs(5));
    dialin.assert_log_free_of(&["5557777", "73457", "room-late", secret]);
}

#[test]
fn max_wait_ends_the_wait_with_the_unavailable_prompt_and_a_bye() {
    let secret = "fake-bbb-shared-secret-789";
    let bbb = fake_bbb_api(secret);
    let server = Sipp::new(Scenario::conference_waits_for_bye()).spawn();
    let toml = meeting_config(server.sip_addr(), bbb.addr, secret, "3s");
    let dialin = Dialin::start(&toml);
    let (status, body) = api(
        &dialin,
        reqwest::Method::PUT,
        "/api/v1/pins/5557778",
        Some(r#"{"meeting_id": "room-late"}"#),
    );
    assert_eq!(status, 201, "{body}");
    dialin.wait_for_line("PIN mappings updated", Duration::from_secs(1));
    let caller = Sipp::new(Scenario::caller_waits_for_bye())
        .pcap(CallerStream::new("5557778#").tail(Duration::from_secs(15)))
        .remote(sip_listen(&toml))
        .service(DIALLED)
        .spawn();
    dialin.wait_for_line("meeting not started: caller waits", Duration::from_secs(10));
    let waiting = Instant::now();
    dialin.wait_for_line("ivr.max_wait is over: goodbye", Duration::from_secs(6));
    let waited = waiting.elapsed();
    assert!(
        waited >= Duration::from_millis(2_500),
        "max_wait of 3 s ended after {waited:?}"
    );
    // The "unavailable … goodbye" prompt plays, then dialin hangs up.
    let caller = caller.wait();
    caller.assert_success();
    assert_eq!(caller.received_requests("BYE").len(), 1, "dialin hung up");
    let line = dialin.wait_for_line("call ended", Duration::from_secs(2));
    assert!(line.contains("outcome=NoConference"), "{line}");
    let bye_after = waiting.elapsed();
    assert!(
        bye_after >= waited + Duration::from_secs(1),
        "the BYE came {bye_after:?} after the wait began: no prompt was played"
    );
    assert!(server.received_so_far("INVITE").is_none());
    dialin.assert_idle(Duration::from_secs(5));
    dialin.assert_log_free_of(&["5557778", "room-late", secret]);
}

#[test]
fn an_unreachable_bbb_api_gives_unavailable_not_invalid_pin() {
    let server = Sipp::new(Scenario::conference_waits_for_bye()).spawn();
    let secret = "fake-bbb-shared-secret-000";
    // Nothing listens on port 1.
    let dead: SocketAddr = "127.0.0.1:1".parse().unwrap();
    let toml = meeting_config(server.sip_addr(), dead, secret, "1m");
    let dialin = Dialin::start(&toml);
    let (status, body) = api(
        &dialin,
        reqwest::Method::PUT,
        "/api/v1/pins/5557779",
        Some(r#"{"meeting_id": "room-gone"}"#),
    );
    assert_eq!(status, 201, "{body}");
    dialin.wait_for_line("PIN mappings updated", Duration::from_secs(1));
    let caller = Sipp::new(Scenario::caller_waits_for_bye())
        .pcap(CallerStream::new("5557779#").tail(Duration::from_secs(10)))
        .remote(sip_listen(&toml))
        .service(DIALLED)
        .spawn();
    let caller = caller.wait();
    caller.assert_success();
    assert_eq!(caller.received_requests("BYE").len(), 1, "dialin hung up");
    let line = dialin.wait_for_line("call ended", Duration::from_secs(2));
    assert!(line.contains("outcome=NoConference"), "{line}");
    let log = dialin.log();
    assert!(log.contains("meeting lookup failed"), "{log}");
    assert!(!log.contains("caller waits"), "{log}");
    assert!(server.received_so_far("INVITE").is_none());
    dialin.assert_log_free_of(&["5557779", "room-gone", secret]);
}

#[test]
fn a_waiting_meeting_id_caller_joins_within_a_second_of_conference_create() {
    use crate::support::esl::{conference_create, EslStandIn, Fault, Snapshot, PASSWORD};
    let secret = "fake-bbb-shared-secret-321";
    let bbb = fake_bbb_api(secret);
    let media = conference_media();
    let server = Sipp::new(Scenario::conference_waits_for_bye())
        .sdp_media(media.local_addr())
        .spawn();
    // bbb1 has an Event Socket (the stand-in replays captured FreeSWITCH bytes; no conference
    // runs), so dialin's live directory sees the meeting's conference being created.
    let esl = EslStandIn::start(Snapshot::Empty, Fault::None);
    let dir = tempfile::tempdir().unwrap();
    let pw = dir.path().join("esl.pw");
    std::fs::write(&pw, format!("{PASSWORD}\n")).unwrap();
    let toml = meeting_config(server.sip_addr(), bbb.addr, secret, "1m");
    let sip_line = format!("sip = \"sip:{}\"\n", server.sip_addr());
    assert!(toml.contains(&sip_line));
    let toml = toml.replacen(
        &sip_line,
        &format!(
            "{sip_line}esl = \"{}\"\nesl_password_file = \"{}\"\n",
            esl.addr,
            pw.display()
        ),
        1,
    );
    let dialin = Dialin::start(&toml);
    esl.wait_for_snapshots(1, Duration::from_secs(5));
    let (status, body) = api(
        &dialin,
        reqwest::Method::PUT,
        "/api/v1/pins/5557780",
        Some(r#"{"meeting_id": "room-late"}"#),
    );
    assert_eq!(status, 201, "{body}");
    dialin.wait_for_line("PIN mappings updated", Duration::from_secs(1));
    let caller = Sipp::new(Scenario::caller_hangs_up())
        .pcap(CallerStream::new("5557780#").tail(Duration::from_secs(14)))
        .rtp_echo()
        .pause(Duration::from_secs(16))
        .remote(sip_listen(&toml))
        .service(DIALLED)
        .spawn();
    dialin.wait_for_line("meeting not started: caller waits", Duration::from_secs(10));
    // Wait for a scheduled lookup, so the next one is ~5 s away: a join within a second of
    // the conference-create event can then only come from the directory's report.
    let asked = bbb.asked.load(Ordering::SeqCst);
    assert!(
        wait_for(Duration::from_secs(7), || bbb.asked.load(Ordering::SeqCst)
            != asked),
        "no lookup every 5 s"
    );
    // A moment for the lookup's "not running" to be acted on, and nothing may be dialled
    // meanwhile: a fixed wait, since nothing is to happen.
    std::thread::sleep(Duration::from_millis(300));
    assert!(server.received_so_far("INVITE").is_none());
    // The frontend starts the meeting; its first participant's audio creates the conference.
    bbb.late_running.store(true, Ordering::SeqCst);
    let created = Instant::now();
    esl.push(&conference_create("73457"));
    let invite = server.wait_received("INVITE", Duration::from_secs(3));
    let took = created.elapsed();
    assert!(
        took < Duration::from_secs(1),
        "joined {took:?} after conference-create"
    );
    let uri = invite.request_uri().unwrap().to_string();
    assert!(uri.starts_with("sip:73457@"), "Request-URI {uri}");
    caller.wait().assert_success();
    server.wait().assert_success();
    assert!(media.stop().caller_audio() > 50, "bridged audio flowed");
    dialin.assert_log_free_of(&["5557780", "73457", "room-late", secret, PASSWORD]);
}
