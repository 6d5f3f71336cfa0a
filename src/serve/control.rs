//! What a running `serve` reacts to until it stops: signals (drain, reload, status), the
//! systemd watchdog, and the drain itself (wait for calls to end, end them at the deadline).

use crate::config::Config;
use crate::ops::drain::{DrainPlan, DrainStep, Lifecycle};
use crate::ops::metrics;
use crate::ops::notify::Notifier;
use crate::serve::reload::{reload, LiveParts};
use crate::serve::status::OpsState;
use crate::sip::edge::SipEdge;
use anyhow::Context;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::signal::unix::{signal, Signal, SignalKind};
use tracing::{error, info, warn};

/// How often the drain looks at the number of active calls.
const DRAIN_POLL: Duration = Duration::from_millis(200);

/// The running instance as the signal handlers see it.
pub(super) struct Control<'a> {
    /// Settings, server names and health checks; `ops.ctx` counts the active calls.
    pub(super) ops: &'a Arc<OpsState>,
    /// The SIP edge: filter counters for status lines, the TLS certificate to reload.
    pub(super) edge: &'a SipEdge,
    /// Tells systemd about reloads.
    pub(super) notifier: &'a Notifier,
    /// The directory and PIN mappings every router shares, reloaded or not.
    pub(super) live: &'a LiveParts,
    /// The configuration file SIGHUP reads again (`None`: the embedded default).
    pub(super) path: Option<&'a Path>,
    /// Drain state: requested, calls ending.
    pub(super) lifecycle: &'a Lifecycle,
}

impl Control<'_> {
    /// The SIGUSR1 status line.
    pub(super) fn status(&self) -> String {
        self.ops.status_line()
    }

    /// SIGHUP: see [`on_reload`].
    async fn reload(&self, config: &mut Config) {
        on_reload(
            config,
            self.path,
            self.ops,
            self.edge,
            self.notifier,
            self.live,
        )
        .await;
    }

    /// Serves until a drain starts (SIGTERM, SIGINT or `dialin drain`), answering SIGUSR1 and
    /// SIGHUP meanwhile.
    pub(super) async fn until_drain(&self, signals: &mut Signals, config: &mut Config) {
        loop {
            tokio::select! {
                _ = signals.term.recv() => { self.lifecycle.start_drain(); }
                _ = signals.int.recv() => { self.lifecycle.start_drain(); }
                _ = self.lifecycle.drain_requested() => {}
                _ = signals.usr1.recv() => { info!("status: {}", self.status()); continue; }
                _ = signals.hup.recv() => { self.reload(config).await; continue; }
            }
            break;
        }
    }

    /// Waits for the calls to end, ends the rest at `lifecycle.drain_max` (at once on a second
    /// SIGTERM or SIGINT), and returns once none are left or they did not end in time.
    pub(super) async fn drain(&self, signals: &mut Signals, config: &mut Config) {
        let active = || {
            self.ops
                .ctx
                .stats
                .active
                .load(std::sync::atomic::Ordering::Relaxed)
        };
        info!(
            drain_max = ?config.lifecycle.drain_max,
            "draining: new calls get 503; waiting for {} calls to end",
            active()
        );
        let mut plan = DrainPlan::new(Instant::now(), config.lifecycle.drain_max);
        loop {
            let active = active();
            let next = match plan.step(Instant::now(), active) {
                DrainStep::Exit { left: 0 } => break,
                DrainStep::Exit { left } => {
                    warn!(
                        calls = left,
                        "calls did not end in time after the drain deadline; exiting anyway"
                    );
                    break;
                }
                DrainStep::EndCalls => {
                    info!(calls = active, "drain deadline: ending the remaining calls");
                    self.lifecycle.end_calls();
                    continue;
                }
                DrainStep::Wait(until) => until,
            };
            let wake = tokio::time::Instant::from_std(next.min(Instant::now() + DRAIN_POLL));
            tokio::select! {
                _ = tokio::time::sleep_until(wake) => {}
                _ = signals.term.recv() => plan.hurry(Instant::now()),
                _ = signals.int.recv() => plan.hurry(Instant::now()),
                _ = signals.usr1.recv() => info!("status: {}", self.status()),
                _ = signals.hup.recv() => self.reload(config).await,
            }
        }
    }
}

/// The signals `serve` reacts to.
pub(super) struct Signals {
    /// SIGTERM: start a drain (a second one ends the calls now).
    pub(super) term: Signal,
    /// SIGINT: as SIGTERM.
    pub(super) int: Signal,
    /// SIGUSR1: log a status line.
    pub(super) usr1: Signal,
    /// SIGHUP: reload the configuration.
    pub(super) hup: Signal,
}

impl Signals {
    /// Watches every signal `serve` reacts to.
    pub(super) fn new() -> anyhow::Result<Signals> {
        let watch = |kind: SignalKind, name: &str| {
            signal(kind).with_context(|| format!("cannot watch {name}"))
        };
        Ok(Signals {
            term: watch(SignalKind::terminate(), "SIGTERM")?,
            int: watch(SignalKind::interrupt(), "SIGINT")?,
            usr1: watch(SignalKind::user_defined1(), "SIGUSR1")?,
            hup: watch(SignalKind::hangup(), "SIGHUP")?,
        })
    }
}

/// SIGHUP: reads the configuration again (a broken one leaves the running one in force) and
/// the TLS certificate (a broken one keeps the old certificate in use).
async fn on_reload(
    config: &mut Config,
    path: Option<&std::path::Path>,
    ops: &OpsState,
    edge: &SipEdge,
    notifier: &Notifier,
    live: &LiveParts,
) {
    notifier.notify("RELOADING=1");
    if let Some(reloader) = &edge.tls_reloader {
        match reloader.reload().await {
            Ok(()) => info!("TLS certificate reloaded"),
            Err(e) => warn!(error = %e, "TLS certificate not reloaded; the old one stays in use"),
        }
    }
    match reload(path, config, live) {
        Ok(r) => {
            ops.ctx.replace_settings(r.settings);
            *ops.servers.write().unwrap_or_else(|e| e.into_inner()) = server_names(&r.config);
            if !r.restart_needed.is_empty() {
                warn!(
                    keys = %r.restart_needed.join(", "),
                    "configuration reloaded, but these changes take effect only after a restart"
                );
            }
            *config = r.config;
            ::metrics::counter!(metrics::RELOADS, "result" => "ok").increment(1);
            info!(
                servers = config.servers.len(),
                "configuration reloaded; new calls use it, calls in progress keep theirs"
            );
        }
        Err(e) => {
            ::metrics::counter!(metrics::RELOADS, "result" => "error").increment(1);
            error!("reload refused: {e}");
        }
    }
    notifier.notify("READY=1");
}

/// Sends `WATCHDOG=1` while the instance is healthy: the runtime still runs timers (a stuck
/// runtime stops the ticks) and the SIP listener is up. Not ready is not unhealthy: a
/// draining instance, or one whose FreeSWITCH servers are all down, must not be restarted by
/// systemd for it.
pub(super) async fn watchdog(every: Duration, ops: Arc<OpsState>) {
    let notifier = Notifier::from_env();
    let mut tick = tokio::time::interval(every);
    loop {
        tick.tick().await;
        let healthy = ops
            .checks
            .iter()
            .filter(|c| c.name() == "sip_listener")
            .all(|c| c.check().is_ok());
        if healthy {
            notifier.notify("WATCHDOG=1");
        }
    }
}

/// The configured servers' names, for the status and health answers.
pub(super) fn server_names(config: &Config) -> Vec<crate::ids::ServerName> {
    config.servers.iter().map(|s| s.name.clone()).collect()
}
