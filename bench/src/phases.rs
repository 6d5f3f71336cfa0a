//! The benchmark's phases: a direct baseline (the load without any relay), dialin, then
//! rtpengine, each with the same calls and media load between the same two sockets; then the
//! results.

use crate::load::{self, Endpoints, LoadResult, Route};
use crate::metrics::{metrics, write_results};
use crate::rtpengine::Rtpengine;
use crate::sip::Conference;
use crate::uac::{Phone, State};
use crate::{procfs, Options};
use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// The ports of one run, all above `--port-base`.
struct Ports {
    dialin_sip: u16,
    phone_sip: u16,
    conference_sip: u16,
    caller_media: u16,
    server_media: u16,
    ng: u16,
    dialin_rtp: (u16, u16),
    rtpengine_rtp: (u16, u16),
}

impl Ports {
    fn new(base: u16, calls: usize) -> Ports {
        let span = (4 * calls + 96) as u16; // 4 ports per bridged call, plus slack
        let rtp0 = base + 100;
        Ports {
            dialin_sip: base,
            phone_sip: base + 2,
            conference_sip: base + 4,
            caller_media: base + 10,
            server_media: base + 12,
            ng: base + 20,
            dialin_rtp: (rtp0, rtp0 + span - 1),
            rtpengine_rtp: (rtp0 + span, rtp0 + 2 * span - 1),
        }
    }
}

impl DialinRun {
    fn add_others(&mut self, (others_ns, wall_ns): (u64, u64)) {
        self.others_cpu_ns += others_ns;
        self.windows_ns += wall_ns;
    }

    /// Cores other processes kept busy on average during the media windows.
    pub fn others_cores(&self) -> Option<f64> {
        (self.windows_ns > 0).then(|| self.others_cpu_ns as f64 / self.windows_ns as f64)
    }
}

/// What the dialin phase measured.
#[derive(Default)]
pub(crate) struct DialinRun {
    /// Context switches of all dialin threads during the main windows.
    pub switches: u64,
    /// RSS 1 s after start, before any call.
    pub idle_rss: u64,
    /// Largest RSS seen after a main window (all calls bridged).
    pub loaded_rss: u64,
    /// RSS with all calls bridged, [`SETTLE`] after the last one came up.
    pub settled_rss: u64,
    /// When the last call came up.
    pub up_at: Option<Instant>,
    /// VmHWM at the end of the windows.
    pub peak_rss: u64,
    /// On-CPU time of all dialin threads during the main windows.
    pub cpu_ns: u64,
    /// Counts and latencies of the main windows.
    pub load: LoadResult,
    /// Calls bridged (both legs up).
    pub calls_up: usize,
    /// Calls placed that did not get bridged.
    pub setup_failed: usize,
    /// From the first INVITE sent to the last.
    pub invite_span: Duration,
    /// INVITE → 100 Trying per call, in ms.
    pub trying_ms: Vec<f64>,
    /// INVITE → 200 OK per call, in ms.
    pub ok_ms: Vec<f64>,
    /// `#` INFO sent → conference INVITE received per call, in ms.
    pub hash_to_invite_ms: Vec<f64>,
    /// How long each SIP datagram to the phone side waited before the benchmark read it, in
    /// ms, during the set-up (not part of the set-up readings, which use arrival stamps).
    pub phone_read_lag_ms: Vec<f64>,
    /// Kernel drops at dialin's RTP sockets during the main windows.
    pub relay_drops: u64,
    /// Kernel drops at the benchmark's media sockets during the main windows.
    pub own_drops: u64,
    /// CPU used by other processes during all media windows (dialin's and rtpengine's).
    pub others_cpu_ns: u64,
    /// Wall-clock length of all media windows.
    pub windows_ns: u64,
    /// The windows at [`LATENCY_CALLS`], when the main load is larger.
    pub latency: Option<LoadResult>,
}

/// What the rtpengine phase measured.
#[derive(Default)]
pub(crate) struct RtpengineRun {
    /// Context switches of all rtpengine threads during the main windows.
    pub switches: u64,
    /// The windows at [`LATENCY_CALLS`], when the main load is larger.
    pub latency: Option<LoadResult>,
    /// On-CPU time of all rtpengine threads during the main windows.
    pub cpu_ns: u64,
    /// Counts and latencies of the main windows.
    pub load: LoadResult,
    /// VmHWM at the end of the windows.
    pub peak_rss: u64,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The `q` quantile of `v` (nearest rank).
pub fn quantile(v: &[f64], q: f64) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    let rank = ((q * s.len() as f64).ceil() as usize).clamp(1, s.len());
    Some(s[rank - 1])
}

pub fn progress(msg: &str) {
    eprintln!("[bench] {msg}");
}

/// Runs every phase and writes the results.
///
/// Both relays carry the same calls between the same two sockets. Their media windows
/// alternate (dialin, rtpengine, dialin, ...) so that whatever else runs on the machine weighs
/// on both alike; CPU, packets and latencies are summed over each relay's windows.
pub fn run(o: &Options) -> Result<(), String> {
    let ports = Ports::new(o.port_base, o.calls);
    let eps = Endpoints::bind(ports.caller_media, ports.server_media).map_err(|e| {
        format!(
            "cannot bind the media ports from {}: {e}",
            ports.caller_media
        )
    })?;
    let work = std::env::temp_dir().join(format!("dialin-bench-{}", std::process::id()));
    std::fs::create_dir_all(&work).map_err(|e| e.to_string())?;

    let mut dialin = setup_dialin(o, &ports, &eps, &work)?;
    let mut engine = if o.no_rtpengine {
        None
    } else {
        Some(setup_rtpengine(o, &ports, &eps)?)
    };
    thread::sleep(Duration::from_secs(1));
    let rounds = ROUNDS.min(((o.duration.as_secs_f64() / 2.0).floor() as u32).max(1));
    let window = o.duration / rounds;
    let drain = Duration::from_millis(300);
    let dpid = dialin.process.0.id();
    let drops = |p: &Ports| {
        (
            procfs::udp_drops(p.dialin_rtp.0, p.dialin_rtp.1),
            procfs::udp_drops(p.caller_media, p.server_media),
        )
    };
    let mut rtpengine = engine.as_ref().map(|_| RtpengineRun::default());
    // The latency target is stated at 500 calls: with more calls, extra windows carry only the
    // first 500 (the benchmark's own sockets would otherwise queue at the full load on a
    // small machine, and that queueing is not the relay's).
    let lat_calls = LATENCY_CALLS.min(o.calls);
    let mut levels = vec![(o.calls, false)];
    if o.calls > lat_calls {
        levels.push((lat_calls, true));
    }
    let mut d_lat = LoadResult::default();
    let mut r_lat = LoadResult::default();
    for (calls, latency_only) in levels {
        for round in 1..=rounds {
            let routes = &dialin.routes[..calls.min(dialin.routes.len())];
            progress(&format!(
                "round {round}/{rounds}: dialin, {} calls for {window:?}",
                routes.len()
            ));
            let (relay0, own0) = drops(&ports);
            let (cpu0, cs0) = (procfs::cpu_ns(dpid), procfs::context_switches(dpid));
            let others = procfs::OthersProbe::start(dpid);
            let load = load::run(&eps, routes, control_streams(calls), window, drain);
            let (cpu1, cs1) = (procfs::cpu_ns(dpid), procfs::context_switches(dpid));
            dialin.run.add_others(others.finish());
            let (relay1, own1) = drops(&ports);
            if latency_only {
                d_lat.merge(&load);
            } else {
                dialin.run.cpu_ns += cpu1 - cpu0;
                dialin.run.switches += cs1 - cs0;
                dialin.run.relay_drops += relay1 - relay0;
                dialin.run.own_drops += own1 - own0;
                dialin.run.loaded_rss = dialin.run.loaded_rss.max(procfs::rss(dpid));
                dialin.run.load.merge(&load);
            }
            if let (Some(e), Some(r)) = (engine.as_mut(), rtpengine.as_mut()) {
                let routes = &e.routes[..calls.min(e.routes.len())];
                progress(&format!(
                    "round {round}/{rounds}: rtpengine, {} calls for {window:?}",
                    routes.len()
                ));
                let pid = e.engine.pid();
                let (cpu0, cs0) = (procfs::cpu_ns(pid), procfs::context_switches(pid));
                let others = procfs::OthersProbe::start(pid);
                let load = load::run(&eps, routes, control_streams(calls), window, drain);
                dialin.run.add_others(others.finish());
                if latency_only {
                    r_lat.merge(&load);
                } else {
                    r.cpu_ns += procfs::cpu_ns(pid) - cpu0;
                    r.switches += procfs::context_switches(pid) - cs0;
                    r.load.merge(&load);
                    r.peak_rss = procfs::peak_rss(pid);
                }
            }
        }
    }
    if d_lat.forwarded() > 0 {
        dialin.run.latency = Some(d_lat);
    }
    if let Some(r) = rtpengine.as_mut().filter(|_| r_lat.forwarded() > 0) {
        r.latency = Some(r_lat);
    }
    dialin.run.peak_rss = procfs::peak_rss(dpid);
    if let Some(up_at) = dialin.run.up_at {
        let settled = up_at + SETTLE;
        let now = Instant::now();
        if settled > now {
            progress(&format!(
                "dialin: waiting {:.0} s for the set-up state to expire before reading RSS",
                (settled - now).as_secs_f64()
            ));
            thread::sleep(settled - now);
        }
        dialin.run.settled_rss = procfs::rss(dpid);
    }
    progress(&format!(
        "dialin: sent {:?} received {:?}, {:.2} s CPU",
        dialin.run.load.sent,
        dialin.run.load.received,
        dialin.run.cpu_ns as f64 / 1e9
    ));
    if let Some(r) = &rtpengine {
        progress(&format!(
            "rtpengine: sent {:?} received {:?}, {:.2} s CPU",
            r.load.sent,
            r.load.received,
            r.cpu_ns as f64 / 1e9
        ));
    }
    dialin.phone.hang_up_all(o.rate, Duration::from_secs(20));
    if let Some(e) = engine.as_mut() {
        for i in 0..e.routes.len() {
            e.engine.delete(i);
        }
    }
    let metrics = metrics(o, &dialin.run, rtpengine.as_ref());
    write_results(o, &dialin.run, &metrics)?;
    drop(dialin);
    std::fs::remove_dir_all(&work).ok();
    Ok(())
}

/// How long after the last call came up the per-call memory is read: SIP keeps each set-up's
/// transactions for 64 x T1 = 32 s (RFC 3261 timers H, J, L, M); after this only what a
/// bridged call holds is in use (freed set-up state stays in the process for the next
/// set-ups, so RSS shows it unless the allocator returned it).
pub const SETTLE: Duration = Duration::from_secs(45);

/// Media windows per relay; each relay's share of `--duration` is split into this many.
const ROUNDS: u32 = 3;
/// The load at which latency is measured (the target is stated at 500 calls).
pub const LATENCY_CALLS: usize = 500;

/// dialin's configuration for the run: limits sized for the load as an operator sizes them for
/// a trunk (all calls come from one provider address, placed at `--rate`), no admin listener,
/// the PIN store in the run's own directory. `media.server_silence` is off: the benchmark's
/// conference side sends only during its media windows (a BBB server sends all the time), and
/// dialin would take the pauses between them for a lost server and dial every call again.
/// `media.server_probe` is off too: the conference side is not asked with OPTIONS.
fn dialin_config(o: &Options, ports: &Ports, work: &Path) -> String {
    format!(
        "[sip]\nlisten = \"127.0.0.1:{sip}\"\nadvertise = \"127.0.0.1\"\n\n\
         [limits]\nmax_calls = {calls}\nmax_ivr_calls = {calls}\nsip_rate = {sip_rate}\nsip_burst = {sip_burst}\n\n\
         [admin]\nlisten = \"\"\n\n\
         [store]\nurl = \"sqlite://{store}\"\n\n\
         [media]\nrtp_ports = \"{lo}-{hi}\"\ntimeout = \"300s\"\nserver_silence = \"off\"\nserver_probe = \"off\"\n\n\
         [ivr]\necho_pin = \"\"\nfirst_digit_timeout = \"60s\"\ninter_digit_timeout = \"30s\"\n\n\
         [[servers]]\nname = \"conference\"\nsip = \"sip:127.0.0.1:{conf}\"\n\n\
         [routing]\npin_is_conference = true\ndefault_server = \"conference\"\n",
        sip = ports.dialin_sip,
        calls = o.calls + 20, // within the RTP port range: 4 ports per call plus slack
        // An INVITE, an INFO per digit and a BYE per call (ACKs are not counted): ample.
        sip_rate = (o.rate * 20.0).ceil() as u64,
        sip_burst = (o.rate * 40.0).ceil() as u64,
        store = work.join("pins.db").display(),
        lo = ports.dialin_rtp.0,
        hi = ports.dialin_rtp.1 | 1,
        conf = ports.conference_sip,
    )
}

/// A running dialin, stopped (SIGTERM, then SIGKILL) when dropped.
struct DialinProcess(Child);

impl Drop for DialinProcess {
    fn drop(&mut self) {
        Command::new("kill")
            .arg(self.0.id().to_string())
            .status()
            .ok();
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(5) {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            thread::sleep(Duration::from_millis(50));
        }
        self.0.kill().ok();
        self.0.wait().ok();
    }
}

fn start_dialin(o: &Options, ports: &Ports, work: &Path) -> Result<DialinProcess, String> {
    let config = work.join("dialin.toml");
    std::fs::write(&config, dialin_config(o, ports, work)).map_err(|e| e.to_string())?;
    let log = std::fs::File::create(work.join("dialin.log")).map_err(|e| e.to_string())?;
    let child = Command::new(&o.dialin)
        .arg("serve")
        .arg("--config")
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .map_err(|e| {
            format!(
                "cannot start {}: {e} (build it: cargo build --release)",
                o.dialin.display()
            )
        })?;
    let mut p = DialinProcess(child);
    let start = Instant::now();
    while !procfs::udp_bound(ports.dialin_sip) {
        if let Ok(Some(status)) = p.0.try_wait() {
            let log = std::fs::read_to_string(work.join("dialin.log")).unwrap_or_default();
            return Err(format!("dialin exited ({status}):\n{log}"));
        }
        if start.elapsed() > Duration::from_secs(10) {
            return Err("dialin did not bind its SIP port within 10 s".into());
        }
        thread::sleep(Duration::from_millis(20));
    }
    Ok(p)
}

/// dialin with its calls up. Field order is drop order: the conference side answers
/// dialin's BYEs until dialin is gone.
struct DialinSetup {
    run: DialinRun,
    routes: Vec<Route>,
    phone: Phone,
    process: DialinProcess,
    _conference: Conference,
}

fn setup_dialin(
    o: &Options,
    ports: &Ports,
    eps: &Endpoints,
    work: &Path,
) -> Result<DialinSetup, String> {
    progress("dialin: starting");
    let process = start_dialin(o, ports, work)?;
    let pid = process.0.id();
    thread::sleep(Duration::from_secs(1));
    let idle_rss = procfs::rss(pid);

    let conf_sock =
        UdpSocket::bind(("127.0.0.1", ports.conference_sip)).map_err(|e| e.to_string())?;
    let conference = Conference::start(conf_sock, eps.server_addr());
    let phone_sock = UdpSocket::bind(("127.0.0.1", ports.phone_sip)).map_err(|e| e.to_string())?;
    let dialin_addr = SocketAddr::from(([127, 0, 0, 1], ports.dialin_sip));
    let mut phone = Phone::new(
        phone_sock,
        dialin_addr,
        eps.caller_addr(),
        &std::process::id().to_string(),
    );
    let pins: Vec<String> = (0..o.calls).map(|i| format!("{}", 100_000 + i)).collect();
    progress(&format!(
        "dialin: placing {} calls at {}/s",
        o.calls, o.rate
    ));
    let invite_span = phone.place(
        &pins,
        o.rate,
        Duration::from_secs(30) + Duration::from_secs_f64(o.calls as f64 / o.rate),
    );
    // Wait for dialin's ACKs on the conference side: then every call is bridged.
    let start = Instant::now();
    let routes = loop {
        phone.poll();
        let legs = conference.legs.lock().expect("not poisoned").clone();
        let routes: Vec<Route> = phone
            .calls
            .iter()
            .filter(|c| c.state == State::Up)
            .filter_map(|c| {
                let leg = legs.get(&c.pin).filter(|l| l.acked)?;
                Some(Route {
                    caller_to: c.rtp?,
                    server_to: leg.rtp?,
                })
            })
            .collect();
        let up = phone.calls.iter().filter(|c| c.state == State::Up).count();
        if routes.len() == up || start.elapsed() > Duration::from_secs(5) {
            break routes;
        }
    };
    let legs = conference.legs.lock().expect("not poisoned").clone();
    let calls_up = routes.len();
    let run = DialinRun {
        idle_rss,
        up_at: Some(Instant::now()),
        calls_up,
        setup_failed: o.calls - calls_up,
        invite_span,
        trying_ms: phone
            .calls
            .iter()
            .filter_map(|c| Some(ms(c.trying_at? - c.invite_at)))
            .collect(),
        ok_ms: phone
            .calls
            .iter()
            .filter_map(|c| Some(ms(c.ok_at? - c.invite_at)))
            .collect(),
        hash_to_invite_ms: phone
            .calls
            .iter()
            .filter_map(|c| {
                Some(ms(legs
                    .get(&c.pin)?
                    .invite_at
                    .checked_duration_since(c.hash_at?)?))
            })
            .collect(),
        phone_read_lag_ms: phone.read_lag_ms.clone(),
        ..DialinRun::default()
    };
    progress(&format!(
        "dialin: {calls_up} calls bridged, {} failed",
        run.setup_failed
    ));
    Ok(DialinSetup {
        run,
        routes,
        phone,
        process,
        _conference: conference,
    })
}

/// rtpengine with its calls set up.
struct RtpengineSetup {
    engine: Rtpengine,
    routes: Vec<Route>,
}

fn setup_rtpengine(o: &Options, ports: &Ports, eps: &Endpoints) -> Result<RtpengineSetup, String> {
    progress("rtpengine: starting (userspace, 2 threads)");
    let mut engine = Rtpengine::start(o.reference.as_deref(), ports.ng, ports.rtpengine_rtp, 2)?;
    let mut routes = Vec::with_capacity(o.calls);
    for i in 0..o.calls {
        let (caller_to, server_to) = engine.bridge(i, eps.caller_addr(), eps.server_addr())?;
        routes.push(Route {
            caller_to,
            server_to,
        });
    }
    progress(&format!("rtpengine: {} calls set up", o.calls));
    Ok(RtpengineSetup { engine, routes })
}

/// How many direct control streams run beside `calls` relayed calls: 1 in 20, at least 5.
fn control_streams(calls: usize) -> usize {
    (calls / 20).max(5)
}
