//! Receiving a datagram with the time the kernel queued it (`SO_TIMESTAMPNS`).
//!
//! The set-up latencies are read by the benchmark's own SIP threads, which share the two cores
//! with dialin, the media threads and the echo servers. Stamped when the thread got round to
//! reading, a reply that arrived in time but waited for the reader counted against dialin. The
//! kernel's stamp is taken when the datagram reaches the socket, so the readings measure dialin
//! alone; how long the reader took is kept apart (`read_lag`) to show how busy the benchmark was.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Asks the kernel to stamp every datagram `socket` receives. When no other socket on the
/// machine asked before, the kernel turns stamping on a moment later (deferred work); until
/// then datagrams are stamped when read. The benchmark enables its sockets long before use.
pub fn enable(socket: &UdpSocket) -> io::Result<()> {
    let on: libc::c_int = 1;
    // SAFETY: a valid socket fd and a c_int option of the size given.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_TIMESTAMPNS,
            (&on as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// One datagram received by [`recv`].
pub struct Received {
    /// Its length in the buffer.
    pub len: usize,
    /// Who sent it.
    pub from: SocketAddr,
    /// When the kernel queued it (when it was read, if the kernel gave no stamp).
    pub arrived: Instant,
    /// How long it waited in the socket's queue before this thread read it.
    pub read_lag: Duration,
}

/// Receives one datagram like `recv_from` (blocking per the socket's read timeout), with its
/// arrival time. The socket needs [`enable`] for the stamp.
pub fn recv(socket: &UdpSocket, buf: &mut [u8]) -> io::Result<Received> {
    // SAFETY: all-zero is a valid sockaddr_storage.
    let mut addr: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // u64 elements keep the control buffer aligned for cmsghdr.
    let mut control = [0u64; 8];
    // SAFETY: all-zero is a valid msghdr; the pointers set below outlive the call.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_name = (&mut addr as *mut libc::sockaddr_storage).cast();
    msg.msg_namelen = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&control) as _;
    // SAFETY: msg points at live buffers of the sizes it states.
    let n = unsafe { libc::recvmsg(socket.as_raw_fd(), &mut msg, 0) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let (now, wall) = (Instant::now(), SystemTime::now());
    let read_lag = kernel_stamp(&msg)
        .and_then(|at| wall.duration_since(at).ok())
        .unwrap_or(Duration::ZERO);
    Ok(Received {
        len: n as usize,
        from: to_socket_addr(&addr).ok_or_else(|| io::Error::other("not an IP sender"))?,
        arrived: now.checked_sub(read_lag).unwrap_or(now),
        read_lag,
    })
}

/// The `SCM_TIMESTAMPNS` control message of `msg`, as wall-clock time.
fn kernel_stamp(msg: &libc::msghdr) -> Option<SystemTime> {
    // SAFETY: msg was filled by recvmsg; the CMSG macros walk its control buffer within
    // msg_controllen.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_TIMESTAMPNS {
                let ts = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast::<libc::timespec>());
                return Some(UNIX_EPOCH + Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32));
            }
            c = libc::CMSG_NXTHDR(msg, c);
        }
    }
    None
}

fn to_socket_addr(addr: &libc::sockaddr_storage) -> Option<SocketAddr> {
    match addr.ss_family as libc::c_int {
        libc::AF_INET => {
            // SAFETY: the family says this storage holds a sockaddr_in.
            let a =
                unsafe { &*(addr as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            let ip = std::net::Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr));
            Some(SocketAddr::from((ip, u16::from_be(a.sin_port))))
        }
        libc::AF_INET6 => {
            // SAFETY: the family says this storage holds a sockaddr_in6.
            let a =
                unsafe { &*(addr as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>() };
            let ip = std::net::Ipv6Addr::from(a.sin6_addr.s6_addr);
            Some(SocketAddr::from((ip, u16::from_be(a.sin6_port))))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_datagram_that_waited_is_stamped_when_it_arrived() {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        enable(&rx).unwrap();
        // Let the kernel's deferred switch-on of stamping happen (see `enable`).
        std::thread::sleep(Duration::from_millis(100));
        let sent = Instant::now();
        tx.send_to(b"hello", rx.local_addr().unwrap()).unwrap();
        std::thread::sleep(Duration::from_millis(30));
        let mut buf = [0u8; 64];
        let got = recv(&rx, &mut buf).unwrap();
        assert_eq!(&buf[..got.len], b"hello");
        assert_eq!(got.from, tx.local_addr().unwrap());
        // Read 30 ms late, but stamped on arrival.
        assert!(
            got.read_lag >= Duration::from_millis(25),
            "{:?}",
            got.read_lag
        );
        assert!(got.arrived < sent + Duration::from_millis(10));
    }

    #[test]
    fn without_stamps_the_read_time_is_used() {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        tx.send_to(b"x", rx.local_addr().unwrap()).unwrap();
        std::thread::sleep(Duration::from_millis(5));
        let mut buf = [0u8; 8];
        let got = recv(&rx, &mut buf).unwrap();
        assert_eq!(got.read_lag, Duration::ZERO);
    }
}
