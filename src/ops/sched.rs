//! A short scheduler slice for the SIP threads, so a new call is answered without waiting for
//! the relay's time slice to run out.
//!
//! Why: a call's set-up hops between tasks on the SIP runtime (transport, transaction layer,
//! dialin's dispatch), and each hop may wake a worker thread. On a busy machine the woken
//! thread waited for the running thread's slice (by default 0.7 ms × (1 + log2 cores), 1.4 ms
//! on two cores) before it got a core, so INVITE → 100 Trying took over 1 ms in many runs of
//! `bench/run` while the relay shards and the callers' media kept both cores busy. Linux (6.12
//! and later, EEVDF) lets a thread ask for a shorter slice (`sched_setattr`, `sched_runtime`
//! for `SCHED_OTHER`, no privilege needed); a woken thread with a shorter slice preempts one
//! with a longer slice. The SIP threads run in short bursts, so asking costs them nothing.
//! `bench/run` (quick, three alternating pairs): INVITE → 100 Trying p50 0.34–0.44 → 0.25–0.32
//! ms, p99 1.19–1.29 → 0.86–1.33 ms. The relay shards keep the default: giving them short
//! slices too changed nothing measurable and would let them preempt the SIP threads again.
//!
//! Nice value, policy and priority stay as they were; on older kernels the request is accepted
//! and has no effect.

use std::io;

/// The slice asked for: the shortest Linux accepts (it clamps to 0.1–100 ms).
pub const SIGNALLING_SLICE_NS: u64 = 100_000;

/// `struct sched_attr` of sched_setattr(2), first version (56 bytes).
#[repr(C)]
struct SchedAttr {
    size: u32,
    policy: u32,
    flags: u64,
    nice: i32,
    priority: u32,
    runtime: u64,
    deadline: u64,
    period: u64,
    util_min: u32,
    util_max: u32,
}

/// Asks for [`SIGNALLING_SLICE_NS`] for the calling thread. Meant for the SIP runtime's
/// `on_thread_start`; a failure only costs latency, so callers may ignore it.
pub fn short_slice_for_this_thread() -> io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        // getpriority returns -1 both as a nice value and as an error: clear errno to tell.
        // SAFETY: errno is thread-local; getpriority only reads this thread's nice value.
        let nice = unsafe {
            *libc::__errno_location() = 0;
            libc::getpriority(libc::PRIO_PROCESS, 0)
        };
        if nice == -1 && io::Error::last_os_error().raw_os_error() != Some(0) {
            return Err(io::Error::last_os_error());
        }
        let attr = SchedAttr {
            size: std::mem::size_of::<SchedAttr>() as u32,
            policy: libc::SCHED_OTHER as u32,
            flags: 0,
            nice,
            priority: 0,
            runtime: SIGNALLING_SLICE_NS,
            deadline: 0,
            period: 0,
            util_min: 0,
            util_max: 0,
        };
        // SAFETY: a valid sched_attr of the size it states, for the calling thread (pid 0).
        let rc = unsafe { libc::syscall(libc::SYS_sched_setattr, 0, &attr as *const SchedAttr, 0) };
        if rc == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        Err(io::Error::new(io::ErrorKind::Unsupported, "Linux only"))
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    /// This thread's `se.slice` from /proc, where the kernel shows it (6.6 and later).
    fn slice_ns() -> Option<u64> {
        let sched = std::fs::read_to_string("/proc/thread-self/sched").ok()?;
        sched
            .lines()
            .find(|l| l.starts_with("se.slice"))?
            .split(':')
            .nth(1)?
            .trim()
            .parse()
            .ok()
    }

    /// Whether the kernel honours custom slices (EEVDF with `sched_runtime`: 6.12 and later).
    fn has_custom_slices() -> bool {
        let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
        let mut parts = release
            .trim()
            .split(['.', '-'])
            .map(|p| p.parse::<u32>().unwrap_or(0));
        let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
        (major, minor) >= (6, 12)
    }

    fn nice() -> i32 {
        // SAFETY: reads this thread's nice value.
        unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) }
    }

    #[test]
    fn the_thread_gets_the_short_slice_and_keeps_its_nice_value() {
        std::thread::spawn(|| {
            // A nice value of our own, to see that it survives (raising it needs no privilege).
            // SAFETY: changes only this thread's nice value.
            unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, nice() + 3) };
            let before = nice();
            let Some(default) = slice_ns().filter(|_| has_custom_slices()) else {
                eprintln!("skipped: this kernel has no custom slices (Linux 6.12 and later)");
                return;
            };
            assert_ne!(default, SIGNALLING_SLICE_NS, "the default slice is longer");
            short_slice_for_this_thread().expect("sched_setattr");
            assert_eq!(slice_ns(), Some(SIGNALLING_SLICE_NS));
            assert_eq!(nice(), before);
        })
        .join()
        .unwrap();
    }

    #[test]
    fn other_threads_keep_the_default() {
        let default = std::thread::spawn(slice_ns).join().unwrap();
        std::thread::spawn(|| short_slice_for_this_thread().unwrap())
            .join()
            .unwrap();
        assert_eq!(std::thread::spawn(slice_ns).join().unwrap(), default);
    }
}
