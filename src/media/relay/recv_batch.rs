//! Receiving every RTP packet queued on a socket with one `recvmmsg(2)` call.
//!
//! Why: at 50 packets per second per leg a socket rarely holds more than one packet when the
//! relay loop hears of it, and `recv_from` until `EAGAIN` costs two system calls per packet.
//! `recvmmsg` returning fewer packets than asked for already says the queue is empty; after a
//! full batch the relay loop reads again (its epoll set is edge-triggered). The kernel's
//! UDP path is most of a relayed packet's cost (see `benches/hot_path.rs`), so a system call
//! saved is CPU saved.
//!
//! One batch per shard, not per call: receive, rewrite and send happen in one go, so one set
//! of buffers serves every call on the shard and a call holds no receive buffer of its own.

use std::io;
use std::mem::{size_of, zeroed};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

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

impl Batch {
    /// Empty buffers for [`BATCH`] packets.
    pub fn new() -> Batch {
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

    /// One `recvmmsg(MSG_DONTWAIT)` on `fd`: how many packets it read; `WouldBlock` when
    /// nothing is queued.
    pub fn recv(&mut self, fd: i32) -> io::Result<usize> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;
    use std::os::fd::AsRawFd;

    #[test]
    fn reads_every_queued_packet_with_its_sender() {
        let rx = UdpSocket::bind("127.0.0.1:0").expect("bind");
        rx.set_nonblocking(true).expect("non-blocking");
        let tx = UdpSocket::bind("127.0.0.1:0").expect("bind");
        let to = rx.local_addr().expect("bound");
        // More than one batch queued: the first read is full, the second short.
        for i in 0..(BATCH + 3) as u8 {
            tx.send_to(&[i; 20], to).expect("send");
        }
        let mut batch = Batch::new();
        let mut seen = Vec::new();
        for expected in [BATCH, 3] {
            let n = batch.recv(rx.as_raw_fd()).expect("queued");
            assert_eq!(n, expected);
            for i in 0..n {
                let (buf, len, from) = batch.packet(i);
                assert_eq!(len, 20);
                assert_eq!(from, Some(tx.local_addr().expect("bound")));
                seen.push(buf[0]);
            }
        }
        assert_eq!(seen, (0..(BATCH + 3) as u8).collect::<Vec<_>>());
        let drained = batch.recv(rx.as_raw_fd()).expect_err("drained");
        assert_eq!(drained.kind(), std::io::ErrorKind::WouldBlock);
    }
}
