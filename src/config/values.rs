//! Parsers for the value formats of the configuration (durations, port ranges, SIP URIs,
//! names). Each returns a message that says what to write instead; none echoes the value, so
//! they are safe for PIN-like keys too.

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::time::Duration;

/// Parses a duration written as a whole number and a unit: `500ms`, `10s`, `15m`, `1h`.
/// Zero is refused: every duration in the file is a timeout, and a zero timeout ends calls at once.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    const HELP: &str =
        "write a whole number and a unit, like \"500ms\", \"10s\", \"15m\" or \"1h\"";
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    if number.is_empty() {
        return Err(format!("not a duration; {HELP}"));
    }
    let Ok(n) = number.parse::<u64>() else {
        return Err(format!("duration too long; {HELP}"));
    };
    let per_unit_ms: u64 = match unit.trim() {
        "ms" => 1,
        "s" => 1_000,
        "m" | "min" => 60_000,
        "h" => 3_600_000,
        "" => return Err(format!("duration without a unit; {HELP}")),
        _ => return Err(format!("unknown duration unit; {HELP}")),
    };
    match n.checked_mul(per_unit_ms) {
        Some(0) => Err(format!("must be longer than 0; {HELP}")),
        Some(ms) if ms <= 365 * 24 * 3_600_000 => Ok(Duration::from_millis(ms)),
        _ => Err(format!("duration too long (more than a year); {HELP}")),
    }
}

/// Parses an inclusive UDP port range `"<first>-<last>"` within 1024..=65535 of at least 4
/// ports (each call needs two RTP ports, plus RTCP neighbours on some peers).
pub(crate) fn parse_port_range(text: &str) -> Result<(u16, u16), String> {
    const HELP: &str = "write an inclusive range like \"20000-20999\" within 1024-65535";
    let Some((lo, hi)) = text.split_once('-') else {
        return Err(format!("not a port range; {HELP}"));
    };
    let (Ok(lo), Ok(hi)) = (lo.trim().parse::<u16>(), hi.trim().parse::<u16>()) else {
        return Err(format!("not a port range; {HELP}"));
    };
    if lo < 1024 {
        return Err(format!(
            "ports below 1024 need root and clash with system services; {HELP}"
        ));
    }
    if hi < lo {
        return Err(format!("the first port is above the last; {HELP}"));
    }
    if hi - lo < 3 {
        return Err(format!(
            "the range must hold at least 4 ports (2 per call leg); {HELP}"
        ));
    }
    Ok((lo, hi))
}

/// A server's SIP address as written: host (IP or name) and port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SipUri {
    /// The host as written, without brackets.
    pub host: String,
    /// The port (5060 when not written).
    pub port: u16,
}

/// Parses `sip:<host>[:<port>]` with an IPv4 address, a bracketed IPv6 address or a hostname.
pub(crate) fn parse_sip_uri(text: &str) -> Result<SipUri, String> {
    const HELP: &str =
        "write it as \"sip:<host>\" or \"sip:<host>:<port>\", like \"sip:10.0.0.5:5060\" or \"sip:bbb1.example.org\"";
    let Some(rest) = text.trim().strip_prefix("sip:") else {
        return Err(format!(
            "must start with \"sip:\" (sips/TLS is not supported); {HELP}"
        ));
    };
    if rest.contains('@') {
        return Err(format!(
            "must not contain a user part (dialin puts the conference number there); {HELP}"
        ));
    }
    if rest.contains([';', '?', '/']) {
        return Err(format!(
            "URI parameters and headers are not supported; {HELP}"
        ));
    }
    let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
        let (host, after) = v6
            .split_once(']')
            .ok_or_else(|| format!("unclosed '['; {HELP}"))?;
        if host.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(format!("not an IPv6 address inside [ ]; {HELP}"));
        }
        match after {
            "" => (host, None),
            p => (
                host,
                Some(
                    p.strip_prefix(':')
                        .ok_or_else(|| format!("junk after ']'; {HELP}"))?,
                ),
            ),
        }
    } else {
        match rest.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (rest, None),
        }
    };
    let valid_host = !host.is_empty()
        && host.len() <= 253
        && (host.contains(':')
            || host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.'));
    if !valid_host {
        return Err(format!("not a valid host; {HELP}"));
    }
    let port = match port {
        None => 5060,
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n > 0 => n,
            _ => return Err(format!("bad port; use 1-65535; {HELP}")),
        },
    };
    Ok(SipUri {
        host: host.to_string(),
        port,
    })
}

/// Resolves a server's host to one socket address, at load time, so a DNS failure shows up in
/// `dialin check` rather than on the first call.
pub(crate) fn resolve(uri: &SipUri) -> Result<SocketAddr, String> {
    if let Ok(ip) = uri.host.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, uri.port));
    }
    match (uri.host.as_str(), uri.port).to_socket_addrs() {
        Ok(mut addrs) => addrs.next().ok_or_else(|| {
            format!(
                "host {} has no address; fix DNS or write the server's IP address",
                uri.host
            )
        }),
        Err(e) => Err(format!(
            "cannot resolve host {} ({e}); fix DNS or write the server's IP address",
            uri.host
        )),
    }
}

/// Whether `name` is a valid server name: non-empty, `[a-z0-9_-]+`, at most 32 characters
/// (names appear in logs and metric labels).
pub(crate) fn valid_server_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 32
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

/// Whether `text` is only ASCII digits (possibly empty).
pub(crate) fn all_digits(text: &str) -> bool {
    text.bytes().all(|b| b.is_ascii_digit())
}
