//! What the admin API reports about a running instance: the shared state behind the routes,
//! and the status summary `dialin status` prints. Counts and names only.

use crate::call::context::CallContext;
use crate::ops::health::ReadinessCheck;
use crate::serve::refusals::CallsRefused;
use crate::sip::register::{RegState, RegistrationStatus};
use crate::sip::source_filter::FilterStats;
use metrics_exporter_prometheus::PrometheusHandle;
use serde::{Deserialize, Serialize};
use std::sync::atomic::Ordering;
use std::sync::{Arc, RwLock};
use std::time::Instant;

/// Everything the admin routes read.
pub struct OpsState {
    /// The call layer (counters, drain state, the calls in progress).
    pub ctx: Arc<CallContext>,
    /// The SIP source filter's counters.
    pub filter_stats: Arc<FilterStats>,
    /// The configured servers' names; replaced by a reload.
    pub servers: RwLock<Vec<crate::ids::ServerName>>,
    /// The Prometheus recorder's handle; `None` if another recorder was installed first.
    pub metrics: Option<PrometheusHandle>,
    /// What `/readyz` asks.
    pub checks: Vec<Arc<dyn ReadinessCheck>>,
    /// When dialin started.
    pub started: Instant,
    /// Each `[trunks.register]` registration's state: a failed one means no inbound calls
    /// from that provider, which an operator must see and alert on.
    pub registrations: Arc<RegistrationStatus>,
}

/// The summary of `GET /api/v1/status` and `dialin status`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Status {
    /// dialin's version.
    pub version: String,
    /// Seconds since start.
    pub uptime_secs: u64,
    /// Whether a drain is running (new calls refused).
    pub draining: bool,
    /// Calls in progress.
    pub active_calls: u64,
    /// Calls since start.
    pub calls_started: u64,
    /// Calls bridged to a BBB server's conference since start (echo tests not included).
    pub calls_bridged: u64,
    /// Calls that reached the built-in echo test (PIN 00000) since start. (The `serde`
    /// defaults and alias here let an upgraded `dialin status` read an instance not yet
    /// restarted, as in a rolling upgrade.)
    #[serde(default)]
    pub echo_tests: u64,
    /// Calls refused with 503 since start, by reason.
    #[serde(default)]
    pub calls_refused: CallsRefused,
    /// RTP/RTCP port pairs of `media.rtp_ports` in use (one per call leg).
    #[serde(alias = "rtp_ports_in_use")]
    pub rtp_port_pairs_in_use: u64,
    /// SIP dialogs held.
    pub sip_dialogs: u64,
    /// SIP requests refused by source address.
    pub sip_sources_rejected: u64,
    /// The configured BBB servers.
    pub servers: Vec<ServerSummary>,
    /// Each trunk that registers with its provider.
    #[serde(default)]
    pub registrations: Vec<RegistrationSummary>,
}

/// One `[trunks.register]` registration in the status.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct RegistrationSummary {
    /// The trunk's config name.
    pub trunk: String,
    /// Whether the provider holds a valid binding now (else no calls come from it).
    pub up: bool,
}

/// One configured BBB server in the status.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ServerSummary {
    /// Its config name.
    pub name: String,
    /// Its Event Socket's state (`Up`, `Connecting`, `DownGrace`, `Down`); `None` without `esl`.
    pub event_socket: Option<String>,
    /// Conferences it runs as the live directory knows them; `None` without `esl`.
    pub conferences: Option<usize>,
    /// Whether it takes new calls (`Up`, `Quiet`, `Down`; from its Event Socket and OPTIONS
    /// probes); `None` when neither watches it.
    #[serde(default)]
    pub health: Option<String>,
}

impl ServerSummary {
    fn render(&self) -> String {
        let health = self
            .health
            .as_deref()
            .map(|h| format!(", {h}"))
            .unwrap_or_default();
        match (&self.event_socket, self.conferences) {
            (Some(state), Some(n)) => {
                format!(
                    "{} (Event Socket {state}, {n} conferences{health})",
                    self.name
                )
            }
            _ if !health.is_empty() => format!("{} ({})", self.name, &health[2..]),
            _ => self.name.clone(),
        }
    }
}

impl OpsState {
    /// The status now.
    pub fn status(&self) -> Status {
        let stats = &self.ctx.stats;
        Status {
            version: env!("CARGO_PKG_VERSION").to_string(),
            uptime_secs: self.started.elapsed().as_secs(),
            draining: self.ctx.lifecycle.is_draining(),
            active_calls: stats.active.load(Ordering::Relaxed) as u64,
            calls_started: stats.started.load(Ordering::Relaxed),
            calls_bridged: stats.bridged.load(Ordering::Relaxed),
            echo_tests: stats.echo_tests.load(Ordering::Relaxed),
            calls_refused: CallsRefused::of(self),
            rtp_port_pairs_in_use: self.ctx.ports.in_use() as u64,
            sip_dialogs: self.ctx.dialog_layer.len() as u64,
            sip_sources_rejected: self.filter_stats.rejected.load(Ordering::Relaxed),
            servers: self.servers(),
            registrations: self.registrations(),
        }
    }

    /// Each registering trunk and whether it is registered now.
    pub fn registrations(&self) -> Vec<RegistrationSummary> {
        self.registrations
            .states()
            .map(|(trunk, state)| RegistrationSummary {
                trunk: trunk.to_string(),
                up: state == RegState::Registered,
            })
            .collect()
    }

    /// The SIGUSR1 status line: counts, trunk and server names only.
    pub fn status_line(&self) -> String {
        let mut line = self.ctx.status_line();
        for (reason, n) in CallsRefused::of(self).reasons() {
            line.push_str(&format!(" refused_{reason}={n}"));
        }
        let registrations = self.registrations();
        line.push_str(&format!(
            " sip_sources_rejected={} sip_rate_limited={} registrations_up={} registrations={}",
            self.filter_stats.rejected(),
            self.filter_stats.rate_limited(),
            registrations.iter().filter(|r| r.up).count(),
            registrations.len(),
        ));
        for r in &registrations {
            line.push_str(&format!(" registration_{}={}", r.trunk, u8::from(r.up)));
        }
        line
    }

    /// The configured servers with their Event Socket state where they have one.
    fn servers(&self) -> Vec<ServerSummary> {
        let view = self.ctx.directory_view();
        let live = view
            .as_ref()
            .map(|v| v.servers(Instant::now()))
            .unwrap_or_default();
        let names = self.servers.read().unwrap_or_else(|e| e.into_inner());
        names
            .iter()
            .map(|name| {
                let watched = live.iter().find(|s| &s.name == name);
                ServerSummary {
                    name: name.to_string(),
                    event_socket: watched.map(|s| format!("{:?}", s.state)),
                    conferences: watched.map(|s| s.conferences),
                    health: view
                        .as_ref()
                        .map(|v| format!("{:?}", v.health(name, Instant::now()))),
                }
            })
            .collect()
    }
}

impl Status {
    /// The human-readable summary `dialin status` prints.
    pub fn render(&self) -> String {
        let servers = if self.servers.is_empty() {
            "none (echo test only)".to_string()
        } else {
            let all: Vec<String> = self.servers.iter().map(ServerSummary::render).collect();
            all.join(", ")
        };
        let refused = self
            .calls_refused
            .reasons()
            .iter()
            .map(|(reason, n)| format!("{n} {reason}"))
            .collect::<Vec<_>>()
            .join(", ");
        let registrations = if self.registrations.is_empty() {
            String::new()
        } else {
            let all: Vec<String> = self
                .registrations
                .iter()
                .map(|r| format!("{} {}", r.trunk, if r.up { "up" } else { "DOWN" }))
                .collect();
            format!("; registrations: {}", all.join(", "))
        };
        format!(
            "dialin {version}, up {up}{draining}\n\
             calls:   {active} active, {started} since start, {bridged} bridged, {echo} echo tests\n\
             refused: {refused}\n\
             media:   {pairs} RTP port pairs in use, {dialogs} SIP dialogs\n\
             trunk:   {rejected} requests refused by source address{registrations}\n\
             servers: {servers}\n",
            version = self.version,
            up = human_duration(self.uptime_secs),
            draining = if self.draining { ", DRAINING" } else { "" },
            active = self.active_calls,
            started = self.calls_started,
            bridged = self.calls_bridged,
            echo = self.echo_tests,
            refused = refused,
            registrations = registrations,
            pairs = self.rtp_port_pairs_in_use,
            dialogs = self.sip_dialogs,
            rejected = self.sip_sources_rejected,
        )
    }
}

/// `3d 4h`, `2h 5m`, `5m 3s`, `42s`.
fn human_duration(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m {s}s"),
        (0, _, _) => format!("{h}h {m}m"),
        _ => format!("{d}d {h}h"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_a_short_summary() {
        let s = Status {
            version: "0.1.0".into(),
            uptime_secs: 3700,
            draining: true,
            active_calls: 2,
            calls_started: 10,
            calls_bridged: 7,
            echo_tests: 2,
            calls_refused: CallsRefused {
                max_calls: 3,
                draining: 1,
                ..CallsRefused::default()
            },
            rtp_port_pairs_in_use: 8,
            sip_dialogs: 4,
            sip_sources_rejected: 1,
            servers: vec![
                ServerSummary {
                    name: "bbb1".into(),
                    event_socket: Some("Up".into()),
                    conferences: Some(3),
                    health: Some("Up".into()),
                },
                ServerSummary {
                    name: "bbb2".into(),
                    event_socket: None,
                    conferences: None,
                    health: Some("Down".into()),
                },
            ],
            registrations: vec![
                RegistrationSummary {
                    trunk: "prov1".into(),
                    up: true,
                },
                RegistrationSummary {
                    trunk: "prov2".into(),
                    up: false,
                },
            ],
        };
        let text = s.render();
        assert!(
            text.starts_with("dialin 0.1.0, up 1h 1m, DRAINING\n"),
            "{text}"
        );
        assert!(
            text.contains("2 active, 10 since start, 7 bridged, 2 echo tests"),
            "{text}"
        );
        assert!(
            text.contains("refused: 3 max_calls, 0 trunk_max_calls, 0 max_ivr_calls, 0 rtp_ports, 0 rate, 1 draining\n"),
            "{text}"
        );
        assert!(text.contains("8 RTP port pairs in use"), "{text}");
        assert!(
            text.contains("; registrations: prov1 up, prov2 DOWN\n"),
            "{text}"
        );
        assert!(
            text.contains("servers: bbb1 (Event Socket Up, 3 conferences, Up), bbb2 (Down)"),
            "{text}"
        );
        assert_eq!(human_duration(42), "42s");
        assert_eq!(human_duration(90_000), "1d 1h");
    }

    #[test]
    fn reads_the_status_of_an_instance_not_yet_upgraded() {
        let old = r#"{"version":"0.1.0","uptime_secs":5,"draining":false,"active_calls":1,
            "calls_started":3,"calls_bridged":2,"rtp_ports_in_use":2,"sip_dialogs":1,
            "sip_sources_rejected":0,"servers":[]}"#;
        let s: Status = serde_json::from_str(old).unwrap();
        assert_eq!(s.rtp_port_pairs_in_use, 2);
        assert_eq!((s.echo_tests, s.calls_refused.total()), (0, 0));
        assert!(s.registrations.is_empty());
    }
}
