//! How the C allocator is set up for many long calls that are set up in bursts.
//!
//! Why: a call's set-up allocates short-lived blocks of 8 KB and more between the small,
//! long-lived state of the calls set up meanwhile. glibc serves them from its heap; once freed,
//! their space is split for small allocations, the next such block takes fresh memory, and the
//! process's RSS never shrinks back. Today one block per call remains: rsipstack boxes the
//! future that runs an outgoing INVITE (~9.9 KB, the conference leg), freed when the INVITE
//! completes. (Until the `lazy-transaction-channel` patch in `vendor/`, every transaction's
//! ~10.5 KB channel block was another.) Blocks of [`MMAP_THRESHOLD`] and more get a mapping of
//! their own, returned to the system when freed. `bench/run` (quick, 500 calls): RSS per call
//! 49.8 → 41.7 KB. The cost is an `mmap` and a `munmap` per such block, one per call set-up;
//! nothing per packet (the relay allocates nothing).
//!
//! And glibc keeps what a burst freed: after 20,000 calls at 87 a second (`tests/soak/run`)
//! the heap held 2.9 MB in use but 84 MB free, all of it still counted in RSS (a free chunk is
//! only given back when it is at the heap's top). An operator watching RSS after a peak
//! would see a leak. [`give_back_periodically`] hands free pages back with `malloc_trim`
//! every [`GIVE_BACK_EVERY`] when more than [`GIVE_BACK_ABOVE`] is free.

/// Allocations this large or larger get their own mapping.
pub const MMAP_THRESHOLD: usize = 8 * 1024;

/// Applies the setting; call it first in `main`, before other threads start. Returns whether
/// it applied (only with glibc; other C libraries keep their defaults).
pub fn tune() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallopt only changes the allocator's parameters, under its own lock.
        unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD as libc::c_int) == 1 }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}

/// How often the heap's free memory is looked at.
pub const GIVE_BACK_EVERY: std::time::Duration = std::time::Duration::from_secs(10);
/// Free heap memory beyond this is given back to the system.
pub const GIVE_BACK_ABOVE: usize = 16 * 1024 * 1024;

/// Bytes the heap holds free (glibc; 0 elsewhere). Read with `mallinfo`, not `mallinfo2`:
/// the Debian package links against glibc 2.31, which has no `mallinfo2` (2.33). Its `int`
/// field is read as unsigned, exact up to 4 GB free.
pub fn free_heap() -> usize {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallinfo only reads the allocator's statistics.
        let info = unsafe { libc::mallinfo() };
        info.fordblks as u32 as usize
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        0
    }
}

/// Gives the heap's free pages back to the system when more than `above` bytes are free.
/// Returns whether it did. (glibc only; elsewhere nothing.)
pub fn give_back_free_memory(above: usize) -> bool {
    if free_heap() <= above {
        return false;
    }
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: malloc_trim only releases free memory, under the allocator's locks.
        unsafe { libc::malloc_trim(0) };
        true
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}

/// Runs [`give_back_free_memory`] every [`GIVE_BACK_EVERY`] until `cancel`, off the async
/// threads (a trim walks every arena: milliseconds on a large heap).
pub async fn give_back_periodically(cancel: tokio_util::sync::CancellationToken) {
    let mut every = tokio::time::interval(GIVE_BACK_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = every.tick() => {}
        }
        let gave = tokio::task::spawn_blocking(|| give_back_free_memory(GIVE_BACK_ABOVE)).await;
        if matches!(gave, Ok(true)) {
            tracing::debug!("free heap memory given back to the system");
        }
    }
}

#[cfg(all(test, target_os = "linux", target_env = "gnu"))]
mod tests {
    use super::*;

    /// Set in the child process that [`blocks_from_the_threshold_up_get_their_own_mapping`]
    /// starts: the allocator's state must be fresh, not what other tests left.
    const CHILD: &str = "DIALIN_ALLOCATOR_TEST_CHILD";

    /// Allocates `n` set-up-sized blocks (10.5 KB, a little above the INVITE future) and
    /// returns how many mappings glibc made meanwhile.
    fn mappings_for(n: usize) -> usize {
        // SAFETY: mallinfo2 only reads the allocator's statistics.
        let before = unsafe { libc::mallinfo2() }.hblks;
        let mut blocks = Vec::with_capacity(n);
        for _ in 0..n {
            blocks.push(vec![1u8; 10_752]);
        }
        // SAFETY: as above.
        let after = unsafe { libc::mallinfo2() }.hblks;
        drop(blocks);
        after - before
    }

    #[test]
    #[ignore = "run by blocks_from_the_threshold_up_get_their_own_mapping in a child process"]
    fn child_counts_mappings() {
        if std::env::var_os(CHILD).is_none() {
            return;
        }
        let tuned = std::env::var(CHILD).as_deref() == Ok("tuned");
        if tuned {
            assert!(tune());
        }
        // Once the heap's free top is used up (it grows 128 KB at a time), a block at or
        // above the threshold is mapped rather than the heap grown.
        let mapped = mappings_for(1000);
        if tuned {
            assert!(mapped >= 900, "only {mapped} of 1000 blocks were mapped");
        } else {
            assert_eq!(mapped, 0, "glibc's default threshold (128 KB) maps none");
        }
    }

    /// This process's resident set, bytes.
    fn rss() -> usize {
        let statm = std::fs::read_to_string("/proc/self/statm").expect("statm");
        let pages: usize = statm
            .split_whitespace()
            .nth(1)
            .expect("rss")
            .parse()
            .expect("a number");
        pages * 4096
    }

    #[test]
    #[ignore = "run by free_memory_after_a_burst_is_given_back in a child process"]
    fn child_gives_back() {
        if std::env::var_os(CHILD).is_none() {
            return;
        }
        tune();
        // A burst: 64 MB in small blocks, then all freed but every 64th (what outlives the
        // burst holds the heap's top and middle, so glibc alone gives nothing back).
        let mut blocks: Vec<Vec<u8>> = (0..64 * 1024).map(|i| vec![i as u8; 1000]).collect();
        let kept: Vec<Vec<u8>> = blocks.iter().step_by(64).cloned().collect();
        blocks.clear();
        blocks.shrink_to_fit();
        let before = rss();
        assert!(free_heap() > GIVE_BACK_ABOVE, "free: {}", free_heap());
        assert!(give_back_free_memory(GIVE_BACK_ABOVE));
        let after = rss();
        assert!(
            after + 40 * 1024 * 1024 < before,
            "RSS {before} -> {after}: not given back"
        );
        // Again: the free chunks stay free (only their pages went), and a second trim finds
        // them so and costs little.
        let t = std::time::Instant::now();
        give_back_free_memory(GIVE_BACK_ABOVE);
        eprintln!("second trim took {:?}", t.elapsed());
        assert!(rss() <= after + 1024 * 1024);
        assert_eq!(kept.len(), 1024);
    }

    /// Runs the ignored test `name` of this module in a child process (a fresh allocator)
    /// with [`CHILD`] set to `mode`, and asserts it passed.
    fn in_child(name: &str, mode: &str) {
        let out = std::process::Command::new(std::env::current_exe().expect("test binary"))
            .args(["--exact", &format!("ops::allocator::tests::{name}")])
            .args(["--ignored", "--test-threads=1", "--nocapture"])
            .env(CHILD, mode)
            .output()
            .expect("run the child");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && text.contains("1 passed"),
            "{name} ({mode}): {text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    #[test]
    fn free_memory_after_a_burst_is_given_back() {
        in_child("child_gives_back", "tuned");
    }

    #[test]
    fn blocks_from_the_threshold_up_get_their_own_mapping() {
        for mode in ["default", "tuned"] {
            in_child("child_counts_mappings", mode);
        }
    }
}
