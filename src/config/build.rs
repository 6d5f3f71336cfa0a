//! Building a [`Config`] from TOML text: one function per section, each recording every
//! problem it finds and falling back to the default so later checks still run.

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use toml_edit::ImDocument;

use super::error::{ConfigErrors, Problems};
use super::reader::Section;
use super::values::{
    all_digits, parse_duration, parse_port_range, parse_sip_uri, resolve, valid_server_name,
};
use super::*;
use crate::routing::ConferenceId;
use crate::secret::Pin;

/// BBB voiceBridge numbers have 5 digits by default and at most 11.
const CONFERENCE_DIGITS: std::ops::RangeInclusive<usize> = 5..=11;

/// Parses and validates `text`; see [`Config::from_toml`].
pub(super) fn build(text: &str, origin: &str) -> Result<Config, ConfigErrors> {
    let doc = match ImDocument::parse(text) {
        Ok(doc) => doc,
        Err(e) => return Err(syntax_error(text, origin, &e)),
    };
    let mut p = Problems::new(text);
    let root = Section::root(doc.as_table());
    root.reject_unknown(
        &mut p,
        &[
            "sip",
            "media",
            "trunk",
            "trunks",
            "ivr",
            "servers",
            "routing",
            "pins",
            "limits",
            "privacy",
            "abuse",
            "esl",
            "store",
            "admin",
            "bbb_api",
            "lifecycle",
        ],
    );
    let sip = sip(&root, &mut p);
    let media = media(&root, &mut p);
    let trunk = trunk(&root, &mut p);
    let ivr = ivr(&root, &mut p);
    let (servers, declared) = servers(&root, &mut p);
    let routing = routing(&root, &mut p, &declared);
    let pins = pins(&root, &mut p, &ivr, &declared, &routing);
    let privacy = super::privacy::privacy(&root, &mut p);
    let abuse = super::privacy::abuse(&root, &mut p);
    let esl = super::esl::section(&root, &mut p);
    let store = super::admin::store(&root, &mut p);
    let admin = super::admin::admin(&root, &mut p);
    let bbb_api = super::admin::bbb_api(&root, &mut p, &declared);
    let trunks = super::trunks::trunks(&root, &mut p);
    let limits = super::trunks::limits(&root, &mut p);
    let lifecycle = super::ops::lifecycle(&root, &mut p);
    p.finish(
        origin,
        Config {
            sip,
            media,
            trunk,
            ivr,
            servers,
            routing,
            pins,
            privacy,
            abuse,
            esl,
            store,
            admin,
            bbb_api,
            trunks,
            limits,
            lifecycle,
        },
    )
}

/// A TOML syntax error as one problem at its line. Only the parser's message is used, not its
/// rendering of the offending line, which could hold a PIN.
fn syntax_error(text: &str, origin: &str, e: &toml_edit::TomlError) -> ConfigErrors {
    let p = Problems::new(text);
    let line = p.line(e.span());
    let what = e.message().trim().replace('\n', "; ");
    let message =
        format!("TOML syntax error: {what}; fix the syntax on this line (strings need quotes)");
    let mut errors = ConfigErrors::whole_file(origin, message);
    errors.errors[0].line = line;
    errors
}

/// `[sip]`.
fn sip(root: &Section<'_>, p: &mut Problems<'_>) -> SipConfig {
    let s = root.table(
        p,
        "sip",
        &[
            "listen",
            "advertise",
            "user_agent",
            "answer_delay",
            "session_min_se",
            "early_media",
            "tls_listen",
            "tls_cert",
            "tls_key",
        ],
    );
    let mut c = SipConfig::default();
    if let Some(v) = s.parsed(p, "listen", |t| {
        t.trim().parse::<SocketAddr>().map_err(|_| {
            "not an address with port; write it like \"127.0.0.1:5060\", \"0.0.0.0:5060\" or \"[::]:5060\"".into()
        })
    }) {
        c.listen = v.value;
    }
    let advertise = s.parsed(p, "advertise", |t| match t.trim().parse::<IpAddr>() {
        Ok(ip) if ip.is_unspecified() => Err("must be the address providers and servers reach dialin at, not an unspecified address like 0.0.0.0".into()),
        Ok(ip) => Ok(ip),
        Err(_) => Err("not an IP address; write the address providers and servers reach dialin at, like \"203.0.113.5\"".into()),
    });
    match advertise {
        Some(v) => c.advertise = v.value,
        None if s.has("advertise") => {}
        None if c.listen.ip().is_unspecified() => p.push(
            s.line,
            s.path_of("advertise"),
            "required because sip.listen is an unspecified address (0.0.0.0 or [::]); set it to the address providers and servers reach dialin at",
        ),
        None => c.advertise = c.listen.ip(),
    }
    if let Some(v) = s.parsed(p, "user_agent", |t| {
        let ok = !t.is_empty() && t.len() <= 64 && t.bytes().all(|b| (0x20..0x7f).contains(&b));
        ok.then(|| t.to_string())
            .ok_or_else(|| "must be 1 to 64 printable ASCII characters, like \"dialin\"".into())
    }) {
        c.user_agent = v.value;
    }
    if let Some(v) = s.parsed(p, "answer_delay", |t| match t.trim() {
        "0" | "0s" | "0ms" => Ok(std::time::Duration::ZERO),
        other => parse_duration(other),
    }) {
        c.answer_delay = v.value;
    }
    if let Some(v) = s.parsed(p, "session_min_se", |t| {
        let d = parse_duration(t)?;
        if d.subsec_millis() != 0 {
            return Err("must be whole seconds, like \"90s\"".into());
        }
        Ok(d)
    }) {
        c.session_min_se = v.value;
    }
    if let Some(v) = s.boolean(p, "early_media") {
        c.early_media = v;
    }
    c.tls = super::tls::sip_tls(&s, p);
    c
}

/// `[media]`.
fn media(root: &Section<'_>, p: &mut Problems<'_>) -> MediaConfig {
    let s = root.table(p, "media", &["rtp_ports", "timeout"]);
    let mut c = MediaConfig::default();
    if let Some(v) = s.parsed(p, "rtp_ports", parse_port_range) {
        c.rtp_ports = v.value;
    }
    if let Some(v) = s.parsed(p, "timeout", parse_duration) {
        c.timeout = v.value;
    }
    c
}

/// `[trunk]`.
fn trunk(root: &Section<'_>, p: &mut Problems<'_>) -> TrunkConfig {
    let s = root.table(p, "trunk", &["allow", "reject", "max_calls", "srtp"]);
    let mut c = TrunkConfig::default();
    if let Some(list) = s.strings(p, "allow") {
        if list.is_empty() && s.has("allow") {
            let message = "empty, so every INVITE would be refused; list your SIP provider's networks, like [\"192.0.2.0/24\"]";
            p.push(s.line, s.path_of("allow"), message);
        }
        c.allow = Vec::new();
        for entry in list {
            match entry.value.parse::<IpNet>() {
                Ok(net) => c.allow.push(net),
                Err(e) => p.push(entry.line, entry.path, e.to_string()),
            }
        }
    }
    if let Some(v) = s.parsed(p, "reject", |t| match t {
        "403" => Ok(TrunkReject::Forbidden),
        "silence" => Ok(TrunkReject::Silence),
        _ => Err(
            "must be \"403\" (answer 403 Forbidden) or \"silence\" (drop without answer)".into(),
        ),
    }) {
        c.reject = v.value;
    }
    if let Some(v) = s.integer(p, "max_calls", 1..=100_000) {
        c.max_calls = Some(v.value as usize);
    }
    c.srtp = super::trunks::srtp_policy(&s, p);
    c
}

/// `[ivr]`.
fn ivr(root: &Section<'_>, p: &mut Problems<'_>) -> IvrConfig {
    let known = [
        "language",
        "sounds_dir",
        "pin_min_digits",
        "pin_max_digits",
        "attempts",
        "first_digit_timeout",
        "inter_digit_timeout",
        "echo_pin",
        "echo_max",
        "max_wait",
        "mute_key",
        "mute_mode",
    ];
    let s = root.table(p, "ivr", &known);
    let mut c = IvrConfig::default();
    if let Some(v) = s.parsed(p, "language", |t| match t {
        "en" => Ok(Language::En),
        "de" => Ok(Language::De),
        _ => Err("unsupported language; use \"en\" or \"de\"".into()),
    }) {
        c.language = v.value;
    }
    if let Some(v) = s.parsed(p, "sounds_dir", |t| {
        (!t.trim().is_empty()).then(|| PathBuf::from(t)).ok_or_else(|| {
            "empty; name a directory holding <language>/*.wav, or remove the key to use the built-in prompts".into()
        })
    }) {
        c.sounds_dir = Some(v.value);
    }
    let min = s.integer(p, "pin_min_digits", 1..=20);
    let max = s.integer(p, "pin_max_digits", 1..=20);
    if let Some(v) = &min {
        c.pin_min_digits = v.value as usize;
    }
    if let Some(v) = &max {
        c.pin_max_digits = v.value as usize;
    }
    if c.pin_min_digits > c.pin_max_digits {
        let (path, line) = match (&min, &max) {
            (Some(v), _) | (None, Some(v)) => (v.path.clone(), v.line),
            (None, None) => (s.path_of("pin_min_digits"), s.line),
        };
        p.push(
            line,
            path,
            "pin_min_digits is above pin_max_digits; make pin_min_digits <= pin_max_digits",
        );
    }
    if let Some(v) = s.integer(p, "attempts", 1..=10) {
        c.attempts = v.value as u32;
    }
    if let Some(v) = s.parsed(p, "first_digit_timeout", parse_duration) {
        c.first_digit_timeout = v.value;
    }
    if let Some(v) = s.parsed(p, "inter_digit_timeout", parse_duration) {
        c.inter_digit_timeout = v.value;
    }
    if let Some(v) = s.parsed(p, "echo_max", parse_duration) {
        c.echo_max = v.value;
    }
    if let Some(v) = s.parsed(p, "max_wait", parse_duration) {
        c.max_wait = v.value;
    }
    if let Some(v) = s.parsed(p, "mute_key", |t| match t {
        "" => Ok(None),
        t if t.len() == 1 => crate::digit::Digit::from_char(t.chars().next().unwrap_or(' '))
            .map(Some)
            .ok_or_else(|| "must be one key: 0-9, * or #; or \"\" to disable".into()),
        _ => Err("must be one key: 0-9, * or #; or \"\" to disable".into()),
    }) {
        c.mute_key = v.value;
    }
    if let Some(v) = s.parsed(p, "mute_mode", |t| match t {
        "esl" => Ok(MuteMode::Esl),
        "passthrough" => Ok(MuteMode::Passthrough),
        _ => Err(
            "must be \"esl\" (mute over the Event Socket) or \"passthrough\" (forward the key)"
                .into(),
        ),
    }) {
        c.mute_mode = v.value;
    }
    let echo = s.parsed(p, "echo_pin", |t| match t {
        "" => Ok(None),
        t if all_digits(t) => Ok(Pin::new(t)),
        _ => Err("must be digits only, or \"\" to disable the echo test".into()),
    });
    if let Some(v) = &echo {
        c.echo_pin = v.value.clone();
    }
    if let Some(pin) = &c.echo_pin {
        if !(c.pin_min_digits..=c.pin_max_digits).contains(&pin.len()) {
            let (path, line) = match &echo {
                Some(v) => (v.path.clone(), v.line),
                None => (
                    s.path_of("pin_min_digits"),
                    min.as_ref().and_then(|v| v.line).or(s.line),
                ),
            };
            let message = format!(
                "the echo_pin has {} digits, outside pin_min_digits..pin_max_digits, so callers could never reach the echo test; set echo_pin to a PIN within that range, or \"\" to disable it",
                pin.len()
            );
            p.push(line, path, message);
        }
    }
    c
}

/// `[[servers]]`: the valid servers, and every declared name (valid or not) so references to a
/// server with a broken `sip` URI are not reported twice.
fn servers(root: &Section<'_>, p: &mut Problems<'_>) -> (Vec<ServerConfig>, Vec<String>) {
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
            valid_server_name(t).then(|| t.to_string()).ok_or_else(|| {
                "must be 1 to 32 characters of a-z, 0-9, '_' and '-', like \"bbb1\"".into()
            })
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
                    p.push(uri.line, uri.path, message);
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
                name: name.value,
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
fn routing(root: &Section<'_>, p: &mut Problems<'_>, declared: &[String]) -> RoutingConfig {
    let s = root.table(
        p,
        "routing",
        &[
            "pin_is_conference",
            "default_server",
            "server_answer_timeout",
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
    c
}

/// `[[pins]]`. Messages never contain the PIN or the conference number.
fn pins(
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
                .ok_or_else(|| {
                    "must be the meeting's voiceBridge number: 5 to 11 digits (0-9)".into()
                })
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
