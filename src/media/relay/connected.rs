//! Connecting a leg's UDP socket to its peer once the peer's address is settled.
//!
//! Why: a send on a connected socket without an address reuses the route the kernel cached at
//! `connect`, where `sendto` looks it up again for every packet (`perf` put the lookup at
//! about 2.5 % of dialin's CPU per relayed packet). The kernel then also drops datagrams from
//! any other source before they reach us; the media state accepts nothing else from a settled
//! peer anyway. A leg whose peer may still move (port latching, a re-INVITE to a new address)
//! is disconnected, so packets from anywhere reach the media state's checks again.

use std::io;
use std::mem::size_of;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;

/// Connects `socket` to `peer`, or dissolves its association (`None`). The socket must be
/// bound to a port of its own choosing, as the port pool binds them: Linux gives up a port it
/// picked itself (bind to port 0) when the association is dissolved.
pub fn connect(socket: &UdpSocket, peer: Option<SocketAddr>) -> io::Result<()> {
    match peer {
        Some(peer) => socket.connect(peer),
        None => {
            // SAFETY: an all-zero sockaddr with family AF_UNSPEC is what connect(2) takes to
            // dissolve a datagram socket's association; the fd is open.
            let rc = unsafe {
                let mut unspec: libc::sockaddr = std::mem::zeroed();
                unspec.sa_family = libc::AF_UNSPEC as libc::sa_family_t;
                libc::connect(
                    socket.as_raw_fd(),
                    &unspec,
                    size_of::<libc::sockaddr>() as libc::socklen_t,
                )
            };
            if rc < 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        }
    }
}

/// A socket on 127.0.0.1 bound as the port pool binds them, to a port named in the bind, for
/// tests (a port the kernel picked would be given up when the socket is disconnected).
#[cfg(test)]
pub fn test_socket() -> (UdpSocket, SocketAddr) {
    let free = UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .expect("a free port");
    (UdpSocket::bind(free).expect("bind"), free)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn bound() -> (UdpSocket, SocketAddr) {
        let (s, a) = test_socket();
        s.set_read_timeout(Some(Duration::from_millis(300)))
            .expect("timeout");
        (s, a)
    }

    #[test]
    fn a_connected_socket_hears_only_its_peer_until_disconnected() {
        let (ours, our_addr) = bound();
        let (peer, peer_addr) = bound();
        let (stranger, _) = bound();
        connect(&ours, Some(peer_addr)).expect("connect");
        stranger.send_to(b"s1", our_addr).expect("send");
        peer.send_to(b"p1", our_addr).expect("send");
        let mut buf = [0u8; 8];
        let (n, from) = ours.recv_from(&mut buf).expect("the peer's packet");
        assert_eq!((&buf[..n], from), (&b"p1"[..], peer_addr));
        assert!(
            ours.recv_from(&mut buf).is_err(),
            "the stranger's was dropped"
        );
        // A send without an address goes to the peer.
        ours.send(b"to").expect("send");
        assert_eq!(peer.recv_from(&mut buf).expect("recv").1, our_addr);

        connect(&ours, None).expect("disconnect");
        stranger.send_to(b"s2", our_addr).expect("send");
        let (n, _) = ours.recv_from(&mut buf).expect("anyone's packet again");
        assert_eq!(&buf[..n], b"s2");
        assert!(ours.send(b"x").is_err(), "no peer to send to");
        assert_eq!(
            ours.local_addr().expect("bound"),
            our_addr,
            "the port stays"
        );
    }
}
