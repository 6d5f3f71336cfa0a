//! `dialin pins ...` against a real store (a SQLite file in a temp dir).

use std::io::Write;
use std::process::{Command, Stdio};

struct Env {
    dir: tempfile::TempDir,
    config: std::path::PathBuf,
}

impl Env {
    fn new() -> Env {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("dialin.toml");
        let text = format!(
            "[[servers]]\nname = \"bbb1\"\nsip = \"sip:127.0.0.1:5080\"\n[store]\nurl = \"sqlite://{}/state/pins.db\"\n[[pins]]\npin = \"8675309\"\nconference = \"71234\"\n",
            dir.path().display()
        );
        std::fs::write(&config, text).unwrap();
        Env { dir, config }
    }

    /// Runs `dialin pins <args>`; returns (success, stdout, stderr).
    fn pins(&self, args: &[&str]) -> (bool, String, String) {
        self.pins_stdin(args, "")
    }

    fn pins_stdin(&self, args: &[&str], stdin: &str) -> (bool, String, String) {
        let mut child = Command::new(env!("CARGO_BIN_EXE_dialin"))
            .arg("pins")
            .arg("--config")
            .arg(&self.config)
            .args(args)
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
