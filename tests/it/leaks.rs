//! The leak test: calls with known caller numbers, PINs and source addresses go through every
//! path (bridged, wrong PIN, PIN timeout, hang-up during entry, withheld number, blocked
//! caller, slowed PIN answers), dialin logs at TRACE, and none of those values may appear in
//! its log in any form: as given, digits only, with separators, or as the last 6 digits.

use crate::support::dialin::{Dialin, TestConfig};
use crate::support::pcap::CallerStream;
use crate::support::sipp::{Scenario, Sipp, SippOutcome};
use std::net::{Ipv4Addr, SocketAddr};
use std::thread;
use std::time::Duration;

/// The number the callers dial (the trunk's DID); it is not secret.
const DIALLED: &str = "4930555000";
/// The mapped PIN of the bridged call and its conference (both above 65535, so no port
/// number in the log can look like them).
const GOOD_PIN: &str = "97531864";
const CONFERENCE: &str = "98642";
/// Wrong PINs.
const WRONG_PINS: [&str; 2] = ["97754", "97755"];

/// One caller: its number as the trunk writes it (display, user part) and its source address.
struct Caller {
    display: &'static str,
    user: &'static str,
    source: Ipv4Addr,
}

const BRIDGED: Caller = Caller {
    display: "+49 30 7654321",
    user: "+49307654321",
    source: Ipv4Addr::new(127, 0, 0, 2),
};
const WRONG: Caller = Caller {
    display: "+49 (40) 555-6677",
    user: "+49405556677",
    source: Ipv4Addr::new(127, 0, 0, 3),
};
const TIMEOUT: Caller = Caller {
    display: "089 9181716",
    user: "0899181716",
    source: Ipv4Addr::new(127, 0, 0, 4),
};
const HANGUP: Caller = Caller {
    display: "+49 221 9876543",
    user: "+492219876543",
    source: Ipv4Addr::new(127, 0, 0, 5),
};
/// Withholds the number (`Privacy: id`) that the trunk asserts in P-Asserted-Identity.
const WITHHELD: Caller = Caller {
    display: "+49 711 3332221",
    user: "+497113332221",
    source: Ipv4Addr::new(127, 0, 0, 6),
};

/// A caller's sipp with its number and source address.
fn sipp(caller: &Caller, mut scenario: Scenario) -> Sipp {
    for (key, value) in [
        ("caller_name", caller.display),
        ("caller_user", caller.user),
    ] {
        scenario.default_keys.retain(|(n, _)| n != key);
        scenario.default_keys.push((key.into(), value.into()));
    }
    Sipp::new(scenario).local_ip(caller.source).service(DIALLED)
}

/// Every form a secret could take in a log line.
fn forms(secret: &str) -> Vec<String> {
    let digits: String = secret.chars().filter(char::is_ascii_digit).collect();
    let mut out = vec![secret.to_string(), digits.clone()];
    if digits.len() > 6 {
        out.push(digits[digits.len() - 6..].to_string());
    }
    out
}

/// Whether `needle` occurs in `hay` as a number would be written: never followed by a digit,
/// and, when it is shorter than 6 digits (a PIN), not preceded by one either. A short PIN's
/// digits inside a longer run are a different number: sqlx's `elapsed_secs=0.000198642`
/// holds PIN 98642's digits and failed CI once. A caller number's last digits still count
/// after a different prefix (`(030) 7654321` for +49 30 7654321).
fn contains_number(hay: &str, needle: &str) -> bool {
    let is_digit = |c: Option<char>| c.is_some_and(|c| c.is_ascii_digit());
    let short = needle.len() < 6;
    hay.match_indices(needle).any(|(at, _)| {
        let before = is_digit(hay[..at].chars().next_back());
        let after = is_digit(hay[at + needle.len()..].chars().next());
        !(after || (short && before))
    })
}

/// Asserts that no log line holds any form of any secret, also with separators between the
/// digits (spaces, `-`, `.`, `/`, parentheses, `+`). The leading timestamp is not checked.
fn assert_log_free(log: &str, secrets: &[&str], addresses: &[Ipv4Addr]) {
    for line in log.lines() {
        let body = line.split_once(' ').map_or(line, |(_, rest)| rest);
        let collapsed: String = body.chars().filter(|c| !" -./()+".contains(*c)).collect();
        for secret in secrets {
            for form in forms(secret) {
                assert!(
                    !contains_number(body, &form) && !contains_number(&collapsed, &form),
                    "{form:?} (from {secret:?}) is in dialin's log line:\n{line}"
                );
            }
        }
        for addr in addresses {
            assert!(
                !body.contains(&addr.to_string()),
                "the caller address {addr} is in dialin's log line:\n{line}"
            );
        }
    }
}

fn in_thread(f: impl FnOnce() -> SippOutcome + Send + 'static) -> thread::JoinHandle<SippOutcome> {
    thread::spawn(f)
}

#[test]
fn no_number_pin_or_address_reaches_the_log_at_trace() {
    // The PIN store and the shared abuse counters on PostgreSQL: its statements are logged at
    // TRACE too.
    let rt = tokio::runtime::Runtime::new().expect("tokio runtime");
    let db = rt.block_on(crate::support::db::TestDb::postgres());
    let server = Sipp::new(Scenario::conference_waits_for_bye()).spawn();
    let mut cfg = TestConfig::new(server.sip_addr());
    cfg.pin_is_conference = false;
    cfg.first_digit_timeout = "1s";
    // One failed call blocks; every PIN answer after a wrong PIN is slowed.
    cfg.extra = format!(
        "[abuse]\nfailed_calls = 1\nfailed_pins_global = 1\nslow_answer = \"500ms\"\n\
         [store]\nurl = \"{}\"\n\
         [[pins]]\npin = \"{GOOD_PIN}\"\nconference = \"{CONFERENCE}\"\nserver = \"bbb1\"\n",
        db.url()
    );
    let dialin = Dialin::start_logging(&cfg.toml(), "trace");
    let sip: SocketAddr = cfg.sip;

    // Wave 1, all at once: bridged, wrong PIN, PIN timeout, hang-up during entry, withheld.
    let bridged = in_thread(move || {
        sipp(&BRIDGED, Scenario::caller_hangs_up())
            .pcap(CallerStream::new(&format!("{GOOD_PIN}#")).tail(Duration::from_secs(1)))
            .pause(Duration::from_secs(8))
            .remote(sip)
            .spawn()
            .wait()
    });
    let wrong = in_thread(move || {
        sipp(&WRONG, Scenario::caller_hangs_up())
            .pcap(
                CallerStream::new(&format!("{}#", WRONG_PINS[0])).tail(Duration::from_millis(300)),
            )
            .pause(Duration::from_millis(4000))
            .remote(sip)
            .spawn()
            .wait()
    });
    // Types nothing: three PIN timeouts, goodbye, BYE (about 26 s, above sipp's usual 30 s
    // budget under load, so it gets 60 s).
    let timeout = in_thread(move || {
        sipp(&TIMEOUT, Scenario::caller_waits_for_bye())
            .pcap(
                CallerStream::new("")
                    .lead(Duration::from_millis(200))
                    .tail(Duration::ZERO),
            )
            .arg("-timeout")
            .arg("60s")
            .deadline(Duration::from_secs(70))
            .remote(sip)
            .spawn()
            .wait()
    });
    let hangup = in_thread(move || {
        sipp(&HANGUP, Scenario::caller_hangs_up())
            .pcap(CallerStream::new("975").tail(Duration::from_millis(200)))
            .pause(Duration::from_millis(2500))
            .remote(sip)
            .spawn()
            .wait()
    });
    let withheld = in_thread(move || {
        let mut scenario = Scenario::caller_hangs_up();
        let anchor = "User-Agent: dialin-test-caller\n";
        let at = scenario.xml.find(anchor).expect("User-Agent line") + anchor.len();
        scenario.xml.insert_str(
            at,
            &format!(
                "      Privacy: id\n      P-Asserted-Identity: <sip:{}@127.0.0.6>\n",
                WITHHELD.user
            ),
        );
        sipp(&WITHHELD, scenario)
            .pcap(
                CallerStream::new(&format!("{}#", WRONG_PINS[1])).tail(Duration::from_millis(300)),
            )
            .pause(Duration::from_millis(4000))
            .remote(sip)
            .spawn()
            .wait()
    });
    for (name, handle) in [
        ("wrong PIN", wrong),
        ("hang-up", hangup),
        ("withheld", withheld),
        ("bridged", bridged),
        ("timeout", timeout),
    ] {
        let outcome = handle
            .join()
            .unwrap_or_else(|_| panic!("{name} caller thread"));
        assert_eq!(outcome.code(), Some(0), "{name}:\n{}", outcome.report());
    }
    let server = server.wait();
    server.assert_success();
    assert!(server
        .first_received("INVITE")
        .request_uri()
        .unwrap()
        .starts_with(&format!("sip:{CONFERENCE}@")));

    // Wave 2: the caller with the wrong PIN calls again and is blocked; with two wrong PINs
    // in the last minute, another caller's PIN is answered slowly.
    let slowed = in_thread(move || {
        sipp(&HANGUP, Scenario::caller_hangs_up())
            .pcap(
                CallerStream::new(&format!("{}#", WRONG_PINS[0])).tail(Duration::from_millis(300)),
            )
            .pause(Duration::from_millis(4500))
            .remote(sip)
            .spawn()
            .wait()
    });
    let blocked = sipp(&WRONG, Scenario::caller_waits_for_bye())
        .pcap(
            CallerStream::new("")
                .lead(Duration::from_millis(200))
                .tail(Duration::ZERO),
        )
        .remote(sip)
        .spawn()
        .wait();
    blocked.assert_success();
    slowed
        .join()
        .expect("slowed caller thread")
        .assert_success();

    // Every path was taken, and logged at TRACE.
    for needle in [
        "outcome=Bridged",
        "outcome=CallerHangup",
        "outcome=InvalidPin",
        "outcome=Blocked",
        "answering the PIN slowly",
        "caller=withheld",
        "call cleaned up",
        "guessing protection shared with the cluster",
    ] {
        dialin.wait_for_line(needle, Duration::from_secs(5));
    }
    dialin.assert_idle(Duration::from_secs(5));
    let mut secrets = vec![GOOD_PIN, CONFERENCE, WRONG_PINS[0], WRONG_PINS[1]];
    for c in [&BRIDGED, &WRONG, &TIMEOUT, &HANGUP, &WITHHELD] {
        secrets.push(c.display);
        secrets.push(c.user);
    }
    let addresses: Vec<Ipv4Addr> = [&BRIDGED, &WRONG, &TIMEOUT, &HANGUP, &WITHHELD]
        .iter()
        .map(|c| c.source)
        .collect();
    assert_log_free(&dialin.log(), &secrets, &addresses);
}

#[test]
fn the_log_check_finds_every_form() {
    // The checker itself must catch a number however it is written.
    let secrets = [BRIDGED.display];
    for leaked in [
        "2026-11-27T14:00:00Z  INFO caller +49 30 7654321",
        "x INFO from=49307654321",
        "x INFO tail 654321",
        "x INFO dashed 49-30-765-4321",
        "x INFO dotted (030) 7.65.43.21",
    ] {
        let caught = std::panic::catch_unwind(|| assert_log_free(leaked, &secrets, &[]));
        assert!(caught.is_err(), "not caught: {leaked}");
    }
    let caught = std::panic::catch_unwind(|| {
        assert_log_free("x INFO peer 127.0.0.2:5060", &[], &[BRIDGED.source])
    });
    assert!(caught.is_err());
    assert_log_free(
        "x INFO call=3 caller=3fa9c2b107aa",
        &secrets,
        &[BRIDGED.source],
    );
    // A PIN's digits inside a longer number (a timing figure) are not the PIN; the same PIN
    // standing alone, or between letters, is.
    assert_log_free("x TRACE elapsed_secs=0.000198642", &["98642"], &[]);
    for leaked in ["x INFO pin=98642", "x INFO 98642#", "x INFO ends 98642"] {
        let caught = std::panic::catch_unwind(|| assert_log_free(leaked, &["98642"], &[]));
        assert!(caught.is_err(), "not caught: {leaked}");
    }
}

/// The waiting room: a caller whose meeting has not started waits, and joins when the
/// server's Event Socket reports the conference. The Event Socket's traffic (which carries
/// conference numbers) is part of what dialin might log.
#[test]
fn the_waiting_room_leaks_nothing_at_trace() {
    use crate::support::esl::{conference_create, EslStandIn, Fault, Snapshot, PASSWORD};
    const WAIT_PIN: &str = "97531865";
    // Same length as the captured conference number the stand-in rewrites.
    const WAIT_CONFERENCE: &str = "71236";
    let server = Sipp::new(Scenario::conference_waits_for_bye()).spawn();
    let esl = EslStandIn::start(Snapshot::Empty, Fault::None);
    let dir = tempfile::tempdir().expect("temp dir");
    let pw = dir.path().join("esl.pw");
    std::fs::write(&pw, format!("{PASSWORD}\n")).expect("write password");
    let sip = SocketAddr::from((
        Ipv4Addr::LOCALHOST,
        crate::support::ports::PortBlock::take(1).base,
    ));
    let rtp = crate::support::ports::PortBlock::take(16);
    let toml = format!(
        "[sip]\nlisten = \"{sip}\"\n[media]\nrtp_ports = \"{lo}-{hi}\"\n\
         [trunk]\nallow = [\"127.0.0.0/8\"]\n[ivr]\nmax_wait = \"1m\"\n\
         [[servers]]\nname = \"bbb1\"\nsip = \"sip:{s}\"\nesl = \"{e}\"\nesl_password_file = \"{pw}\"\n\
         [routing]\ndefault_server = \"bbb1\"\n\
         [[pins]]\npin = \"{WAIT_PIN}\"\nconference = \"{WAIT_CONFERENCE}\"\nserver = \"bbb1\"\n",
        lo = rtp.base,
        hi = rtp.base + rtp.len - 1,
        s = server.sip_addr(),
        e = esl.addr,
        pw = pw.display(),
    );
    let dialin = Dialin::start_logging(&toml, "trace");
    esl.wait_for_snapshots(1, Duration::from_secs(5));
    let call = sipp(&BRIDGED, Scenario::caller_hangs_up())
        .pcap(CallerStream::new(&format!("{WAIT_PIN}#")).tail(Duration::from_secs(8)))
        .pause(Duration::from_secs(10))
        .remote(sip)
        .spawn();
    dialin.wait_for_line("meeting not started: caller waits", Duration::from_secs(10));
    // The caller waits a while, so that the waiting room's own TRACE lines are in the log
    // checked: the time is part of the path under test.
    std::thread::sleep(Duration::from_secs(1));
    esl.push(&conference_create(WAIT_CONFERENCE));
    call.wait().assert_success();
    let server = server.wait();
    server.assert_success();
    assert!(server
        .first_received("INVITE")
        .request_uri()
        .unwrap()
        .starts_with(&format!("sip:{WAIT_CONFERENCE}@")));
    dialin.wait_for_line("outcome=Bridged", Duration::from_secs(5));
    assert_log_free(
        &dialin.log(),
        &[WAIT_PIN, WAIT_CONFERENCE, BRIDGED.display, BRIDGED.user],
        &[BRIDGED.source],
    );
}
