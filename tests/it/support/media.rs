//! [`RtpPeer`]: a small RTP endpoint written in Rust, standing in for the media side of a BBB
//! server's FreeSWITCH (or recording what dialin sends a caller).
//!
//! sipp can send RTP (pcap replay, echo) but cannot record it, so every assertion about audio
//! goes through an `RtpPeer`: it sends 20 ms PCMU frames with its own signature
//! ([`payload::conference_frame`] by default), and records every datagram that arrives, with its
//! source and arrival time. A std thread with a 5 ms receive timeout drives it; tests inspect it
//! with [`RtpPeer::recording`] while it runs (polled with [`super::wait::wait_for`]).
//!
//! Where it sends ([`SendTo`]): nowhere, or — like FreeSWITCH and most SBCs — back to the
//! source of the first packet it receives (symmetric RTP).

use super::payload::{self, PayloadKind};
use super::rtp::{decode_digits, Rtp};
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Where an [`RtpPeer`] sends its frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendTo {
    /// Only receive.
    Nothing,
    /// Start sending to the source of the first received packet (symmetric RTP).
    FirstSource,
}

/// One received datagram.
#[derive(Debug, Clone)]
pub struct Received {
    /// Time since the peer started.
    pub at: Duration,
    /// The sender's address.
    pub from: SocketAddr,
    /// The datagram as received.
    pub data: Vec<u8>,
}

impl Received {
    /// The datagram parsed as RTP, `None` if it is not RTP.
    pub fn rtp(&self) -> Option<Rtp<'_>> {
        Rtp::parse(&self.data)
    }
}

/// Everything a peer received and how much it sent.
#[derive(Debug, Clone, Default)]
pub struct Recording {
    /// Every datagram in arrival order.
    pub received: Vec<Received>,
    /// Number of frames sent.
    pub sent: u32,
    /// Where the frames went (once known).
    pub sent_to: Option<SocketAddr>,
}

impl Recording {
    /// The received datagrams that parse as RTP.
    pub fn rtp(&self) -> impl Iterator<Item = Rtp<'_>> {
        self.received.iter().filter_map(Received::rtp)
    }

    /// How many received packets of payload type `pt` match `kind`.
    fn count(&self, pt: u8, kind: fn(PayloadKind) -> bool) -> usize {
        self.rtp()
            .filter(|p| p.payload_type == pt && kind(payload::classify(p.payload)))
            .count()
    }

    /// Received PCMU (PT 0) frames that are the caller's audio.
    pub fn caller_audio(&self) -> usize {
        self.count(0, |k| matches!(k, PayloadKind::Caller(_)))
    }

    /// Received PCMU (PT 0) frames that are the conference side's audio (e.g. echoed back).
    pub fn conference_audio(&self) -> usize {
        self.count(0, |k| matches!(k, PayloadKind::Conference(_)))
    }

    /// Received PCMU (PT 0) frames that are neither signed audio nor pure silence: prompts,
    /// comfort noise, anything unexpected. A bridged conference side should see none.
    pub fn other_audio(&self) -> usize {
        self.count(0, |k| k == PayloadKind::Other)
    }

    /// The digits in the received RFC 4733 events of payload type `event_pt`.
    pub fn digits(&self, event_pt: u8) -> String {
        decode_digits(self.rtp(), event_pt)
    }

    /// The distinct SSRCs received, in order of first appearance.
    pub fn ssrcs(&self) -> Vec<u32> {
        let mut ssrcs = Vec::new();
        for packet in self.rtp() {
            if !ssrcs.contains(&packet.ssrc) {
                ssrcs.push(packet.ssrc);
            }
        }
        ssrcs
    }

    /// The distinct source addresses, in order of first appearance.
    pub fn sources(&self) -> Vec<SocketAddr> {
        let mut sources = Vec::new();
        for packet in &self.received {
            if !sources.contains(&packet.from) {
                sources.push(packet.from);
            }
        }
        sources
    }
}

/// A running RTP endpoint; stops when dropped. See the module docs.
pub struct RtpPeer {
    local: SocketAddr,
    stop: Arc<AtomicBool>,
    recording: Arc<Mutex<Recording>>,
    thread: Option<JoinHandle<()>>,
}

impl RtpPeer {
    /// Binds `local` and starts sending [`payload::conference_frame`]s as decided by `send_to`.
    pub fn start(local: SocketAddr, send_to: SendTo) -> RtpPeer {
        RtpPeer::start_with(local, send_to, payload::conference_frame)
    }

    /// Like [`RtpPeer::start`], with the frames made by `frame(counter)`.
    pub fn start_with(
        local: SocketAddr,
        send_to: SendTo,
        frame: fn(u32) -> [u8; payload::FRAME_LEN],
    ) -> RtpPeer {
        let socket = UdpSocket::bind(local).unwrap_or_else(|e| panic!("binding {local}: {e}"));
        socket
            .set_read_timeout(Some(Duration::from_millis(5)))
            .expect("a non-zero read timeout is valid");
        let local = socket.local_addr().expect("a bound socket has an address");
        let stop = Arc::new(AtomicBool::new(false));
        let recording = Arc::new(Mutex::new(Recording::default()));
        let thread = {
            let (stop, recording) = (stop.clone(), recording.clone());
            std::thread::spawn(move || run(socket, send_to, frame, &stop, &recording))
        };
        RtpPeer {
            local,
            stop,
            recording,
            thread: Some(thread),
        }
    }

    /// The bound address (put it in an SDP).
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// A copy of what was recorded so far.
    pub fn recording(&self) -> Recording {
        self.recording
            .lock()
            .expect("the peer thread never panics holding the lock")
            .clone()
    }

    /// Stops the peer and returns everything it recorded.
    pub fn stop(mut self) -> Recording {
        self.shut_down();
        self.recording()
    }

    fn shut_down(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            thread.join().expect("the RTP peer thread does not panic");
        }
    }
}

impl Drop for RtpPeer {
    fn drop(&mut self) {
        self.shut_down();
    }
}

/// The peer's loop: send a frame every 20 ms once the target is known, record every arrival.
fn run(
    socket: UdpSocket,
    send_to: SendTo,
    frame: fn(u32) -> [u8; payload::FRAME_LEN],
    stop: &AtomicBool,
    recording: &Mutex<Recording>,
) {
    let start = Instant::now();
    let mut target: Option<SocketAddr> = None;
    let ssrc: u32 = rand::random();
    let mut seq: u16 = rand::random();
    let mut counter = 0u32;
    let mut next_send = start;
    let mut buf = [0u8; 2048];
    while !stop.load(Ordering::Relaxed) {
        if let Some(addr) = target {
            while Instant::now() >= next_send {
                let payload = frame(counter);
                let packet = Rtp {
                    marker: counter == 0,
                    payload_type: 0,
                    seq,
                    timestamp: counter.wrapping_mul(160),
                    ssrc,
                    payload: &payload,
                };
                // A send error (e.g. ICMP port unreachable reported late) is not fatal for a test peer.
                let _ = socket.send_to(&packet.to_bytes(), addr);
                seq = seq.wrapping_add(1);
                counter += 1;
                next_send += Duration::from_millis(20);
                let mut rec = recording.lock().expect("lock is never poisoned");
                rec.sent = counter;
                rec.sent_to = Some(addr);
            }
        }
        match socket.recv_from(&mut buf) {
            Ok((len, from)) => {
                if target.is_none() && send_to == SendTo::FirstSource {
                    target = Some(from);
                    next_send = Instant::now();
                }
                let at = start.elapsed();
                let data = buf[..len].to_vec();
                let mut rec = recording.lock().expect("lock is never poisoned");
                rec.received.push(Received { at, from, data });
            }
            Err(_) => continue, // timeout (or a reported ICMP error): go round
        }
    }
}
