//! From the phases' readings to the results: one metric per target plus ratios and raw
//! readings, written as JSON, Markdown and into the README.

use crate::load::LoadResult;
use crate::phases::{progress, quantile, DialinRun, RtpengineRun, LATENCY_CALLS, SETTLE};
use crate::report::{self, Cmp, Metric};
use crate::Options;
use std::path::PathBuf;
use std::thread;
use std::time::Duration;

fn per_packet_us(cpu_ns: u64, load: &LoadResult) -> Option<f64> {
    (load.forwarded() > 0).then(|| cpu_ns as f64 / 1000.0 / load.forwarded() as f64)
}

fn per_packet(count: u64, load: &LoadResult) -> Option<f64> {
    (load.forwarded() > 0).then(|| count as f64 / load.forwarded() as f64)
}

fn ratio(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => Some(a / b),
        _ => None,
    }
}

fn sub(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    Some(a? - b?)
}

pub fn metrics(o: &Options, d: &DialinRun, r: Option<&RtpengineRun>) -> Vec<Metric> {
    let n = d.calls_up;
    let load = format!("{n} calls, {} pps forwarded", n * 100);
    let cpu_d = per_packet_us(d.cpu_ns, &d.load);
    let cpu_r = r.and_then(|r| per_packet_us(r.cpu_ns, &r.load));
    let lat = |l: &LoadResult, q| l.latency.quantile_ms(q);
    let base = |l: &LoadResult, q| l.direct.quantile_ms(q);
    // Added latency: the quantile through the relay minus the same quantile of the control
    // streams that went socket to socket in the same window (same load, same noise from
    // other processes on the machine).
    let added = |l: &LoadResult, q| sub(lat(l, q), base(l, q));
    let dl = d.latency.as_ref().unwrap_or(&d.load);
    let rl = r.map(|r| r.latency.as_ref().unwrap_or(&r.load));
    let lat_n = LATENCY_CALLS.min(n);
    let lat_load = format!("{lat_n} calls, {} pps forwarded", lat_n * 100);
    let (base50, base99) = (base(dl, 0.5), base(dl, 0.99));
    let added50 = added(dl, 0.5);
    let added99 = added(dl, 0.99);
    let r_added50 = rl.and_then(|l| added(l, 0.5));
    let r_added99 = rl.and_then(|l| added(l, 0.99));
    let lost_in_dialin = d.load.lost().saturating_sub(d.own_drops);
    let per_core = cpu_d.map(|us| 1e6 / (us * 100.0));
    let per_call = |rss: u64| {
        (n > 0 && rss > 0).then(|| rss.saturating_sub(d.idle_rss) as f64 / 1024.0 / n as f64)
    };
    let (rss_per_call, rss_per_call_setup) = (per_call(d.settled_rss), per_call(d.loaded_rss));
    let setup_rate = (n > 1 && d.invite_span > Duration::ZERO)
        .then(|| (o.calls - 1) as f64 / d.invite_span.as_secs_f64());
    let capacity_pass = (n >= 1000 && lost_in_dialin == 0) || per_core.is_some_and(|c| c >= 1500.0);
    let mb = |b: u64| b as f64 / 1048576.0;
    let mut m = vec![
        Metric::target("cpu_per_packet_vs_rtpengine", ratio(cpu_d, cpu_r), "ratio", Cmp::AtMost(0.7),
            &format!("dialin CPU per forwarded packet / rtpengine's, same load ({load})")),
        Metric::decided("capacity_calls_per_core", per_core, "calls", "1000 calls on 2 cores with 0 lost, or >= 1500 per core", capacity_pass,
            &format!("calls one core carries at 100% CPU, from CPU per packet at {load}")),
        Metric::target("packets_lost_in_dialin", Some(lost_in_dialin as f64), "packets", Cmp::AtMost(0.0),
            &format!("sent - received - drops at the benchmark's own sockets, at {load}")),
        Metric::target("latency_added_p50", added50, "ms", Cmp::AtMost(0.2),
            &format!("one-way p50 through dialin minus p50 of direct control streams sent at the same time, at {lat_load}")),
        Metric::target("latency_added_p99", added99, "ms", Cmp::AtMost(2.0),
            &format!("one-way p99 through dialin minus p99 of the direct control streams, at {lat_load}")),
        Metric::target("rss_per_call", rss_per_call, "KB", Cmp::AtMost(50.0),
            &format!("(RSS with {n} bridged calls - idle RSS) / calls, {} s after the last set-up (SIP keeps set-up state 32 s)", SETTLE.as_secs())),
        Metric::target("idle_rss", Some(mb(d.idle_rss)), "MB", Cmp::AtMost(20.0), "RSS 1 s after start, no calls"),
        Metric::target("invite_to_trying_p99", quantile(&d.trying_ms, 0.99), "ms", Cmp::AtMost(1.0),
            &format!("trunk leg, {} INVITEs at {}/s, to the 100's arrival in the kernel", o.calls, o.rate)),
        Metric::target("hash_to_server_invite_p99", quantile(&d.hash_to_invite_ms, 0.99), "ms", Cmp::AtMost(2.0),
            "from the # INFO sent to the conference leg's INVITE queued at its socket (kernel stamp)"),
        Metric::decided("setup_rate", setup_rate, "calls/s", ">= 200 with 0 failed", setup_rate.is_some_and(|r| r >= 199.0) && d.setup_failed == 0,
            &format!("{} calls placed, {} failed to bridge", o.calls, d.setup_failed)),
        Metric::info("latency_p50_vs_rtpengine", ratio(lat(dl, 0.5), rl.and_then(|l| lat(l, 0.5))), "ratio",
            "one-way latency through dialin / through rtpengine (both include the loopback path)"),
        Metric::info("latency_p99_vs_rtpengine", ratio(lat(dl, 0.99), rl.and_then(|l| lat(l, 0.99))), "ratio",
            "one-way latency through dialin / through rtpengine (both include the loopback path)"),
        Metric::info("dialin_cpu_per_packet", cpu_d, "us", &format!("on-CPU time of all dialin threads / forwarded packets, {load}")),
        Metric::info("rtpengine_cpu_per_packet", cpu_r, "us", "same for rtpengine (userspace, --num-threads=2)"),
        Metric::info("other_processes_cpu", d.others_cores(), "cores",
            "machine busy time (/proc/stat) minus the benchmark's and the relay's, per second of media windows: what disturbed latency and loss"),
        Metric::info("dialin_context_switches_per_packet", per_packet(d.switches, &d.load), "switches",
            "voluntary + involuntary, all dialin threads (/proc), per forwarded packet"),
        Metric::info("rtpengine_context_switches_per_packet", r.and_then(|r| per_packet(r.switches, &r.load)), "switches",
            "same for rtpengine"),
        Metric::info("dialin_latency_p50", lat(dl, 0.5), "ms", "one-way, send to receive, through dialin"),
        Metric::info("dialin_latency_p99", lat(dl, 0.99), "ms", "one-way, send to receive, through dialin"),
        Metric::info("rtpengine_latency_p50", rl.and_then(|l| lat(l, 0.5)), "ms", "one-way through rtpengine"),
        Metric::info("rtpengine_latency_p99", rl.and_then(|l| lat(l, 0.99)), "ms", "one-way through rtpengine"),
        Metric::info("rtpengine_latency_added_p50", r_added50, "ms", "one-way p50 through rtpengine minus direct p50, same window"),
        Metric::info("rtpengine_latency_added_p99", r_added99, "ms", "one-way p99 through rtpengine minus direct p99, same window"),
        Metric::info("direct_latency_p50", base50, "ms", "control streams sent socket to socket during the dialin run"),
        Metric::info("direct_latency_p99", base99, "ms", "control streams sent socket to socket during the dialin run"),
        Metric::info("rss_per_call_after_setup", rss_per_call_setup, "KB",
            &format!("(RSS - idle RSS) / calls right after the media windows, set-up state of a {}/s burst included", o.rate)),
        Metric::info("dialin_peak_rss", Some(mb(d.peak_rss)), "MB", "VmHWM after the media window"),
        Metric::info("rtpengine_peak_rss", r.map(|r| mb(r.peak_rss)), "MB", "VmHWM after the media window"),
        Metric::info("dialin_socket_drops", Some(d.relay_drops as f64), "packets", "kernel drops at dialin's RTP sockets (/proc/net/udp)"),
        Metric::info("bench_socket_drops", Some(d.own_drops as f64), "packets", "kernel drops at the benchmark's own media sockets"),
        Metric::info("rtpengine_packets_lost", r.map(|r| r.load.lost() as f64), "packets", &format!("sent - received through rtpengine, at {load}")),
        Metric::info("late_packets", Some((d.load.other + r.map_or(0, |r| r.load.other)) as f64), "packets",
            "frames that arrived after their window had ended (not counted as received), or strays"),
        Metric::info("invite_to_200_p99", quantile(&d.ok_ms, 0.99), "ms", "trunk leg, INVITE to 200 OK (answer_delay 0s)"),
        Metric::info("invite_to_trying_p50", quantile(&d.trying_ms, 0.5), "ms", "trunk leg"),
        Metric::info("hash_to_server_invite_p50", quantile(&d.hash_to_invite_ms, 0.5), "ms", ""),
        Metric::info("bench_sip_read_lag_p99", quantile(&d.phone_read_lag_ms, 0.99), "ms",
            "how long SIP answers waited in the phone side's socket before the benchmark read them (set-up times use the kernel's arrival stamps, so this is excluded)"),
        Metric::info("bench_sip_read_lag_max", quantile(&d.phone_read_lag_ms, 1.0), "ms", "same, the longest"),
    ];
    m.retain(|x| x.value.is_some() || x.target.is_some());
    m
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("model name")
                    .map(|v| v.trim_start_matches([' ', '\t', ':']).to_string())
            })
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = thread::available_parallelism().map_or(0, |n| n.get());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!("{cpu}, {cores} cores, Linux {}", kernel.trim())
}

pub fn write_results(o: &Options, d: &DialinRun, metrics: &[Metric]) -> Result<(), String> {
    std::fs::create_dir_all(&o.out).map_err(|e| format!("{}: {e}", o.out.display()))?;
    let context = [
        ("mode", o.mode.clone()),
        ("commit", o.commit.clone()),
        ("machine", machine()),
        ("load", format!(
            "{} calls placed at {}/s, {} bridged; {:.0} s of 20 ms PCMU both ways ({} pps forwarded)",
            o.calls, o.rate, d.calls_up, o.duration.as_secs_f64(), d.calls_up * 100
        )),
        ("note", format!(
            "CPU is on-CPU time from /proc, so it holds on a shared machine; latency and loss do not. Other processes used {} during the media windows{}",
            d.others_cores().map_or("an unknown share of the CPU".into(), |c| format!("{c:.2} cores on average")),
            o.reference.as_ref().map_or(String::new(), |cmd| format!(
                ". NOT rtpengine: every \"rtpengine\" figure here is the reference relay `{cmd}`"
            ))
        )),
    ];
    let json_path: PathBuf = o.out.join("latest.json");
    std::fs::write(&json_path, report::to_json(metrics)).map_err(|e| e.to_string())?;
    let md = report::to_markdown(&context, metrics);
    std::fs::write(o.out.join("latest.md"), &md).map_err(|e| e.to_string())?;
    let ctx_json: Vec<String> = context
        .iter()
        .map(|(k, v)| format!("  {}: {}", report::json_str(k), report::json_str(v)))
        .collect();
    let run = format!(
        "{{\n{},\n  \"results\": {}}}\n",
        ctx_json.join(",\n"),
        report::to_json(metrics)
    );
    std::fs::write(
        o.out.join(format!(
            "run-{}.json",
            o.mode.split(' ').next().unwrap_or("run")
        )),
        run,
    )
    .map_err(|e| e.to_string())?;
    if let Some(path) = &o.readme {
        let readme =
            std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        match report::replace_readme_table(&readme, &report::readme_table(&context, metrics)) {
            Some(new) => std::fs::write(path, new).map_err(|e| e.to_string())?,
            None => progress(&format!(
                "{}: no benchmark markers, table not updated",
                path.display()
            )),
        }
    }
    println!("{md}");
    progress(&format!("results in {}", json_path.display()));
    Ok(())
}
