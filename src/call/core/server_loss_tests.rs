//! A bridged server leg lost without a BYE, on simulated time: detection (silence, ICMP),
//! the caller holding, dialling the meeting again, and the ways that ends.

use super::sim::{caller_sdp, flow_settings, Ev, ServerPlan, Sim};
use super::{Answered, CallAction as A, CallerEvent, InDialog, Record, RequestId, ServerEvent};
use crate::call::flow::{FlowState, Outcome};
use crate::call::PromptId;
use crate::digit::Digit;

fn bridged(a: &A) -> bool {
    matches!(a, A::Bridge { .. })
}

fn lost(sim: &Sim) -> Vec<(u64, &'static str)> {
    sim.actions
        .iter()
        .filter_map(|(t, a)| match a {
            A::Record(Record::ServerLost(reason)) => Some((t.as_millis() as u64, *reason)),
            _ => None,
        })
        .collect()
}

fn dialled_seqs(sim: &Sim) -> Vec<(u64, u64)> {
    sim.actions
        .iter()
        .filter_map(|(t, a)| match a {
            A::DialServer { seq, .. } => Some((t.as_millis() as u64, *seq)),
            _ => None,
        })
        .collect()
}

/// A call bridged at 2.12 s (PIN typed from 1 s, the server answers in 300 ms).
fn bridged_call() -> Sim {
    let mut sim = Sim::answered();
    sim.keys(1_000, "1234#");
    sim.conference_running = true;
    sim
}

#[test]
fn a_silent_server_is_lost_within_a_second_and_the_caller_rejoins_when_the_meeting_runs_again() {
    let mut sim = bridged_call();
    sim.at(10_000, Ev::ServerMediaStops)
        .at(10_000, Ev::ConferenceStops)
        .at(20_000, Ev::ConferenceStarts)
        .at(60_000, Ev::Caller(CallerEvent::HungUp))
        .run_until(120_000);
    assert_eq!(lost(&sim), [(11_000, "silence")]);
    // Told at once: the lost leg gets a BYE, the caller the prompt, then the hold loop.
    assert_eq!(sim.when(|a| matches!(a, A::Unbridge)), Some(11_000));
    assert_eq!(
        sim.when(|a| matches!(a, A::Play(PromptId::ConnectionLost))),
        Some(11_000)
    );
    assert_eq!(
        sim.count(|a| matches!(a, A::HangUpServer)),
        2,
        "lost leg, then the end"
    );
    assert!(sim.prompts().contains(&PromptId::Hold));
    // Dialled again the moment the directory sees the meeting, with the same number in it.
    assert_eq!(dialled_seqs(&sim), [(1_800, 1), (20_000, 1)]);
    let bridges: Vec<_> = sim.actions.iter().filter(|(_, a)| bridged(a)).collect();
    assert_eq!(bridges.len(), 2);
    assert_eq!(bridges[1].0.as_millis(), 20_320);
    assert_eq!(sim.count(|a| matches!(a, A::Record(Record::Rejoined))), 1);
    // Bridged once as far as the IVR and the statistics go.
    assert_eq!(sim.count(|a| matches!(a, A::LeaveIvr)), 1);
    assert_eq!(sim.count(|a| matches!(a, A::Record(Record::Bridged))), 1);
    assert_eq!(sim.finished(), Some((Outcome::Bridged, false, 60_020)));
}

#[test]
fn a_server_that_keeps_sending_is_never_lost() {
    let mut sim = bridged_call();
    sim.at(600_000, Ev::Caller(CallerEvent::HungUp))
        .run_until(700_000);
    assert!(lost(&sim).is_empty());
    assert_eq!(sim.finished(), Some((Outcome::Bridged, false, 600_020)));
}

#[test]
fn icmp_without_a_bye_is_a_loss_after_the_bye_grace() {
    let mut sim = bridged_call();
    sim.at(10_000, Ev::ServerUnreachable)
        .at(10_000, Ev::ServerMediaStops)
        .run_until(11_000);
    assert_eq!(lost(&sim), [(10_250, "unreachable")]);
    assert_eq!(sim.call.state(), FlowState::Rejoining);
}

#[test]
fn icmp_followed_by_a_bye_is_the_meeting_ending_not_a_loss() {
    let mut sim = bridged_call();
    sim.at(10_000, Ev::ServerUnreachable)
        .at(10_000, Ev::ServerMediaStops)
        .at(10_050, Ev::Server(ServerEvent::HungUp))
        .run_until(20_000);
    assert!(lost(&sim).is_empty());
    assert_eq!(sim.finished(), Some((Outcome::ServerHangup, false, 10_070)));
}

#[test]
fn icmp_once_while_packets_still_come_is_a_hiccup() {
    let mut sim = bridged_call();
    sim.at(10_000, Ev::ServerUnreachable).run_until(30_000);
    assert!(lost(&sim).is_empty());
    assert_eq!(sim.call.state(), FlowState::Bridged);
}

#[test]
fn a_meeting_that_never_comes_back_ends_after_rejoin_max() {
    let mut sim = bridged_call();
    sim.at(10_000, Ev::ServerMediaStops)
        .at(10_000, Ev::ConferenceStops)
        .run_until(300_000);
    // Lost at 11 s; rejoin_max is 2 minutes; then "unavailable" (2 s long here).
    assert_eq!(
        sim.when(|a| matches!(a, A::Play(PromptId::Unavailable))),
        Some(131_000)
    );
    assert_eq!(sim.count(|a| matches!(a, A::DialServer { .. })), 1);
    assert_eq!(sim.finished(), Some((Outcome::ServerLost, false, 133_000)));
}

#[test]
fn a_caller_hanging_up_while_holding_after_a_loss_counts_as_server_lost() {
    let mut sim = bridged_call();
    sim.at(10_000, Ev::ServerMediaStops)
        .at(10_000, Ev::ConferenceStops)
        .at(30_000, Ev::Caller(CallerEvent::HungUp))
        .run_until(60_000);
    assert_eq!(sim.finished(), Some((Outcome::ServerLost, false, 30_020)));
    // The lost leg got its BYE when it was lost, not again.
    assert_eq!(sim.count(|a| matches!(a, A::HangUpServer)), 1);
}

#[test]
fn a_failing_redial_is_tried_again_every_two_seconds_until_it_answers() {
    let mut sim = bridged_call();
    // Where no directory can tell (the meeting seems to run all along), dialin dials again
    // on its own schedule; the server refuses until it is back.
    sim.at(10_000, Ev::ServerMediaStops).run_until(11_000);
    sim.server_plan = ServerPlan::Refuse(std::time::Duration::from_millis(100));
    sim.run_until(17_000);
    sim.server_plan = ServerPlan::Answer(std::time::Duration::from_millis(300));
    sim.run_until(30_000);
    let dials: Vec<u64> = dialled_seqs(&sim).iter().map(|(t, _)| *t).collect();
    // Lost at 11 s; tries at 13 s, 15.12 s, 17.24 s (each refusal takes 120 ms).
    assert_eq!(dials, [1_800, 13_000, 15_120, 17_240]);
    assert!(dialled_seqs(&sim).iter().all(|(_, seq)| *seq == 1));
    assert_eq!(sim.call.state(), FlowState::Bridged);
    // No "unavailable" while it retries.
    assert!(!sim.prompts().contains(&PromptId::Unavailable));
}

#[test]
fn a_muted_caller_is_muted_again_after_the_rejoin() {
    let mut settings = flow_settings();
    settings.mute_key = Some(Digit::from_char('0').expect("a key"));
    let n = super::legs::negotiate_caller(&caller_sdp(4000, "sendrecv")).expect("an offer");
    let mut sim = Sim::start_with(Answered::Offer(n), None, settings, false);
    sim.conference_running = true;
    sim.at(0, Ev::Caller(CallerEvent::Acked { body: Vec::new() }))
        .keys(1_000, "1234#")
        .at(5_000, Ev::Key('0'))
        .at(10_000, Ev::ServerMediaStops)
        .run_until(30_000);
    // Muted at 5 s (the key toggles); lost at 11 s; dialled again at 13 s, bridged at
    // 13.32 s and muted again (a state: a new member starts unmuted).
    assert_eq!(toggles(&sim), [5_000]);
    assert_eq!(mutes(&sim), [(13_320, true)]);
}

#[test]
fn a_caller_that_holds_may_be_silent_longer_than_the_media_timeout() {
    let mut sim = bridged_call();
    let hold = Ev::Caller(CallerEvent::Request(
        RequestId(1),
        InDialog::Offer {
            update: false,
            body: caller_sdp(4000, "inactive"),
        },
    ));
    sim.at(10_000, hold)
        .at(10_000, Ev::MediaStops)
        .run_until(200_000);
    assert_eq!(sim.finished(), None);
    assert_eq!(sim.call.state(), FlowState::Bridged);
}

fn reoffer(direction: &str) -> Ev {
    Ev::Caller(CallerEvent::Request(
        RequestId(1),
        InDialog::Offer {
            update: false,
            body: caller_sdp(4000, direction),
        },
    ))
}

fn toggles(sim: &Sim) -> Vec<u64> {
    sim.times(|a| matches!(a, A::ToggleMute(_)))
}

/// When (ms) the core set the member's mute, and to what.
fn mutes(sim: &Sim) -> Vec<(u64, bool)> {
    let muted = sim.times(|a| matches!(a, A::SetMute(true)));
    let unmuted = sim.times(|a| matches!(a, A::SetMute(false)));
    let mut all: Vec<_> = muted.into_iter().map(|t| (t, true)).collect();
    all.extend(unmuted.into_iter().map(|t| (t, false)));
    all.sort();
    all
}

/// A call bridged at 2.12 s whose server's Event Socket tells our member's mute.
fn mute_key_call() -> Sim {
    let mut settings = flow_settings();
    settings.mute_key = Some(Digit::from_char('0').expect("a key"));
    let n = super::legs::negotiate_caller(&caller_sdp(4000, "sendrecv")).expect("an offer");
    let mut sim = Sim::start_with(Answered::Offer(n), None, settings, false);
    sim.member_muted = Some(false);
    sim.at(0, Ev::Caller(CallerEvent::Acked { body: Vec::new() }))
        .keys(1_000, "1234#");
    sim
}

#[test]
fn a_caller_on_hold_is_muted_in_the_meeting_and_unmuted_on_resume() {
    let mut sim = mute_key_call();
    sim.at(10_000, reoffer("sendonly"))
        .at(15_000, reoffer("sendonly"))
        .at(20_000, reoffer("sendrecv"))
        .run_until(30_000);
    // Once for the hold (a second hold offer changes nothing), once for the resume.
    assert_eq!(mutes(&sim), [(10_020, true), (20_020, false)]);
    assert!(toggles(&sim).is_empty());
    assert_eq!(sim.member_muted, Some(false));
}

#[test]
fn a_caller_that_muted_itself_stays_muted_through_hold_and_resume() {
    let mut sim = mute_key_call();
    sim.at(5_000, Ev::Key('0'))
        .at(10_000, reoffer("inactive"))
        .at(20_000, reoffer("sendrecv"))
        .run_until(30_000);
    assert_eq!(toggles(&sim), [5_000]);
    assert!(mutes(&sim).is_empty(), "{:?}", mutes(&sim));
    assert_eq!(sim.member_muted, Some(true));
}

#[test]
fn a_caller_a_moderator_muted_stays_muted_through_hold_and_resume() {
    // The hold used to toggle the mute: a moderator's mute was undone for the hold.
    let mut sim = mute_key_call();
    sim.at(5_000, Ev::Moderator(true))
        .at(10_000, reoffer("sendonly"))
        .at(20_000, reoffer("sendrecv"))
        .run_until(30_000);
    assert!(mutes(&sim).is_empty(), "{:?}", mutes(&sim));
    assert!(toggles(&sim).is_empty());
    assert_eq!(sim.member_muted, Some(true));
}

#[test]
fn a_holding_caller_a_moderator_unmuted_is_not_unmuted_again_on_resume() {
    let mut sim = mute_key_call();
    sim.at(10_000, reoffer("sendonly"))
        .at(12_000, Ev::Moderator(false))
        // A session refresh while holding tells the core what the moderator did.
        .at(15_000, reoffer("sendonly"))
        .at(20_000, reoffer("sendrecv"))
        .run_until(30_000);
    assert_eq!(mutes(&sim), [(10_020, true)]);
    assert_eq!(sim.member_muted, Some(false));
}

#[test]
fn a_caller_holding_through_a_rejoin_is_muted_for_the_hold_and_unmuted_on_resume() {
    let mut sim = mute_key_call();
    sim.conference_running = true;
    sim.at(5_000, reoffer("sendonly"))
        .at(10_000, Ev::ServerMediaStops)
        .at(20_000, reoffer("sendrecv"))
        .run_until(30_000);
    // Muted for the hold; lost at 11 s, bridged again at 13.32 s (a new member, unmuted):
    // muted for the hold again; unmuted on resume.
    assert_eq!(
        mutes(&sim),
        [(5_020, true), (13_320, true), (20_020, false)]
    );
    assert_eq!(sim.member_muted, Some(false));
}

#[test]
fn an_event_socket_down_with_the_media_gone_is_a_loss_at_once() {
    let mut sim = bridged_call();
    sim.at(10_000, Ev::ServerMediaStops)
        .at(10_000, Ev::ServerDown)
        .run_until(11_000);
    assert_eq!(lost(&sim), [(10_250, "esl_down")]);
}

#[test]
fn an_event_socket_down_while_the_audio_flows_leaves_the_call_alone() {
    // The socket or the probes have a problem, the conference's audio does not.
    let mut sim = bridged_call();
    sim.at(10_000, Ev::ServerDown).run_until(60_000);
    assert!(lost(&sim).is_empty());
    assert_eq!(sim.call.state(), FlowState::Bridged);
}

#[test]
fn a_caller_a_moderator_muted_is_muted_again_after_the_rejoin() {
    let mut sim = mute_key_call();
    sim.conference_running = true;
    // Never pressed the key; a moderator muted it before the leg was lost.
    sim.at(5_000, Ev::Moderator(true))
        .at(10_000, Ev::ServerMediaStops)
        .run_until(30_000);
    // Lost at 11 s; dialled again at 13 s, bridged at 13.32 s (a new member) and muted.
    assert_eq!(mutes(&sim), [(13_320, true)]);
    assert_eq!(sim.member_muted, Some(true));
}

#[test]
fn a_caller_a_moderator_unmuted_is_not_muted_after_the_rejoin() {
    let mut sim = mute_key_call();
    sim.conference_running = true;
    // Muted itself at 5 s; a moderator unmuted it before the leg was lost.
    sim.at(5_000, Ev::Key('0'))
        .at(8_000, Ev::Moderator(false))
        .at(10_000, Ev::ServerMediaStops)
        .run_until(30_000);
    assert_eq!(toggles(&sim), [5_000]);
    assert!(mutes(&sim).is_empty(), "{:?}", mutes(&sim));
    assert_eq!(sim.member_muted, Some(false));
}

/// When (ms) each OPTIONS to the server went out.
fn server_probes(sim: &Sim) -> Vec<u64> {
    sim.times(|a| matches!(a, A::ProbeServer))
}

/// A call bridged at 2.12 s to a server whose silence does not count (`server_silence` off).
fn bridged_call_silence_off() -> Sim {
    let mut sim = bridged_call();
    sim.call.server_silence = std::time::Duration::ZERO;
    sim
}

#[test]
fn a_server_whose_silence_does_not_count_is_asked_with_options_and_kept_while_it_answers() {
    let mut sim = bridged_call_silence_off();
    sim.at(3_000, Ev::ServerMediaStops).run_until(60_000);
    assert!(lost(&sim).is_empty(), "{:?}", lost(&sim));
    assert_eq!(sim.call.state(), FlowState::Bridged);
    let sent = server_probes(&sim);
    assert_eq!(sent.first(), Some(&7_120), "5 s after the bridge: {sent:?}");
    assert!(sent.windows(2).all(|w| w[1] - w[0] == 5_000), "{sent:?}");
}

#[test]
fn a_server_that_no_longer_answers_options_is_lost_by_sip() {
    let mut sim = bridged_call_silence_off();
    sim.server_sip_gone = true;
    sim.at(3_000, Ev::ServerMediaStops).run_until(60_000);
    // The first OPTIONS at 7.12 s gets no answer: lost when its transaction gives up.
    assert_eq!(lost(&sim), [(39_120, "sip")]);
    let before: Vec<u64> = server_probes(&sim)
        .into_iter()
        .filter(|t| *t < 39_120)
        .collect();
    assert_eq!(before, [7_120], "one OPTIONS out at a time");
    // The meeting still runs (elsewhere, say): dialled again, and asked again once bridged.
    assert_eq!(sim.call.state(), FlowState::Bridged);
    assert!(server_probes(&sim).len() > 1);
}

#[test]
fn a_bbb_server_judged_by_its_silence_gets_no_options() {
    let mut sim = bridged_call();
    sim.run_until(60_000);
    assert!(server_probes(&sim).is_empty());
}
