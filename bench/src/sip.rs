//! Just enough SIP over UDP for the benchmark: a parser for the messages dialin sends, the
//! conference side (a UAS that answers every INVITE with our media address) and the phone side
//! (a UAC that places calls at a fixed rate, types the PIN by SIP INFO and hangs up).
//!
//! Both sides live in this process, so "# sent" and "server INVITE received" are read on one
//! clock: the call-setup latencies need no clock sync and no log parsing.

use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// A parsed SIP message, borrowing the datagram.
pub struct Msg<'a> {
    /// Request line or status line.
    pub start: &'a str,
    /// Header lines, in order.
    pub headers: Vec<(&'a str, &'a str)>,
    /// The body (SDP, DTMF), possibly empty.
    pub body: &'a str,
}

/// Long and compact forms of the headers we read.
fn same_header(name: &str, wanted: &str) -> bool {
    let compact = match wanted {
        "Call-ID" => "i",
        "Via" => "v",
        "From" => "f",
        "To" => "t",
        "Contact" => "m",
        "Content-Type" => "c",
        _ => "",
    };
    name.eq_ignore_ascii_case(wanted) || name.eq_ignore_ascii_case(compact)
}

impl<'a> Msg<'a> {
    /// Parses one datagram; `None` if it is not a SIP message.
    pub fn parse(data: &'a [u8]) -> Option<Msg<'a>> {
        let text = std::str::from_utf8(data).ok()?;
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((text, ""));
        let mut lines = head.split("\r\n");
        let start = lines.next()?;
        let headers = lines
            .filter_map(|l| {
                let (n, v) = l.split_once(':')?;
                Some((n.trim(), v.trim()))
            })
            .collect();
        Some(Msg {
            start,
            headers,
            body,
        })
    }

    /// The first value of a header.
    pub fn header(&self, name: &str) -> Option<&'a str> {
        self.headers
            .iter()
            .find(|(n, _)| same_header(n, name))
            .map(|(_, v)| *v)
    }

    /// Every value of a header, in order.
    pub fn all(&self, name: &str) -> Vec<&'a str> {
        self.headers
            .iter()
            .filter(|(n, _)| same_header(n, name))
            .map(|(_, v)| *v)
            .collect()
    }

    /// The status code of a response.
    pub fn status(&self) -> Option<u16> {
        let rest = self.start.strip_prefix("SIP/2.0 ")?;
        rest.get(..3)?.parse().ok()
    }

    /// The method of a request.
    pub fn method(&self) -> Option<&'a str> {
        if self.start.starts_with("SIP/2.0") {
            return None;
        }
        self.start.split(' ').next()
    }

    /// The method named in CSeq.
    pub fn cseq_method(&self) -> Option<&'a str> {
        self.header("CSeq")?.split_whitespace().nth(1)
    }

    /// The user part of the request URI (`sip:USER@host`).
    pub fn request_user(&self) -> Option<&'a str> {
        let uri = self.start.split(' ').nth(1)?;
        let rest = uri.strip_prefix("sip:")?;
        rest.split('@').next()
    }

    /// The `tag` parameter of a From/To value.
    pub fn tag(&self, name: &str) -> Option<&'a str> {
        let v = self.header(name)?;
        let i = v.find(";tag=")?;
        v[i + 5..].split(';').next()
    }
}

/// The URI inside `<...>` of a header value, or the value itself.
pub fn uri_of(value: &str) -> &str {
    match (value.find('<'), value.find('>')) {
        (Some(a), Some(b)) if a < b => &value[a + 1..b],
        _ => value.split(';').next().unwrap_or(value),
    }
}

/// The audio address of an SDP body (`c=IN IP4` and `m=audio`).
pub fn sdp_audio(body: &str) -> Option<SocketAddr> {
    let ip = body
        .lines()
        .find_map(|l| l.trim().strip_prefix("c=IN IP4 "))?
        .trim();
    let port = body
        .lines()
        .find_map(|l| l.trim().strip_prefix("m=audio "))?
        .split_whitespace()
        .next()?;
    format!("{ip}:{port}").parse().ok()
}

/// A PCMU + telephone-event SDP offering or answering with `media`.
pub fn sdp(media: SocketAddr, id: u64) -> String {
    format!(
        "v=0\r\no=- {id} 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n\
         m=audio {port} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n\
         a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=ptime:20\r\na=sendrecv\r\n",
        ip = media.ip(),
        port = media.port()
    )
}

/// A response to `req`, copying Via, From, To (tagged), Call-ID, CSeq and Record-Route.
pub fn response(
    req: &Msg,
    code: u16,
    reason: &str,
    to_tag: &str,
    contact: &str,
    body: &str,
) -> String {
    let mut out = format!("SIP/2.0 {code} {reason}\r\n");
    for via in req.all("Via") {
        out.push_str(&format!("Via: {via}\r\n"));
    }
    for rr in req.all("Record-Route") {
        out.push_str(&format!("Record-Route: {rr}\r\n"));
    }
    let to = req.header("To").unwrap_or("");
    let to = if to.contains(";tag=") || code == 100 {
        to.to_string()
    } else {
        format!("{to};tag={to_tag}")
    };
    out.push_str(&format!(
        "From: {}\r\nTo: {to}\r\nCall-ID: {}\r\nCSeq: {}\r\nContact: <{contact}>\r\n",
        req.header("From").unwrap_or(""),
        req.header("Call-ID").unwrap_or(""),
        req.header("CSeq").unwrap_or(""),
    ));
    if !body.is_empty() {
        out.push_str("Content-Type: application/sdp\r\n");
    }
    out.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    out
}

/// What the conference side saw of one server leg.
#[derive(Clone, Debug)]
pub struct ServerLeg {
    /// When dialin's INVITE arrived.
    pub invite_at: Instant,
    /// dialin's RTP address for this leg (from its offer).
    pub rtp: Option<SocketAddr>,
    /// Whether dialin's ACK arrived (the leg is up).
    pub acked: bool,
}

/// The stand-in conference server: answers every INVITE with 100 and 200 (our media address),
/// and 200 to everything else. Legs are keyed by the dialled conference number.
pub struct Conference {
    /// Legs by conference number (the PIN the caller typed).
    pub legs: Arc<Mutex<HashMap<String, ServerLeg>>>,
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Conference {
    /// Serves on `socket`, answering with `media` as the SDP address.
    pub fn start(socket: UdpSocket, media: SocketAddr) -> Conference {
        let legs: Arc<Mutex<HashMap<String, ServerLeg>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let (l, s) = (legs.clone(), stop.clone());
        let thread = thread::spawn(move || serve_conference(socket, media, l, s));
        Conference {
            legs,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Conference {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.join().ok();
        }
    }
}

fn serve_conference(
    socket: UdpSocket,
    media: SocketAddr,
    legs: Arc<Mutex<HashMap<String, ServerLeg>>>,
    stop: Arc<AtomicBool>,
) {
    socket
        .set_read_timeout(Some(Duration::from_millis(50)))
        .ok();
    // INVITEs are timed by when the kernel queued them (see `stamped`).
    crate::stamped::enable(&socket).ok();
    let contact = format!("sip:conference@{}", socket.local_addr().expect("bound"));
    let mut by_call_id: HashMap<String, String> = HashMap::new();
    let mut buf = vec![0u8; 65536];
    while !stop.load(Ordering::Relaxed) {
        let Ok(got) = crate::stamped::recv(&socket, &mut buf) else {
            continue;
        };
        let (n, from, now) = (got.len, got.from, got.arrived);
        let Some(msg) = Msg::parse(&buf[..n]) else {
            continue;
        };
        let Some(method) = msg.method() else {
            continue; // responses to our 200s do not exist; ignore strays
        };
        let call_id = msg.header("Call-ID").unwrap_or("").to_string();
        let tag = format!(
            "c{}",
            call_id.len() + call_id.bytes().map(u32::from).sum::<u32>() as usize
        );
        match method {
            "INVITE" => {
                let user = msg.request_user().unwrap_or("").to_string();
                let fresh = by_call_id.insert(call_id.clone(), user.clone()).is_none();
                if fresh {
                    legs.lock().unwrap().insert(
                        user,
                        ServerLeg {
                            invite_at: now,
                            rtp: sdp_audio(msg.body),
                            acked: false,
                        },
                    );
                    let trying = response(&msg, 100, "Trying", &tag, &contact, "");
                    socket.send_to(trying.as_bytes(), from).ok();
                }
                let ok = response(&msg, 200, "OK", &tag, &contact, &sdp(media, 7));
                socket.send_to(ok.as_bytes(), from).ok();
            }
            "ACK" => {
                if let Some(user) = by_call_id.get(&call_id) {
                    if let Some(leg) = legs.lock().unwrap().get_mut(user) {
                        leg.acked = true;
                    }
                }
            }
            _ => {
                let ok = response(&msg, 200, "OK", &tag, &contact, "");
                socket.send_to(ok.as_bytes(), from).ok();
            }
        }
    }
}
