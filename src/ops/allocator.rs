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

    #[test]
    fn blocks_from_the_threshold_up_get_their_own_mapping() {
        for mode in ["default", "tuned"] {
            let out = std::process::Command::new(std::env::current_exe().expect("test binary"))
                .args(["--exact", "ops::allocator::tests::child_counts_mappings"])
                .args(["--ignored", "--test-threads=1", "--nocapture"])
                .env(CHILD, mode)
                .output()
                .expect("run the child");
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(
                out.status.success() && text.contains("1 passed"),
                "{mode}: {text}{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}
