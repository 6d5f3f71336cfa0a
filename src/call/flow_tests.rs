//! Whole-call tests of [`CallFlow`] on simulated time.

use super::*;
use crate::ids::ConferenceId;
use crate::routing::{ConferenceTarget, RouteDecision};
use crate::secret::Pin;
use FlowAction as A;
use FlowInput as I;

const FIRST_MS: u64 = 5_000;
const INTER_MS: u64 = 3_000;
const SERVER_MS: u64 = 10_000;
const ECHO_MS: u64 = 60_000;
const WAIT_MS: u64 = 900_000;
const REJOIN_MS: u64 = 120_000;

fn settings() -> FlowSettings {
    FlowSettings {
        pin: PinSettings {
            min_digits: 4,
            max_digits: 8,
            first_digit_timeout: Duration::from_millis(FIRST_MS),
            inter_digit_timeout: Duration::from_millis(INTER_MS),
        },
        attempts: 3,
        server_answer_timeout: Duration::from_millis(SERVER_MS),
        echo_max: Duration::from_millis(ECHO_MS),
        max_wait: Duration::from_millis(WAIT_MS),
        mute_key: None,
        rejoin_max: Duration::from_millis(REJOIN_MS),
    }
}

fn target() -> ConferenceTarget {
    ConferenceTarget {
        conference: ConferenceId("71234".into()),
        server: "bbb1".into(),
        server_addr: "192.0.2.10:5060".parse().expect("literal address"),
    }
}

fn pin(s: &str) -> Pin {
    Pin::new(s).expect("test PINs are digits")
}

fn conference() -> FlowInput {
    I::Routed(RouteDecision::Conference(target()))
}

/// Actions, each with the ms offset at which it was emitted.
type Timed = Vec<(u64, FlowAction)>;

/// A test script: inputs at ms offsets from the start of the call, in order.
#[derive(Clone, Default)]
struct Script(Vec<(u64, FlowInput)>);

impl Script {
    /// The caller is answered at 0 and the welcome prompt ends at 2 s.
    fn greeted() -> Script {
        Script::default()
            .at(0, I::CallerAnswered)
            .at(2_000, I::PromptFinished)
    }

    fn at(mut self, ms: u64, input: FlowInput) -> Script {
        self.0.push((ms, input));
        self
    }

    /// Keys from `ms` on, 100 ms apart, as RFC 4733 events.
    fn keys(self, ms: u64, keys: &str) -> Script {
        self.keys_from(ms, keys, DigitSource::Rtp)
    }

    /// Keys from `ms` on, 100 ms apart, as SIP INFO.
    fn info_keys(self, ms: u64, keys: &str) -> Script {
        self.keys_from(ms, keys, DigitSource::Info)
    }

    fn keys_from(mut self, ms: u64, keys: &str, source: DigitSource) -> Script {
        for (i, c) in keys.chars().enumerate() {
            let digit = Digit::from_char(c).expect("test keys are keypad characters");
            self.0.push((ms + 100 * i as u64, I::Digit(digit, source)));
        }
        self
    }

    /// A correct PIN typed at 3 s, routed at 3.5 s, server answers at 4 s.
    fn bridged() -> Script {
        Script::greeted()
            .keys(3_000, "1234#")
            .at(3_500, conference())
            .at(4_000, I::ServerAnswered)
    }
}

/// What [`Script::bridged`] emits.
fn bridged_actions() -> Vec<FlowAction> {
    vec![
        A::Play(PromptId::Welcome),
        A::Resolve(pin("1234")),
        A::Play(PromptId::Connecting),
        A::DialServer(target()),
        A::StopPrompt,
        A::Bridge,
    ]
}

/// Takes every queued action, stamped with `at`.
fn drain(flow: &mut CallFlow, t0: Instant, at: Instant, out: &mut Timed) {
    while let Some(action) = flow.poll_action() {
        out.push(((at - t0).as_millis() as u64, action));
    }
}

/// Fires deadlines in order, up to `until` (or all of them), draining after each.
fn fire(flow: &mut CallFlow, t0: Instant, until: Option<Instant>, out: &mut Timed) {
    for _ in 0..100 {
        let Some(due) = flow
            .poll_timeout()
            .filter(|d| until.is_none_or(|u| *d <= u))
        else {
            return;
        };
        flow.handle_timeout(due);
        drain(flow, t0, due, out);
        assert!(
            flow.poll_timeout() != Some(due),
            "a fired deadline must move on"
        );
    }
    panic!("deadlines keep firing");
}

/// Drives a flow like str0m's `progress()`: before each input every deadline due by then fires
/// in order; after the last input the remaining deadlines fire. Checks the invariants every
/// run must keep and returns the flow and each action with its ms offset.
fn drive(settings: FlowSettings, script: &Script) -> (CallFlow, Timed) {
    let t0 = Instant::now();
    let mut flow = CallFlow::new(settings);
    let mut out = Vec::new();
    let mut last = 0;
    for (ms, input) in &script.0 {
        assert!(*ms >= last, "script times go forward at {ms} ms");
        last = *ms;
        let now = t0 + Duration::from_millis(*ms);
        fire(&mut flow, t0, Some(now), &mut out);
        flow.handle_input(now, input.clone());
        drain(&mut flow, t0, now, &mut out);
    }
    fire(&mut flow, t0, None, &mut out);

    let finished: Vec<usize> = (out.iter().enumerate())
        .filter(|(_, (_, a))| matches!(a, A::Finished(_)))
        .map(|(i, _)| i)
        .collect();
    assert!(finished.len() <= 1, "Finished more than once: {out:?}");
    if let Some(&i) = finished.first() {
        assert_eq!(i, out.len() - 1, "actions after Finished: {out:?}");
        assert_eq!(flow.state(), FlowState::Ended);
        assert_eq!(flow.poll_timeout(), None);
    }
    (flow, out)
}

/// The actions of a script, without their times.
fn run(script: &Script) -> Vec<FlowAction> {
    drive(settings(), script)
        .1
        .into_iter()
        .map(|(_, a)| a)
        .collect()
}

#[test]
// Over 80 lines: a table of cases, one row each (table-driven test).
fn whole_calls() {
    use PromptId::*;
    let cases: Vec<(&str, Script, Vec<FlowAction>, FlowState)> = vec![
        (
            "correct PIN, dial, bridge",
            Script::bridged(),
            bridged_actions(),
            FlowState::Bridged,
        ),
        (
            "PIN ended by max digits",
            Script::greeted().keys(3_000, "12345678"),
            vec![A::Play(Welcome), A::Resolve(pin("12345678"))],
            FlowState::Resolving,
        ),
        (
            "star clears",
            Script::greeted().keys(3_000, "99*1234#"),
            vec![A::Play(Welcome), A::Resolve(pin("1234"))],
            FlowState::Resolving,
        ),
        (
            "PIN typed by SIP INFO",
            Script::greeted().info_keys(3_000, "1234#"),
            vec![A::Play(Welcome), A::Resolve(pin("1234"))],
            FlowState::Resolving,
        ),
        (
            "barge-in during welcome stops the prompt once",
            Script::default()
                .at(0, I::CallerAnswered)
                .keys(500, "1234#"),
            vec![A::Play(Welcome), A::StopPrompt, A::Resolve(pin("1234"))],
            FlowState::Resolving,
        ),
        (
            "a late PromptFinished after barge-in changes nothing",
            (Script::default().at(0, I::CallerAnswered).keys(500, "12"))
                .at(700, I::PromptFinished)
                .keys(800, "34#"),
            vec![A::Play(Welcome), A::StopPrompt, A::Resolve(pin("1234"))],
            FlowState::Resolving,
        ),
        (
            "barge-in with star, then the first-digit timer runs",
            Script::default().at(0, I::CallerAnswered).keys(500, "*"),
            vec![A::Play(Welcome), A::StopPrompt, A::Play(Welcome)],
            FlowState::Greeting,
        ),
        (
            "letters do not barge in",
            Script::default().at(0, I::CallerAnswered).keys(500, "A"),
            vec![A::Play(Welcome)],
            FlowState::Greeting,
        ),
        (
            "barge-in during the invalid-PIN prompt",
            (Script::greeted().keys(3_000, "1111#"))
                .at(3_500, I::Routed(RouteDecision::Invalid))
                .keys(4_000, "1234#"),
            vec![
                A::Play(Welcome),
                A::Resolve(pin("1111")),
                A::Play(InvalidPin),
                A::StopPrompt,
                A::Resolve(pin("1234")),
            ],
            FlowState::Resolving,
        ),
        (
            "three wrong PINs, goodbye, hang up",
            (Script::greeted().keys(3_000, "1111#"))
                .at(3_500, I::Routed(RouteDecision::Invalid))
                .at(6_000, I::PromptFinished)
                .keys(7_000, "2222#")
                .at(7_500, I::Routed(RouteDecision::Invalid))
                .at(10_000, I::PromptFinished)
                .keys(11_000, "3333#")
                .at(11_500, I::Routed(RouteDecision::Invalid))
                .keys(12_000, "4444#")
                .at(13_000, I::PromptFinished),
            vec![
                A::Play(Welcome),
                A::Resolve(pin("1111")),
                A::Play(InvalidPin),
                A::Resolve(pin("2222")),
                A::Play(InvalidPin),
                A::Resolve(pin("3333")),
                A::Play(Goodbye),
                A::HangUpCaller,
                A::Finished(Outcome::InvalidPin),
            ],
            FlowState::Ended,
        ),
        (
            "too short, no input and wrong PIN all count",
            (Script::greeted().keys(3_000, "12#"))
                .at(4_000, I::PromptFinished)
                // first-digit timeout at 9 s replays the welcome
                .at(11_000, I::PromptFinished)
                .keys(12_000, "5555#")
                .at(12_600, I::Routed(RouteDecision::Invalid))
                .at(14_000, I::PromptFinished),
            vec![
                A::Play(Welcome),
                A::Play(InvalidPin),
                A::Play(Welcome),
                A::Resolve(pin("5555")),
                A::Play(Goodbye),
                A::HangUpCaller,
                A::Finished(Outcome::InvalidPin),
            ],
            FlowState::Ended,
        ),
        (
            "server fails: unavailable, hang up",
            (Script::greeted().keys(3_000, "1234#"))
                .at(3_500, conference())
                .at(4_000, I::ServerFailed)
                .at(7_000, I::PromptFinished),
            vec![
                A::Play(Welcome),
                A::Resolve(pin("1234")),
                A::Play(Connecting),
                A::DialServer(target()),
                A::Play(Unavailable),
                A::HangUpCaller,
                A::Finished(Outcome::NoConference),
            ],
            FlowState::Ended,
        ),
        (
            "connecting prompt ending keeps waiting for the server",
            (Script::greeted().keys(3_000, "1234#"))
                .at(3_500, conference())
                .at(5_000, I::PromptFinished)
                .at(6_000, I::ServerAnswered),
            bridged_actions(),
            FlowState::Bridged,
        ),
        (
            "a 200 crossing our CANCEL is hung up",
            (Script::greeted().keys(3_000, "1234#"))
                .at(3_500, conference())
                .at(13_600, I::ServerAnswered)
                .at(15_000, I::PromptFinished),
            vec![
                A::Play(Welcome),
                A::Resolve(pin("1234")),
                A::Play(Connecting),
                A::DialServer(target()),
                A::CancelServer,
                A::Play(Unavailable),
                A::HangUpServer,
                A::HangUpCaller,
                A::Finished(Outcome::NoConference),
            ],
            FlowState::Ended,
        ),
        (
            "caller hangs up during greeting",
            Script::default()
                .at(0, I::CallerAnswered)
                .at(500, I::CallerHungUp),
            vec![A::Play(Welcome), A::Finished(Outcome::CallerHangup)],
            FlowState::Ended,
        ),
        (
            "caller hangs up before being answered",
            Script::default().at(0, I::CallerHungUp),
            vec![A::Finished(Outcome::CallerHangup)],
            FlowState::Ended,
        ),
        (
            "caller hangs up during PIN entry: no timer fires later",
            Script::greeted()
                .keys(3_000, "12")
                .at(3_500, I::CallerHungUp),
            vec![A::Play(Welcome), A::Finished(Outcome::CallerHangup)],
            FlowState::Ended,
        ),
        (
            "caller hangs up while resolving: a late answer is ignored",
            (Script::greeted().keys(3_000, "1234#"))
                .at(3_450, I::CallerHungUp)
                .at(3_500, conference()),
            vec![
                A::Play(Welcome),
                A::Resolve(pin("1234")),
                A::Finished(Outcome::CallerHangup),
            ],
            FlowState::Ended,
        ),
        (
            "caller hangs up while connecting: cancel the server leg",
            (Script::greeted().keys(3_000, "1234#"))
                .at(3_500, conference())
                .at(4_000, I::CallerHungUp)
                .at(4_100, I::ServerAnswered),
            vec![
                A::Play(Welcome),
                A::Resolve(pin("1234")),
                A::Play(Connecting),
                A::DialServer(target()),
                A::CancelServer,
                A::Finished(Outcome::CallerHangup),
            ],
            FlowState::Ended,
        ),
        (
            "caller hangs up while bridged",
            Script::bridged().at(60_000, I::CallerHungUp),
            [
                bridged_actions(),
                vec![A::HangUpServer, A::Finished(Outcome::Bridged)],
            ]
            .concat(),
            FlowState::Ended,
        ),
        (
            "server hangs up while bridged",
            Script::bridged().at(60_000, I::ServerHungUp),
            [
                bridged_actions(),
                vec![A::HangUpCaller, A::Finished(Outcome::ServerHangup)],
            ]
            .concat(),
            FlowState::Ended,
        ),
        (
            "caller hangs up during goodbye keeps the reason",
            (Script::greeted().keys(3_000, "1#"))
                .at(3_200, I::PromptFinished)
                .keys(4_000, "2#")
                .at(4_200, I::PromptFinished)
                .keys(5_000, "3#")
                .at(5_500, I::CallerHungUp),
            vec![
                A::Play(Welcome),
                A::Play(InvalidPin),
                A::Play(InvalidPin),
                A::Play(Goodbye),
                A::Finished(Outcome::InvalidPin),
            ],
            FlowState::Ended,
        ),
        (
            "caller hangs up during unavailable keeps the reason",
            (Script::greeted().keys(3_000, "1234#"))
                .at(3_500, conference())
                .at(4_000, I::ServerFailed)
                .at(4_500, I::CallerHungUp),
            vec![
                A::Play(Welcome),
                A::Resolve(pin("1234")),
                A::Play(Connecting),
                A::DialServer(target()),
                A::Play(Unavailable),
                A::Finished(Outcome::NoConference),
            ],
            FlowState::Ended,
        ),
        (
            "echo test",
            (Script::greeted().keys(3_000, "0000#"))
                .at(3_500, I::Routed(RouteDecision::Echo))
                .keys(4_000, "123#")
                .at(30_000, I::CallerHungUp),
            vec![
                A::Play(Welcome),
                A::Resolve(pin("0000")),
                A::StopPrompt,
                A::StartEcho,
                A::Finished(Outcome::Echo),
            ],
            FlowState::Ended,
        ),
        (
            "digits ignored while resolving and connecting",
            (Script::greeted().keys(3_000, "1234#"))
                .keys(3_500, "5#")
                .info_keys(3_700, "6#")
                .at(4_000, conference())
                .keys(4_100, "*9#")
                .info_keys(4_500, "8#")
                .at(5_000, I::ServerAnswered),
            vec![
                A::Play(Welcome),
                A::Resolve(pin("1234")),
                A::Play(Connecting),
                A::DialServer(target()),
                A::StopPrompt,
                A::Bridge,
            ],
            FlowState::Bridged,
        ),
        (
            "digits ignored during unavailable",
            (Script::greeted().keys(3_000, "1234#"))
                .at(3_500, conference())
                .at(4_000, I::ServerFailed)
                .keys(4_100, "1#")
                .info_keys(4_300, "2#"),
            vec![
                A::Play(Welcome),
                A::Resolve(pin("1234")),
                A::Play(Connecting),
                A::DialServer(target()),
                A::Play(Unavailable),
            ],
            FlowState::Unavailable,
        ),
        (
            "digits ignored during goodbye and before answer",
            (Script::default().keys(0, "1#"))
                .at(200, I::CallerAnswered)
                .at(300, I::PromptFinished)
                .keys(400, "#")
                .at(500, I::PromptFinished)
                .keys(600, "#")
                .at(700, I::PromptFinished)
                .keys(800, "#")
                .keys(900, "1234#"),
            vec![
                A::Play(Welcome),
                A::Play(InvalidPin),
                A::Play(InvalidPin),
                A::Play(Goodbye),
            ],
            FlowState::Goodbye,
        ),
        (
            "bridged: only INFO digits are sent on",
            (Script::bridged())
                .keys(5_000, "5")
                .info_keys(5_200, "5#*A")
                .keys(6_000, "0"),
            [
                bridged_actions(),
                vec![
                    A::SendDigit(Digit::Num(5)),
                    A::SendDigit(Digit::Hash),
                    A::SendDigit(Digit::Star),
                    A::SendDigit(Digit::Letter('A')),
                ],
            ]
            .concat(),
            FlowState::Bridged,
        ),
        (
            "media timeout during PIN entry",
            Script::greeted()
                .keys(3_000, "12")
                .at(3_200, I::MediaTimeout),
            vec![
                A::Play(Welcome),
                A::HangUpCaller,
                A::Finished(Outcome::MediaTimeout),
            ],
            FlowState::Ended,
        ),
        (
            "media timeout while connecting",
            (Script::greeted().keys(3_000, "1234#"))
                .at(3_500, conference())
                .at(4_000, I::MediaTimeout),
            vec![
                A::Play(Welcome),
                A::Resolve(pin("1234")),
                A::Play(Connecting),
                A::DialServer(target()),
                A::HangUpCaller,
                A::CancelServer,
                A::Finished(Outcome::MediaTimeout),
            ],
            FlowState::Ended,
        ),
        (
            "media timeout while bridged",
            Script::bridged().at(60_000, I::MediaTimeout),
            [
                bridged_actions(),
                vec![
                    A::HangUpCaller,
                    A::HangUpServer,
                    A::Finished(Outcome::MediaTimeout),
                ],
            ]
            .concat(),
            FlowState::Ended,
        ),
        (
            "media timeout before answer is ignored",
            Script::default().at(0, I::MediaTimeout),
            vec![],
            FlowState::Answering,
        ),
        (
            "Finished exactly once: everything after it is ignored",
            (Script::bridged())
                .at(60_000, I::ServerHungUp)
                .at(60_010, I::CallerHungUp)
                .at(60_020, I::MediaTimeout)
                .at(60_030, I::ServerHungUp)
                .at(60_040, I::CallerAnswered)
                .at(60_050, I::PromptFinished)
                .info_keys(60_060, "1234#")
                .at(60_600, conference())
                .at(60_700, I::ServerAnswered)
                .at(60_800, I::ServerFailed),
            [
                bridged_actions(),
                vec![A::HangUpCaller, A::Finished(Outcome::ServerHangup)],
            ]
            .concat(),
            FlowState::Ended,
        ),
        (
            "inputs out of place are ignored",
            Script::default()
                .at(0, I::PromptFinished)
                .at(10, conference())
                .at(20, I::ServerAnswered)
                .at(30, I::ServerFailed)
                .at(40, I::ServerHungUp)
                .at(100, I::CallerAnswered)
                .at(200, I::CallerAnswered)
                .at(300, I::Routed(RouteDecision::Echo))
                .at(400, I::ServerAnswered)
                .at(500, I::ServerHungUp)
                .at(2_000, I::PromptFinished)
                .at(2_100, I::PromptFinished)
                .at(2_200, I::ServerFailed)
                .keys(3_000, "1234#")
                .at(3_500, I::ServerAnswered)
                .at(3_600, I::PromptFinished),
            vec![A::Play(Welcome), A::Resolve(pin("1234"))],
            FlowState::Resolving,
        ),
    ];
    for (name, script, want, state) in cases {
        let (flow, got) = drive(settings(), &script);
        let got: Vec<FlowAction> = got.into_iter().map(|(_, a)| a).collect();
        assert_eq!(got, want, "{name}");
        assert_eq!(flow.state(), state, "{name}");
    }
}

#[test]
// Over 80 lines: a table of cases, one row each (table-driven test).
fn timeouts_fire_on_time() {
    use PromptId::*;
    let cases: Vec<(&str, Script, Timed)> = vec![
        (
            "first-digit timeout replays the welcome",
            Script::greeted(),
            vec![(0, A::Play(Welcome)), (2_000 + FIRST_MS, A::Play(Welcome))],
        ),
        (
            "inter-digit timeout with enough digits resolves",
            Script::greeted().keys(3_000, "12345"),
            vec![
                (0, A::Play(Welcome)),
                (3_400 + INTER_MS, A::Resolve(pin("12345"))),
            ],
        ),
        (
            "inter-digit timeout with too few digits is a failed try",
            Script::greeted().keys(3_000, "12"),
            vec![
                (0, A::Play(Welcome)),
                (3_100 + INTER_MS, A::Play(InvalidPin)),
            ],
        ),
        (
            "after barge-in the timers run without PromptFinished",
            Script::default().at(0, I::CallerAnswered).keys(500, "1"),
            vec![
                (0, A::Play(Welcome)),
                (500, A::StopPrompt),
                (500 + INTER_MS, A::Play(InvalidPin)),
            ],
        ),
        (
            "no input three times: goodbye",
            Script::greeted()
                .at(10_000, I::PromptFinished)
                .at(20_000, I::PromptFinished)
                .at(30_000, I::PromptFinished),
            vec![
                (0, A::Play(Welcome)),
                (7_000, A::Play(Welcome)),
                (15_000, A::Play(Welcome)),
                (25_000, A::Play(Goodbye)),
                (30_000, A::HangUpCaller),
                (30_000, A::Finished(Outcome::InvalidPin)),
            ],
        ),
        (
            "server answer timeout: cancel, unavailable, hang up",
            (Script::greeted().keys(3_000, "1234#"))
                .at(3_500, conference())
                .at(16_000, I::PromptFinished),
            vec![
                (0, A::Play(Welcome)),
                (3_400, A::Resolve(pin("1234"))),
                (3_500, A::Play(Connecting)),
                (3_500, A::DialServer(target())),
                (3_500 + SERVER_MS, A::CancelServer),
                (3_500 + SERVER_MS, A::Play(Unavailable)),
                (16_000, A::HangUpCaller),
                (16_000, A::Finished(Outcome::NoConference)),
            ],
        ),
        (
            "server answering just in time bridges",
            (Script::greeted().keys(3_000, "1234#"))
                .at(3_500, conference())
                .at(3_500 + SERVER_MS - 1, I::ServerAnswered),
            vec![
                (0, A::Play(Welcome)),
                (3_400, A::Resolve(pin("1234"))),
                (3_500, A::Play(Connecting)),
                (3_500, A::DialServer(target())),
                (3_500 + SERVER_MS - 1, A::StopPrompt),
                (3_500 + SERVER_MS - 1, A::Bridge),
            ],
        ),
    ];
    for (name, script, want) in cases {
        assert_eq!(drive(settings(), &script).1, want, "{name}");
    }
}

#[test]
fn deadline_only_while_waiting() {
    let t0 = Instant::now();
    let at = |ms: u64| t0 + Duration::from_millis(ms);
    let mut flow = CallFlow::new(settings());
    assert_eq!(flow.poll_timeout(), None);
    flow.handle_input(at(0), I::CallerAnswered);
    assert_eq!(flow.poll_action(), Some(A::Play(PromptId::Welcome)));
    assert_eq!(flow.poll_timeout(), None, "prompts end by the driver");
    flow.handle_input(at(2_000), I::PromptFinished);
    assert_eq!(flow.poll_timeout(), Some(at(2_000 + FIRST_MS)));
    flow.handle_timeout(at(2_001));
    assert_eq!(flow.poll_action(), None, "early timeout does nothing");
    for (i, c) in "1234#".chars().enumerate() {
        let d = Digit::from_char(c).expect("keypad character");
        flow.handle_input(at(3_000 + i as u64), I::Digit(d, DigitSource::Rtp));
    }
    assert_eq!(flow.poll_timeout(), None, "resolving waits for routing");
    flow.handle_input(at(3_500), conference());
    assert_eq!(flow.poll_timeout(), Some(at(3_500 + SERVER_MS)));
    flow.handle_input(at(4_000), I::ServerAnswered);
    assert_eq!(flow.poll_timeout(), None);
    assert_eq!(flow.state(), FlowState::Bridged);
}

#[test]
fn attempts_zero_acts_as_one() {
    let s = FlowSettings {
        attempts: 0,
        ..settings()
    };
    let (_, got) = drive(s, &Script::greeted().keys(3_000, "#"));
    let got: Vec<FlowAction> = got.into_iter().map(|(_, a)| a).collect();
    assert_eq!(
        got,
        vec![A::Play(PromptId::Welcome), A::Play(PromptId::Goodbye)]
    );
}

#[test]
fn nothing_prints_the_pin() {
    let t0 = Instant::now();
    let mut flow = CallFlow::new(settings());
    flow.handle_input(t0, I::CallerAnswered);
    for n in [8, 6, 7, 5] {
        flow.handle_input(t0, I::Digit(Digit::Num(n), DigitSource::Info));
    }
    let shown = format!("{flow:?}");
    assert!(!shown.contains("8675"), "{shown}");
    flow.handle_input(t0, I::Digit(Digit::Hash, DigitSource::Info));
    let actions: Vec<FlowAction> = std::iter::from_fn(|| flow.poll_action()).collect();
    assert!(actions.contains(&A::Resolve(pin("8675"))));
    let shown = format!("{actions:?} {flow:?} {:?}", flow.state());
    assert!(!shown.contains("8675"), "{shown}");
    assert!(!format!("{:?}", A::DialServer(target())).contains("71234"));
}

#[test]
fn every_way_of_ending_entry_resolves() {
    let cases: Vec<(&str, Script, &str)> = vec![
        ("hash", Script::greeted().keys(3_000, "1234#"), "1234"),
        (
            "max digits",
            Script::greeted().keys(3_000, "87654321"),
            "87654321",
        ),
        ("pause", Script::greeted().keys(3_000, "123456"), "123456"),
        (
            "hash before prompt end",
            Script::default().at(0, I::CallerAnswered).keys(10, "4321#"),
            "4321",
        ),
        (
            "INFO and RTP mixed",
            Script::greeted().keys(3_000, "12").info_keys(3_200, "34#"),
            "1234",
        ),
    ];
    for (name, script, want) in cases {
        let got = run(&script);
        assert_eq!(got.last(), Some(&A::Resolve(pin(want))), "{name}: {got:?}");
    }
}

#[test]
fn the_echo_test_ends_after_echo_max() {
    let script = (Script::greeted().keys(3_000, "0000#")).at(3_500, I::Routed(RouteDecision::Echo));
    let (_, got) = drive(settings(), &script);
    let tail: Vec<(u64, FlowAction)> = got.into_iter().rev().take(2).rev().collect();
    assert_eq!(
        tail,
        vec![
            (3_500 + ECHO_MS, A::HangUpCaller),
            (3_500 + ECHO_MS, A::Finished(Outcome::Echo)),
        ]
    );
}

#[test]
fn a_blocked_caller_hears_goodbye_at_once_and_nothing_else() {
    use PromptId::*;
    let cases: [(&str, Script, Vec<FlowAction>); 4] = [
        (
            "goodbye plays to its end",
            Script::default()
                .at(0, I::Blocked)
                .at(0, I::CallerAnswered)
                .keys(100, "71234#")
                .at(2_000, I::PromptFinished),
            vec![
                A::Play(Goodbye),
                A::HangUpCaller,
                A::Finished(Outcome::Blocked),
            ],
        ),
        (
            "the caller hangs up during goodbye",
            Script::default()
                .at(0, I::Blocked)
                .at(0, I::CallerAnswered)
                .at(500, I::CallerHungUp),
            vec![A::Play(Goodbye), A::Finished(Outcome::Blocked)],
        ),
        (
            "blocking after the greeting started changes nothing",
            Script::greeted().at(2_100, I::Blocked).keys(2_200, "7123#"),
            vec![A::Play(Welcome), A::Resolve(pin("7123"))],
        ),
        (
            "a blocked caller who hangs up before the answer",
            Script::default().at(0, I::Blocked).at(10, I::CallerHungUp),
            vec![A::Finished(Outcome::CallerHangup)],
        ),
    ];
    for (name, script, want) in cases {
        assert_eq!(run(&script), want, "{name}");
    }
}

#[test]
// Over 80 lines: a table of cases, one row per state (table-driven test).
fn shutdown_ends_every_state_with_the_right_goodbye() {
    use PromptId::*;
    let shut = |s: Script, ms| s.at(ms, I::Shutdown);
    let cases: Vec<(&str, Script, Vec<FlowAction>)> = vec![
        (
            "before the ACK",
            shut(Script::default(), 0),
            vec![A::HangUpCaller, A::Finished(Outcome::Shutdown)],
        ),
        (
            "greeting: goodbye prompt, then hang up",
            shut(Script::default().at(0, I::CallerAnswered), 500).at(2_000, I::PromptFinished),
            vec![
                A::Play(Welcome),
                A::Play(Unavailable),
                A::HangUpCaller,
                A::Finished(Outcome::Shutdown),
            ],
        ),
        (
            "half a PIN typed: the collector stops, no PIN timeout fires",
            shut(Script::greeted().keys(3_000, "12"), 3_500),
            vec![A::Play(Welcome), A::Play(Unavailable)],
        ),
        (
            "connecting: cancel the server leg, goodbye",
            shut(
                Script::greeted()
                    .keys(3_000, "1234#")
                    .at(3_500, conference()),
                3_600,
            )
            .at(3_700, I::ServerAnswered)
            .at(5_000, I::PromptFinished),
            vec![
                A::Play(Welcome),
                A::Resolve(pin("1234")),
                A::Play(Connecting),
                A::DialServer(target()),
                A::CancelServer,
                A::Play(Unavailable),
                A::HangUpServer,
                A::HangUpCaller,
                A::Finished(Outcome::Shutdown),
            ],
        ),
        (
            "bridged: both legs hung up at once",
            shut(Script::bridged(), 9_000),
            [
                bridged_actions(),
                vec![
                    A::HangUpCaller,
                    A::HangUpServer,
                    A::Finished(Outcome::Shutdown),
                ],
            ]
            .concat(),
        ),
        (
            "waiting for the meeting to start: goodbye",
            shut(
                Script::greeted().keys(3_000, "1234#").at(
                    3_500,
                    I::Routed(RouteDecision::Waiting(
                        crate::routing::WaitingFor::Conference {
                            conference: ConferenceId("71234".into()),
                            server: None,
                        },
                    )),
                ),
                5_000,
            )
            .at(8_000, I::PromptFinished),
            vec![
                A::Play(Welcome),
                A::Resolve(pin("1234")),
                A::AwaitConference,
                A::Play(NotStarted),
                A::Play(Unavailable),
                A::HangUpCaller,
                A::Finished(Outcome::Shutdown),
            ],
        ),
        (
            "caller hangs up during the goodbye",
            shut(Script::greeted(), 2_500).at(2_600, I::CallerHungUp),
            vec![
                A::Play(Welcome),
                A::Play(Unavailable),
                A::Finished(Outcome::Shutdown),
            ],
        ),
        (
            "already saying goodbye for a bad PIN: outcome kept",
            shut(
                Script::greeted()
                    .keys(3_000, "1#")
                    .at(3_100, I::PromptFinished)
                    .keys(3_200, "1#")
                    .at(3_300, I::PromptFinished)
                    .keys(3_400, "1#"),
                3_500,
            )
            .at(4_000, I::PromptFinished),
            vec![
                A::Play(Welcome),
                A::Play(InvalidPin),
                A::Play(InvalidPin),
                A::Play(Goodbye),
                A::HangUpCaller,
                A::Finished(Outcome::InvalidPin),
            ],
        ),
    ];
    for (name, script, want) in cases {
        assert_eq!(run(&script), want, "{name}");
    }
}

#[test]
// Over 80 lines: a table of cases, one row each (table-driven test).
fn waiting_room_and_unavailable() {
    use PromptId::*;
    let typed = || Script::greeted().keys(3_000, "1234#");
    let waiting = || {
        I::Routed(RouteDecision::Waiting(
            crate::routing::WaitingFor::Conference {
                conference: ConferenceId("71234".into()),
                server: None,
            },
        ))
    };
    let cases: Vec<(&str, Script, Timed, FlowState)> = vec![
        (
            "unavailable: the prompt, then hang up",
            typed()
                .at(3_500, I::Routed(RouteDecision::Unavailable))
                .at(6_000, I::PromptFinished),
            vec![
                (0, A::Play(Welcome)),
                (3_400, A::Resolve(pin("1234"))),
                (3_500, A::Play(Unavailable)),
                (6_000, A::HangUpCaller),
                (6_000, A::Finished(Outcome::NoConference)),
            ],
            FlowState::Ended,
        ),
        (
            "waits, holds in a loop, joins when the conference runs",
            typed()
                .at(3_500, waiting())
                .at(7_000, I::PromptFinished)
                .at(15_000, I::PromptFinished)
                // Still not running (e.g. a directory blip): keep holding.
                .at(16_000, waiting())
                .at(16_000, I::Routed(RouteDecision::Unavailable))
                .at(20_000, conference())
                .at(20_500, I::ServerAnswered),
            vec![
                (0, A::Play(Welcome)),
                (3_400, A::Resolve(pin("1234"))),
                (3_500, A::AwaitConference),
                (3_500, A::Play(NotStarted)),
                (7_000, A::Play(Hold)),
                (15_000, A::Play(Hold)),
                (20_000, A::StopPrompt),
                (20_000, A::Play(Connecting)),
                (20_000, A::DialServer(target())),
                (20_500, A::StopPrompt),
                (20_500, A::Bridge),
            ],
            FlowState::Bridged,
        ),
        (
            "waited too long: unavailable prompt, hang up",
            typed()
                .at(3_500, waiting())
                .at(3_500 + WAIT_MS + 4_000, I::PromptFinished),
            vec![
                (0, A::Play(Welcome)),
                (3_400, A::Resolve(pin("1234"))),
                (3_500, A::AwaitConference),
                (3_500, A::Play(NotStarted)),
                (3_500 + WAIT_MS, A::Play(Unavailable)),
                (3_500 + WAIT_MS + 4_000, A::HangUpCaller),
                (3_500 + WAIT_MS + 4_000, A::Finished(Outcome::NoConference)),
            ],
            FlowState::Ended,
        ),
        (
            "caller hangs up while waiting",
            typed().at(3_500, waiting()).at(9_000, I::CallerHungUp),
            vec![
                (0, A::Play(Welcome)),
                (3_400, A::Resolve(pin("1234"))),
                (3_500, A::AwaitConference),
                (3_500, A::Play(NotStarted)),
                (9_000, A::Finished(Outcome::CallerHangup)),
            ],
            FlowState::Ended,
        ),
    ];
    for (name, script, want, state) in cases {
        let (flow, got) = drive(settings(), &script);
        assert_eq!(got, want, "{name}");
        assert_eq!(flow.state(), state, "{name}");
    }
}

#[test]
fn mute_key_while_bridged() {
    let mut s = settings();
    s.mute_key = Some(Digit::Num(0));
    let (_, out) = drive(
        s,
        &Script::bridged().keys(6_000, "0").info_keys(7_000, "05"),
    );
    let actions: Vec<_> = out.into_iter().map(|(_, a)| a).collect();
    assert_eq!(
        actions[bridged_actions().len()..],
        [
            A::ToggleMute(Digit::Num(0)),
            A::ToggleMute(Digit::Num(0)),
            A::SendDigit(Digit::Num(5)),
        ]
    );
    // Without a mute key: RTP keys are relayed with the audio, INFO keys are sent.
    let (_, out) = drive(
        settings(),
        &Script::bridged().keys(6_000, "0").info_keys(7_000, "0"),
    );
    let tail: Vec<_> = out
        .into_iter()
        .map(|(_, a)| a)
        .skip(bridged_actions().len())
        .collect();
    assert_eq!(tail, [A::SendDigit(Digit::Num(0))]);
}

#[test]
fn every_outcome_and_state_has_a_metrics_label() {
    use crate::ops::metrics::{OUTCOMES, STATES};
    for o in [
        Outcome::Bridged,
        Outcome::Echo,
        Outcome::InvalidPin,
        Outcome::NoConference,
        Outcome::CallerHangup,
        Outcome::ServerHangup,
        Outcome::MediaTimeout,
        Outcome::Shutdown,
        Outcome::Blocked,
        Outcome::RejectedCodec,
        Outcome::ServerLost,
    ] {
        assert!(OUTCOMES.contains(&o.label()), "{o:?}");
    }
    for s in [
        FlowState::Answering,
        FlowState::Greeting,
        FlowState::CollectingPin,
        FlowState::InvalidPin,
        FlowState::Resolving,
        FlowState::ConnectingServer,
        FlowState::Bridged,
        FlowState::Echo,
        FlowState::Unavailable,
        FlowState::Goodbye,
        FlowState::Closing,
        FlowState::Waiting,
        FlowState::Rejoining,
        FlowState::Ended,
    ] {
        assert!(STATES.contains(&s.label()), "{s:?}");
    }
}
