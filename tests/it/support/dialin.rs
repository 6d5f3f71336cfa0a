//! Runs the real `dialin` binary for a test: writes its config, starts it, waits until it
//! listens, and reads its log (stderr) so tests can ask for status and check what was logged.

use super::wait::{poll, wait_for};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The admin API token every test instance gets (through [`ADMIN_TOKEN_ENV`]).
pub const ADMIN_TOKEN: &str = "dialin-test-admin-token-0123456789";
/// The environment variable `[admin] token_env` names in [`TestConfig`].
pub const ADMIN_TOKEN_ENV: &str = "DIALIN_TEST_ADMIN_TOKEN";

/// A running dialin process; killed on drop.
pub struct Dialin {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    _dir: tempfile::TempDir,
    /// The config file it runs with.
    pub config_path: PathBuf,
}

/// Turns `media.server_silence` off unless the test sets it. The stand-in conferences (sipp,
/// the Rust RTP peers) send RTP only when they have something to send (an echo, a recording),
/// while a BBB server's FreeSWITCH sends all the time: with the production default, dialin
/// would take their pauses for a lost server. The tests of that detection set it themselves
/// (and `tests/it/freeswitch.rs` runs the real server with the default). With silence off,
/// dialin would ask a bridged server with OPTIONS (`media.server_probe`), which the sipp
/// stand-ins' scenarios do not expect: that is off too unless the test sets it.
fn without_server_silence(config: String) -> String {
    let mut lines = String::new();
    if !config.contains("server_silence") {
        lines.push_str("server_silence = \"off\"\n");
    }
    if !config.contains("server_probe") {
        lines.push_str("server_probe = \"off\"\n");
    }
    match config.find("[media]\n") {
        Some(at) => {
            let (head, tail) = config.split_at(at + "[media]\n".len());
            format!("{head}{lines}{tail}")
        }
        None => format!("{config}\n[media]\n{lines}"),
    }
}

impl Dialin {
    /// Starts dialin with `config` (TOML text) and waits up to 10 s for it to listen.
    pub fn start(config: &str) -> Dialin {
        Dialin::start_with_args(config, &[])
    }

    /// Like [`Dialin::start`] with `RUST_LOG` set to `log` (e.g. `trace` for leak tests).
    pub fn start_logging(config: &str, log: &str) -> Dialin {
        Dialin::start_with(config, &[], &[("RUST_LOG", log)])
    }

    /// Like [`Dialin::start`], with extra `serve` arguments (such as `--log-format json`).
    pub fn start_with_args(config: &str, args: &[&str]) -> Dialin {
        Dialin::start_with(config, args, &[])
    }

    /// Like [`Dialin::start_with_args`], with extra environment variables. A config without an
    /// `[admin]` table gets one on a port of its own: the default 127.0.0.1:8089 would be
    /// shared by every test running at the same time.
    pub fn start_with(config: &str, args: &[&str], env: &[(&str, &str)]) -> Dialin {
        let dir = tempfile::tempdir().expect("temp dir");
        let config_path = dir.path().join("dialin.toml");
        // Tests run in parallel: an admin API on its fixed default port would collide.
        let config = if config.contains("[admin]") {
            config.to_string()
        } else {
            format!("{config}\n[admin]\nlisten = \"127.0.0.1:0\"\n")
        };
        let config = without_server_silence(config);
        std::fs::write(&config_path, config).expect("write config");
        let mut child = Command::new(env!("CARGO_BIN_EXE_dialin"))
            .arg("serve")
            .arg("--config")
            .arg(&config_path)
            .args(args)
            .env("RUST_LOG", "debug")
            // The PIN store's default SQLite file goes to this test's own directory.
            .env("STATE_DIRECTORY", dir.path())
            .env(ADMIN_TOKEN_ENV, ADMIN_TOKEN)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start dialin");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let stderr = child.stderr.take().expect("piped stderr");
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        let d = Dialin {
            child,
            lines,
            _dir: dir,
            config_path,
        };
        d.wait_for_line("dialin listening", Duration::from_secs(10));
        d
    }

    /// The admin API's base URL (`http://127.0.0.1:<port>`), from its "admin API listening" line.
    pub fn admin_url(&self) -> String {
        let line = self.wait_for_line("admin API listening", Duration::from_secs(5));
        let addr = line
            .split_whitespace()
            .find_map(|w| w.strip_prefix("addr="))
            .unwrap_or_else(|| panic!("no addr= in {line:?}"));
        format!("http://{addr}")
    }

    /// Everything dialin has logged so far.
    pub fn log(&self) -> String {
        self.lines.lock().unwrap().join("\n")
    }

    /// Waits until a log line containing `needle` appears; panics with the log on timeout.
    pub fn wait_for_line(&self, needle: &str, timeout: Duration) -> String {
        self.wait_for_nth_line(needle, 1, timeout)
    }

    /// Waits until `n` log lines contain `needle`; returns the n-th.
    pub fn wait_for_nth_line(&self, needle: &str, n: usize, timeout: Duration) -> String {
        let nth = || {
            let lines = self.lines.lock().unwrap();
            lines
                .iter()
                .filter(|l| l.contains(needle))
                .nth(n - 1)
                .cloned()
        };
        poll(timeout, nth).unwrap_or_else(|| {
            panic!(
                "dialin did not log {needle:?} (x{n}) within {timeout:?}; its log:\n{}",
                self.log()
            )
        })
    }

    /// Asks for a status line (SIGUSR1) and returns the value of `key` in it.
    pub fn status_value(&self, key: &str) -> u64 {
        let before = self.count_lines("status:");
        let pid = self.child.id().to_string();
        let ok = Command::new("kill")
            .args(["-USR1", &pid])
            .status()
            .expect("run kill");
        assert!(ok.success(), "kill -USR1 failed");
        let line = self.wait_for_nth_line("status:", before + 1, Duration::from_secs(5));
        let prefix = format!("{key}=");
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(&prefix))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {key} in status line {line:?}"))
    }

    /// Waits until dialin reports no active call, no RTP port in use and no SIP dialog (calls
    /// end a little after their last SIP message); panics if that does not happen in `timeout`.
    pub fn assert_idle(&self, timeout: Duration) {
        let mut counts = (0, 0, 0);
        let idle = wait_for(timeout, || {
            counts = (
                self.status_value("active_calls"),
                self.status_value("rtp_port_pairs_in_use"),
                self.status_value("sip_dialogs"),
            );
            counts == (0, 0, 0)
        });
        let (calls, ports, dialogs) = counts;
        assert!(
            idle,
            "dialin still has {calls} active calls, {ports} RTP ports in use and {dialogs} SIP dialogs; log:\n{}",
            self.log()
        );
    }

    fn count_lines(&self, needle: &str) -> usize {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains(needle))
            .count()
    }

    /// Asserts that none of `secrets` (caller numbers, PINs, conference numbers, caller IPs)
    /// appears anywhere in the log.
    pub fn assert_log_free_of(&self, secrets: &[&str]) {
        let log = self.log();
        for s in secrets {
            assert!(
                !log.contains(s),
                "dialin's log contains {s:?}, which must never be logged:\n{log}"
            );
        }
    }

    /// The process id, for sending it signals.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().expect("try_wait").is_none()
    }

    /// Sends `signal` (such as `-TERM`, `-HUP`) to the process.
    pub fn signal(&self, signal: &str) {
        let ok = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(ok.success(), "kill {signal} failed");
    }

    /// Waits up to `timeout` for the process to exit; panics with the log if it does not.
    pub fn wait_exit(&mut self, timeout: Duration) -> std::process::ExitStatus {
        let child = &mut self.child;
        poll(timeout, || child.try_wait().expect("try_wait")).unwrap_or_else(|| {
            panic!(
                "dialin did not exit within {timeout:?}; log:\n{}",
                self.log()
            )
        })
    }
}

/// One HTTP/1.1 request to `addr`: the status code and the body (tests only; no chunking).
pub fn http(addr: std::net::SocketAddr, method: &str, path: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .unwrap_or_else(|e| panic!("cannot connect to the admin listener {addr}: {e}"));
    stream.set_read_timeout(Some(Duration::from_secs(10))).ok();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {ADMIN_TOKEN}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .expect("send the request");
    let mut raw = String::new();
    stream.read_to_string(&mut raw).expect("read the answer");
    let (head, body) = raw.split_once("\r\n\r\n").expect("an HTTP answer");
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("a status code");
    (code, body.to_string())
}

/// The value of the Prometheus sample `name{labels}` (labels exactly as rendered, e.g.
/// `outcome="bridged"`; empty for none) in `text`; 0 when absent.
pub fn metric(text: &str, name: &str, labels: &str) -> f64 {
    let key = if labels.is_empty() {
        name.to_string()
    } else {
        format!("{name}{{{labels}}}")
    };
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| {
            let (k, v) = l.rsplit_once(' ')?;
            (k == key).then(|| v.parse().ok()).flatten()
        })
        .unwrap_or(0.0)
}

/// `dialin_calls_refused_total{reason}` in a `/metrics` text.
pub fn calls_refused(text: &str, reason: &str) -> f64 {
    metric(
        text,
        "dialin_calls_refused_total",
        &format!("reason=\"{reason}\""),
    )
}

impl Drop for Dialin {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

/// The settings a test varies in dialin's configuration; everything else is fixed.
#[derive(Clone, Debug)]
pub struct TestConfig {
    /// SIP listen address.
    pub sip: std::net::SocketAddr,
    /// RTP port range (inclusive).
    pub rtp: (u16, u16),
    /// The stand-in BBB server's SIP address.
    pub server: std::net::SocketAddr,
    /// `routing.pin_is_conference`.
    pub pin_is_conference: bool,
    /// `trunk.allow`, as a TOML array.
    pub allow: String,
    /// `trunk.reject`.
    pub reject: &'static str,
    /// `sip.answer_delay`.
    pub answer_delay: &'static str,
    /// `routing.server_answer_timeout`.
    pub server_answer_timeout: &'static str,
    /// `ivr.first_digit_timeout`.
    pub first_digit_timeout: &'static str,
    /// `media.timeout`.
    pub media_timeout: &'static str,
    /// `admin.listen`: each test's own port.
    pub admin: std::net::SocketAddr,
    /// `lifecycle.drain_max`.
    pub drain_max: &'static str,
    /// `ivr.attempts`.
    pub attempts: u32,
    /// Extra `[[pins]]` blocks (TOML) after the fixed one.
    pub extra_pins: String,
    /// More TOML appended at the end (whole sections like `[privacy]`,
    /// `[limits]`, `[[trunks]]` or `[[bbb_api]]`).
    pub extra: String,
    /// More keys for the `[sip]` section (lines of TOML).
    pub sip_extra: String,
}

impl TestConfig {
    /// A config for one test: its own SIP port and RTP range, the given server.
    pub fn new(server: std::net::SocketAddr) -> TestConfig {
        let sip = super::ports::PortBlock::take(1);
        let rtp = super::ports::PortBlock::take(16);
        let admin = super::ports::PortBlock::take(1);
        TestConfig {
            sip: std::net::SocketAddr::from(([127, 0, 0, 1], sip.base)),
            rtp: (rtp.base, rtp.base + rtp.len - 1),
            server,
            pin_is_conference: true,
            allow: r#"["127.0.0.0/8"]"#.into(),
            reject: "403",
            answer_delay: "0s",
            server_answer_timeout: "10s",
            first_digit_timeout: "10s",
            media_timeout: "60s",
            admin: std::net::SocketAddr::from(([127, 0, 0, 1], admin.base)),
            drain_max: "1h",
            attempts: 3,
            extra_pins: String::new(),
            extra: String::new(),
            sip_extra: String::new(),
        }
    }

    /// The TOML text.
    pub fn toml(&self) -> String {
        format!(
            r#"
[sip]
listen = "{sip}"
answer_delay = "{answer_delay}"
{sip_extra}
[media]
rtp_ports = "{rtp_lo}-{rtp_hi}"
timeout = "{media_timeout}"
[trunk]
allow = {allow}
reject = "{reject}"
[ivr]
language = "en"
pin_min_digits = 5
pin_max_digits = 11
attempts = {attempts}
first_digit_timeout = "{first_digit_timeout}"
inter_digit_timeout = "5s"
echo_pin = "00000"
[[servers]]
name = "bbb1"
sip = "sip:{server}"
[routing]
pin_is_conference = {pin_is_conference}
default_server = "bbb1"
server_answer_timeout = "{server_answer_timeout}"
[[pins]]
pin = "8675309"
conference = "71234"
server = "bbb1"
{extra_pins}
[admin]
listen = "{admin}"
token_env = "{token_env}"
[lifecycle]
drain_max = "{drain_max}"
retry_after = "30s"
{extra}
"#,
            token_env = ADMIN_TOKEN_ENV,
            extra = self.extra,
            sip = self.sip,
            answer_delay = self.answer_delay,
            rtp_lo = self.rtp.0,
            rtp_hi = self.rtp.1,
            media_timeout = self.media_timeout,
            allow = self.allow,
            reject = self.reject,
            first_digit_timeout = self.first_digit_timeout,
            server = self.server,
            pin_is_conference = self.pin_is_conference,
            server_answer_timeout = self.server_answer_timeout,
            attempts = self.attempts,
            extra_pins = self.extra_pins,
            admin = self.admin,
            drain_max = self.drain_max,
            sip_extra = self.sip_extra,
        )
    }

    /// Starts dialin with this config.
    pub fn start(&self) -> Dialin {
        Dialin::start(&self.toml())
    }
}

/// Sends one SIP OPTIONS over UDP from 127.0.0.1 to `to` (as a load balancer's probe does) and
/// returns the response's status code and its `Retry-After` value, if any.
pub fn sip_options(to: std::net::SocketAddr) -> (u16, Option<String>) {
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind a probe socket");
    socket
        .set_read_timeout(Some(Duration::from_secs(3)))
        .expect("read timeout");
    let local = socket.local_addr().expect("local address");
    let branch: u32 = rand::random();
    let msg = format!(
        "OPTIONS sip:{to} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {local};branch=z9hG4bK{branch}\r\n\
         From: <sip:probe@{local}>;tag=p{branch}\r\n\
         To: <sip:{to}>\r\n\
         Call-ID: probe{branch}@test\r\n\
         CSeq: 1 OPTIONS\r\n\
         Max-Forwards: 70\r\n\
         Content-Length: 0\r\n\r\n"
    );
    socket.send_to(msg.as_bytes(), to).expect("send OPTIONS");
    let mut buf = [0u8; 4096];
    let len = socket
        .recv(&mut buf)
        .unwrap_or_else(|e| panic!("no answer to OPTIONS from {to}: {e}"));
    let text = String::from_utf8_lossy(&buf[..len]).to_string();
    let code = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("not a SIP response: {text}"));
    let retry = text.lines().find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.trim()
            .eq_ignore_ascii_case("Retry-After")
            .then(|| value.trim().to_string())
    });
    (code, retry)
}
