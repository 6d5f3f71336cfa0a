//! Receiving every RTP packet queued on a socket with one `recvmmsg(2)` call.
//!
//! Why: at 50 packets per second per leg a socket rarely holds more than one packet when the
//! driver wakes, and tokio's `recv_from` then costs two system calls per packet: the read, and
//! a second read that fails with `EAGAIN` so tokio learns the socket is drained. `recvmmsg`
//! returning fewer packets than asked for already says the queue is empty, so the readiness is
//! cleared in the same `try_io` (race-free: tokio only clears the readiness event it saw before
//! the call) and a packet costs one read. The kernel's UDP path is most of a relayed packet's
//! cost (see `benches/hot_path.rs`), so a system call saved is CPU saved.
//!
//! The buffers are per worker thread, not per call: receive, rewrite and send happen without
//! an `.await` in between, so one set serves every call on the thread and a call holds no
//! receive buffer of its own.

use super::rtp_socket::RtpSocket;
use std::cell::RefCell;
use std::io;
use std::mem::{size_of, zeroed};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::AsRawFd;

/// Packets read per system call at most.
pub const BATCH: usize = 8;
/// Largest datagram we accept; bigger ones are truncated and then fail to parse.
pub const MAX_PACKET: usize = 1500;

/// Receive buffers and sender addresses for one `recvmmsg` call.
pub struct Batch {
    /// One buffer per packet.
    bufs: Box<[[u8; MAX_PACKET]; BATCH]>,
    /// Bytes received into each buffer.
    lens: [usize; BATCH],
    /// Raw sender addresses, filled by the kernel.
    names: [libc::sockaddr_storage; BATCH],
}

thread_local! {
    /// The worker thread's batch, shared by every call the thread drives.
    static BATCH_BUFS: RefCell<Batch> = RefCell::new(Batch::new());
}

impl Batch {
    fn new() -> Batch {
        Batch {
            bufs: vec![[0u8; MAX_PACKET]; BATCH]
                .into_boxed_slice()
                .try_into()
                .expect("BATCH buffers"),
            lens: [0; BATCH],
            // SAFETY: sockaddr_storage is plain old data; all-zero is a valid value.
            names: unsafe { zeroed() },
        }
    }

    /// Packet `i` of the last receive: its buffer (rewritable in place), length and sender.
    pub fn packet(&mut self, i: usize) -> (&mut [u8], usize, Option<SocketAddr>) {
        let from = to_socket_addr(&self.names[i]);
        (&mut self.bufs[i][..], self.lens[i], from)
    }

    /// One `recvmmsg(MSG_DONTWAIT)`; `WouldBlock` when nothing is queued.
    fn recv(&mut self, fd: i32) -> io::Result<usize> {
        // SAFETY: zeroed iovec/mmsghdr are valid; every pointer set below points into `self`,
        // which outlives the call, with the lengths of the buffers it points to.
        unsafe {
            let mut iov: [libc::iovec; BATCH] = zeroed();
            let mut msgs: [libc::mmsghdr; BATCH] = zeroed();
            for i in 0..BATCH {
                iov[i].iov_base = self.bufs[i].as_mut_ptr().cast();
                iov[i].iov_len = MAX_PACKET;
                msgs[i].msg_hdr.msg_iov = &mut iov[i];
                msgs[i].msg_hdr.msg_iovlen = 1;
                msgs[i].msg_hdr.msg_name =
                    (&mut self.names[i] as *mut libc::sockaddr_storage).cast();
                msgs[i].msg_hdr.msg_namelen = size_of::<libc::sockaddr_storage>() as u32;
            }
            let n = libc::recvmmsg(
                fd,
                msgs.as_mut_ptr(),
                BATCH as u32,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            );
            if n < 0 {
                return Err(io::Error::last_os_error());
            }
            let n = n as usize;
            for (len, msg) in self.lens.iter_mut().zip(&msgs).take(n) {
                *len = (msg.msg_len as usize).min(MAX_PACKET);
            }
            Ok(n)
        }
    }
}

fn to_socket_addr(s: &libc::sockaddr_storage) -> Option<SocketAddr> {
    match s.ss_family as i32 {
        libc::AF_INET => {
            // SAFETY: the family says the storage holds a sockaddr_in.
            let a = unsafe { &*(s as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            let ip = Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr));
            Some(SocketAddrV4::new(ip, u16::from_be(a.sin_port)).into())
        }
        libc::AF_INET6 => {
            // SAFETY: the family says the storage holds a sockaddr_in6.
            let a = unsafe { &*(s as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>() };
            let ip = Ipv6Addr::from(a.sin6_addr.s6_addr);
            let port = u16::from_be(a.sin6_port);
            Some(SocketAddrV6::new(ip, port, a.sin6_flowinfo, a.sin6_scope_id).into())
        }
        _ => None,
    }
}

/// Reads what is queued on `socket` (up to [`BATCH`] packets) into the thread's batch and
/// hands it to `handle` with the number of packets read (0 when nothing was queued). After a
/// full batch the socket stays readable, so the driver's next `poll_readable` is ready at once.
pub fn with_received<R>(socket: &RtpSocket, handle: impl FnOnce(&mut Batch, usize) -> R) -> R {
    BATCH_BUFS.with_borrow_mut(|batch| {
        let mut got = 0;
        // A short batch means the queue is drained: answering WouldBlock with the packets
        // in hand clears tokio's readiness without a second, failing read.
        // Any other error is also taken as "drained" (and the readiness cleared), so a socket
        // error cannot make the driver spin.
        let _ = socket.try_read(|s| {
            let fd = s.as_raw_fd();
            got = batch
                .recv(fd)
                .map_err(|_| io::Error::from(io::ErrorKind::WouldBlock))?;
            if got < BATCH {
                Err(io::ErrorKind::WouldBlock.into())
            } else {
                Ok(())
            }
        });
        handle(batch, got)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn readable(socket: &RtpSocket) {
        std::future::poll_fn(|cx| socket.poll_readable(cx)).await;
    }

    #[tokio::test]
    async fn reads_every_queued_packet_with_its_sender() {
        let rx = RtpSocket::new(std::net::UdpSocket::bind("127.0.0.1:0").expect("bind"))
            .expect("register");
        let tx = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
        let to = rx.local_addr().expect("bound");
        // More than one batch queued: the first read is full, the second short.
        for i in 0..(BATCH + 3) as u8 {
            tx.send_to(&[i; 20], to).expect("send");
        }
        readable(&rx).await;
        let mut seen = Vec::new();
        for _ in 0..2 {
            readable(&rx).await;
            with_received(&rx, |b, n| {
                for i in 0..n {
                    let (buf, len, from) = b.packet(i);
                    assert_eq!(len, 20);
                    assert_eq!(from, Some(tx.local_addr().expect("bound")));
                    seen.push(buf[0]);
                }
            });
        }
        assert_eq!(seen, (0..(BATCH + 3) as u8).collect::<Vec<_>>());
        // Drained: nothing more, and a new packet wakes the socket again.
        assert_eq!(with_received(&rx, |_, n| n), 0);
        tx.send_to(&[99; 5], to).expect("send");
        tokio::time::timeout(std::time::Duration::from_secs(2), readable(&rx))
            .await
            .expect("a new packet makes the socket readable again");
        assert_eq!(with_received(&rx, |b, n| (n, b.packet(0).0[0])), (1, 99));
    }
}
