//! Waiting for a condition with a deadline, instead of sleeping "long enough".
//!
//! A fixed sleep is either too short on a loaded machine (a flaky test) or too long everywhere
//! else (a slow suite). Polling the condition returns as soon as it holds and fails only when
//! it has not held for the whole timeout, which can be generous at no cost.

use std::time::{Duration, Instant};

/// How often a condition is checked: short next to the timeouts the tests use, long enough
/// that polling (reading a log, asking for a status line) costs nothing noticeable.
pub const POLL: Duration = Duration::from_millis(20);

/// Checks `cond` every [`POLL`] until it returns `Some`, for at most `timeout` (one check is
/// always made); returns the value, or `None` when the time ran out.
pub fn poll<T>(timeout: Duration, mut cond: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = cond() {
            return Some(value);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(POLL);
    }
}

/// Whether `cond` became true within `timeout`, checked every [`POLL`]. The caller asserts
/// on the result with a message that says what did not happen.
pub fn wait_for(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    poll(timeout, || cond().then_some(())).is_some()
}
