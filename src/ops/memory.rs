//! Giving memory freed after a burst of call set-ups back to the system.
//!
//! Why: each set-up leaves SIP state that must outlive the call's answer for 32 seconds (the
//! retransmission caches of RFC 3261's transaction timers), about 20 KB per call. After a
//! burst (a large meeting starting, a trunk failing over to this instance) that memory is free
//! again, but glibc's allocator keeps freed pages in the process unless asked to return them,
//! so the resident size would stay at the burst's peak. A periodic `malloc_trim` returns them;
//! it runs on the SIP runtime, off the relay's threads, which allocate nothing per packet.

use std::time::Duration;

/// How often free memory is returned.
pub const TRIM_EVERY: Duration = Duration::from_secs(10);

/// Starts the periodic trim on the current runtime (a no-op on allocators other than glibc's).
pub fn spawn_trim() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    tokio::spawn(async {
        let mut every = tokio::time::interval(TRIM_EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            trim();
        }
    });
}

/// Returns the free pages of every malloc arena to the system.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn trim() {
    // SAFETY: malloc_trim only walks the allocator's own free lists; 0 keeps no extra pad.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(all(test, target_os = "linux", target_env = "gnu"))]
mod tests {
    /// The resident size of this process, in KB (VmRSS).
    fn rss_kb() -> u64 {
        let status = std::fs::read_to_string("/proc/self/status").expect("procfs");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS")
    }

    #[test]
    fn trimming_returns_freed_small_allocations() {
        // Many small blocks (as SIP messages are), freed all but every 64th so the heap cannot
        // simply shrink from its top: only a trim gives those pages back.
        let mut blocks: Vec<Vec<u8>> = (0..40_000).map(|i| vec![i as u8; 2000]).collect();
        let before = rss_kb();
        let mut i = 0;
        blocks.retain(|_| {
            i += 1;
            i % 64 == 0
        });
        super::trim();
        let after = rss_kb();
        assert!(
            after + 40_000 < before,
            "RSS {before} KB -> {after} KB: the ~78 MB freed were not returned"
        );
        drop(blocks);
    }
}
