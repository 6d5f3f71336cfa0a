//! A whole call on simulated time, in process: a scripted caller and a scripted BBB server
//! talk to one [`Call`] through a small network model (delay, jitter that reorders, loss),
//! and time jumps to the next thing that happens (a delivery, a scripted event, a prompt
//! ending, the core's deadline), as str0m's and quinn-proto's tests do. A call of minutes
//! runs in microseconds and the same script always gives the same result.
//!
//! The harness stands in for the driver: it carries out the core's actions the way the real
//! driver does (prompts end after their length, routing answers from a table, the server
//! answers an INVITE after a delay), and keeps every action with its time for the test.

use super::{
    Answered, Call, CallAction, CallSetup, CallerEvent, InDialog, LocalSdp, MediaEvent,
    MeetingAnswer, RxTimes, ServerEvent,
};
use crate::call::flow::FlowSettings;
use crate::call::pin::PinSettings;
use crate::call::PromptId;
use crate::ids::ConferenceId;
use crate::privacy::CallerKey;
use crate::routing::{ConferenceTarget, Lookup, RouteDecision, WaitingFor};
use crate::sip::session_timer::SessionTimer;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

/// The caller's SDP offer (or answer), PCMU with telephone-event, in `direction`.
pub fn caller_sdp(port: u16, direction: &str) -> Vec<u8> {
    sdp("127.0.0.2", port, direction)
}

/// The server's SDP answer, PCMU with telephone-event.
pub fn server_sdp(port: u16) -> Vec<u8> {
    sdp("127.0.0.3", port, "sendrecv")
}

fn sdp(ip: &str, port: u16, direction: &str) -> Vec<u8> {
    format!(
        "v=0\r\no=- 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n\
         m=audio {port} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n\
         a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na={direction}\r\n"
    )
    .into_bytes()
}

/// The flow's knobs for simulated calls: 4–8 digit PINs, 5 s / 3 s digit timers, three
/// tries, 10 s for the server to answer, a minute of echo and of waiting.
pub fn flow_settings() -> FlowSettings {
    FlowSettings {
        pin: PinSettings {
            min_digits: 4,
            max_digits: 8,
            first_digit_timeout: Duration::from_secs(5),
            inter_digit_timeout: Duration::from_secs(3),
        },
        attempts: 3,
        server_answer_timeout: Duration::from_secs(10),
        echo_max: Duration::from_secs(60),
        max_wait: Duration::from_secs(60),
        mute_key: None,
        rejoin_max: Duration::from_secs(120),
    }
}

/// The conference every routed PIN leads to.
pub fn target() -> ConferenceTarget {
    ConferenceTarget {
        conference: ConferenceId("71234".into()),
        server: "bbb1".into(),
        server_addr: "127.0.0.3:5060".parse().expect("an address"),
    }
}

/// A message on its way to the core.
#[derive(Clone, Debug)]
pub enum Msg {
    /// From the caller's side.
    Caller(CallerEvent),
    /// From the server's side.
    Server(ServerEvent),
}

/// How the scripted server answers our INVITE.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerPlan {
    /// 200 with SDP after this long.
    Answer(Duration),
    /// A final error after this long.
    Refuse(Duration),
    /// Never answers.
    Silent,
}

/// Something the script makes happen at a time (as seen by the caller or the world).
#[derive(Clone, Debug)]
pub enum Ev {
    /// The caller sends this over the network.
    Caller(CallerEvent),
    /// The server sends this over the network.
    Server(ServerEvent),
    /// The caller's key, as RFC 4733 in its RTP (not through the SIP network).
    Key(char),
    /// The caller's RTP stops (a dead line).
    MediaStops,
    /// The server's RTP stops (its FreeSWITCH is gone, or the network to it).
    ServerMediaStops,
    /// The server's RTP port answers ICMP port unreachable.
    ServerUnreachable,
    /// The server's Event Socket says it is gone.
    ServerDown,
    /// The meeting's conference starts (the live directory sees it).
    ConferenceStarts,
    /// The meeting's conference is gone (its server crashed).
    ConferenceStops,
    /// The drain deadline.
    Shutdown,
    /// The answer to an in-dialog request we sent the caller (or its absence): straight to
    /// the core, the network's part already in its time.
    Reached(bool),
    /// The same for the server's leg.
    ServerReached(bool),
    /// A moderator mutes (`true`) or unmutes our member (where the Event Socket tells).
    Moderator(bool),
}

/// The network between the peers and the core: every message takes `delay` plus up to
/// `jitter` (so later messages can overtake earlier ones), and `lose` says which to drop.
pub struct Net {
    /// The fixed part of every message's delay.
    pub delay: Duration,
    /// Up to this much more, per message, from a fixed pseudo-random sequence.
    pub jitter: Duration,
    /// Drops a message when it returns true.
    pub lose: Box<dyn FnMut(&Msg) -> bool>,
    /// In flight: when each message arrives, in sending order.
    queue: Vec<(Instant, Msg)>,
    /// The pseudo-random state (xorshift): the same script gives the same run.
    seed: u64,
}

impl Net {
    fn send(&mut self, now: Instant, msg: Msg) {
        if (self.lose)(&msg) {
            return;
        }
        self.seed ^= self.seed << 13;
        self.seed ^= self.seed >> 7;
        self.seed ^= self.seed << 17;
        let extra = self.jitter.mul_f64((self.seed % 1000) as f64 / 1000.0);
        self.queue.push((now + self.delay + extra, msg));
    }

    fn next(&self) -> Option<Instant> {
        self.queue.iter().map(|(t, _)| *t).min()
    }

    fn take_due(&mut self, now: Instant) -> Option<Msg> {
        let i = self
            .queue
            .iter()
            .enumerate()
            .filter(|(_, (t, _))| *t <= now)
            .min_by_key(|(_, (t, _))| *t)
            .map(|(i, _)| i)?;
        Some(self.queue.remove(i).1)
    }
}

/// One simulated call.
pub struct Sim {
    /// Time zero of the run.
    pub t0: Instant,
    /// Simulated now.
    pub now: Instant,
    /// The core under test.
    pub call: Call,
    /// The network both peers talk through.
    pub net: Net,
    /// Every action the core asked for, with its time since `t0`.
    pub actions: Vec<(Duration, CallAction)>,
    /// Scripted events not yet due, in time order.
    script: Vec<(Instant, Ev)>,
    /// How long each prompt plays.
    pub prompt_len: Duration,
    /// When the playing prompt ends.
    prompt_end: Option<Instant>,
    /// Where PINs lead.
    pub routes: HashMap<String, Lookup>,
    /// Guessing protection's delay for every PIN answer.
    pub guess_delay: Duration,
    /// How the server answers.
    pub server_plan: ServerPlan,
    /// Whether the caller's RTP flows, and since when it stopped.
    media: Option<Option<Instant>>,
    /// Whether the bridged server's RTP flows, and since when it stopped.
    server_media: Option<Option<Instant>>,
    /// The caller's number in the conference the next numbering gives.
    next_seq: u64,
    /// Whether the conference runs (the directory and the API see it).
    pub conference_running: bool,
    /// Whether the core watches the directory.
    watching: bool,
    /// Meeting lookups in flight: when each answers.
    lookups: Vec<Instant>,
    /// Whether the caller's phone is gone: its in-dialog requests (OPTIONS, refreshes) get
    /// no answer, which the driver reports after the transaction's 32 s.
    pub caller_gone: bool,
    /// Our member's mute in the conference, as the Event Socket tells the directory (`None`:
    /// not known, as without one). The mute key and `SetMute` change it, a new member starts
    /// unmuted, and the driver hands it to the core before a caller's re-INVITE and when the
    /// leg is lost.
    pub member_muted: Option<bool>,
    /// Whether the bridged server's SIP is gone: its in-dialog OPTIONS get no answer.
    pub server_sip_gone: bool,
}

impl Sim {
    /// A call answered with `answered`, the rest of the setup from `setup`.
    pub fn start(answered: Answered, session: Option<SessionTimer>) -> Sim {
        Sim::start_with(answered, session, flow_settings(), false)
    }

    /// As [`Sim::start`], with the flow's knobs and a blocked caller.
    pub fn start_with(
        answered: Answered,
        session: Option<SessionTimer>,
        flow: FlowSettings,
        blocked: bool,
    ) -> Sim {
        let t0 = Instant::now();
        let setup = CallSetup {
            call_no: 1,
            caller_key: CallerKey::Withheld,
            flow,
            media_timeout: Duration::from_secs(30),
            server_silence: super::SERVER_SILENCE,
            server_probe: super::SERVER_PROBE,
            local: LocalSdp {
                advertise: IpAddr::V4(Ipv4Addr::LOCALHOST),
                caller_port: 30000,
                session_id: 7,
            },
            answered,
            srtp: None,
            session,
            blocked,
            invite_at: t0,
        };
        let mut routes = HashMap::new();
        routes.insert(
            "1234".to_string(),
            Lookup::Ready(RouteDecision::Conference(target())),
        );
        let mut sim = Sim {
            t0,
            now: t0,
            call: Call::new(t0, setup),
            net: Net {
                delay: Duration::from_millis(20),
                jitter: Duration::ZERO,
                lose: Box::new(|_| false),
                queue: Vec::new(),
                seed: 0x9e37_79b9_7f4a_7c15,
            },
            actions: Vec::new(),
            script: Vec::new(),
            prompt_len: Duration::from_secs(2),
            prompt_end: None,
            routes,
            guess_delay: Duration::ZERO,
            server_plan: ServerPlan::Answer(Duration::from_millis(300)),
            media: None,
            server_media: None,
            next_seq: 1,
            conference_running: false,
            watching: false,
            lookups: Vec::new(),
            caller_gone: false,
            member_muted: None,
            server_sip_gone: false,
        };
        sim.take_actions();
        sim
    }

    /// A call answered 200 to an ordinary offer, whose caller ACKs at once.
    pub fn answered() -> Sim {
        let n = super::legs::negotiate_caller(&caller_sdp(4000, "sendrecv")).expect("an offer");
        let mut sim = Sim::start(Answered::Offer(n), None);
        sim.at(0, Ev::Caller(CallerEvent::Acked { body: Vec::new() }));
        sim
    }

    /// Schedules `ev` at `ms` milliseconds after `t0`.
    pub fn at(&mut self, ms: u64, ev: Ev) -> &mut Sim {
        let at = self.t0 + Duration::from_millis(ms);
        let i = self.script.partition_point(|(t, _)| *t <= at);
        self.script.insert(i, (at, ev));
        self
    }

    /// The caller types `keys` as RFC 4733, one every 200 ms from `ms`.
    pub fn keys(&mut self, ms: u64, keys: &str) -> &mut Sim {
        for (i, c) in keys.chars().enumerate() {
            self.at(ms + 200 * i as u64, Ev::Key(c));
        }
        self
    }

    /// Runs until `ms` after `t0` or until the call is finished.
    pub fn run_until(&mut self, ms: u64) -> &mut Sim {
        let end = self.t0 + Duration::from_millis(ms);
        while !self.call.is_finished() {
            let next = [
                self.net.next(),
                self.script.first().map(|(t, _)| *t),
                self.prompt_end,
                self.call.poll_timeout(),
                self.lookups.iter().min().copied(),
            ]
            .into_iter()
            .flatten()
            .min();
            let Some(next) = next.filter(|t| *t <= end) else {
                break;
            };
            self.now = self.now.max(next);
            self.step();
        }
        self.now = self.now.max(end);
        self
    }

    /// Delivers everything due now, one input at a time, carrying out actions after each.
    fn step(&mut self) {
        let now = self.now;
        if self.script.first().is_some_and(|(t, _)| *t <= now) {
            let (_, ev) = self.script.remove(0);
            self.happen(ev);
        } else if let Some(msg) = self.net.take_due(now) {
            match msg {
                Msg::Caller(ev) => {
                    if let (CallerEvent::Request(_, InDialog::Offer { .. }), Some(muted)) =
                        (&ev, self.member_muted)
                    {
                        self.call.handle_member_muted(muted);
                    }
                    self.call.handle_caller(now, ev)
                }
                Msg::Server(ev) => self.call.handle_server(now, ev),
            }
        } else if self.prompt_end.is_some_and(|t| t <= now) {
            self.prompt_end = None;
            self.call.handle_media(now, MediaEvent::PromptFinished);
        } else if let Some(i) = self.lookups.iter().position(|t| *t <= now) {
            self.lookups.remove(i);
            let answer = if self.conference_running {
                MeetingAnswer::Running(RouteDecision::Conference(target()))
            } else {
                MeetingAnswer::NotRunning
            };
            self.call.handle_meeting_answer(now, answer);
        } else {
            let rx = self.media.map(|stopped| RxTimes {
                caller: stopped.unwrap_or(now),
                server: self.server_media.flatten().unwrap_or(now),
            });
            self.call.handle_timeout(now, rx);
        }
        self.take_actions();
    }

    fn happen(&mut self, ev: Ev) {
        let now = self.now;
        match ev {
            Ev::Caller(e) => self.net.send(now, Msg::Caller(e)),
            Ev::Server(e) => self.net.send(now, Msg::Server(e)),
            Ev::Key(c) => {
                let d = crate::digit::Digit::from_char(c).expect("a key");
                self.call.handle_media(now, MediaEvent::Digit(d));
            }
            Ev::MediaStops => {
                if let Some(m) = self.media.as_mut() {
                    *m = Some(now);
                }
            }
            Ev::ServerMediaStops => {
                if let Some(m) = self.server_media.as_mut() {
                    *m = Some(now);
                }
            }
            Ev::ServerUnreachable => self.call.handle_media(now, MediaEvent::ServerUnreachable),
            Ev::ServerDown => self.call.handle_server_down(now),
            Ev::ConferenceStarts | Ev::ConferenceStops => {
                self.conference_running = matches!(ev, Ev::ConferenceStarts);
                if self.watching {
                    self.call.handle_directory_changed(now);
                }
            }
            Ev::Shutdown => self.call.handle_shutdown(now),
            Ev::ServerReached(alive) => {
                self.call.handle_server(now, ServerEvent::Reached { alive })
            }
            Ev::Reached(alive) => self.call.handle_caller(now, CallerEvent::Reached { alive }),
            Ev::Moderator(muted) => {
                if self.member_muted.is_some() {
                    self.member_muted = Some(muted);
                }
            }
        }
    }

    /// Carries out the core's actions as the driver would, answering what needs an answer.
    fn take_actions(&mut self) {
        let now = self.now;
        while let Some(action) = self.call.poll_action() {
            match &action {
                CallAction::StartMedia(_) => self.media = Some(None),
                CallAction::Play(_) => self.prompt_end = Some(now + self.prompt_len),
                CallAction::StopPrompt => self.prompt_end = None,
                CallAction::Resolve(pin) => {
                    let lookup = self
                        .routes
                        .get(pin.expose())
                        .cloned()
                        .unwrap_or(Lookup::Ready(RouteDecision::Invalid));
                    let delay = self.guess_delay;
                    self.call.handle_lookup(now, lookup, delay);
                }
                CallAction::LookupMeeting(_) => self.lookups.push(now + Duration::from_millis(50)),
                CallAction::WatchDirectory => self.watching = true,
                CallAction::UnwatchDirectory => self.watching = false,
                CallAction::Recheck(w) => {
                    let decision = if self.conference_running {
                        RouteDecision::Conference(target())
                    } else {
                        RouteDecision::Waiting(w.clone())
                    };
                    self.call.handle_recheck(now, decision);
                }
                CallAction::NumberCaller(t) => {
                    let seq = self.next_seq;
                    self.next_seq += 1;
                    self.call.handle_numbered(now, t.clone(), seq, true);
                }
                CallAction::ProbeCaller | CallAction::RefreshSession { .. } => {
                    self.answer_in_dialog(!self.caller_gone, Ev::Reached)
                }
                CallAction::ProbeServer => {
                    self.answer_in_dialog(!self.server_sip_gone, Ev::ServerReached)
                }
                CallAction::Bridge { .. } => {
                    self.server_media = Some(None);
                    self.member_muted = self.member_muted.map(|_| false);
                }
                CallAction::SetMute(muted) => {
                    self.member_muted = self.member_muted.map(|_| *muted);
                }
                CallAction::ToggleMute(_) => self.member_muted = self.member_muted.map(|m| !m),
                CallAction::Unbridge => {
                    self.server_media = None;
                    if let Some(muted) = self.member_muted {
                        self.call.handle_member_muted(muted);
                    }
                }
                CallAction::DialServer { .. } => {
                    self.call
                        .handle_server(now, ServerEvent::Dialled { port: 40000 });
                    match self.server_plan {
                        ServerPlan::Answer(after) => self.server_later(after, true),
                        ServerPlan::Refuse(after) => self.server_later(after, false),
                        ServerPlan::Silent => {}
                    }
                }
                CallAction::HangUpCaller | CallAction::RejectCaller => {
                    if let Some(m) = self.media.as_mut() {
                        m.get_or_insert(now);
                    }
                }
                _ => {}
            }
            self.actions.push((now - self.t0, action));
        }
    }

    /// The answer to an in-dialog request we sent a peer: there and back through the network
    /// when the peer is `there`, else the transaction's timeout (32 s) with no answer.
    fn answer_in_dialog(&mut self, there: bool, answer: fn(bool) -> Ev) {
        let after = match there {
            true => self.net.delay * 2,
            false => Duration::from_secs(32),
        };
        let ms = (self.now - self.t0 + after).as_millis() as u64;
        self.at(ms, answer(there));
    }

    /// The server's final response to our INVITE, `after` from now (through the network).
    fn server_later(&mut self, after: Duration, answer: bool) {
        let ev = if answer {
            ServerEvent::Answered {
                body: server_sdp(5000),
            }
        } else {
            ServerEvent::Refused
        };
        let ms = (self.now - self.t0 + after).as_millis() as u64;
        self.at(ms, Ev::Server(ev));
    }

    /// When (ms after `t0`) the first action matching `f` was taken.
    pub fn when(&self, f: impl Fn(&CallAction) -> bool) -> Option<u64> {
        self.actions
            .iter()
            .find(|(_, a)| f(a))
            .map(|(t, _)| t.as_millis() as u64)
    }

    /// When (ms after `t0`) each action matching `f` was taken.
    pub fn times(&self, f: impl Fn(&CallAction) -> bool) -> Vec<u64> {
        self.actions
            .iter()
            .filter(|(_, a)| f(a))
            .map(|(t, _)| t.as_millis() as u64)
            .collect()
    }

    /// How many actions matching `f` were taken.
    pub fn count(&self, f: impl Fn(&CallAction) -> bool) -> usize {
        self.actions.iter().filter(|(_, a)| f(a)).count()
    }

    /// The prompts played, in order.
    pub fn prompts(&self) -> Vec<PromptId> {
        self.actions
            .iter()
            .filter_map(|(_, a)| match a {
                CallAction::Play(p) => Some(*p),
                _ => None,
            })
            .collect()
    }

    /// The call's end: its outcome, whether it counts as failed, and when (ms).
    pub fn finished(&self) -> Option<(crate::call::flow::Outcome, bool, u64)> {
        self.actions.iter().find_map(|(t, a)| match a {
            CallAction::Finished { outcome, failed } => {
                Some((*outcome, *failed, t.as_millis() as u64))
            }
            _ => None,
        })
    }

    /// A waiting-room route for `pin`: mapped, conference not running yet.
    pub fn waiting_pin(&mut self, pin: &str) {
        let w = WaitingFor::Conference {
            conference: target().conference,
            server: None,
        };
        self.routes
            .insert(pin.into(), Lookup::Ready(RouteDecision::Waiting(w)));
    }
}
