//! The shard's relay loop: waits on the epoll set of every call's RTP sockets (`path_table`)
//! and relays what is queued, call after call, in one pass per wake-up.
//!
//! It runs as the future the shard thread's runtime is driven by, so the calls' tasks (SIP,
//! timers, prompts) share the thread with it and no lock is needed. The epoll set is
//! registered with the runtime's reactor like any socket: the reactor wakes this loop when any
//! call's socket has packets, and the loop then asks the set which ones. A pass ends early when
//! its time is up (`pass_budget`), so a flood cannot hold up the calls' tasks.

use super::pass_budget::PassBudget;
use super::path_table;
use super::recv_batch::Batch;
use super::shards::StopSignal;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;
use std::time::Instant;
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;
use tracing::error;

/// Ready sockets taken per `epoll_wait`; more wait for the next pass (after other tasks).
const EVENTS: usize = 128;
/// Batches read from one socket per pass at most: a flooded port cannot starve the other
/// calls on its shard. What it still holds is read in the next pass.
pub(super) const BATCHES_PER_PASS: usize = 4;
/// How often a shard whose table could not start looks whether it must stop (it has no epoll
/// set to be woken through).
const STOP_POLL: Duration = Duration::from_millis(100);

/// The table's epoll fd as the reactor sees it (the table owns and closes it).
struct EpollSet(RawFd);

impl AsRawFd for EpollSet {
    fn as_raw_fd(&self) -> RawFd {
        self.0
    }
}

/// Relays this thread's calls until `stop` is given. If the table cannot start, it says so
/// once and only waits for `stop` (calls on this shard are then refused, since their paths
/// cannot be inserted).
pub(super) async fn run(stop: Arc<StopSignal>) {
    if let Err(e) = relay(&stop).await {
        error!(error = %e, "a media shard cannot relay RTP; calls on it are refused");
        while !stop.is_stopped() {
            tokio::time::sleep(STOP_POLL).await;
        }
    }
}

async fn relay(stop: &StopSignal) -> io::Result<()> {
    let fd = path_table::install()?;
    // Its event wakes the loop to look at the flag; `event` finds no path for it.
    path_table::with_table(|t| t.watch_stop(stop.fd())).unwrap_or(Ok(()))?;
    // SAFETY: the table owns the epoll fd for the life of the thread, so it stays open and
    // the same while this loop (and its AsyncFd) runs on that thread.
    let set = unsafe { AsyncFd::register_with_interest(EpollSet(fd), Interest::READABLE) }
        .map_err(|e| e.into_parts().1)?;
    let mut batch = Batch::new();
    // SAFETY: epoll_event is plain old data; all-zero is a valid value.
    let mut events: [libc::epoll_event; EVENTS] = unsafe { std::mem::zeroed() };
    // Sockets still holding packets after their share of a pass (edge-triggered: epoll will
    // not report them again), by their epoll data. Its capacity stays once grown.
    let mut unread: Vec<u64> = Vec::new();
    let mut still: Vec<u64> = Vec::new();
    loop {
        // Once per pass, not per packet.
        if stop.is_stopped() {
            return Ok(());
        }
        let mut ready = set.readable().await?;
        let more_queued = path_table::with_table(|table| {
            let now = Instant::now();
            let mut budget = PassBudget::new(now);
            let pending = unread.drain(..);
            read_shares(&mut budget, now, table, &mut batch, pending, &mut still);
            if budget.spent() {
                // What epoll holds stays there for the next pass.
                return true;
            }
            let n = table.ready(&mut events).unwrap_or(0);
            let fresh = events[..n].iter().map(|e| e.u64);
            read_shares(&mut budget, now, table, &mut batch, fresh, &mut still);
            n == EVENTS || budget.spent()
        })
        .unwrap_or(false);
        std::mem::swap(&mut unread, &mut still);
        if !more_queued && unread.is_empty() {
            // Everything queued was read: wait for the reactor's next word. (Packets that came
            // during this pass made the set readable again, and the reactor will say so.)
            ready.clear_ready();
        } else {
            // More is queued: relay it after the other tasks on this thread had their turn.
            tokio::task::yield_now().await;
        }
    }
}

/// Gives each of `sockets` its share ([`read_share`]) while the pass's budget lasts; those
/// that may still hold packets, and those not reached, go on `left`.
fn read_shares(
    budget: &mut PassBudget,
    now: Instant,
    table: &mut path_table::PathTable,
    batch: &mut Batch,
    sockets: impl IntoIterator<Item = u64>,
    left: &mut Vec<u64>,
) {
    budget.share(sockets, Instant::now, left, |data, left| {
        read_share(table, batch, now, data, left);
    });
}

/// Relays up to [`BATCHES_PER_PASS`] batches from the socket `data` names; if it may still
/// hold packets, it goes on `unread`.
fn read_share(
    table: &mut path_table::PathTable,
    batch: &mut Batch,
    now: Instant,
    data: u64,
    unread: &mut Vec<u64>,
) {
    let Some((path, side)) = table.event(data) else {
        return;
    };
    if path.failed() {
        return;
    }
    // A bug in one call's relay must not end the shard's other calls: the panic ends the
    // relay of this call only, and its task ends the call.
    let more = std::panic::catch_unwind(AssertUnwindSafe(|| {
        (0..BATCHES_PER_PASS).all(|_| path.relay_queued(batch, now, side))
    }));
    match more {
        Ok(true) => unread.push(data),
        Ok(false) => {}
        Err(_) => {
            error!("relaying a call's RTP failed (a bug); ending that call");
            path.fail();
        }
    }
}
