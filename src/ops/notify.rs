//! systemd's notification protocol (`sd_notify`), without libsystemd: one datagram per state
//! change to the unix socket named by `NOTIFY_SOCKET`.
//!
//! `Type=notify` units learn from `READY=1` that the listeners are bound, from `RELOADING=1`
//! and `STOPPING=1` what dialin is doing, and from `WATCHDOG=1` that it is still healthy.
//! Outside systemd (no `NOTIFY_SOCKET`) every call does nothing.

use std::os::unix::net::UnixDatagram;
use std::time::Duration;

/// A connection to systemd's notification socket, or nothing outside systemd.
#[derive(Debug)]
pub struct Notifier {
    /// The socket and its address; `None` when not started by systemd.
    target: Option<(UnixDatagram, String)>,
    /// `WATCHDOG_USEC` halved (systemd's advice), if the unit has `WatchdogSec=`.
    watchdog: Option<Duration>,
}

impl Notifier {
    /// Reads `NOTIFY_SOCKET` and `WATCHDOG_USEC` from the environment.
    pub fn from_env() -> Notifier {
        let socket = std::env::var("NOTIFY_SOCKET")
            .ok()
            .filter(|s| !s.is_empty());
        let watchdog = std::env::var("WATCHDOG_USEC")
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
            .filter(|us| *us > 0)
            .map(|us| Duration::from_micros(us / 2));
        Notifier {
            target: socket.and_then(|path| UnixDatagram::unbound().ok().map(|s| (s, path))),
            watchdog,
        }
    }

    /// How often to send `WATCHDOG=1`, if systemd watches.
    pub fn watchdog_interval(&self) -> Option<Duration> {
        self.target.as_ref().and(self.watchdog)
    }

    /// Sends `state` (such as `READY=1`); errors are ignored: systemd may be gone at shutdown.
    pub fn notify(&self, state: &str) {
        let Some((socket, path)) = &self.target else {
            return;
        };
        let _ = match path.strip_prefix('@') {
            // An abstract socket (Linux): the name starts with a NUL byte.
            Some(name) => send_abstract(socket, name, state),
            None => socket.send_to(state.as_bytes(), path).map(drop),
        };
    }
}

#[cfg(target_os = "linux")]
fn send_abstract(socket: &UnixDatagram, name: &str, state: &str) -> std::io::Result<()> {
    use std::os::linux::net::SocketAddrExt;
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())?;
    socket.send_to_addr(state.as_bytes(), &addr).map(drop)
}

#[cfg(not(target_os = "linux"))]
fn send_abstract(_: &UnixDatagram, _: &str, _: &str) -> std::io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sends_datagrams_to_the_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let server = UnixDatagram::bind(&path).unwrap();
        let n = Notifier {
            target: Some((UnixDatagram::unbound().unwrap(), path.display().to_string())),
            watchdog: Some(Duration::from_secs(5)),
        };
        n.notify("READY=1");
        let mut buf = [0u8; 64];
        let len = server.recv(&mut buf).unwrap();
        assert_eq!(&buf[..len], b"READY=1");
        assert_eq!(n.watchdog_interval(), Some(Duration::from_secs(5)));
        let none = Notifier {
            target: None,
            watchdog: Some(Duration::from_secs(5)),
        };
        none.notify("READY=1");
        assert_eq!(none.watchdog_interval(), None);
    }
}
