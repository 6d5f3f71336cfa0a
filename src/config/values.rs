//! Parsers for the value formats of the configuration (durations, port ranges, SIP URIs,
//! names). Each returns an error whose message says what to write instead; none echoes the value, so
//! they are safe for PIN-like keys too.

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::time::Duration;

/// How to write a duration, appended to every [`DurationError`].
const DURATION_HELP: &str =
    "write a whole number and a unit, like \"500ms\", \"10s\", \"15m\" or \"1h\"";

/// Why a duration value was refused; the message says what to write instead.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DurationError {
    /// No leading number.
    #[error("not a duration; {}", DURATION_HELP)]
    NotADuration,
    /// The number does not fit 64 bits.
    #[error("duration too long; {}", DURATION_HELP)]
    NumberTooLong,
    /// A number without `ms`, `s`, `m`/`min` or `h`.
    #[error("duration without a unit; {}", DURATION_HELP)]
    NoUnit,
    /// A unit other than `ms`, `s`, `m`/`min` or `h`.
    #[error("unknown duration unit; {}", DURATION_HELP)]
    UnknownUnit,
    /// Zero: every duration in the file is a timeout, and a zero timeout ends calls at once.
    #[error("must be longer than 0; {}", DURATION_HELP)]
    Zero,
    /// More than a year.
    #[error("duration too long (more than a year); {}", DURATION_HELP)]
    OverAYear,
    /// A valid duration outside what this key allows; the message names the allowed range.
    #[error("{0}")]
    OutOfRange(&'static str),
}

/// Parses a duration written as a whole number and a unit: `500ms`, `10s`, `15m`, `1h`.
/// Zero is refused: every duration in the file is a timeout, and a zero timeout ends calls at once.
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    if number.is_empty() {
        return Err(DurationError::NotADuration);
    }
    let Ok(n) = number.parse::<u64>() else {
        return Err(DurationError::NumberTooLong);
    };
    let per_unit_ms: u64 = match unit.trim() {
        "ms" => 1,
        "s" => 1_000,
        "m" | "min" => 60_000,
        "h" => 3_600_000,
        "" => return Err(DurationError::NoUnit),
        _ => return Err(DurationError::UnknownUnit),
    };
    match n.checked_mul(per_unit_ms) {
        Some(0) => Err(DurationError::Zero),
        Some(ms) if ms <= 365 * 24 * 3_600_000 => Ok(Duration::from_millis(ms)),
        _ => Err(DurationError::OverAYear),
    }
}

/// How to write a port range, appended to every [`PortRangeError`].
const PORT_RANGE_HELP: &str = "write an inclusive range like \"20000-20999\" within 1024-65535";

/// Why a port range was refused; the message says what to write instead.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PortRangeError {
    /// Not two port numbers joined by `-`.
    #[error("not a port range; {}", PORT_RANGE_HELP)]
    NotARange,
    /// Starts below 1024.
    #[error(
        "ports below 1024 need root and clash with system services; {}",
        PORT_RANGE_HELP
    )]
    Privileged,
    /// First above last.
    #[error("the first port is above the last; {}", PORT_RANGE_HELP)]
    Reversed,
    /// Fewer than 4 ports.
    #[error(
        "the range must hold at least 4 ports (2 per call leg); {}",
        PORT_RANGE_HELP
    )]
    TooSmall,
}

/// Parses an inclusive UDP port range `"<first>-<last>"` within 1024..=65535 of at least 4
/// ports (each call needs two RTP ports, plus RTCP neighbours on some peers).
pub(crate) fn parse_port_range(text: &str) -> Result<(u16, u16), PortRangeError> {
    let Some((lo, hi)) = text.split_once('-') else {
        return Err(PortRangeError::NotARange);
    };
    let (Ok(lo), Ok(hi)) = (lo.trim().parse::<u16>(), hi.trim().parse::<u16>()) else {
        return Err(PortRangeError::NotARange);
    };
    if lo < 1024 {
        return Err(PortRangeError::Privileged);
    }
    if hi < lo {
        return Err(PortRangeError::Reversed);
    }
    if hi - lo < 3 {
        return Err(PortRangeError::TooSmall);
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

/// How to write a server's SIP URI, appended to every [`SipUriError`].
const SIP_URI_HELP: &str = "write it as \"sip:<host>\" or \"sip:<host>:<port>\", like \"sip:10.0.0.5:5060\" or \"sip:bbb1.example.org\"";

/// Why a server's SIP URI was refused; the message says what to write instead.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SipUriError {
    /// Another scheme (or none).
    #[error(
        "must start with \"sip:\" (sips/TLS is not supported); {}",
        SIP_URI_HELP
    )]
    NotSip,
    /// `user@`: dialin writes the conference number there itself.
    #[error(
        "must not contain a user part (dialin puts the conference number there); {}",
        SIP_URI_HELP
    )]
    UserPart,
    /// `;`, `?` or `/`.
    #[error("URI parameters and headers are not supported; {}", SIP_URI_HELP)]
    Parameters,
    /// `[` without `]`.
    #[error("unclosed '['; {}", SIP_URI_HELP)]
    UnclosedBracket,
    /// Brackets around something else than an IPv6 address.
    #[error("not an IPv6 address inside [ ]; {}", SIP_URI_HELP)]
    NotIpv6,
    /// Something other than `:<port>` after `]`.
    #[error("junk after ']'; {}", SIP_URI_HELP)]
    JunkAfterBracket,
    /// Not an IP address nor a host name.
    #[error("not a valid host; {}", SIP_URI_HELP)]
    BadHost,
    /// Not a port from 1 to 65535.
    #[error("bad port; use 1-65535; {}", SIP_URI_HELP)]
    BadPort,
}

/// Parses `sip:<host>[:<port>]` with an IPv4 address, a bracketed IPv6 address or a hostname.
pub(crate) fn parse_sip_uri(text: &str) -> Result<SipUri, SipUriError> {
    let Some(rest) = text.trim().strip_prefix("sip:") else {
        return Err(SipUriError::NotSip);
    };
    if rest.contains('@') {
        return Err(SipUriError::UserPart);
    }
    if rest.contains([';', '?', '/']) {
        return Err(SipUriError::Parameters);
    }
    let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
        let (host, after) = v6.split_once(']').ok_or(SipUriError::UnclosedBracket)?;
        if host.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(SipUriError::NotIpv6);
        }
        match after {
            "" => (host, None),
            p => (
                host,
                Some(p.strip_prefix(':').ok_or(SipUriError::JunkAfterBracket)?),
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
        return Err(SipUriError::BadHost);
    }
    let port = match port {
        None => 5060,
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n > 0 => n,
            _ => return Err(SipUriError::BadPort),
        },
    };
    Ok(SipUri {
        host: host.to_string(),
        port,
    })
}

/// Why a server's host name did not resolve at load time (server host names are not personal
/// data, so the message names the host).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ResolveError {
    /// DNS answered without an address.
    #[error("host {host} has no address; fix DNS or write the server's IP address")]
    NoAddress {
        /// The host as written.
        host: String,
    },
    /// The lookup failed.
    #[error("cannot resolve host {host} ({source}); fix DNS or write the server's IP address")]
    Lookup {
        /// The host as written.
        host: String,
        /// What the resolver said.
        source: std::io::Error,
    },
}

/// Resolves a server's host to one socket address, at load time, so a DNS failure shows up in
/// `dialin check` rather than on the first call.
pub(crate) fn resolve(uri: &SipUri) -> Result<SocketAddr, ResolveError> {
    if let Ok(ip) = uri.host.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, uri.port));
    }
    let host = || uri.host.clone();
    match (uri.host.as_str(), uri.port).to_socket_addrs() {
        Ok(mut addrs) => addrs
            .next()
            .ok_or_else(|| ResolveError::NoAddress { host: host() }),
        Err(source) => Err(ResolveError::Lookup {
            host: host(),
            source,
        }),
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
