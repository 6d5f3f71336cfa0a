//! What the admin API reports about a running instance: the shared state behind the routes,
//! and the status summary `dialin status` prints. Counts and names only.

use crate::call::context::CallContext;
use crate::ops::health::ReadinessCheck;
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
    pub servers: RwLock<Vec<String>>,
    /// The Prometheus recorder's handle; `None` if another recorder was installed first.
    pub metrics: Option<PrometheusHandle>,
    /// What `/readyz` asks.
    pub checks: Vec<Arc<dyn ReadinessCheck>>,
    /// When dialin started.
    pub started: Instant,
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
    /// Calls that reached a conference or the echo test.
    pub calls_bridged: u64,
    /// RTP ports in use.
    pub rtp_ports_in_use: u64,
    /// SIP dialogs held.
    pub sip_dialogs: u64,
    /// SIP requests refused by source address.
    pub sip_sources_rejected: u64,
    /// The configured BBB servers.
    pub servers: Vec<ServerSummary>,
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
}

impl ServerSummary {
    fn render(&self) -> String {
        match (&self.event_socket, self.conferences) {
            (Some(state), Some(n)) => {
                format!("{} (Event Socket {state}, {n} conferences)", self.name)
            }
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
            rtp_ports_in_use: self.ctx.ports.in_use() as u64,
            sip_dialogs: self.ctx.dialog_layer.len() as u64,
            sip_sources_rejected: self.filter_stats.rejected.load(Ordering::Relaxed),
            servers: self.servers(),
        }
    }

    /// The configured servers with their Event Socket state where they have one.
    fn servers(&self) -> Vec<ServerSummary> {
        let live = self
            .ctx
            .directory_view()
            .map(|v| v.servers(Instant::now()))
            .unwrap_or_default();
        let names = self.servers.read().unwrap_or_else(|e| e.into_inner());
        names
            .iter()
            .map(|name| {
                let watched = live.iter().find(|s| &s.name == name);
                ServerSummary {
                    name: name.clone(),
                    event_socket: watched.map(|s| format!("{:?}", s.state)),
                    conferences: watched.map(|s| s.conferences),
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
        format!(
            "dialin {version}, up {up}{draining}\n\
             calls:   {active} active, {started} since start, {bridged} bridged\n\
             media:   {ports} RTP ports in use, {dialogs} SIP dialogs\n\
             trunk:   {rejected} requests refused by source address\n\
             servers: {servers}\n",
            version = self.version,
            up = human_duration(self.uptime_secs),
            draining = if self.draining { ", DRAINING" } else { "" },
            active = self.active_calls,
            started = self.calls_started,
            bridged = self.calls_bridged,
            ports = self.rtp_ports_in_use,
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
            rtp_ports_in_use: 8,
            sip_dialogs: 4,
            sip_sources_rejected: 1,
            servers: vec![
                ServerSummary {
                    name: "bbb1".into(),
                    event_socket: Some("Up".into()),
                    conferences: Some(3),
                },
                ServerSummary {
                    name: "bbb2".into(),
                    event_socket: None,
                    conferences: None,
                },
            ],
        };
        let text = s.render();
        assert!(
            text.starts_with("dialin 0.1.0, up 1h 1m, DRAINING\n"),
            "{text}"
        );
        assert!(
            text.contains("2 active, 10 since start, 7 bridged"),
            "{text}"
        );
        assert!(
            text.contains("servers: bbb1 (Event Socket Up, 3 conferences), bbb2"),
            "{text}"
        );
        assert_eq!(human_duration(42), "42s");
        assert_eq!(human_duration(90_000), "1d 1h");
    }
}
