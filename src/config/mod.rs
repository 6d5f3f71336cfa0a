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
mod domain;
mod error;
mod esl;
mod ivr;
mod ops;
mod privacy;
mod probes;
mod reader;
mod routing;
mod sip;
mod store;
mod tls;
mod trunks;
mod values;

use std::path::Path;

pub use admin::{AdminConfig, BbbApiConfig, ChecksumAlgorithm};
pub use error::{ConfigError, ConfigErrors};
pub use esl::{EslConfig, EslServer, MuteMode};
pub use ivr::{IvrConfig, Language};
pub use ops::LifecycleConfig;
pub use privacy::PrivacyConfig;
pub use routing::{PinMapping, RoutingConfig, ServerConfig};
pub use sip::{
    LimitsConfig, MediaConfig, NamedTrunk, Password, RegisterConfig, SipConfig, TrunkConfig,
    TrunkReject,
};
pub use store::StoreConfig;
pub use values::{parse_duration, DurationError};

use crate::sip::acl::IpNet;

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
    /// SIP OPTIONS probes to the servers (`[probes]`); `None`: off (no `probes.interval`).
    pub probes: Option<crate::routing::probe::ProbeSettings>,
    /// Drain behaviour (`[lifecycle]`).
    pub lifecycle: LifecycleConfig,
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
