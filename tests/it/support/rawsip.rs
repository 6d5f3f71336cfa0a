//! A hand-driven SIP caller over UDP or TCP, for the odd orders no well-behaved peer (sipp)
//! produces: an INVITE never ACKed, ACK before the 200, CANCEL racing the 200, BYE before
//! the ACK, garbage inside a dialog. It writes the messages itself and reads what comes back;
//! it never retransmits or answers on its own.

use super::siplog::{Direction, SipMessage};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

/// The caller's socket.
enum Wire {
    Udp(UdpSocket),
    Tcp(TcpStream, Vec<u8>),
}

/// One call's worth of raw SIP toward `to`.
pub struct RawCall {
    wire: Wire,
    to: SocketAddr,
    local: SocketAddr,
    /// Unique per call: Call-ID, From tag and branches derive from it.
    pub tag: String,
    /// The To tag of dialin's answer, once a response carried one.
    pub remote_tag: Option<String>,
    /// The CSeq of the last in-dialog request sent (the INVITE's is 1).
    pub cseq: u32,
}

/// An SDP offer of PCMU and telephone-event from `local`'s address (port 4000: nothing
/// listens there; dialin's media check ends such a call only after `media.timeout`).
pub fn audio_offer(local: SocketAddr) -> String {
    let ip = local.ip();
    format!(
        "v=0\r\no=- 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n\
         m=audio 4000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n\
         a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\n"
    )
}

impl RawCall {
    /// A caller over UDP from 127.0.0.1.
    pub fn udp(to: SocketAddr, tag: &str) -> RawCall {
        let sock = UdpSocket::bind("127.0.0.1:0").expect("bind a UDP socket");
        let local = sock.local_addr().unwrap();
        RawCall::new(Wire::Udp(sock), to, local, tag)
    }

    /// A caller over one TCP connection from 127.0.0.1.
    pub fn tcp(to: SocketAddr, tag: &str) -> RawCall {
        let stream = TcpStream::connect(to).expect("connect over TCP");
        let local = stream.local_addr().unwrap();
        RawCall::new(Wire::Tcp(stream, Vec::new()), to, local, tag)
    }

    fn new(wire: Wire, to: SocketAddr, local: SocketAddr, tag: &str) -> RawCall {
        RawCall {
            wire,
            to,
            local,
            tag: tag.to_string(),
            remote_tag: None,
            cseq: 1,
        }
    }

    /// The caller's own address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    fn transport(&self) -> &'static str {
        match self.wire {
            Wire::Udp(_) => "UDP",
            Wire::Tcp(..) => "TCP",
        }
    }

    /// Sends raw bytes (garbage included).
    pub fn send_raw(&mut self, bytes: &[u8]) {
        match &mut self.wire {
            Wire::Udp(s) => {
                s.send_to(bytes, self.to).expect("send a datagram");
            }
            Wire::Tcp(s, _) => {
                // dialin may have closed the connection on garbage: that is its right.
                s.write_all(bytes).ok();
            }
        }
    }

    /// A request of this call: `method` with CSeq `cseq`, branch `branch`, the To tag when
    /// `in_dialog`, and `body` (SDP when not empty).
    pub fn request(
        &self,
        method: &str,
        cseq: u32,
        branch: &str,
        in_dialog: bool,
        body: &str,
    ) -> String {
        let (to, local, tag, transport) = (self.to, self.local, &self.tag, self.transport());
        let to_tag = match (&self.remote_tag, in_dialog) {
            (Some(t), true) => format!(";tag={t}"),
            _ => String::new(),
        };
        let cseq_method = if method == "ACK" && !in_dialog {
            "ACK"
        } else {
            method
        };
        let content = if body.is_empty() {
            "Content-Length: 0\r\n\r\n".to_string()
        } else {
            format!(
                "Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
        };
        format!(
            "{method} sip:4930555000@{to} SIP/2.0\r\n\
             Via: SIP/2.0/{transport} {local};branch=z9hG4bK-{tag}-{branch}\r\n\
             From: <sip:raw@{local}>;tag={tag}\r\nTo: <sip:4930555000@{to}>{to_tag}\r\n\
             Call-ID: {tag}@raw\r\nCSeq: {cseq} {cseq_method}\r\n\
             Contact: <sip:raw@{local};transport={}>\r\nMax-Forwards: 70\r\n{content}",
            transport.to_ascii_lowercase()
        )
    }

    /// An INFO of the dialog with the next CSeq carrying `key` as `application/dtmf-relay`
    /// (branch `branch`), to send with [`RawCall::send_raw`].
    pub fn dtmf_info(&mut self, key: char, branch: &str) -> String {
        self.cseq += 1;
        let body = format!("Signal={key}\r\nDuration=160\r\n");
        self.request("INFO", self.cseq, branch, true, "").replace(
            "Content-Length: 0\r\n\r\n",
            &format!(
                "Content-Type: application/dtmf-relay\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            ),
        )
    }

    /// Sends the INVITE (CSeq 1, branch `inv`) with `sdp` (none when empty).
    pub fn invite(&mut self, sdp: &str) {
        let msg = self.request("INVITE", 1, "inv", false, sdp);
        self.send_raw(msg.as_bytes());
    }

    /// CANCEL of the INVITE (same branch and CSeq number, no To tag).
    pub fn cancel(&mut self) {
        let msg = self.request("CANCEL", 1, "inv", false, "");
        self.send_raw(msg.as_bytes());
    }

    /// The ACK to a 2xx (a new branch, in the dialog), with `sdp` for a late offer.
    pub fn ack(&mut self, sdp: &str) {
        let msg = self.request("ACK", 1, "ack", true, sdp);
        self.send_raw(msg.as_bytes());
    }

    /// A new in-dialog request (`BYE`, `INFO`, `OPTIONS`, ...) with the next CSeq.
    pub fn in_dialog(&mut self, method: &str, body: &str) {
        self.cseq += 1;
        let branch = format!("{}-{}", method.to_ascii_lowercase(), self.cseq);
        let msg = self.request(method, self.cseq, &branch, true, body);
        self.send_raw(msg.as_bytes());
    }

    /// A new in-dialog request, sent again every 500 ms (RFC 3261's T1, as a UA over UDP
    /// does: a datagram may be lost) until a final response to it comes, at most `timeout`;
    /// returns that response.
    pub fn in_dialog_answered(&mut self, method: &str, timeout: Duration) -> SipMessage {
        self.in_dialog_answered_with(method, "", timeout)
    }

    /// As [`RawCall::in_dialog_answered`], with `body` (SDP: a re-INVITE).
    pub fn in_dialog_answered_with(
        &mut self,
        method: &str,
        body: &str,
        timeout: Duration,
    ) -> SipMessage {
        self.cseq += 1;
        let branch = format!("{}-{}", method.to_ascii_lowercase(), self.cseq);
        let msg = self.request(method, self.cseq, &branch, true, body);
        let cseq = format!("{} {method}", self.cseq);
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            self.send_raw(msg.as_bytes());
            let (got, ok) = self.read_until(Duration::from_millis(500), |m| {
                m.status_code().is_some_and(|c| c >= 200) && m.header("CSeq") == Some(cseq.as_str())
            });
            if ok {
                return got.into_iter().last().expect("the match");
            }
        }
        panic!("no final response to {method} within {timeout:?}");
    }

    /// Reads messages for at most `timeout` until one satisfies `want`; every message read is
    /// returned (the last one is the match, if any). Learns the To tag from responses.
    pub fn read_until(
        &mut self,
        timeout: Duration,
        mut want: impl FnMut(&SipMessage) -> bool,
    ) -> (Vec<SipMessage>, bool) {
        let deadline = Instant::now() + timeout;
        let mut got = Vec::new();
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            let Some(msg) = self.read_one(left.max(Duration::from_millis(1))) else {
                continue;
            };
            if self.remote_tag.is_none() && msg.method().is_none() {
                self.remote_tag = to_tag(&msg);
            }
            let hit = want(&msg);
            got.push(msg);
            if hit {
                return (got, true);
            }
        }
        (got, false)
    }

    /// Waits for a response with `code` to `method` (its CSeq), at most `timeout`.
    pub fn expect_response(&mut self, code: u16, method: &str, timeout: Duration) -> SipMessage {
        let (got, ok) = self.read_until(timeout, |m| {
            m.status_code() == Some(code) && cseq_method(m).as_deref() == Some(method)
        });
        assert!(
            ok,
            "no {code} to {method} within {timeout:?}; got {} messages:\n{}",
            got.len(),
            got.iter()
                .map(|m| format!("{} ({})", m.start_line(), m.header("CSeq").unwrap_or("")))
                .collect::<Vec<_>>()
                .join("\n")
        );
        got.into_iter().last().expect("the match")
    }

    /// Answers `request` (one of dialin's, in the dialog) with `code` and `reason`, as a
    /// phone does: its Via, From, To, Call-ID and CSeq copied back.
    pub fn respond(&mut self, request: &SipMessage, code: u16, reason: &str) {
        let copied: String = ["Via", "From", "To", "Call-ID", "CSeq"]
            .iter()
            .flat_map(|name| {
                request
                    .headers(name)
                    .into_iter()
                    .map(move |value| format!("{name}: {value}\r\n"))
            })
            .collect();
        let msg = format!("SIP/2.0 {code} {reason}\r\n{copied}Content-Length: 0\r\n\r\n");
        self.send_raw(msg.as_bytes());
    }

    /// Waits for a request `method` from dialin, at most `timeout`; `None` when none came.
    pub fn wait_request(&mut self, method: &str, timeout: Duration) -> Option<SipMessage> {
        let (got, ok) = self.read_until(timeout, |m| m.method() == Some(method));
        ok.then(|| got.into_iter().last().expect("the match"))
    }

    fn read_one(&mut self, timeout: Duration) -> Option<SipMessage> {
        let text = match &mut self.wire {
            Wire::Udp(s) => {
                s.set_read_timeout(Some(timeout)).unwrap();
                let mut buf = [0u8; 8192];
                let n = s.recv(&mut buf).ok()?;
                String::from_utf8_lossy(&buf[..n]).into_owned()
            }
            Wire::Tcp(s, pending) => loop {
                if let Some(msg) = split_stream_message(pending) {
                    break msg;
                }
                s.set_read_timeout(Some(timeout)).unwrap();
                let mut buf = [0u8; 8192];
                match s.read(&mut buf) {
                    Ok(0) => {
                        // Closed by dialin: nothing more will come.
                        std::thread::sleep(timeout.min(Duration::from_millis(20)));
                        return None;
                    }
                    Ok(n) => pending.extend_from_slice(&buf[..n]),
                    Err(_) => return None,
                }
            },
        };
        Some(SipMessage {
            direction: Direction::Received,
            text: text.replace("\r\n", "\n"),
            at_micros: None,
        })
    }
}

/// Takes one whole message (headers and Content-Length body) off the front of `buf`.
fn split_stream_message(buf: &mut Vec<u8>) -> Option<String> {
    // Keep-alive CRLFs between messages.
    while buf.starts_with(b"\r\n") {
        buf.drain(..2);
    }
    let text = String::from_utf8_lossy(buf).into_owned();
    let head_end = text.find("\r\n\r\n")? + 4;
    let length: usize = text[..head_end]
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            let name = name.trim().to_ascii_lowercase();
            (name == "content-length" || name == "l").then(|| value.trim().parse().ok())?
        })
        .unwrap_or(0);
    if buf.len() < head_end + length {
        return None;
    }
    let msg: Vec<u8> = buf.drain(..head_end + length).collect();
    Some(String::from_utf8_lossy(&msg).into_owned())
}

/// The tag of a message's To header.
fn to_tag(msg: &SipMessage) -> Option<String> {
    let to = msg.header("To")?;
    let tag = to.split(";tag=").nth(1)?;
    Some(tag.split(';').next().unwrap_or(tag).trim().to_string())
}

/// The method of a message's CSeq header.
pub fn cseq_method(msg: &SipMessage) -> Option<String> {
    msg.header("CSeq")?
        .split_whitespace()
        .nth(1)
        .map(str::to_string)
}
