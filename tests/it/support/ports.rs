//! Port blocks for tests that run in parallel.
//!
//! sipp, dialin and the Rust RTP peers all need fixed port numbers known before they start
//! (sipp's `-p`/`-mp`, dialin's config, SDP). Binding port 0 does not work for those, so every
//! test asks [`PortBlock::take`] for a block of consecutive ports.
//!
//! Why this shape: tests run as threads in one process, and several test binaries may run at
//! once. Within a process an atomic counter hands out disjoint blocks; across processes each one
//! starts at a random offset and every port of a block is checked free (UDP and TCP, on
//! 127.0.0.1 and 127.0.0.2) before it is handed out. The range 20000–32000 lies below Linux's
//! default ephemeral range (32768–60999), so sockets bound to port 0 elsewhere (dialin's own
//! outgoing sockets, other tests) do not land inside a block after it was checked.

use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, UdpSocket};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;

/// Lowest port handed out.
const RANGE_START: u32 = 20_000;
/// One past the highest port handed out.
const RANGE_END: u32 = 32_000;
/// Blocks are aligned to this many ports so different sizes never overlap.
const STRIDE: u32 = 16;

/// Consecutive ports `base .. base + len`, checked free when handed out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortBlock {
    /// First port of the block.
    pub base: u16,
    /// Number of ports in the block.
    pub len: u16,
}

impl PortBlock {
    /// A block of `len` (1..=16) free consecutive ports, distinct from every other block this
    /// process handed out. Panics if no free block is found after many tries.
    pub fn take(len: u16) -> PortBlock {
        assert!(
            (1..=STRIDE as u16).contains(&len),
            "a block holds 1..=16 ports"
        );
        let counter = next_counter();
        let slots = (RANGE_END - RANGE_START) / STRIDE;
        for _ in 0..slots {
            let slot = counter.fetch_add(1, Ordering::Relaxed) % slots;
            let base = (RANGE_START + slot * STRIDE) as u16;
            let block = PortBlock { base, len };
            if block.all_free() {
                return block;
            }
        }
        panic!("no free block of {len} ports between {RANGE_START} and {RANGE_END}");
    }

    /// The `index`-th port of the block (panics when outside it).
    pub fn port(&self, index: u16) -> u16 {
        assert!(
            index < self.len,
            "port {index} is outside a block of {}",
            self.len
        );
        self.base + index
    }

    /// Whether every port binds for UDP and TCP on both loopback addresses the tests use.
    fn all_free(&self) -> bool {
        (self.base..self.base + self.len).all(|port| {
            [Ipv4Addr::new(127, 0, 0, 1), Ipv4Addr::new(127, 0, 0, 2)]
                .iter()
                .all(|ip| {
                    let addr = SocketAddrV4::new(*ip, port);
                    UdpSocket::bind(addr).is_ok() && TcpListener::bind(addr).is_ok()
                })
        })
    }
}

/// The process-wide slot counter, starting at a random slot so concurrent test binaries
/// begin in different places.
fn next_counter() -> &'static AtomicU32 {
    static COUNTER: OnceLock<AtomicU32> = OnceLock::new();
    COUNTER.get_or_init(|| {
        let slots = (RANGE_END - RANGE_START) / STRIDE;
        AtomicU32::new(rand::random_range(0..slots))
    })
}
