//! Configuration reload (SIGHUP): read the file again, and if it is valid put the new servers,
//! PIN mappings, PIN and voice-menu settings, prompts, timeouts and trunk ACL in force for new
//! calls. Calls in progress keep the settings they started with, so nothing is dropped. A file
//! that does not validate (or whose prompts cannot be loaded) is refused as a whole: the old
//! configuration stays in force and the log says why.
//!
//! Listen addresses and the RTP port range are bound at start-up; a change to them is reported
//! as needing a restart and otherwise ignored.

use crate::call::context::{CallSettings, Prompts};
use crate::call::flow::FlowSettings;
use crate::call::pin::PinSettings;
use crate::config::{Config, TrunkReject};
use crate::routing::live::LiveDirectory;
use crate::routing::Router;
use crate::sip::source_filter::{FilterRules, RejectMode};
use crate::sounds::load_prompts;
use std::path::Path;

/// Why a reload was refused (the old configuration stays in force).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReloadError {
    /// The file does not validate; the message lists every problem with key and line.
    #[error("the new configuration is invalid, keeping the old one:\n{0}")]
    Invalid(String),
    /// The prompts of the new `[ivr]` settings cannot be loaded.
    #[error("the new prompts cannot be loaded, keeping the old configuration: {0}")]
    Prompts(String),
    /// dialin was started without a file: there is nothing to read again.
    #[error("dialin runs on its built-in configuration (no --config): nothing to reload")]
    NoFile,
}

/// A configuration that passed every check, ready to be put in force.
pub struct Reloaded {
    /// The new configuration (kept to compare with the next reload).
    pub config: Config,
    /// What new calls use.
    pub settings: CallSettings,
    /// The SIP source filter's new rules.
    pub filter: FilterRules,
    /// Keys that changed but only take effect after a restart.
    pub restart_needed: Vec<&'static str>,
}

/// The per-call settings of `config`; loads (and encodes) its prompts. The router consults
/// `directory` (the live conference directory, built once at start-up) when there is one.
pub fn call_settings(
    config: &Config,
    directory: Option<&LiveDirectory>,
) -> Result<CallSettings, ReloadError> {
    let prompts = load_prompts(&config.ivr).map_err(|e| ReloadError::Prompts(e.to_string()))?;
    let router = Router::new(config);
    Ok(CallSettings {
        router: match directory {
            Some(d) => router.with_directory(d.clone()),
            None => router,
        },
        prompts: Prompts::new(prompts),
        flow: FlowSettings {
            pin: PinSettings {
                min_digits: config.ivr.pin_min_digits,
                max_digits: config.ivr.pin_max_digits,
                first_digit_timeout: config.ivr.first_digit_timeout,
                inter_digit_timeout: config.ivr.inter_digit_timeout,
            },
            attempts: config.ivr.attempts,
            server_answer_timeout: config.routing.server_answer_timeout,
            echo_max: config.ivr.echo_max,
            max_wait: config.ivr.max_wait,
            mute_key: match config.ivr.mute_mode {
                crate::config::MuteMode::Esl => config.ivr.mute_key,
                crate::config::MuteMode::Passthrough => None,
            },
        },
        answer_delay: config.sip.answer_delay,
        media_timeout: config.media.timeout,
    })
}

/// The SIP source filter's rules for `config`.
pub fn filter_rules(config: &Config) -> FilterRules {
    FilterRules {
        trunk: config.trunk.acl(),
        servers: config.servers.iter().map(|s| s.sip.ip()).collect(),
        mode: match config.trunk.reject {
            TrunkReject::Forbidden => RejectMode::Forbidden,
            TrunkReject::Silence => RejectMode::Silence,
        },
    }
}

/// Reads `path` again and prepares what to put in force; `old` is the configuration in force,
/// `directory` the live directory built for it at start-up.
pub fn reload(
    path: Option<&Path>,
    old: &Config,
    directory: Option<&LiveDirectory>,
) -> Result<Reloaded, ReloadError> {
    let path = path.ok_or(ReloadError::NoFile)?;
    let config = Config::load(path).map_err(|e| ReloadError::Invalid(e.to_string()))?;
    let settings = call_settings(&config, directory)?;
    Ok(Reloaded {
        filter: filter_rules(&config),
        restart_needed: restart_needed(old, &config),
        settings,
        config,
    })
}

/// The keys that differ between `old` and `new` but are bound at start-up.
pub fn restart_needed(old: &Config, new: &Config) -> Vec<&'static str> {
    let mut keys = Vec::new();
    if old.sip.listen != new.sip.listen {
        keys.push("sip.listen");
    }
    if old.sip.advertise != new.sip.advertise {
        keys.push("sip.advertise");
    }
    if old.sip.user_agent != new.sip.user_agent {
        keys.push("sip.user_agent");
    }
    if old.media.rtp_ports != new.media.rtp_ports {
        keys.push("media.rtp_ports");
    }
    if old.admin != new.admin {
        keys.push("admin");
    }
    if old.lifecycle != new.lifecycle {
        keys.push("lifecycle");
    }
    // Event Socket connections are opened at start-up, one per server with `esl`.
    let esl = |c: &Config| -> Vec<(String, crate::config::EslServer)> {
        c.servers
            .iter()
            .filter_map(|s| Some((s.name.clone(), s.esl.clone()?)))
            .collect()
    };
    if esl(old) != esl(new) || old.esl != new.esl {
        keys.push("servers.esl");
    }
    keys
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str =
        "[ivr]\nattempts = 3\n[[servers]]\nname = \"a\"\nsip = \"sip:127.0.0.1:5080\"\n";

    fn write(dir: &tempfile::TempDir, text: &str) -> std::path::PathBuf {
        let p = dir.path().join("dialin.toml");
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn a_valid_file_gives_new_settings() {
        let dir = tempfile::tempdir().unwrap();
        let old = Config::from_toml(BASE, "old").unwrap();
        let path = write(&dir, &BASE.replace("attempts = 3", "attempts = 1"));
        let r = reload(Some(&path), &old, None)
            .map_err(|e| e.to_string())
            .unwrap();
        assert_eq!(r.settings.flow.attempts, 1);
        assert!(r.restart_needed.is_empty());
        assert_eq!(
            r.filter.servers,
            vec!["127.0.0.1".parse::<std::net::IpAddr>().unwrap()]
        );
    }

    #[test]
    fn a_broken_file_is_refused_with_its_problems() {
        let dir = tempfile::tempdir().unwrap();
        let old = Config::from_toml(BASE, "old").unwrap();
        let path = write(&dir, &BASE.replace("attempts = 3", "attempts = \"many\""));
        let e = reload(Some(&path), &old, None)
            .err()
            .expect("refused")
            .to_string();
        assert!(
            e.contains("keeping the old one") && e.contains("ivr.attempts"),
            "{e}"
        );
        assert!(matches!(reload(None, &old, None), Err(ReloadError::NoFile)));
    }

    #[test]
    fn bound_keys_need_a_restart() {
        let old = Config::from_toml(BASE, "old").unwrap();
        let new = Config::from_toml(
            &format!(
                "{BASE}[sip]\nlisten = \"127.0.0.1:5070\"\n[media]\nrtp_ports = \"30000-30099\"\n"
            ),
            "new",
        )
        .unwrap();
        assert_eq!(
            restart_needed(&old, &new),
            vec!["sip.listen", "media.rtp_ports"]
        );
    }
}
