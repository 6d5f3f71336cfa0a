//! The client side of `dialin status` and `dialin drain`: one HTTP/1.1 request to the admin
//! listener of a running instance, over a plain blocking socket (no runtime needed).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// Why the running instance could not be asked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// Nothing answers at the address.
    #[error("cannot reach dialin's admin listener at {addr} ({reason}); is dialin running, and is [admin] listen set to this address?")]
    Connect {
        /// The address tried.
        addr: SocketAddr,
        /// The socket error.
        reason: String,
    },
    /// Something answered, but not as expected.
    #[error("unexpected answer from {addr}: {what}")]
    Answer {
        /// The address asked.
        addr: SocketAddr,
        /// What was wrong.
        what: String,
    },
}

/// Sends `method path` to `addr` (with the bearer `token`, if any) and returns the body of a
/// 2xx answer.
pub fn request(
    addr: SocketAddr,
    token: Option<&str>,
    method: &str,
    path: &str,
) -> Result<String, ClientError> {
    let connect = |e: std::io::Error| ClientError::Connect {
        addr,
        reason: e.to_string(),
    };
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).map_err(connect)?;
    stream.set_read_timeout(Some(Duration::from_secs(10))).ok();
    let auth = token
        .map(|t| format!("Authorization: Bearer {}\r\n", t.trim()))
        .unwrap_or_default();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Content-Length: 0\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(req.as_bytes()).map_err(connect)?;
    let mut raw = Vec::new();
    // Bounded: the status and the call list are small.
    stream
        .take(4 << 20)
        .read_to_end(&mut raw)
        .map_err(connect)?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| ClientError::Answer {
            addr,
            what: "not an HTTP response".into(),
        })?;
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse::<u16>().ok())
        .unwrap_or(0);
    if code == 401 {
        return Err(ClientError::Answer {
            addr,
            what: "HTTP 401: the admin token is missing or wrong; give --config with the instance's [admin] token_file or token_env".into(),
        });
    }
    if !(200..300).contains(&code) {
        // The body says why (e.g. /readyz's failing checks); bounded, it is the peer's text.
        let why: String = body.trim().chars().take(500).collect();
        let what = if why.is_empty() {
            format!("HTTP {code}")
        } else {
            format!("HTTP {code}: {why}")
        };
        return Err(ClientError::Answer { addr, what });
    }
    Ok(body.to_string())
}
