use super::*;
use crate::esl::client::LinkLoss;
use crate::esl::message::ConferenceEvent;
use crate::ids::ConferenceId;

const GRACE: Duration = Duration::from_secs(30);

fn dir() -> Directory {
    Directory::new(&["bbb1".into(), "bbb2".into()], GRACE)
}

fn listed(names: &[&str]) -> Vec<ListedConference> {
    names
        .iter()
        .map(|n| ListedConference {
            conference: ConferenceId(n.to_string()),
            members: vec![],
        })
        .collect()
}

fn ev(name: &str, kind: EventKind) -> Event {
    Event::Conference(ConferenceEvent {
        conference: ConferenceId(name.to_string()),
        kind,
    })
}

fn running(server: &str) -> Presence {
    Presence::Running(server.into())
}

#[test]
fn lookup_rules_on_simulated_time() {
    let t0 = Instant::now();
    let s = |secs: u64| t0 + Duration::from_secs(secs);
    let mut d = dir();
    // Nothing connected: nothing certain.
    assert_eq!(
        d.lookup("71234", t0),
        Presence::NotRunning { certain: false }
    );
    d.handle_snapshot(0, s(1), listed(&["71234"]));
    assert_eq!(d.lookup("71234", s(1)), running("bbb1"));
    assert_eq!(
        d.lookup("71235", s(1)),
        Presence::NotRunning { certain: false }
    );
    d.handle_snapshot(1, s(2), listed(&["71235"]));
    assert_eq!(d.lookup("71235", s(2)), running("bbb2"));
    assert_eq!(
        d.lookup("99999", s(2)),
        Presence::NotRunning { certain: true }
    );
    // A breakout room (parent plus one digit) is its own conference, wherever it runs.
    assert!(d.handle_event(1, s(3), &ev("712341", EventKind::Create)));
    assert_eq!(d.lookup("712341", s(3)), running("bbb2"));
    assert_eq!(d.lookup("71234", s(3)), running("bbb1"));
    // Destroyed: gone.
    d.handle_event(0, s(4), &ev("71234", EventKind::Destroy));
    assert_eq!(
        d.lookup("71234", s(4)),
        Presence::NotRunning { certain: true }
    );
    // Server 2 goes down: its conferences stay for the grace period, then are unknown.
    d.handle_down(1, s(10), LinkLoss::Quiet);
    assert_eq!(d.lookup("71235", s(10)), running("bbb2"));
    assert_eq!(d.lookup("71235", s(39)), running("bbb2"));
    assert_eq!(
        d.lookup("71235", s(40)),
        Presence::NotRunning { certain: false }
    );
    let status = d.status(s(40));
    assert_eq!(status[1].state, EslState::Down);
    assert_eq!(status[1].conferences, 0);
    assert_eq!(d.status(s(39))[1].state, EslState::DownGrace);
    // Back up: the new snapshot is the truth.
    d.handle_snapshot(1, s(50), listed(&[]));
    assert_eq!(
        d.lookup("71235", s(50)),
        Presence::NotRunning { certain: true }
    );
    assert_eq!(d.status(s(50))[1].state, EslState::Up);
}

#[test]
fn collisions_refuse_and_count() {
    let t0 = Instant::now();
    let mut d = dir();
    d.handle_snapshot(0, t0, listed(&["71234"]));
    d.handle_snapshot(1, t0, listed(&[]));
    assert_eq!(d.collisions(), 0);
    d.handle_event(1, t0, &ev("71234", EventKind::Create));
    assert_eq!(d.lookup("71234", t0), Presence::Collision);
    assert_eq!(d.collisions(), 1);
    // One ends: routable again.
    d.handle_event(0, t0, &ev("71234", EventKind::Destroy));
    assert_eq!(d.lookup("71234", t0), running("bbb2"));
    // A snapshot that brings a duplicate counts too; a down server past grace does not.
    d.handle_snapshot(0, t0, listed(&["71234"]));
    assert_eq!(d.collisions(), 2);
    d.handle_down(0, t0, LinkLoss::Quiet);
    let late = t0 + GRACE;
    d.handle_event(1, late, &ev("71234", EventKind::Destroy));
    d.handle_event(1, late, &ev("71234", EventKind::Create));
    assert_eq!(d.collisions(), 2);
    assert_eq!(d.lookup("71234", late), running("bbb2"));
}

#[test]
fn members_are_matched_to_our_calls_either_order() {
    let t0 = Instant::now();
    let mut d = dir();
    d.handle_snapshot(0, t0, listed(&[]));
    // add-member before or after CHANNEL_ANSWER: either way the member is found.
    d.handle_event(0, t0, &ev("71234", EventKind::Create));
    d.handle_event(
        0,
        t0,
        &Event::DialinChannel {
            unique_id: "u-1".into(),
            call: "c-1".into(),
        },
    );
    assert_eq!(d.member(0, "c-1"), None);
    let add = ev(
        "71234",
        EventKind::AddMember {
            member: 7,
            unique_id: "u-1".into(),
        },
    );
    d.handle_event(0, t0, &add);
    assert_eq!(d.member(0, "c-1"), Some((ConferenceId("71234".into()), 7)));
    assert_eq!(d.member(1, "c-1"), None, "another server");
    // Muted by its key or a moderator, unmuted again: the directory follows.
    assert_eq!(d.member_muted(0, "c-1"), Some(false));
    let mute = |muted| ev("71234", EventKind::Mute { member: 7, muted });
    d.handle_event(0, t0, &mute(true));
    assert_eq!(d.member_muted(0, "c-1"), Some(true));
    d.handle_event(0, t0, &mute(false));
    assert_eq!(d.member_muted(0, "c-1"), Some(false));
    d.handle_event(0, t0, &mute(true));
    d.handle_event(0, t0, &ev("71234", EventKind::DelMember { member: 7 }));
    assert_eq!(d.member(0, "c-1"), None);
    assert_eq!(d.member_muted(0, "c-1"), None);
    // A member of the same id later is not muted by the old one's state.
    d.handle_event(0, t0, &add);
    assert_eq!(d.member_muted(0, "c-1"), Some(false));
}

#[test]
fn add_member_for_a_missed_create_counts_as_created() {
    let t0 = Instant::now();
    let mut d = dir();
    d.handle_snapshot(0, t0, listed(&[]));
    let add = ev(
        "71234",
        EventKind::AddMember {
            member: 1,
            unique_id: "u".into(),
        },
    );
    assert!(d.handle_event(0, t0, &add));
    assert!(!d.handle_event(0, t0, &add));
    assert_eq!(d.lookup("71234", t0), running("bbb1"));
}

#[test]
fn call_links_are_bounded() {
    let t0 = Instant::now();
    let mut d = dir();
    for i in 0..(MAX_CALL_LINKS + 10) {
        d.handle_event(
            0,
            t0,
            &Event::DialinChannel {
                unique_id: format!("u{i}"),
                call: format!("c{i}"),
            },
        );
    }
    assert_eq!(d.servers[0].calls.len(), MAX_CALL_LINKS);
    assert!(!d.servers[0].calls.contains_key("c0"));
}

#[test]
fn debug_shows_counts_only() {
    let t0 = Instant::now();
    let mut d = dir();
    d.handle_snapshot(0, t0, listed(&["71234"]));
    assert!(!format!("{d:?}").contains("71234"));
}

/// Issue 22: refused/closed is down at once (conferences remembered as unreachable for the
/// grace period), quiet keeps the grace period, a refusal after a quiet loss makes it down
/// without restarting the grace clock, and probes make any server down.
#[test]
fn health_refused_quiet_probes_on_simulated_time() {
    let t0 = Instant::now();
    let s = |secs: u64| t0 + Duration::from_secs(secs);
    let mut d = dir();
    assert_eq!(
        d.health("bbb1", t0),
        ServerHealth::Quiet,
        "not connected yet"
    );
    assert_eq!(
        d.health("other", t0),
        ServerHealth::Up,
        "neither watched nor probed"
    );
    d.handle_snapshot(0, s(1), listed(&["71234"]));
    d.handle_snapshot(1, s(1), listed(&["71235"]));
    assert_eq!(d.health("bbb1", s(1)), ServerHealth::Up);
    // Quiet: grace; the conference still runs there.
    d.handle_down(0, s(2), LinkLoss::Quiet);
    assert_eq!(d.health("bbb1", s(2)), ServerHealth::Quiet);
    assert_eq!(d.lookup("71234", s(2)), running("bbb1"));
    assert_eq!(d.next_change(s(2)), Some(s(32)));
    // Then the reconnect is refused: down now, conferences unreachable until s(32).
    d.handle_down(0, s(5), LinkLoss::Refused);
    assert_eq!(d.health("bbb1", s(5)), ServerHealth::Down);
    assert_eq!(
        d.lookup("71234", s(5)),
        Presence::Unreachable("bbb1".into())
    );
    assert_eq!(
        d.lookup("71234", s(32)),
        Presence::NotRunning { certain: false }
    );
    // Refused at once: down, no grace.
    d.handle_down(1, s(6), LinkLoss::Refused);
    assert_eq!(d.health("bbb2", s(6)), ServerHealth::Down);
    assert_eq!(d.status(s(6))[1].state, EslState::Down);
    // The conference restarted elsewhere wins over the dead server's memory (no collision).
    d.handle_snapshot(0, s(7), listed(&["71235"]));
    assert_eq!(d.lookup("71235", s(7)), running("bbb1"));
    assert_eq!(d.collisions(), 0);
    // Refused before the first connection: down too.
    let mut fresh = dir();
    fresh.handle_down(0, t0, LinkLoss::Quiet);
    assert_eq!(fresh.health("bbb1", s(100)), ServerHealth::Quiet);
    fresh.handle_down(0, t0, LinkLoss::Refused);
    assert_eq!(fresh.health("bbb1", t0), ServerHealth::Down);
    // Probes: any server, watched or not; up again when they recover.
    assert!(d.handle_probe("other", false));
    assert!(!d.handle_probe("other", false));
    assert_eq!(d.health("other", s(8)), ServerHealth::Down);
    assert!(d.handle_probe("other", true));
    assert_eq!(d.health("other", s(8)), ServerHealth::Up);
}

#[test]
fn every_health_change_is_reported_once() {
    let t0 = Instant::now();
    let s = |secs: u64| t0 + Duration::from_secs(secs);
    let mut d = dir();
    assert!(d.take_health_change(t0), "the first look reports");
    assert!(!d.take_health_change(t0));
    d.handle_snapshot(0, s(1), listed(&[]));
    assert!(d.take_health_change(s(1)), "Quiet → Up");
    d.handle_down(0, s(2), LinkLoss::Quiet);
    assert!(d.take_health_change(s(2)), "Up → Quiet");
    assert!(!d.take_health_change(s(31)));
    assert!(
        d.take_health_change(s(32)),
        "grace over: Quiet → Down by time alone"
    );
    d.handle_probe("other", false);
    assert!(
        d.take_health_change(s(33)),
        "an unwatched server probed down"
    );
    d.handle_probe("other", true);
    assert!(d.take_health_change(s(33)), "and up again");
    assert!(!d.take_health_change(s(34)));
}
