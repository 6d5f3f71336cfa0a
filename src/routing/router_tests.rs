//! Router: static rules (default server, PIN-to-server rules, switched off), and Debug hiding PINs.

use super::*;
use crate::config::Config;
use crate::secret::Pin;

const TWO_SERVERS: &str = r#"
[[servers]]
name = "bbb1"
sip = "sip:10.0.0.1"
[[servers]]
name = "bbb2"
sip = "sip:10.0.0.2:5080"
[routing]
default_server = "bbb1"
[[pins]]
pin = "8675309"
conference = "71234"
server = "bbb2"
[[pins]]
pin = "5550100"
conference = "99999"
"#;

fn conf(conference: &str, server: &str, addr: &str) -> RouteDecision {
    RouteDecision::Conference(ConferenceTarget {
        conference: ConferenceId(conference.to_string()),
        server: server.into(),
        server_addr: addr.parse().unwrap(),
    })
}

#[test]
fn resolves() {
    let router = Router::new(
        Config::from_toml(TWO_SERVERS, "test")
            .unwrap()
            .routing_settings(),
    );
    let cases = [
        ("00000", RouteDecision::Echo),
        ("8675309", conf("71234", "bbb2", "10.0.0.2:5080")),
        ("5550100", conf("99999", "bbb1", "10.0.0.1:5060")),
        ("71234", conf("71234", "bbb1", "10.0.0.1:5060")),
        ("12345678901", conf("12345678901", "bbb1", "10.0.0.1:5060")),
        ("1234", RouteDecision::Invalid),
        ("123456789012", RouteDecision::Invalid),
    ];
    for (pin, want) in cases {
        assert_eq!(router.resolve(&Pin::new(pin).unwrap()), want, "{pin}");
    }
}

#[test]
fn rules_switched_off() {
    let text = format!("{TWO_SERVERS}\n[ivr]\necho_pin = \"\"\n").replace(
        "default_server = \"bbb1\"",
        "default_server = \"bbb1\"\npin_is_conference = false",
    );
    let router = Router::new(Config::from_toml(&text, "test").unwrap().routing_settings());
    let cases = [
        ("00000", RouteDecision::Invalid),
        ("71234", RouteDecision::Invalid),
        ("8675309", conf("71234", "bbb2", "10.0.0.2:5080")),
    ];
    for (pin, want) in cases {
        assert_eq!(router.resolve(&Pin::new(pin).unwrap()), want, "{pin}");
    }
}

#[test]
fn default_server_rule() {
    // One server and no default: that server.
    let one =
        Config::from_toml("[[servers]]\nname = \"a\"\nsip = \"sip:10.0.0.9\"\n", "t").unwrap();
    assert_eq!(
        Router::new(one.routing_settings()).resolve(&Pin::new("12345").unwrap()),
        conf("12345", "a", "10.0.0.9:5060")
    );
    // Two servers and no default: unmapped PINs cannot be routed.
    let two = TWO_SERVERS
        .replace("default_server = \"bbb1\"", "")
        .replace(
            "pin = \"5550100\"\nconference = \"99999\"",
            "pin = \"5550100\"\nconference = \"99999\"\nserver = \"bbb1\"",
        );
    let router = Router::new(Config::from_toml(&two, "t").unwrap().routing_settings());
    assert_eq!(
        router.resolve(&Pin::new("12345").unwrap()),
        RouteDecision::Invalid
    );
    assert_eq!(
        router.resolve(&Pin::new("8675309").unwrap()),
        conf("71234", "bbb2", "10.0.0.2:5080")
    );
    // No servers: only the echo test.
    let none = Router::new(Config::from_toml("", "t").unwrap().routing_settings());
    assert_eq!(
        none.resolve(&Pin::new("00000").unwrap()),
        RouteDecision::Echo
    );
    assert_eq!(
        none.resolve(&Pin::new("12345").unwrap()),
        RouteDecision::Invalid
    );
}

#[test]
fn debug_hides_pins() {
    let router = Router::new(
        Config::from_toml(TWO_SERVERS, "test")
            .unwrap()
            .routing_settings(),
    );
    let text = format!("{router:?}");
    assert!(
        !text.contains("8675309") && !text.contains("71234") && !text.contains("00000"),
        "{text}"
    );
}
