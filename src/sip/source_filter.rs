//! The trunk's front door: which sources may talk SIP to dialin at all.
//!
//! Runs on every parsed message before rsipstack creates a transaction, so a request from an
//! address outside `trunk.allow` (and not one of the BBB servers) costs one parse and is then
//! either dropped or answered `403` statelessly, as configured. Responses always pass: they
//! only ever match our own client transactions.

use crate::sip::acl::SourceAcl;
use rsipstack::sip::{Header, Method, Request, Response, SipMessage, StatusCode};
use rsipstack::transaction::endpoint::TransportEventInspector;
use rsipstack::transport::TransportEvent;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

/// What to do with an INVITE from a source that is not allowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RejectMode {
    /// Answer `403 Forbidden` without creating a transaction.
    Forbidden,
    /// Drop it: the sender sees nothing, which tells a scanner nothing.
    Silence,
}

/// Counters the filter keeps, for status output and tests (no addresses are kept).
#[derive(Default, Debug)]
pub struct FilterStats {
    /// Requests refused because of their source address.
    pub rejected: AtomicU64,
}

/// Who may talk SIP to dialin; replaced whole by a configuration reload.
#[derive(Clone, Debug)]
pub struct FilterRules {
    /// Networks allowed to start calls (`trunk.allow`).
    pub trunk: SourceAcl,
    /// Addresses of the BBB servers, which send BYE and re-INVITE on the server legs.
    pub servers: Vec<IpAddr>,
    /// How non-allowed INVITEs are answered.
    pub mode: RejectMode,
}

/// The filter's rules, shared with the reload: read once per SIP message (never per RTP packet).
pub type SharedRules = Arc<RwLock<FilterRules>>;

/// The rsipstack transport inspector that enforces the source ACL.
pub struct SourceFilter {
    /// The rules in force.
    rules: SharedRules,
    /// Shared counters.
    stats: Arc<FilterStats>,
}

impl SourceFilter {
    /// Builds the filter from the trunk ACL and the server addresses.
    pub fn new(
        trunk: SourceAcl,
        servers: Vec<IpAddr>,
        mode: RejectMode,
        stats: Arc<FilterStats>,
    ) -> Self {
        let rules = FilterRules {
            trunk,
            servers,
            mode,
        };
        SourceFilter {
            rules: Arc::new(RwLock::new(rules)),
            stats,
        }
    }

    /// The rules, for replacing them on reload.
    pub fn rules(&self) -> SharedRules {
        self.rules.clone()
    }

    /// Whether `ip` may send requests, and how a refused INVITE is answered.
    fn check(&self, ip: IpAddr) -> (bool, RejectMode) {
        let r = self.rules.read().unwrap_or_else(|e| e.into_inner());
        (r.trunk.allows(ip) || r.servers.contains(&ip), r.mode)
    }
}

#[async_trait::async_trait]
impl TransportEventInspector for SourceFilter {
    async fn handle(&self, event: TransportEvent) -> Option<TransportEvent> {
        let TransportEvent::Incoming(SipMessage::Request(req), connection, from) = &event else {
            return Some(event);
        };
        let Ok(addr) = from.get_socketaddr() else {
            return None;
        };
        let (allowed, mode) = self.check(addr.ip());
        if allowed {
            return Some(event);
        }
        self.stats.rejected.fetch_add(1, Ordering::Relaxed);
        if mode == RejectMode::Forbidden && req.method == Method::Invite {
            let resp = stateless_response(req, StatusCode::Forbidden);
            connection
                .send(SipMessage::Response(resp), Some(from))
                .await
                .ok();
        }
        None
    }
}

/// A final response built from the request alone (Via, Call-ID, From, To, CSeq copied), for
/// answering without a transaction.
fn stateless_response(req: &Request, status_code: StatusCode) -> Response {
    let mut headers = req.headers.clone();
    headers.retain(|h| {
        matches!(
            h,
            Header::Via(_) | Header::CallId(_) | Header::From(_) | Header::To(_) | Header::CSeq(_)
        )
    });
    headers.push(Header::ContentLength(0u32.into()));
    Response {
        status_code,
        wire_reason: None,
        version: req.version,
        headers,
        body: Vec::new(),
    }
}
