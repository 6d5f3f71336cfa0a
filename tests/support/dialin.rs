//! Runs the real `dialin` binary for a test: writes its config, starts it, waits until it
//! listens, and reads its log (stderr) so tests can ask for status and check what was logged.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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
        let dir = tempfile::tempdir().expect("temp dir");
        let config_path = dir.path().join("dialin.toml");
        std::fs::write(&config_path, config).expect("write config");
        let mut child = Command::new(env!("CARGO_BIN_EXE_dialin"))
            .arg("serve")
            .arg("--config")
            .arg(&config_path)
            .env("RUST_LOG", "debug")
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

    /// Waits until dialin reports no active call and no RTP port in use (calls end a little
    /// after their last SIP message); panics if that does not happen within `timeout`.
    pub fn assert_idle(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let calls = self.status_value("active_calls");
            let ports = self.status_value("rtp_ports_in_use");
            if calls == 0 && ports == 0 {
                return;
            }
            if Instant::now() > deadline {
                panic!(
                    "dialin still has {calls} active calls and {ports} RTP ports in use; log:\n{}",
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
