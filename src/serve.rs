//! `dialin serve`: wires the configuration into the SIP edge, the call layer, the PIN store and
//! the admin listener, then runs until a drain ends. SIGTERM/SIGINT (or `dialin drain`) start a drain (a
//! second one ends the calls now), SIGHUP reloads the configuration, SIGUSR1 logs a status line
//! (counts only).

use crate::call::admission::{Admission, Limits};
use crate::call::context::{CallContext, CallStats};
use crate::call::driver::spawn_call;
use crate::config::Config;
use crate::esl::client::{ClientSettings, EslHandle};
use crate::esl::session::SessionSettings;
use crate::media::ports::PortPool;
use crate::ops::calls::CallRegistry;
use crate::ops::drain::{DrainPlan, DrainStep, Lifecycle};
use crate::ops::health::FnCheck;
use crate::ops::notify::Notifier;
use crate::ops::reload::{call_settings, reload, LiveParts};
use crate::ops::status::OpsState;
use crate::ops::{http, metrics};
use crate::privacy::ledger::MemoryLedger;
use crate::privacy::shared::SharedLedger;
use crate::privacy::Privacy;
use crate::routing::directory::EslState;
use crate::routing::live::LiveDirectory;
use crate::sip::edge::{dispatch, reply_unavailable, CallAcceptor, EdgeSettings, SipEdge};
use crate::sip::limits::Rate;
use crate::sip::register::{spawn_registrations, RegistrationStatus};
use crate::sip::source_filter::RejectMode;
use crate::sip::trunks::TrunkTable;
use crate::store::Store;
use anyhow::Context;
use rsipstack::transaction::Transaction;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};
use tokio::signal::unix::{signal, Signal, SignalKind};
use tracing::{error, info, warn};

struct Calls(Arc<CallContext>);

impl CallAcceptor for Calls {
    fn accept_call(&self, tx: Transaction) {
        let lifecycle = &self.0.lifecycle;
        if lifecycle.is_draining() {
            metrics::call_ended("draining");
            tokio::spawn(reply_unavailable(tx, lifecycle.retry_after_secs()));
        } else {
            spawn_call(self.0.clone(), tx);
        }
    }

    fn refusing(&self) -> Option<u32> {
        let lifecycle = &self.0.lifecycle;
        lifecycle
            .is_draining()
            .then(|| lifecycle.retry_after_secs())
    }
}

/// How often the drain looks at the number of active calls.
const DRAIN_POLL: Duration = Duration::from_millis(200);

/// Runs the bridge with `config` (read from `path`, which SIGHUP reads again) until a drain ends.
pub async fn run(config: Config, path: Option<PathBuf>) -> anyhow::Result<()> {
    let notifier = Notifier::from_env();
    let metrics_handle = match metrics::install() {
        Ok(h) => Some(h),
        Err(e) => {
            warn!(error = %e, "metrics are off");
            None
        }
    };
    let (rtp_lo, rtp_hi) = config.media.rtp_ports;
    let ports = PortPool::new(rtp_lo..=rtp_hi).context("media.rtp_ports")?;
    let edge = SipEdge::bind(EdgeSettings {
        listen: config.sip.listen,
        advertise: config.sip.advertise,
        user_agent: config.sip.user_agent.clone(),
        trunks: TrunkTable::from_config(&config),
        rate: Rate {
            per_second: config.limits.sip_rate,
            burst: config.limits.sip_burst,
        },
        retry_after: config.limits.retry_after,
        reject: match config.trunk.reject {
            crate::config::TrunkReject::Forbidden => RejectMode::Forbidden,
            crate::config::TrunkReject::Silence => RejectMode::Silence,
        },
        servers: config.servers.iter().map(|s| s.sip.ip()).collect(),
        tls: config.sip.tls.clone(),
    })
    .await?;
    let cancel = tokio_util::sync::CancellationToken::new();
    let (directory, esl) = watch_servers(&config, &cancel);
    let live = LiveParts {
        directory,
        store: Default::default(),
    };
    let settings = call_settings(&config, &live).context("cannot load the IVR prompts")?;
    let store = start_store(&config, &live).await?;
    let privacy = Arc::new(Privacy::new(
        config.privacy.caller_id.clone(),
        config.privacy.pseudonym_rotation,
        std::time::Instant::now(),
    ));
    let ledger = start_ledger(&config, &store, &privacy);
    let lifecycle = Arc::new(Lifecycle::new(config.lifecycle.retry_after));
    let ctx = Arc::new(CallContext {
        dialog_layer: edge.dialog_layer.clone(),
        contact: edge.contact(),
        tls_contact: edge.tls_contact(),
        advertise: edge.advertise,
        rtp_bind: config.sip.listen.ip(),
        sip_port: edge.local_addr.port(),
        settings: RwLock::new(Arc::new(settings)),
        meetings: Arc::new(crate::bbb_api::BbbApis::new(config.bbb_api.clone())),
        ports,
        session_min_se: config.sip.session_min_se,
        early_media: config.sip.early_media,
        stats: CallStats::default(),
        privacy,
        ledger,
        lifecycle: lifecycle.clone(),
        calls: CallRegistry::default(),
        esl,
        admission: Admission::new(&limits(&config)),
        trunks: TrunkTable::from_config(&config),
        retry_after: config.limits.retry_after,
        srtp: config
            .trunks
            .iter()
            .map(|t| t.srtp)
            .chain([config.trunk.srtp])
            .collect(),
    });

    let registrations = spawn_registrations(
        edge.endpoint.inner.clone(),
        std::net::SocketAddr::new(edge.advertise, edge.local_addr.port()),
        config
            .trunks
            .iter()
            .filter_map(|t| Some((t.name.clone(), t.register.clone()?)))
            .collect(),
    );

    let incoming = edge.incoming();
    let endpoint = edge.endpoint.inner.clone();
    tokio::spawn(async move {
        endpoint.serve().await.ok();
    });
    tokio::spawn(dispatch(
        incoming,
        edge.dialog_layer.clone(),
        Arc::new(Calls(ctx.clone())),
    ));
    let drain_check = lifecycle.clone();
    let sip_stopped = edge.cancel.clone();
    let esl_view = live.directory.as_ref().map(|d| d.view());
    let ops = Arc::new(OpsState {
        ctx: ctx.clone(),
        filter_stats: edge.filter_stats.clone(),
        servers: RwLock::new(server_names(&config)),
        metrics: metrics_handle,
        checks: vec![
            // Bound before this point (or serve would have failed), until the edge stops.
            FnCheck::shared("sip_listener", move || {
                if sip_stopped.is_cancelled() {
                    Err("the SIP listener has stopped".into())
                } else {
                    Ok(())
                }
            }),
            FnCheck::shared("event_socket", move || match &esl_view {
                // Without Event Sockets, calls are routed from the configuration alone.
                None => Ok(()),
                Some(view) => {
                    let servers = view.servers(Instant::now());
                    if servers.iter().any(|s| s.state == EslState::Up) {
                        Ok(())
                    } else {
                        Err("no server's Event Socket is connected".into())
                    }
                }
            }),
            FnCheck::shared("not_draining", move || {
                if drain_check.is_draining() {
                    Err("draining: new calls go elsewhere".into())
                } else {
                    Ok(())
                }
            }),
        ],
        started: Instant::now(),
    });
    start_admin(&config, &store, &ops, cancel.clone()).await?;
    info!(
        listen = %edge.local_addr,
        servers = config.servers.len(),
        language = config.ivr.language.code(),
        "dialin listening (UDP and TCP)"
    );
    notifier.notify("READY=1");
    if let Some(every) = notifier.watchdog_interval() {
        tokio::spawn(watchdog(every, ops.clone()));
    }

    let mut signals = Signals::new()?;
    let mut config = config;
    // Running: until a drain starts.
    loop {
        tokio::select! {
            _ = signals.term.recv() => { lifecycle.start_drain(); }
            _ = signals.int.recv() => { lifecycle.start_drain(); }
            _ = lifecycle.drain_requested() => {}
            _ = signals.usr1.recv() => { info!("status: {}", status(&ops, &edge, &registrations.status)); continue; }
            _ = signals.hup.recv() => { on_reload(&mut config, path.as_deref(), &ops, &edge, &notifier, &live).await; continue; }
        }
        break;
    }
    notifier.notify("STOPPING=1");
    info!(
        drain_max = ?config.lifecycle.drain_max,
        "draining: new calls get 503; waiting for {} calls to end",
        ctx.stats.active.load(std::sync::atomic::Ordering::Relaxed)
    );
    let mut plan = DrainPlan::new(Instant::now(), config.lifecycle.drain_max);
    loop {
        let active = ctx.stats.active.load(std::sync::atomic::Ordering::Relaxed);
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
                lifecycle.end_calls();
                continue;
            }
            DrainStep::Wait(until) => until,
        };
        let wake = tokio::time::Instant::from_std(next.min(Instant::now() + DRAIN_POLL));
        tokio::select! {
            _ = tokio::time::sleep_until(wake) => {}
            _ = signals.term.recv() => plan.hurry(Instant::now()),
            _ = signals.int.recv() => plan.hurry(Instant::now()),
            _ = signals.usr1.recv() => info!("status: {}", status(&ops, &edge, &registrations.status)),
            _ = signals.hup.recv() => on_reload(&mut config, path.as_deref(), &ops, &edge, &notifier, &live).await,
        }
    }
    info!(
        "drained, stopping: {}",
        status(&ops, &edge, &registrations.status)
    );
    // Before the transports close: the providers stop sending calls at once.
    registrations.unregister_all(Duration::from_secs(2)).await;
    edge.cancel.cancel();
    cancel.cancel();
    store.close().await;
    Ok(())
}

/// How often a cluster instance exchanges abuse counters with the others.
const LEDGER_SYNC: std::time::Duration = std::time::Duration::from_secs(1);

/// Guessing protection's state: in memory for a single instance (SQLite store), shared through
/// the database for a cluster (PostgreSQL store), with the pseudonym key shared too.
fn start_ledger(
    config: &Config,
    store: &Store,
    privacy: &Arc<Privacy>,
) -> Arc<dyn crate::privacy::ledger::AttemptLedger> {
    if store.kind() != "postgres" {
        return Arc::new(MemoryLedger::new(config.abuse));
    }
    let shared = Arc::new(SharedLedger::new(config.abuse));
    // The task holds only a weak reference to the ledger and ends with it.
    shared.spawn_sync(
        Arc::new(store.clone()),
        privacy.clone(),
        config.privacy.pseudonym_rotation,
        LEDGER_SYNC,
    );
    info!("guessing protection shared with the cluster through PostgreSQL");
    shared
}

/// Opens the PIN store and keeps the live mappings (shared by every router, reloaded or not)
/// current.
async fn start_store(config: &Config, live: &LiveParts) -> anyhow::Result<Store> {
    let store = Store::open_configured(&config.store).await?;
    let mut rx = crate::store::watch::watch(store.clone(), crate::store::watch::POLL_INTERVAL)
        .await
        .context("cannot read the PIN store")?;
    let mappings = live.store.clone();
    mappings.replace(&rx.borrow_and_update());
    info!(
        store = store.kind(),
        mappings = mappings.len(),
        "PIN store open"
    );
    tokio::spawn(async move {
        while rx.changed().await.is_ok() {
            let current = rx.borrow_and_update().clone();
            mappings.replace(&current);
            info!(mappings = current.len(), "PIN mappings updated");
        }
    });
    Ok(store)
}

/// Starts the admin API if `[admin] listen` is set: the PIN routes and the operations API behind
/// the token, metrics and health without.
async fn start_admin(
    config: &Config,
    store: &Store,
    ops: &Arc<OpsState>,
    cancel: tokio_util::sync::CancellationToken,
) -> anyhow::Result<()> {
    let Some(addr) = config.admin.listen else {
        return Ok(());
    };
    let token = crate::admin::auth::load_token(&config.admin)?;
    if token.is_none() {
        warn!("no admin token configured (admin.token_file or admin.token_env): the admin API answers every /api/v1 request with 401");
    }
    let pins = crate::admin::pins::routes(crate::admin::pins::PinsState {
        store: store.clone(),
        rules: Arc::new(crate::store::model::Rules::from_config(config)),
        config_pins: Arc::new(config.pins.clone()),
    });
    let app = crate::admin::build(
        token,
        vec![pins, http::api_routes(ops.clone())],
        vec![http::public_routes(ops.clone())],
    );
    crate::admin::serve(addr, app, cancel).await?;
    Ok(())
}

/// The call limits of `config`, per trunk in [`TrunkTable`] order (named trunks, then default).
fn limits(config: &Config) -> Limits {
    let mut per_trunk: Vec<Option<usize>> = config.trunks.iter().map(|t| t.max_calls).collect();
    per_trunk.push(config.trunk.max_calls);
    Limits {
        max_calls: config.limits.max_calls,
        max_ivr: config.limits.max_ivr_calls,
        per_trunk,
    }
}

/// The live directory and one Event Socket task per server that has `esl` (none: no directory).
fn watch_servers(
    config: &Config,
    cancel: &tokio_util::sync::CancellationToken,
) -> (Option<LiveDirectory>, HashMap<String, EslHandle>) {
    let watched: Vec<_> = config
        .servers
        .iter()
        .filter_map(|s| s.esl.as_ref().map(|e| (s.name.clone(), e.clone())))
        .collect();
    if watched.is_empty() {
        return (None, HashMap::new());
    }
    let names: Vec<String> = watched.iter().map(|(n, _)| n.clone()).collect();
    let directory = LiveDirectory::new(&names, config.esl.grace);
    let mut handles = HashMap::new();
    for (idx, (name, esl)) in watched.into_iter().enumerate() {
        let settings = ClientSettings {
            name: name.clone(),
            addr: esl.addr,
            password: esl.password,
            session: SessionSettings {
                reply_timeout: config.esl.reply_timeout,
                keepalive: config.esl.keepalive,
            },
            max_frame: config.esl.max_frame,
            backoff_min: Duration::from_millis(500),
            backoff_max: Duration::from_secs(30),
        };
        let handle = crate::esl::client::spawn(settings, idx, directory.clone(), cancel.clone());
        handles.insert(name, handle);
    }
    (Some(directory), handles)
}

/// The signals `serve` reacts to.
struct Signals {
    term: Signal,
    int: Signal,
    usr1: Signal,
    hup: Signal,
}

impl Signals {
    fn new() -> anyhow::Result<Signals> {
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
async fn watchdog(every: Duration, ops: Arc<OpsState>) {
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

fn server_names(config: &Config) -> Vec<String> {
    config.servers.iter().map(|s| s.name.clone()).collect()
}

fn status(ops: &OpsState, edge: &SipEdge, registrations: &RegistrationStatus) -> String {
    format!(
        "{} sip_sources_rejected={} sip_rate_limited={} registrations_up={} registrations={}",
        ops.ctx.status_line(),
        edge.filter_stats.rejected(),
        edge.filter_stats.rate_limited(),
        registrations.registered(),
        registrations.total(),
    )
}
