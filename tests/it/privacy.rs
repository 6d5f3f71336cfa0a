//! Privacy end to end, through the real `dialin` binary and sipp peers on 127.0.0.1: what the
//! BBB server's INVITE shows of a caller under each caller-ID policy and for withheld numbers,
//! and guessing protection blocking a caller (by pseudonym, withheld numbers as one caller).
//! The leak test over every call path is in `tests/it/leaks.rs`.

use crate::support::dialin::{Dialin, TestConfig};
use crate::support::pcap::CallerStream;
use crate::support::siplog::{Direction, SipMessage};
use crate::support::sipp::{Scenario, Sipp, SippOutcome};
use std::time::Duration;

/// The number the callers dial (the trunk's DID).
const DIALLED: &str = "4930555000";
/// The config file's PIN (conference 71234).
const PIN: &str = "8675309";

/// Overriding a scenario's default keys (the caller's From user part and display name).
trait WithKey {
    fn with_key(self, name: &str, value: &str) -> Self;
}

impl WithKey for Scenario {
    fn with_key(mut self, name: &str, value: &str) -> Scenario {
        self.default_keys.retain(|(n, _)| n != name);
        self.default_keys
            .push((name.to_string(), value.to_string()));
        self
    }
}

/// A caller scenario with extra INVITE headers (e.g. `Privacy: id`), inserted after its
/// User-Agent line.
fn with_invite_headers(mut scenario: Scenario, headers: &[&str]) -> Scenario {
    let anchor = "User-Agent: dialin-test-caller\n";
    let at = scenario
        .xml
        .find(anchor)
        .expect("caller scenarios send a User-Agent")
        + anchor.len();
    let lines: String = headers.iter().map(|h| format!("      {h}\n")).collect();
    scenario.xml.insert_str(at, &lines);
    scenario
}

/// Every way a number could be written: as given, digits only, without the country code's
/// `+`, the last 6 digits.
fn number_forms(number: &str) -> Vec<String> {
    let digits: String = number.chars().filter(char::is_ascii_digit).collect();
    vec![
        number.to_string(),
        digits.clone(),
        digits[digits.len() - 6..].to_string(),
    ]
}

/// Bridges one call (config PIN) with `extra` config and the caller `scenario`; returns the
/// INVITE the stand-in server received and dialin.
fn server_invite_for(extra: &str, scenario: Scenario) -> (SipMessage, Dialin) {
    let server = Sipp::new(Scenario::conference_waits_for_bye()).spawn();
    let mut cfg = TestConfig::new(server.sip_addr());
    cfg.extra = extra.to_string();
    let dialin = cfg.start();
    let caller = Sipp::new(scenario)
        .pcap(CallerStream::new(&format!("{PIN}#")).tail(Duration::from_secs(1)))
        .pause(Duration::from_secs(6))
        .remote(cfg.sip)
        .service(DIALLED)
        .spawn();
    caller.wait().assert_success();
    let server = server.wait();
    server.assert_success();
    (server.first_received("INVITE"), dialin)
}

/// What the server leg must never show, whatever the policy.
fn assert_server_leg_clean(invite: &SipMessage, numbers: &[&str]) {
    for header in [
        "Privacy",
        "P-Asserted-Identity",
        "P-Preferred-Identity",
        "Remote-Party-ID",
    ] {
        assert!(
            invite.header(header).is_none(),
            "{header} reached the server:\n{}",
            invite.text
        );
    }
    for number in numbers {
        for form in number_forms(number) {
            assert!(
                !invite.text.contains(&form),
                "{form:?} of the caller's number reached the server:\n{}",
                invite.text
            );
        }
    }
    let from = invite.header("From").expect("From");
    let lower = from.to_ascii_lowercase();
    assert!(!lower.contains("anonymous"), "From: {from}");
    assert!(!from.contains("-bbbID-") && !from.contains("GLOBAL_AUDIO_"));
    assert!(!from.contains("\"\""), "empty display name: {from}");
}

/// The display name and user part of a From header value `"name" <sip:user@host>;tag=…`.
fn from_parts(invite: &SipMessage) -> (String, String) {
    let from = invite.header("From").expect("From");
    let display = from
        .split('"')
        .nth(1)
        .unwrap_or_else(|| panic!("no quoted display name in {from}"));
    let user = from
        .split("sip:")
        .nth(1)
        .and_then(|rest| rest.split('@').next())
        .unwrap_or_else(|| panic!("no user part in {from}"));
    // `phone-<instance tag>-N`: the tag (8 hex digits, random per instance) is checked and
    // dropped, so the tests compare `phone-N`.
    let untagged = user
        .strip_prefix("phone-")
        .and_then(|rest| rest.split_once('-'))
        .filter(|(tag, _)| tag.len() == 8 && tag.bytes().all(|b| b.is_ascii_hexdigit()))
        .map(|(_, n)| format!("phone-{n}"))
        .unwrap_or_else(|| panic!("user part {user} is not phone-<instance tag>-N"));
    (display.to_string(), untagged)
}

#[test]
fn mask_policy_shows_the_configured_number_of_last_digits() {
    let (invite, _dialin) = server_invite_for(
        "[privacy]\ncaller_id = \"mask\"\nkeep_digits = 3",
        Scenario::caller_hangs_up(),
    );
    assert_eq!(
        from_parts(&invite),
        ("Phone …567".to_string(), "phone-1".to_string())
    );
    assert_server_leg_clean(&invite, &[crate::support::scenario::CALLER_USER]);
}

#[test]
fn sequence_policy_numbers_the_caller_in_its_conference() {
    let (invite, _dialin) = server_invite_for(
        "[privacy]\ncaller_id = \"sequence\"",
        Scenario::caller_hangs_up(),
    );
    assert_eq!(
        from_parts(&invite),
        ("Phone 1".to_string(), "phone-1".to_string())
    );
    assert_server_leg_clean(&invite, &[crate::support::scenario::CALLER_USER]);
}

#[test]
fn fixed_policy_shows_the_configured_name() {
    let (invite, _dialin) = server_invite_for(
        "[privacy]\ncaller_id = \"fixed\"\nfixed_name = \"Dial-in guest\"",
        Scenario::caller_hangs_up(),
    );
    assert_eq!(
        from_parts(&invite),
        ("Dial-in guest".to_string(), "phone-1".to_string())
    );
    assert_server_leg_clean(&invite, &[crate::support::scenario::CALLER_USER]);
}

#[test]
fn a_number_withheld_by_privacy_id_is_phone_hidden_and_never_forwarded() {
    // The trunk asserts the number (P-Asserted-Identity) but asks for privacy: dialin must
    // neither show it nor pass any of these headers on.
    let scenario = with_invite_headers(
        Scenario::caller_hangs_up(),
        &[
            "Privacy: id",
            "P-Asserted-Identity: \"+49 30 7654321\" <sip:+49307654321@127.0.0.1>",
            "Remote-Party-ID: <sip:+49307654321@127.0.0.1>;party=calling;privacy=full",
        ],
    );
    let (invite, _dialin) = server_invite_for("", scenario);
    assert_eq!(
        from_parts(&invite),
        ("Phone (hidden) 1".to_string(), "phone-1".to_string())
    );
    assert_server_leg_clean(
        &invite,
        &["+49307654321", crate::support::scenario::CALLER_USER],
    );
}

#[test]
fn an_anonymous_caller_is_phone_hidden_under_every_policy() {
    let anonymous = || {
        Scenario::caller_hangs_up()
            .with_key("caller_user", "anonymous")
            .with_key("caller_name", "Anonymous")
    };
    for (extra, want) in [
        ("[privacy]\ncaller_id = \"sequence\"", "Phone (hidden) 1"),
        ("", "Phone (hidden) 1"),
    ] {
        let (invite, _dialin) = server_invite_for(extra, anonymous());
        assert_eq!(
            from_parts(&invite),
            (want.to_string(), "phone-1".to_string()),
            "{extra}"
        );
        assert_server_leg_clean(&invite, &[]);
    }
}

/// One call that types a wrong PIN and hangs up while hearing "invalid PIN".
fn wrong_pin_call(sip: std::net::SocketAddr, scenario: Scenario) -> SippOutcome {
    Sipp::new(scenario)
        .pcap(CallerStream::new("11111#").tail(Duration::from_millis(300)))
        .pause(Duration::from_millis(3500))
        .remote(sip)
        .service(DIALLED)
        .spawn()
        .wait()
}

/// A call that types nothing and waits for dialin to hang up; returns the outcome and how
/// long after its ACK the BYE came.
fn silent_call_until_bye(sip: std::net::SocketAddr, scenario: Scenario) -> (SippOutcome, u64) {
    let outcome = Sipp::new(scenario)
        .pcap(
            CallerStream::new("")
                .lead(Duration::from_millis(200))
                .tail(Duration::ZERO),
        )
        .remote(sip)
        .service(DIALLED)
        .spawn()
        .wait();
    outcome.assert_success();
    let time_of = |method: &str, dir: Direction| {
        outcome
            .messages()
            .into_iter()
            .find(|m| m.direction == dir && m.method() == Some(method))
            .and_then(|m| m.at_micros)
            .unwrap_or_else(|| panic!("no {method}\n{}", outcome.report()))
    };
    let ack = time_of("ACK", Direction::Sent);
    let bye = time_of("BYE", Direction::Received);
    (outcome, (bye - ack) / 1000)
}

/// A config whose wrong PINs dial nothing and that blocks after two failed calls.
fn guarded_config() -> TestConfig {
    let nowhere = std::net::SocketAddr::from((
        [127, 0, 0, 1],
        crate::support::ports::PortBlock::take(1).base,
    ));
    let mut cfg = TestConfig::new(nowhere);
    cfg.pin_is_conference = false;
    cfg.first_digit_timeout = "10s";
    cfg.extra = "[abuse]\nfailed_calls = 2\nblock = \"10m\"".into();
    cfg
}

#[test]
fn a_caller_with_repeated_failed_calls_hears_goodbye_at_once() {
    let cfg = guarded_config();
    let dialin = cfg.start();
    for _ in 0..2 {
        wrong_pin_call(cfg.sip, Scenario::caller_hangs_up()).assert_success();
    }
    dialin.wait_for_line(
        "caller blocked: too many failed calls",
        Duration::from_secs(3),
    );
    // The same number (written differently) now hears only goodbye (2.7 s), then BYE; it
    // would otherwise hear the welcome prompt (6.6 s) and wait 10 s for a digit.
    let same_number = Scenario::caller_waits_for_bye().with_key("caller_user", "+49-30-1234567");
    let (_, bye_after_ms) = silent_call_until_bye(cfg.sip, same_number);
    assert!(bye_after_ms < 5_000, "BYE {bye_after_ms} ms after the ACK");
    dialin.wait_for_line("outcome=Blocked", Duration::from_secs(2));
    assert_eq!(dialin.status_value("calls_blocked"), 1);

    // Another caller is not affected: it hears the welcome prompt and is not blocked.
    let other = Sipp::new(Scenario::caller_hangs_up().with_key("caller_user", "+4940999888"))
        .pcap(CallerStream::new("").lead(Duration::from_millis(200)))
        .pause(Duration::from_secs(2))
        .remote(cfg.sip)
        .service(DIALLED)
        .spawn()
        .wait();
    other.assert_success();
    dialin.wait_for_nth_line("outcome=CallerHangup", 3, Duration::from_secs(2));
    assert_eq!(dialin.status_value("calls_blocked"), 1);
    let log = dialin.log();
    assert!(!log.contains("dialling server"), "{log}");
    // Log lines name the caller by one pseudonym: the blocked caller's calls share it.
    let pseudonyms: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("incoming call"))
        .filter_map(|l| l.split("caller=").nth(1))
        .map(|rest| rest.split_whitespace().next().unwrap_or(""))
        .collect();
    assert_eq!(pseudonyms.len(), 4, "{log}");
    assert!(pseudonyms[..3]
        .iter()
        .all(|p| *p == pseudonyms[0] && p.len() == 12));
    assert_ne!(pseudonyms[3], pseudonyms[0]);
    dialin.assert_idle(Duration::from_secs(5));
}

#[test]
fn withheld_numbers_share_one_bucket() {
    let cfg = guarded_config();
    let dialin = cfg.start();
    // One caller hides the number by an anonymous From, the next by `Privacy: id`.
    let anonymous = Scenario::caller_hangs_up().with_key("caller_user", "anonymous");
    wrong_pin_call(cfg.sip, anonymous).assert_success();
    let private = with_invite_headers(Scenario::caller_hangs_up(), &["Privacy: id"])
        .with_key("caller_user", "+4989111222");
    wrong_pin_call(cfg.sip, private).assert_success();
    dialin.wait_for_line(
        "caller blocked: too many failed calls",
        Duration::from_secs(3),
    );
    // A third withheld caller (a provider's "unknown" this time) is blocked too.
    let unknown = Scenario::caller_waits_for_bye()
        .with_key("caller_user", "unknown")
        .with_key("caller_name", "Unknown");
    let (_, bye_after_ms) = silent_call_until_bye(cfg.sip, unknown);
    assert!(bye_after_ms < 5_000, "BYE {bye_after_ms} ms after the ACK");
    dialin.wait_for_line("outcome=Blocked", Duration::from_secs(2));
    let log = dialin.log();
    assert!(log.contains("caller=withheld"), "{log}");
    assert!(!log.contains("4989111222") && !log.contains("111222"));
    dialin.assert_idle(Duration::from_secs(5));
}

/// The `caller=` pseudonyms of a log's "incoming call" lines, in order.
fn incoming_pseudonyms(log: &str) -> Vec<String> {
    log.lines()
        .filter(|l| l.contains("incoming call"))
        .filter_map(|l| l.split("caller=").nth(1))
        .map(|rest| rest.split_whitespace().next().unwrap_or("").to_string())
        .collect()
}

#[test]
fn two_instances_sharing_postgresql_block_a_caller_together() {
    let rt = tokio::runtime::Runtime::new().expect("tokio runtime");
    let db = rt.block_on(crate::support::db::TestDb::postgres());
    let start = || {
        let mut cfg = guarded_config();
        cfg.extra = format!("{}\n[store]\nurl = \"{}\"\n", cfg.extra, db.url());
        let dialin = cfg.start();
        dialin.wait_for_line(
            "guessing protection shared with the cluster",
            Duration::from_secs(5),
        );
        (cfg, dialin)
    };
    let (cfg_a, a) = start();
    let (cfg_b, b) = start();
    // One failed call on each instance (failed_calls = 2): blocked on both.
    wrong_pin_call(cfg_a.sip, Scenario::caller_hangs_up()).assert_success();
    // The instances exchange failed calls in a sync pass every second (privacy/shared.rs),
    // which leaves no sign outside: one and a half periods for A's failure to reach B.
    std::thread::sleep(Duration::from_millis(1500));
    wrong_pin_call(cfg_b.sip, Scenario::caller_hangs_up()).assert_success();
    b.wait_for_line(
        "caller blocked: too many failed calls",
        Duration::from_secs(3),
    );
    // As above: sync passes for B's failure to reach A.
    std::thread::sleep(Duration::from_millis(2500));
    let (_, bye_after_ms) = silent_call_until_bye(cfg_a.sip, Scenario::caller_waits_for_bye());
    assert!(bye_after_ms < 5_000, "BYE {bye_after_ms} ms after the ACK");
    a.wait_for_line("outcome=Blocked", Duration::from_secs(2));
    // Both instances name the caller by the same pseudonym (one key for the cluster).
    let (pa, pb) = (incoming_pseudonyms(&a.log()), incoming_pseudonyms(&b.log()));
    assert_eq!(pa.len(), 2);
    assert_eq!(pb.len(), 1);
    assert!(pa.iter().chain(&pb).all(|p| *p == pa[0]), "{pa:?} {pb:?}");
}
