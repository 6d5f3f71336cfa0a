//! Callers on hold, through the real binary.
//!
//! A caller on hold (`inactive`) sends no RTP, so `media.timeout` cannot tell whether its
//! phone is still there: dialin asks it with an in-dialog OPTIONS every `media.timeout`
//! (issue 22, item 3), here with a raw caller over UDP that answers the first OPTIONS and then
//! has forgotten the call (481). The caller whose phone answers nothing at all (the probe's
//! 32 s transaction timeout) is covered on simulated time (`call::core::caller_probe_tests`).
//!
//! A bridged caller on hold shows as muted in a real FreeSWITCH conference and unmuted on
//! resume; one a moderator muted stays muted through both (issue 22, item 6).

use crate::stuck::no_server;
use crate::support::dialin::TestConfig;
use crate::support::ports::PortBlock;
use crate::support::rawsip::{audio_offer, RawCall};
use std::time::{Duration, Instant};

#[test]
fn a_holding_caller_is_asked_with_options_and_a_481_ends_its_call() {
    let mut cfg = TestConfig::new(no_server());
    cfg.media_timeout = "2s";
    let dialin = cfg.start();
    let mut call = RawCall::udp(cfg.sip, "hold-probe");
    call.invite(&audio_offer(call.local_addr()));
    call.expect_response(200, "INVITE", Duration::from_secs(5));
    call.ack("");
    // On hold at once, before any RTP: a new SDP version, `inactive`.
    let held = audio_offer(call.local_addr())
        .replace("o=- 1 1 ", "o=- 1 2 ")
        .replace("a=rtpmap:0", "a=inactive\r\na=rtpmap:0");
    // Right behind the ACK, as a phone does: it may overtake the ACK in dialin and is answered
    // once the ACK is in. Sent again every 500 ms until answered, as a phone over UDP does.
    let answer = call.in_dialog_answered_with("INVITE", &held, Duration::from_secs(5));
    assert_eq!(answer.status_code(), Some(200), "{}", answer.text);
    assert!(answer.text.contains("a=recvonly") || answer.text.contains("a=inactive"));
    let ack = call.request("ACK", call.cseq, "ack-hold", true, "");
    call.send_raw(ack.as_bytes());
    let held_at = Instant::now();

    // The first probe comes within media.timeout (plus the check's own period) of the hold.
    let first = call
        .wait_request("OPTIONS", Duration::from_secs(6))
        .unwrap_or_else(|| panic!("no OPTIONS to the holding caller; log:\n{}", dialin.log()));
    assert_eq!(
        first.header("Call-ID"),
        Some(format!("{}@raw", call.tag).as_str()),
        "in the caller's dialog"
    );
    assert!(
        first.header("To").is_some_and(|to| to.contains(&call.tag)),
        "addressed to the caller's tag: {:?}",
        first.header("To")
    );
    eprintln!("first OPTIONS {:?} after the hold", held_at.elapsed());
    call.respond(&first, 200, "OK");

    // A phone that answers keeps its call though it sends no RTP: a second probe comes.
    let second = call
        .wait_request("OPTIONS", Duration::from_secs(6))
        .unwrap_or_else(|| panic!("no second OPTIONS; log:\n{}", dialin.log()));
    assert!(
        !dialin.log().contains("call ended"),
        "ended though its phone answered"
    );
    // Now the phone has forgotten the call: 481, and dialin hangs up at once.
    call.respond(&second, 481, "Call/Transaction Does Not Exist");
    let answered_481 = Instant::now();
    let bye = call
        .wait_request("BYE", Duration::from_secs(3))
        .unwrap_or_else(|| panic!("no BYE after the 481; log:\n{}", dialin.log()));
    eprintln!("BYE {:?} after the 481", answered_481.elapsed());
    call.respond(&bye, 200, "OK");
    dialin.wait_for_line(
        "the caller's phone no longer answers in its dialog",
        Duration::from_secs(2),
    );
    dialin.assert_idle(Duration::from_secs(5));
}

/// Issue 22, item 6, against a real FreeSWITCH configured like a BBB server: a bridged caller
/// that puts the call on hold shows as muted in the conference (BBB's user list shows what
/// FreeSWITCH's member flags say) while it holds, and unmuted again on resume. The caller is
/// sipp with the hold scenario, typing the PIN by SIP INFO; dialin mutes over the Event Socket.
#[test]
fn a_holding_caller_is_muted_in_a_real_conference_and_unmuted_on_resume() {
    hold_in_a_real_conference(false);
}

/// The same with a caller a moderator muted before the hold: the hold and the resume leave
/// that mute alone (the hold used to toggle it, so the member spoke again while holding and
/// was muted again on resume).
#[test]
fn a_caller_a_moderator_muted_stays_muted_through_hold_and_resume() {
    hold_in_a_real_conference(true);
}

fn hold_in_a_real_conference(moderator_mutes: bool) {
    use crate::server_loss::{
        conference_runs, dialin_member_flags, local, speaks, start_dialin, web_participant,
        CONFERENCE, DIALLED,
    };
    use crate::support::freeswitch::FreeSwitch;
    use crate::support::media::{RtpPeer, SendTo};
    use crate::support::sipp::{Scenario, Sipp};
    use crate::support::wait::poll;

    let fs = FreeSwitch::start();
    let (dialin, sip, _admin, _dir) = start_dialin(&fs, true);
    let web_media = RtpPeer::start(local(PortBlock::take(2).base), SendTo::FirstSource);
    let _web = web_participant(&fs, &web_media);
    assert!(
        conference_runs(&fs),
        "the web participant created the conference"
    );
    // Our member's flags in `conference <CONFERENCE> list` (`hear|speak|…`), once listed.
    let flags = || dialin_member_flags(&fs).map(|(_, f)| f);

    // The hold scenario with longer pauses: 3 s bridged, 4 s on hold, 3 s after the resume.
    let xml = crate::calls::pcmu_hold_after_info_pin()
        .replacen(
            r#"<pause milliseconds="1000"/>"#,
            r#"<pause milliseconds="3000"/>"#,
            1,
        )
        .replacen(
            r#"<pause milliseconds="1500"/>"#,
            r#"<pause milliseconds="4000"/>"#,
            1,
        )
        .replacen(
            r#"<pause milliseconds="1000"/>"#,
            r#"<pause milliseconds="3000"/>"#,
            1,
        );
    let phone = RtpPeer::start(local(PortBlock::take(2).base), SendTo::FirstSource);
    let caller = Sipp::new(
        Scenario::custom("caller_reinvite_hold", &xml).with_info_digits(
            &format!("{CONFERENCE}#"),
            Duration::from_millis(300),
            Duration::from_millis(50),
        ),
    )
    .key("caller_name", "Holder")
    .key("caller_user", "+4940111222")
    .sdp_media(phone.local_addr())
    .remote(sip)
    .service(DIALLED)
    .spawn();

    let bridged =
        poll(Duration::from_secs(5), || flags().filter(|f| speaks(f))).unwrap_or_else(|| {
            panic!(
                "the caller never spoke in the conference; log:\n{}",
                dialin.log()
            )
        });
    eprintln!("bridged, flags {bridged}");
    if moderator_mutes {
        let (member, _) = dialin_member_flags(&fs).expect("our member");
        let said = fs.api(&format!("conference {CONFERENCE} mute {member}"));
        eprintln!("the moderator mutes: {said}");
        // Muted from now until the caller hangs up: through the hold and the resume.
        let mut seen = Vec::new();
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(12) {
            match flags() {
                Some(f) => {
                    assert!(
                        !speaks(&f),
                        "a moderator's mute was undone after {:?} (flags {f}); seen {seen:?}; log:\n{}",
                        t.elapsed(),
                        dialin.log()
                    );
                    seen.push(f);
                }
                None if seen.is_empty() => {}
                // Our member left: the call is over.
                None => break,
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        assert!(seen.len() > 50, "watched too briefly: {seen:?}");
        caller.wait().assert_success();
        // The conference said "muted" before the hold: neither a mute nor an unmute was sent.
        assert!(
            !dialin.log().contains("mute our conference member"),
            "{}",
            dialin.log()
        );
        return;
    }
    let held = poll(Duration::from_secs(6), || flags().filter(|f| !speaks(f)))
        .unwrap_or_else(|| panic!("not muted during the hold; log:\n{}", dialin.log()));
    eprintln!("on hold, flags {held}");
    let resumed = poll(Duration::from_secs(7), || flags().filter(|f| speaks(f)))
        .unwrap_or_else(|| panic!("still muted after the resume; log:\n{}", dialin.log()));
    eprintln!("resumed, flags {resumed}");
    caller.wait().assert_success();
    // By state, not by toggle (the line the moderator case looks for is there to be seen).
    let log = dialin.log();
    assert!(
        log.contains("mute our conference member") && log.contains("unmute our conference member"),
        "{log}"
    );
}
