//! The trunk's front door: which sources may talk SIP to dialin at all, and how fast.
//!
//! Two checks, both before rsipstack creates a transaction:
//! - [`SourceFilter::admits_datagram`] runs on every datagram and new TCP connection *before
//!   it is parsed* (rsipstack's transport whitelist). A source outside every trunk and not a
//!   BBB server is dropped there with `reject = "silence"`, so a flood from it costs no parse at
//!   all; with `reject = "403"` a few of its datagrams per second get through to be answered
//!   (its own small token bucket), the rest are dropped unparsed.
//! - The [`TransportEventInspector`] runs on every parsed message: requests from sources
//!   outside the trunks get the stateless `403` (or nothing); a source that is only a BBB
//!   server (in `[[servers]]`, in no trunk's allow list) may send what a server sends on the
//!   legs dialin dialled (in-dialog BYE, re-INVITE, INFO, UPDATE, ACK; OPTIONS, CANCEL) and
//!   never a new INVITE, which gets the same refusal as an outsider's; requests from allowed sources
//!   spend a token of their source's bucket (`limits.sip_rate`/`sip_burst`), and when it is
//!   empty an INVITE gets a stateless `503` with `Retry-After` and anything else is dropped
//!   (UDP peers retransmit). ACKs are never limited: they complete calls already accepted.
//!   Responses always pass: they only ever match our own client transactions.
//! - Every request let through has its top Via's `received` set to the transport's remote
//!   address, whatever the peer wrote there: [`crate::sip::legs::source_ip`] reads only that,
//!   so a call's trunk is the trunk of the packet's source, never of a Via host.
//!
//! No address is kept beyond the rate buckets, and none is logged.

use crate::sip::limits::{Rate, RateLimiter};
use crate::sip::trunks::TrunkTable;
use rsipstack::sip::prelude::{HeadersExt, ToTypedHeader};
use rsipstack::sip::{Header, Method, Request, Response, SipMessage, StatusCode};
use rsipstack::transaction::endpoint::TransportEventInspector;
use rsipstack::transport::TransportEvent;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What to do with an INVITE from a source that is not allowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RejectMode {
    /// Answer `403 Forbidden` without creating a transaction.
    Forbidden,
    /// Drop it: the sender sees nothing, which tells a scanner nothing.
    Silence,
}

/// Counters the filter keeps, for status output, metrics and tests (no addresses are kept).
#[derive(Default, Debug)]
pub struct FilterStats {
    /// Requests (and, before parsing, datagrams) refused because of their source address.
    pub rejected: AtomicU64,
    /// Requests from allowed sources refused because the source exceeded its rate.
    pub rate_limited: AtomicU64,
    /// Of those, new INVITEs (answered 503): the calls the rate refused.
    pub invites_rate_limited: AtomicU64,
}

impl FilterStats {
    /// Requests and datagrams refused because of their source address.
    pub fn rejected(&self) -> u64 {
        self.rejected.load(Ordering::Relaxed)
    }

    /// Requests refused because their source exceeded `limits.sip_rate`.
    pub fn rate_limited(&self) -> u64 {
        self.rate_limited.load(Ordering::Relaxed)
    }
}

/// How many datagrams per second a non-allowed source may have parsed (to be answered 403).
const OUTSIDER_RATE: Rate = Rate {
    per_second: 5,
    burst: 10,
};

/// Most sources each rate table tracks; beyond that, unknown sources share one bucket.
const MAX_SOURCES: usize = 4096;

/// The source ACL and per-source rate limits, shared by the whitelist and the inspector.
pub struct SourceFilter {
    /// Which trunk each allowed source belongs to.
    trunks: TrunkTable,
    /// Addresses of the BBB servers, which send BYE and re-INVITE on the server legs.
    servers: Vec<IpAddr>,
    /// How non-allowed INVITEs are answered.
    mode: RejectMode,
    /// Per-source buckets of allowed sources.
    allowed_rate: Mutex<RateLimiter>,
    /// Per-source buckets for answering refused requests: of non-allowed sources (only used
    /// with [`RejectMode::Forbidden`]) and of server addresses trying to call in.
    outsider_rate: Mutex<RateLimiter>,
    /// The `Retry-After` of a rate-limited INVITE's 503, in seconds.
    retry_after: Duration,
    /// Shared counters.
    stats: Arc<FilterStats>,
}

impl SourceFilter {
    /// Builds the filter from the trunks, the server addresses and the per-source rate.
    pub fn new(
        trunks: TrunkTable,
        servers: Vec<IpAddr>,
        mode: RejectMode,
        rate: Rate,
        retry_after: Duration,
        stats: Arc<FilterStats>,
    ) -> Self {
        let now = Instant::now();
        SourceFilter {
            trunks,
            servers,
            mode,
            allowed_rate: Mutex::new(RateLimiter::new(rate, MAX_SOURCES, now)),
            outsider_rate: Mutex::new(RateLimiter::new(OUTSIDER_RATE, MAX_SOURCES, now)),
            retry_after,
            stats,
        }
    }

    /// What `ip` is to dialin: a trunk's source (anything goes), only a BBB server (server
    /// traffic only) or neither.
    fn kind(&self, ip: IpAddr) -> SourceKind {
        if self.trunks.allows(ip) {
            SourceKind::Trunk
        } else if self.servers.contains(&ip) {
            SourceKind::Server
        } else {
            SourceKind::Outsider
        }
    }

    fn allowed(&self, ip: IpAddr) -> bool {
        self.kind(ip) != SourceKind::Outsider
    }

    /// The pre-parse check of a datagram (or new TCP connection) from `ip` at `now`.
    pub fn admits_datagram(&self, ip: IpAddr, now: Instant) -> bool {
        if self.allowed(ip) {
            return true;
        }
        let admitted = self.mode == RejectMode::Forbidden
            && self
                .outsider_rate
                .lock()
                .expect("the rate table lock is never held across a panic")
                .check(ip, now);
        if !admitted {
            self.stats.rejected.fetch_add(1, Ordering::Relaxed);
        }
        admitted
    }

    /// Whether a request from the allowed source `ip` is within its rate at `now`.
    fn within_rate(&self, ip: IpAddr, method: &Method, now: Instant) -> bool {
        if *method == Method::Ack {
            return true;
        }
        self.allowed_rate
            .lock()
            .expect("the rate table lock is never held across a panic")
            .check(ip, now)
    }
}

/// What a source address is to dialin.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SourceKind {
    /// In a trunk's allow list: may start calls.
    Trunk,
    /// Only a `[[servers]]` address: may talk on the server legs dialin dialled, never call in.
    Server,
    /// Neither.
    Outsider,
}

/// Whether a source that is only a BBB server may send `req`: what FreeSWITCH sends on a leg
/// dialin dialled (BYE, re-INVITE, INFO, UPDATE, ACK within the dialog; OPTIONS pings; a CANCEL
/// matches no transaction of ours), never a new INVITE or anything that starts something.
fn server_may_send(req: &Request) -> bool {
    let in_dialog = req
        .to_header()
        .ok()
        .and_then(|to| to.tag().ok().flatten())
        .is_some();
    match req.method {
        Method::Options | Method::Cancel | Method::Ack => true,
        Method::Bye | Method::Invite | Method::Info | Method::Update => in_dialog,
        _ => false,
    }
}

/// Sets the top Via's `received` to `ip`, the transport's remote address, replacing whatever
/// the peer or the transport put there, so everything after the gate that asks where a
/// request came from gets the packet's source. `rport` is left as it is: responses still go
/// where RFC 3261/3581 send them.
fn stamp_source(req: &mut Request, ip: IpAddr) -> Result<(), rsipstack::sip::Error> {
    use rsipstack::sip::{param::Received, Param};
    // RFC 3261's `received` is a bare address, brackets nowhere (unlike a Via host).
    let value = ip.to_string();
    req.via_header_mut()?.update_first_value(|via| {
        let mut typed = via.typed()?;
        typed.params.retain(|p| !matches!(p, Param::Received(_)));
        typed.params.push(Param::Received(Received::new(value)));
        Ok(typed.into())
    })
}

/// The whitelist hook for rsipstack's transports: an `Arc` of the filter seen as a function.
pub struct DatagramGate(pub Arc<SourceFilter>);

#[async_trait::async_trait]
impl rsipstack::transport::transport_layer::TransportWhitelist for DatagramGate {
    async fn allow(&self, ip: IpAddr) -> bool {
        self.0.admits_datagram(ip, Instant::now())
    }
}

/// The inspector hook for rsipstack's endpoint.
pub struct RequestGate(pub Arc<SourceFilter>);

#[async_trait::async_trait]
impl TransportEventInspector for RequestGate {
    async fn handle(&self, mut event: TransportEvent) -> Option<TransportEvent> {
        let f = &self.0;
        let TransportEvent::Incoming(SipMessage::Request(req), connection, from) = &mut event
        else {
            return Some(event);
        };
        let Ok(addr) = from.get_socketaddr() else {
            return None;
        };
        let kind = f.kind(addr.ip());
        let reply = if kind == SourceKind::Outsider {
            f.stats.rejected.fetch_add(1, Ordering::Relaxed);
            // Datagrams were counted against the source's answer budget before parsing; a
            // stream connection carries many requests, so each one is counted here.
            let budget = !connection.is_reliable()
                || f.outsider_rate
                    .lock()
                    .expect("the rate table lock is never held across a panic")
                    .check(addr.ip(), Instant::now());
            (budget && f.mode == RejectMode::Forbidden && req.method == Method::Invite)
                .then(|| stateless_response(req, StatusCode::Forbidden, None))
        } else if kind == SourceKind::Server && !server_may_send(req) {
            // A BBB server does not call in: whatever runs on its host is refused as an
            // outsider is, and answered from the outsiders' budget, so a flood of refusals
            // leaves the server's own rate for its BYEs and re-INVITEs.
            f.stats.rejected.fetch_add(1, Ordering::Relaxed);
            let budget = f
                .outsider_rate
                .lock()
                .expect("the rate table lock is never held across a panic")
                .check(addr.ip(), Instant::now());
            (budget && f.mode == RejectMode::Forbidden && req.method == Method::Invite)
                .then(|| stateless_response(req, StatusCode::Forbidden, None))
        } else if !f.within_rate(addr.ip(), &req.method, Instant::now()) {
            f.stats.rate_limited.fetch_add(1, Ordering::Relaxed);
            let new_invite = req.method == Method::Invite
                && req
                    .to_header()
                    .ok()
                    .and_then(|to| to.tag().ok().flatten())
                    .is_none();
            new_invite.then(|| {
                f.stats.invites_rate_limited.fetch_add(1, Ordering::Relaxed);
                let retry = Header::RetryAfter(f.retry_after.as_secs().to_string().into());
                stateless_response(req, StatusCode::ServiceUnavailable, Some(retry))
            })
        } else {
            // Without a Via to stamp, nothing could tell where the request came from: the
            // transaction layer would refuse it anyway.
            return stamp_source(req, addr.ip()).ok().map(|()| event);
        };
        if let Some(resp) = reply {
            connection
                .send(SipMessage::Response(resp), Some(&*from))
                .await
                .ok();
        }
        None
    }
}

/// A final response built from the request alone (Via, Call-ID, From, To, CSeq copied, plus
/// `extra`), for answering without a transaction.
fn stateless_response(req: &Request, status_code: StatusCode, extra: Option<Header>) -> Response {
    let mut headers = req.headers.clone();
    headers.retain(|h| {
        matches!(
            h,
            Header::Via(_) | Header::CallId(_) | Header::From(_) | Header::To(_) | Header::CSeq(_)
        )
    });
    if let Some(h) = extra {
        headers.push(h);
    }
    headers.push(Header::ContentLength(0u32.into()));
    Response {
        status_code,
        wire_reason: None,
        version: req.version,
        headers,
        body: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::acl::SourceAcl;
    use crate::sip::legs::source_ip;
    use rsipstack::sip::{Host, HostWithPort};
    use rsipstack::transport::channel::ChannelConnection;
    use rsipstack::transport::{SipAddr, SipConnection};

    const SERVER: &str = "198.51.100.10";

    /// Trunk "a" is 192.0.2.0/24, trunk "b" 203.0.113.0/24, no default trunk; one BBB server.
    fn gate() -> (RequestGate, Arc<FilterStats>) {
        let acl = |n: &str| SourceAcl::new(vec![n.parse().unwrap()]);
        let trunks = TrunkTable::new(
            vec![
                ("a".into(), acl("192.0.2.0/24")),
                ("b".into(), acl("203.0.113.0/24")),
            ],
            SourceAcl::new(vec![]),
        );
        let stats = Arc::new(FilterStats::default());
        let filter = SourceFilter::new(
            trunks,
            vec![SERVER.parse().unwrap()],
            RejectMode::Forbidden,
            Rate {
                per_second: 100,
                burst: 100,
            },
            Duration::from_secs(30),
            stats.clone(),
        );
        (RequestGate(Arc::new(filter)), stats)
    }

    fn request(method: &str, via_host: &str, to_tag: bool) -> Request {
        let tag = if to_tag { ";tag=d1" } else { "" };
        let text = format!(
            "{method} sip:4930555000@192.0.2.1 SIP/2.0\r\n\
             Via: SIP/2.0/UDP {via_host}:5060;branch=z9hG4bK1;received={via_host}\r\n\
             From: <sip:a@{via_host}>;tag=a\r\nTo: <sip:4930555000@192.0.2.1>{tag}\r\n\
             Call-ID: x\r\nCSeq: 1 {method}\r\nContent-Length: 0\r\n\r\n"
        );
        Request::try_from(text.as_str()).expect("test request parses")
    }

    /// Runs `req` from `ip` through the gate: the request it lets through, if any, and the
    /// status of what it answered, if anything.
    async fn pass(gate: &RequestGate, req: Request, ip: &str) -> (Option<Request>, Option<u16>) {
        let from = SipAddr {
            r#type: Some(rsipstack::sip::Transport::Udp),
            addr: HostWithPort {
                host: Host::IpAddr(ip.parse().unwrap()),
                port: Some(5060.into()),
            },
        };
        let (_in_tx, in_rx) = tokio::sync::mpsc::unbounded_channel();
        let (out_tx, mut out_rx) = tokio::sync::mpsc::unbounded_channel();
        let conn = ChannelConnection::create_connection(in_rx, out_tx, from.clone(), None)
            .await
            .expect("a channel connection");
        let event = TransportEvent::Incoming(req.into(), SipConnection::Channel(conn), from);
        let passed = match gate.handle(event).await {
            Some(TransportEvent::Incoming(SipMessage::Request(r), _, _)) => Some(r),
            Some(_) => panic!("the gate changed the event's kind"),
            None => None,
        };
        let answered = match out_rx.try_recv() {
            Ok(TransportEvent::Incoming(SipMessage::Response(r), _, _)) => {
                Some(r.status_code.code())
            }
            _ => None,
        };
        (passed, answered)
    }

    #[tokio::test]
    async fn a_server_address_may_not_start_a_call() {
        let (gate, stats) = gate();
        let (passed, answered) = pass(&gate, request("INVITE", SERVER, false), SERVER).await;
        assert!(
            passed.is_none(),
            "a new INVITE from a BBB server reached the call code"
        );
        assert_eq!(answered, Some(403));
        assert_eq!(stats.rejected(), 1);
        // Nor anything else that starts something.
        for method in ["REGISTER", "MESSAGE", "SUBSCRIBE", "REFER"] {
            let (passed, answered) = pass(&gate, request(method, SERVER, false), SERVER).await;
            assert!(passed.is_none(), "{method}");
            assert_eq!(answered, None, "{method}");
        }
        assert_eq!(stats.rejected(), 5);
    }

    #[tokio::test]
    async fn a_server_address_may_send_what_servers_send() {
        let (gate, stats) = gate();
        let in_dialog = ["BYE", "INVITE", "INFO", "UPDATE", "ACK"];
        for method in in_dialog {
            let (passed, answered) = pass(&gate, request(method, SERVER, true), SERVER).await;
            assert!(passed.is_some(), "{method} in a dialog");
            assert_eq!(answered, None, "{method}");
        }
        for method in ["OPTIONS", "CANCEL"] {
            let (passed, _) = pass(&gate, request(method, SERVER, false), SERVER).await;
            assert!(passed.is_some(), "{method}");
        }
        // An in-dialog BYE without a To tag is no dialog's.
        let (passed, _) = pass(&gate, request("BYE", SERVER, false), SERVER).await;
        assert!(passed.is_none());
        assert_eq!(stats.rejected(), 1);
    }

    #[tokio::test]
    async fn a_trunk_address_may_start_a_call() {
        let (gate, stats) = gate();
        let (passed, answered) =
            pass(&gate, request("INVITE", "192.0.2.5", false), "192.0.2.5").await;
        assert!(passed.is_some());
        assert_eq!(answered, None);
        assert_eq!(stats.rejected(), 0);
    }

    #[tokio::test]
    async fn the_trunk_of_a_call_is_its_sources_not_its_vias() {
        let (gate, _) = gate();
        // The Via (and its received) names trunk a; the packet comes from trunk b.
        let invite = request("INVITE", "192.0.2.5", false);
        assert_eq!(
            gate.0.trunks.classify(source_ip(&invite).unwrap()),
            Some(0),
            "the test's Via names trunk a"
        );
        let (passed, _) = pass(&gate, invite, "203.0.113.7").await;
        let passed = passed.expect("a trunk's INVITE passes");
        assert_eq!(source_ip(&passed), Some("203.0.113.7".parse().unwrap()));
        assert_eq!(gate.0.trunks.classify(source_ip(&passed).unwrap()), Some(1));
        // A server's INVITE whose Via names a trunk is still a server's.
        let (passed, answered) = pass(&gate, request("INVITE", "192.0.2.5", false), SERVER).await;
        assert!(passed.is_none());
        assert_eq!(answered, Some(403));
    }
}
