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

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use tokio::runtime::{Builder, Handle};

/// The shards' handles, started on first use.
static SHARDS: OnceLock<Vec<Handle>> = OnceLock::new();
/// Round-robin position for the next call.
static NEXT: AtomicUsize = AtomicUsize::new(0);

/// Runs a call's future on the next shard (on the current runtime if no shard could start).
pub fn spawn_call_task<F>(task: F)
where
    F: Future<Output = ()> + Send + 'static,
{
    let shards = SHARDS.get_or_init(start);
    if shards.is_empty() {
        tokio::spawn(task);
        return;
    }
    let i = NEXT.fetch_add(1, Ordering::Relaxed) % shards.len();
    shards[i].spawn(task);
}

/// One shard per available core; each thread drives its runtime for the life of the process.
fn start() -> Vec<Handle> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    (0..cores)
        .filter_map(|i| {
            let rt = Builder::new_current_thread().enable_all().build().ok()?;
            let handle = rt.handle().clone();
            std::thread::Builder::new()
                .name(format!("dialin-calls-{i}"))
                .spawn(move || rt.block_on(super::relay_loop::run()))
                .ok()?;
            Some(handle)
        })
        .collect()
}
