//! End to end: a PIN mapping added over the admin API routes the next call without restart
//! (sipp caller → dialin → sipp stand-in conference), for a conference number and for a BBB
//! meeting ID resolved through a local stand-in of the BBB API.

mod support;

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;
use support::dialin::{Dialin, TestConfig, ADMIN_TOKEN};
use support::media::{RtpPeer, SendTo};
use support::pcap::CallerStream;
use support::ports::PortBlock;
use support::sipp::{Scenario, Sipp};

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

/// A stand-in BBB API: `getMeetingInfo` for `room-9` answers a running meeting with voiceBridge
/// 73456 (the documented answer's shape), but only with a correct SHA-256 checksum.
fn fake_bbb_api(secret: &'static str) -> SocketAddr {
    use axum::extract::RawQuery;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let app = axum::Router::new().route(
                "/bigbluebutton/api/getMeetingInfo",
                axum::routing::get(move |RawQuery(q): RawQuery| async move {
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
    addr
}

#[test]
fn a_meeting_id_mapping_is_resolved_through_the_bbb_api() {
    let secret = "fake-bbb-shared-secret-123";
    let bbb = fake_bbb_api(secret);
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
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    dialin.wait_for_line("PIN mappings updated", Duration::from_secs(1));
    let uri = call_and_get_conference_uri(&cfg, server, "5552468");
    assert!(uri.starts_with("sip:72468@"), "Request-URI {uri}");
    dialin.assert_log_free_of(&["5552468", "72468"]);
}
