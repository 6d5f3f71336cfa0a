//! Outbound registration through the real `dialin` binary against a sipp registrar that is busy
//! first and then challenges with 401 and 407.

use crate::support::dialin::{http, metric, TestConfig};
use crate::support::ports::PortBlock;
use crate::support::siplog::Direction;
use crate::support::sipp::{Scenario, Sipp};
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

const USER: &str = "4930555000";
const PASSWORD: &str = "s3cret-Pa55";

/// A config whose trunk `provider` registers at `registrar` as [`USER`] with `password` (from a
/// file in the returned directory, which must live as long as dialin).
fn registering(registrar: SocketAddr, password: &str) -> (TestConfig, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let password_file = dir.path().join("provider.password");
    std::fs::write(&password_file, format!("{password}\n")).unwrap();
    let mut cfg = TestConfig::new(SocketAddr::from((
        Ipv4Addr::LOCALHOST,
        PortBlock::take(1).base,
    )));
    cfg.extra = format!(
        "[[trunks]]\nname = \"provider\"\n[trunks.register]\nregistrar = \"sip:{registrar}\"\n\
         username = \"{USER}\"\npassword_file = \"{}\"\nexpires = \"60s\"\n",
        password_file.display()
    );
    (cfg, dir)
}

#[test]
fn registration_survives_a_busy_registrar_401_407_and_refreshes_before_expiry() {
    let mut scenario = Scenario::custom(
        "registrar_challenges",
        include_str!("../sipp/registrar_challenges.xml"),
    );
    scenario.default_keys = vec![
        ("user".into(), USER.into()),
        ("pass".into(), PASSWORD.into()),
    ];
    let registrar = Sipp::new(scenario).spawn();
    let (cfg, _dir) = registering(registrar.sip_addr(), PASSWORD);
    let dialin = cfg.start();
    // After the refresh (the fifth REGISTER), stop dialin: it removes its binding.
    dialin.wait_for_line("registration refreshed", Duration::from_secs(10));
    assert_eq!(dialin.status_value("registrations"), 1);
    assert_eq!(dialin.status_value("registrations_up"), 1);
    assert_eq!(dialin.status_value("registration_provider"), 1);
    let (_, text) = http(cfg.admin, "GET", "/metrics");
    assert_eq!(
        metric(&text, "dialin_registrations_up", "trunk=\"provider\""),
        1.0,
        "{text}"
    );
    let term = std::process::Command::new("kill")
        .args(["-TERM", &dialin.pid().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    let outcome = registrar.wait();
    outcome.assert_success();
    let registers: Vec<_> = outcome
        .messages()
        .into_iter()
        .filter(|m| m.direction == Direction::Received && m.method() == Some("REGISTER"))
        .collect();
    assert_eq!(registers.len(), 6, "{}", outcome.report());
    assert_eq!(
        registers[5].header("Expires"),
        Some("0"),
        "the binding is removed"
    );
    let sent_403 = outcome
        .messages()
        .into_iter()
        .any(|m| m.direction == Direction::Sent && m.status_code() == Some(403));
    assert!(
        !sent_403,
        "the digest answer to the 401 was wrong:\n{}",
        outcome.report()
    );
    assert!(registers[2].header("Authorization").is_some());
    let proxy_auth = registers[4]
        .header("Proxy-Authorization")
        .expect("answer to the 407");
    assert_digest(proxy_auth, "proxy.dialin.test", "9a8b7c6d5e4f");
    let at = |i: usize| registers[i].at_micros.unwrap();
    // Back-off after the 503: about a second.
    assert!(
        at(1) - at(0) >= 900_000,
        "retried after {} µs",
        at(1) - at(0)
    );
    // The refresh came before the 2 s binding ran out (at three quarters).
    let refresh = at(3) - at(2);
    assert!(
        (1_000_000..2_000_000).contains(&refresh),
        "refreshed after {refresh} µs"
    );
    dialin.wait_for_line("registered with the provider", Duration::from_secs(1));
    dialin.wait_for_line(
        "registration removed trunk=provider ok=true",
        Duration::from_secs(3),
    );
    dialin.assert_log_free_of(&[PASSWORD, USER]);
}

/// A registrar that refuses the first REGISTER with 403, as a provider does for a wrong
/// password; later attempts find nobody.
const REFUSING_REGISTRAR: &str = r#"<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="registrar_refuses">
  <recv request="REGISTER"/>
  <send>
    <![CDATA[
      SIP/2.0 403 Forbidden
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0

    ]]>
  </send>
</scenario>
"#;

/// A refused registration is a total inbound outage on that trunk: `/metrics` and the status
/// line must say so, per trunk, so an operator can alert on it.
#[test]
fn a_refused_registration_shows_as_down_in_metrics_and_status() {
    let registrar = Sipp::new(Scenario::custom("registrar_refuses", REFUSING_REGISTRAR)).spawn();
    let (cfg, _dir) = registering(registrar.sip_addr(), "wrong-password");
    let dialin = cfg.start();
    dialin.wait_for_line("registration refused", Duration::from_secs(10));
    registrar.wait().assert_success();
    let (_, text) = http(cfg.admin, "GET", "/metrics");
    assert_eq!(
        metric(&text, "dialin_registrations_up", "trunk=\"provider\""),
        0.0,
        "{text}"
    );
    assert_eq!(dialin.status_value("registrations"), 1);
    assert_eq!(dialin.status_value("registrations_up"), 0);
    assert_eq!(dialin.status_value("registration_provider"), 0);
    dialin.assert_log_free_of(&[USER]);
}

/// Checks an RFC 2617 digest (MD5, no qop) for REGISTER against [`USER`] and [`PASSWORD`].
fn assert_digest(header: &str, realm: &str, nonce: &str) {
    use md5::Digest;
    let param = |name: &str| {
        header
            .split(&format!("{name}=\""))
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .unwrap_or_else(|| panic!("no {name} in {header}"))
            .to_string()
    };
    let hex = |data: String| -> String {
        md5::Md5::digest(data.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    };
    assert_eq!(param("username"), USER);
    assert_eq!(param("realm"), realm);
    assert_eq!(param("nonce"), nonce);
    let ha1 = hex(format!("{USER}:{realm}:{PASSWORD}"));
    let ha2 = hex(format!("REGISTER:{}", param("uri")));
    assert_eq!(
        param("response"),
        hex(format!("{ha1}:{nonce}:{ha2}")),
        "{header}"
    );
}
