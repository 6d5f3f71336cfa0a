//! A caller on hold sends no RTP to judge by: the core asks its phone with OPTIONS, and a
//! failed session refresh says the same (issue 22, item 3). Simulated time: [`Sim`] answers
//! the probes through its network, or after 32 s with nothing when the phone is gone.

use super::sim::{caller_sdp, Ev, Sim};
use super::{Answered, CallAction as A, CallerEvent, InDialog, RequestId};
use crate::call::flow::{FlowState, Outcome};
use crate::sip::session_timer::{Refresher, SessionRequest, SessionTimer};
use std::time::{Duration, Instant};

/// The caller's re-INVITE putting the call on hold (`inactive`: no RTP either way).
fn hold() -> Ev {
    Ev::Caller(CallerEvent::Request(
        RequestId(900),
        InDialog::Offer {
            update: false,
            body: caller_sdp(4000, "inactive"),
        },
    ))
}

/// When (ms) each probe went out.
fn probes(sim: &Sim) -> Vec<u64> {
    sim.times(|a| matches!(a, A::ProbeCaller))
}

/// A bridged call (PIN at 1 s) that the caller holds from 10 s on, its RTP stopped with it.
fn holding() -> Sim {
    let mut sim = Sim::answered();
    sim.keys(1_000, "1234#")
        .at(10_000, hold())
        .at(10_000, Ev::MediaStops);
    sim
}

#[test]
fn a_holding_caller_whose_phone_answers_stays_and_is_asked_every_media_timeout() {
    let mut sim = holding();
    sim.run_until(600_000);
    assert!(
        sim.finished().is_none(),
        "a phone that answers keeps its call"
    );
    assert_eq!(sim.call.state(), FlowState::Bridged);
    let sent = probes(&sim);
    // media.timeout is 30 s here: the first check after the hold, then every 30 s.
    assert!(sent.len() >= 18, "{sent:?}");
    assert!(sent.windows(2).all(|w| w[1] - w[0] == 30_000), "{sent:?}");
    assert!(sent[0] > 10_000 && sent[0] <= 40_000, "{sent:?}");
}

#[test]
fn a_holding_caller_whose_phone_is_gone_is_hung_up_when_the_probe_times_out() {
    let mut sim = holding();
    sim.caller_gone = true;
    sim.run_until(600_000);
    let first = probes(&sim)[0];
    let (outcome, _, ended) = sim.finished().expect("the call ends");
    assert_eq!(outcome, Outcome::MediaTimeout);
    // The probe's transaction gives up after 32 s: the call ends then, BYE to both legs.
    assert_eq!(ended, first + 32_000);
    assert_eq!(sim.when(|a| matches!(a, A::HangUpCaller)), Some(ended));
    assert_eq!(sim.when(|a| matches!(a, A::HangUpServer)), Some(ended));
    assert_eq!(probes(&sim).len(), 1, "one probe out at a time");
}

#[test]
fn a_caller_that_sends_rtp_is_never_probed() {
    let mut sim = Sim::answered();
    sim.keys(1_000, "1234#").run_until(600_000);
    assert!(probes(&sim).is_empty());
    assert!(sim.finished().is_none());
}

fn timer(refresher: Refresher) -> SessionTimer {
    let request = SessionRequest {
        interval: Duration::from_secs(120),
        refresher: Some(refresher),
        caller_supports: true,
    };
    SessionTimer::negotiate(Some(request), Duration::from_secs(90), Instant::now())
        .expect("accepted")
        .expect("a timer")
}

/// A bridged call with a session timer, held from 10 s on.
fn holding_with_session(refresher: Refresher) -> Sim {
    let n = super::legs::negotiate_caller(&caller_sdp(4000, "sendrecv")).expect("offer");
    let mut sim = Sim::start(Answered::Offer(n), Some(timer(refresher)));
    sim.at(0, Ev::Caller(CallerEvent::Acked { body: Vec::new() }))
        .keys(1_000, "1234#")
        .at(10_000, hold())
        .at(10_000, Ev::MediaStops);
    sim
}

#[test]
fn with_a_session_timer_the_refreshes_judge_a_holding_caller_not_probes() {
    let mut sim = holding_with_session(Refresher::Us);
    sim.run_until(400_000);
    assert!(probes(&sim).is_empty());
    assert!(sim.finished().is_none(), "answered refreshes keep the call");
}

#[test]
fn a_session_refresh_the_phone_never_answers_ends_the_call() {
    let mut sim = holding_with_session(Refresher::Us);
    sim.caller_gone = true;
    sim.run_until(400_000);
    let refreshed = sim
        .when(|a| matches!(a, A::RefreshSession { .. }))
        .expect("a refresh");
    let (outcome, _, ended) = sim.finished().expect("the call ends");
    assert_eq!(outcome, Outcome::MediaTimeout);
    assert_eq!(ended, refreshed + 32_000);
    assert!(sim.when(|a| matches!(a, A::HangUpServer)).is_some());
}
