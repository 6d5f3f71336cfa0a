//! Router and the PIN store: a swapped store snapshot is seen by every clone, within validity windows, after the config file's `[[pins]]`.

use super::*;
use crate::config::Config;
use crate::secret::Pin;
use crate::store::model::{Mapping, Target};
use crate::store::shared_mappings::MeetingLookup;
const CONFIG: &str = "[[servers]]\nname = \"bbb1\"\nsip = \"sip:10.0.0.1\"\n[[servers]]\nname = \"bbb2\"\nsip = \"sip:10.0.0.2\"\n[routing]\ndefault_server = \"bbb1\"\n[[pins]]\npin = \"8675309\"\nconference = \"71234\"\n";

fn mapping(pin: &str, target: Target, window: (Option<i64>, Option<i64>)) -> Mapping {
    Mapping {
        pin: Pin::new(pin).unwrap(),
        target,
        label: None,
        valid_from: window.0,
        valid_until: window.1,
        created_at: 0,
        updated_at: 0,
    }
}

fn conf(c: &str, server: Option<&str>) -> Target {
    Target::Conference {
        conference: ConferenceId(c.into()),
        server: server.map(Into::into),
    }
}

fn routed(c: &str, server: &str, ip: &str) -> Lookup {
    Lookup::Ready(RouteDecision::Conference(ConferenceTarget {
        conference: ConferenceId(c.into()),
        server: server.into(),
        server_addr: format!("{ip}:5060").parse().unwrap(),
    }))
}

#[test]
fn router_follows_the_live_store() {
    let router = Router::new(Config::from_toml(CONFIG, "t").unwrap().routing_settings());
    let clone = router.clone();
    let pin = |p: &str| Pin::new(p).unwrap();
    // Before: the PIN is taken as a conference number on the default server.
    assert_eq!(
        router.lookup_at(&pin("555123"), std::time::Instant::now(), 1000),
        routed("555123", "bbb1", "10.0.0.1")
    );
    router.store_mappings().replace(&[
        mapping("555123", conf("72222", Some("bbb2")), (None, None)),
        mapping("555124", conf("72223", None), (Some(2000), Some(3000))),
        mapping(
            "555125",
            Target::Meeting {
                meeting_id: "m1".into(),
                server: None,
            },
            (None, None),
        ),
        mapping("8675309", conf("79999", None), (None, None)),
        mapping("555126", conf("72224", Some("gone")), (None, None)),
    ]);
    let cases = [
        ("555123", 1000, routed("72222", "bbb2", "10.0.0.2")),
        // Outside its window the PIN routes as if unmapped (here: as a conference number).
        ("555124", 1999, routed("555124", "bbb1", "10.0.0.1")),
        ("555124", 2000, routed("72223", "bbb1", "10.0.0.1")),
        ("555124", 3000, routed("555124", "bbb1", "10.0.0.1")),
        (
            "555125",
            1000,
            Lookup::Meeting(MeetingLookup {
                meeting_id: "m1".into(),
                server: None,
            }),
        ),
        // The config file wins over the store.
        ("8675309", 1000, routed("71234", "bbb1", "10.0.0.1")),
        // A server no longer configured: invalid, never a wrong server.
        ("555126", 1000, Lookup::Ready(RouteDecision::Invalid)),
    ];
    for (p, now, want) in cases {
        // Clones made before the swap see it too (the call context holds one).
        assert_eq!(
            clone.lookup_at(&pin(p), std::time::Instant::now(), now),
            want,
            "{p} at {now}"
        );
    }
    assert_eq!(router.resolve(&pin("555125")), RouteDecision::Invalid);
    router.store_mappings().replace(&[]);
    assert_eq!(
        router.lookup_at(&pin("555123"), std::time::Instant::now(), 1000),
        routed("555123", "bbb1", "10.0.0.1")
    );
    assert!(!format!("{router:?} {:?}", router.store_mappings()).contains("555"));
}
