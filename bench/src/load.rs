//! The media load: every call sends 20 ms PCMU frames in both directions through the relay
//! under test, and every frame carries its send time, so each received packet is a latency
//! probe and the sent/received counts show loss exactly.
//!
//! All calls share two sockets of the benchmark: the phone side (`caller`) and the conference
//! side (`server`); those are the addresses in every SDP. The relay gives each call its own
//! ports, so a call is told apart by the port we send to, and a packet by the call index in
//! its payload.
//!
//! Alongside the calls run a few control streams that go straight from one socket to the
//! other: their latency is what the path costs without a relay, measured at the same moment.

use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

/// Bytes of G.711 in a 20 ms frame.
pub const FRAME: usize = 160;
/// Fixed RTP header length.
const HEADER: usize = 12;
/// Marks our frames in the payload, so prompt audio or strays are not counted.
const MAGIC: &[u8; 4] = b"DLBN";
/// Frame interval.
pub const PTIME: Duration = Duration::from_millis(20);
/// Direction index: phone → conference.
pub const UP: usize = 0;
/// Direction index: conference → phone.
pub const DOWN: usize = 1;
/// Added to the direction of a control stream's frames.
pub const CONTROL: usize = 2;
/// Numbers each [`run`], written into every frame: a frame that arrives after its window
/// ended (a relay's backlog) is not counted in the next one.
static WINDOW: AtomicU8 = AtomicU8::new(0);

/// Where one call's packets go: into the relay's port for each leg.
#[derive(Clone, Copy, Debug)]
pub struct Route {
    /// The relay's port that takes the phone's audio (sent from the `caller` socket).
    pub caller_to: SocketAddr,
    /// The relay's port that takes the conference's audio (sent from the `server` socket).
    pub server_to: SocketAddr,
}

/// The benchmark's two media sockets.
pub struct Endpoints {
    /// The phone side: the SDP address of every caller.
    pub caller: UdpSocket,
    /// The conference side: the SDP address of every conference leg.
    pub server: UdpSocket,
}

impl Endpoints {
    /// Binds both sockets on 127.0.0.1 with large kernel buffers, so the benchmark's own
    /// sockets are not where packets get lost.
    pub fn bind(caller_port: u16, server_port: u16) -> std::io::Result<Endpoints> {
        let caller = UdpSocket::bind(("127.0.0.1", caller_port))?;
        let server = UdpSocket::bind(("127.0.0.1", server_port))?;
        for s in [&caller, &server] {
            grow_buffers(s);
        }
        Ok(Endpoints { caller, server })
    }

    /// The phone side's address.
    pub fn caller_addr(&self) -> SocketAddr {
        self.caller.local_addr().expect("bound socket")
    }

    /// The conference side's address.
    pub fn server_addr(&self) -> SocketAddr {
        self.server.local_addr().expect("bound socket")
    }
}

extern "C" {
    fn setsockopt(fd: i32, level: i32, name: i32, val: *const std::ffi::c_void, len: u32) -> i32;
}

/// Asks for 8 MB receive and send buffers (SO_RCVBUFFORCE works as root beyond rmem_max).
fn grow_buffers(s: &UdpSocket) {
    const SOL_SOCKET: i32 = 1;
    const SO_SNDBUF: i32 = 7;
    const SO_RCVBUF: i32 = 8;
    const SO_RCVBUFFORCE: i32 = 33;
    let size: i32 = 8 << 20;
    let fd = s.as_raw_fd();
    let p = &size as *const i32 as *const std::ffi::c_void;
    // SAFETY: fd is a live socket, the option value is a valid i32 of the given length.
    unsafe {
        if setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, p, 4) != 0 {
            setsockopt(fd, SOL_SOCKET, SO_RCVBUF, p, 4);
        }
        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, p, 4);
    }
}

/// Latency histogram with 1 µs buckets up to 100 ms.
#[derive(Clone)]
pub struct Histogram {
    buckets: Vec<u64>,
    /// Samples of 100 ms or more.
    over: u64,
    count: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            buckets: vec![0; 100_000],
            over: 0,
            count: 0,
        }
    }
}

impl Histogram {
    /// Adds one sample in nanoseconds.
    pub fn add(&mut self, ns: u64) {
        let us = (ns / 1000) as usize;
        match self.buckets.get_mut(us) {
            Some(b) => *b += 1,
            None => self.over += 1,
        }
        self.count += 1;
    }

    /// Adds all samples of `other`.
    pub fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.buckets.iter_mut().zip(&other.buckets) {
            *a += b;
        }
        self.over += other.over;
        self.count += other.count;
    }

    /// The `q` quantile (0..1) in milliseconds, at the bucket's middle; `None` when empty.
    pub fn quantile_ms(&self, q: f64) -> Option<f64> {
        if self.count == 0 {
            return None;
        }
        let rank = ((q * self.count as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (us, n) in self.buckets.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return Some((us as f64 + 0.5) / 1000.0);
            }
        }
        Some(100.0)
    }
}

/// What one load run saw.
#[derive(Default)]
pub struct LoadResult {
    /// Frames sent per direction ([`UP`], [`DOWN`]).
    pub sent: [u64; 2],
    /// Our frames received per direction.
    pub received: [u64; 2],
    /// Datagrams received that are not our frames (prompts, strays).
    pub other: u64,
    /// One-way latency of every received frame, send to receive.
    pub latency: Histogram,
    /// One-way latency of the control streams, sent socket to socket without the relay at the
    /// same time: the loopback's and the benchmark's own share of `latency`, under the same
    /// load and the same noise from other processes.
    pub direct: Histogram,
    /// Wall time the senders ran.
    pub elapsed: Duration,
}

impl LoadResult {
    /// Adds the counts and latencies of another window.
    pub fn merge(&mut self, other: &LoadResult) {
        for d in 0..2 {
            self.sent[d] += other.sent[d];
            self.received[d] += other.received[d];
        }
        self.other += other.other;
        self.latency.merge(&other.latency);
        self.direct.merge(&other.direct);
        self.elapsed += other.elapsed;
    }

    /// Frames that were sent but never arrived, both directions.
    pub fn lost(&self) -> u64 {
        (self.sent[0] + self.sent[1]).saturating_sub(self.received[0] + self.received[1])
    }

    /// Frames that arrived, both directions: the packets the relay forwarded.
    pub fn forwarded(&self) -> u64 {
        self.received[0] + self.received[1]
    }
}

/// Nanoseconds since `epoch`: the clock shared by senders and receivers.
fn ns_since(epoch: Instant) -> u64 {
    epoch.elapsed().as_nanos() as u64
}

/// Writes frame `k` of call `call` in direction `dir` of window `window` into `pkt`, stamped
/// with `now_ns`.
pub fn write_frame(
    pkt: &mut [u8; HEADER + FRAME],
    window: u8,
    call: u32,
    dir: usize,
    k: u32,
    now_ns: u64,
) {
    pkt[0] = 0x80;
    pkt[1] = 0; // PCMU
    pkt[2..4].copy_from_slice(&(k as u16).to_be_bytes());
    pkt[4..8].copy_from_slice(&(k.wrapping_mul(FRAME as u32)).to_be_bytes());
    let ssrc = 0x1000_0000u32 + call * 2 + dir as u32;
    pkt[8..12].copy_from_slice(&ssrc.to_be_bytes());
    let p = &mut pkt[HEADER..];
    p.fill(0xFF);
    p[0..4].copy_from_slice(MAGIC);
    p[4..8].copy_from_slice(&call.to_be_bytes());
    p[8] = dir as u8;
    p[9] = window;
    p[16..24].copy_from_slice(&now_ns.to_be_bytes());
}

/// Reads the window, direction (with [`CONTROL`] set for control streams) and send time of
/// one of our frames; `None` for anything else.
/// The RTP header may have been rewritten (and grown by CSRCs) by the relay, so the payload
/// is found by the header's own length.
pub fn read_frame(pkt: &[u8]) -> Option<(u8, usize, u64)> {
    if pkt.len() < HEADER || pkt[0] >> 6 != 2 {
        return None;
    }
    let start = HEADER + 4 * (pkt[0] & 0x0F) as usize;
    let p = pkt.get(start..start + 24)?;
    if &p[0..4] != MAGIC || p[8] > 3 {
        return None;
    }
    let ts = u64::from_be_bytes(p[16..24].try_into().ok()?);
    Some((p[9], p[8] as usize, ts))
}

/// Receives on `socket` until `stop`, counting our frames of `window` and their latency, and
/// noting in `last` when the last one arrived.
fn receive(
    socket: UdpSocket,
    window: u8,
    epoch: Instant,
    stop: Arc<AtomicBool>,
    last: Arc<AtomicU64>,
) -> LoadResult {
    socket
        .set_read_timeout(Some(Duration::from_millis(20)))
        .ok();
    let mut r = LoadResult::default();
    let mut buf = [0u8; 2048];
    while !stop.load(Ordering::Relaxed) {
        let Ok(n) = socket.recv(&mut buf) else {
            continue;
        };
        let now = ns_since(epoch);
        match read_frame(&buf[..n]) {
            Some((w, _, _)) if w != window => r.other += 1,
            Some((_, dir, sent)) if dir & CONTROL != 0 => r.direct.add(now.saturating_sub(sent)),
            Some((_, dir, sent)) => {
                last.store(now, Ordering::Relaxed);
                r.received[dir] += 1;
                r.latency.add(now.saturating_sub(sent));
            }
            None => r.other += 1,
        }
    }
    r
}

/// Sends 20 ms frames for every call in both directions for `duration`, spread evenly over
/// each 20 ms so the load is smooth, plus `control` direct streams; then waits until no frame
/// came for `drain` (at most 5 s) and returns the counts and latencies.
pub fn run(
    eps: &Endpoints,
    relayed: &[Route],
    control: usize,
    duration: Duration,
    drain: Duration,
) -> LoadResult {
    let direct = Route {
        caller_to: eps.server_addr(),
        server_to: eps.caller_addr(),
    };
    let mut routes = relayed.to_vec();
    // Control streams interleaved evenly among the calls.
    let every = (relayed.len() / control.max(1)).max(1);
    let mut kinds = Vec::with_capacity(relayed.len() + control);
    let mut added = 0;
    for i in 0..relayed.len() {
        kinds.push(0);
        if added < control && i % every == 0 {
            kinds.push(CONTROL);
            added += 1;
        }
    }
    while added < control {
        kinds.push(CONTROL);
        added += 1;
    }
    routes.clear();
    let mut next = relayed.iter();
    for k in &kinds {
        routes.push(if *k == 0 {
            *next.next().expect("one per call")
        } else {
            direct
        });
    }
    let epoch = Instant::now();
    let window = WINDOW.fetch_add(1, Ordering::Relaxed);
    let stop = Arc::new(AtomicBool::new(false));
    let last = Arc::new(AtomicU64::new(0));
    let spawn = |s: &UdpSocket| {
        let s = s.try_clone().expect("clone socket");
        let (stop, last) = (stop.clone(), last.clone());
        thread::spawn(move || receive(s, window, epoch, stop, last))
    };
    let rx_caller = spawn(&eps.caller);
    let rx_server = spawn(&eps.server);
    let mut result = LoadResult::default();
    let start = Instant::now();
    let n = routes.len().max(1) as u32;
    let ticks = (duration.as_micros() / PTIME.as_micros()) as u32;
    let mut pkt = [0u8; HEADER + FRAME];
    for k in 0..ticks {
        for (i, route) in routes.iter().enumerate() {
            let due = start + PTIME * k + PTIME * i as u32 / n;
            let now = Instant::now();
            if due > now + Duration::from_micros(200) {
                thread::sleep(due - now);
            }
            let kind = kinds[i];
            write_frame(&mut pkt, window, i as u32, UP | kind, k, ns_since(epoch));
            if eps.caller.send_to(&pkt, route.caller_to).is_ok() && kind == 0 {
                result.sent[UP] += 1;
            }
            write_frame(&mut pkt, window, i as u32, DOWN | kind, k, ns_since(epoch));
            if eps.server.send_to(&pkt, route.server_to).is_ok() && kind == 0 {
                result.sent[DOWN] += 1;
            }
        }
    }
    result.elapsed = start.elapsed();
    let ended = Instant::now();
    loop {
        thread::sleep(Duration::from_millis(20));
        let quiet = ns_since(epoch).saturating_sub(last.load(Ordering::Relaxed));
        if quiet > drain.as_nanos() as u64 || ended.elapsed() > Duration::from_secs(5) {
            break;
        }
    }
    stop.store(true, Ordering::Relaxed);
    for h in [rx_caller, rx_server] {
        result.merge(&h.join().expect("receiver thread"));
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_round_trips_and_survives_csrcs() {
        let mut pkt = [0u8; HEADER + FRAME];
        write_frame(&mut pkt, 9, 7, DOWN, 3, 123_456);
        assert_eq!(read_frame(&pkt), Some((9, DOWN, 123_456)));
        // A relay that adds one CSRC shifts the payload by 4 bytes.
        let mut grown = pkt[..HEADER].to_vec();
        grown[0] |= 1;
        grown.extend_from_slice(&[0; 4]);
        grown.extend_from_slice(&pkt[HEADER..]);
        assert_eq!(read_frame(&grown), Some((9, DOWN, 123_456)));
        assert_eq!(read_frame(&pkt[..20]), None);
        let mut other = pkt;
        other[HEADER] = b'X';
        assert_eq!(read_frame(&other), None);
    }

    #[test]
    fn quantiles_of_a_histogram() {
        let mut h = Histogram::default();
        assert_eq!(h.quantile_ms(0.5), None);
        for us in 1..=100u64 {
            h.add(us * 1000);
        }
        assert_eq!(h.quantile_ms(0.5), Some(0.0505));
        assert_eq!(h.quantile_ms(0.99), Some(0.0995));
        h.add(1_000_000_000);
        assert_eq!(h.count, 101);
        assert_eq!(h.quantile_ms(1.0), Some(100.0));
    }
}
