//! The trunk's front door: which sources may talk SIP to dialin at all, and how fast.
//!
//! Two checks, both before rsipstack creates a transaction:
//! - [`SourceFilter::admits_datagram`] runs on every datagram and new TCP connection *before
//!   it is parsed* (rsipstack's transport whitelist). A source outside every trunk and not a
//!   BBB server is dropped there with `reject = "silence"`, so a flood from it costs no parse at
//!   all; with `reject = "403"` a few of its datagrams per second get through to be answered
//!   (its own small token bucket), the rest are dropped unparsed.
//! - The [`TransportEventInspector`] runs on every parsed message: requests from sources
//!   outside the trunks get the stateless `403` (or nothing); requests from allowed sources
//!   spend a token of their source's bucket (`limits.sip_rate`/`sip_burst`), and when it is
//!   empty an INVITE gets a stateless `503` with `Retry-After` and anything else is dropped
//!   (UDP peers retransmit). ACKs are never limited: they complete calls already accepted.
//!   Responses always pass: they only ever match our own client transactions.
//!
//! No address is kept beyond the rate buckets, and none is logged.

use crate::sip::limits::{Rate, RateLimiter};
use crate::sip::trunks::TrunkTable;
use rsipstack::sip::prelude::HeadersExt;
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
    /// Per-source buckets of non-allowed sources (only used with [`RejectMode::Forbidden`]).
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

    fn allowed(&self, ip: IpAddr) -> bool {
        self.trunks.allows(ip) || self.servers.contains(&ip)
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
    async fn handle(&self, event: TransportEvent) -> Option<TransportEvent> {
        let f = &self.0;
        let TransportEvent::Incoming(SipMessage::Request(req), connection, from) = &event else {
            return Some(event);
        };
        let Ok(addr) = from.get_socketaddr() else {
            return None;
        };
        let reply = if !f.allowed(addr.ip()) {
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
            return Some(event);
        };
        if let Some(resp) = reply {
            connection
                .send(SipMessage::Response(resp), Some(from))
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
