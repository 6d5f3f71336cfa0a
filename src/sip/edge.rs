//! The SIP edge: rsipstack's endpoint on UDP and TCP, and the dispatch of incoming requests.
//!
//! New INVITEs become calls (one driver task each); OPTIONS outside a dialog are answered here;
//! in-dialog requests go to their dialog, whose events reach the call's driver. A request for a
//! dialog we do not know gets `481`; a method dialin never takes outside a call `405`, a
//! Request-URI scheme it does not serve `416` (`request_check`). Nothing here logs a URI or an
//! address.

use crate::sip::limits::Rate;
use crate::sip::request_check::{check_scheme, outside_dialog};
use crate::sip::source_filter::{DatagramGate, FilterStats, RejectMode, RequestGate, SourceFilter};
use crate::sip::tls::{tls_listener, TlsError, TlsReloader, TlsSettings};
use crate::sip::trunks::TrunkTable;
use rsipstack::dialog::dialog::Dialog;
use rsipstack::dialog::dialog_layer::DialogLayer;
use rsipstack::sip::prelude::HeadersExt;
use rsipstack::sip::{Header, Method, StatusCode};
use rsipstack::transaction::{Endpoint, EndpointBuilder, Transaction, TransactionReceiver};
use rsipstack::transport::{udp::UdpConnection, TcpListenerConnection, TransportLayer};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// Why the SIP edge could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EdgeError {
    /// Binding the listen address failed (in use, or a privileged port without the capability).
    #[error("cannot listen for SIP on {addr} ({transport}): {reason}; check sip.listen and that no other SIP server uses the port")]
    Bind {
        /// The configured address.
        addr: SocketAddr,
        /// `UDP` or `TCP`.
        transport: &'static str,
        /// The underlying error.
        reason: String,
    },
    /// SIP over TLS could not start.
    #[error(transparent)]
    Tls(#[from] TlsError),
}

/// What the edge needs from the configuration.
pub struct EdgeSettings {
    /// `sip.listen`.
    pub listen: SocketAddr,
    /// `sip.advertise`: the address put in Via, Contact and SDP.
    pub advertise: IpAddr,
    /// `sip.user_agent`.
    pub user_agent: String,
    /// `[trunk] allow` and the `[[trunks]]`: who may start calls.
    pub trunks: TrunkTable,
    /// `limits.sip_rate` and `limits.sip_burst`: requests per allowed source.
    pub rate: Rate,
    /// `limits.retry_after`, for the 503 of a rate-limited INVITE.
    pub retry_after: std::time::Duration,
    /// `trunk.reject`.
    pub reject: RejectMode,
    /// The BBB servers' addresses, allowed to send in-dialog requests.
    pub servers: Vec<IpAddr>,
    /// SIP over TLS, if configured.
    pub tls: Option<TlsSettings>,
    /// `limits.tcp_per_source`, `limits.tcp_total`, `limits.tcp_idle` for TCP and TLS.
    pub connections: crate::sip::conn_limits::ConnLimitSettings,
}

/// A running SIP endpoint with its dialog layer.
pub struct SipEdge {
    /// rsipstack's endpoint (transactions and transports).
    pub endpoint: Endpoint,
    /// rsipstack's dialog layer, shared with every call driver.
    pub dialog_layer: Arc<DialogLayer>,
    /// Cancelling this stops the transports.
    pub cancel: CancellationToken,
    /// The address actually bound (resolves port 0 in tests).
    pub local_addr: SocketAddr,
    /// The address we put in Contact and SDP.
    pub advertise: IpAddr,
    /// Source-filter counters.
    pub filter_stats: Arc<FilterStats>,
    /// Reloads the TLS certificate (SIGHUP), when TLS is on.
    pub tls_reloader: Option<TlsReloader>,
    /// The TLS listen port, when TLS is on.
    pub tls_port: Option<u16>,
}

impl SipEdge {
    /// Binds UDP and TCP on `settings.listen` and builds the endpoint.
    // Over 80 lines: the transports (UDP, TCP, TLS) and the endpoint are set up in the order
    // rsipstack needs them.
    pub async fn bind(settings: EdgeSettings) -> Result<SipEdge, EdgeError> {
        let cancel = CancellationToken::new();
        let transport_layer = TransportLayer::new(cancel.clone());
        let external = SocketAddr::new(settings.advertise, settings.listen.port());
        let udp = UdpConnection::create_connection(
            settings.listen,
            Some(external).filter(|e| *e != settings.listen),
            Some(cancel.child_token()),
        )
        .await
        .map_err(|e| EdgeError::Bind {
            addr: settings.listen,
            transport: "UDP",
            reason: e.to_string(),
        })?;
        let local_addr = udp.get_addr().get_socketaddr().unwrap_or(settings.listen);
        // TCP on the same port as UDP (which may have been chosen by the OS for port 0).
        let tcp_addr = SocketAddr::new(settings.listen.ip(), local_addr.port());
        std::net::TcpListener::bind(tcp_addr)
            .map_err(|e| EdgeError::Bind {
                addr: tcp_addr,
                transport: "TCP",
                reason: e.to_string(),
            })
            .map(drop)?;
        let tcp = TcpListenerConnection::new(tcp_addr, None)
            .await
            .map_err(|e| EdgeError::Bind {
                addr: tcp_addr,
                transport: "TCP",
                reason: e.to_string(),
            })?;
        transport_layer.add_transport(udp.into());
        transport_layer.add_transport(tcp.into());
        let tls_reloader = match &settings.tls {
            Some(tls) => {
                let external = SocketAddr::new(settings.advertise, tls.listen.port());
                let (listener, reloader) =
                    tls_listener(tls, Some(external).filter(|e| *e != tls.listen)).await?;
                transport_layer.add_transport(listener.into());
                // As for UDP and TCP: the operator sees where callers reach dialin over TLS.
                tracing::info!(listen = %tls.listen, advertise = %external, "SIP over TLS listening");
                Some(reloader)
            }
            None => None,
        };

        let filter_stats = Arc::new(FilterStats::default());
        let filter = Arc::new(SourceFilter::new(
            settings.trunks,
            settings.servers,
            settings.reject,
            settings.rate,
            settings.retry_after,
            filter_stats.clone(),
        ));
        // Before parsing: non-allowed sources are dropped here (or only a few let through to
        // be answered 403), so a flood from them costs no parse.
        transport_layer.set_whitelist(DatagramGate(filter.clone()));
        // Bounded TCP/TLS: caps per source and in total, and silent sockets closed after
        // limits.tcp_idle before they cost a connection's buffers.
        // A connection that has carried SIP may carry a dialog, whose requests can be minutes
        // apart: it is closed only after 300 s without a byte (rsipstack's default, set here
        // so a new rsipstack cannot change it unnoticed).
        transport_layer.set_stream_idle_timeout(std::time::Duration::from_secs(300));
        transport_layer.set_stream_admission(Arc::new(crate::sip::conn_limits::SipAdmission(
            crate::sip::conn_limits::ConnectionLimits::new(settings.connections),
        )));
        let mut builder = EndpointBuilder::new();
        if settings.user_agent.is_empty() {
            builder.with_inspector(Box::new(crate::sip::capabilities::NoUserAgent));
        }
        let endpoint = builder
            .with_user_agent(&settings.user_agent)
            .with_cancel_token(cancel.clone())
            .with_transport_layer(transport_layer)
            .with_transport_inspector(Box::new(RequestGate(filter)))
            .with_allows(vec![
                Method::Invite,
                Method::Ack,
                Method::Cancel,
                Method::Bye,
                Method::Options,
                Method::Info,
                Method::Update,
            ])
            .build();
        let dialog_layer = Arc::new(DialogLayer::new(endpoint.inner.clone()));
        Ok(SipEdge {
            endpoint,
            dialog_layer,
            cancel,
            local_addr,
            advertise: settings.advertise,
            filter_stats,
            tls_reloader,
            tls_port: settings.tls.as_ref().map(|t| t.listen.port()),
        })
    }

    /// The Contact URI for our side of every dialog.
    pub fn contact(&self) -> rsipstack::sip::Uri {
        let host = SocketAddr::new(self.advertise, self.local_addr.port());
        rsipstack::sip::Uri {
            scheme: Some(rsipstack::sip::Scheme::Sip),
            auth: Some(rsipstack::sip::Auth {
                user: "dialin".into(),
                password: None,
            }),
            host_with_port: host.into(),
            ..Default::default()
        }
    }

    /// The Contact URI for dialogs that arrive over TLS: the TLS port with `;transport=tls`;
    /// `None` when TLS is off.
    pub fn tls_contact(&self) -> Option<rsipstack::sip::Uri> {
        let port = self.tls_port?;
        let mut uri = self.contact();
        uri.host_with_port = SocketAddr::new(self.advertise, port).into();
        uri.params.push(rsipstack::sip::Param::Transport(
            rsipstack::sip::Transport::Tls,
        ));
        Some(uri)
    }

    /// Takes the stream of new server transactions (once).
    pub fn incoming(&self) -> TransactionReceiver {
        self.endpoint
            .incoming_transactions()
            .expect("incoming transactions are taken once, at start-up")
    }
}

/// Where new INVITEs go: implemented by the call layer.
pub trait CallAcceptor: Send + Sync + 'static {
    /// Takes a new out-of-dialog INVITE transaction and starts a call for it (or refuses it).
    fn accept_call(&self, tx: Transaction);

    /// While new calls are refused (draining): `Some(retry_after_secs)`. OPTIONS then get
    /// `503` with that `Retry-After`, so a load balancer's probe takes this instance out.
    fn refusing(&self) -> Option<u32> {
        None
    }
}

/// Answers `503 Service Unavailable` with `Retry-After: secs`.
pub async fn reply_unavailable(mut tx: Transaction, secs: u32) {
    let retry = Header::RetryAfter(secs.to_string().into());
    tx.reply_with(StatusCode::ServiceUnavailable, vec![retry], None)
        .await
        .ok();
}

/// Dispatches incoming transactions until the stream ends. Each request is handled in its own
/// task, so a slow or broken peer never holds up another.
pub async fn dispatch(
    mut incoming: TransactionReceiver,
    dialog_layer: Arc<DialogLayer>,
    calls: Arc<dyn CallAcceptor>,
) {
    while let Some(tx) = incoming.recv().await {
        let has_to_tag = tx
            .original
            .to_header()
            .ok()
            .and_then(|to| to.tag().ok().flatten())
            .is_some();
        if !has_to_tag {
            match tx.original.method {
                Method::Invite => calls.accept_call(tx),
                Method::Options if check_scheme(&tx.original).is_err() => {
                    tokio::spawn(reply(tx, StatusCode::UnsupportedUriScheme));
                }
                Method::Options => match calls.refusing() {
                    Some(secs) => {
                        tokio::spawn(reply_unavailable(tx, secs));
                    }
                    None => {
                        tokio::spawn(answer_options(tx));
                    }
                },
                Method::Ack => {}
                method => {
                    let (status, headers) = outside_dialog(method);
                    tokio::spawn(async move {
                        let mut tx = tx;
                        tx.reply_with(status, headers, None).await.ok();
                    });
                }
            }
            continue;
        }
        match dialog_layer.match_dialog(&tx) {
            Some(Dialog::Invite(mut dialog)) => {
                let mut tx = tx;
                tokio::spawn(async move {
                    // rsipstack's error text can carry URIs (PIN material): not logged.
                    if dialog.handle(&mut tx).await.is_err() {
                        tracing::debug!("an in-dialog request could not be handled");
                    }
                });
            }
            Some(_) => {
                tokio::spawn(reply(tx, StatusCode::MethodNotAllowed));
            }
            None if tx.original.method == Method::Ack => {}
            None => {
                tokio::spawn(reply(tx, StatusCode::CallTransactionDoesNotExist));
            }
        }
    }
}

async fn reply(mut tx: Transaction, status: StatusCode) {
    tx.reply(status).await.ok();
}

/// OPTIONS is how trunks and load balancers check we are alive: 200 with what we accept.
async fn answer_options(mut tx: Transaction) {
    let mut headers = crate::sip::capabilities::answer_headers(None);
    headers.push(Header::Accept("application/sdp".into()));
    tx.reply_with(StatusCode::OK, headers, None).await.ok();
}
