//! A cluster: real Kamailio (`deploy/kamailio/kamailio.cfg`, dispatcher with OPTIONS probes,
//! record-routing, failover) in front of two dialin instances on 127.0.0.1, with sipp callers
//! and one stand-in BBB server. In the first test the PIN mapping lives in a shared PostgreSQL
//! store (127.0.0.1:5432), written once with `dialin pins set`; the others use the mapping in
//! each instance's config file.

use crate::support::dialin::TestConfig;
use crate::support::kamailio::Kamailio;
use crate::support::media::{RtpPeer, SendTo};
use crate::support::pcap::CallerStream;
use crate::support::ports::PortBlock;
use crate::support::sipp::{RunningSipp, Scenario, Sipp};
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

const PIN: &str = "8675309";
/// The PIN of the mapping in the shared store, and its conference.
const STORE_PIN: &str = "5552468";
const STORE_CONFERENCE: &str = "72468";
const DIALLED: &str = "4930555000";

/// One stand-in BBB server answering every call of the test (sipp `-m 100`), with its media.
fn server() -> (RunningSipp, RtpPeer) {
    let media = RtpPeer::start(
        SocketAddr::from((Ipv4Addr::LOCALHOST, PortBlock::take(2).base)),
        SendTo::FirstSource,
    );
    let server = Sipp::new(Scenario::conference_waits_for_bye())
        .sdp_media(media.local_addr())
        .arg("-m")
        .arg("100")
        .arg("-timeout")
        .arg("600s")
        .spawn();
    (server, media)
}

/// A caller through Kamailio: types the config PIN, stays `talk` and hangs up.
fn call(kamailio: &Kamailio, talk: Duration) -> RunningSipp {
    call_with(kamailio, PIN, talk)
}

/// A caller through Kamailio: types `pin`, stays `talk` and hangs up.
fn call_with(kamailio: &Kamailio, pin: &str, talk: Duration) -> RunningSipp {
    Sipp::new(Scenario::caller_hangs_up())
        .pcap(CallerStream::new(&format!("{pin}#")).tail(talk))
        .pause(talk)
        .remote(kamailio.addr)
        .service(DIALLED)
        .deadline(talk + Duration::from_secs(40))
        .spawn()
}

/// The From display names and user parts of the INVITEs `server` received so far.
fn invites_from(server: &RunningSipp) -> (Vec<String>, Vec<String>) {
    let log = std::fs::read_to_string(server.dir().join("messages.log")).unwrap_or_default();
    crate::support::siplog::parse_log(&log)
        .into_iter()
        .filter(|m| {
            m.direction == crate::support::siplog::Direction::Received
                && m.method() == Some("INVITE")
        })
        .map(|m| {
            let from = m.header("From").expect("From").to_string();
            let display = from.split('"').nth(1).unwrap_or_default().to_string();
            let user = from
                .split("sip:")
                .nth(1)
                .and_then(|r| r.split('@').next())
                .unwrap_or_default()
                .to_string();
            (display, user)
        })
        .unzip()
}

fn kamailio_addr() -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, PortBlock::take(1).base))
}

/// How many calls Kamailio sent to `instance`.
fn routed_to(kamailio: &Kamailio, instance: SocketAddr) -> usize {
    kamailio.count(&format!("new call to instance sip:{instance}"))
}

#[test]
fn calls_spread_over_both_instances_and_all_succeed_when_one_is_killed() {
    let (server, _media) = server();
    let db = tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(crate::support::db::TestDb::postgres());
    // Both instances read the PIN mappings from one PostgreSQL store; PINs are not taken as
    // conference numbers, so a call only gets through by the store's mapping.
    let instance = || {
        let mut cfg = TestConfig::new(server.sip_addr());
        cfg.pin_is_conference = false;
        // Callers are numbered `Phone N` per conference by the whole cluster.
        cfg.extra = format!(
            "[store]\nurl = \"{}\"\n[privacy]\ncaller_id = \"sequence\"\n",
            db.url()
        );
        cfg
    };
    let (a_cfg, b_cfg) = (instance(), instance());
    let a = a_cfg.start();
    let b = b_cfg.start();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_dialin"))
        .args(["pins", "set", STORE_PIN, "--conference", STORE_CONFERENCE])
        .arg("--config")
        .arg(&a.config_path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    a.wait_for_line("PIN mappings updated", Duration::from_secs(3));
    b.wait_for_line("PIN mappings updated", Duration::from_secs(3));
    // Probes only every minute: the failover below is Kamailio's reaction to the call itself.
    let kamailio = Kamailio::start(kamailio_addr(), &[a_cfg.sip, b_cfg.sip], 60);

    let calls: Vec<RunningSipp> = (0..4)
        .map(|_| call_with(&kamailio, STORE_PIN, Duration::from_secs(4)))
        .collect();
    for c in calls {
        let outcome = c.wait();
        outcome.assert_success();
        // Record-routing: the caller's BYE went through Kamailio (its Route set names it).
        let bye = outcome
            .messages()
            .into_iter()
            .find(|m| m.method() == Some("BYE"))
            .expect("the caller sent BYE");
        assert!(
            bye.header("Route")
                .is_some_and(|r| r.contains(&kamailio.addr.to_string())),
            "BYE without a Route through Kamailio:\n{}",
            bye.text
        );
    }
    assert_eq!(routed_to(&kamailio, a_cfg.sip), 2, "{}", kamailio.log());
    assert_eq!(routed_to(&kamailio, b_cfg.sip), 2, "{}", kamailio.log());
    assert_eq!(a.status_value("calls_bridged"), 2);
    assert_eq!(b.status_value("calls_bridged"), 2);
    // Four callers of one conference, two on each instance: numbered 1 to 4 by the cluster,
    // and no SIP user part twice.
    let (mut names, users) = invites_from(&server);
    names.sort();
    assert_eq!(names, ["Phone 1", "Phone 2", "Phone 3", "Phone 4"]);
    let distinct: std::collections::BTreeSet<_> = users.iter().collect();
    assert_eq!(distinct.len(), 4, "{users:?}");

    // Instance A dies without a word: every new call still succeeds, on B.
    // The first call Kamailio sends to A gets no answer within FR_TIMER and goes to B; A is
    // then marked down and gets no more.
    drop(a);
    let calls: Vec<RunningSipp> = (0..4)
        .map(|_| call_with(&kamailio, STORE_PIN, Duration::from_secs(3)))
        .collect();
    for c in calls {
        c.wait().assert_success();
    }
    assert_eq!(b.status_value("calls_bridged"), 6, "{}", kamailio.log());
    // Calls sent to A before the first one timed out fail over the same way.
    assert!(kamailio.count("trying the next") >= 1, "{}", kamailio.log());
    assert!(
        !kamailio.log().contains(DIALLED),
        "Kamailio logs no numbers"
    );
    b.assert_idle(Duration::from_secs(5));
}

#[test]
fn a_rolling_restart_drops_no_bridged_call() {
    let (server, _media) = server();
    let (a_cfg, b_cfg) = (
        TestConfig::new(server.sip_addr()),
        TestConfig::new(server.sip_addr()),
    );
    let mut a = a_cfg.start();
    let mut b = b_cfg.start();
    let kamailio = Kamailio::start(kamailio_addr(), &[a_cfg.sip, b_cfg.sip], 1);

    // Two long calls, one on each instance.
    let long = Duration::from_secs(12);
    let first = [call(&kamailio, long), call(&kamailio, long)];
    a.wait_for_line("bridged", Duration::from_secs(15));
    b.wait_for_line("bridged", Duration::from_secs(15));

    // Restart A: drain it; new calls go to B meanwhile; A exits once its call has ended.
    a.signal("-TERM");
    kamailio.wait_for_line(
        &format!("instance sip:{} is down", a_cfg.sip),
        Duration::from_secs(5),
    );
    let during_a = call(&kamailio, Duration::from_secs(3));
    during_a.wait().assert_success();
    assert_eq!(
        routed_to(&kamailio, a_cfg.sip),
        1,
        "no new call for draining A"
    );
    assert!(a.wait_exit(Duration::from_secs(30)).success(), "A exits 0");
    a.wait_for_nth_line("outcome=Bridged", 1, Duration::from_secs(2));
    assert_eq!(a.log().matches("outcome=Bridged").count(), 1, "{}", a.log());
    assert!(!a.log().contains("outcome=Shutdown"));
    let a = a_cfg.start();
    kamailio.wait_for_line(
        &format!("instance sip:{} is up", a_cfg.sip),
        Duration::from_secs(5),
    );

    // Restart B the same way; its long call is still running.
    b.signal("-TERM");
    kamailio.wait_for_line(
        &format!("instance sip:{} is down", b_cfg.sip),
        Duration::from_secs(5),
    );
    let during_b = call(&kamailio, Duration::from_secs(3));
    during_b.wait().assert_success();
    for c in first {
        c.wait().assert_success();
    }
    assert!(b.wait_exit(Duration::from_secs(30)).success(), "B exits 0");
    // B's long call and the call made while A restarted ended normally, none was cut.
    b.wait_for_nth_line("outcome=Bridged", 2, Duration::from_secs(2));
    assert_eq!(b.log().matches("outcome=Bridged").count(), 2, "{}", b.log());
    assert!(!b.log().contains("outcome=Shutdown"));
    let b = b_cfg.start();
    kamailio.wait_for_line(
        &format!("instance sip:{} is up", b_cfg.sip),
        Duration::from_secs(5),
    );
    // The call made while B restarted went to the new A.
    a.wait_for_line("outcome=Bridged", Duration::from_secs(5));
    b.assert_idle(Duration::from_secs(5));
    assert!(
        !kamailio.log().contains(DIALLED),
        "Kamailio logs no numbers"
    );
}

#[test]
fn a_call_refused_with_503_goes_to_the_next_instance() {
    let (server, _media) = server();
    // A has RTP ports for one call only: while it holds one, it answers new INVITEs 503.
    let mut a_cfg = TestConfig::new(server.sip_addr());
    a_cfg.rtp = (a_cfg.rtp.0, a_cfg.rtp.0 + 3);
    let b_cfg = TestConfig::new(server.sip_addr());
    let a = a_cfg.start();
    let b = b_cfg.start();
    let kamailio = Kamailio::start(kamailio_addr(), &[a_cfg.sip, b_cfg.sip], 60);

    // Round robin: of four calls held at once, two are sent to A; the second of those is
    // refused 503 and handed to B, and A, marked down, gets no more.
    let mut calls = Vec::new();
    for _ in 0..4 {
        calls.push(call(&kamailio, Duration::from_secs(8)));
        // Pacing: the calls arrive one after another, each after the last one took its
        // instance's ports, as the round robin's order needs.
        std::thread::sleep(Duration::from_millis(1500));
    }
    for c in calls {
        c.wait().assert_success();
    }
    assert_eq!(kamailio.count("failed (503)"), 1, "{}", kamailio.log());
    assert_eq!(a.status_value("calls_bridged"), 1);
    assert_eq!(b.status_value("calls_bridged"), 3);
    assert!(
        !kamailio.log().contains(DIALLED),
        "Kamailio logs no numbers"
    );
}
