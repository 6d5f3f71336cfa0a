//! Runs Kamailio (`deploy/kamailio/kamailio.cfg`) in front of dialin instances for a test: in
//! the foreground (`-DD -E`), with its own run directory (`-Y`), pid file (`-P`), dispatcher
//! list and listen port, logging to a buffer the test can wait on.

use super::wait::wait_for;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A running Kamailio; stopped (SIGTERM, then SIGKILL) on drop.
pub struct Kamailio {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    _dir: tempfile::TempDir,
    /// Where it takes SIP (UDP).
    pub addr: SocketAddr,
}

impl Kamailio {
    /// Starts Kamailio on `addr` dispatching to `instances`, probing each every `ping_secs`
    /// seconds, and waits until it listens. Panics with install instructions when Kamailio is
    /// missing. A long interval keeps the probes out of a test of failover by the call itself.
    pub fn start(addr: SocketAddr, instances: &[SocketAddr], ping_secs: u32) -> Kamailio {
        let kamailio = ["/usr/sbin/kamailio", "/usr/local/sbin/kamailio"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())
            .unwrap_or_else(|| {
                panic!("kamailio is not installed: apt-get install kamailio (the cluster tests need it; they do not skip)")
            });
        let dir = tempfile::tempdir().expect("temp dir");
        let list = dir.path().join("dispatcher.list");
        let entries: String = instances.iter().map(|i| format!("1 sip:{i}\n")).collect();
        std::fs::write(&list, entries).expect("write the dispatcher list");
        let cfg = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/kamailio/kamailio.cfg");
        let mut child = Command::new(kamailio)
            .args(["-f", cfg, "-DD", "-E", "-m", "32", "-M", "4"])
            .arg("-Y")
            .arg(dir.path())
            .arg("-P")
            .arg(dir.path().join("kamailio.pid"))
            .arg("-A")
            .arg(format!("LISTEN=udp:{addr}"))
            .arg("-A")
            .arg(format!("DISPATCHER_LIST=\"{}\"", list.display()))
            .arg("-A")
            .arg(format!("PING_INTERVAL={ping_secs}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start kamailio: {e}"));
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        let stderr = child.stderr.take().expect("piped stderr");
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        let k = Kamailio {
            child,
            lines,
            _dir: dir,
            addr,
        };
        // Logged once the UDP socket is bound ("Listening on" goes to stdout).
        k.wait_for_line("SO_RCVBUF is finally", Duration::from_secs(10));
        k
    }

    /// Everything Kamailio logged so far.
    pub fn log(&self) -> String {
        self.lines.lock().unwrap().join("\n")
    }

    /// How many log lines contain `needle`.
    pub fn count(&self, needle: &str) -> usize {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains(needle))
            .count()
    }

    /// Waits until a log line contains `needle`; panics with the log on timeout.
    pub fn wait_for_line(&self, needle: &str, timeout: Duration) {
        self.wait_for_count(needle, 1, timeout);
    }

    /// Waits until `n` log lines contain `needle`; panics with the log on timeout.
    pub fn wait_for_count(&self, needle: &str, n: usize, timeout: Duration) {
        assert!(
            wait_for(timeout, || self.count(needle) >= n),
            "kamailio did not log {needle:?} (x{n}) within {timeout:?}; its log:\n{}",
            self.log()
        );
    }
}

impl Drop for Kamailio {
    fn drop(&mut self) {
        // SIGTERM lets the main process stop its children; SIGKILL only if it hangs.
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let child = &mut self.child;
        if wait_for(Duration::from_secs(5), || {
            matches!(child.try_wait(), Ok(Some(_)))
        }) {
            return;
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
