//! ICMP on dialling (issue 22, item 5): is the server's SIP port closed?
//!
//! A server whose FreeSWITCH is down answers UDP with ICMP port unreachable (or its network
//! with host unreachable), but rsipstack's UDP socket is not connected, so the kernel keeps
//! those errors from it and the INVITE waits out `routing.server_answer_timeout` (10 s of dead
//! air) unless the Event Socket or the OPTIONS probes already said the server is down. Beside
//! each server INVITE, a connected socket of its own sends the server's SIP address one empty
//! datagram: a connected UDP socket does get the ICMP error back, within a round trip. An
//! empty datagram carries no message, so a SIP server that listens ignores it.

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::task::JoinHandle;

/// How long the check waits for an ICMP error: many round trips, far less than the server
/// answer timeout. Nothing back by then (the usual case: the server listens) says nothing.
const WINDOW: Duration = Duration::from_secs(2);

/// Starts the check of `server` (its SIP address); the task answers whether the address
/// refused the datagram (ICMP port or host unreachable).
pub(super) fn spawn(server: SocketAddr) -> JoinHandle<bool> {
    tokio::spawn(async move { refused(server, WINDOW).await })
}

/// Whether `server` answered an empty datagram with an ICMP error within `window`.
async fn refused(server: SocketAddr, window: Duration) -> bool {
    let any: SocketAddr = if server.is_ipv4() {
        (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let Ok(socket) = tokio::net::UdpSocket::bind(any).await else {
        return false;
    };
    if socket.connect(server).await.is_err() {
        return false;
    }
    if let Err(e) = socket.send(&[]).await {
        return is_unreachable(&e);
    }
    let mut buf = [0u8; 16];
    match tokio::time::timeout(window, socket.recv(&mut buf)).await {
        Ok(Err(e)) => is_unreachable(&e),
        // A datagram back (a server that answers anything) or nothing: not refused.
        Ok(Ok(_)) | Err(_) => false,
    }
}

/// The errors a connected UDP socket reports for ICMP port, host or network unreachable.
fn is_unreachable(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::ConnectionRefused | ErrorKind::HostUnreachable | ErrorKind::NetworkUnreachable
    )
}

#[cfg(test)]
mod tests {
    use super::refused;
    use std::time::Duration;

    /// A port nothing listens on: the kernel's ICMP port unreachable comes back at once.
    #[tokio::test]
    async fn a_closed_port_is_refused() {
        let closed = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = closed.local_addr().unwrap();
        drop(closed);
        assert!(refused(addr, Duration::from_secs(2)).await);
    }

    /// A port something listens on (and says nothing): not refused, after the window.
    #[tokio::test]
    async fn a_listening_port_is_not_refused() {
        let open = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = open.local_addr().unwrap();
        assert!(!refused(addr, Duration::from_millis(200)).await);
        let mut buf = [0u8; 16];
        open.set_nonblocking(true).unwrap();
        assert_eq!(
            open.recv(&mut buf).unwrap(),
            0,
            "the empty datagram arrived"
        );
    }
}
