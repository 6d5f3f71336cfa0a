//! The RTP port pool: each call leg gets its own even UDP port from the configured range
//! (`media.rtp_ports`), so firewalls can open exactly that range and no two calls share a port.
//!
//! A [`PortLease`] returns its port when dropped, so every exit path of a call releases it.
//! The pool is locked only at call setup, never per packet.

use std::io;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::ops::RangeInclusive;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use thiserror::Error;

/// Why no RTP socket could be had.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum PortError {
    /// The configured range holds no even port whose odd neighbour (RTCP) is in range too.
    #[error(
        "`media.rtp_ports` {first}-{last} holds no RTP/RTCP port pair: give at least two ports, \
         starting on an even one (e.g. 20000-20999)"
    )]
    EmptyRange {
        /// First port of the configured range.
        first: u16,
        /// Last port of the configured range.
        last: u16,
    },
    /// Every pair is leased to a call or bound by another program.
    #[error(
        "no free RTP port in {first}-{last}: {leased} in use by calls, {busy} bound by other \
         programs; widen `media.rtp_ports`"
    )]
    Exhausted {
        /// First port of the configured range.
        first: u16,
        /// Last port of the configured range.
        last: u16,
        /// Ports leased to calls.
        leased: usize,
        /// Ports that failed to bind because something else uses them.
        busy: usize,
    },
    /// Binding failed for a reason other than the port being taken (e.g. the address is not
    /// one of this host's), which no other port would fix.
    #[error("cannot bind RTP socket on {addr}: {source}")]
    Bind {
        /// The address we tried.
        addr: SocketAddr,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

/// The shared state behind the pool and its leases.
#[derive(Debug)]
struct Inner {
    /// The even RTP ports of the range, ascending.
    ports: Vec<u16>,
    /// Whether `ports[i]` is leased.
    leased: Vec<bool>,
    /// Number of `true` in `leased`.
    in_use: usize,
    /// Where the next search starts (round robin, so a just-released port rests a while and
    /// late packets of the old call do not reach the next one).
    next: usize,
}

/// Hands out even RTP ports (RTCP = RTP + 1 is reserved with each) from an inclusive range.
/// Cheap to clone; clones share the same pool.
#[derive(Clone, Debug)]
pub struct PortPool {
    /// The leases' shared state.
    inner: Arc<Mutex<Inner>>,
    /// First port of the configured range, for messages.
    first: u16,
    /// Last port of the configured range, for messages.
    last: u16,
}

/// One leased RTP port; the port goes back to the pool when this is dropped.
#[derive(Debug)]
pub struct PortLease {
    /// The pool to return to.
    inner: Arc<Mutex<Inner>>,
    /// Index in `Inner::ports`.
    index: usize,
    /// The RTP port.
    port: u16,
}

/// Locks the pool; a poisoned lock is still consistent (every update is a single assignment
/// pair that cannot panic midway), so it is used as is.
fn lock(inner: &Mutex<Inner>) -> MutexGuard<'_, Inner> {
    inner.lock().unwrap_or_else(PoisonError::into_inner)
}

impl PortPool {
    /// A pool over `range` (inclusive, as configured in `media.rtp_ports`). Uses the even ports
    /// whose odd neighbour is also in range.
    pub fn new(range: RangeInclusive<u16>) -> Result<PortPool, PortError> {
        let (first, last) = (*range.start(), *range.end());
        let start = u32::from(first) + u32::from(first) % 2;
        let ports: Vec<u16> = (start..u32::from(last))
            .step_by(2)
            .map(|p| p as u16)
            .collect();
        if ports.is_empty() {
            return Err(PortError::EmptyRange { first, last });
        }
        let leased = vec![false; ports.len()];
        let inner = Inner {
            ports,
            leased,
            in_use: 0,
            next: 0,
        };
        Ok(PortPool {
            inner: Arc::new(Mutex::new(inner)),
            first,
            last,
        })
    }

    /// Leases a free port and binds a non-blocking UDP socket on `ip` and that port, ready for
    /// `tokio::net::UdpSocket::from_std`. Ports bound by other programs are skipped.
    pub fn bind(&self, ip: IpAddr) -> Result<(PortLease, UdpSocket), PortError> {
        let mut inner = lock(&self.inner);
        let count = inner.ports.len();
        let mut busy = 0;
        for step in 0..count {
            let index = (inner.next + step) % count;
            if inner.leased[index] {
                continue;
            }
            let addr = SocketAddr::new(ip, inner.ports[index]);
            match UdpSocket::bind(addr) {
                Ok(socket) => {
                    socket
                        .set_nonblocking(true)
                        .map_err(|source| PortError::Bind { addr, source })?;
                    inner.leased[index] = true;
                    inner.in_use += 1;
                    inner.next = (index + 1) % count;
                    let lease = PortLease {
                        inner: Arc::clone(&self.inner),
                        index,
                        port: addr.port(),
                    };
                    return Ok((lease, socket));
                }
                Err(e) if e.kind() == io::ErrorKind::AddrInUse => busy += 1,
                Err(source) => return Err(PortError::Bind { addr, source }),
            }
        }
        Err(PortError::Exhausted {
            first: self.first,
            last: self.last,
            leased: inner.in_use,
            busy,
        })
    }

    /// Number of ports leased right now (tests assert it returns to 0: nothing leaked).
    pub fn in_use(&self) -> usize {
        lock(&self.inner).in_use
    }

    /// Number of RTP/RTCP pairs in the range: the most concurrent call legs possible.
    pub fn capacity(&self) -> usize {
        lock(&self.inner).ports.len()
    }
}

impl PortLease {
    /// The RTP port (even), for SDP `m=audio`.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The RTCP port reserved with it (RTP + 1).
    pub fn rtcp_port(&self) -> u16 {
        self.port + 1
    }
}

impl Drop for PortLease {
    fn drop(&mut self) {
        let mut inner = lock(&self.inner);
        if std::mem::replace(&mut inner.leased[self.index], false) {
            inner.in_use -= 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    const LOCAL: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

    /// An even port from `from` upward such that `2 * pairs` ports are free on localhost. Each
    /// test starts from its own `from` so parallel tests do not collide.
    fn free_range(from: u16, pairs: u16) -> u16 {
        let mut base = from;
        loop {
            let held: Vec<_> = (base..base + 2 * pairs)
                .map_while(|p| UdpSocket::bind((LOCAL, p)).ok())
                .collect();
            if held.len() == 2 * pairs as usize {
                return base;
            }
            base += 2 * pairs;
        }
    }

    #[test]
    fn range_bounds() {
        let ports = |r: RangeInclusive<u16>| PortPool::new(r).map(|p| lock(&p.inner).ports.clone());
        let odd = ports(20001..=20998).unwrap();
        assert_eq!(
            (odd.len(), odd[0], *odd.last().unwrap()),
            (498, 20002, 20996)
        );
        assert_eq!(ports(20000..=20999).unwrap().len(), 500);
        assert_eq!(ports(20000..=20001).unwrap(), [20000]);
        assert_eq!(ports(65534..=65535).unwrap(), [65534]);
        let (high, low) = (20999, 20000); // a reversed range, as a typo in the config gives
        for empty in [20001..=20002, 20000..=20000, high..=low] {
            let err = PortPool::new(empty.clone()).unwrap_err();
            assert!(matches!(err, PortError::EmptyRange { .. }), "{empty:?}");
            assert!(err.to_string().contains("media.rtp_ports"));
        }
    }

    #[test]
    fn exhaustion_names_the_range_and_key() {
        let base = free_range(41000, 3);
        let pool = PortPool::new(base..=base + 5).unwrap();
        let leases: Vec<_> = (0..3).map(|_| pool.bind(LOCAL).unwrap()).collect();
        let ports: Vec<u16> = leases.iter().map(|(l, _)| l.port()).collect();
        assert_eq!(ports, [base, base + 2, base + 4]);
        assert_eq!(leases[0].0.rtcp_port(), base + 1);
        assert_eq!(pool.in_use(), 3);
        let err = pool.bind(LOCAL).unwrap_err();
        assert!(
            matches!(
                err,
                PortError::Exhausted {
                    leased: 3,
                    busy: 0,
                    ..
                }
            ),
            "{err:?}"
        );
        let msg = err.to_string();
        assert!(
            msg.contains(&format!("{base}-{}", base + 5)) && msg.contains("`media.rtp_ports`"),
            "{msg}"
        );
    }

    #[test]
    fn drop_releases_and_round_robin_avoids_immediate_reuse() {
        let base = free_range(43000, 3);
        let pool = PortPool::new(base..=base + 5).unwrap();
        let (first, socket) = pool.bind(LOCAL).unwrap();
        assert_eq!(first.port(), base);
        let mut buf = [0u8; 4];
        assert_eq!(
            socket.recv(&mut buf).unwrap_err().kind(),
            io::ErrorKind::WouldBlock
        );
        drop((first, socket));
        assert_eq!(pool.in_use(), 0);
        let order: Vec<u16> = (0..4)
            .map(|_| pool.bind(LOCAL).map(|(l, _)| l.port()).unwrap())
            .collect();
        assert_eq!(
            order,
            [base + 2, base + 4, base, base + 2],
            "each lease dropped at once"
        );
        assert_eq!(pool.in_use(), 0);
        let clone = pool.clone();
        let held = clone.bind(LOCAL).unwrap();
        assert_eq!(pool.in_use(), 1, "clones share the pool");
        drop(held);
        assert_eq!(pool.in_use(), 0);
    }

    #[test]
    fn skips_ports_bound_by_other_programs() {
        let base = free_range(45000, 2);
        let squatter = UdpSocket::bind((LOCAL, base)).unwrap();
        let pool = PortPool::new(base..=base + 3).unwrap();
        let (lease, _socket) = pool.bind(LOCAL).unwrap();
        assert_eq!(lease.port(), base + 2);
        let err = pool.bind(LOCAL).unwrap_err();
        assert!(
            matches!(
                err,
                PortError::Exhausted {
                    leased: 1,
                    busy: 1,
                    ..
                }
            ),
            "{err:?}"
        );
        drop(squatter);
        assert_eq!(pool.bind(LOCAL).unwrap().0.port(), base);
    }

    #[test]
    fn foreign_address_is_a_bind_error_and_leaks_nothing() {
        let pool = PortPool::new(47000..=47999).unwrap();
        let err = pool
            .bind(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)))
            .unwrap_err();
        assert!(matches!(err, PortError::Bind { .. }), "{err:?}");
        assert_eq!(pool.in_use(), 0);
    }
}
