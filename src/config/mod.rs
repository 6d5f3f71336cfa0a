//! The TOML configuration: schema, defaults and validation.
//!
//! The file is read with `toml_edit`, which keeps spans, and validated by hand rather than
//! through serde so that every problem (wrong type, bad value, unknown key, broken cross-key
//! rule) is collected with its key path and line: `dialin check` prints them all at once as
//! `<file>:<line>: <key.path>: <what is wrong and what to do>`. Nearly every key has a default,
//! so an almost empty file is valid; `deploy/dialin.example.toml` documents every key and is
//! embedded as [`Config::embedded_default`].
//!
//! A file without `[[servers]]` is valid (only the echo test works then); such soft problems are
//! reported by [`Config::warnings`], which `dialin check` prints as warnings, not errors.

mod admin;
mod build;
mod error;
mod esl;
mod ops;
mod privacy;
mod reader;
mod tls;
mod trunks;
mod values;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use admin::{AdminConfig, BbbApiConfig, ChecksumAlgorithm, StoreConfig};
pub use error::{ConfigError, ConfigErrors};
pub use ops::LifecycleConfig;
pub use privacy::PrivacyConfig;
pub use values::parse_duration;

use crate::routing::ConferenceId;
use crate::secret::Pin;
use crate::sip::acl::{IpNet, SourceAcl};

/// The example configuration shipped in `deploy/`, compiled in so `dialin` runs without a file.
const EXAMPLE: &str = include_str!("../../deploy/dialin.example.toml");

/// The whole configuration, validated and typed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// The SIP endpoint (`[sip]`).
    pub sip: SipConfig,
    /// RTP ports and media timeouts (`[media]`).
    pub media: MediaConfig,
    /// Who may call in (`[trunk]`).
    pub trunk: TrunkConfig,
    /// The voice menu (`[ivr]`).
    pub ivr: IvrConfig,
    /// The BBB servers calls are bridged to (`[[servers]]`); names are unique.
    pub servers: Vec<ServerConfig>,
    /// How PINs map to conferences and servers (`[routing]`).
    pub routing: RoutingConfig,
    /// Admin PIN mappings from the file (`[[pins]]`); PINs are unique.
    pub pins: Vec<PinMapping>,
    /// What the meeting and the logs see of a caller (`[privacy]`).
    pub privacy: PrivacyConfig,
    /// Guessing protection (`[abuse]`).
    pub abuse: crate::privacy::guard::GuardLimits,
    /// Named trunks with their own addresses and limits (`[[trunks]]`); names are unique.
    pub trunks: Vec<NamedTrunk>,
    /// Overload and flood protection (`[limits]`).
    pub limits: LimitsConfig,
    /// Where the admin-managed PIN mappings live (`[store]`).
    pub store: StoreConfig,
    /// The HTTP admin API (`[admin]`).
    pub admin: AdminConfig,
    /// BBB API endpoints for meeting-ID mappings (`[[bbb_api]]`).
    pub bbb_api: Vec<BbbApiConfig>,
    /// Event Socket limits and the directory's grace period (`[esl]`).
    pub esl: EslConfig,
    /// Drain behaviour (`[lifecycle]`).
    pub lifecycle: LifecycleConfig,
}

/// `[esl]`: how the Event Socket connections are bounded and how long a lost server's
/// conferences stay trusted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EslConfig {
    /// How long a server's conferences stay known after its Event Socket is lost (default 30 s).
    pub grace: Duration,
    /// The largest frame accepted, in bytes (default 1 MiB).
    pub max_frame: usize,
    /// How long each handshake step and request may take (default 5 s).
    pub reply_timeout: Duration,
    /// Idle time after which a keepalive request is sent (default 15 s).
    pub keepalive: Duration,
}

impl Default for EslConfig {
    fn default() -> EslConfig {
        EslConfig {
            grace: Duration::from_secs(30),
            max_frame: 1024 * 1024,
            reply_timeout: Duration::from_secs(5),
            keepalive: Duration::from_secs(15),
        }
    }
}

/// A server's Event Socket: where and with which password. `Debug` hides the password.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EslServer {
    /// The private address FreeSWITCH's event socket listens on.
    pub addr: SocketAddr,
    /// The password (`esl_password_file` or `esl_password_env`), read at load time.
    pub password: crate::secret::Password,
}

/// What the mute key does once the caller is in the meeting.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MuteMode {
    /// `conference <name> tmute <member>` over the server's Event Socket; the key is not
    /// forwarded, so BBB's user list shows the change (servers without `esl`: passthrough).
    Esl,
    /// The key goes to the conference like any other (BBB's caller controls decide).
    Passthrough,
}

/// `[sip]`: where dialin's SIP endpoint listens and what address it puts in messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SipConfig {
    /// UDP and TCP listen address (default `127.0.0.1:5060`).
    pub listen: SocketAddr,
    /// The address put in Via, Contact and SDP (the public address behind NAT); defaults to
    /// the listen address, which then must not be unspecified.
    pub advertise: IpAddr,
    /// The User-Agent header (default `dialin`).
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
    /// No RTP in either direction for this long ends the call (default 60 s).
    pub timeout: Duration,
}

impl Default for MediaConfig {
    fn default() -> MediaConfig {
        MediaConfig {
            rtp_ports: (20000, 20999),
            timeout: Duration::from_secs(60),
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

/// `[trunks.register]`: dialin registers with the provider's registrar so that calls for the
/// number are sent to it (providers without fixed-address trunks require this).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegisterConfig {
    /// The registrar's URI as written (`sip:sip.provider.example[:port]`), for the
    /// Request-URI and the address of record's domain.
    pub registrar: String,
    /// The registrar's resolved address (resolved once at load time); its IP is allowed to
    /// send calls for this trunk.
    pub registrar_addr: SocketAddr,
    /// The account (user part of the address of record).
    pub username: String,
    /// The digest user name when it differs from `username`.
    pub auth_username: Option<String>,
    /// The digest password, from `password_file` or `password_env`; never printed.
    pub password: Password,
    /// The registration lifetime dialin asks for (default 1 h); refreshed at three quarters.
    pub expires: Duration,
}

/// A password read from a file or the environment. `Debug` hides it, so it never reaches a
/// log or `dialin check`.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    /// Wraps a password (trailing newline of a file already trimmed).
    pub fn new(p: impl Into<String>) -> Password {
        Password(p.into())
    }

    /// The password, for the digest computation only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(<hidden>)")
    }
}

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
}

impl Default for LimitsConfig {
    fn default() -> LimitsConfig {
        LimitsConfig {
            max_calls: 200,
            max_ivr_calls: 50,
            retry_after: Duration::from_secs(10),
            sip_rate: 200,
            sip_burst: 400,
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

/// `[ivr]`: prompts and PIN collection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IvrConfig {
    /// The prompt language (default English).
    pub language: Language,
    /// Where to read prompts from (`<sounds_dir>/<language>/*.wav`); `None` uses the prompts
    /// built into the binary.
    pub sounds_dir: Option<PathBuf>,
    /// The fewest digits a PIN has (1..=20, default 5).
    pub pin_min_digits: usize,
    /// The most digits a PIN has (1..=20, default 11); collection stops here.
    pub pin_max_digits: usize,
    /// How many PINs a caller may try before dialin hangs up (1..=10, default 3).
    pub attempts: u32,
    /// How long to wait for the first digit (default 10 s).
    pub first_digit_timeout: Duration,
    /// How long to wait for each further digit before taking the PIN as complete (default 5 s).
    pub inter_digit_timeout: Duration,
    /// The PIN of the built-in echo test (default `00000`); `None` disables it.
    pub echo_pin: Option<Pin>,
    /// How long an echo test may last before dialin hangs up.
    pub echo_max: Duration,
    /// How long a caller waits for a mapped meeting that has not started (default 15 min).
    pub max_wait: Duration,
    /// The key that toggles mute in the meeting (default `0`); `None` disables it.
    pub mute_key: Option<crate::digit::Digit>,
    /// What the mute key does (default [`MuteMode::Esl`]).
    pub mute_mode: MuteMode,
}

impl Default for IvrConfig {
    fn default() -> IvrConfig {
        IvrConfig {
            language: Language::En,
            sounds_dir: None,
            pin_min_digits: 5,
            pin_max_digits: 11,
            attempts: 3,
            first_digit_timeout: Duration::from_secs(10),
            inter_digit_timeout: Duration::from_secs(5),
            echo_pin: Pin::new("00000"),
            echo_max: Duration::from_secs(300),
            max_wait: Duration::from_secs(15 * 60),
            mute_key: Some(crate::digit::Digit::Num(0)),
            mute_mode: MuteMode::Esl,
        }
    }
}

/// The language of the voice prompts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Language {
    /// English (`en`).
    En,
    /// German (`de`).
    De,
}

impl Language {
    /// The code used in the file and as the prompt directory name.
    pub fn code(self) -> &'static str {
        match self {
            Language::En => "en",
            Language::De => "de",
        }
    }
}

/// One `[[servers]]` entry: a BBB server's FreeSWITCH.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerConfig {
    /// Unique name (`[a-z0-9_-]+`), used in `[[pins]]`, logs and metrics.
    pub name: String,
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
}

impl Default for RoutingConfig {
    fn default() -> RoutingConfig {
        RoutingConfig {
            pin_is_conference: true,
            default_server: None,
            server_answer_timeout: Duration::from_secs(10),
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

impl Config {
    /// Parses and validates configuration text. `origin` names the text in messages (a path or
    /// a label). Every problem is reported, not only the first.
    pub fn from_toml(text: &str, origin: &str) -> Result<Config, ConfigErrors> {
        build::build(text, origin)
    }

    /// Reads and validates the file at `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigErrors::whole_file(
                &origin,
                format!("cannot read the configuration ({e}); check the path and its permissions"),
            )
        })?;
        Config::from_toml(&text, &origin)
    }

    /// The configuration of `deploy/dialin.example.toml`, compiled into the binary.
    pub fn embedded_default() -> Config {
        Config::from_toml(EXAMPLE, "<embedded dialin.example.toml>")
            .expect("the embedded example is valid: a unit test checks it")
    }

    /// The server named `name`.
    pub fn server(&self, name: &str) -> Option<&ServerConfig> {
        self.servers.iter().find(|s| s.name == name)
    }

    /// The server for PINs that do not name one: `routing.default_server`, else the only
    /// server if there is exactly one.
    pub fn default_server(&self) -> Option<&ServerConfig> {
        match &self.routing.default_server {
            Some(name) => self.server(name),
            None if self.servers.len() == 1 => self.servers.first(),
            None => None,
        }
    }

    /// Soft problems that do not stop dialin but deserve attention; `dialin check` prints each
    /// as a `warning:` line. Format: `<key.path>: <message>`.
    pub fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.servers.is_empty() {
            out.push("servers: no [[servers]] configured, so only the echo test works; add a [[servers]] block to bridge calls into meetings".to_string());
        } else if self.routing.pin_is_conference && self.default_server().is_none() {
            out.push("routing.default_server: not set and there are several servers, so PINs without a [[pins]] mapping cannot be routed; set default_server".to_string());
        }
        if self.media.rtp_ports.0 % 2 == 1 {
            out.push("media.rtp_ports: the range starts at an odd port; RTP uses even ports, so start the range on an even number".to_string());
        }
        if self.trunk.allow.iter().any(IpNet::is_everything) {
            out.push("trunk.allow: a /0 network lets anyone on the internet call in; list only your SIP provider's networks".to_string());
        }
        let srtp_required = self.trunk.srtp == crate::sip::sdes::SrtpPolicy::Required
            || self
                .trunks
                .iter()
                .any(|t| t.srtp == crate::sip::sdes::SrtpPolicy::Required);
        if srtp_required && self.sip.tls.is_none() {
            out.push("trunk.srtp: SRTP keys travel in the SDP, in clear text without SIP over TLS; set sip.tls_listen, sip.tls_cert and sip.tls_key".to_string());
        }
        if self.limits.max_ivr_calls > self.limits.max_calls {
            out.push("limits.max_ivr_calls: above limits.max_calls, so it never applies; keep it below max_calls so guessers cannot hold every line".to_string());
        }
        if self.ivr.echo_pin.is_none() && self.servers.is_empty() {
            out.push("ivr.echo_pin: the echo test is disabled and there are no servers, so no call can succeed".to_string());
        }
        out
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod esl_tests;
