//! Connection limits for SIP over TCP and TLS and for the admin listener.
//!
//! An allowed source once held 2,000 idle connections each to SIP and to the admin API for as
//! long as it liked (RSS 18.5 → 197.6 MB, 4,029 open files). Every accepted connection now
//! takes a slot from [`ConnectionLimits`]: at most `per_source` from one address and `total`
//! in all (`limits.tcp_per_source`, `limits.tcp_total`), refused beyond that by closing the
//! socket at once and counting it in `dialin_connections_refused_total{listener}`. A slot is
//! held by a [`ConnectionPermit`] until the connection ends. A SIP connection that sends
//! nothing (no byte; for TLS, no finished handshake) within `limits.tcp_idle` is closed
//! before it enters rsipstack's connection table; one that has carried SIP keeps rsipstack's
//! own idle timeout (300 s without a byte) so a call's dialog is not cut in a quiet moment.
//! The admin listener closes a connection idle (no byte either way) for `limits.tcp_idle`
//! (see [`IdleStream`]).
//!
//! The table of sources holds only addresses with a live connection, so it is bounded by
//! `total`. Nothing here logs an address.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

pub use crate::ops::metrics::{CONNECTIONS_REFUSED, LISTENERS};

/// The caps and the idle timeout, from `[limits]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnLimitSettings {
    /// Most connections at once from one source address.
    pub per_source: u32,
    /// Most connections at once in all.
    pub total: u32,
    /// How long a connection may stay silent (see the module doc).
    pub idle: Duration,
}

/// Counts of live connections per source and in total; shared by the accept loops and the
/// permits (which give their slot back on drop).
#[derive(Debug)]
pub struct ConnectionLimits {
    /// The caps.
    settings: ConnLimitSettings,
    /// Live connections per source address (only addresses with at least one) and in all.
    counts: Mutex<Counts>,
}

/// The counters behind [`ConnectionLimits`]'s mutex.
#[derive(Debug, Default)]
struct Counts {
    /// Live connections per source.
    per_source: HashMap<IpAddr, u32>,
    /// Live connections in all.
    total: u32,
}

/// One live connection's slot; dropping it frees the slot.
#[derive(Debug)]
pub struct ConnectionPermit {
    /// Where the slot is given back.
    limits: Arc<ConnectionLimits>,
    /// The source the slot is counted for.
    source: IpAddr,
}

impl ConnectionLimits {
    /// New limits with no live connection.
    pub fn new(settings: ConnLimitSettings) -> Arc<ConnectionLimits> {
        Arc::new(ConnectionLimits {
            settings,
            counts: Mutex::new(Counts::default()),
        })
    }

    /// The configured caps and idle timeout.
    pub fn settings(&self) -> ConnLimitSettings {
        self.settings
    }

    /// Takes a slot for a connection from `source`, or counts a refusal under `listener`
    /// (one of [`LISTENERS`]) and returns `None`: the caller closes the socket.
    pub fn try_admit(
        self: &Arc<Self>,
        source: IpAddr,
        listener: &'static str,
    ) -> Option<ConnectionPermit> {
        let admitted = {
            let mut c = self
                .counts
                .lock()
                .expect("no code panics holding this lock");
            let from_source = c.per_source.get(&source).copied().unwrap_or(0);
            if c.total >= self.settings.total || from_source >= self.settings.per_source {
                false
            } else {
                c.total += 1;
                c.per_source.insert(source, from_source + 1);
                true
            }
        };
        if !admitted {
            metrics::counter!(CONNECTIONS_REFUSED, "listener" => listener).increment(1);
            return None;
        }
        Some(ConnectionPermit {
            limits: self.clone(),
            source,
        })
    }

    /// Live connections in all (for tests and status).
    pub fn live(&self) -> u32 {
        self.counts
            .lock()
            .expect("no code panics holding this lock")
            .total
    }
}

impl Drop for ConnectionPermit {
    fn drop(&mut self) {
        let mut c = self
            .limits
            .counts
            .lock()
            .expect("no code panics holding this lock");
        c.total = c.total.saturating_sub(1);
        if let Some(n) = c.per_source.get_mut(&self.source) {
            *n -= 1;
            if *n == 0 {
                c.per_source.remove(&self.source);
            }
        }
    }
}

/// rsipstack's hook: its TCP and TLS accept loops ask here before serving a connection.
pub struct SipAdmission(pub Arc<ConnectionLimits>);

impl rsipstack::transport::StreamAdmission for SipAdmission {
    fn admit(
        &self,
        transport: rsipstack::sip::Transport,
        remote: SocketAddr,
    ) -> Option<Box<dyn Send + Sync>> {
        let listener = match transport {
            rsipstack::sip::Transport::Tls => "sip_tls",
            _ => "sip_tcp",
        };
        let permit = self.0.try_admit(remote.ip(), listener)?;
        Some(Box::new(permit))
    }

    fn first_byte_timeout(&self) -> Duration {
        self.0.settings.idle
    }
}

/// An admin connection with its slot and an idle deadline: a read returns an error (and hyper
/// closes the connection) once nothing was read or written for the idle time. Covers
/// keep-alive connections between requests and clients that never send a request.
pub struct IdleStream {
    /// The socket.
    inner: tokio::net::TcpStream,
    /// Fires when the connection has been idle for `idle`.
    deadline: Pin<Box<tokio::time::Sleep>>,
    /// `limits.tcp_idle`.
    idle: Duration,
    /// The connection's slot, freed when hyper drops the stream.
    _permit: ConnectionPermit,
}

impl IdleStream {
    /// Wraps an accepted socket.
    pub fn new(inner: tokio::net::TcpStream, idle: Duration, permit: ConnectionPermit) -> Self {
        IdleStream {
            inner,
            deadline: Box::pin(tokio::time::sleep(idle)),
            idle,
            _permit: permit,
        }
    }

    /// Moves the deadline on after activity.
    fn touch(&mut self) {
        let next = tokio::time::Instant::now() + self.idle;
        self.deadline.as_mut().reset(next);
    }
}

impl AsyncRead for IdleStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        match Pin::new(&mut self.inner).poll_read(cx, buf) {
            Poll::Ready(r) => {
                if buf.filled().len() > before {
                    self.touch();
                }
                Poll::Ready(r)
            }
            Poll::Pending => match self.deadline.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "admin connection idle",
                ))),
                Poll::Pending => Poll::Pending,
            },
        }
    }
}

impl AsyncWrite for IdleStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, data);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.touch();
        }
        r
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// The admin listener: accepts within the caps (refusals close at once) and wraps each
/// connection in an [`IdleStream`].
pub struct AdminListener {
    /// The bound socket.
    pub listener: tokio::net::TcpListener,
    /// The admin listener's own caps (separate from SIP's, so one cannot starve the other).
    pub limits: Arc<ConnectionLimits>,
}

impl axum::serve::Listener for AdminListener {
    type Io = IdleStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let (stream, addr) = match self.listener.accept().await {
                Ok(accepted) => accepted,
                Err(e) => {
                    // As axum's own listener does: out of files or similar; wait and go on.
                    tracing::warn!(error = %e, "admin API: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let Some(permit) = self.limits.try_admit(addr.ip(), "admin") else {
                continue; // dropping the socket closes it at once
            };
            let idle = self.limits.settings.idle;
            return (IdleStream::new(stream, idle, permit), addr);
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.listener.local_addr()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(per_source: u32, total: u32) -> Arc<ConnectionLimits> {
        ConnectionLimits::new(ConnLimitSettings {
            per_source,
            total,
            idle: Duration::from_secs(1),
        })
    }

    #[test]
    fn caps_per_source_and_in_total_and_frees_slots_on_drop() {
        let l = limits(2, 3);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let a1 = l.try_admit(a, "sip_tcp").expect("first from a");
        let _a2 = l.try_admit(a, "sip_tcp").expect("second from a");
        assert!(
            l.try_admit(a, "sip_tcp").is_none(),
            "third from a is over per_source"
        );
        let _b1 = l.try_admit(b, "sip_tcp").expect("b has its own share");
        assert!(l.try_admit(b, "sip_tcp").is_none(), "total reached");
        drop(a1);
        assert_eq!(l.live(), 2);
        assert!(l.try_admit(a, "sip_tcp").is_some(), "a's slot was freed");
    }

    #[test]
    fn forgets_sources_without_connections() {
        let l = limits(5, 10);
        for i in 0..10u8 {
            drop(l.try_admit(IpAddr::from([192, 0, 2, i]), "admin"));
        }
        assert_eq!(l.live(), 0);
        assert!(l.counts.lock().unwrap().per_source.is_empty());
    }
}
