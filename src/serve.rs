//! `dialin serve`: wires the configuration into the SIP edge, the call layer, the PIN store and
//! the admin listener, then runs until a drain ends. SIGTERM/SIGINT (or `dialin drain`) start a drain (a
//! second one ends the calls now), SIGHUP reloads the configuration, SIGUSR1 logs a status line
//! (counts only).

mod control;
pub mod http;
mod probes;
pub mod refusals;
pub mod reload;
mod start;
pub mod status;

use control::{server_names, watchdog, Control, Signals};
use start::{limits, start_admin, start_ledger, start_store, watch_servers};

use crate::call::admission::Admission;
use crate::call::context::{CallContext, CallStats};
use crate::call::driver::spawn_call;
use crate::config::Config;
use crate::media::ports::PortPool;
use crate::media::relay::Shards;
use crate::ops::calls::CallRegistry;
use crate::ops::drain::Lifecycle;
use crate::ops::metrics;
use crate::ops::notify::Notifier;
use crate::privacy::Privacy;
use crate::serve::reload::{call_settings, LiveParts};
use crate::serve::status::OpsState;
use crate::sip::edge::{dispatch, reply_unavailable, CallAcceptor, SipEdge};
use crate::sip::register::spawn_registrations;
use anyhow::Context;
use rsipstack::transaction::Transaction;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};
use tracing::{info, warn};

struct Calls(Arc<CallContext>);

impl CallAcceptor for Calls {
    fn accept_call(&self, tx: Transaction) {
        let lifecycle = &self.0.lifecycle;
        if lifecycle.is_draining() {
            metrics::call_ended("draining");
            tokio::spawn(reply_unavailable(tx, lifecycle.refuse_call()));
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

/// Runs the bridge with `config` (read from `path`, which SIGHUP reads again) until a drain ends.
// Over 80 lines on purpose: the start-up order is read top to bottom here, and most of it is
// the `CallContext` literal; each part's logic lives in `start` and `control`.
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
    let edge = SipEdge::bind(start::edge_settings(&config)).await?;
    let cancel = tokio_util::sync::CancellationToken::new();
    let (directory, esl) = watch_servers(&config, &cancel);
    tokio::spawn(crate::ops::allocator::give_back_periodically(
        cancel.clone(),
    ));
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
    // The call shards (threads that relay RTP) live as long as this server, not the process.
    let shards = Arc::new(Shards::start());
    let ctx = Arc::new(CallContext {
        dialog_layer: edge.dialog_layer.clone(),
        dialog_events: crate::sip::dialog_events::DialogEvents::start(),
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
        trunks: config.trunk_table(),
        retry_after: config.limits.retry_after,
        srtp: config
            .trunks
            .iter()
            .map(|t| t.srtp)
            .chain([config.trunk.srtp])
            .collect(),
        shards: shards.clone(),
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

    start::start_probes(
        &config,
        edge.endpoint.inner.clone(),
        std::net::SocketAddr::new(edge.advertise, edge.local_addr.port()),
        live.directory.as_ref(),
        &cancel,
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
    let ops = Arc::new(OpsState {
        ctx: ctx.clone(),
        filter_stats: edge.filter_stats.clone(),
        servers: RwLock::new(server_names(&config)),
        metrics: metrics_handle,
        checks: start::readiness_checks(&edge, &live, &lifecycle, &store),
        started: Instant::now(),
        registrations: registrations.status.clone(),
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
    let control = Control {
        ops: &ops,
        edge: &edge,
        notifier: &notifier,
        live: &live,
        path: path.as_deref(),
        lifecycle: &lifecycle,
    };
    control.until_drain(&mut signals, &mut config).await;
    notifier.notify("STOPPING=1");
    control.drain(&mut signals, &mut config).await;
    info!("drained, stopping: {}", control.status());
    // Before the transports close: the providers stop sending calls at once.
    registrations.unregister_all(Duration::from_secs(2)).await;
    edge.cancel.cancel();
    cancel.cancel();
    // The calls have ended (or the drain gave up on them): stop the relay threads and wait
    // for them, off the async threads since joining blocks.
    tokio::task::spawn_blocking(move || shards.shutdown())
        .await
        .ok();
    store.close().await;
    Ok(())
}
