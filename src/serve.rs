//! `dialin serve`: wires the configuration into the SIP edge and the call layer, then runs
//! until SIGTERM or SIGINT. SIGUSR1 logs a status line (counts only).

use crate::call::admission::{Admission, Limits};
use crate::call::context::{CallContext, CallStats, Prompts};
use crate::call::driver::spawn_call;
use crate::call::flow::FlowSettings;
use crate::call::pin::PinSettings;
use crate::config::Config;
use crate::esl::client::{ClientSettings, EslHandle};
use crate::esl::session::SessionSettings;
use crate::media::ports::PortPool;
use crate::privacy::ledger::MemoryLedger;
use crate::privacy::shared::SharedLedger;
use crate::privacy::Privacy;
use crate::routing::live::LiveDirectory;
use crate::routing::Router;
use crate::sip::edge::{dispatch, CallAcceptor, EdgeSettings, SipEdge};
use crate::sip::limits::Rate;
use crate::sip::register::{spawn_registrations, RegistrationStatus};
use crate::sip::source_filter::RejectMode;
use crate::sip::trunks::TrunkTable;
use crate::sounds::load_prompts;
use crate::store::Store;
use anyhow::Context;
use rsipstack::transaction::Transaction;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::signal::unix::{signal, SignalKind};
use tracing::{info, warn};

struct Calls(Arc<CallContext>);

impl CallAcceptor for Calls {
    fn accept_call(&self, tx: Transaction) {
        spawn_call(self.0.clone(), tx);
    }
}

/// Runs the bridge with `config` until a termination signal.
pub async fn run(config: Config) -> anyhow::Result<()> {
    let prompts = Prompts::new(load_prompts(&config.ivr).context("cannot load the IVR prompts")?);
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
    let (router, esl) = watch_servers(&config, &cancel);
    let store = start_store(&config, &router).await?;
    start_admin(&config, &store, cancel.clone()).await?;
    let privacy = Arc::new(Privacy::new(
        config.privacy.caller_id.clone(),
        config.privacy.pseudonym_rotation,
        std::time::Instant::now(),
    ));
    let ledger = start_ledger(&config, &store, &privacy);
    let ctx = Arc::new(CallContext {
        dialog_layer: edge.dialog_layer.clone(),
        contact: edge.contact(),
        tls_contact: edge.tls_contact(),
        advertise: edge.advertise,
        rtp_bind: config.sip.listen.ip(),
        sip_port: edge.local_addr.port(),
        router,
        meetings: Arc::new(crate::bbb_api::BbbApis::new(config.bbb_api.clone())),
        prompts,
        ports,
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
        session_min_se: config.sip.session_min_se,
        early_media: config.sip.early_media,
        media_timeout: config.media.timeout,
        stats: CallStats::default(),
        privacy,
        ledger,
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
    info!(
        listen = %edge.local_addr,
        servers = config.servers.len(),
        language = config.ivr.language.code(),
        "dialin listening (UDP and TCP)"
    );

    let mut term = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot watch SIGINT")?;
    let mut usr1 = signal(SignalKind::user_defined1()).context("cannot watch SIGUSR1")?;
    let mut hup = signal(SignalKind::hangup()).context("cannot watch SIGHUP")?;
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = usr1.recv() => info!("status: {}", status(&ctx, &edge, &registrations.status)),
            _ = hup.recv() => reload_tls(&edge).await,
        }
    }
    info!("stopping: {}", status(&ctx, &edge, &registrations.status));
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

/// Opens the PIN store and keeps the router's copy of its mappings current.
async fn start_store(config: &Config, router: &Router) -> anyhow::Result<Store> {
    let store = Store::open_configured(&config.store).await?;
    let mut rx = crate::store::watch::watch(store.clone(), crate::store::watch::POLL_INTERVAL)
        .await
        .context("cannot read the PIN store")?;
    let live = router.store_mappings();
    live.replace(&rx.borrow_and_update());
    info!(
        store = store.kind(),
        mappings = live.len(),
        "PIN store open"
    );
    tokio::spawn(async move {
        while rx.changed().await.is_ok() {
            let mappings = rx.borrow_and_update().clone();
            live.replace(&mappings);
            info!(mappings = mappings.len(), "PIN mappings updated");
        }
    });
    Ok(store)
}

/// Starts the admin API if `[admin] listen` is set.
async fn start_admin(
    config: &Config,
    store: &Store,
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
    let app = crate::admin::build(token, vec![pins], Vec::new());
    crate::admin::serve(addr, app, cancel).await?;
    Ok(())
}

/// The router, with a live directory and one Event Socket task per server that has `esl`.
fn watch_servers(
    config: &Config,
    cancel: &tokio_util::sync::CancellationToken,
) -> (Router, HashMap<String, EslHandle>) {
    let watched: Vec<_> = config
        .servers
        .iter()
        .filter_map(|s| s.esl.as_ref().map(|e| (s.name.clone(), e.clone())))
        .collect();
    let router = Router::new(config);
    if watched.is_empty() {
        return (router, HashMap::new());
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
    (router.with_directory(directory), handles)
}

/// SIGHUP: reloads the TLS certificate and key (when TLS is on); a broken file keeps the old
/// certificate in use.
async fn reload_tls(edge: &SipEdge) {
    if let Some(reloader) = &edge.tls_reloader {
        match reloader.reload().await {
            Ok(()) => info!("TLS certificate reloaded"),
            Err(e) => {
                tracing::warn!(error = %e, "TLS certificate not reloaded; the old one stays in use")
            }
        }
    }
}

fn status(ctx: &CallContext, edge: &SipEdge, registrations: &RegistrationStatus) -> String {
    format!(
        "{} sip_sources_rejected={} sip_rate_limited={} registrations_up={} registrations={}",
        ctx.status_line(),
        edge.filter_stats.rejected(),
        edge.filter_stats.rate_limited(),
        registrations.registered(),
        registrations.total(),
    )
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
