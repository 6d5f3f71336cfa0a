//! Runs the real `dialin` binary for a test: writes its config, starts it, waits until it
//! listens, and reads its log (stderr) so tests can ask for status and check what was logged.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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

impl Dialin {
    /// Starts dialin with `config` (TOML text) and waits up to 10 s for it to listen.
    pub fn start(config: &str) -> Dialin {
        Dialin::start_logging(config, "debug")
    }

    /// Like [`Dialin::start`] with `RUST_LOG` set to `log` (e.g. `trace` for leak tests).
    pub fn start_logging(config: &str, log: &str) -> Dialin {
        let dir = tempfile::tempdir().expect("temp dir");
        let config_path = dir.path().join("dialin.toml");
        // Tests run in parallel: an admin API on its fixed default port would collide.
        let config = if config.contains("[admin]") {
            config.to_string()
        } else {
            format!("{config}\n[admin]\nlisten = \"127.0.0.1:0\"\n")
        };
        std::fs::write(&config_path, config).expect("write config");
        let mut child = Command::new(env!("CARGO_BIN_EXE_dialin"))
            .arg("serve")
            .arg("--config")
            .arg(&config_path)
            .env("RUST_LOG", log)
            // The PIN store's default SQLite file goes to this test's own directory.
            .env("STATE_DIRECTORY", dir.path())
            .env(ADMIN_TOKEN_ENV, ADMIN_TOKEN)
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
        let deadline = Instant::now() + timeout;
        loop {
            {
                let lines = self.lines.lock().unwrap();
                if let Some(l) = lines.iter().filter(|l| l.contains(needle)).nth(n - 1) {
                    return l.clone();
                }
            }
            if Instant::now() > deadline {
                panic!(
                    "dialin did not log {needle:?} (x{n}) within {timeout:?}; its log:\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
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
        let deadline = Instant::now() + timeout;
        loop {
            let calls = self.status_value("active_calls");
            let ports = self.status_value("rtp_ports_in_use");
            let dialogs = self.status_value("sip_dialogs");
            if calls == 0 && ports == 0 && dialogs == 0 {
                return;
            }
            if Instant::now() > deadline {
                panic!(
                    "dialin still has {calls} active calls, {ports} RTP ports in use and {dialogs} SIP dialogs; log:\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
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
    /// More TOML appended at the end (whole sections like `[privacy]`, `[limits]`, `[[trunks]]`
    /// or `[[bbb_api]]`).
    pub extra: String,
    /// More keys for the `[sip]` section (lines of TOML).
    pub sip_extra: String,
}

impl TestConfig {
    /// A config for one test: its own SIP port and RTP range, the given server.
    pub fn new(server: std::net::SocketAddr) -> TestConfig {
        let sip = super::ports::PortBlock::take(1);
        let rtp = super::ports::PortBlock::take(16);
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
attempts = 3
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
[admin]
listen = "127.0.0.1:0"
token_env = "{token_env}"
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
            sip_extra = self.sip_extra,
        )
    }

    /// Starts dialin with this config.
    pub fn start(&self) -> Dialin {
        Dialin::start(&self.toml())
    }
}
