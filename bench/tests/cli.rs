//! The benchmark's command line: `--help` explains the modes, bad arguments are refused
//! with exit code 2 before anything starts.

use std::process::Command;

fn bench() -> Command {
    Command::new(env!("CARGO_BIN_EXE_dialin-bench"))
}

#[test]
fn help_names_the_modes_and_exits_0() {
    let out = bench().arg("--help").output().expect("run dialin-bench");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for word in [
        "--quick",
        "--full",
        "--calls",
        "--no-rtpengine",
        "--reference",
    ] {
        assert!(text.contains(word), "help lacks {word}:\n{text}");
    }
}

#[test]
fn bad_arguments_exit_2_with_a_reason() {
    let cases: &[(&[&str], &str)] = &[
        (&["--quick"], "--dialin PATH is required"),
        (
            &["--dialin", "x", "--calls", "many"],
            "--calls wants a number",
        ),
        (&["--dialin", "x", "--bogus"], "unknown argument --bogus"),
        (
            &["--dialin", "x", "--reference", " "],
            "--reference wants a command",
        ),
        (
            &["--dialin", "x", "--calls", "9000"],
            "--port-base too high",
        ),
    ];
    for (args, reason) in cases {
        let out = bench().args(*args).output().expect("run dialin-bench");
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(reason), "{args:?}: {err}");
    }
}
