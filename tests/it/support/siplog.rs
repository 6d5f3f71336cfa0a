//! Reading sipp's `-trace_msg` message log, so tests can assert on the SIP a peer saw.
//!
//! sipp 3.6.1 writes every message as
//! ```text
//! ----------------------------------------------- 2026-11-27 13:00:11.796738
//! UDP message received [514] bytes :
//!
//! INVITE sip:71234@127.0.0.1:5060 SIP/2.0
//! ...
//! ```
//! (`UDP message sent (313 bytes):` for its own). [`parse_log`] splits that into [`SipMessage`]s.

/// Whether sipp sent or received a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Sent,
    Received,
}

/// One SIP message from the log, without the trailing blank lines and with LF line ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipMessage {
    pub direction: Direction,
    pub text: String,
    /// When sipp logged it: microseconds since midnight (from the separator line).
    pub at_micros: Option<u64>,
}

/// Compact header forms (RFC 3261 §7.3.3) and their long names.
const COMPACT: [(&str, &str); 8] = [
    ("f", "from"),
    ("t", "to"),
    ("i", "call-id"),
    ("v", "via"),
    ("m", "contact"),
    ("l", "content-length"),
    ("c", "content-type"),
    ("k", "supported"),
];

impl SipMessage {
    /// The first line (`INVITE sip:… SIP/2.0` or `SIP/2.0 200 OK`).
    pub fn start_line(&self) -> &str {
        self.text.lines().next().unwrap_or("")
    }

    /// The method of a request, `None` for a response.
    pub fn method(&self) -> Option<&str> {
        let first = self.start_line().split_whitespace().next()?;
        (first != "SIP/2.0").then_some(first)
    }

    /// The Request-URI of a request.
    pub fn request_uri(&self) -> Option<&str> {
        self.method()?;
        self.start_line().split_whitespace().nth(1)
    }

    /// The status code of a response.
    pub fn status_code(&self) -> Option<u16> {
        let mut parts = self.start_line().split_whitespace();
        (parts.next()? == "SIP/2.0").then_some(())?;
        parts.next()?.parse().ok()
    }

    /// The method named in the CSeq header (for matching responses to requests).
    pub fn cseq_method(&self) -> Option<&str> {
        self.header("CSeq")?.split_whitespace().nth(1)
    }

    /// Values of every header called `name` (case-insensitive, compact forms understood).
    pub fn headers(&self, name: &str) -> Vec<&str> {
        let wanted = long_name(name);
        self.text
            .lines()
            .skip(1)
            .take_while(|line| !line.trim().is_empty())
            .filter_map(|line| line.split_once(':'))
            .filter(|(n, _)| long_name(n.trim()) == wanted)
            .map(|(_, v)| v.trim())
            .collect()
    }

    /// The value of the first header called `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers(name).into_iter().next()
    }

    /// The body after the blank line (empty when there is none).
    pub fn body(&self) -> &str {
        self.text.split_once("\n\n").map_or("", |(_, body)| body)
    }
}

/// Lower-case long form of a header name.
fn long_name(name: &str) -> String {
    let lower = name.to_ascii_lowercase();
    COMPACT
        .iter()
        .find(|(short, _)| *short == lower)
        .map_or(lower, |(_, long)| (*long).to_owned())
}

/// Splits a sipp message log into messages.
pub fn parse_log(log: &str) -> Vec<SipMessage> {
    let log = log.replace('\r', "");
    let mut messages = Vec::new();
    for block in log.split("\n-----------------------------------------------") {
        let mut lines = block.lines();
        // The separator line (or its rest) ends with the time of day, e.g. 13:00:11.796738.
        let at_micros = lines
            .next()
            .and_then(|l| l.split_whitespace().last())
            .and_then(time_of_day_micros);
        let Some(kind) = lines.next() else { continue };
        let direction = if kind.contains("message received") {
            Direction::Received
        } else if kind.contains("message sent") {
            Direction::Sent
        } else {
            continue;
        };
        let text: Vec<&str> = lines.skip_while(|line| line.trim().is_empty()).collect();
        let text = text.join("\n").trim_end().to_owned();
        if !text.is_empty() {
            messages.push(SipMessage {
                direction,
                text,
                at_micros,
            });
        }
    }
    messages
}

/// `13:00:11.796738` → microseconds since midnight.
fn time_of_day_micros(t: &str) -> Option<u64> {
    let (hms, frac) = t.split_once('.')?;
    let mut parts = hms.split(':').map(|p| p.parse::<u64>().ok());
    let (h, m, s) = (parts.next()??, parts.next()??, parts.next()??);
    let frac: u64 = format!("{frac:0<6}")[..6].parse().ok()?;
    Some(((h * 60 + m) * 60 + s) * 1_000_000 + frac)
}
