//! The phone side: places calls into dialin at a fixed rate, types each call's PIN by SIP
//! INFO, and hangs them all up at the end. Records, per call, when the INVITE left, when
//! 100 Trying and 200 OK came back (the kernel's arrival stamps) and when the `#` left.

use crate::sip::{sdp, uri_of, Msg};
use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

/// Where a call is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// INVITE sent, no final answer yet.
    Inviting,
    /// Answered; typing digit N of the PIN (the last one is `#`).
    Typing(usize),
    /// PIN and `#` typed and acknowledged.
    Up,
    /// BYE sent.
    Ending,
    /// BYE answered.
    Ended,
    /// Rejected, or hung up by dialin.
    Failed,
}

/// One call of the phone side.
pub struct Call {
    /// Call-ID.
    pub call_id: String,
    /// The PIN this call types (also the conference it reaches).
    pub pin: String,
    /// Where the call is.
    pub state: State,
    /// When the INVITE left.
    pub invite_at: Instant,
    /// When 100 Trying arrived.
    pub trying_at: Option<Instant>,
    /// When 200 OK arrived.
    pub ok_at: Option<Instant>,
    /// When the `#` INFO left.
    pub hash_at: Option<Instant>,
    /// dialin's RTP address for the caller leg (from its answer).
    pub rtp: Option<SocketAddr>,
    to_tag: String,
    target: String,
    cseq: u32,
    /// The in-flight INFO: (CSeq, branch, sent at), for retransmission.
    info: Option<(u32, String, Instant)>,
}

/// The phone side's SIP socket and calls.
pub struct Phone {
    socket: UdpSocket,
    local: SocketAddr,
    dialin: SocketAddr,
    media: SocketAddr,
    /// Every call placed, by index.
    pub calls: Vec<Call>,
    by_id: HashMap<String, usize>,
    run: String,
    branch: u64,
    /// Per datagram received: how long it waited in the socket before this thread read it
    /// (ms). Not part of any set-up reading; says how busy the benchmark itself was.
    pub read_lag_ms: Vec<f64>,
}

impl Phone {
    /// A phone side on `socket` calling `dialin`, offering `media` in every SDP.
    pub fn new(socket: UdpSocket, dialin: SocketAddr, media: SocketAddr, run: &str) -> Phone {
        socket
            .set_read_timeout(Some(Duration::from_micros(200)))
            .ok();
        if let Err(e) = crate::stamped::enable(&socket) {
            eprintln!("dialin-bench: no kernel receive stamps ({e}): set-up times include the phone thread's own delays");
        }
        let local = socket.local_addr().expect("bound");
        Phone {
            socket,
            local,
            dialin,
            media,
            calls: Vec::new(),
            by_id: HashMap::new(),
            run: run.to_string(),
            branch: 0,
            read_lag_ms: Vec::new(),
        }
    }

    fn next_branch(&mut self) -> String {
        self.branch += 1;
        format!("z9hG4bK{}x{}", self.run, self.branch)
    }

    fn send(&self, text: &str, to: SocketAddr) {
        self.socket.send_to(text.as_bytes(), to).ok();
    }

    /// Places `pins.len()` calls at `rate` per second (the INVITEs are paced, not bursted) and
    /// handles their answers and PINs until each is up or failed, or `timeout` passes.
    /// Returns how long sending the INVITEs took.
    pub fn place(&mut self, pins: &[String], rate: f64, timeout: Duration) -> Duration {
        let start = Instant::now();
        let first = self.calls.len();
        let mut next = 0;
        let mut last_invite = start;
        loop {
            let now = Instant::now();
            while next < pins.len() && start + Duration::from_secs_f64(next as f64 / rate) <= now {
                self.invite(&pins[next]);
                last_invite = Instant::now();
                next += 1;
            }
            self.poll();
            self.retransmit_info();
            let placed = &self.calls[first..];
            let done = placed
                .iter()
                .all(|c| matches!(c.state, State::Up | State::Failed));
            if (next == pins.len() && done) || now > start + timeout {
                return last_invite - start;
            }
        }
    }

    fn invite(&mut self, pin: &str) {
        let i = self.calls.len();
        let call_id = format!("bench-{}-{i}@127.0.0.1", self.run);
        let branch = self.next_branch();
        let body = sdp(self.media, i as u64);
        let msg = format!(
            "INVITE sip:4930999000@{d} SIP/2.0\r\nVia: SIP/2.0/UDP {l};branch={branch};rport\r\n\
             Max-Forwards: 70\r\nFrom: \"Bench\" <sip:+4930555{i:04}@{l}>;tag=f{i}\r\n\
             To: <sip:4930999000@{d}>\r\nCall-ID: {call_id}\r\nCSeq: 1 INVITE\r\n\
             Contact: <sip:phone@{l}>\r\nContent-Type: application/sdp\r\n\
             Content-Length: {len}\r\n\r\n{body}",
            d = self.dialin,
            l = self.local,
            len = body.len()
        );
        self.by_id.insert(call_id.clone(), i);
        self.calls.push(Call {
            call_id,
            pin: pin.to_string(),
            state: State::Inviting,
            invite_at: Instant::now(),
            trying_at: None,
            ok_at: None,
            hash_at: None,
            rtp: None,
            to_tag: String::new(),
            target: String::new(),
            cseq: 1,
            info: None,
        });
        self.send(&msg, self.dialin);
    }

    /// An in-dialog request of call `i`.
    fn request(&mut self, i: usize, method: &str, cseq: u32, branch: &str, body: &str) -> String {
        let c = &self.calls[i];
        let ctype = if body.is_empty() {
            String::new()
        } else {
            "Content-Type: application/dtmf-relay\r\n".to_string()
        };
        format!(
            "{method} {target} SIP/2.0\r\nVia: SIP/2.0/UDP {l};branch={branch};rport\r\n\
             Max-Forwards: 70\r\nFrom: \"Bench\" <sip:+4930555{i:04}@{l}>;tag=f{i}\r\n\
             To: <sip:4930999000@{d}>;tag={tag}\r\nCall-ID: {id}\r\nCSeq: {cseq} {method}\r\n\
             Contact: <sip:phone@{l}>\r\n{ctype}Content-Length: {len}\r\n\r\n{body}",
            target = c.target,
            l = self.local,
            d = self.dialin,
            tag = c.to_tag,
            id = c.call_id,
            len = body.len()
        )
    }

    /// Sends the INFO for digit `k` of call `i` (the PIN, then `#`).
    fn send_digit(&mut self, i: usize, k: usize) {
        let key = self.calls[i].pin.chars().nth(k).unwrap_or('#');
        self.calls[i].cseq += 1;
        let cseq = self.calls[i].cseq;
        let branch = self.next_branch();
        let body = format!("Signal={key}\r\nDuration=160\r\n");
        let msg = self.request(i, "INFO", cseq, &branch, &body);
        let now = Instant::now();
        if key == '#' {
            self.calls[i].hash_at = Some(now);
        }
        self.calls[i].info = Some((cseq, branch, now));
        self.calls[i].state = State::Typing(k);
        self.send(&msg, self.dialin);
    }

    fn retransmit_info(&mut self) {
        let now = Instant::now();
        for i in 0..self.calls.len() {
            let Some((cseq, branch, at)) = self.calls[i].info.clone() else {
                continue;
            };
            if now - at > Duration::from_millis(500) {
                let State::Typing(k) = self.calls[i].state else {
                    continue;
                };
                let key = self.calls[i].pin.chars().nth(k).unwrap_or('#');
                let body = format!("Signal={key}\r\nDuration=160\r\n");
                let msg = self.request(i, "INFO", cseq, &branch, &body);
                self.calls[i].info = Some((cseq, branch, now));
                self.send(&msg, self.dialin);
            }
        }
    }

    /// Handles whatever arrived, until nothing has for 200 µs. Answers are timed by when the
    /// kernel queued them, not when this thread read them.
    pub fn poll(&mut self) {
        let mut buf = [0u8; 65536];
        while let Ok(got) = crate::stamped::recv(&self.socket, &mut buf) {
            let (n, from, now) = (got.len, got.from, got.arrived);
            self.read_lag_ms.push(got.read_lag.as_secs_f64() * 1000.0);
            let Some(msg) = Msg::parse(&buf[..n]) else {
                continue;
            };
            let Some(&i) = msg.header("Call-ID").and_then(|id| self.by_id.get(id)) else {
                continue;
            };
            match msg.method() {
                Some(method) => {
                    // dialin's BYE (or anything else it sends): answer 200.
                    let ok = crate::sip::response(&msg, 200, "OK", "x", "sip:phone@127.0.0.1", "");
                    self.send(&ok, from);
                    if method == "BYE" && self.calls[i].state != State::Ending {
                        self.calls[i].state = State::Failed;
                    }
                }
                None => self.on_response(i, &msg, now),
            }
        }
    }

    fn on_response(&mut self, i: usize, msg: &Msg, now: Instant) {
        let code = msg.status().unwrap_or(0);
        match (msg.cseq_method().unwrap_or(""), code) {
            ("INVITE", 100) => {
                self.calls[i].trying_at.get_or_insert(now);
            }
            ("INVITE", 101..=199) => {}
            ("INVITE", 200..=299) => {
                let first = self.calls[i].ok_at.is_none();
                if first {
                    let c = &mut self.calls[i];
                    c.ok_at = Some(now);
                    c.to_tag = msg.tag("To").unwrap_or("").to_string();
                    c.target = msg
                        .header("Contact")
                        .map(|v| uri_of(v).to_string())
                        .unwrap_or_else(|| format!("sip:{}", self.dialin));
                    c.rtp = crate::sip::sdp_audio(msg.body);
                }
                let branch = self.next_branch();
                let ack = self.request(i, "ACK", 1, &branch, "");
                self.send(&ack, self.dialin);
                if first {
                    self.send_digit(i, 0);
                }
            }
            ("INVITE", _) => self.calls[i].state = State::Failed,
            ("INFO", 200..=299) => {
                let c = &self.calls[i];
                let (Some((cseq, _, _)), State::Typing(k)) = (c.info.clone(), c.state) else {
                    return;
                };
                let pin_len = c.pin.len();
                let answered: u32 = msg
                    .header("CSeq")
                    .and_then(|v| v.split_whitespace().next()?.parse().ok())
                    .unwrap_or(0);
                if answered != cseq {
                    return;
                }
                self.calls[i].info = None;
                if k < pin_len {
                    self.send_digit(i, k + 1);
                } else {
                    self.calls[i].state = State::Up;
                }
            }
            ("INFO", _) => self.calls[i].state = State::Failed,
            ("BYE", _) => self.calls[i].state = State::Ended,
            _ => {}
        }
    }

    /// Hangs up every call that is up, `rate` per second, and waits up to `timeout` for the
    /// answers.
    pub fn hang_up_all(&mut self, rate: f64, timeout: Duration) {
        let start = Instant::now();
        let up: Vec<usize> = (0..self.calls.len())
            .filter(|&i| self.calls[i].state == State::Up)
            .collect();
        let mut next = 0;
        loop {
            let now = Instant::now();
            while next < up.len() && start + Duration::from_secs_f64(next as f64 / rate) <= now {
                let i = up[next];
                self.calls[i].cseq += 1;
                let (cseq, branch) = (self.calls[i].cseq, self.next_branch());
                let bye = self.request(i, "BYE", cseq, &branch, "");
                self.calls[i].state = State::Ending;
                self.send(&bye, self.dialin);
                next += 1;
            }
            self.poll();
            let pending = up.iter().any(|&i| self.calls[i].state == State::Ending);
            if (next == up.len() && !pending) || now > start + timeout {
                return;
            }
        }
    }
}
