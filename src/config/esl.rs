//! The Event Socket parts of the configuration: `esl`, `esl_password_file`, `esl_password_env`
//! in each `[[servers]]` entry, and the `[esl]` timing and size limits.

use super::error::Problems;
use super::reader::Section;
use super::values::parse_duration;
use super::values::DurationError;
use crate::secret::Password;
use std::net::SocketAddr;
use std::time::Duration;

/// `[esl]`: how the Event Socket connections are bounded and how long a lost server's
/// conferences stay trusted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EslConfig {
    /// How long a server's conferences stay known after its Event Socket is lost (default 30 s).
    pub grace: Duration,
    /// The largest frame accepted, in bytes (default 1 MiB).
    pub max_frame: usize,
    /// How long each handshake step and request may take (default 5 s).
    pub reply_timeout: Duration,
    /// Idle time after which a keepalive request is sent (default 15 s).
    pub keepalive: Duration,
}

impl Default for EslConfig {
    fn default() -> EslConfig {
        EslConfig {
            grace: Duration::from_secs(30),
            max_frame: 1024 * 1024,
            reply_timeout: Duration::from_secs(5),
            keepalive: Duration::from_secs(15),
        }
    }
}

/// A server's Event Socket: where and with which password. `Debug` hides the password.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EslServer {
    /// The private address FreeSWITCH's event socket listens on.
    pub addr: SocketAddr,
    /// The password (`esl_password_file` or `esl_password_env`), read at load time.
    pub password: crate::secret::Password,
}

/// What the mute key does once the caller is in the meeting.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MuteMode {
    /// `conference <name> tmute <member>` over the server's Event Socket; the key is not
    /// forwarded, so BBB's user list shows the change (servers without `esl`: passthrough).
    Esl,
    /// The key goes to the conference like any other (BBB's caller controls decide).
    Passthrough,
}

/// The keys a `[[servers]]` entry may have for its Event Socket.
pub(super) const SERVER_KEYS: [&str; 3] = ["esl", "esl_password_file", "esl_password_env"];

/// A server's Event Socket address and password, if `esl` is set. The password is read here
/// (file or environment) so a missing one is reported with its key; messages never show it.
pub(super) fn server(s: &Section<'_>, p: &mut Problems<'_>) -> Option<EslServer> {
    let addr = s.parsed(p, "esl", |t| {
        t.trim().parse::<SocketAddr>().map_err(|_| {
            "not an address with port; write the server's private Event Socket address, like \"10.0.0.11:8021\""
        })
    });
    let file = s.string(p, "esl_password_file");
    let env = s.string(p, "esl_password_env");
    if !s.has("esl") {
        for key in ["esl_password_file", "esl_password_env"] {
            if s.has(key) {
                p.push(
                    s.line,
                    s.path_of(key),
                    "set, but esl is not; add esl = \"<address>:8021\" or remove this key",
                );
            }
        }
        return None;
    }
    let password = match (file, env) {
        (Some(f), None) => match std::fs::read_to_string(f.value) {
            Ok(text) if !text.trim().is_empty() => Some(Password::new(&text)),
            Ok(_) => {
                p.push(
                    f.line,
                    f.path,
                    "the file is empty; write the Event Socket password into it",
                );
                None
            }
            Err(e) => {
                p.push(f.line, f.path, format!("cannot read the password file ({e}); check the path and that dialin may read it"));
                None
            }
        },
        (None, Some(e)) => match std::env::var(e.value) {
            Ok(text) if !text.trim().is_empty() => Some(Password::new(&text)),
            _ => {
                p.push(e.line, e.path, "this environment variable is not set or empty; export the Event Socket password in it");
                None
            }
        },
        (Some(f), Some(_)) => {
            p.push(
                f.line,
                f.path,
                "set both esl_password_file and esl_password_env; keep one",
            );
            None
        }
        (None, None) => {
            p.push(s.line, s.path_of("esl_password_file"), "esl is set but no password; set esl_password_file (a file holding the password) or esl_password_env");
            None
        }
    };
    Some(EslServer {
        addr: addr?.value,
        password: password?,
    })
}

/// `[esl]`.
pub(super) fn section(root: &Section<'_>, p: &mut Problems<'_>) -> EslConfig {
    let s = root.table(
        p,
        "esl",
        &["grace", "max_frame", "reply_timeout", "keepalive"],
    );
    let mut c = EslConfig::default();
    if let Some(v) = s.parsed(p, "grace", parse_duration) {
        c.grace = v.value;
    }
    if let Some(v) = s.integer(p, "max_frame", 4096..=64 * 1024 * 1024) {
        c.max_frame = v.value as usize;
    }
    let at_least = |min_ms: u64, what: &'static str| {
        move |t: &str| {
            let d = parse_duration(t)?;
            if d < std::time::Duration::from_millis(min_ms) {
                return Err(DurationError::OutOfRange(what));
            }
            Ok(d)
        }
    };
    if let Some(v) = s.parsed(
        p,
        "reply_timeout",
        at_least(
            100,
            "must be at least 100ms, or a healthy server would count as silent",
        ),
    ) {
        c.reply_timeout = v.value;
    }
    if let Some(v) = s.parsed(
        p,
        "keepalive",
        at_least(
            1000,
            "must be at least 1s, or the keepalive requests would flood FreeSWITCH",
        ),
    ) {
        c.keepalive = v.value;
    }
    c
}
