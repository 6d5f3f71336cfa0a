//! `dialin pins ...` against a real store (a SQLite file in a temp dir).

use std::io::Write;
use std::process::{Command, Stdio};

use crate::support::{db, ports};

struct Env {
    dir: tempfile::TempDir,
    config: std::path::PathBuf,
}

impl Env {
    /// A config whose store is `state/pins.db` in a temp dir, created by the first command.
    fn new() -> Env {
        let env = Env::uncreated();
        let (ok, _, err) = env.pins(&["--create-store", "list"]);
        assert!(ok, "dialin pins --create-store list failed: {err}");
        env
    }

    /// Like [`Env::new`], but nothing has created the store yet.
    fn uncreated() -> Env {
        let dir = tempfile::tempdir().unwrap();
        let store = format!("url = \"sqlite://{}/state/pins.db\"", dir.path().display());
        Env::with_store(dir, &store)
    }

    /// A config with `store` as the body of its `[store]` table, in `dir`.
    fn with_store(dir: tempfile::TempDir, store: &str) -> Env {
        let config = dir.path().join("dialin.toml");
        let text = format!(
            "[[servers]]\nname = \"bbb1\"\nsip = \"sip:127.0.0.1:5080\"\n[store]\n{store}\n[[pins]]\npin = \"8675309\"\nconference = \"71234\"\n"
        );
        std::fs::write(&config, text).unwrap();
        Env { dir, config }
    }

    /// `dialin pins --config <config>`, without `STATE_DIRECTORY` (as in an admin's shell).
    fn command(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_dialin"));
        cmd.arg("pins")
            .arg("--config")
            .arg(&self.config)
            .env_remove("STATE_DIRECTORY");
        cmd
    }

    /// Runs `dialin pins <args>`; returns (success, stdout, stderr).
    fn pins(&self, args: &[&str]) -> (bool, String, String) {
        self.pins_stdin(args, "")
    }

    fn pins_stdin(&self, args: &[&str], stdin: &str) -> (bool, String, String) {
        run(self.command().args(args), stdin)
    }

    fn ok(&self, args: &[&str]) -> String {
        let (ok, out, err) = self.pins(args);
        assert!(ok, "dialin pins {args:?} failed: {err}");
        out
    }

    fn fails(&self, args: &[&str]) -> String {
        let (ok, out, err) = self.pins(args);
        assert!(!ok, "dialin pins {args:?} should fail: {out}");
        err
    }
}

/// Runs `cmd` with `stdin`; returns (success, stdout, stderr).
fn run(cmd: &mut Command, stdin: &str) -> (bool, String, String) {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn add_set_show_list_remove() {
    let env = Env::new();
    assert_eq!(
        env.ok(&[
            "add",
            "123456",
            "--conference",
            "72222",
            "--label",
            "Room 1"
        ]),
        "added\n"
    );
    assert!(
        env.dir.path().join("state/pins.db").exists(),
        "the SQLite file is created"
    );
    assert!(env
        .fails(&["add", "123456", "--conference", "72222"])
        .contains("already mapped"));
    assert_eq!(
        env.ok(&[
            "set",
            "123456",
            "--meeting-id",
            "room-one",
            "--server",
            "bbb1"
        ]),
        "updated\n"
    );
    let show = env.ok(&["show", "123456"]);
    assert!(
        show.contains("meeting_id=room-one") && show.contains("server=bbb1"),
        "{show}"
    );
    let list = env.ok(&["list"]);
    assert!(
        list.contains("8675309\tconference=71234") && list.contains("config (read-only)"),
        "{list}"
    );
    assert!(list.contains("123456\tmeeting_id=room-one"), "{list}");
    // Config-file PINs are read-only.
    assert!(env
        .fails(&["set", "8675309", "--conference", "72222"])
        .contains("config file"));
    assert!(env.fails(&["remove", "8675309"]).contains("read-only"));
    assert_eq!(env.ok(&["remove", "123456"]), "removed\n");
    assert!(env.fails(&["remove", "123456"]).contains("not mapped"));
    assert!(env.fails(&["show", "123456"]).contains("not mapped"));
}

#[test]
fn errors_name_the_field() {
    let env = Env::new();
    for (args, want) in [
        (
            vec!["add", "12a456", "--conference", "72222"],
            "pin: must be digits only",
        ),
        (
            vec!["add", "1234", "--conference", "72222"],
            "pin: has 4 digits",
        ),
        (
            vec!["add", "123456", "--conference", "7"],
            "conference: must be",
        ),
        (
            vec!["add", "123456", "--conference", "72222", "--server", "bbb9"],
            "server: unknown server",
        ),
        (
            vec!["add", "00000", "--conference", "72222"],
            "pin: is the echo test's PIN",
        ),
        (
            vec![
                "add",
                "123456",
                "--conference",
                "72222",
                "--valid-until",
                "soon",
            ],
            "valid_until: not an RFC 3339",
        ),
    ] {
        let err = env.fails(&args);
        assert!(err.contains(want), "{args:?}: {err}");
    }
}

#[test]
fn import_is_all_or_nothing_and_export_round_trips() {
    let env = Env::new();
    env.ok(&["add", "99999", "--conference", "72222"]);
    let bad = "pin,conference,server\n123456,71234,bbb1\n234567,71234,bbb7\n123456,71235,\n";
    let (ok, _, err) = env.pins_stdin(&["import", "-"], bad);
    assert!(!ok);
    assert!(err.contains("row 2: server: unknown server"), "{err}");
    assert!(
        err.contains("row 3: pin: appears in an earlier row"),
        "{err}"
    );
    assert!(err.contains("nothing imported"), "{err}");
    assert!(
        !env.ok(&["list"]).contains("123456"),
        "a failed import writes nothing"
    );

    let good = "pin,conference,meeting_id,label\n123456,71234,,Room A\n234567,,meet-2,\n";
    let (ok, out, err) = env.pins_stdin(&["import", "-"], good);
    assert!(ok, "{err}");
    assert!(out.contains("imported 2"), "{out}");
    let json = env.ok(&["export", "--format", "json"]);
    let rows: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(rows.as_array().unwrap().len(), 3, "{json}");
    // Replace the whole set with the export minus one row, through a JSON file.
    let mut arr = rows.as_array().unwrap().clone();
    arr.retain(|r| r["pin"] != "99999");
    let file = env.dir.path().join("set.json");
    std::fs::write(&file, serde_json::to_string(&arr).unwrap()).unwrap();
    env.ok(&["import", file.to_str().unwrap(), "--replace"]);
    let csv = env.ok(&["export", "--format", "csv"]);
    assert_eq!(csv.lines().count(), 3, "{csv}");
    assert!(
        csv.starts_with("pin,conference,meeting_id,server,label,valid_from,valid_until\n"),
        "{csv}"
    );
    assert!(
        csv.contains("123456,71234,,,Room A,,") && csv.contains("234567,,meet-2,"),
        "{csv}"
    );
    assert!(!csv.contains("99999"), "{csv}");
}

#[test]
fn generate_suggests_an_unused_pin() {
    let env = Env::new();
    for len in ["6", "9"] {
        let pin = env.ok(&["generate", "--length", len]);
        let pin = pin.trim();
        assert_eq!(pin.len(), len.parse::<usize>().unwrap());
        assert!(!pin.starts_with('0'));
        assert!(pin.as_bytes().windows(2).all(|w| w[0] != w[1]), "{pin}");
    }
    assert!(env
        .fails(&["generate", "--length", "3"])
        .contains("--length"));
}

#[test]
fn the_store_used_is_printed_and_a_missing_one_is_not_created() {
    let env = Env::uncreated();
    let file = env.dir.path().join("state/pins.db");
    let (ok, _, err) = env.pins(&["add", "123456", "--conference", "72222"]);
    assert!(!ok, "a missing store must be refused");
    let first = err.lines().next().unwrap_or("");
    assert_eq!(
        first,
        format!("dialin pins: store sqlite://{}", file.display())
    );
    for want in [
        format!("there is no PIN store at {}", file.display()),
        "store.url names this file".into(),
        "[store] url".into(),
        "--create-store".into(),
    ] {
        assert!(err.contains(&want), "{want:?} missing in:\n{err}");
    }
    assert!(!file.exists() && !file.parent().unwrap().exists());
    // With the flag it is created, and later commands use it without.
    let (ok, _, err) = env.pins(&["--create-store", "add", "123456", "--conference", "72222"]);
    assert!(ok, "{err}");
    assert!(file.exists());
    assert!(env.ok(&["list"]).contains("123456\tconference=72222"));
}

/// Root on the service's store (as an admin runs `dialin pins` on a packaged install) works as
/// the owner of the store's directory: the store and its -wal/-shm stay writable by the service.
#[test]
fn root_works_as_the_owner_of_the_store_directory() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    // SAFETY: geteuid has no preconditions.
    assert_eq!(
        unsafe { libc::geteuid() },
        0,
        "this test checks what root does: run the suite as root (README, Test it)"
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let state = dir.path().join("state");
    std::fs::create_dir(&state).unwrap();
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o700)).unwrap();
    const NOBODY: u32 = 65534;
    std::os::unix::fs::chown(&state, Some(NOBODY), Some(NOBODY)).unwrap();
    let store = format!("url = \"sqlite://{}/pins.db\"", state.display());
    let env = Env::with_store(dir, &store);
    let (ok, _, err) = env.pins(&["--create-store", "add", "123456", "--conference", "72222"]);
    assert!(ok, "{err}");
    assert!(
        err.contains(&format!("working as uid {NOBODY} gid {NOBODY}")),
        "{err}"
    );
    assert!(env.ok(&["list"]).contains("123456"));
    // A file only root can read is read before root is given up.
    let private = tempfile::tempdir().unwrap();
    let csv = private.path().join("rooms.csv");
    std::fs::write(&csv, "pin,conference\n234567,73333\n").unwrap();
    std::fs::set_permissions(&csv, std::fs::Permissions::from_mode(0o600)).unwrap();
    let (ok, _, err) = env.pins(&["import", csv.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert!(env.ok(&["list"]).contains("234567"));
    let files: Vec<_> = std::fs::read_dir(&state)
        .unwrap()
        .map(|e| e.unwrap())
        .collect();
    assert!(!files.is_empty());
    for file in files {
        let meta = file.metadata().unwrap();
        assert_eq!(
            (meta.uid(), meta.gid()),
            (NOBODY, NOBODY),
            "{} belongs to root",
            file.path().display()
        );
    }
}

#[test]
fn the_default_and_relative_paths_are_explained_for_a_shell() {
    // No [store] url and no STATE_DIRECTORY: the default file in the working directory.
    let env = Env::with_store(tempfile::tempdir().unwrap(), "");
    let cwd = tempfile::tempdir().unwrap();
    let default = cwd.path().join("dialin-pins.db");
    let (ok, _, err) = run(env.command().arg("list").current_dir(cwd.path()), "");
    assert!(!ok, "{err}");
    assert!(
        err.starts_with(&format!(
            "dialin pins: store sqlite://{}\n",
            default.display()
        )),
        "{err}"
    );
    assert!(
        err.contains("sets no [store] url") && err.contains("$STATE_DIRECTORY"),
        "{err}"
    );
    assert!(
        err.contains(&format!("working directory ({})", cwd.path().display())),
        "{err}"
    );
    assert!(!default.exists());
    // As under systemd: STATE_DIRECTORY names the service's state directory, and a store there
    // (created by the service) is used.
    let state = tempfile::tempdir().unwrap();
    let cmd = || {
        let mut c = env.command();
        c.current_dir(cwd.path())
            .env("STATE_DIRECTORY", state.path());
        c
    };
    assert!(!run(cmd().arg("list"), "").0);
    let (ok, _, err) = run(
        cmd().args(["--create-store", "add", "123456", "--conference", "72222"]),
        "",
    );
    assert!(ok, "{err}");
    assert!(state.path().join("dialin-pins.db").exists() && !default.exists());
    let (ok, out, _) = run(cmd().arg("list"), "");
    assert!(ok && out.contains("123456"), "{out}");

    // A relative url depends on the working directory, which differs from the service's.
    let env = Env::with_store(
        tempfile::tempdir().unwrap(),
        "url = \"sqlite://rel/pins.db\"",
    );
    let (ok, _, err) = run(env.command().arg("list").current_dir(cwd.path()), "");
    assert!(!ok, "{err}");
    let file = cwd.path().join("rel/pins.db");
    assert!(
        err.contains(&format!("no PIN store at {}", file.display())),
        "{err}"
    );
    assert!(
        err.contains("relative path") && err.contains("absolute path"),
        "{err}"
    );
}

#[test]
fn a_postgres_url_from_url_env_is_used_and_printed_without_its_password() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let db = rt.block_on(db::TestDb::postgres());
    // Trust authentication ignores the password; it is there to be masked.
    let url = db.url().replace("postgres@", "postgres:s3cret-pw@");
    let env = Env::with_store(
        tempfile::tempdir().unwrap(),
        "url_env = \"DIALIN_TEST_STORE_URL\"",
    );
    let pins = |args: &[&str]| {
        run(
            env.command().env("DIALIN_TEST_STORE_URL", &url).args(args),
            "",
        )
    };
    let (ok, out, err) = pins(&["add", "123456", "--conference", "72222"]);
    assert!(ok, "{err}");
    assert_eq!(out, "added\n");
    let (ok, out, err) = pins(&["list"]);
    assert!(ok, "{err}");
    assert!(out.contains("123456\tconference=72222"), "{out}");
    let shown = db.url().replace("postgres@", "postgres:***@");
    assert_eq!(err, format!("dialin pins: store {shown}\n"));
    assert!(!err.contains("s3cret"));
    // Without the variable the config is refused, naming the key.
    let (ok, _, err) = run(
        env.command()
            .env_remove("DIALIN_TEST_STORE_URL")
            .arg("list"),
        "",
    );
    assert!(!ok && err.contains("store.url_env"), "{err}");
}

/// `dialin serve` with its store at `url`, on `sip` and the RTP ports `rtp`, admin API off.
fn serve_config(dir: &std::path::Path, url: &str, sip: u16, rtp: (u16, u16)) -> std::path::PathBuf {
    let path = dir.join("serve.toml");
    let text = format!(
        "[sip]\nlisten = \"127.0.0.1:{sip}\"\n[media]\nrtp_ports = \"{}-{}\"\n[admin]\nlisten = \"\"\n\
         [[servers]]\nname = \"bbb1\"\nsip = \"sip:127.0.0.1:5080\"\n[store]\nurl = \"{url}\"\n",
        rtp.0, rtp.1
    );
    std::fs::write(&path, text).unwrap();
    path
}

/// A running `dialin serve` whose stderr lines are collected; killed when dropped.
struct Serve {
    child: std::process::Child,
    lines: std::sync::mpsc::Receiver<String>,
}

impl Serve {
    fn start(config: &std::path::Path) -> Serve {
        let mut child = Command::new(env!("CARGO_BIN_EXE_dialin"))
            .args(["serve", "--config"])
            .arg(config)
            .env("RUST_LOG", "info")
            .env_remove("STATE_DIRECTORY")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Serve { child, lines }
    }

    /// Waits for the line containing `needle`; panics with the log if serve ends first.
    fn wait_for(&self, needle: &str) -> String {
        let mut log = Vec::new();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while let Ok(line) = self
            .lines
            .recv_timeout(deadline.saturating_duration_since(std::time::Instant::now()))
        {
            if line.contains(needle) {
                return line;
            }
            log.push(line);
        }
        panic!(
            "dialin serve never logged {needle:?}; its log:\n{}",
            log.join("\n")
        );
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn serve_and_pins_started_together_on_a_fresh_store_all_succeed() {
    let sip = ports::PortBlock::take(1).base;
    let rtp = ports::PortBlock::take(16);
    let rtp = (rtp.base, rtp.base + rtp.len - 1);
    for round in 0..24 {
        let env = Env::uncreated();
        let url = format!("sqlite://{}/state/pins.db", env.dir.path().display());
        let serve_toml = serve_config(env.dir.path(), &url, sip, rtp);
        let pin = format!("{}", 550_000 + round);
        let add = [
            "--create-store",
            "add",
            pin.as_str(),
            "--conference",
            "72222",
        ];
        let spawn_pins = |args: &[&str]| {
            env.command()
                .args(args)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        };
        // Alternate who starts first; both start within a millisecond or so.
        let (serve, adder, lister) = if round % 2 == 0 {
            let serve = Serve::start(&serve_toml);
            (
                serve,
                spawn_pins(&add),
                spawn_pins(&["--create-store", "list"]),
            )
        } else {
            let adder = spawn_pins(&add);
            let lister = spawn_pins(&["--create-store", "list"]);
            (Serve::start(&serve_toml), adder, lister)
        };
        for (what, child) in [("add", adder), ("list", lister)] {
            let out = child.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "round {round}: dialin pins {what} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let line = serve.wait_for("PIN store open");
        assert!(
            line.contains(&format!("location={url}")),
            "round {round}: {line}"
        );
        drop(serve);
        assert!(env
            .ok(&["list"])
            .contains(&format!("{pin}\tconference=72222")));
    }
}
