//! `dialin serve`: wires the configuration into the SIP edge and the call layer, then runs
//! until SIGTERM or SIGINT. SIGUSR1 logs a status line (counts only).

use crate::call::context::{CallContext, CallStats, Prompts};
use crate::call::driver::spawn_call;
use crate::call::flow::FlowSettings;
use crate::call::pin::PinSettings;
use crate::config::Config;
use crate::media::ports::PortPool;
use crate::privacy::ledger::MemoryLedger;
use crate::privacy::Privacy;
use crate::routing::Router;
use crate::sip::edge::{dispatch, CallAcceptor, EdgeSettings, SipEdge};
use crate::sip::source_filter::RejectMode;
use crate::sounds::load_prompts;
use anyhow::Context;
use rsipstack::transaction::Transaction;
use std::sync::Arc;
use tokio::signal::unix::{signal, SignalKind};
use tracing::info;

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
        trunk_allow: config.trunk.acl(),
        reject: match config.trunk.reject {
            crate::config::TrunkReject::Forbidden => RejectMode::Forbidden,
            crate::config::TrunkReject::Silence => RejectMode::Silence,
        },
        servers: config.servers.iter().map(|s| s.sip.ip()).collect(),
    })
    .await?;
    let ctx = Arc::new(CallContext {
        dialog_layer: edge.dialog_layer.clone(),
        contact: edge.contact(),
        advertise: edge.advertise,
        rtp_bind: config.sip.listen.ip(),
        sip_port: edge.local_addr.port(),
        router: Router::new(&config),
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
        },
        answer_delay: config.sip.answer_delay,
        media_timeout: config.media.timeout,
        stats: CallStats::default(),
        privacy: Arc::new(Privacy::new(
            config.privacy.caller_id.clone(),
            config.privacy.pseudonym_rotation,
            std::time::Instant::now(),
        )),
        ledger: Arc::new(MemoryLedger::new(config.abuse)),
    });

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
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = usr1.recv() => info!("status: {}", status(&ctx, &edge)),
        }
    }
    info!("stopping: {}", status(&ctx, &edge));
    edge.cancel.cancel();
    Ok(())
}

fn status(ctx: &CallContext, edge: &SipEdge) -> String {
    format!(
        "{} sip_sources_rejected={}",
        ctx.status_line(),
        edge.filter_stats
            .rejected
            .load(std::sync::atomic::Ordering::Relaxed)
    )
}
