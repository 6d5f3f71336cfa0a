//! floor-relay: the least a relay with one UDP socket per leg can do per packet, to show how
//! far dialin and rtpengine are from the floor of their design (bench/README.md, "The floor").
//!
//! It forwards every datagram from a call's phone-side port to the conference side and back
//! (sent from the other side's port, as a relay must), and nothing else: no RTP parsing, no
//! counters, no timers. It understands just enough of rtpengine's ng protocol (ping, offer,
//! answer, delete) for `dialin-bench --reference`, and takes rtpengine's arguments (only
//! `--listen-ng=` matters). `--mode=` picks the event loop, on two worker threads with calls
//! dealt alternately, as dialin's shards are:
//!
//! - `epoll`: one epoll per thread, `recvmmsg` per readable socket, `sendto` per packet;
//! - `tokio`: one current-thread runtime per thread and one task per call polling its two
//!   sockets: dialin's structure without dialin's per-call work;
//! - `uring`: one io_uring per thread, a multishot `recvmsg` per socket into provided buffers
//!   and a `send` per packet, submitted in batches: fewer kernel crossings.
//!
//! A measuring tool, not a product: a broken request ends the process with a message.

use io_uring::{cqueue, opcode, squeue, types, IoUring};
use std::collections::{HashMap, VecDeque};
use std::mem::{size_of, zeroed};
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::{FromRawFd, IntoRawFd};
use std::sync::{Arc, Mutex};

/// Worker threads, as many as dialin's shards on the benchmark's 2-core machine.
const THREADS: usize = 2;
/// Datagrams read per `recvmmsg` at most.
const BATCH: usize = 8;
/// Largest datagram relayed.
const MAX_PACKET: usize = 1500;

/// One socket of a call and where what arrives on it goes.
#[derive(Clone, Copy)]
struct Leg {
    /// Receives the datagrams of this side.
    fd: i32,
    /// The other side's socket, which sends them on, so that each endpoint sees its packets
    /// come from the port it was given, as with dialin and rtpengine.
    out: i32,
    dest: libc::sockaddr_in,
}

/// Which event loop relays.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Mode {
    Epoll,
    Tokio,
    Uring,
}

/// Hands a new call's two legs to a worker thread.
enum Worker {
    Epoll(i32),
    Tokio(tokio::runtime::Handle),
    Uring(Arc<Mutex<Vec<Leg>>>),
}

fn main() {
    let mut ng = "127.0.0.1:2223".to_string();
    let mut mode = Mode::Epoll;
    for a in std::env::args().skip(1) {
        if let Some(v) = a.strip_prefix("--listen-ng=") {
            ng = v.into();
        } else if let Some(v) = a.strip_prefix("--mode=") {
            mode = match v {
                "epoll" => Mode::Epoll,
                "tokio" => Mode::Tokio,
                "uring" => Mode::Uring,
                _ => fail(&format!("--mode={v}: use epoll, tokio or uring")),
            };
        }
        // Everything else is rtpengine's and ignored.
    }
    let workers: Vec<Worker> = (0..THREADS).map(|i| start_worker(mode, i)).collect();
    let control = UdpSocket::bind(&ng).unwrap_or_else(|e| fail(&format!("bind {ng}: {e}")));
    serve_ng(&control, &workers);
}

fn fail(msg: &str) -> ! {
    eprintln!("floor-relay: {msg}");
    std::process::exit(2);
}

fn start_worker(mode: Mode, i: usize) -> Worker {
    let name = format!("floor-{i}");
    let spawn = |f: Box<dyn FnOnce() + Send>| {
        std::thread::Builder::new()
            .name(name.clone())
            .spawn(f)
            .unwrap_or_else(|e| fail(&format!("thread: {e}")));
    };
    match mode {
        Mode::Epoll => {
            // SAFETY: plain system call.
            let ep = unsafe { libc::epoll_create1(0) };
            if ep < 0 {
                fail("epoll_create1 failed");
            }
            spawn(Box::new(move || epoll_worker(ep)));
            Worker::Epoll(ep)
        }
        Mode::Tokio => {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_io()
                .build()
                .unwrap_or_else(|e| fail(&format!("runtime: {e}")));
            let handle = rt.handle().clone();
            spawn(Box::new(move || rt.block_on(std::future::pending::<()>())));
            Worker::Tokio(handle)
        }
        Mode::Uring => {
            let queue = Arc::new(Mutex::new(Vec::new()));
            let q = queue.clone();
            spawn(Box::new(move || uring_worker(q)));
            Worker::Uring(queue)
        }
    }
}

/// Answers ng requests until the process is killed. A call's phone-side socket is made at
/// the offer (its port goes to the conference), its conference-side socket at the answer
/// (its port goes to the phone); then both go to the next worker.
fn serve_ng(control: &UdpSocket, workers: &[Worker]) {
    let mut buf = vec![0u8; 65536];
    let mut offered: HashMap<String, (SocketAddr, UdpSocket)> = HashMap::new();
    let mut next = 0;
    loop {
        let Ok((n, from)) = control.recv_from(&mut buf) else {
            continue;
        };
        let text = String::from_utf8_lossy(&buf[..n]).to_string();
        let Some((cookie, body)) = text.split_once(' ') else {
            continue;
        };
        let call = field(body, "call-id").unwrap_or_default().to_string();
        let media = field(body, "sdp").and_then(sdp_audio);
        let reply = match (field(body, "command"), media) {
            (Some("ping"), _) => "d6:result4:ponge".to_string(),
            (Some("offer"), Some(phone)) => {
                let takes_conference = bind_leg();
                let port = local(&takes_conference);
                offered.insert(call, (phone, takes_conference));
                ok_with_sdp(port)
            }
            (Some("answer"), Some(conference)) => match offered.remove(&call) {
                Some((phone, takes_conference)) => {
                    let takes_phone = bind_leg();
                    let port = local(&takes_phone);
                    let (phone_fd, conference_fd) =
                        (takes_phone.into_raw_fd(), takes_conference.into_raw_fd());
                    let legs = [
                        Leg {
                            fd: phone_fd,
                            out: conference_fd,
                            dest: sockaddr(conference),
                        },
                        Leg {
                            fd: conference_fd,
                            out: phone_fd,
                            dest: sockaddr(phone),
                        },
                    ];
                    add_call(&workers[next % workers.len()], legs);
                    next += 1;
                    ok_with_sdp(port)
                }
                None => error("unknown call"),
            },
            (Some("delete"), _) => "d6:result2:oke".to_string(),
            _ => error("unsupported request"),
        };
        control
            .send_to(format!("{cookie} {reply}").as_bytes(), from)
            .ok();
    }
}

fn error(reason: &str) -> String {
    format!("d6:result5:error12:error-reason{}:{reason}e", reason.len())
}

fn ok_with_sdp(media: SocketAddr) -> String {
    let sdp = format!(
        "v=0\r\no=- 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n\
         m=audio {port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n",
        ip = media.ip(),
        port = media.port()
    );
    format!("d6:result2:ok3:sdp{}:{sdp}e", sdp.len())
}

/// The string value of `key` in a flat bencoded dictionary.
fn field<'a>(dict: &'a str, key: &str) -> Option<&'a str> {
    let pattern = format!("{}:{key}", key.len());
    let rest = &dict[dict.find(&pattern)? + pattern.len()..];
    let (len, rest) = rest.split_once(':')?;
    rest.get(..len.parse().ok()?)
}

/// The audio address of an SDP body (IPv4 only).
fn sdp_audio(body: &str) -> Option<SocketAddr> {
    let ip = body
        .lines()
        .find_map(|l| l.trim().strip_prefix("c=IN IP4 "))?;
    let port = body
        .lines()
        .find_map(|l| l.trim().strip_prefix("m=audio "))?
        .split_whitespace()
        .next()?;
    format!("{}:{port}", ip.trim()).parse().ok()
}

fn bind_leg() -> UdpSocket {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap_or_else(|e| fail(&format!("bind: {e}")));
    s.set_nonblocking(true)
        .unwrap_or_else(|e| fail(&format!("nonblocking: {e}")));
    s
}

fn local(s: &UdpSocket) -> SocketAddr {
    s.local_addr()
        .unwrap_or_else(|e| fail(&format!("local address: {e}")))
}

fn sockaddr(a: SocketAddr) -> libc::sockaddr_in {
    let SocketAddr::V4(a) = a else {
        fail("IPv4 only")
    };
    // SAFETY: sockaddr_in is plain old data; all-zero is valid.
    let mut s: libc::sockaddr_in = unsafe { zeroed() };
    s.sin_family = libc::AF_INET as u16;
    s.sin_port = a.port().to_be();
    s.sin_addr.s_addr = u32::from(*a.ip()).to_be();
    s
}

fn add_call(worker: &Worker, legs: [Leg; 2]) {
    match worker {
        Worker::Epoll(ep) => {
            for leg in legs {
                // Leaked on purpose: a leg lives as long as the process.
                let ptr = Box::into_raw(Box::new(leg));
                let mut ev = libc::epoll_event {
                    events: (libc::EPOLLIN | libc::EPOLLET) as u32,
                    u64: ptr as u64,
                };
                // SAFETY: `ev` is a valid event; the fd is open.
                unsafe { libc::epoll_ctl(*ep, libc::EPOLL_CTL_ADD, leg.fd, &mut ev) };
            }
        }
        Worker::Tokio(handle) => {
            handle.spawn(tokio_call(legs));
        }
        Worker::Uring(queue) => queue.lock().expect("queue").extend(legs),
    }
}

/// Receive buffers for one `recvmmsg`.
struct Batch {
    bufs: Vec<[u8; MAX_PACKET]>,
}

impl Batch {
    fn new() -> Batch {
        Batch {
            bufs: vec![[0u8; MAX_PACKET]; BATCH],
        }
    }

    /// Reads what is queued on `leg` (one `recvmmsg`) and sends each datagram on; returns
    /// how many were read.
    fn relay(&mut self, leg: &Leg) -> usize {
        // SAFETY: every pointer set below points into `self.bufs` or the local arrays, which
        // outlive the calls, with the lengths of what they point to.
        unsafe {
            let mut iov: [libc::iovec; BATCH] = zeroed();
            let mut msgs: [libc::mmsghdr; BATCH] = zeroed();
            for i in 0..BATCH {
                iov[i].iov_base = self.bufs[i].as_mut_ptr().cast();
                iov[i].iov_len = MAX_PACKET;
                msgs[i].msg_hdr.msg_iov = &mut iov[i];
                msgs[i].msg_hdr.msg_iovlen = 1;
            }
            let n = libc::recvmmsg(
                leg.fd,
                msgs.as_mut_ptr(),
                BATCH as u32,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            );
            if n <= 0 {
                return 0;
            }
            for (buf, msg) in self.bufs.iter().zip(&msgs).take(n as usize) {
                libc::sendto(
                    leg.out,
                    buf.as_ptr().cast(),
                    msg.msg_len as usize,
                    0,
                    (&leg.dest as *const libc::sockaddr_in).cast(),
                    size_of::<libc::sockaddr_in>() as u32,
                );
            }
            n as usize
        }
    }
}

fn epoll_worker(ep: i32) {
    // SAFETY: epoll_event is plain old data.
    let mut events: [libc::epoll_event; 256] = unsafe { zeroed() };
    let mut batch = Batch::new();
    loop {
        // SAFETY: `events` has room for 256 entries.
        let n = unsafe { libc::epoll_wait(ep, events.as_mut_ptr(), 256, -1) };
        for ev in events.iter().take(n.max(0) as usize) {
            // SAFETY: every registered pointer is a leaked Box<Leg>.
            let leg = unsafe { &*(ev.u64 as *const Leg) };
            // Edge-triggered: read until a short batch says the queue is empty.
            while batch.relay(leg) == BATCH {}
        }
    }
}

async fn tokio_call(legs: [Leg; 2]) {
    use tokio::io::unix::AsyncFd;
    use tokio::io::Interest;
    let sockets = legs.map(|leg| {
        // SAFETY: the fd came from `into_raw_fd` and is owned by this task from here on; the
        // AsyncFd owns the socket, so the fd stays open and the same while registered.
        let socket = unsafe { UdpSocket::from_raw_fd(leg.fd) };
        unsafe { AsyncFd::register_with_interest(socket, Interest::READABLE) }
            .unwrap_or_else(|e| fail(&format!("register: {}", e.into_parts().1)))
    });
    let mut batch = Batch::new();
    loop {
        let ready = std::future::poll_fn(|cx| {
            match sockets
                .iter()
                .position(|s| s.poll_read_ready(cx).is_ready())
            {
                Some(i) => std::task::Poll::Ready(i),
                None => std::task::Poll::Pending,
            }
        })
        .await;
        let leg = &legs[ready];
        // A short batch clears the readiness (WouldBlock), as dialin's relay does.
        let _ = sockets[ready].try_io(Interest::READABLE, |_| {
            if batch.relay(leg) < BATCH {
                Err(std::io::ErrorKind::WouldBlock.into())
            } else {
                Ok(())
            }
        });
    }
}

/// Provided buffers per ring and their size (room for the `recvmsg` header and the name).
const BUFFERS: u16 = 4096;
const BUFFER_SIZE: usize = 2048;
const GROUP: u16 = 1;
/// What a completion is for: the top byte of its user data.
const RECV: u64 = 0;
const SEND: u64 = 1;
const OTHER: u64 = 2;

fn user_data(kind: u64, index: u64) -> u64 {
    (kind << 56) | index
}

fn uring_worker(queue: Arc<Mutex<Vec<Leg>>>) {
    let mut ring: IoUring = IoUring::builder()
        .setup_single_issuer()
        .setup_defer_taskrun()
        .build(8192)
        .or_else(|_| IoUring::new(8192))
        .unwrap_or_else(|e| fail(&format!("io_uring: {e}")));
    let mut pool = vec![0u8; BUFFERS as usize * BUFFER_SIZE];
    // Reserved so that no push moves a leg while a send still points at its address.
    let mut legs: Vec<Leg> = Vec::with_capacity(1 << 16);
    // SAFETY: msghdr is plain old data; only the name length matters to multishot recvmsg.
    let mut msghdr: libc::msghdr = unsafe { zeroed() };
    msghdr.msg_namelen = size_of::<libc::sockaddr_storage>() as u32;
    // Wakes the loop every 20 ms so that new calls are picked up on an idle ring.
    let tick = types::Timespec::new().nsec(20_000_000);
    let mut pending: VecDeque<squeue::Entry> = VecDeque::new();
    pending.push_back(
        opcode::ProvideBuffers::new(pool.as_mut_ptr(), BUFFER_SIZE as i32, BUFFERS, GROUP, 0)
            .build()
            .user_data(user_data(OTHER, 0)),
    );
    pending.push_back(
        opcode::Timeout::new(&tick)
            .count(0)
            .flags(types::TimeoutFlags::MULTISHOT)
            .build()
            .user_data(user_data(OTHER, 0)),
    );
    let recv = |fd: i32, index: usize, msghdr: &libc::msghdr| {
        opcode::RecvMsgMulti::new(types::Fd(fd), msghdr, GROUP)
            .build()
            .user_data(user_data(RECV, index as u64))
    };
    let mut done: Vec<cqueue::Entry> = Vec::with_capacity(8192);
    loop {
        if let Ok(mut new) = queue.try_lock() {
            for leg in new.drain(..) {
                legs.push(leg);
                pending.push_back(recv(leg.fd, legs.len() - 1, &msghdr));
            }
        }
        {
            let mut sq = ring.submission();
            while let Some(e) = pending.pop_front() {
                // SAFETY: every entry points at memory that outlives its completion (the
                // pool, `legs`, `msghdr`, `tick`, all alive for the loop's life).
                if unsafe { sq.push(&e) }.is_err() {
                    pending.push_front(e);
                    break;
                }
            }
        }
        ring.submit_and_wait(1).ok();
        done.extend(ring.completion());
        for cqe in done.drain(..) {
            let index = (cqe.user_data() & ((1 << 56) - 1)) as usize;
            match cqe.user_data() >> 56 {
                RECV => {
                    let leg = legs[index];
                    if !cqueue::more(cqe.flags()) {
                        // Out of buffers or an error ended the multishot: arm it again.
                        pending.push_back(recv(leg.fd, index, &msghdr));
                    }
                    let Some(bid) = cqueue::buffer_select(cqe.flags()) else {
                        continue;
                    };
                    let start = bid as usize * BUFFER_SIZE;
                    let len = cqe.result().max(0) as usize;
                    let (ptr, plen) =
                        match types::RecvMsgOut::parse(&pool[start..start + len], &msghdr) {
                            Ok(out) => (out.payload_data().as_ptr(), out.payload_data().len()),
                            Err(()) => {
                                pending.push_back(provide(&mut pool, bid));
                                continue;
                            }
                        };
                    let dest: *const libc::sockaddr_in = &legs[index].dest;
                    pending.push_back(
                        opcode::Send::new(types::Fd(leg.out), ptr, plen as u32)
                            .dest_addr(dest.cast())
                            .dest_addr_len(size_of::<libc::sockaddr_in>() as u32)
                            .build()
                            .user_data(user_data(SEND, bid as u64)),
                    );
                }
                // The send is done with its buffer: give it back to the kernel.
                SEND => pending.push_back(provide(&mut pool, index as u16)),
                _ => {}
            }
        }
    }
}

fn provide(pool: &mut [u8], bid: u16) -> squeue::Entry {
    let buf = pool[bid as usize * BUFFER_SIZE..].as_mut_ptr();
    opcode::ProvideBuffers::new(buf, BUFFER_SIZE as i32, 1, GROUP, bid)
        .build()
        .user_data(user_data(OTHER, 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_fields_and_the_audio_address_of_an_offer() {
        let sdp = "v=0\r\nc=IN IP4 127.0.0.1\r\nm=audio 4000 RTP/AVP 0\r\n";
        let req = format!("d7:command5:offer7:call-id3:c-13:sdp{}:{sdp}e", sdp.len());
        assert_eq!(field(&req, "command"), Some("offer"));
        assert_eq!(field(&req, "call-id"), Some("c-1"));
        assert_eq!(
            field(&req, "sdp").and_then(sdp_audio),
            Some("127.0.0.1:4000".parse().unwrap())
        );
        assert_eq!(field(&req, "from-tag"), None);
        assert_eq!(field("d7:command9:offe", "command"), None, "cut short");
    }

    #[test]
    fn its_answers_carry_an_sdp_the_benchmark_can_read() {
        let reply = ok_with_sdp("127.0.0.1:5000".parse().unwrap());
        assert_eq!(field(&reply, "result"), Some("ok"));
        assert_eq!(
            field(&reply, "sdp").and_then(sdp_audio),
            Some("127.0.0.1:5000".parse().unwrap())
        );
        assert_eq!(field(&error("nope"), "error-reason"), Some("nope"));
    }
}
