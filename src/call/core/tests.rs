//! Whole calls on simulated time (`sim`): each test scripts a caller, a server and the
//! network, runs minutes of a call in microseconds, and checks what the core asked for and
//! when. These are the call's behaviours; the sipp tests in `tests/it/calls.rs` stay as the
//! wire-level smoke tests with real peers.

use super::sim::{caller_sdp, flow_settings, Ev, Msg, ServerPlan, Sim};
use super::{
    Answered, CallAction as A, CallerEvent, InDialog, ReplyStatus, RequestId, ServerEvent, Side,
};
use crate::call::flow::{FlowState, Outcome};
use crate::call::PromptId;
use crate::routing::{Lookup, RouteDecision};
use crate::sip::session_timer::{Refresher, SessionRequest, SessionTimer};
use crate::store::shared_mappings::MeetingLookup;
use std::time::{Duration, Instant};

fn bridged(a: &A) -> bool {
    matches!(a, A::Bridge { .. })
}

fn offer(body: Vec<u8>) -> Ev {
    Ev::Caller(CallerEvent::Request(
        RequestId(1),
        InDialog::Offer {
            update: false,
            body,
        },
    ))
}

fn reply_sdp(sim: &Sim, status: ReplyStatus) -> Option<String> {
    sim.actions.iter().rev().find_map(|(_, a)| match a {
        A::Reply { status: s, sdp, .. } if *s == status => {
            Some(String::from_utf8_lossy(sdp.as_deref().unwrap_or_default()).into_owned())
        }
        _ => None,
    })
}

fn timer(refresher: Refresher, secs: u64) -> SessionTimer {
    let request = SessionRequest {
        interval: Duration::from_secs(secs),
        refresher: Some(refresher),
        caller_supports: true,
    };
    SessionTimer::negotiate(Some(request), Duration::from_secs(90), Instant::now())
        .expect("accepted")
        .expect("a timer")
}

#[test]
fn a_pin_bridges_the_call_and_the_caller_hanging_up_ends_both_legs() {
    let mut sim = Sim::answered();
    sim.keys(1_000, "1234#")
        .at(60_000, Ev::Caller(CallerEvent::HungUp))
        .run_until(120_000);
    // Barge-in: the welcome stops at the first key; the PIN ends with '#'.
    assert_eq!(sim.prompts(), [PromptId::Welcome, PromptId::Connecting]);
    let dialled = sim
        .when(|a| matches!(a, A::DialServer { .. }))
        .expect("dialled");
    assert_eq!(dialled, 1_800);
    // The server's 200 takes 300 ms plus the network's 20 ms.
    assert_eq!(sim.when(bridged), Some(2_120));
    assert!(sim.when(|a| matches!(a, A::LeaveIvr)).is_some());
    assert_eq!(sim.when(|a| matches!(a, A::HangUpServer)), Some(60_020));
    assert_eq!(sim.count(|a| matches!(a, A::HangUpCaller)), 0);
    assert_eq!(sim.finished(), Some((Outcome::Bridged, false, 60_020)));
}

#[test]
fn the_server_hanging_up_sends_the_caller_a_bye() {
    let mut sim = Sim::answered();
    sim.keys(1_000, "1234#")
        .at(30_000, Ev::Server(ServerEvent::HungUp))
        .run_until(120_000);
    assert_eq!(sim.when(|a| matches!(a, A::HangUpCaller)), Some(30_020));
    assert_eq!(sim.count(|a| matches!(a, A::HangUpServer)), 0);
    assert_eq!(sim.finished(), Some((Outcome::ServerHangup, false, 30_020)));
}

#[test]
fn a_lost_ack_ends_the_call_after_the_ack_wait_without_a_prompt() {
    let mut sim = Sim::answered();
    sim.net.lose = Box::new(|m| matches!(m, Msg::Caller(CallerEvent::Acked { .. })));
    sim.run_until(60_000);
    assert!(sim.prompts().is_empty(), "{:?}", sim.prompts());
    assert_eq!(sim.when(|a| matches!(a, A::HangUpCaller)), Some(10_000));
    assert_eq!(sim.finished(), Some((Outcome::CallerHangup, false, 10_000)));
}

#[test]
fn a_slow_ack_starts_the_greeting_when_it_arrives() {
    let mut sim = Sim::answered();
    sim.net.delay = Duration::from_secs(3);
    sim.run_until(3_500);
    assert_eq!(sim.prompts(), [PromptId::Welcome]);
    assert_eq!(sim.when(|a| matches!(a, A::Play(_))), Some(3_000));
    assert!(sim.finished().is_none());
}

#[test]
fn a_late_offer_gets_its_media_from_the_ack() {
    let mut sim = Sim::start(Answered::LateOffer, None);
    assert!(sim.when(|a| matches!(a, A::StartMedia(_))).is_none());
    sim.at(
        100,
        Ev::Caller(CallerEvent::Acked {
            body: caller_sdp(4000, "sendrecv"),
        }),
    )
    .keys(1_000, "1234#")
    .run_until(5_000);
    assert_eq!(sim.when(|a| matches!(a, A::StartMedia(_))), Some(120));
    assert_eq!(sim.when(|a| matches!(a, A::Play(_))), Some(120));
    assert!(sim.when(bridged).is_some());
}

#[test]
fn a_late_offer_whose_ack_has_no_usable_codec_is_hung_up() {
    let mut sim = Sim::start(Answered::LateOffer, None);
    let g729 = b"v=0\r\no=- 1 1 IN IP4 127.0.0.2\r\ns=-\r\nc=IN IP4 127.0.0.2\r\nt=0 0\r\n\
                 m=audio 4000 RTP/AVP 18\r\na=rtpmap:18 G729/8000\r\n"
        .to_vec();
    sim.at(100, Ev::Caller(CallerEvent::Acked { body: g729 }))
        .run_until(5_000);
    assert_eq!(sim.when(|a| matches!(a, A::HangUpCaller)), Some(120));
    assert_eq!(sim.finished(), Some((Outcome::RejectedCodec, false, 120)));
    assert!(sim.prompts().is_empty());
}

#[test]
fn hold_and_resume_by_re_invite_stop_and_restart_sending_to_the_caller() {
    let mut sim = Sim::answered();
    sim.keys(1_000, "1234#")
        .at(10_000, offer(caller_sdp(4002, "sendonly")))
        .run_until(11_000);
    let held = sim.actions.iter().find_map(|(_, a)| match a {
        A::UpdateLeg {
            side,
            remote,
            sending,
        } => Some((*side, *remote, *sending)),
        _ => None,
    });
    assert_eq!(
        held,
        Some((Side::Caller, "127.0.0.2:4002".parse().expect("addr"), false))
    );
    let answer = reply_sdp(&sim, ReplyStatus::Ok).expect("a 200 with SDP");
    assert!(answer.contains("a=recvonly"), "{answer}");
    assert!(
        answer.contains("o=dialin 7 2 IN IP4"),
        "a new version: {answer}"
    );
    sim.at(20_000, offer(caller_sdp(4002, "sendrecv")))
        .run_until(21_000);
    let (_, last) = sim
        .actions
        .iter()
        .rev()
        .find(|(_, a)| matches!(a, A::UpdateLeg { .. }))
        .expect("resumed");
    assert!(matches!(last, A::UpdateLeg { sending: true, .. }));
    assert_eq!(sim.call.state(), FlowState::Bridged);
}

#[test]
fn a_re_offer_without_our_codec_gets_488_and_changes_nothing() {
    let mut sim = Sim::answered();
    let pcma_only = String::from_utf8(caller_sdp(4002, "sendrecv"))
        .expect("text")
        .replace("RTP/AVP 0 101", "RTP/AVP 8 101")
        .replace("rtpmap:0 PCMU", "rtpmap:8 PCMA");
    sim.at(5_000, offer(pcma_only.into_bytes()))
        .run_until(6_000);
    assert!(reply_sdp(&sim, ReplyStatus::NotAcceptableHere).is_some());
    assert_eq!(sim.count(|a| matches!(a, A::UpdateLeg { .. })), 0);
}

#[test]
fn dialin_refreshes_the_session_at_half_the_interval() {
    let n = super::legs::negotiate_caller(&caller_sdp(4000, "sendrecv")).expect("offer");
    let mut sim = Sim::start(Answered::Offer(n), Some(timer(Refresher::Us, 120)));
    sim.at(0, Ev::Caller(CallerEvent::Acked { body: Vec::new() }))
        .keys(1_000, "1234#")
        .run_until(200_000);
    let refreshes: Vec<u64> = sim
        .actions
        .iter()
        .filter(|(_, a)| matches!(a, A::RefreshSession { .. }))
        .map(|(t, _)| t.as_millis() as u64)
        .collect();
    assert_eq!(refreshes, [60_000, 120_000, 180_000]);
    assert!(sim.finished().is_none(), "refreshed sessions live on");
}

#[test]
fn a_session_the_caller_never_refreshes_ends_with_bye_on_both_legs() {
    let n = super::legs::negotiate_caller(&caller_sdp(4000, "sendrecv")).expect("offer");
    let mut sim = Sim::start(Answered::Offer(n), Some(timer(Refresher::Caller, 120)));
    sim.at(0, Ev::Caller(CallerEvent::Acked { body: Vec::new() }))
        .keys(1_000, "1234#")
        // A refresh without SDP at 60 s moves the expiry to 60 + 120 - 32 s.
        .at(60_000, offer(Vec::new()))
        .run_until(300_000);
    let refreshed = reply_sdp(&sim, ReplyStatus::Ok).expect("a 200 to the refresh");
    assert!(refreshed.contains("m=audio 30000"), "our SDP: {refreshed}");
    assert_eq!(sim.when(|a| matches!(a, A::HangUpCaller)), Some(148_020));
    assert!(sim.when(|a| matches!(a, A::HangUpServer)).is_some());
    assert_eq!(sim.finished().map(|f| f.0), Some(Outcome::MediaTimeout));
}

#[test]
fn guessing_protection_answers_a_pin_slowly() {
    let mut sim = Sim::answered();
    sim.guess_delay = Duration::from_secs(3);
    sim.keys(1_000, "9999#").run_until(5_000);
    let typed = 1_800;
    assert_eq!(
        sim.when(|a| matches!(a, A::Play(PromptId::InvalidPin))),
        Some(typed + 3_000)
    );
    assert_eq!(sim.count(|a| matches!(a, A::RecordFailedPin)), 1);
}

#[test]
fn three_wrong_pins_say_goodbye_and_count_as_a_failed_call() {
    let mut sim = Sim::answered();
    sim.keys(1_000, "9999#")
        .keys(6_000, "8888#")
        .keys(11_000, "7777#")
        .run_until(30_000);
    assert_eq!(
        sim.prompts(),
        [
            PromptId::Welcome,
            PromptId::InvalidPin,
            PromptId::InvalidPin,
            PromptId::Goodbye
        ]
    );
    assert_eq!(sim.count(|a| matches!(a, A::RecordFailedPin)), 3);
    assert_eq!(
        sim.count(|a| matches!(a, A::NumberCaller(_) | A::DialServer { .. })),
        0
    );
    // The goodbye plays 2 s, then the caller gets BYE.
    assert_eq!(sim.finished(), Some((Outcome::InvalidPin, true, 13_800)));
    assert_eq!(sim.when(|a| matches!(a, A::HangUpCaller)), Some(13_800));
}

#[test]
fn a_wrong_pin_then_a_right_one_is_no_failed_call() {
    let mut sim = Sim::answered();
    sim.keys(1_000, "9999#")
        .keys(6_000, "1234#")
        .at(30_000, Ev::Caller(CallerEvent::HungUp))
        .run_until(60_000);
    assert!(sim.when(bridged).is_some());
    assert_eq!(
        sim.finished().map(|f| (f.0, f.1)),
        Some((Outcome::Bridged, false))
    );
}

#[test]
fn the_waiting_room_holds_the_caller_until_the_conference_starts() {
    let mut sim = Sim::answered();
    sim.waiting_pin("5555");
    sim.keys(1_000, "5555#")
        .at(20_000, Ev::ConferenceStarts)
        .run_until(30_000);
    let prompts = sim.prompts();
    assert_eq!(
        prompts[..3],
        [PromptId::Welcome, PromptId::NotStarted, PromptId::Hold]
    );
    assert!(sim.when(|a| matches!(a, A::WatchDirectory)).is_some());
    assert_eq!(
        sim.when(|a| matches!(a, A::DialServer { .. })),
        Some(20_000)
    );
    assert_eq!(sim.when(|a| matches!(a, A::UnwatchDirectory)), Some(20_000));
    assert_eq!(sim.when(bridged), Some(20_320));
}

#[test]
fn the_waiting_room_ends_at_max_wait() {
    let mut sim = Sim::answered();
    sim.waiting_pin("5555");
    sim.keys(1_000, "5555#").run_until(120_000);
    let typed = 1_800;
    assert_eq!(
        sim.when(|a| matches!(a, A::Play(PromptId::Unavailable))),
        Some(typed + 60_000)
    );
    assert_eq!(
        sim.finished(),
        Some((Outcome::NoConference, false, typed + 62_000))
    );
    assert_eq!(sim.count(|a| matches!(a, A::DialServer { .. })), 0);
}

#[test]
fn a_meeting_id_is_polled_until_it_runs_and_promptly_when_the_directory_changes() {
    let mut sim = Sim::answered();
    let lookup = MeetingLookup {
        meeting_id: "room-1".into(),
        server: None,
    };
    sim.routes.insert("4444".into(), Lookup::Meeting(lookup));
    sim.keys(1_000, "4444#")
        .at(14_000, Ev::ConferenceStarts)
        .run_until(25_000);
    let lookups: Vec<u64> = sim
        .actions
        .iter()
        .filter(|(_, a)| matches!(a, A::LookupMeeting(_)))
        .map(|(t, _)| t.as_millis() as u64)
        .collect();
    // At the PIN, then every 5 s after each answer, then at once when the directory moved.
    assert_eq!(lookups, [1_800, 6_850, 11_900, 14_000]);
    assert_eq!(
        sim.when(|a| matches!(a, A::Play(PromptId::NotStarted))),
        Some(1_850)
    );
    assert_eq!(
        sim.when(|a| matches!(a, A::DialServer { .. })),
        Some(14_050)
    );
}

#[test]
fn the_drain_says_unavailable_in_the_menu_and_hangs_up_bridged_calls_at_once() {
    let mut menu = Sim::answered();
    menu.at(1_000, Ev::Shutdown).run_until(10_000);
    assert_eq!(menu.prompts(), [PromptId::Welcome, PromptId::Unavailable]);
    assert_eq!(menu.finished(), Some((Outcome::Shutdown, false, 3_000)));

    let mut bridged_call = Sim::answered();
    bridged_call
        .keys(1_000, "1234#")
        .at(10_000, Ev::Shutdown)
        .run_until(20_000);
    assert_eq!(
        bridged_call.when(|a| matches!(a, A::HangUpCaller)),
        Some(10_000)
    );
    assert_eq!(
        bridged_call.when(|a| matches!(a, A::HangUpServer)),
        Some(10_000)
    );
    assert_eq!(
        bridged_call.finished().map(|f| f.0),
        Some(Outcome::Shutdown)
    );
}

#[test]
fn a_server_that_never_answers_is_cancelled_and_the_caller_hears_unavailable() {
    let mut sim = Sim::answered();
    sim.server_plan = ServerPlan::Silent;
    sim.keys(1_000, "1234#").run_until(30_000);
    assert_eq!(sim.when(|a| matches!(a, A::CancelServer)), Some(11_800));
    assert_eq!(
        sim.prompts(),
        [
            PromptId::Welcome,
            PromptId::Connecting,
            PromptId::Unavailable
        ]
    );
    assert_eq!(sim.finished(), Some((Outcome::NoConference, false, 13_800)));
}

#[test]
fn a_200_crossing_our_cancel_is_hung_up() {
    let mut sim = Sim::answered();
    sim.server_plan = ServerPlan::Answer(Duration::from_millis(10_010));
    sim.net.delay = Duration::from_millis(50);
    sim.keys(1_000, "1234#").run_until(30_000);
    // Dialled at 1 800: the timeout fires at 11 800, the 200 left the server at 11 810 and
    // arrives at 11 860, while the caller hears "unavailable".
    assert_eq!(sim.when(|a| matches!(a, A::CancelServer)), Some(11_800));
    assert_eq!(sim.when(|a| matches!(a, A::HangUpServer)), Some(11_860));
    assert!(sim.when(bridged).is_none());
}

#[test]
fn a_refused_server_leg_plays_unavailable() {
    let mut sim = Sim::answered();
    sim.server_plan = ServerPlan::Refuse(Duration::from_millis(100));
    sim.keys(1_000, "1234#").run_until(30_000);
    assert_eq!(sim.finished().map(|f| f.0), Some(Outcome::NoConference));
    assert_eq!(
        sim.count(|a| matches!(a, A::CancelServer | A::HangUpServer)),
        0
    );
}

#[test]
fn the_callers_bye_overtaking_the_servers_200_cancels_the_server() {
    let mut sim = Sim::answered();
    sim.net.jitter = Duration::from_millis(400);
    sim.server_plan = ServerPlan::Answer(Duration::from_millis(500));
    // The server's 200 leaves at 2 300, the caller's BYE at 2 310: the network decides.
    sim.keys(1_000, "1234#")
        .at(2_310, Ev::Caller(CallerEvent::HungUp))
        .run_until(30_000);
    let bridged_at = sim.when(bridged);
    let outcome = sim.finished().map(|f| f.0);
    match bridged_at {
        // The 200 came first: bridged, then the caller's BYE ends both legs.
        Some(_) => {
            assert_eq!(outcome, Some(Outcome::Bridged));
            assert!(sim.when(|a| matches!(a, A::HangUpServer)).is_some());
        }
        // The BYE came first: the ringing leg is cancelled; the late 200 changes nothing.
        None => {
            assert_eq!(outcome, Some(Outcome::CallerHangup));
            assert!(sim.when(|a| matches!(a, A::CancelServer)).is_some());
        }
    }
}

#[test]
fn media_that_stops_ends_the_call_after_the_media_timeout() {
    let mut sim = Sim::answered();
    sim.keys(1_000, "1234#")
        .at(20_000, Ev::MediaStops)
        .run_until(100_000);
    assert_eq!(sim.when(|a| matches!(a, A::HangUpCaller)), Some(50_000));
    assert_eq!(sim.finished(), Some((Outcome::MediaTimeout, false, 50_000)));
}

#[test]
fn early_media_answers_only_once_bridged_and_rejects_a_failed_caller() {
    let n = super::legs::negotiate_caller(&caller_sdp(4000, "sendrecv")).expect("offer");
    let early = || Answered::Early {
        negotiated: n.clone(),
        body: b"v=0 ours".to_vec(),
    };
    let mut ok = Sim::start(early(), None);
    ok.keys(1_000, "1234#").run_until(5_000);
    assert_eq!(ok.when(|a| matches!(a, A::Play(_))), Some(0));
    let answered = ok.when(|a| matches!(a, A::AnswerCaller { .. }));
    assert_eq!(answered, ok.when(bridged));

    let mut failed = Sim::start(early(), None);
    failed
        .keys(1_000, "9999#")
        .keys(6_000, "9999#")
        .keys(11_000, "9999#")
        .run_until(30_000);
    assert!(failed.when(|a| matches!(a, A::RejectCaller)).is_some());
    assert_eq!(
        failed.count(|a| matches!(a, A::HangUpCaller | A::AnswerCaller { .. })),
        0
    );
}

#[test]
fn info_digits_count_and_other_in_dialog_requests_get_their_answers() {
    let mut sim = Sim::answered();
    for (i, c) in "1234#".chars().enumerate() {
        let digit = crate::digit::Digit::from_char(c);
        let info = InDialog::Info {
            digit,
            empty: false,
        };
        sim.at(
            1_000 + 200 * i as u64,
            Ev::Caller(CallerEvent::Request(RequestId(i as u64), info)),
        );
    }
    let junk = InDialog::Info {
        digit: None,
        empty: false,
    };
    sim.at(5_000, Ev::Caller(CallerEvent::Request(RequestId(9), junk)))
        .at(
            5_100,
            Ev::Caller(CallerEvent::Request(RequestId(10), InDialog::Unsupported)),
        )
        .run_until(6_000);
    assert!(sim.when(bridged).is_some());
    let statuses: Vec<ReplyStatus> = sim
        .actions
        .iter()
        .filter_map(|(_, a)| match a {
            A::Reply { status, .. } => Some(*status),
            _ => None,
        })
        .collect();
    use ReplyStatus::*;
    assert_eq!(
        statuses,
        [Ok, Ok, Ok, Ok, Ok, UnsupportedMediaType, MethodNotAllowed]
    );
}

#[test]
fn a_blocked_caller_hears_goodbye_only() {
    let n = super::legs::negotiate_caller(&caller_sdp(4000, "sendrecv")).expect("offer");
    let mut sim = Sim::start_with(Answered::Offer(n), None, flow_settings(), true);
    sim.at(0, Ev::Caller(CallerEvent::Acked { body: Vec::new() }))
        .run_until(10_000);
    assert_eq!(sim.prompts(), [PromptId::Goodbye]);
    assert_eq!(sim.finished(), Some((Outcome::Blocked, false, 2_020)));
}

#[test]
fn the_echo_test_ends_after_echo_max() {
    let mut sim = Sim::answered();
    sim.routes
        .insert("0000".into(), Lookup::Ready(RouteDecision::Echo));
    sim.keys(1_000, "0000#").run_until(100_000);
    assert_eq!(sim.when(|a| matches!(a, A::StartEcho)), Some(1_800));
    assert_eq!(sim.finished(), Some((Outcome::Echo, false, 61_800)));
}

#[test]
fn a_bodiless_re_invite_from_the_server_gets_our_sdp() {
    let mut sim = Sim::answered();
    let refresh = InDialog::Offer {
        update: false,
        body: Vec::new(),
    };
    sim.keys(1_000, "1234#")
        .at(
            10_000,
            Ev::Server(ServerEvent::Request(RequestId(3), refresh)),
        )
        .run_until(11_000);
    let body = reply_sdp(&sim, ReplyStatus::Ok).expect("a 200 with SDP");
    assert!(
        body.contains("m=audio 40000"),
        "the server leg's port: {body}"
    );
}

#[test]
fn star_clears_what_was_typed_before_the_pin() {
    let mut sim = Sim::answered();
    sim.keys(1_000, "999*1234#").run_until(10_000);
    assert!(sim.when(bridged).is_some());
    assert_eq!(sim.count(|a| matches!(a, A::RecordFailedPin)), 0);
}

#[test]
fn a_caller_hanging_up_during_pin_entry_dials_nothing() {
    let mut sim = Sim::answered();
    sim.keys(1_000, "867")
        .at(2_500, Ev::Caller(CallerEvent::HungUp))
        .run_until(10_000);
    assert_eq!(sim.finished(), Some((Outcome::CallerHangup, false, 2_520)));
    assert_eq!(
        sim.count(|a| matches!(a, A::NumberCaller(_) | A::HangUpCaller)),
        0
    );
}
