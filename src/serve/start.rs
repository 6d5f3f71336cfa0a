//! Starting `serve`'s parts from the configuration: the SIP edge's settings, the Event Socket
//! tasks and live directory, the PIN store and its watcher, guessing protection's ledger, the
//! admin listener and the readiness checks.

use crate::call::admission::Limits;
use crate::config::Config;
use crate::esl::client::{ClientSettings, EslHandle};
use crate::esl::session::SessionSettings;
use crate::ids::ServerName;
use crate::ops::drain::Lifecycle;
use crate::ops::health::{FnCheck, NotReady, ReadinessCheck};
use crate::privacy::ledger::MemoryLedger;
use crate::privacy::shared::SharedLedger;
use crate::privacy::Privacy;
use crate::routing::directory::EslState;
use crate::routing::shared_directory::SharedDirectory;
use crate::serve::http;
use crate::serve::reload::LiveParts;
use crate::serve::status::OpsState;
use crate::sip::edge::{EdgeSettings, SipEdge};
use crate::sip::limits::Rate;
use crate::sip::source_filter::RejectMode;
use crate::store::Store;
use anyhow::Context;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::{info, warn};

/// The SIP edge's settings from `[sip]`, `[trunk]`, `[[trunks]]`, `[limits]` and the servers.
pub(super) fn edge_settings(config: &Config) -> EdgeSettings {
    EdgeSettings {
        listen: config.sip.listen,
        advertise: config.sip.advertise,
        user_agent: config.sip.user_agent.clone(),
        trunks: config.trunk_table(),
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
        connections: conn_limit_settings(config),
    }
}

/// The connection caps and idle timeout of `[limits]`, for SIP and (separately counted) admin.
pub(super) fn conn_limit_settings(config: &Config) -> crate::sip::conn_limits::ConnLimitSettings {
    crate::sip::conn_limits::ConnLimitSettings {
        per_source: config.limits.tcp_per_source,
        total: config.limits.tcp_total,
        idle: config.limits.tcp_idle,
    }
}

/// The readiness checks: the SIP listener is up, the PIN store answers, some Event Socket is
/// connected (when any is configured), and no drain is running.
pub(super) fn readiness_checks(
    edge: &SipEdge,
    live: &LiveParts,
    lifecycle: &Arc<Lifecycle>,
    store: &Store,
) -> Vec<Arc<dyn ReadinessCheck>> {
    let store = store.clone();
    let drain_check = lifecycle.clone();
    let sip_stopped = edge.cancel.clone();
    let esl_view = live.directory.as_ref().map(|d| d.view());
    vec![
        // Bound before this point (or serve would have failed), until the edge stops.
        FnCheck::shared("sip_listener", move || {
            if sip_stopped.is_cancelled() {
                Err(NotReady::SipListenerStopped)
            } else {
                Ok(())
            }
        }),
        FnCheck::shared("store", move || {
            if store.is_reachable() {
                Ok(())
            } else {
                Err(NotReady::StoreUnreachable)
            }
        }),
        FnCheck::shared("event_socket", move || match &esl_view {
            // Without Event Sockets, calls are routed from the configuration alone.
            None => Ok(()),
            Some(view) => {
                let servers = view.servers(Instant::now());
                // A directory that only probes (no server has `esl`) watches no socket.
                if servers.is_empty() || servers.iter().any(|s| s.state == EslState::Up) {
                    Ok(())
                } else {
                    Err(NotReady::NoEventSocket)
                }
            }
        }),
        FnCheck::shared("not_draining", move || {
            if drain_check.is_draining() {
                Err(NotReady::Draining)
            } else {
                Ok(())
            }
        }),
    ]
}

/// How often a cluster instance exchanges abuse counters with the others.
const LEDGER_SYNC: std::time::Duration = std::time::Duration::from_secs(1);

/// Guessing protection's state: in memory for a single instance (SQLite store), shared through
/// the database for a cluster (PostgreSQL store), with the pseudonym key shared too.
pub(super) fn start_ledger(
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
    // Callers of one conference are numbered (`Phone N`) by the cluster, not per instance.
    privacy.share_sequences(Arc::new(store.clone()));
    info!("guessing protection shared with the cluster through PostgreSQL (and caller numbering)");
    shared
}

/// Opens the PIN store and keeps the live mappings (shared by every router, reloaded or not)
/// current. A PostgreSQL store that does not answer does not stop dialin: it starts with the
/// config-file `[[pins]]`, `/readyz` names the store until it answers, and a task keeps trying
/// ([`STORE_RETRY_MAX`] apart at most). A SQLite store is a local file: failing to open it is
/// a setup error to fix now, so serve stops and says why.
pub(super) async fn start_store(config: &Config, live: &LiveParts) -> anyhow::Result<Store> {
    let at = config.store.location()?;
    let store = match Store::open_configured(&at).await {
        Ok(store) => store,
        Err(e) if e.may_come_later() => {
            warn!(
                store = at.kind(),
                location = %at,
                "{e}; dialin starts without it: the config-file [[pins]] work, /readyz answers 503 naming the store until it answers"
            );
            let store = Store::open_later(&at)?;
            tokio::spawn(follow_store_when_it_answers(
                store.clone(),
                live.store.clone(),
            ));
            return Ok(store);
        }
        Err(e) => return Err(e.into()),
    };
    let rx = crate::store::watch::watch(store.clone(), crate::store::watch::POLL_INTERVAL)
        .await
        .context("cannot read the PIN store")?;
    follow_store(&store, rx, live.store.clone());
    Ok(store)
}

/// The longest wait between two attempts to reach a store that did not answer at start.
const STORE_RETRY_MAX: Duration = Duration::from_secs(10);

/// Tries to reach `store` until it answers (migrating it, reading its mappings), then follows
/// it as if it had answered at start.
async fn follow_store_when_it_answers(
    store: Store,
    mappings: crate::store::shared_mappings::SharedMappings,
) {
    let mut wait = Duration::from_millis(500);
    loop {
        tokio::time::sleep(wait).await;
        let result = async {
            store.migrate().await?;
            crate::store::watch::watch(store.clone(), crate::store::watch::POLL_INTERVAL).await
        }
        .await;
        match result {
            Ok(rx) => {
                follow_store(&store, rx, mappings);
                return;
            }
            Err(_) => {
                store.set_reachable(false);
                crate::store_errors::store_error("mappings");
                wait = (wait * 2).min(STORE_RETRY_MAX);
            }
        }
    }
}

/// Puts the store's mappings in force and keeps them current from `rx`.
fn follow_store(
    store: &Store,
    mut rx: tokio::sync::watch::Receiver<Arc<Vec<crate::store::model::Mapping>>>,
    mappings: crate::store::shared_mappings::SharedMappings,
) {
    mappings.replace(&rx.borrow_and_update());
    info!(
        store = store.kind(),
        location = %store.location(),
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
}

/// Starts the admin API if `[admin] listen` is set: the PIN routes and the operations API behind
/// the token, metrics and health without.
pub(super) async fn start_admin(
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
        rules: Arc::new(config.store_rules()),
        config_pins: Arc::new(config.pins.clone()),
    });
    let app = crate::admin::build(
        token,
        vec![pins, http::api_routes(ops.clone())],
        vec![http::public_routes(ops.clone())],
    );
    crate::admin::serve(addr, app, conn_limit_settings(config), cancel).await?;
    Ok(())
}

/// The call limits of `config`, per trunk in [`crate::sip::trunks::TrunkTable`] order (named trunks, then default).
pub(super) fn limits(config: &Config) -> Limits {
    let mut per_trunk: Vec<Option<usize>> = config.trunks.iter().map(|t| t.max_calls).collect();
    per_trunk.push(config.trunk.max_calls);
    Limits {
        max_calls: config.limits.max_calls,
        max_ivr: config.limits.max_ivr_calls,
        per_trunk,
    }
}

/// The live directory and one Event Socket task per server that has `esl`. Without any `esl`
/// and without `[probes]` there is no directory (routing from the configuration alone); with
/// probes only, a directory that watches no socket holds the probes' verdicts. The health
/// clock (subscribers hear of a grace period's end) runs with it.
pub(super) fn watch_servers(
    config: &Config,
    cancel: &tokio_util::sync::CancellationToken,
) -> (Option<SharedDirectory>, HashMap<ServerName, EslHandle>) {
    let watched: Vec<_> = config
        .servers
        .iter()
        .filter_map(|s| s.esl.as_ref().map(|e| (s.name.clone(), e.clone())))
        .collect();
    if watched.is_empty() && config.probes.is_none() {
        return (None, HashMap::new());
    }
    let names: Vec<ServerName> = watched.iter().map(|(n, _)| n.clone()).collect();
    let directory = SharedDirectory::new(&names, config.esl.grace);
    directory.spawn_health_clock(cancel.clone());
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
            backoff_min: crate::esl::client::BACKOFF_MIN,
            backoff_max: crate::esl::client::BACKOFF_MAX,
        };
        let handle = crate::esl::client::spawn(settings, idx, directory.clone(), cancel.clone());
        handles.insert(name, handle);
    }
    (Some(directory), handles)
}

/// Starts the OPTIONS probes of `[probes]` (if set) to every server, through `endpoint`.
pub(super) fn start_probes(
    config: &Config,
    endpoint: rsipstack::transaction::endpoint::EndpointInnerRef,
    local: std::net::SocketAddr,
    directory: Option<&SharedDirectory>,
    cancel: &tokio_util::sync::CancellationToken,
) {
    let (Some(settings), Some(directory)) = (config.probes, directory) else {
        return;
    };
    let targets = config
        .servers
        .iter()
        .map(|s| super::probes::ProbeTarget {
            name: s.name.clone(),
            addr: s.sip,
        })
        .collect();
    super::probes::spawn_probes(
        endpoint,
        local,
        settings,
        targets,
        directory.clone(),
        cancel.clone(),
    );
}
