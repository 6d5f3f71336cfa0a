//! The tokio side of the OPTIONS probes: one task per `[[servers]]` entry sends SIP OPTIONS to
//! its `sip` address through the running rsipstack endpoint when its [`Prober`] says so, and
//! hands each verdict change to the directory, where a dead server gets no new calls
//! (issue 22). The probes carry nothing about any caller.

use crate::routing::probe::{ProbeSettings, Prober};
use crate::routing::shared_directory::SharedDirectory;
use rsipstack::sip::{Method, SipMessage, Transport};
use rsipstack::transaction::endpoint::EndpointInnerRef;
use rsipstack::transaction::key::{TransactionKey, TransactionRole};
use rsipstack::transaction::transaction::Transaction;
use rsipstack::transport::SipAddr;
use std::net::SocketAddr;
use std::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// One probed server.
#[derive(Clone, Debug)]
pub struct ProbeTarget {
    /// Its config name (logs, metrics, the directory).
    pub name: crate::ids::ServerName,
    /// Where its SIP goes.
    pub addr: SocketAddr,
}

/// Why one probe got no answer (logged at debug level only: the verdict is what counts).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProbeError {
    /// The OPTIONS could not be built or sent.
    #[error("the OPTIONS probe could not be sent ({0}); check servers.sip")]
    Send(String),
    /// The transaction ended without a final response (timeout, transport error).
    #[error("no final response to the OPTIONS probe")]
    NoAnswer,
}

/// Starts one probe task per target; they end with `cancel`. Each verdict change goes to
/// `directory` and is logged once.
pub fn spawn_probes(
    endpoint: EndpointInnerRef,
    local: SocketAddr,
    settings: ProbeSettings,
    targets: Vec<ProbeTarget>,
    directory: SharedDirectory,
    cancel: CancellationToken,
) {
    for target in targets {
        let (endpoint, directory, cancel) = (endpoint.clone(), directory.clone(), cancel.clone());
        tokio::spawn(async move {
            tokio::select! {
                _ = run(endpoint, local, settings, target, directory) => {}
                _ = cancel.cancelled() => {}
            }
        });
    }
}

async fn run(
    endpoint: EndpointInnerRef,
    local: SocketAddr,
    settings: ProbeSettings,
    target: ProbeTarget,
    directory: SharedDirectory,
) {
    let mut prober = Prober::new(Instant::now(), settings);
    let mut seq: u32 = 0;
    loop {
        tokio::time::sleep_until(prober.poll_timeout().into()).await;
        if !prober.poll_send(Instant::now()) {
            continue;
        }
        seq = seq.wrapping_add(1);
        let answered = tokio::time::timeout(
            prober.timeout(),
            send_options(&endpoint, local, &target, seq),
        )
        .await
        .map(|r| r.is_ok())
        .unwrap_or(false);
        if let Some(alive) = prober.handle_result(answered) {
            directory.handle_probe(&target.name, Instant::now(), alive);
            if alive {
                info!(server = %target.name, "OPTIONS probes answered again: the server takes new calls");
            } else {
                warn!(server = %target.name, failures = settings.failures, "the server did not answer OPTIONS probes: new calls to it get \"unavailable\" until it answers again; check that its FreeSWITCH runs and dialin's address may reach servers.sip");
            }
        }
        crate::ops::metrics::probe_state(&target.name, prober.alive(), prober.failed_in_a_row());
    }
}

/// Sends one OPTIONS and waits for a final response: any status (even 404, 405, 486) means the
/// server's SIP stack runs.
async fn send_options(
    endpoint: &EndpointInnerRef,
    local: SocketAddr,
    target: &ProbeTarget,
    seq: u32,
) -> Result<(), ProbeError> {
    let send = |e: &dyn std::fmt::Display| ProbeError::Send(e.to_string());
    let host = |ip: std::net::IpAddr, port: u16| match ip {
        std::net::IpAddr::V6(ip) => format!("[{ip}]:{port}"),
        ip => format!("{ip}:{port}"),
    };
    let server = host(target.addr.ip(), target.addr.port());
    let uri =
        rsipstack::sip::Uri::try_from(format!("sip:{server}").as_str()).map_err(|e| send(&e))?;
    let me = rsipstack::sip::Uri::try_from(
        format!("sip:dialin@{}", host(local.ip(), local.port())).as_str(),
    )
    .map_err(|e| send(&e))?;
    let from = rsipstack::sip::typed::From {
        display_name: None,
        uri: me,
        params: vec![rsipstack::sip::Param::Tag(
            rsipstack::transaction::make_tag().to_string().into(),
        )],
    };
    let to = rsipstack::sip::typed::To {
        display_name: None,
        uri: uri.clone(),
        params: vec![],
    };
    let via = endpoint.get_via(None, None).map_err(|e| send(&e))?;
    let request = endpoint.make_request(Method::Options, uri, via, from, to, seq, None);
    let key =
        TransactionKey::from_request(&request, TransactionRole::Client).map_err(|e| send(&e))?;
    let mut tx = Transaction::new_client(key, request, endpoint.clone(), None);
    tx.destination = Some(SipAddr {
        r#type: Some(Transport::Udp),
        addr: target.addr.into(),
    });
    tx.send().await.map_err(|e| send(&e))?;
    while let Some(msg) = tx.receive().await {
        if let SipMessage::Response(resp) = msg {
            if u16::from(resp.status_code.clone()) >= 200 {
                return Ok(());
            }
        }
    }
    Err(ProbeError::NoAnswer)
}
