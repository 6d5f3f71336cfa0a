//! The types of `[sip]`, `[media]`, `[trunk]`, `[[trunks]]` (with outbound registration) and
//! `[limits]`: the SIP side of dialin, and the parsing of `[sip]`, `[media]` and `[trunk]` (`[[trunks]]` and
//! `[limits]` are parsed in `trunks`).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use crate::sip::acl::{IpNet, SourceAcl};

use super::error::Problems;
use super::reader::Section;
use super::values::DurationError;
use super::values::{parse_duration, parse_port_range};

/// `[sip]`: where dialin's SIP endpoint listens and what address it puts in messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SipConfig {
    /// UDP and TCP listen address (default `127.0.0.1:5060`).
    pub listen: SocketAddr,
    /// The address put in Via, Contact and SDP (the public address behind NAT); defaults to
    /// the listen address, which then must not be unspecified.
    pub advertise: IpAddr,
    /// The User-Agent (and Server) header (default `dialin`); empty sends neither header,
    /// which tells a scanner nothing about what answers.
    pub user_agent: String,
    /// How long dialin rings (180 Ringing) before it answers; `0s` answers at once.
    pub answer_delay: Duration,
    /// The shortest session-timer interval (RFC 4028 `Min-SE`) dialin accepts (default 90 s);
    /// shorter requests get `422`.
    pub session_min_se: Duration,
    /// Play the voice menu as early media (`183` with SDP) and answer (`200`) only once the
    /// call is bridged (default false).
    pub early_media: bool,
    /// SIP over TLS (`tls_listen`, `tls_cert`, `tls_key`); `None` when off (the default).
    pub tls: Option<crate::sip::tls::TlsSettings>,
}

impl Default for SipConfig {
    fn default() -> SipConfig {
        SipConfig {
            listen: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 5060),
            advertise: IpAddr::V4(Ipv4Addr::LOCALHOST),
            user_agent: "dialin".to_string(),
            answer_delay: Duration::ZERO,
            session_min_se: Duration::from_secs(90),
            early_media: false,
            tls: None,
        }
    }
}

/// `[media]`: the RTP port pool and when a silent call is ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MediaConfig {
    /// Inclusive UDP port range for RTP (default 20000–20999).
    pub rtp_ports: (u16, u16),
    /// No RTP from the caller for this long ends the call (default 60 s); a holding caller is
    /// asked with an in-dialog OPTIONS this often instead.
    pub timeout: Duration,
    /// No RTP from a bridged BBB server for this long means its leg is lost: the caller
    /// holds while the meeting is dialled again (default 1 s; `off` turns it off, for
    /// conference servers that send nothing while nobody speaks).
    pub server_silence: Duration,
    /// Where `server_silence` is off: how often a bridged server is asked with an in-dialog
    /// OPTIONS whether it still holds the leg (default 5 s; `off`: never).
    pub server_probe: Duration,
}

impl Default for MediaConfig {
    fn default() -> MediaConfig {
        MediaConfig {
            rtp_ports: (20000, 20999),
            timeout: Duration::from_secs(60),
            server_silence: crate::call::core::SERVER_SILENCE,
            server_probe: crate::call::core::SERVER_PROBE,
        }
    }
}

/// `[trunk]`: the networks allowed to send INVITEs and what others get.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrunkConfig {
    /// Networks allowed to send INVITEs (default loopback only: `127.0.0.0/8`, `::1/128`).
    pub allow: Vec<IpNet>,
    /// The reaction to INVITEs from elsewhere (default [`TrunkReject::Forbidden`]).
    pub reject: TrunkReject,
    /// Most calls at once from `allow` (sources of no `[[trunks]]` entry); `None`: only the
    /// global `limits.max_calls`.
    pub max_calls: Option<usize>,
    /// SRTP on calls from these networks (default: when offered).
    pub srtp: crate::sip::sdes::SrtpPolicy,
}

impl TrunkConfig {
    /// The ACL the SIP edge checks every INVITE against.
    pub fn acl(&self) -> SourceAcl {
        SourceAcl::new(self.allow.clone())
    }
}

impl Default for TrunkConfig {
    fn default() -> TrunkConfig {
        let allow = ["127.0.0.0/8", "::1/128"].map(|n| n.parse().expect("literal networks parse"));
        TrunkConfig {
            allow: allow.to_vec(),
            reject: TrunkReject::Forbidden,
            max_calls: None,
            srtp: Default::default(),
        }
    }
}

/// One `[[trunks]]` entry: a provider (or one of its regions) with its own source addresses
/// and call limit. A source matching several trunks belongs to the first one listed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NamedTrunk {
    /// Unique name (`[a-z0-9_-]+`), for logs and metric labels.
    pub name: String,
    /// The provider's networks for this trunk (at least one).
    pub allow: Vec<IpNet>,
    /// Most calls at once over this trunk; `None`: only the global limit.
    pub max_calls: Option<usize>,
    /// Outbound registration with the provider (`[trunks.register]`), if it wants one.
    pub register: Option<RegisterConfig>,
    /// SRTP on this trunk (default: when offered).
    pub srtp: crate::sip::sdes::SrtpPolicy,
}

/// `[trunks.register]`'s settings belong to the registration code that uses them;
/// re-exported so `config::RegisterConfig` keeps working.
pub use crate::sip::register::RegisterConfig;

/// The one password type, kept reachable as `config::Password` (the trunk's digest password).
pub use crate::secret::Password;

/// `[limits]`: what protects dialin from floods and overload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LimitsConfig {
    /// Most calls at once (default 200).
    pub max_calls: usize,
    /// Most calls at once that are not yet bridged: in the voice menu or being connected
    /// (default 50), so PIN guessers cannot hold every line.
    pub max_ivr_calls: usize,
    /// The `Retry-After` of a `503` for a full limit, whole seconds (default 10 s).
    pub retry_after: Duration,
    /// SIP requests per second each allowed source may send (default 200).
    pub sip_rate: u32,
    /// How many requests an allowed source may send at once above its rate (default 400).
    pub sip_burst: u32,
    /// Most SIP TCP/TLS connections (and, separately, admin connections) at once from one
    /// source address (default 64).
    pub tcp_per_source: u32,
    /// Most SIP TCP/TLS connections (and, separately, admin connections) at once in all
    /// (default 4,096: far below the service's 65,536 open files).
    pub tcp_total: u32,
    /// How long a SIP TCP/TLS connection may stay silent before its first byte (TLS: before
    /// its handshake ends), and an admin connection between requests (default 30 s).
    pub tcp_idle: Duration,
}

impl Default for LimitsConfig {
    fn default() -> LimitsConfig {
        LimitsConfig {
            max_calls: 200,
            max_ivr_calls: 50,
            retry_after: Duration::from_secs(10),
            sip_rate: 200,
            sip_burst: 400,
            tcp_per_source: 64,
            tcp_total: 4096,
            tcp_idle: Duration::from_secs(30),
        }
    }
}

/// What an INVITE from outside `[trunk] allow` gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TrunkReject {
    /// Answer `403 Forbidden` (`reject = "403"`): polite, helps debugging a new trunk.
    Forbidden,
    /// Drop without answer (`reject = "silence"`): gives scanners nothing.
    Silence,
}

/// `[sip]`.
pub(super) fn sip(root: &Section<'_>, p: &mut Problems<'_>) -> SipConfig {
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
            "not an address with port; write it like \"127.0.0.1:5060\", \"0.0.0.0:5060\" or \"[::]:5060\""
        })
    }) {
        c.listen = v.value;
    }
    let advertise = s.parsed(p, "advertise", |t| match t.trim().parse::<IpAddr>() {
        Ok(ip) if ip.is_unspecified() => Err("must be the address providers and servers reach dialin at, not an unspecified address like 0.0.0.0"),
        Ok(ip) => Ok(ip),
        Err(_) => Err("not an IP address; write the address providers and servers reach dialin at, like \"203.0.113.5\""),
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
        let ok = t.len() <= 64 && t.bytes().all(|b| (0x20..0x7f).contains(&b));
        ok.then(|| t.to_string()).ok_or("must be up to 64 printable ASCII characters, like \"dialin\", or \"\" for no User-Agent header")
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
            return Err(DurationError::OutOfRange(
                "must be whole seconds, like \"90s\"",
            ));
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
pub(super) fn media(root: &Section<'_>, p: &mut Problems<'_>) -> MediaConfig {
    let s = root.table(
        p,
        "media",
        &["rtp_ports", "timeout", "server_silence", "server_probe"],
    );
    let mut c = MediaConfig::default();
    if let Some(v) = s.parsed(p, "rtp_ports", parse_port_range) {
        c.rtp_ports = v.value;
    }
    if let Some(v) = s.parsed(p, "timeout", parse_duration) {
        c.timeout = v.value;
    }
    if let Some(v) = s.parsed(p, "server_silence", duration_or_off) {
        c.server_silence = v.value;
    }
    if let Some(v) = s.parsed(p, "server_probe", duration_or_off) {
        c.server_probe = v.value;
    }
    c
}

/// A duration, or `off` (zero: the check it sets is not made).
fn duration_or_off(text: &str) -> Result<Duration, super::values::DurationError> {
    match text.trim() {
        "off" => Ok(Duration::ZERO),
        other => parse_duration(other),
    }
}

/// `[trunk]`.
pub(super) fn trunk(root: &Section<'_>, p: &mut Problems<'_>) -> TrunkConfig {
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
        _ => Err("must be \"403\" (answer 403 Forbidden) or \"silence\" (drop without answer)"),
    }) {
        c.reject = v.value;
    }
    if let Some(v) = s.integer(p, "max_calls", 1..=100_000) {
        c.max_calls = Some(v.value as usize);
    }
    c.srtp = super::trunks::srtp_policy(&s, p);
    c
}
