//! What the benchmark reads about a process from outside: CPU time, RSS, and the kernel's
//! per-socket UDP drop counters.
//!
//! CPU time is the sum of every thread's on-CPU nanoseconds (`/proc/PID/task/*/schedstat`):
//! precise to the nanosecond and unaffected by other processes competing for the cores, so it
//! holds on a shared machine where wall-clock throughput would not.

use std::fs;
use std::time::Instant;

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

/// CPU time the whole machine was busy (user, nice, system, irq, softirq), in nanoseconds,
/// from `/proc/stat` (10 ms resolution). Steal is left out: it is not this machine's work.
pub fn machine_busy_ns() -> u64 {
    fs::read_to_string("/proc/stat").map_or(0, |s| busy_ns(&s))
}

/// The busy time in a `/proc/stat` text (its first line, all CPUs together).
fn busy_ns(stat: &str) -> u64 {
    let Some(cpu) = stat.lines().next().filter(|l| l.starts_with("cpu ")) else {
        return 0;
    };
    let f: Vec<u64> = cpu
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal ...; USER_HZ is 100 on Linux.
    let busy: u64 = [0, 1, 2, 5, 6].iter().filter_map(|&i| f.get(i)).sum();
    busy * 10_000_000
}

/// The CPU other processes used during a media window: what disturbed its latency and loss
/// readings (CPU time per packet does not depend on it). Everything busy on the machine minus
/// the benchmark itself and the relay measured.
pub struct OthersProbe {
    relay: u32,
    busy0: u64,
    own0: u64,
    relay0: u64,
    at: Instant,
}

impl OthersProbe {
    /// Starts watching; `relay` is the measured relay's pid.
    pub fn start(relay: u32) -> OthersProbe {
        OthersProbe {
            relay,
            busy0: machine_busy_ns(),
            own0: cpu_ns(std::process::id()),
            relay0: cpu_ns(relay),
            at: Instant::now(),
        }
    }

    /// Others' CPU nanoseconds and the wall-clock nanoseconds since the start.
    pub fn finish(&self) -> (u64, u64) {
        let busy = machine_busy_ns().saturating_sub(self.busy0);
        let own = cpu_ns(std::process::id()).saturating_sub(self.own0);
        let relay = cpu_ns(self.relay).saturating_sub(self.relay0);
        let wall = self.at.elapsed().as_nanos() as u64;
        (busy.saturating_sub(own + relay), wall)
    }
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
    fn busy_time_leaves_out_idle_iowait_and_steal() {
        let stat = "cpu  100 2 30 5000 40 1 6 700 0 0\ncpu0 50 1 15 2500 20 0 3 350 0 0\n";
        assert_eq!(busy_ns(stat), (100 + 2 + 30 + 1 + 6) * 10_000_000);
        assert_eq!(busy_ns("intr 1 2 3\n"), 0);
    }

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
