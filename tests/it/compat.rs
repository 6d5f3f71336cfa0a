//! Provider compatibility through the real `dialin` binary: what real trunks send beyond the
//! textbook INVITE (proxies with Record-Route and rport, compact headers, several Vias), session
//! timers (RFC 4028) and extensions in `Require` (100rel and unknown ones).

use crate::support::dialin::TestConfig;
use crate::support::pcap::CallerStream;
use crate::support::ports::PortBlock;
use crate::support::scenario::{CALLER_NAME, CALLER_USER};
use crate::support::siplog::Direction;
use crate::support::sipp::{Scenario, Sipp, SippOutcome};
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

/// The number the callers dial.
const DIALLED: &str = "4930555000";

/// A SIP address where nothing listens: these tests never reach a server.
fn no_server() -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, PortBlock::take(1).base))
}

/// A caller scenario from `tests/sipp/` with the caller keys' defaults and `se`.
fn caller(name: &str, xml: &str, se: &str) -> Scenario {
    let mut s = Scenario::custom(name, xml);
    s.default_keys = vec![
        ("caller_name".into(), CALLER_NAME.into()),
        ("caller_user".into(), CALLER_USER.into()),
        ("se".into(), se.into()),
    ];
    s
}

/// A stock caller scenario with `headers` (lines) added to its INVITE.
fn with_invite_headers(mut s: Scenario, headers: &[&str]) -> Scenario {
    let marker = "User-Agent: dialin-test-caller";
    assert!(s.xml.contains(marker), "{} has no User-Agent line", s.name);
    let extra: String = headers.iter().map(|h| format!("\n      {h}")).collect();
    s.xml = s.xml.replacen(marker, &format!("{marker}{extra}"), 1);
    s
}

/// A caller stream without packets (the caller stays silent in the voice menu).
fn silent() -> CallerStream {
    CallerStream::new("")
        .lead(Duration::ZERO)
        .tail(Duration::ZERO)
}

/// The response with `code` to the request `method` that sipp received.
fn response(outcome: &SippOutcome, code: u16, method: &str) -> crate::support::siplog::SipMessage {
    outcome
        .messages()
        .into_iter()
        .find(|m| {
            m.direction == Direction::Received
                && m.status_code() == Some(code)
                && m.cseq_method() == Some(method)
        })
        .unwrap_or_else(|| panic!("no {code} to {method} in\n{}", outcome.report()))
}

/// Asserts that dialin sent no reliable provisional response and never required 100rel.
fn assert_no_100rel(outcome: &SippOutcome) {
    for m in outcome.messages() {
        if m.direction == Direction::Received {
            assert!(m.header("RSeq").is_none(), "{}", m.text);
            assert!(
                !m.headers("Require").iter().any(|v| v.contains("100rel")),
                "{}",
                m.text
            );
        }
    }
}

#[test]
fn a_call_through_a_provider_proxy_with_compact_headers_and_record_route() {
    let mut cfg = TestConfig::new(no_server());
    cfg.pin_is_conference = false;
    let dialin = cfg.start();
    let scenario = caller(
        "caller_provider_compat",
        include_str!("../sipp/caller_provider_compat.xml"),
        "0",
    );
    // Three wrong PINs: dialin says goodbye and hangs up, so its BYE must find the proxy.
    let outcome = Sipp::new(scenario)
        .pcap(CallerStream::new("11111#22222#33333#").tail(Duration::from_secs(8)))
        .remote(cfg.sip)
        .service(DIALLED)
        .spawn()
        .wait();
    // Success already means: the responses followed received/rport past the wrong Via host, and
    // the BYE followed the Record-Route set past the unreachable Contact.
    outcome.assert_success();
    let ok = response(&outcome, 200, "INVITE");
    // Allow and Supported reach a provider behind a proxy as well.
    assert_eq!(
        ok.header("Allow"),
        Some("INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE"),
        "{}",
        ok.text
    );
    assert_eq!(ok.header("Supported"), Some("timer"), "{}", ok.text);
    let vias = ok.headers("Via");
    assert_eq!(vias.len(), 2, "both Vias come back:\n{}", ok.text);
    assert!(vias[0].contains("received=127.0.0.1") && vias[0].contains("rport="));
    assert!(vias[1].contains("198.51.100.7"));
    let rr = ok.headers("Record-Route").join(",");
    let (sipp_at, proxy_at) = (rr.find("127.0.0.1"), rr.find("198.51.100.8"));
    assert!(
        sipp_at.is_some() && proxy_at.is_some() && sipp_at < proxy_at,
        "the 200 copies Record-Route in order:\n{}",
        ok.text
    );
    assert_no_100rel(&outcome);
    let bye = outcome.first_received("BYE");
    assert!(
        bye.request_uri().unwrap().contains("198.51.100.7"),
        "the BYE's Request-URI is the caller's Contact: {}",
        bye.start_line()
    );
    let route = bye.headers("Route").join(",");
    let (first, second) = (route.find("127.0.0.1"), route.find("198.51.100.8"));
    assert!(
        first.is_some() && second.is_some() && first < second,
        "the BYE carries the route set in order:\n{}",
        bye.text
    );
    dialin.assert_idle(Duration::from_secs(5));
}

#[test]
fn session_refreshes_by_update_and_reinvite_keep_the_call_up() {
    let mut cfg = TestConfig::new(no_server());
    cfg.sip_extra = "session_min_se = \"2s\"".into();
    let dialin = cfg.start();
    let scenario = caller(
        "caller_session_refresh",
        include_str!("../sipp/caller_session_refresh.xml"),
        "6",
    );
    let outcome = Sipp::new(scenario)
        .remote(cfg.sip)
        .service(DIALLED)
        .spawn()
        .wait();
    // 7.5 s with a 6 s session: without honoured refreshes dialin's BYE would abort the call.
    outcome.assert_success();
    for method in ["INVITE", "UPDATE"] {
        let ok = response(&outcome, 200, method);
        assert_eq!(
            ok.header("Session-Expires"),
            Some("6;refresher=uac"),
            "{}",
            ok.text
        );
        assert!(
            ok.headers("Require").iter().any(|v| v.contains("timer")),
            "{}",
            ok.text
        );
    }
    assert!(!dialin.log().contains("session timer expired"));
    dialin.assert_idle(Duration::from_secs(5));
}

#[test]
fn a_session_nobody_refreshes_is_ended() {
    let mut cfg = TestConfig::new(no_server());
    cfg.sip_extra = "session_min_se = \"2s\"".into();
    let dialin = cfg.start();
    let scenario = with_invite_headers(
        Scenario::caller_waits_for_bye(),
        &["Supported: timer", "Session-Expires: 3;refresher=uac"],
    );
    let outcome = Sipp::new(scenario)
        .pcap(silent())
        .remote(cfg.sip)
        .service(DIALLED)
        .spawn()
        .wait();
    outcome.assert_success();
    let at = |method: &str, dir: Direction| {
        outcome
            .messages()
            .into_iter()
            .find(|m| m.direction == dir && m.method() == Some(method))
            .and_then(|m| m.at_micros)
            .unwrap()
    };
    // Expiry of a caller-refreshed 3 s session: 3 s minus a third, so about 2 s after the ACK.
    let after = at("BYE", Direction::Received) - at("ACK", Direction::Sent);
    assert!(
        (1_500_000..3_500_000).contains(&after),
        "BYE {after} µs after the ACK"
    );
    dialin.wait_for_line("session timer expired", Duration::from_secs(1));
    dialin.assert_idle(Duration::from_secs(5));
}

#[test]
fn dialin_refreshes_when_the_caller_cannot() {
    let mut cfg = TestConfig::new(no_server());
    cfg.sip_extra = "session_min_se = \"2s\"".into();
    let dialin = cfg.start();
    let scenario = caller(
        "caller_refreshed_by_dialin",
        include_str!("../sipp/caller_refreshed_by_dialin.xml"),
        "4",
    );
    let outcome = Sipp::new(scenario)
        .remote(cfg.sip)
        .service(DIALLED)
        .spawn()
        .wait();
    // Success means dialin's refresh re-INVITE came (at half the interval) and the call
    // outlived the 4 s session.
    outcome.assert_success();
    let ok = response(&outcome, 200, "INVITE");
    assert_eq!(
        ok.header("Session-Expires"),
        Some("4;refresher=uas"),
        "{}",
        ok.text
    );
    assert!(
        !ok.headers("Require").iter().any(|v| v.contains("timer")),
        "a caller without timer support is not required to have it:\n{}",
        ok.text
    );
    let refresh = outcome.first_received("INVITE");
    assert_eq!(refresh.header("Session-Expires"), Some("4;refresher=uas"));
    assert!(
        refresh.body().contains("m=audio"),
        "the refresh carries our SDP"
    );
    dialin.assert_idle(Duration::from_secs(5));
}

#[test]
fn a_session_interval_below_min_se_gets_422() {
    let cfg = TestConfig::new(no_server());
    let dialin = cfg.start();
    let scenario = with_invite_headers(
        Scenario::caller_rejected(),
        &["Supported: timer", "Session-Expires: 30"],
    );
    let outcome = Sipp::new(scenario)
        .remote(cfg.sip)
        .service(DIALLED)
        .spawn()
        .wait();
    outcome.assert_success();
    assert_eq!(outcome.final_response_code(), Some(422));
    assert_eq!(
        response(&outcome, 422, "INVITE").header("Min-SE"),
        Some("90")
    );
    assert_eq!(dialin.status_value("calls_started"), 0);
}

#[test]
fn an_unknown_required_extension_gets_420_with_unsupported() {
    let cfg = TestConfig::new(no_server());
    let dialin = cfg.start();
    let scenario = with_invite_headers(
        Scenario::caller_rejected(),
        &["Supported: timer", "Require: 100rel, replaces"],
    );
    let outcome = Sipp::new(scenario)
        .remote(cfg.sip)
        .service(DIALLED)
        .spawn()
        .wait();
    outcome.assert_success();
    assert_eq!(outcome.final_response_code(), Some(420));
    let refusal = response(&outcome, 420, "INVITE");
    assert_eq!(refusal.header("Unsupported"), Some("replaces"));
    assert_eq!(dialin.status_value("calls_started"), 0);
}

#[test]
fn require_100rel_is_honoured_by_sending_no_provisional_but_100() {
    let mut cfg = TestConfig::new(no_server());
    cfg.answer_delay = "1s";
    let dialin = cfg.start();
    let scenario = with_invite_headers(
        Scenario::caller_hangs_up(),
        &["Supported: 100rel", "Require: 100rel"],
    );
    let outcome = Sipp::new(scenario)
        .pcap(silent())
        .pause(Duration::from_secs(1))
        .remote(cfg.sip)
        .service(DIALLED)
        .spawn()
        .wait();
    outcome.assert_success();
    let provisional: Vec<u16> = outcome
        .messages()
        .into_iter()
        .filter(|m| m.direction == Direction::Received)
        .filter_map(|m| m.status_code())
        .filter(|c| (101..200).contains(c))
        .collect();
    assert!(provisional.is_empty(), "provisionals sent: {provisional:?}");
    assert_no_100rel(&outcome);
    dialin.assert_idle(Duration::from_secs(5));
}

/// `scenario` with its pcap started by the 183 (early media) instead of after the ACK.
fn pcap_on_183(mut s: Scenario) -> Scenario {
    let play = "<exec play_pcap_audio=\"caller.pcap\"/>";
    s.xml = s
        .xml
        .replace(&format!("<nop><action>{play}</action></nop>"), "")
        .replacen(
            "<recv response=\"183\" optional=\"true\"/>",
            &format!("<recv response=\"183\"><action>{play}</action></recv>"),
            1,
        );
    assert!(s.xml.contains(play), "{} has no 183 receive", s.name);
    s
}

#[test]
fn early_media_plays_the_menu_in_183_and_answers_once_bridged() {
    let mut cfg = TestConfig::new(no_server());
    cfg.sip_extra = "early_media = true".into();
    let dialin = cfg.start();
    let outcome = Sipp::new(pcap_on_183(Scenario::caller_hangs_up()))
        .pcap(CallerStream::new("00000#").tail(Duration::from_secs(1)))
        .pause(Duration::from_secs(2))
        .remote(cfg.sip)
        .service(DIALLED)
        .spawn()
        .wait();
    outcome.assert_success();
    let progress = response(&outcome, 183, "INVITE");
    assert!(progress.body().contains("m=audio"), "{}", progress.text);
    let ok = response(&outcome, 200, "INVITE");
    assert_eq!(ok.body(), progress.body(), "the 200 repeats the 183's SDP");
    // The 200 came only after the PIN was typed in early media.
    let gap = ok.at_micros.unwrap() - progress.at_micros.unwrap();
    assert!(gap > 500_000, "200 only {gap} µs after the 183");
    // The echo test is counted as such, not as a call bridged to a server.
    assert_eq!(dialin.status_value("echo_tests"), 1);
    assert_eq!(dialin.status_value("calls_bridged"), 0);
    dialin.assert_idle(Duration::from_secs(5));
}

#[test]
fn early_media_calls_that_fail_in_the_menu_are_never_answered() {
    let mut cfg = TestConfig::new(no_server());
    cfg.pin_is_conference = false;
    cfg.sip_extra = "early_media = true".into();
    let dialin = cfg.start();
    let outcome = Sipp::new(pcap_on_183(Scenario::caller_rejected()))
        .pcap(CallerStream::new("11111#22222#33333#").tail(Duration::from_secs(8)))
        .remote(cfg.sip)
        .service(DIALLED)
        .spawn()
        .wait();
    outcome.assert_success();
    assert_eq!(outcome.final_response_code(), Some(480));
    dialin.wait_for_line("outcome=InvalidPin", Duration::from_secs(2));
    dialin.assert_idle(Duration::from_secs(5));
}

/// `sip.user_agent = ""`: nothing dialin sends on either leg (responses, its own INVITE, ACK
/// and BYE) names its software in `User-Agent` or `Server`, which would tell a scanner what to
/// try.
#[test]
fn an_empty_user_agent_sends_no_user_agent_or_server_header() {
    let media_port = PortBlock::take(2).base;
    let media = crate::support::media::RtpPeer::start(
        SocketAddr::from((Ipv4Addr::LOCALHOST, media_port)),
        crate::support::media::SendTo::FirstSource,
    );
    let server = Sipp::new(Scenario::conference_hangs_up())
        .sdp_media(media.local_addr())
        .pause(Duration::from_secs(2))
        .spawn();
    let mut cfg = TestConfig::new(server.sip_addr());
    cfg.sip_extra = "user_agent = \"\"".into();
    let dialin = cfg.start();
    let caller = Sipp::new(Scenario::caller_waits_for_bye())
        .pcap(CallerStream::new("71234#").tail(Duration::from_secs(4)))
        .remote(cfg.sip)
        .service(DIALLED)
        .spawn();
    let server = server.wait();
    server.assert_success();
    let caller = caller.wait();
    caller.assert_success();
    media.stop();
    let mut seen = 0;
    for outcome in [&caller, &server] {
        for m in outcome.messages() {
            if m.direction != Direction::Received {
                continue;
            }
            seen += 1;
            for name in ["User-Agent", "Server"] {
                assert!(m.header(name).is_none(), "{name} in\n{}", m.text);
            }
        }
    }
    // Both legs' requests and responses were looked at: 100, 200 and BYE to the caller,
    // INVITE, ACK and the 200 to BYE to the server.
    assert!(seen >= 6, "only {seen} messages from dialin");
    dialin.assert_idle(Duration::from_secs(5));
}
