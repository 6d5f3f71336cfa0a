//! What the benchmark reads about a process from outside: CPU time, RSS, and the kernel's
//! per-socket UDP drop counters.
//!
//! CPU time is the sum of every thread's on-CPU nanoseconds (`/proc/PID/task/*/schedstat`):
//! precise to the nanosecond and unaffected by other processes competing for the cores, so it
//! holds on a shared machine where wall-clock throughput would not.

use std::fs;

/// On-CPU time of all live threads of `pid`, in nanoseconds (user + system).
pub fn cpu_ns(pid: u32) -> u64 {
    let Ok(dir) = fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    dir.flatten()
        .filter_map(|e| fs::read_to_string(e.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

/// Context switches (voluntary and not) of all live threads of `pid`: each is a wake-up or a
/// preemption, a cost per packet that CPU time alone hides the cause of.
pub fn context_switches(pid: u32) -> u64 {
    let Ok(dir) = fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    dir.flatten()
        .filter_map(|e| fs::read_to_string(e.path().join("status")).ok())
        .map(|s| {
            s.lines()
                .filter(|l| l.contains("ctxt_switches:"))
                .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
                .sum::<u64>()
        })
        .sum()
}

/// A `kB` field of `/proc/PID/status` (`VmRSS`, `VmHWM`), in bytes.
pub fn status_bytes(pid: u32, field: &str) -> u64 {
    let Ok(s) = fs::read_to_string(format!("/proc/{pid}/status")) else {
        return 0;
    };
    s.lines()
        .find_map(|l| {
            let rest = l.strip_prefix(field)?.strip_prefix(':')?;
            rest.split_whitespace().next()?.parse::<u64>().ok()
        })
        .map_or(0, |kb| kb * 1024)
}

/// Resident set size now, in bytes.
pub fn rss(pid: u32) -> u64 {
    status_bytes(pid, "VmRSS")
}

/// Peak resident set size since the process started, in bytes.
pub fn peak_rss(pid: u32) -> u64 {
    status_bytes(pid, "VmHWM")
}

/// Sum of the `drops` column of `/proc/net/udp` over IPv4 sockets whose local port lies in
/// `lo..=hi`: datagrams the kernel discarded because the socket's receive buffer was full.
pub fn udp_drops(lo: u16, hi: u16) -> u64 {
    let Ok(s) = fs::read_to_string("/proc/net/udp") else {
        return 0;
    };
    parse_udp_drops(&s, lo, hi)
}

/// The parser behind [`udp_drops`], separate so it can be tested on a captured table.
pub fn parse_udp_drops(table: &str, lo: u16, hi: u16) -> u64 {
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let cols: Vec<&str> = line.split_whitespace().collect();
            let port_hex = cols.get(1)?.rsplit(':').next()?;
            let port = u16::from_str_radix(port_hex, 16).ok()?;
            if port < lo || port > hi {
                return None;
            }
            cols.last()?.parse::<u64>().ok()
        })
        .sum()
}

/// Whether some IPv4 UDP socket is bound to `port` (used to wait for a daemon to listen).
pub fn udp_bound(port: u16) -> bool {
    let Ok(s) = fs::read_to_string("/proc/net/udp") else {
        return false;
    };
    let needle = format!(":{port:04X} ");
    s.lines().skip(1).any(|l| {
        l.split_whitespace()
            .nth(1)
            .is_some_and(|a| format!("{a} ").ends_with(&needle))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_drops_of_ports_in_range() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n\
   1: 0100007F:9C40 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 1 2 0000000000000000 7\n\
   2: 0100007F:9C41 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 1 2 0000000000000000 5\n\
   3: 0100007F:13C4 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 1 2 0000000000000000 100\n";
        assert_eq!(parse_udp_drops(table, 40000, 40001), 12);
        assert_eq!(parse_udp_drops(table, 40001, 50000), 5);
        assert_eq!(parse_udp_drops(table, 1, 100), 0);
    }
}
