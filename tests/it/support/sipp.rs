//! Running sipp as a test peer: [`Scenario`] (the XMLs in `tests/sipp/`), [`Sipp`] (the command
//! line with the common flags), [`RunningSipp`] (waiting with a deadline) and [`SippOutcome`]
//! (exit status plus the SIP message log).
//!
//! Each run gets its own temporary directory holding the scenario, `caller.pcap` (caller
//! scenarios replay it with `play_pcap_audio`, relative to sipp's working directory),
//! `messages.log` (`-trace_msg`), `errors.log` (`-trace_err`) and sipp's stdout/stderr.
//! sipp runs in the foreground (`-bg` is not used, so its exit status is the verdict) with
//! `-m 1 -nostdin -timeout 30s -timeout_error`.
//!
//! sipp's exit status (sipp 3.6.1 here; all but 97/99 verified on this machine):
//! * 0: every call succeeded (the scenario ran to its end);
//! * 1: a call failed (unexpected message, retransmissions exhausted, a receive timeout without
//!   `ontimeout`) — **and also** a scenario that does not load (bad XML, unknown `[keyword]`,
//!   a status code that is not literal, a variable used only once). Tell them apart with
//!   [`SippOutcome::messages`]: a scenario that did not load logged no message;
//! * 255: the global `-timeout` expired (because of `-timeout_error`);
//! * 254: a socket could not be bound (e.g. the SIP port is taken);
//! * 97: stopped by an internal command; 99: normal exit without any call processed.
//!
//! Values go into the scenarios as sipp keys ([`Sipp::key`]); see [`Scenario`].

use super::pcap::CallerStream;
use super::ports::PortBlock;
pub use super::scenario::Scenario;
pub use super::siplog::{Direction, SipMessage};
use super::wait::poll;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// A sipp command line being assembled; [`Sipp::spawn`] starts it.
pub struct Sipp {
    scenario: Scenario,
    ip: Ipv4Addr,
    ports: PortBlock,
    remote: Option<SocketAddr>,
    service: Option<String>,
    keys: Vec<(String, String)>,
    pause: Option<Duration>,
    pcap: Option<CallerStream>,
    rtp_echo: bool,
    extra: Vec<String>,
    deadline: Duration,
    /// A fixed SIP port instead of the block's first, for a peer whose address is configured
    /// elsewhere (the packaged dialin's `bbb1` at 127.0.0.1:5080).
    sip_port: Option<u16>,
}

impl Sipp {
    /// sipp on 127.0.0.1 with a fresh block of 8 ports: SIP (`-p`) on the first, media (`-mp`)
    /// on the fifth (sipp also binds `-mp + 2` for video) and the control port (`-cp`, otherwise
    /// 0.0.0.0:8888 and up, shared by every sipp on the machine) on the eighth.
    pub fn new(scenario: Scenario) -> Sipp {
        Sipp {
            scenario,
            ip: Ipv4Addr::LOCALHOST,
            ports: PortBlock::take(8),
            remote: None,
            service: None,
            keys: Vec::new(),
            pause: None,
            pcap: None,
            rtp_echo: false,
            extra: Vec::new(),
            deadline: Duration::from_secs(40),
            sip_port: None,
        }
    }

    /// Receives SIP on `port` of its address instead of a port from its block.
    pub fn sip_port(mut self, port: u16) -> Self {
        self.sip_port = Some(port);
        self
    }

    /// Binds SIP and media to `ip` instead of 127.0.0.1 (e.g. 127.0.0.2, outside an ACL).
    pub fn local_ip(mut self, ip: Ipv4Addr) -> Self {
        self.ip = ip;
        self
    }

    /// The peer to send the first request to (UAC scenarios).
    pub fn remote(mut self, addr: SocketAddr) -> Self {
        self.remote = Some(addr);
        self
    }

    /// `-s`: the Request-URI user of a UAC's INVITE (the dialled number), `[service]`.
    pub fn service(mut self, user: &str) -> Self {
        self.service = Some(user.to_owned());
        self
    }

    /// `-key name value`, overriding the scenario's default.
    pub fn key(mut self, name: &str, value: &str) -> Self {
        self.keys.retain(|(n, _)| n != name);
        self.keys.push((name.to_owned(), value.to_owned()));
        self
    }

    /// The SDP media address (`sdp_ip`/`sdp_port` keys), e.g. a Rust [`super::media::RtpPeer`].
    pub fn sdp_media(self, addr: SocketAddr) -> Self {
        self.key("sdp_ip", &addr.ip().to_string())
            .key("sdp_port", &addr.port().to_string())
    }

    /// `-d`: how long `<pause/>` lasts.
    pub fn pause(mut self, pause: Duration) -> Self {
        self.pause = Some(pause);
        self
    }

    /// The caller RTP replayed as `caller.pcap`.
    pub fn pcap(mut self, stream: CallerStream) -> Self {
        self.pcap = Some(stream);
        self
    }

    /// `-rtp_echo`: echo every RTP packet arriving on the media port back to its sender.
    pub fn rtp_echo(mut self) -> Self {
        self.rtp_echo = true;
        self
    }

    /// Any other command-line argument.
    pub fn arg(mut self, arg: &str) -> Self {
        self.extra.push(arg.to_owned());
        self
    }

    /// How long [`RunningSipp::wait`] waits before killing sipp (default 40 s, above sipp's own 30 s).
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.deadline = deadline;
        self
    }

    /// Where sipp receives SIP.
    pub fn sip_addr(&self) -> SocketAddr {
        let port = self.sip_port.unwrap_or_else(|| self.ports.port(0));
        SocketAddr::new(IpAddr::V4(self.ip), port)
    }

    /// sipp's media port (`-mp`): where it sends the pcap from and echoes RTP.
    pub fn media_addr(&self) -> SocketAddr {
        SocketAddr::new(IpAddr::V4(self.ip), self.ports.port(4))
    }

    /// The full argument list.
    fn args(&self, dir: &Path, scenario_file: &Path) -> Vec<String> {
        let (sip, media) = (self.sip_addr(), self.media_addr());
        let mut args: Vec<String> = Vec::new();
        if let Some(remote) = self.remote {
            args.push(remote.to_string());
        }
        let log = |name: &str| dir.join(name).display().to_string();
        #[rustfmt::skip]
        args.extend([
            "-sf".into(), scenario_file.display().to_string(),
            "-i".into(), self.ip.to_string(), "-p".into(), sip.port().to_string(),
            "-mi".into(), self.ip.to_string(), "-mp".into(), media.port().to_string(),
            "-cp".into(), self.ports.port(7).to_string(),
            "-m".into(), "1".into(), "-nostdin".into(),
            "-trace_msg".into(), "-message_file".into(), log("messages.log"),
            "-trace_err".into(), "-error_file".into(), log("errors.log"),
            "-timeout".into(), "30s".into(), "-timeout_error".into(),
            "-d".into(), self.pause.unwrap_or(self.scenario.default_pause).as_millis().to_string(),
        ]);
        if let Some(service) = &self.service {
            args.extend(["-s".into(), service.clone()]);
        }
        if self.rtp_echo {
            args.push("-rtp_echo".into());
        }
        let mut keys = self.keys.clone();
        let defaults = self.scenario.default_keys.iter().cloned().chain([
            ("sdp_ip".to_owned(), media.ip().to_string()),
            ("sdp_port".to_owned(), media.port().to_string()),
        ]);
        for (name, value) in defaults {
            if !keys.iter().any(|(n, _)| *n == name) {
                keys.push((name, value));
            }
        }
        for (name, value) in keys {
            args.extend(["-key".into(), name, value]);
        }
        args.extend(self.extra.iter().cloned());
        args
    }

    /// Writes the run directory and starts sipp; returns once sipp listens on its SIP port
    /// (panics with the logs if sipp exits first).
    pub fn spawn(self) -> RunningSipp {
        let mut running = self.spawn_unchecked();
        running.wait_listening();
        running
    }

    /// Like [`Sipp::spawn`] without waiting for the SIP socket (for runs expected to fail early).
    pub fn spawn_unchecked(self) -> RunningSipp {
        let sipp = super::require_sipp();
        let dir = tempfile::Builder::new()
            .prefix(&format!("sipp-{}-", self.scenario.name))
            .tempdir()
            .expect("creating a temporary directory");
        let scenario_file = dir.path().join(format!("{}.xml", self.scenario.name));
        std::fs::write(&scenario_file, &self.scenario.xml).expect("writing the scenario");
        if self
            .scenario
            .xml
            .contains("play_pcap_audio=\"caller.pcap\"")
        {
            let stream = self.pcap.as_ref().unwrap_or_else(|| {
                panic!(
                    "{} replays caller.pcap: give it one with Sipp::pcap",
                    self.scenario.name
                )
            });
            stream.write(&dir.path().join("caller.pcap"));
        }
        let args = self.args(dir.path(), &scenario_file);
        let output = |name: &str| {
            std::fs::File::create(dir.path().join(name)).expect("creating a sipp output file")
        };
        let child = Command::new(&sipp)
            .args(&args)
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(output("stdout.log"))
            .stderr(output("stderr.log"))
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", sipp.display()));
        RunningSipp {
            child: Some(child),
            name: self.scenario.name.clone(),
            args,
            dir: Some(dir),
            sip_addr: self.sip_addr(),
            deadline: self.deadline,
        }
    }
}

/// A sipp process that was started; killed if dropped before [`RunningSipp::wait`].
pub struct RunningSipp {
    child: Option<Child>,
    name: String,
    args: Vec<String>,
    /// The run directory; moved into the [`SippOutcome`].
    dir: Option<tempfile::TempDir>,
    sip_addr: SocketAddr,
    deadline: Duration,
}

impl RunningSipp {
    /// Where sipp receives SIP.
    pub fn sip_addr(&self) -> SocketAddr {
        self.sip_addr
    }

    /// The run directory (logs, scenario, pcap).
    pub fn dir(&self) -> &Path {
        self.dir.as_ref().expect("present until waited for").path()
    }

    /// The first `method` request received so far, read from the live message log.
    pub fn received_so_far(&self, method: &str) -> Option<super::siplog::SipMessage> {
        let log = std::fs::read_to_string(self.dir().join("messages.log")).unwrap_or_default();
        super::siplog::parse_log(&log).into_iter().find(|m| {
            m.direction == super::siplog::Direction::Received && m.method() == Some(method)
        })
    }

    /// The first `method` request this sipp sent so far, read from the live message log.
    pub fn sent_so_far(&self, method: &str) -> Option<super::siplog::SipMessage> {
        let log = std::fs::read_to_string(self.dir().join("messages.log")).unwrap_or_default();
        super::siplog::parse_log(&log)
            .into_iter()
            .find(|m| m.direction == super::siplog::Direction::Sent && m.method() == Some(method))
    }

    /// Waits up to `timeout` for the first `method` request; panics if none comes.
    pub fn wait_received(&self, method: &str, timeout: Duration) -> super::siplog::SipMessage {
        poll(timeout, || self.received_so_far(method))
            .unwrap_or_else(|| panic!("no {method} reached {} within {timeout:?}", self.name))
    }

    /// Waits (up to 5 s) until sipp's SIP socket shows in `/proc/net/udp`, so a peer can send to it.
    fn wait_listening(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if udp_bound(self.sip_addr) {
                return;
            }
            let child = self.child.as_mut().expect("running until waited for");
            if let Ok(Some(status)) = child.try_wait() {
                let outcome = self.outcome(status);
                panic!("sipp exited before listening\n{}", outcome.report());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!(
            "sipp {} did not bind {} within 5 s",
            self.name, self.sip_addr
        );
    }

    /// Waits for sipp to exit; past the deadline kills it and panics with its logs.
    pub fn wait(mut self) -> SippOutcome {
        let deadline = Instant::now() + self.deadline;
        let child = self.child.as_mut().expect("running until waited for");
        loop {
            if let Some(status) = child.try_wait().expect("polling sipp") {
                self.child = None;
                return self.outcome(status);
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let status = child.wait().expect("reaping the killed sipp");
                self.child = None;
                let outcome = self.outcome(status);
                panic!(
                    "sipp did not finish within {:?}; killed\n{}",
                    self.deadline,
                    outcome.report()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn outcome(&mut self, status: ExitStatus) -> SippOutcome {
        let dir = self.dir.take().expect("the outcome is made once");
        let read = |name: &str| std::fs::read_to_string(dir.path().join(name)).unwrap_or_default();
        SippOutcome {
            name: self.name.clone(),
            args: self.args.clone(),
            status,
            messages: read("messages.log"),
            errors: read("errors.log"),
            stdout: read("stdout.log"),
            stderr: read("stderr.log"),
            _dir: dir,
        }
    }
}

impl Drop for RunningSipp {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Whether a UDP socket is bound to `addr` (from `/proc/net/udp`, without touching the port).
fn udp_bound(addr: SocketAddr) -> bool {
    let IpAddr::V4(ip) = addr.ip() else {
        return false;
    };
    let wanted = format!(
        "{:08X}:{:04X}",
        u32::from_le_bytes(ip.octets()),
        addr.port()
    );
    let table = std::fs::read_to_string("/proc/net/udp").unwrap_or_default();
    table
        .lines()
        .skip(1)
        .filter_map(|line| line.split_whitespace().nth(1))
        .any(|local| local == wanted || local == format!("00000000:{:04X}", addr.port()))
}

/// How a sipp run ended: its exit status and logs.
pub struct SippOutcome {
    pub name: String,
    pub args: Vec<String>,
    pub status: ExitStatus,
    /// `messages.log`: every SIP message sent and received.
    pub messages: String,
    /// `errors.log`: unexpected messages, timeouts, retransmissions.
    pub errors: String,
    /// sipp's screen output (statistics).
    pub stdout: String,
    pub stderr: String,
    /// The run directory, kept until the outcome is dropped.
    pub _dir: tempfile::TempDir,
}

impl SippOutcome {
    /// sipp's exit code (`None` if killed by a signal).
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }

    /// Panics with the logs unless sipp exited 0 (every call succeeded).
    pub fn assert_success(&self) -> &Self {
        assert_eq!(
            self.code(),
            Some(0),
            "sipp {} failed\n{}",
            self.name,
            self.report()
        );
        self
    }

    /// Panics with the logs unless sipp exited 1 after sending or receiving at least one
    /// message (a call that failed, not a scenario that did not load).
    pub fn assert_call_failed(&self) -> &Self {
        let failed = self.code() == Some(1) && !self.messages().is_empty();
        assert!(
            failed,
            "sipp {} did not fail a call\n{}",
            self.name,
            self.report()
        );
        self
    }

    /// Every SIP message sent and received, in order.
    pub fn messages(&self) -> Vec<SipMessage> {
        super::siplog::parse_log(&self.messages)
    }

    /// Received requests with this method.
    pub fn received_requests(&self, method: &str) -> Vec<SipMessage> {
        self.messages()
            .into_iter()
            .filter(|m| m.direction == Direction::Received && m.method() == Some(method))
            .collect()
    }

    /// The first received request with this method; panics with the logs if there is none.
    pub fn first_received(&self, method: &str) -> SipMessage {
        let found = self.received_requests(method).into_iter().next();
        found
            .unwrap_or_else(|| panic!("sipp {} received no {method}\n{}", self.name, self.report()))
    }

    /// The status code of the last final (>= 200) response to INVITE that sipp received.
    pub fn final_response_code(&self) -> Option<u16> {
        self.messages()
            .iter()
            .filter(|m| m.direction == Direction::Received && m.cseq_method() == Some("INVITE"))
            .filter_map(SipMessage::status_code)
            .rfind(|code| *code >= 200)
    }

    /// A human-readable report: command, exit status, errors, the end of the message log and screen.
    pub fn report(&self) -> String {
        format!(
            "--- sipp {} {}\n--- exit: {}\n--- errors.log:\n{}\n--- messages.log (last 6000 bytes):\n{}\n\
             --- stderr:\n{}\n--- screen (last 3000 bytes):\n{}",
            self.name,
            self.args.join(" "),
            self.status,
            self.errors,
            tail(&self.messages, 6000),
            self.stderr,
            tail(&self.stdout, 3000),
        )
    }
}

/// The last `max` bytes of `text` (on a character boundary).
fn tail(text: &str, max: usize) -> &str {
    let mut start = text.len().saturating_sub(max);
    while !text.is_char_boundary(start) {
        start += 1;
    }
    &text[start..]
}
