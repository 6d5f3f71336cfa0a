//! A leg's RTP socket, registered with the runtime for readability only.
//!
//! Why not `tokio::net::UdpSocket`: it registers every socket for writability too, and on
//! Linux each datagram sent then queues a write-space event on our own epoll (the kernel frees
//! the sent buffer at once on loopback and fast links), which the runtime has to fetch and
//! dispatch: an extra event per relayed packet. A UDP socket practically never fills its send
//! buffer, so sends are plain non-blocking `sendto`s, and one that would block drops the
//! packet, as a congested network would.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::task::{Context, Poll};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

/// A non-blocking UDP socket the runtime watches for incoming packets only.
pub struct RtpSocket(AsyncFd<UdpSocket>);

impl RtpSocket {
    /// Makes `socket` non-blocking and registers it with the current runtime's reactor (the
    /// call shard's, so its wake-ups stay on that thread).
    pub fn new(socket: UdpSocket) -> io::Result<RtpSocket> {
        socket.set_nonblocking(true)?;
        // SAFETY: the AsyncFd owns the socket, so its fd stays open and the same until the
        // AsyncFd is dropped.
        unsafe { AsyncFd::register_with_interest(socket, Interest::READABLE) }
            .map(RtpSocket)
            .map_err(|e| e.into_parts().1)
    }

    /// Ready when packets may be queued. A poll, not a future made per wait: the socket
    /// keeps one waker, not an entry in its waiter list added and removed under a lock.
    /// An error counts as readable (the read then sees it and clears the readiness).
    pub fn poll_readable(&self, cx: &mut Context<'_>) -> Poll<()> {
        self.0.poll_read_ready(cx).map(|_| ())
    }

    /// Runs a read on the socket; `WouldBlock` from `f` clears the readiness (see tokio's
    /// `AsyncFd::try_io`).
    pub fn try_read<R>(&self, f: impl FnOnce(&UdpSocket) -> io::Result<R>) -> io::Result<R> {
        self.0.try_io(Interest::READABLE, f)
    }

    /// Sends one datagram now, or fails with `WouldBlock` if the send buffer is full.
    pub fn send_to(&self, buf: &[u8], to: SocketAddr) -> io::Result<usize> {
        self.0.get_ref().send_to(buf, to)
    }

    /// The bound address (its port goes into our SDP).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.get_ref().local_addr()
    }
}
