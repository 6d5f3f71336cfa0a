//! Issue 22, items 1–3: a BBB server that dies under a bridged caller. Against a real
//! FreeSWITCH 1.10.12 configured like a BBB server (`support::freeswitch`): SIGKILLed while a
//! caller is bridged, the caller hears "the connection to the meeting was lost" within 2 s
//! (not dead air until it gives up); restarted, and once the meeting runs there again (a web
//! participant rejoins and so re-creates the conference), the caller is dialled in again within
//! 1 s, under the same masked caller ID.
//!
//! dialin runs with `media.server_silence` at its production default here: the real server
//! sends RTP all the time, as a BBB server does.

use crate::support::dialin::{http, metric, Dialin};
use crate::support::freeswitch::FreeSwitch;
use crate::support::media::{RtpPeer, SendTo};
use crate::support::pcap::CallerStream;
use crate::support::ports::PortBlock;
use crate::support::sipp::{RunningSipp, Scenario, Sipp};
use crate::support::wait::{poll, wait_for};
use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

/// The meeting's conference (voiceBridge); with `pin_is_conference` it is also the PIN.
pub(crate) const CONFERENCE: &str = "71234";
pub(crate) const DIALLED: &str = "4930555000";

pub(crate) fn local(port: u16) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, port))
}

/// dialin with one server, `fs`, watched over its Event Socket when `esl`; the default silence
/// interval.
pub(crate) fn start_dialin(
    fs: &FreeSwitch,
    esl: bool,
) -> (Dialin, SocketAddr, SocketAddr, tempfile::TempDir) {
    start_dialin_with(fs, esl, "")
}

/// As [`start_dialin`], with `media` added to the `[media]` section.
fn start_dialin_with(
    fs: &FreeSwitch,
    esl: bool,
    media: &str,
) -> (Dialin, SocketAddr, SocketAddr, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let pw = dir.path().join("esl.pw");
    std::fs::write(&pw, format!("{}\n", fs.password())).unwrap();
    let sip = local(PortBlock::take(1).base);
    let admin = local(PortBlock::take(1).base);
    let rtp = PortBlock::take(16);
    let toml = format!(
        r#"
[sip]
listen = "{sip}"
[media]
rtp_ports = "{lo}-{hi}"
{silence}
{media}
[trunk]
allow = ["127.0.0.0/8"]
[routing]
rejoin_max = "60s"
[[servers]]
name = "bbb1"
sip = "sip:{fs_sip}"
{esl}
[admin]
listen = "{admin}"
"#,
        lo = rtp.base,
        hi = rtp.base + rtp.len - 1,
        // The production default, unless `media` sets it.
        silence = match media.contains("server_silence") {
            true => "",
            false => "server_silence = \"1s\"",
        },
        fs_sip = fs.sip_addr(),
        esl = match esl {
            true => format!(
                "esl = \"{}\"\nesl_password_file = \"{}\"",
                fs.esl_addr(),
                pw.display()
            ),
            false => String::new(),
        },
    );
    (Dialin::start(&toml), sip, admin, dir)
}

/// A web participant (sipp, straight to FreeSWITCH): the first one in creates the conference.
pub(crate) fn web_participant(fs: &FreeSwitch, media: &RtpPeer) -> RunningSipp {
    Sipp::new(Scenario::caller_waits_for_bye())
        .pcap(silent())
        .sdp_media(media.local_addr())
        .remote(fs.sip_addr())
        .service(CONFERENCE)
        .spawn()
}

/// A phone caller (media: `phone`) that types the conference's PIN by SIP INFO.
fn pin_caller(scenario: Scenario, phone: &RtpPeer, dialin: SocketAddr) -> Sipp {
    Sipp::new(scenario.with_info_digits(
        &format!("{CONFERENCE}#"),
        Duration::from_millis(500),
        Duration::from_millis(100),
    ))
    .pcap(silent())
    .sdp_media(phone.local_addr())
    .remote(dialin)
    .service(DIALLED)
}

/// A phone caller (its media a Rust peer) that types the PIN and then stays a minute;
/// returns once dialin has bridged it.
fn bridged_phone(dialin: &Dialin, sip: SocketAddr) -> (RtpPeer, RunningSipp) {
    let phone = RtpPeer::start(local(PortBlock::take(2).base), SendTo::FirstSource);
    let caller = pin_caller(Scenario::caller_hangs_up(), &phone, sip)
        .pause(Duration::from_secs(60))
        .spawn();
    dialin.wait_for_line("bridged", Duration::from_secs(15));
    (phone, caller)
}

/// No RTP from sipp itself: the Rust peers are the media.
fn silent() -> CallerStream {
    CallerStream::new("")
        .lead(Duration::ZERO)
        .tail(Duration::ZERO)
}

/// Our member's line in `conference <CONFERENCE> list` (fields: id, register string, uuid,
/// caller ID name, caller ID number (dialin's masked `phone-…` user), flags, …), if listed.
fn dialin_member_line(fs: &FreeSwitch) -> Option<Vec<String>> {
    let list = fs.api(&format!("conference {CONFERENCE} list"));
    list.lines().find_map(|line| {
        let fields: Vec<String> = line.split(';').map(str::to_string).collect();
        (fields.len() > 5 && fields[4].starts_with("phone-")).then_some(fields)
    })
}

/// Our member's caller ID name and number, if it is in the conference.
fn dialin_member(fs: &FreeSwitch) -> Option<(String, String)> {
    dialin_member_line(fs).map(|f| (f[3].clone(), f[4].clone()))
}

/// Our member's id and flags (`hear|speak|…`), if it is in the conference.
pub(crate) fn dialin_member_flags(fs: &FreeSwitch) -> Option<(String, String)> {
    dialin_member_line(fs).map(|f| (f[0].clone(), f[5].clone()))
}

/// Whether member flags say the member may speak (not muted).
pub(crate) fn speaks(flags: &str) -> bool {
    flags.split('|').any(|f| f == "speak")
}

/// Whether the meeting's conference runs on `fs` (has a member) within 10 s.
pub(crate) fn conference_runs(fs: &FreeSwitch) -> bool {
    wait_for(Duration::from_secs(10), || {
        fs.api(&format!("conference {CONFERENCE} list"))
            .contains(';')
    })
}

fn conferences_known(admin: SocketAddr) -> f64 {
    let (_, text) = http(admin, "GET", "/metrics");
    metric(&text, "dialin_conferences_known", r#"server="bbb1""#)
}

fn esl_connected(admin: SocketAddr) -> f64 {
    let (_, text) = http(admin, "GET", "/metrics");
    metric(&text, "dialin_esl_connected", r#"server="bbb1""#)
}

/// FreeSWITCH down for 10 s (a new caller tries it meanwhile).
#[test]
fn a_caller_of_a_killed_freeswitch_is_told_at_once_and_rejoins_under_the_same_name() {
    crash_and_rejoin(true, Duration::from_secs(10));
}

/// Without an Event Socket, the media alone tells (ICMP errors, then silence), and dialin
/// tries the meeting again every 2 s until the server answers. FreeSWITCH down for 3 s.
#[test]
fn without_an_event_socket_the_media_tells_and_the_caller_rejoins_when_the_server_answers() {
    crash_and_rejoin(false, Duration::from_secs(3));
}

/// The longer outages of the issue (20 and 40 s), not in CI for their length:
/// `cargo test --test it server_loss:: -- --ignored`.
#[test]
#[ignore = "long: 20 and 40 s outages"]
fn after_long_outages_the_caller_still_rejoins() {
    crash_and_rejoin(true, Duration::from_secs(20));
    crash_and_rejoin(true, Duration::from_secs(40));
}

/// A caller bridged into `fs`'s conference; `fs` is SIGKILLed, restarted `outage` later, the
/// meeting runs again; measured from the caller's side. `esl`: dialin watches `fs`'s Event
/// Socket. `routing.rejoin_max` (60 s) outlasts every outage tried.
fn crash_and_rejoin(esl: bool, outage: Duration) {
    let mut fs = FreeSwitch::start();
    let (dialin, sip, admin, _dir) = start_dialin(&fs, esl);
    let web_media = RtpPeer::start(local(PortBlock::take(2).base), SendTo::FirstSource);
    let _web = web_participant(&fs, &web_media);
    if esl {
        // The conference runs (dialin's directory sees it): the caller's PIN leads there.
        assert!(
            wait_for(Duration::from_secs(10), || conferences_known(admin) == 1.0),
            "dialin's directory sees the conference"
        );
    } else {
        assert!(
            conference_runs(&fs),
            "the web participant created the conference"
        );
    }

    let (phone, _caller) = bridged_phone(&dialin, sip);
    let before = poll(Duration::from_secs(5), || dialin_member(&fs))
        .expect("dialin's caller is a member of the conference");
    if esl {
        // A moderator mutes the phone participant (BBB's user list does this over the same
        // conference command); dialin hears of it over the Event Socket.
        let (id, _) = dialin_member_flags(&fs).expect("our member");
        fs.api(&format!("conference {CONFERENCE} mute {id}"));
        assert!(
            wait_for(Duration::from_secs(2), || dialin_member_flags(&fs)
                .is_some_and(|(_, f)| !speaks(&f))),
            "the moderator's mute took"
        );
        // Its event reached dialin (a crash right after the command could lose it).
        dialin.wait_for_line("a conference member's mute changed", Duration::from_secs(2));
    }

    // FreeSWITCH crashes. What the phone hears from then on, after the last packets in flight,
    // is dialin's: the connection-lost prompt (the conference's audio stops with it).
    let killed_at = phone
        .recording()
        .received
        .last()
        .map(|r| r.at)
        .expect("the phone heard the meeting before the crash");
    fs.kill();
    let killed = Instant::now();
    dialin.wait_for_line("the server leg is lost", Duration::from_secs(2));
    // 3 s of what the phone hears after the crash (prompt, hold loop): the recording's span
    // is what is measured below.
    std::thread::sleep(Duration::from_secs(3));
    // The longest stretch without a packet from the crash on: the dead air the caller heard
    // between the meeting's last packet and the prompt's first.
    let times: Vec<Duration> = phone
        .recording()
        .received
        .iter()
        .map(|r| r.at)
        .filter(|at| *at >= killed_at)
        .collect();
    let quiet = times
        .windows(2)
        .map(|w| w[1] - w[0])
        .max()
        .unwrap_or(Duration::MAX);
    eprintln!("dead air after the crash: {quiet:?}");
    assert!(
        times.len() > 100,
        "the phone hears the prompt and the hold loop: {} packets",
        times.len()
    );
    assert!(
        quiet <= Duration::from_secs(2),
        "the caller sat {quiet:?} in dead air after the crash"
    );
    let (_, text) = http(admin, "GET", "/metrics");
    let lost: f64 = ["silence", "unreachable", "esl_down"]
        .iter()
        .map(|r| {
            metric(
                &text,
                "dialin_server_legs_lost_total",
                &format!(r#"reason="{r}""#),
            )
        })
        .sum();
    assert_eq!(lost, 1.0, "{text}");
    // Holding, or (without a directory to ask) trying the server again already.
    let holding = ["rejoining", "connecting_server"]
        .iter()
        .map(|s| metric(&text, "dialin_calls_active", &format!(r#"state="{s}""#)))
        .sum::<f64>();
    assert_eq!(holding, 1.0, "{text}");

    // Known dead from its Event Socket, or (without one) from the ICMP error its closed SIP
    // port answers the dial with.
    a_new_caller_hears_unavailable_at_once(sip);
    if !esl {
        dialin.wait_for_line("SIP port is unreachable (ICMP)", Duration::from_secs(1));
    }

    // FreeSWITCH comes back; the meeting runs there again once a web participant rejoins.
    std::thread::sleep(outage.saturating_sub(killed.elapsed()));
    fs.restart();
    if esl {
        assert!(
            wait_for(Duration::from_secs(5), || esl_connected(admin) == 1.0),
            "Event Socket back"
        );
    }
    let web_media2 = RtpPeer::start(local(PortBlock::take(2).base), SendTo::FirstSource);
    let _web2 = web_participant(&fs, &web_media2);
    // Timed from the conference's creation (its first member is listed).
    assert!(
        conference_runs(&fs),
        "the web participant re-created the conference"
    );
    let created = Instant::now();
    let after = poll(Duration::from_secs(5), || dialin_member(&fs))
        .expect("the caller is dialled in again");
    let took = created.elapsed();
    eprintln!("dialled in again {took:?} after the conference was created again");
    // Told by the directory at once; without one, on dialin's next try (every 2 s).
    let bound = if esl { 1 } else { 2 };
    assert!(
        took <= Duration::from_secs(bound),
        "rejoined {took:?} after the meeting ran again"
    );
    assert_eq!(after, before, "the same masked caller ID in the meeting");
    // A FreeSWITCH that has just started may still refuse that first try: once in CI (2 cores
    // busy) it listed the member, then answered 503 half a second later. Without a directory
    // dialin tries again 2 s on, so that case gets the next try too.
    let bridged_within = Duration::from_secs(if esl { 1 } else { 4 });
    dialin.wait_for_line("bridged again after the loss", bridged_within);
    if esl {
        // The same mute state as before the crash: the moderator's mute, restored.
        let flags = poll(Duration::from_secs(3), || {
            dialin_member_flags(&fs).filter(|(_, f)| !speaks(f))
        });
        assert!(
            flags.is_some(),
            "not muted again after the rejoin: {:?}; log:\n{}",
            dialin_member_flags(&fs),
            dialin.log()
        );
    }
    let (_, text) = http(admin, "GET", "/metrics");
    assert_eq!(metric(&text, "dialin_rejoins_total", ""), 1.0, "{text}");
    // Audio flows again: the conference's packets reach the phone.
    let heard = phone.recording().received.len();
    assert!(
        wait_for(Duration::from_secs(3), || phone.recording().received.len()
            > heard + 50),
        "the phone hears the meeting again"
    );
}

/// Issue 22, item 5: while the meeting's server is dead, a new caller's PIN gets "unavailable"
/// at once, not the connecting prompt and 10 s of dialling: known from its refused Event
/// Socket, or, without one, from the ICMP port unreachable its SIP port answers the dial with
/// (`call::driver::port_check`).
/// Measured from the caller: its BYE comes the unavailable prompt's length after the PIN.
fn a_new_caller_hears_unavailable_at_once(sip: SocketAddr) {
    use crate::support::siplog::Direction;
    let phone = RtpPeer::start(local(PortBlock::take(2).base), SendTo::FirstSource);
    let caller = pin_caller(Scenario::caller_waits_for_bye(), &phone, sip)
        .spawn()
        .wait();
    caller.assert_success();
    let messages = caller.messages();
    let sent = |m: &&crate::support::siplog::SipMessage| m.direction == Direction::Sent;
    let pin_end = messages
        .iter()
        .filter(sent)
        .filter(|m| m.method() == Some("INFO"))
        .filter_map(|m| m.at_micros)
        .max()
        .expect("the PIN's INFOs");
    let bye = messages
        .iter()
        .find(|m| m.direction == Direction::Received && m.method() == Some("BYE"))
        .and_then(|m| m.at_micros)
        .expect("dialin's BYE");
    let wav = std::fs::metadata(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/dialplan/sounds/en/unavailable.wav"
    ))
    .expect("the prompt")
    .len();
    // 8 kHz, 16-bit mono after a 44-byte header.
    let prompt = Duration::from_micros((wav - 44) * 1_000_000 / 16_000);
    let took = Duration::from_micros(bye.saturating_sub(pin_end));
    eprintln!("PIN to BYE: {took:?} (the unavailable prompt is {prompt:?})");
    assert!(
        took <= prompt + Duration::from_secs(1),
        "PIN to BYE took {took:?}: more than the {prompt:?} prompt and a second"
    );
}

/// Issue 22, item 3, the mirror case: the caller's provider vanishes (its RTP stops, no BYE)
/// while the conference keeps sending. The phone participant leaves the meeting
/// `media.timeout` after the caller's last packet; the conference's packets do not keep it.
#[test]
fn a_caller_gone_without_bye_leaves_the_meeting_after_the_media_timeout() {
    let fs = FreeSwitch::start();
    let (dialin, sip, _admin, _dir) = start_dialin_with(&fs, true, "timeout = \"3s\"");
    let web_media = RtpPeer::start(local(PortBlock::take(2).base), SendTo::FirstSource);
    let _web = web_participant(&fs, &web_media);
    assert!(
        conference_runs(&fs),
        "the web participant created the conference"
    );
    let phone = RtpPeer::start(local(PortBlock::take(2).base), SendTo::FirstSource);
    let _caller = pin_caller(Scenario::caller_waits_for_bye(), &phone, sip).spawn();
    dialin.wait_for_line("bridged", Duration::from_secs(15));
    assert!(
        poll(Duration::from_secs(5), || dialin_member(&fs)).is_some(),
        "the caller joined the meeting"
    );
    // The provider is gone: not a packet more from the caller, no BYE.
    let gone = Instant::now();
    drop(phone);
    assert!(
        wait_for(Duration::from_secs(6), || dialin_member(&fs).is_none()),
        "the phone participant is still in the meeting {:?} after its caller went silent",
        gone.elapsed()
    );
    let left = gone.elapsed();
    eprintln!("the phone participant left {left:?} after its caller's last packet");
    assert!(
        left >= Duration::from_secs(2),
        "left after {left:?}: before media.timeout (3 s)"
    );
    // media.timeout, the media check's own lag and FreeSWITCH's removal of the member; once
    // 4.2 s on a machine busy with the whole suite.
    assert!(left <= Duration::from_secs(5), "left after {left:?}");
    dialin.wait_for_line("no RTP from the caller", Duration::from_secs(1));
}

/// The ICMP check on dialling sends the server's SIP port one empty datagram
/// (`call::driver::port_check`): a real FreeSWITCH that listens takes no notice of it (no
/// log line, no answer) and goes on answering SIP.
#[test]
fn an_empty_datagram_to_freeswitch_leaves_no_trace() {
    let fs = FreeSwitch::start();
    let log = fs.dir().join("log/freeswitch.log");
    let before = std::fs::read_to_string(&log).unwrap_or_default().len();
    assert!(before > 0, "FreeSWITCH's log is at {}", log.display());
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.connect(fs.sip_addr()).unwrap();
    socket.send(&[]).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut buf = [0u8; 64];
    let answer = socket.recv(&mut buf);
    assert!(
        matches!(&answer, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock
            || e.kind() == std::io::ErrorKind::TimedOut),
        "FreeSWITCH answered the empty datagram: {answer:?}"
    );
    let after = std::fs::read_to_string(&log).unwrap_or_default();
    let added = &after[before.min(after.len())..];
    assert!(added.trim().is_empty(), "FreeSWITCH logged:\n{added}");
    assert!(
        fs.api("sofia status").contains("RUNNING"),
        "its SIP profile still runs"
    );
}

/// Issue 22, item 1, SIP failures: a server whose silence does not count
/// (`media.server_silence = "off"`) is asked with an in-dialog OPTIONS every
/// `media.server_probe`. The real FreeSWITCH answers them while it runs; frozen (SIGSTOP: no
/// ICMP, no BYE, no closed socket, no Event Socket configured), its silence says nothing and
/// the unanswered OPTIONS make the leg lost when their transaction gives up (32 s).
#[test]
fn a_frozen_server_whose_silence_does_not_count_is_lost_by_its_unanswered_options() {
    let fs = FreeSwitch::start();
    let (dialin, sip, admin, _dir) = start_dialin_with(
        &fs,
        false,
        "server_silence = \"off\"\nserver_probe = \"1s\"",
    );
    let web_media = RtpPeer::start(local(PortBlock::take(2).base), SendTo::FirstSource);
    let _web = web_participant(&fs, &web_media);
    assert!(
        conference_runs(&fs),
        "the web participant created the conference"
    );
    let (_phone, _caller) = bridged_phone(&dialin, sip);
    // Answered OPTIONS keep the call: 3 s of them, no loss.
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        !dialin.log().contains("the server leg is lost"),
        "lost while FreeSWITCH answered; log:\n{}",
        dialin.log()
    );
    fs.freeze();
    let frozen = Instant::now();
    dialin.wait_for_line("the server leg is lost", Duration::from_secs(40));
    let took = frozen.elapsed();
    eprintln!("lost {took:?} after the freeze");
    let (_, text) = http(admin, "GET", "/metrics");
    assert_eq!(
        metric(&text, "dialin_server_legs_lost_total", r#"reason="sip""#),
        1.0,
        "{text}"
    );
    // The next OPTIONS within a second, then its transaction's 32 s.
    assert!(took <= Duration::from_secs(35), "lost only after {took:?}");
}
