//! Routing with a live directory, on simulated time.

use super::*;
use crate::config::Config;
use crate::esl::client::{ConferenceFeed, LinkLoss};
use crate::esl::message::ListedConference;
use crate::secret::Pin;
use std::time::Duration;

const CONFIG: &str = r#"
[[servers]]
name = "bbb1"
sip = "sip:10.0.0.1"
[[servers]]
name = "bbb2"
sip = "sip:10.0.0.2"
[[servers]]
name = "old"
sip = "sip:10.0.0.3"
[routing]
default_server = "bbb1"
[[pins]]
pin = "8675309"
conference = "71234"
server = "bbb1"
[[pins]]
pin = "5550100"
conference = "55555"
server = "old"
"#;

const GRACE: Duration = Duration::from_secs(30);

fn conf(conference: &str, server: &str, ip: &str) -> RouteDecision {
    RouteDecision::Conference(ConferenceTarget {
        conference: ConferenceId(conference.to_string()),
        server: server.into(),
        server_addr: format!("{ip}:5060").parse().unwrap(),
    })
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

/// bbb1 and bbb2 watched; `old` has no Event Socket.
fn setup(t0: Instant) -> (Router, SharedDirectory) {
    let dir = SharedDirectory::new(&["bbb1".into(), "bbb2".into()], GRACE);
    dir.update(|d| {
        d.handle_snapshot(0, t0, listed(&["71234", "712341"]));
        d.handle_snapshot(1, t0, listed(&["71235"]));
        ((), true)
    });
    let router = Router::new(Config::from_toml(CONFIG, "t").unwrap().routing_settings())
        .with_directory(dir.clone());
    (router, dir)
}

#[test]
fn routes_by_the_live_directory() {
    let t0 = Instant::now();
    let (router, dir) = setup(t0);
    let waiting = RouteDecision::Waiting(WaitingFor::Conference {
        conference: ConferenceId("71234".into()),
        server: Some("bbb1".into()),
    });
    let cases = [
        ("00000", RouteDecision::Echo),
        ("71234", conf("71234", "bbb1", "10.0.0.1")),
        ("71235", conf("71235", "bbb2", "10.0.0.2")),
        ("712341", conf("712341", "bbb1", "10.0.0.1")),
        // Not running and every watched server is up: a typo as far as anyone can tell.
        ("99999", RouteDecision::Invalid),
        ("1234", RouteDecision::Invalid),
        // Mapped and running.
        ("8675309", conf("71234", "bbb1", "10.0.0.1")),
        // Mapped to a server without Event Socket: as configured.
        ("5550100", conf("55555", "old", "10.0.0.3")),
    ];
    for (pin, want) in cases {
        assert_eq!(
            router.resolve_at(&Pin::new(pin).unwrap(), t0),
            want,
            "{pin}"
        );
    }
    // The mapped meeting ends: its callers wait for it.
    dir.update(|d| {
        let e = crate::esl::message::Event::Conference(crate::esl::message::ConferenceEvent {
            conference: ConferenceId("71234".into()),
            kind: crate::esl::message::EventKind::Destroy,
        });
        (d.handle_event(0, t0, &e), false)
    });
    assert_eq!(
        router.resolve_at(&Pin::new("8675309").unwrap(), t0),
        waiting
    );
    // A mapping follows the conference to the server that runs it.
    dir.update(|d| {
        d.handle_snapshot(1, t0, listed(&["71235", "71234"]));
        ((), true)
    });
    assert_eq!(
        router.resolve_at(&Pin::new("8675309").unwrap(), t0),
        conf("71234", "bbb2", "10.0.0.2")
    );
}

#[test]
fn collisions_and_down_servers_are_unavailable() {
    let t0 = Instant::now();
    let (router, dir) = setup(t0);
    dir.update(|d| {
        d.handle_snapshot(1, t0, listed(&["71235", "71234"]));
        d.handle_snapshot(0, t0, listed(&["71234"]));
        ((), false)
    });
    for pin in ["71234", "8675309"] {
        assert_eq!(
            router.resolve_at(&Pin::new(pin).unwrap(), t0),
            RouteDecision::Unavailable,
            "{pin}"
        );
    }
    // bbb2 down: its conference is still routed during the grace period, then unavailable;
    // and an unknown number is unavailable too (it may run on bbb2).
    dir.update(|d| {
        d.handle_down(1, t0, LinkLoss::Quiet);
        ((), false)
    });
    let pin = Pin::new("71235").unwrap();
    assert_eq!(
        router.resolve_at(&pin, t0 + GRACE - Duration::from_secs(1)),
        conf("71235", "bbb2", "10.0.0.2")
    );
    assert_eq!(
        router.resolve_at(&pin, t0 + GRACE),
        RouteDecision::Unavailable
    );
    assert_eq!(
        router.resolve_at(&Pin::new("99999").unwrap(), t0),
        RouteDecision::Unavailable
    );
    let view = dir.view();
    // Seen twice: once when bbb2 reported it, once when bbb1 reconnected with it.
    assert_eq!(view.collisions(), 2);
    assert_eq!(view.servers(t0 + GRACE)[1].state, directory::EslState::Down);
}

#[test]
fn default_server_without_event_socket_keeps_the_old_fallback() {
    let t0 = Instant::now();
    let text = CONFIG.replace("default_server = \"bbb1\"", "default_server = \"old\"");
    let dir = SharedDirectory::new(&["bbb1".into(), "bbb2".into()], GRACE);
    dir.update(|d| {
        d.handle_snapshot(0, t0, listed(&[]));
        d.handle_snapshot(1, t0, listed(&[]));
        ((), false)
    });
    let router =
        Router::new(Config::from_toml(&text, "t").unwrap().routing_settings()).with_directory(dir);
    assert_eq!(
        router.resolve_at(&Pin::new("99999").unwrap(), t0),
        conf("99999", "old", "10.0.0.3")
    );
}

/// Issue 22: a server whose Event Socket was refused or closed is down for new calls at once
/// (its conferences are "unavailable", not dialled, not "invalid"), while a quiet one keeps
/// its grace period; a server without Event Socket whose probes fail is unavailable too.
#[test]
fn refused_and_probed_down_servers_get_no_new_calls() {
    let t0 = Instant::now();
    let (router, dir) = setup(t0);
    let pin = |p: &str| Pin::new(p).unwrap();
    // bbb2 refused (process gone): 71235 is unavailable at once, for identity and mapped PINs.
    dir.handle_down(1, t0, LinkLoss::Refused);
    assert_eq!(
        router.resolve_at(&pin("71235"), t0),
        RouteDecision::Unavailable
    );
    let waiting = WaitingFor::Conference {
        conference: ConferenceId("71235".into()),
        server: None,
    };
    assert_eq!(router.recheck(&waiting, t0), RouteDecision::Unavailable);
    // bbb1 is untouched.
    assert_eq!(
        router.resolve_at(&pin("71234"), t0),
        conf("71234", "bbb1", "10.0.0.1")
    );
    // After the grace period the dead server's conferences are forgotten: an identity PIN is
    // still unavailable (it may run there), a mapped one waits.
    assert_eq!(
        router.resolve_at(&pin("71235"), t0 + GRACE),
        RouteDecision::Unavailable
    );
    assert_eq!(
        router.recheck(&waiting, t0 + GRACE),
        RouteDecision::Waiting(waiting.clone())
    );
    // bbb2 back: routed again.
    dir.handle_snapshot(1, t0 + GRACE, listed(&["71235"]));
    assert_eq!(
        router.resolve_at(&pin("71235"), t0 + GRACE),
        conf("71235", "bbb2", "10.0.0.2")
    );
    // `old` (no Event Socket) probed dead: its mapping is unavailable; probed alive again: routed.
    assert_eq!(
        router.resolve_at(&pin("5550100"), t0),
        conf("55555", "old", "10.0.0.3")
    );
    dir.handle_probe("old", t0, false);
    assert_eq!(
        router.resolve_at(&pin("5550100"), t0),
        RouteDecision::Unavailable
    );
    dir.handle_probe("old", t0, true);
    assert_eq!(
        router.resolve_at(&pin("5550100"), t0),
        conf("55555", "old", "10.0.0.3")
    );
    // bbb1's Event Socket is up but its SIP probes fail: unavailable too.
    dir.handle_probe("bbb1", t0, false);
    assert_eq!(
        router.resolve_at(&pin("71234"), t0),
        RouteDecision::Unavailable
    );
    assert_eq!(
        router.resolve_at(&pin("8675309"), t0),
        RouteDecision::Unavailable
    );
}
