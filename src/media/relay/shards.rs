//! Where call drivers run: one single-threaded tokio runtime per core ("shard"), each on its
//! own thread with its own epoll, calls dealt out round-robin.
//!
//! Why not the main multi-thread runtime: a relayed packet is a few microseconds of kernel
//! work, and on a work-stealing runtime most packets also paid for a parked worker being woken
//! by another (a futex wake and a context switch). The benchmark measured about 14 µs of CPU
//! per forwarded packet that way and under 8 µs with a single event loop; a shard keeps that
//! cost and still uses every core. Each shard's runtime is driven by its relay loop
//! (`relay_loop`), which relays the packets of every call on the shard; a call's media path
//! is put into the shard's table from the call's task, so both stay on the shard's thread.
//! The SIP stack stays on the main runtime; its dialog events reach the drivers through
//! channels. Without shards (no thread could start), calls run on the main runtime and are
//! refused: there is no relay loop there to carry their media.
//!
//! The shards are a value, [`Shards`], that `serve` starts and shuts down: a stopped server
//! leaves no relay thread behind (and tests can start and stop as many as they like).

use std::future::Future;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;
use tokio::runtime::{Builder, Handle};
use tracing::warn;

/// How long a stopping shard waits for blocking work its calls started (`spawn_blocking`).
const SHUTDOWN_WAIT: Duration = Duration::from_secs(1);

/// The call shards: their runtimes' handles, to spawn call tasks on, and their threads, to
/// stop and join. Dropping it shuts them down as [`Shards::shutdown`] does.
pub struct Shards {
    /// Each shard's runtime, in shard order.
    handles: Vec<Handle>,
    /// Round-robin position for the next call.
    next: AtomicUsize,
    /// Each shard's stop signal, in shard order.
    stops: Vec<Arc<StopSignal>>,
    /// The shards' threads until they are joined. Locked only to start and to shut down.
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl Shards {
    /// One shard per available core.
    pub fn start() -> Shards {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Shards::with_count(cores)
    }

    /// `count` shards; fewer if a runtime or thread cannot be started (none: calls then run on
    /// the caller's runtime and are refused, see the module doc).
    pub fn with_count(count: usize) -> Shards {
        let mut handles = Vec::with_capacity(count);
        let mut stops = Vec::with_capacity(count);
        let mut threads = Vec::with_capacity(count);
        for i in 0..count {
            match start_one(i) {
                Ok((handle, stop, thread)) => {
                    handles.push(handle);
                    stops.push(stop);
                    threads.push(thread);
                }
                Err(e) => warn!(shard = i, error = %e, "a call shard cannot start"),
            }
        }
        Shards {
            handles,
            next: AtomicUsize::new(0),
            stops,
            threads: Mutex::new(threads),
        }
    }

    /// How many shards run.
    pub fn len(&self) -> usize {
        self.handles.len()
    }

    /// Whether no shard could start.
    pub fn is_empty(&self) -> bool {
        self.handles.is_empty()
    }

    /// Runs a call's task on the next shard (on the current runtime if no shard could start).
    /// After [`shutdown`](Self::shutdown) the task is dropped unrun.
    pub fn spawn<F>(&self, task: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        if self.handles.is_empty() {
            tokio::spawn(task);
            return;
        }
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.handles.len();
        self.handles[i].spawn(task);
    }

    /// Stops every shard's relay loop, drops the call tasks left on it (their sockets close)
    /// and joins its thread. Blocks until they have ended; idempotent. A shard thread that
    /// calls it (the last holder dropped there) is told to stop but not waited for.
    pub fn shutdown(&self) {
        for stop in &self.stops {
            stop.stop();
        }
        let threads = std::mem::take(&mut *self.threads.lock().unwrap_or_else(|e| e.into_inner()));
        let me = std::thread::current().id();
        for thread in threads {
            if thread.thread().id() != me && thread.join().is_err() {
                warn!("a call shard's thread panicked");
            }
        }
    }
}

impl Drop for Shards {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Starts shard `i`: its runtime, stop signal and thread.
fn start_one(i: usize) -> io::Result<(Handle, Arc<StopSignal>, JoinHandle<()>)> {
    let rt = Builder::new_current_thread().enable_all().build()?;
    let handle = rt.handle().clone();
    let stop = Arc::new(StopSignal::new()?);
    let loop_stop = stop.clone();
    let thread = std::thread::Builder::new()
        .name(format!("dialin-calls-{i}"))
        .spawn(move || {
            rt.block_on(super::relay_loop::run(loop_stop));
            // The calls' tasks still on the shard end here, their paths with them.
            rt.shutdown_timeout(SHUTDOWN_WAIT);
        })?;
    Ok((handle, stop, thread))
}

/// Tells one shard's relay loop to return. The flag is what the loop checks (once per pass,
/// no lock); the eventfd, in the loop's epoll set, wakes it to look.
pub(super) struct StopSignal {
    /// Set once the shard must stop.
    stopped: AtomicBool,
    /// Written once on stop; level-triggered in the shard's epoll set, so a loop that
    /// registers it late still wakes.
    wake: OwnedFd,
}

impl StopSignal {
    /// A signal not yet given.
    pub(super) fn new() -> io::Result<StopSignal> {
        // SAFETY: plain system call; a valid fd is owned by the OwnedFd from here on.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(StopSignal {
            stopped: AtomicBool::new(false),
            // SAFETY: `fd` was just created and nothing else owns it.
            wake: unsafe { OwnedFd::from_raw_fd(fd) },
        })
    }

    /// Gives the signal and wakes the loop.
    pub(super) fn stop(&self) {
        if self.stopped.swap(true, Ordering::AcqRel) {
            return;
        }
        let one = 1u64.to_ne_bytes();
        // SAFETY: the fd is open; an eventfd takes 8 bytes. A full counter (impossible after
        // one write) would only mean it is readable already.
        unsafe { libc::write(self.wake.as_raw_fd(), one.as_ptr().cast(), one.len()) };
    }

    /// Whether the signal was given.
    pub(super) fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::Acquire)
    }

    /// The eventfd to watch for readability.
    pub(super) fn fd(&self) -> RawFd {
        self.wake.as_raw_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    /// The kernel's id of the current thread, which `/proc/self/task` lists while it lives.
    fn tid() -> i64 {
        // SAFETY: gettid has no arguments and cannot fail.
        unsafe { libc::syscall(libc::SYS_gettid) }
    }

    /// Spawns a task on each shard that reports its thread and holds `held` until its runtime
    /// ends; the shards' thread ids.
    fn occupy(shards: &Shards, held: &Arc<()>) -> Vec<i64> {
        let (tx, rx) = mpsc::channel();
        for _ in 0..shards.len() {
            let (tx, held) = (tx.clone(), held.clone());
            shards.spawn(async move {
                let _held = held;
                let name = std::thread::current().name().map(str::to_owned);
                tx.send((tid(), name)).expect("the test waits");
                std::future::pending::<()>().await;
            });
        }
        let mut tids: Vec<i64> = (0..shards.len())
            .map(|_| {
                let (tid, name) = rx.recv_timeout(Duration::from_secs(5)).expect("ran");
                assert!(name.is_some_and(|n| n.starts_with("dialin-calls-")));
                tid
            })
            .collect();
        tids.sort_unstable();
        tids.dedup();
        assert_eq!(tids.len(), shards.len(), "one task per shard, round-robin");
        tids
    }

    fn alive(tid: i64) -> bool {
        std::path::Path::new(&format!("/proc/self/task/{tid}")).exists()
    }

    /// Whether every thread of `tids` is gone within a second: a joined thread's `/proc` entry
    /// can outlive the join by a moment (the kernel wakes the joiner before it reaps the
    /// thread), so a look right after the join may still see it.
    fn all_gone(tids: &[i64]) -> bool {
        let deadline = std::time::Instant::now() + Duration::from_secs(1);
        loop {
            if tids.iter().all(|t| !alive(*t)) {
                return true;
            }
            if std::time::Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    #[test]
    fn shutdown_ends_every_shard_thread_and_the_calls_on_it() {
        let shards = Shards::with_count(2);
        assert_eq!(shards.len(), 2);
        let held = Arc::new(());
        let tids = occupy(&shards, &held);
        assert!(tids.iter().all(|t| alive(*t)));
        shards.shutdown();
        assert!(all_gone(&tids), "the shard threads have ended");
        assert_eq!(Arc::strong_count(&held), 1, "the calls' tasks were dropped");
        shards.shutdown();
    }

    #[test]
    fn dropping_the_shards_ends_their_threads() {
        let shards = Shards::with_count(1);
        let tids = occupy(&shards, &Arc::new(()));
        drop(shards);
        assert!(all_gone(&tids));
    }

    #[test]
    fn a_stop_before_the_loop_runs_still_stops_it() {
        let stop = Arc::new(StopSignal::new().expect("eventfd"));
        stop.stop();
        assert!(stop.is_stopped());
        let rt = Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("rt");
        rt.block_on(async {
            tokio::time::timeout(Duration::from_secs(5), super::super::relay_loop::run(stop))
                .await
                .expect("the loop returns");
        });
    }
}
