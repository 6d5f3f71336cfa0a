//! The types of `[[servers]]`, `[routing]` and `[[pins]]`: the BBB servers and how a PIN
//! finds one; and their parsing.

use std::net::SocketAddr;
use std::time::Duration;

use super::EslServer;
use crate::ids::{ConferenceId, ServerName};
use crate::secret::Pin;

use std::collections::HashSet;

use super::error::Problems;
use super::reader::Section;
use super::values::{all_digits, parse_duration, parse_sip_uri, resolve, valid_server_name};
use super::IvrConfig;

/// BBB voiceBridge numbers have 5 digits by default and at most 11.
const CONFERENCE_DIGITS: std::ops::RangeInclusive<usize> = 5..=11;

/// One `[[servers]]` entry: a BBB server's FreeSWITCH.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerConfig {
    /// Unique name (`[a-z0-9_-]+`), used in `[[pins]]`, logs and metrics.
    pub name: ServerName,
    /// The host as written in the `sip` URI (IP or name), for the Request-URI and To header.
    pub host: String,
    /// The resolved address to send SIP to (resolved once at load time).
    pub sip: SocketAddr,
    /// Its Event Socket, if set: then the live directory watches it.
    pub esl: Option<EslServer>,
}

/// `[routing]`: how PINs without an admin mapping are routed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoutingConfig {
    /// A PIN with 5–11 digits is taken as the meeting's voiceBridge number (default true).
    pub pin_is_conference: bool,
    /// The server for PINs without one; `None` means the only server if there is exactly one.
    pub default_server: Option<String>,
    /// How long the server leg may take to answer (default 10 s).
    pub server_answer_timeout: Duration,
    /// How long a caller whose server leg was lost holds while dialin dials the meeting
    /// again (default 2 min).
    pub rejoin_max: Duration,
}

impl Default for RoutingConfig {
    fn default() -> RoutingConfig {
        RoutingConfig {
            pin_is_conference: true,
            default_server: None,
            server_answer_timeout: Duration::from_secs(10),
            rejoin_max: Duration::from_secs(120),
        }
    }
}

/// One `[[pins]]` entry: an admin mapping from a PIN to a conference. `Debug` hides both.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PinMapping {
    /// The PIN callers type.
    pub pin: Pin,
    /// The conference (voiceBridge) it leads to.
    pub conference: ConferenceId,
    /// The server's name; `None` follows the default-server rule.
    pub server: Option<String>,
}

/// `[[servers]]`: the valid servers, and every declared name (valid or not) so references to a
/// server with a broken `sip` URI are not reported twice.
pub(super) fn servers(
    root: &Section<'_>,
    p: &mut Problems<'_>,
) -> (Vec<ServerConfig>, Vec<String>) {
    let mut servers = Vec::new();
    let mut declared: Vec<String> = Vec::new();
    let known = [
        "name",
        "sip",
        super::esl::SERVER_KEYS[0],
        super::esl::SERVER_KEYS[1],
        super::esl::SERVER_KEYS[2],
    ];
    for s in root.tables(p, "servers", &known) {
        let name = s.parsed(p, "name", |t| {
            valid_server_name(t)
                .then(|| t.to_string())
                .ok_or("must be 1 to 32 characters of a-z, 0-9, '_' and '-', like \"bbb1\"")
        });
        if !s.has("name") {
            p.push(
                s.line,
                s.path_of("name"),
                "missing; give every server a unique name, like name = \"bbb1\"",
            );
        }
        let sip = s
            .parsed(p, "sip", parse_sip_uri)
            .and_then(|uri| match resolve(&uri.value) {
                Ok(addr) => Some((uri.value.host, addr)),
                Err(message) => {
                    p.push(uri.line, uri.path, message.to_string());
                    None
                }
            });
        if !s.has("sip") {
            let message =
                "missing; write the server's FreeSWITCH address, like sip = \"sip:10.0.0.5:5060\"";
            p.push(s.line, s.path_of("sip"), message);
        }
        let esl = super::esl::server(&s, p);
        let Some(name) = name else { continue };
        if declared.contains(&name.value) {
            let message = "another server already has this name; give every server a unique name";
            p.push(name.line, name.path, message);
            continue;
        }
        declared.push(name.value.clone());
        if let Some((host, sip)) = sip {
            servers.push(ServerConfig {
                name: ServerName::new(&name.value),
                host,
                sip,
                esl,
            });
        }
    }
    (servers, declared)
}

/// The message for a reference to a server that is not declared.
fn unknown_server(declared: &[String]) -> String {
    if declared.is_empty() {
        "names a server, but there are no [[servers]]; add a [[servers]] block with this name"
            .into()
    } else {
        format!(
            "names no [[servers]] entry; use one of: {}",
            declared.join(", ")
        )
    }
}

/// `[routing]`.
pub(super) fn routing(
    root: &Section<'_>,
    p: &mut Problems<'_>,
    declared: &[String],
) -> RoutingConfig {
    let s = root.table(
        p,
        "routing",
        &[
            "pin_is_conference",
            "default_server",
            "server_answer_timeout",
            "rejoin_max",
        ],
    );
    let mut c = RoutingConfig::default();
    if let Some(v) = s.boolean(p, "pin_is_conference") {
        c.pin_is_conference = v;
    }
    if let Some(v) = s.string(p, "default_server") {
        if declared.iter().any(|d| d == v.value) {
            c.default_server = Some(v.value.to_string());
        } else {
            p.push(v.line, v.path, unknown_server(declared));
        }
    }
    if let Some(v) = s.parsed(p, "server_answer_timeout", parse_duration) {
        c.server_answer_timeout = v.value;
    }
    if let Some(v) = s.parsed(p, "rejoin_max", parse_duration) {
        c.rejoin_max = v.value;
    }
    c
}

/// `[[pins]]`. Messages never contain the PIN or the conference number.
pub(super) fn pins(
    root: &Section<'_>,
    p: &mut Problems<'_>,
    ivr: &IvrConfig,
    declared: &[String],
    routing: &RoutingConfig,
) -> Vec<PinMapping> {
    let lengths = ivr.pin_min_digits..=ivr.pin_max_digits;
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for s in root.tables(p, "pins", &["pin", "conference", "server"]) {
        let pin = s.parsed(p, "pin", |t| {
            let pin = Pin::new(t).ok_or("must be digits only (0-9)")?;
            if !lengths.contains(&pin.len()) {
                return Err(format!(
                    "has {} digits, but ivr.pin_min_digits..pin_max_digits is {}..{}; callers could never type it",
                    pin.len(),
                    lengths.start(),
                    lengths.end()
                ));
            }
            if ivr.echo_pin.as_ref() == Some(&pin) {
                return Err("equals ivr.echo_pin, so it would reach the echo test; choose another PIN".into());
            }
            Ok(pin)
        });
        if let Some(v) = &pin {
            if !seen.insert(v.value.clone()) {
                p.push(
                    v.line,
                    v.path.clone(),
                    "another [[pins]] entry has the same PIN; every PIN must be unique",
                );
            }
        }
        let conference = s.parsed(p, "conference", |t| {
            (all_digits(t) && CONFERENCE_DIGITS.contains(&t.len()))
                .then(|| ConferenceId(t.to_string()))
                .ok_or("must be the meeting's voiceBridge number: 5 to 11 digits (0-9)")
        });
        for (key, what) in [
            ("pin", "the PIN callers type"),
            ("conference", "the meeting's voiceBridge number"),
        ] {
            if !s.has(key) {
                p.push(
                    s.line,
                    s.path_of(key),
                    format!("missing; set {key} to {what}"),
                );
            }
        }
        let server = s.string(p, "server").map(|v| {
            if !declared.iter().any(|d| d == v.value) {
                p.push(v.line, v.path.clone(), unknown_server(declared));
            }
            v.value.to_string()
        });
        let has_default = routing.default_server.is_some() || declared.len() == 1;
        if server.is_none() && !s.has("server") && !has_default {
            let message = "no server for this PIN: set server to a [[servers]] name, or set routing.default_server";
            p.push(s.line, s.path_of("server"), message);
        }
        if let (Some(pin), Some(conference)) = (pin, conference) {
            out.push(PinMapping {
                pin: pin.value,
                conference: conference.value,
                server,
            });
        }
    }
    out
}
