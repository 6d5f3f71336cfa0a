//! Asks the CPU to start loading a call's state as soon as a packet wakes it.
//!
//! Why: on a shard that carries hundreds of calls, a call's state has left the caches by the
//! time its next packet arrives (the kernel's network path runs in between). The relay then
//! touches it field by field (sockets, media legs, counters, quality, flow, timers), and each
//! cold line costs a memory round trip, one after the other: `perf annotate` of the driver's
//! poll put most of its samples on four such loads. Prefetching the whole driver (2.8 KB, 44
//! lines) at the start of the wake-up lets those loads overlap, mostly with the receive system
//! call that comes next. `bench/run --quick --no-rtpengine`, 7 alternating pairs on a 2-core
//! Intel Xeon VM: 8.37–8.42 → 7.93–7.95 µs per packet on average, lower in 6 of the 7 pairs.
//!
//! What is left between dialin and a relay that does nothing but forward (`floor-relay` in
//! `bench/`, about 7 µs in the same runs) is this kind of cost: per-call state spread over
//! several allocations (task, driver, sockets' readiness, wake flag). bench/README.md says
//! more.

/// Cache line size on the machines we run on (x86-64, arm64).
const LINE: usize = 64;

/// Starts loading the `size_of::<T>()` bytes at `value` into the caches; a hint only.
#[inline(always)]
pub fn prefetch<T>(value: &T) {
    #[cfg(target_arch = "x86_64")]
    {
        let start = (value as *const T).cast::<i8>();
        let len = std::mem::size_of::<T>();
        let mut offset = 0;
        while offset < len {
            // SAFETY: a prefetch never faults, and every address is inside `*value`.
            unsafe {
                std::arch::x86_64::_mm_prefetch(start.add(offset), std::arch::x86_64::_MM_HINT_T0)
            };
            offset += LINE;
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = value;
}
