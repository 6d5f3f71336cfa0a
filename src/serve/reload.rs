//! Configuration reload (SIGHUP): read the file again, and if it is valid put the new servers,
//! PIN mappings, PIN and voice-menu settings, prompts and timeouts in force for new calls. Calls in progress keep the settings they started with, so nothing is dropped. A file
//! that does not validate (or whose prompts cannot be loaded) is refused as a whole: the old
//! configuration stays in force and the log says why.
//!
//! What is bound at start-up (listen addresses, the RTP range, TLS, the trunks' source filter,
//! rate and call limits, server addresses, Event Sockets, the store, the admin listener) is
//! reported as needing a restart and otherwise ignored; [`restart_needed`] lists it.

use crate::call::context::{CallSettings, Prompts};
use crate::call::flow::FlowSettings;
use crate::call::pin::PinSettings;
use crate::config::Config;
use crate::routing::shared_directory::SharedDirectory;
use crate::routing::Router;
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
    /// Keys that changed but only take effect after a restart.
    pub restart_needed: Vec<&'static str>,
}

/// What a reloaded router keeps from start-up: the live conference directory (if any server
/// has an Event Socket) and the PIN store's live mappings.
#[derive(Clone, Default)]
pub struct LiveParts {
    /// The conference directory fed by the Event Socket tasks.
    pub directory: Option<SharedDirectory>,
    /// The store mappings the store watcher keeps current.
    pub store: crate::store::shared_mappings::SharedMappings,
}

/// The per-call settings of `config`; loads (and encodes) its prompts. The router reads the
/// live parts built once at start-up.
pub fn call_settings(config: &Config, live: &LiveParts) -> Result<CallSettings, ReloadError> {
    let prompts = load_prompts(&config.ivr).map_err(|e| ReloadError::Prompts(e.to_string()))?;
    let router = Router::new(config.routing_settings()).with_store(live.store.clone());
    let directory = live.directory.as_ref();
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
            rejoin_max: config.routing.rejoin_max,
            mute_key: match config.ivr.mute_mode {
                crate::config::MuteMode::Esl => config.ivr.mute_key,
                crate::config::MuteMode::Passthrough => None,
            },
        },
        answer_delay: config.sip.answer_delay,
        media_timeout: config.media.timeout,
        server_silence: config.media.server_silence,
        server_probe: config.media.server_probe,
    })
}

/// Reads `path` again and prepares what to put in force; `old` is the configuration in force,
/// `live` what its router shares with the running tasks.
pub fn reload(
    path: Option<&Path>,
    old: &Config,
    live: &LiveParts,
) -> Result<Reloaded, ReloadError> {
    let path = path.ok_or(ReloadError::NoFile)?;
    let config = Config::load(path).map_err(|e| ReloadError::Invalid(e.to_string()))?;
    let settings = call_settings(&config, live)?;
    Ok(Reloaded {
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
    if old.probes != new.probes {
        keys.push("probes");
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
    if old.sip.session_min_se != new.sip.session_min_se {
        keys.push("sip.session_min_se");
    }
    if old.sip.early_media != new.sip.early_media {
        keys.push("sip.early_media");
    }
    if old.sip.tls != new.sip.tls {
        keys.push("sip.tls_*");
    }
    // The SIP edge's source filter, rate limits and call admission are built at start-up.
    if old.trunk != new.trunk {
        keys.push("trunk");
    }
    if old.trunks != new.trunks {
        keys.push("trunks");
    }
    if old.limits != new.limits {
        keys.push("limits");
    }
    let addrs = |c: &Config| c.servers.iter().map(|s| s.sip.ip()).collect::<Vec<_>>();
    if addrs(old) != addrs(new) {
        // The source filter lets the servers' addresses send in-dialog requests.
        keys.push("servers.sip (addresses)");
    }
    if old.store != new.store {
        keys.push("store");
    }
    // The caller-ID policy and guessing protection keep state (numbering, keys, counters).
    if old.privacy != new.privacy {
        keys.push("privacy");
    }
    if old.abuse != new.abuse {
        keys.push("abuse");
    }
    if old.bbb_api != new.bbb_api {
        keys.push("bbb_api");
    }
    if old.admin != new.admin {
        keys.push("admin");
    }
    if old.lifecycle != new.lifecycle {
        keys.push("lifecycle");
    }
    // Event Socket connections are opened at start-up, one per server with `esl`.
    let esl = |c: &Config| -> Vec<(crate::ids::ServerName, crate::config::EslServer)> {
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
        let r = reload(Some(&path), &old, &LiveParts::default())
            .map_err(|e| e.to_string())
            .unwrap();
        assert_eq!(r.settings.flow.attempts, 1);
        assert!(r.restart_needed.is_empty());
    }

    #[test]
    fn a_broken_file_is_refused_with_its_problems() {
        let dir = tempfile::tempdir().unwrap();
        let old = Config::from_toml(BASE, "old").unwrap();
        let path = write(&dir, &BASE.replace("attempts = 3", "attempts = \"many\""));
        let e = reload(Some(&path), &old, &LiveParts::default())
            .err()
            .expect("refused")
            .to_string();
        assert!(
            e.contains("keeping the old one") && e.contains("ivr.attempts"),
            "{e}"
        );
        assert!(matches!(
            reload(None, &old, &LiveParts::default()),
            Err(ReloadError::NoFile)
        ));
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
