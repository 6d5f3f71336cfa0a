//! The FreeSWITCH files for BBB admins (`dialplan/freeswitch/`) are well-formed XML and agree
//! with a FreeSWITCH configured like BBB (`tests/fixtures/freeswitch-bbb/`, copied from the
//! configuration the captures in `tests/fixtures/esl/` were made with).

use roxmltree::{Document, Node};

const BRIDGE: &str = include_str!("../../dialplan/freeswitch/dialin_bridge.xml");
const ACL_SNIPPET: &str = include_str!("../../dialplan/freeswitch/acl-snippet.xml");
const ESL: &str = include_str!("../../dialplan/freeswitch/event_socket.conf.xml");
const BBB_ACL: &str = include_str!("../fixtures/freeswitch-bbb/autoload_configs/acl.conf.xml");
const BBB_ESL: &str =
    include_str!("../fixtures/freeswitch-bbb/autoload_configs/event_socket.conf.xml");
const BBB_BRIDGE: &str =
    include_str!("../fixtures/freeswitch-bbb/dialplan/public/dialin_bridge.xml");
const BBB_CONFERENCE: &str =
    include_str!("../fixtures/freeswitch-bbb/dialplan/default/bbb_conference.xml");
const BBB_PUBLIC: &str = include_str!("../fixtures/freeswitch-bbb/dialplan/public.xml");

fn parse(name: &str, text: &'static str) -> Document<'static> {
    Document::parse(text).unwrap_or_else(|e| panic!("{name} is not well-formed XML: {e}"))
}

fn elements<'a>(doc: &'a Document<'a>, tag: &str) -> Vec<Node<'a, 'a>> {
    doc.descendants().filter(|n| n.has_tag_name(tag)).collect()
}

/// Attribute pairs, e.g. `(application, data)`.
type Pairs = Vec<(String, String)>;

/// The `(application, data)` of every action, and the `(field, expression)` of every condition.
fn extension_shape(doc: &Document<'_>) -> (Pairs, Pairs) {
    let attr = |n: &Node<'_, '_>, a: &str| n.attribute(a).unwrap_or("").to_string();
    let actions = elements(doc, "action")
        .iter()
        .map(|n| (attr(n, "application"), attr(n, "data")))
        .collect();
    let conditions = elements(doc, "condition")
        .iter()
        .map(|n| (attr(n, "field"), attr(n, "expression")))
        .collect();
    (actions, conditions)
}

/// The ESL settings as `name → value`.
fn params(doc: &Document<'_>) -> std::collections::BTreeMap<String, String> {
    elements(doc, "param")
        .iter()
        .map(|n| {
            (
                n.attribute("name").unwrap().to_string(),
                n.attribute("value").unwrap().to_string(),
            )
        })
        .collect()
}

fn acl_lists(doc: &Document<'_>) -> Vec<String> {
    elements(doc, "list")
        .iter()
        .map(|n| n.attribute("name").unwrap().to_string())
        .collect()
}

#[test]
fn every_file_is_well_formed() {
    for (name, text) in [
        ("dialin_bridge.xml", BRIDGE),
        ("acl-snippet.xml", ACL_SNIPPET),
        ("event_socket.conf.xml", ESL),
    ] {
        parse(name, text);
    }
}

#[test]
fn the_extension_does_what_the_bbb_like_server_ran() {
    let ours = extension_shape(&parse("dialin_bridge.xml", BRIDGE));
    let theirs = extension_shape(&parse("fixture dialin_bridge.xml", BBB_BRIDGE));
    assert_eq!(ours, theirs, "the extension that was tested on FreeSWITCH");
    let (actions, conditions) = ours;
    assert_eq!(
        actions,
        [
            ("set".to_string(), "bbb_authorized=true".to_string()),
            (
                "transfer".to_string(),
                "${destination_number} XML default".to_string()
            ),
        ]
    );
    // Nothing touches the caller ID: the meeting sees dialin's masked one.
    assert!(!BRIDGE.contains("caller_id_name=") && !BRIDGE.contains("caller_id_number="));
    assert_eq!(
        conditions,
        [(
            "${acl(${network_addr} dialin_bridge)}".to_string(),
            "^true$".to_string()
        )]
    );
    // The public context includes public/*.xml, where the file goes.
    assert!(BBB_PUBLIC.contains(r#"<X-PRE-PROCESS cmd="include" data="public/*.xml"/>"#));
}

#[test]
fn the_acl_lists_exist_and_match_the_server_config() {
    let ours = acl_lists(&parse("acl-snippet.xml", ACL_SNIPPET));
    assert_eq!(ours, ["dialin_bridge", "dialin_esl"]);
    let bbb = parse("fixture acl.conf.xml", BBB_ACL);
    assert!(acl_lists(&bbb).contains(&"dialin_bridge".to_string()));
    // Our lists deny by default, as the tested one does, and allow single hosts.
    let snippet = parse("acl-snippet.xml", ACL_SNIPPET);
    for list in elements(&snippet, "list") {
        assert_eq!(list.attribute("default"), Some("deny"));
        for node in list.children().filter(|n| n.has_tag_name("node")) {
            assert_eq!(node.attribute("type"), Some("allow"));
            assert!(node.attribute("cidr").unwrap().ends_with("/32"));
        }
    }
    // The ESL list keeps BBB's own components on 127.0.0.1 working.
    let esl_list = elements(&snippet, "list")
        .into_iter()
        .find(|l| l.attribute("name") == Some("dialin_esl"))
        .unwrap();
    assert!(esl_list
        .children()
        .any(|n| n.attribute("cidr") == Some("127.0.0.1/32")));
}

#[test]
fn the_event_socket_config_uses_the_tested_keys_an_acl_and_no_default_password() {
    let ours = params(&parse("event_socket.conf.xml", ESL));
    let theirs = params(&parse("fixture event_socket.conf.xml", BBB_ESL));
    assert_eq!(
        ours.keys().collect::<Vec<_>>(),
        theirs.keys().collect::<Vec<_>>(),
        "the same settings as the FreeSWITCH the captures came from"
    );
    assert_eq!(ours["listen-port"], "8021");
    assert_ne!(ours["password"], "ClueCon");
    // A private address the admin fills in: never every address, which includes public ones.
    let listen = ours["listen-ip"].as_str();
    assert!(
        !["::", "0.0.0.0", "", "[::]"].contains(&listen),
        "listen-ip {listen:?} listens on public addresses too"
    );
    match listen.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(ip)) => assert!(ip.is_private() || ip.is_loopback(), "{ip}"),
        Ok(ip) => panic!("listen-ip {ip}: give a private IPv4 address"),
        Err(_) => assert!(listen.starts_with("REPLACE-WITH-"), "{listen}"),
    }
    let lists = acl_lists(&parse("acl-snippet.xml", ACL_SNIPPET));
    assert!(lists.contains(&ours["apply-inbound-acl"]), "{ours:?}");
    let root = parse("event_socket.conf.xml", ESL);
    assert_eq!(
        root.root_element().attribute("name"),
        Some("event_socket.conf")
    );
}

#[test]
fn bbb_conference_pattern_matches_what_dialin_routes() {
    let doc = parse("fixture bbb_conference.xml", BBB_CONFERENCE);
    let (_, conditions) = extension_shape(&doc);
    assert!(conditions.contains(&("${bbb_authorized}".to_string(), "true".to_string())));
    assert!(conditions.contains(&(
        "destination_number".to_string(),
        r"^(\d{5,11})$".to_string()
    )));
    // dialin takes exactly these lengths as conference numbers ([[pins]] validation).
    for (digits, ok) in [(4, false), (5, true), (11, true), (12, false)] {
        let conference = "7".repeat(digits);
        let text = format!(
            "[[servers]]\nname = \"a\"\nsip = \"sip:10.0.0.1\"\n[[pins]]\npin = \"8675309\"\nconference = \"{conference}\"\n"
        );
        assert_eq!(
            dialin::config::Config::from_toml(&text, "t").is_ok(),
            ok,
            "{digits} digits"
        );
    }
}
