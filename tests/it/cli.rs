//! `dialin check` explains configuration problems with the key and the line.

use std::process::Command;

fn check(text: &str) -> (bool, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dialin.toml");
    std::fs::write(&path, text).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_dialin"))
        .args(["check", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_example_config_passes() {
    let example = include_str!("../../deploy/dialin.example.toml");
    let (ok, stdout, stderr) = check(example);
    assert!(ok, "{stdout}{stderr}");
    assert!(stdout.contains(": ok"), "{stdout}");
}

#[test]
fn every_problem_is_named_with_key_and_line() {
    let text = "[sip]\nlisten = \"nonsense\"\n\n[ivr]\npin_min_digits = 12\nlanguage = \"fr\"\nattemps = 3\n";
    let (ok, stdout, stderr) = check(text);
    assert!(!ok, "a broken config must fail: {stdout}");
    for want in [
        ":2: sip.listen",
        ":6: ivr.language",
        ":7: ivr.attemps",
        "ivr.pin_min_digits",
    ] {
        assert!(stderr.contains(want), "missing {want:?} in:\n{stderr}");
    }
}

#[test]
fn a_missing_file_is_a_clear_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_dialin"))
        .args(["check", "--config", "/nonexistent/dialin.toml"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("/nonexistent/dialin.toml"), "{stderr}");
}

#[test]
fn serve_refuses_a_broken_config_without_starting() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, "[media]\nrtp_ports = \"9-3\"\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_dialin"))
        .args(["serve", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("media.rtp_ports"), "{stderr}");
}

#[test]
fn a_sounds_dir_without_the_prompts_is_reported() {
    let empty = tempfile::tempdir().unwrap();
    let text = format!("[ivr]\nsounds_dir = \"{}\"\n", empty.path().display());
    let (ok, stdout, stderr) = check(&text);
    assert!(!ok, "{stdout}");
    assert!(
        stderr.contains("ivr.sounds_dir") && stderr.contains("welcome.wav"),
        "{stderr}"
    );
}

#[test]
fn event_socket_passwords_never_show() {
    let dir = tempfile::tempdir().unwrap();
    let pw = dir.path().join("bbb1.esl");
    std::fs::write(&pw, "very-secret-esl-password\n").unwrap();
    let server = |esl_pw: &str| {
        format!(
            "[[servers]]\nname = \"bbb1\"\nsip = \"sip:10.0.0.1\"\nesl = \"10.0.0.11:8021\"\n{esl_pw}\n"
        )
    };
    let (ok, stdout, stderr) = check(&server(&format!(
        "esl_password_file = \"{}\"",
        pw.display()
    )));
    assert!(ok, "{stdout}{stderr}");
    assert!(!format!("{stdout}{stderr}").contains("very-secret"));
    // A broken entry is reported by key, still without the password.
    let text = server(&format!(
        "esl_password_file = \"{}\"\nesl_password_env = \"HOME\"",
        pw.display()
    ));
    let (ok, stdout, stderr) = check(&text);
    assert!(!ok);
    assert!(stderr.contains("servers[0].esl_password_file"), "{stderr}");
    assert!(!format!("{stdout}{stderr}").contains("very-secret"));
}

#[test]
fn an_unreadable_or_short_admin_token_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    let text = format!("[admin]\ntoken_file = \"{}\"\n", token.display());
    let (ok, _, stderr) = check(&text);
    assert!(
        !ok && stderr.contains("admin.token_file: cannot read"),
        "{stderr}"
    );
    std::fs::write(&token, "short\n").unwrap();
    let (ok, _, stderr) = check(&text);
    assert!(
        !ok && stderr.contains("fewer than 16 characters"),
        "{stderr}"
    );
    std::fs::write(&token, "a-long-enough-secret-token\n").unwrap();
    let (ok, stdout, stderr) = check(&text);
    assert!(ok, "{stderr}");
    assert!(!stdout.contains("a-long-enough") && !stderr.contains("a-long-enough"));
}
