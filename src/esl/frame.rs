//! The Event Socket frame codec: pure `parse` over a byte buffer, mini-redis style.
//!
//! A frame is a block of `Name: value\n` header lines ended by an empty line; if the headers
//! hold `Content-Length: N`, exactly N body bytes follow and the next frame starts right after
//! them. FreeSWITCH uses LF only. [`parse`] returns [`FrameError::Incomplete`] until a whole
//! frame is in the buffer, so the connection simply reads more and tries again; a frame that
//! would exceed the size limit is refused as soon as that is known, before its bytes arrive.

use std::fmt;

/// Why no frame could be taken from the buffer.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// Not enough bytes yet: read more and try again.
    #[error("incomplete frame")]
    Incomplete,
    /// The frame is (or announces itself as) larger than the limit.
    #[error("an Event Socket frame exceeds the {limit}-byte limit; the peer is not a sane FreeSWITCH or esl.max_frame is too small")]
    TooLarge {
        /// The configured limit in bytes.
        limit: usize,
    },
    /// The bytes are not an Event Socket frame.
    #[error("malformed Event Socket frame: {0}")]
    Malformed(&'static str),
}

/// One frame: its headers in arrival order and its body (empty without `Content-Length`).
/// `Debug` shows only the content type and sizes: bodies carry conference numbers.
#[derive(Clone, PartialEq, Eq)]
pub struct Frame {
    /// Header names and values as sent (values not URL-decoded).
    pub headers: Vec<(String, String)>,
    /// The `Content-Length` bytes after the header block.
    pub body: Vec<u8>,
}

impl Frame {
    /// The value of header `name` (case-insensitive), if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The `Content-Type` header, or `""`.
    pub fn content_type(&self) -> &str {
        self.header("Content-Type").unwrap_or("")
    }
}

impl fmt::Debug for Frame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Frame")
            .field("content_type", &self.content_type())
            .field("headers", &self.headers.len())
            .field("body_len", &self.body.len())
            .finish()
    }
}

/// The most header lines a frame may have; FreeSWITCH's replies have a handful.
const MAX_HEADERS: usize = 64;

/// Takes the first frame from `buf`. Returns the frame and how many bytes it used (the caller
/// drops them), or why not. Blank lines before a frame are skipped. `max` bounds the whole
/// frame, header block plus body.
pub fn parse(buf: &[u8], max: usize) -> Result<(Frame, usize), FrameError> {
    let start = buf.iter().take_while(|b| **b == b'\n').count();
    let rest = &buf[start..];
    let Some(head_len) = find_blank_line(rest, max) else {
        if rest.len() > max {
            return Err(FrameError::TooLarge { limit: max });
        }
        return Err(FrameError::Incomplete);
    };
    let head = std::str::from_utf8(&rest[..head_len])
        .map_err(|_| FrameError::Malformed("header block is not UTF-8"))?;
    let mut headers = Vec::new();
    for line in head.split('\n').filter(|l| !l.is_empty()) {
        let (name, value) = line
            .split_once(':')
            .ok_or(FrameError::Malformed("a header line has no ':'"))?;
        if name.is_empty() || name.contains(' ') {
            return Err(FrameError::Malformed(
                "a header name is empty or has spaces",
            ));
        }
        if headers.len() == MAX_HEADERS {
            return Err(FrameError::Malformed("too many header lines"));
        }
        headers.push((name.to_string(), value.trim().to_string()));
    }
    if headers.is_empty() {
        return Err(FrameError::Malformed("empty header block"));
    }
    let body_start = head_len + 2;
    let body_len = match headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("Content-Length"))
    {
        None => 0,
        Some((_, v)) => v
            .parse::<usize>()
            .map_err(|_| FrameError::Malformed("Content-Length is not a number"))?,
    };
    if body_len > max.saturating_sub(body_start) {
        return Err(FrameError::TooLarge { limit: max });
    }
    if rest.len() < body_start + body_len {
        return Err(FrameError::Incomplete);
    }
    let body = rest[body_start..body_start + body_len].to_vec();
    Ok((Frame { headers, body }, start + body_start + body_len))
}

/// The offset of the `\n\n` ending the header block, looked for within `max` bytes only.
fn find_blank_line(buf: &[u8], max: usize) -> Option<usize> {
    let end = buf.len().min(max.saturating_add(2));
    buf[..end].windows(2).position(|w| w == b"\n\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    const A1: &[u8] = include_bytes!("../../tests/fixtures/esl/a1-auth-ok.s2c.raw");
    const C1: &[u8] =
        include_bytes!("../../tests/fixtures/esl/c1-event-json-conference-lifecycle.s2c.raw");

    /// Every frame of `raw`, parsing it whole.
    fn frames(raw: &[u8]) -> Vec<Frame> {
        let mut out = Vec::new();
        let mut at = 0;
        while at < raw.len() {
            let (frame, used) = parse(&raw[at..], 1 << 20).expect("a whole capture parses");
            out.push(frame);
            at += used;
        }
        out
    }

    #[test]
    fn captured_auth_session() {
        let f = frames(A1);
        let types: Vec<_> = f.iter().map(|f| f.content_type().to_string()).collect();
        assert_eq!(
            types,
            [
                "auth/request",
                "command/reply",
                "command/reply",
                "text/disconnect-notice"
            ]
        );
        assert_eq!(f[1].header("reply-text"), Some("+OK accepted"));
        assert_eq!(f[3].body.len(), 67);
    }

    #[test]
    fn every_prefix_is_incomplete_or_a_frame() {
        // Feeding the capture a byte at a time gives the same frames as feeding it whole.
        let whole = frames(C1);
        let mut got = Vec::new();
        let mut buf = Vec::new();
        for b in C1 {
            buf.push(*b);
            match parse(&buf, 1 << 20) {
                Ok((frame, used)) => {
                    got.push(frame);
                    buf.drain(..used);
                }
                Err(FrameError::Incomplete) => {}
                Err(e) => panic!("{e}"),
            }
        }
        assert!(buf.is_empty());
        assert_eq!(got, whole);
        assert!(whole.len() > 15, "{}", whole.len());
    }

    #[test]
    fn bad_input() {
        let cases: [(&[u8], usize, FrameError); 7] = [
            (b"Content-Type: x\n", 100, FrameError::Incomplete),
            (b"Content-Length: 10\n\nabc", 100, FrameError::Incomplete),
            (
                b"Content-Length: 999999\n\n",
                1000,
                FrameError::TooLarge { limit: 1000 },
            ),
            (&[b'a'; 200], 100, FrameError::TooLarge { limit: 100 }),
            (
                b"no colon here\n\n",
                100,
                FrameError::Malformed("a header line has no ':'"),
            ),
            (
                b"Content-Length: ten\n\n",
                100,
                FrameError::Malformed("Content-Length is not a number"),
            ),
            (
                b"\xff\xfe: x\n\n",
                100,
                FrameError::Malformed("header block is not UTF-8"),
            ),
        ];
        for (input, max, want) in cases {
            assert_eq!(parse(input, max).unwrap_err(), want, "{input:?}");
        }
    }

    #[test]
    fn leading_blank_lines_are_skipped() {
        let (f, used) = parse(b"\n\nContent-Type: auth/request\n\nX", 100).unwrap();
        assert_eq!(f.content_type(), "auth/request");
        assert_eq!(used, 30);
    }
}
