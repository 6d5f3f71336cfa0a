//! A real FreeSWITCH 1.10.12, configured like a BBB server, for tests where behaviour matters
//! that a replay cannot show: a server killed and restarted, what its Event Socket and SIP stack
//! really do.
//!
//! The relocatable build is committed as `tests/peers/freeswitch-1.10.12-debian12-amd64.tar.xz`
//! (CI runs on a clean clone, where `../shared` does not exist) and needs the Debian runtime
//! packages `.ci/run` installs (`tests/peers/README.md`). The configuration is
//! `tests/fixtures/freeswitch-bbb/` (BBB's, adapted for loopback; SIP calls and the Event Socket
//! only from 127.0.0.1).
//!
//! ```ignore
//! let mut fs = FreeSwitch::start();            // own SIP/RTP/ESL ports; ESL answers
//! let (sip, esl) = (fs.sip_addr(), fs.esl_addr());
//! fs.api("status");                            // a command over the Event Socket
//! fs.kill();                                   // SIGKILL: a crashed server, its ports refuse
//! fs.restart();                                // same ports, same conf; returns once ESL answers
//! ```                                          // dropping it kills it
//!
//! Why this shape: the bundle is unpacked once per test process (a `OnceLock`, into a temp
//! folder that lives as long as the process), and every instance gets a folder of its own with
//! a copy of the conf whose ports come from [`PortBlock`]s, so tests run in parallel. Every
//! directory flag (`-base` included) points into that folder: nothing is written under
//! `/opt/freeswitch`. FreeSWITCH's own output and log stay in the folder; a failed start panics
//! with the log's tail.

use super::ports::PortBlock;
use super::wait::poll;
use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

/// The Event Socket password of `tests/fixtures/freeswitch-bbb/` (the captures' one).
pub const PASSWORD: &str = "fixture-secret";

/// How long a start may take: about 1 s on an idle machine, 6 s seen on 2 busy cores.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A running (or killed) FreeSWITCH with its own ports and folder; dropping it kills it.
pub struct FreeSwitch {
    /// SIP (UDP and TCP) on 127.0.0.1.
    sip: SocketAddr,
    /// The Event Socket on 127.0.0.1.
    esl: SocketAddr,
    /// This instance's folder: conf copy, log, db, run, … (removed on drop).
    dir: tempfile::TempDir,
    /// The process, while it runs.
    child: Option<Child>,
}

impl FreeSwitch {
    /// Starts a new instance on fresh ports and returns once its Event Socket answers `status`
    /// with "ready" and its SIP profile runs. Panics (with the log's tail) if that takes over
    /// 30 s.
    pub fn start() -> FreeSwitch {
        let signalling = PortBlock::take(4);
        let rtp = PortBlock::take(16);
        let ip = Ipv4Addr::LOCALHOST;
        let dir = tempfile::Builder::new()
            .prefix("dialin-fs-")
            .tempdir()
            .expect("a temp folder for FreeSWITCH");
        write_conf(&dir.path().join("conf"), signalling, rtp);
        let mut fs = FreeSwitch {
            sip: SocketAddr::from((ip, signalling.port(0))),
            esl: SocketAddr::from((ip, signalling.port(1))),
            dir,
            child: None,
        };
        fs.spawn();
        fs
    }

    /// Where FreeSWITCH takes SIP (the `external` profile, UDP and TCP).
    pub fn sip_addr(&self) -> SocketAddr {
        self.sip
    }

    /// Where its Event Socket listens (password [`PASSWORD`]).
    pub fn esl_addr(&self) -> SocketAddr {
        self.esl
    }

    /// The Event Socket password ([`PASSWORD`]), for dialin's `esl_password_*`.
    pub fn password(&self) -> &'static str {
        PASSWORD
    }

    /// This instance's folder (its `log/freeswitch.log` tells what happened).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// SIGKILLs it (a crashed server: no SHUTDOWN event, no BYE; its ports refuse at once) and
    /// reaps it. Nothing happens if it is not running.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().ok();
            child.wait().ok();
        }
    }

    /// Freezes it with SIGSTOP: a host that is gone without a word (no ICMP, no closed
    /// socket, no BYE): nothing it holds answers any more. [`FreeSwitch::kill`] still ends it.
    pub fn freeze(&self) {
        if let Some(child) = &self.child {
            // SAFETY: a signal to our own child process, which we have not reaped.
            let rc = unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGSTOP) };
            assert_eq!(rc, 0, "SIGSTOP to FreeSWITCH");
        }
    }

    /// Starts it again on the same ports and conf (killing it first if it runs); returns once
    /// the Event Socket answers and SIP runs, like [`FreeSwitch::start`].
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// Runs `api <command>` over the Event Socket and returns the reply body; panics when the
    /// socket does not answer.
    pub fn api(&self, command: &str) -> String {
        esl_api(self.esl, command)
            .unwrap_or_else(|e| panic!("Event Socket api {command:?}: {e}\n{}", self.log_tail()))
    }

    /// Runs the bundle's `fs_cli -x <command>` against this instance.
    pub fn fs_cli(&self, command: &str) -> Output {
        Command::new(bundle().join("bin/fs_cli"))
            .args(["-H", "127.0.0.1", "-P", &self.esl.port().to_string()])
            .args(["-p", PASSWORD, "-x", command])
            .output()
            .expect("running fs_cli")
    }

    fn spawn(&mut self) {
        // One start at a time: a FreeSWITCH start takes a core for a second or two (module
        // loading), and several at once on 2 cores starved the calls other tests measure
        // (dialin's prompt came 0.9 s late after a crash, once).
        static STARTING: std::sync::Mutex<()> = std::sync::Mutex::new(());
        let _one_at_a_time = STARTING.lock().unwrap_or_else(|e| e.into_inner());
        let w = self.dir.path();
        let b = bundle();
        let mut cmd = Command::new(b.join("bin/freeswitch"));
        cmd.args(["-nonat", "-nf", "-nc"]);
        cmd.arg("-mod").arg(b.join("mod"));
        for (flag, sub) in [
            ("-base", "base"),
            ("-conf", "conf"),
            ("-log", "log"),
            ("-db", "db"),
            ("-run", "run"),
            ("-temp", "temp"),
            ("-sounds", "sounds"),
            ("-recordings", "rec"),
            ("-storage", "storage"),
            ("-cache", "cache"),
            ("-certs", "certs"),
        ] {
            let d = w.join(sub);
            std::fs::create_dir_all(&d).expect("FreeSWITCH's folders");
            cmd.arg(flag).arg(d);
        }
        let out = std::fs::File::create(w.join("stdout.txt")).expect("FreeSWITCH's output file");
        cmd.stdout(out.try_clone().expect("a second handle"))
            .stderr(out);
        cmd.stdin(Stdio::null());
        self.child = Some(cmd.spawn().unwrap_or_else(|e| {
            panic!(
                "cannot start {}: {e} (the runtime packages are listed in tests/peers/README.md)",
                b.display()
            )
        }));
        let ready = poll(START_TIMEOUT, || {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!("FreeSWITCH exited at start ({status})\n{}", self.log_tail());
            }
            // "ready" comes before the SIP profile has started: wait for both.
            let ready = esl_api(self.esl, "status").ok()?.contains("is ready");
            let sip = esl_api(self.esl, "sofia status").ok()?;
            (ready && sip.contains("RUNNING")).then_some(())
        });
        assert!(
            ready.is_some(),
            "FreeSWITCH's Event Socket did not answer within {START_TIMEOUT:?}\n{}",
            self.log_tail()
        );
    }

    /// The last lines of its output and log, for panic messages.
    fn log_tail(&self) -> String {
        let mut text = String::new();
        for file in ["stdout.txt", "log/freeswitch.log"] {
            let all = std::fs::read_to_string(self.dir.path().join(file)).unwrap_or_default();
            let lines: Vec<&str> = all.lines().collect();
            let from = lines.len().saturating_sub(30);
            text += &format!("--- {file} (last 30 lines)\n{}\n", lines[from..].join("\n"));
        }
        text
    }
}

impl Drop for FreeSwitch {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The unpacked bundle (`…/freeswitch-1.10.12`), unpacked once per test process into
/// `target/tmp/freeswitch-bundle-<pid>` (instances may outlive any one test, so it stays while
/// the process runs); folders of test processes that have ended are removed then.
pub fn bundle() -> &'static Path {
    static BUNDLE: OnceLock<PathBuf> = OnceLock::new();
    BUNDLE.get_or_init(|| {
        let tarball = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/peers/freeswitch-1.10.12-debian12-amd64.tar.xz");
        let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
        remove_stale_bundles(tmp);
        let dir = tmp.join(format!("freeswitch-bundle-{}", std::process::id()));
        std::fs::remove_dir_all(&dir).ok();
        std::fs::create_dir_all(&dir).expect("a folder for the FreeSWITCH bundle");
        let status = Command::new("tar")
            .arg("-xJf")
            .arg(&tarball)
            .arg("-C")
            .arg(&dir)
            .status()
            .expect("running tar (apt-get install tar xz-utils)");
        assert!(status.success(), "cannot unpack {}", tarball.display());
        dir.join("freeswitch-1.10.12")
    })
}

/// Removes `freeswitch-bundle-<pid>` folders whose process no longer runs.
fn remove_stale_bundles(tmp: &Path) {
    let Ok(entries) = std::fs::read_dir(tmp) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name.strip_prefix("freeswitch-bundle-") else {
            continue;
        };
        if !Path::new("/proc").join(pid).exists() {
            std::fs::remove_dir_all(entry.path()).ok();
        }
    }
}

/// Copies `tests/fixtures/freeswitch-bbb/` to `conf` with this instance's ports: SIP and the
/// WebSocket binding (`sip_profiles/external.xml`, `vars.xml`), the Event Socket
/// (`event_socket.conf.xml`) and the RTP range (`switch.conf.xml`).
fn write_conf(conf: &Path, signalling: PortBlock, rtp: PortBlock) {
    let from = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/freeswitch-bbb");
    copy_tree(&from, conf);
    let edit = |file: &str, from: &str, to: &str| {
        let path = conf.join(file);
        let text = std::fs::read_to_string(&path).expect("a conf file");
        assert!(text.contains(from), "{file} no longer holds {from:?}");
        std::fs::write(&path, text.replace(from, to)).expect("writing the conf copy");
    };
    let port = |i: u16| signalling.port(i).to_string();
    edit(
        "vars.xml",
        "external_sip_port=5060",
        &format!("external_sip_port={}", port(0)),
    );
    edit(
        "vars.xml",
        "external_tls_port=5081",
        &format!("external_tls_port={}", port(3)),
    );
    edit(
        "sip_profiles/external.xml",
        "127.0.0.1:5066",
        &format!("127.0.0.1:{}", port(2)),
    );
    edit(
        "autoload_configs/event_socket.conf.xml",
        r#"value="8021""#,
        &format!(r#"value="{}""#, port(1)),
    );
    edit(
        "autoload_configs/switch.conf.xml",
        "</settings>",
        &format!(
            "  <param name=\"rtp-start-port\" value=\"{}\"/>\n    <param name=\"rtp-end-port\" value=\"{}\"/>\n  </settings>",
            rtp.port(0),
            rtp.port(rtp.len - 1)
        ),
    );
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("conf folder");
    for entry in std::fs::read_dir(from).expect("tests/fixtures/freeswitch-bbb") {
        let entry = entry.expect("a conf entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).expect("copying a conf file");
        }
    }
}

/// One short Event Socket session: auth, `api <command>`, the reply's body.
pub fn esl_api(addr: SocketAddr, command: &str) -> std::io::Result<String> {
    let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    let (headers, _) = read_frame(&mut reader)?;
    if !headers.contains("auth/request") {
        return Err(other(format!("no auth request: {headers}")));
    }
    writer.write_all(format!("auth {PASSWORD}\n\n").as_bytes())?;
    let (headers, _) = read_frame(&mut reader)?;
    if !headers.contains("+OK") {
        return Err(other(format!("auth refused: {headers}")));
    }
    writer.write_all(format!("api {command}\n\n").as_bytes())?;
    loop {
        let (headers, body) = read_frame(&mut reader)?;
        if headers.contains("api/response") {
            return Ok(body);
        }
    }
}

/// One ESL frame: its headers and body (by Content-Length).
fn read_frame(r: &mut impl BufRead) -> std::io::Result<(String, String)> {
    let mut headers = String::new();
    loop {
        let mut line = String::new();
        if r.read_line(&mut line)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        if line == "\n" && !headers.is_empty() {
            break;
        }
        if line != "\n" {
            headers.push_str(&line);
        }
    }
    let len = headers
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))
        .map_or(0, |n| n.trim().parse().unwrap_or(0));
    let mut body = vec![0; len];
    r.read_exact(&mut body)?;
    Ok((headers, String::from_utf8_lossy(&body).into_owned()))
}

fn other(message: String) -> std::io::Error {
    std::io::Error::other(message)
}
