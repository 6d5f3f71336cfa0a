//! How long one pass of the relay loop may relay before the shard's call tasks get their turn.
//!
//! Why: a pass was bounded by count only (128 ready sockets, 4 batches of 8 packets each, plus
//! the sockets left over from the pass before). On a shard whose calls are flooded that is
//! thousands of packets, tens of milliseconds in which no prompt frame is sent, no timer fires
//! and no SIP message of the shard's calls is handled. A budget in time bounds that whatever
//! the load; the sockets a pass did not reach are read first in the next one, after the other
//! tasks ran, so nothing queued is forgotten (the epoll set is edge-triggered and will not
//! report them again).
//!
//! The clock is read once every few sockets, not per socket: it is cheap, but so is the
//! relay of one packet.

use std::time::{Duration, Instant};

/// How long one pass may relay before it gives way. A socket's share is never cut short, so
/// a pass can run over by up to [`SOCKETS_PER_CLOCK_READ`] sockets' shares.
pub(super) const PASS_BUDGET: Duration = Duration::from_millis(1);
/// Sockets read between two looks at the clock.
pub(super) const SOCKETS_PER_CLOCK_READ: usize = 4;

/// One pass's budget: whether it may read one more socket.
pub(super) struct PassBudget {
    deadline: Instant,
    until_check: usize,
    spent: bool,
}

impl PassBudget {
    /// The budget of a pass that started at `start`.
    pub fn new(start: Instant) -> PassBudget {
        PassBudget {
            deadline: start + budget(),
            until_check: SOCKETS_PER_CLOCK_READ,
            spent: false,
        }
    }

    /// Whether the pass ran out of time; once it has, it stays so.
    pub fn spent(&self) -> bool {
        self.spent
    }

    /// Hands each socket of `sockets` (by its epoll data) to `read` while the budget lasts,
    /// reading `clock` every [`SOCKETS_PER_CLOCK_READ`] sockets. `read` puts a socket that
    /// may still hold packets on `left`; the sockets not reached go on `left` too, ahead of
    /// everything there, since they waited longest.
    pub fn share(
        &mut self,
        sockets: impl IntoIterator<Item = u64>,
        mut clock: impl FnMut() -> Instant,
        left: &mut Vec<u64>,
        mut read: impl FnMut(u64, &mut Vec<u64>),
    ) {
        let mut skipped = 0;
        for data in sockets {
            if self.allows(&mut clock) {
                read(data, left);
            } else {
                left.push(data);
                skipped += 1;
            }
        }
        if skipped > 0 {
            // The skipped ones were pushed last: move them ahead of what `read` left.
            left.rotate_right(skipped);
        }
    }

    fn allows(&mut self, clock: &mut impl FnMut() -> Instant) -> bool {
        if self.spent {
            return false;
        }
        if self.until_check == 0 {
            self.until_check = SOCKETS_PER_CLOCK_READ;
            if clock() >= self.deadline {
                self.spent = true;
                return false;
            }
        }
        self.until_check -= 1;
        true
    }
}

/// The budget of a pass: [`PASS_BUDGET`], unless a test on this thread set another.
fn budget() -> Duration {
    #[cfg(test)]
    if let Some(budget) = TEST_BUDGET.get() {
        return budget;
    }
    PASS_BUDGET
}

#[cfg(test)]
thread_local! {
    /// Replaces [`PASS_BUDGET`] for the relay loop on this thread (a test's runtime).
    pub(super) static TEST_BUDGET: std::cell::Cell<Option<Duration>> =
        const { std::cell::Cell::new(None) };
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    /// A clock that moves `step` forward each time it is read.
    fn stepping(start: Instant, step: Duration) -> impl FnMut() -> Instant {
        let now = Cell::new(start);
        move || {
            now.set(now.get() + step);
            now.get()
        }
    }

    #[test]
    fn a_quick_pass_reads_every_socket() {
        let start = Instant::now();
        let mut budget = PassBudget::new(start);
        let mut read = Vec::new();
        let mut left = Vec::new();
        let clock = stepping(start, Duration::from_micros(1));
        budget.share(0..100, clock, &mut left, |d, _| read.push(d));
        assert_eq!(read, (0..100).collect::<Vec<_>>());
        assert!(left.is_empty());
        assert!(!budget.spent());
    }

    #[test]
    fn a_slow_pass_stops_at_its_budget_and_keeps_the_rest_for_the_next() {
        let start = Instant::now();
        let mut budget = PassBudget::new(start);
        let mut read = Vec::new();
        // One clock reading per SOCKETS_PER_CLOCK_READ sockets, each a quarter of the budget
        // later: the fourth reading is at the deadline.
        let clock = stepping(start, PASS_BUDGET / 4);
        // What an earlier share left (flooded sockets it read part of).
        let mut left = vec![1000, 1001];
        // Every socket read here still holds packets.
        budget.share(0..40, clock, &mut left, |d, left| {
            read.push(d);
            left.push(d);
        });
        let reached = 4 * SOCKETS_PER_CLOCK_READ as u64;
        assert_eq!(read, (0..reached).collect::<Vec<_>>());
        assert!(budget.spent());
        // Not reached first, then the earlier ones, then those read but not emptied.
        let expected: Vec<u64> = (reached..40)
            .chain([1000, 1001])
            .chain(0..reached)
            .collect();
        assert_eq!(left, expected);
    }

    #[test]
    fn a_spent_budget_reads_nothing_more_in_the_same_pass() {
        let start = Instant::now();
        let mut budget = PassBudget::new(start);
        let mut left = Vec::new();
        let clock = stepping(start, PASS_BUDGET * 2);
        let mut read = 0;
        budget.share(0..10, clock, &mut left, |_, _| read += 1);
        assert_eq!(read, SOCKETS_PER_CLOCK_READ);
        assert!(budget.spent());
        let mut later = 0;
        let clock = stepping(start, Duration::ZERO);
        budget.share(10..12, clock, &mut left, |_, _| later += 1);
        assert_eq!(
            later, 0,
            "a later share of the same pass waits for the next pass"
        );
        assert_eq!(left, vec![10, 11, 4, 5, 6, 7, 8, 9]);
    }
}
