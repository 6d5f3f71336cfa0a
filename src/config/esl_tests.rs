//! The Event Socket keys, the waiting room and the mute key.

use super::*;
use std::time::Duration;

fn problems(text: &str) -> Vec<(String, Option<usize>, String)> {
    match Config::from_toml(text, "t.toml") {
        Ok(_) => panic!("expected errors for:\n{text}"),
        Err(e) => e
            .errors
            .into_iter()
            .map(|e| (e.key, e.line, e.message))
            .collect(),
    }
}

#[test]
fn reads_esl_keys_and_the_password_from_file_or_env() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bbb1.esl");
    std::fs::write(&file, "s3cret-from-file\n").unwrap();
    std::env::set_var("DIALIN_TEST_ESL_PW", "s3cret-from-env");
    let text = format!(
        "[[servers]]\nname = \"bbb1\"\nsip = \"sip:10.0.0.1\"\nesl = \"10.0.0.11:8021\"\nesl_password_file = \"{}\"\n\
         [[servers]]\nname = \"bbb2\"\nsip = \"sip:10.0.0.2\"\nesl = \"10.0.0.12:8021\"\nesl_password_env = \"DIALIN_TEST_ESL_PW\"\n\
         [routing]\ndefault_server = \"bbb1\"\n\
         [esl]\ngrace = \"10s\"\nmax_frame = 65536\nreply_timeout = \"2s\"\nkeepalive = \"20s\"\n\
         [ivr]\nmax_wait = \"5m\"\nmute_key = \"*\"\nmute_mode = \"passthrough\"\n",
        file.display()
    );
    let c = Config::from_toml(&text, "t").unwrap();
    let e1 = c.servers[0].esl.as_ref().unwrap();
    assert_eq!(e1.addr, "10.0.0.11:8021".parse().unwrap());
    assert_eq!(e1.password.expose(), "s3cret-from-file");
    assert_eq!(
        c.servers[1].esl.as_ref().unwrap().password.expose(),
        "s3cret-from-env"
    );
    assert_eq!(
        c.esl,
        EslConfig {
            grace: Duration::from_secs(10),
            max_frame: 65536,
            reply_timeout: Duration::from_secs(2),
            keepalive: Duration::from_secs(20),
        }
    );
    assert_eq!(c.ivr.max_wait, Duration::from_secs(300));
    assert_eq!(c.ivr.mute_key, Some(crate::digit::Digit::Star));
    assert_eq!(c.ivr.mute_mode, MuteMode::Passthrough);
    // The password never shows in Debug output.
    let dump = format!("{c:?}");
    assert!(!dump.contains("s3cret"), "{dump}");
}

#[test]
fn defaults_without_esl() {
    let c = Config::from_toml("", "t").unwrap();
    assert_eq!(c.esl, EslConfig::default());
    assert_eq!(c.ivr.max_wait, Duration::from_secs(900));
    assert_eq!(c.ivr.mute_key, Some(crate::digit::Digit::Num(0)));
    assert_eq!(c.ivr.mute_mode, MuteMode::Esl);
    assert!(Config::embedded_default()
        .servers
        .iter()
        .all(|s| s.esl.is_none()));
}

#[test]
fn esl_problems_name_their_key_and_never_the_password() {
    std::env::set_var("DIALIN_TEST_ESL_EMPTY", "");
    let cases = [
        ("esl = \"10.0.0.11\"\nesl_password_env = \"HOME\"\n", "servers[0].esl", "not an address with port"),
        ("esl = \"10.0.0.11:8021\"\n", "servers[0].esl_password_file", "no password"),
        ("esl = \"10.0.0.11:8021\"\nesl_password_file = \"/nonexistent/pw\"\n", "servers[0].esl_password_file", "cannot read the password file"),
        ("esl = \"10.0.0.11:8021\"\nesl_password_env = \"DIALIN_TEST_ESL_EMPTY\"\n", "servers[0].esl_password_env", "not set or empty"),
        ("esl = \"10.0.0.11:8021\"\nesl_password_env = \"HOME\"\nesl_password_file = \"/etc/hostname\"\n", "servers[0].esl_password_file", "keep one"),
        ("esl_password_env = \"HOME\"\n", "servers[0].esl_password_env", "esl is not"),
    ];
    for (keys, key, message) in cases {
        let text = format!("[[servers]]\nname = \"bbb1\"\nsip = \"sip:10.0.0.1\"\n{keys}");
        let got = problems(&text);
        assert!(
            got.iter()
                .any(|(k, line, m)| k == key && line.is_some() && m.contains(message)),
            "{keys}: {got:?}"
        );
    }
    for (text, key) in [
        ("[ivr]\nmute_key = \"00\"\n", "ivr.mute_key"),
        ("[ivr]\nmute_mode = \"loud\"\n", "ivr.mute_mode"),
        ("[ivr]\nmax_wait = \"forever\"\n", "ivr.max_wait"),
        ("[esl]\nmax_frame = 10\n", "esl.max_frame"),
        ("[esl]\ngrace = 5\n", "esl.grace"),
        ("[esl]\nnope = 1\n", "esl.nope"),
        ("[esl]\nkeepalive = \"10ms\"\n", "esl.keepalive"),
        ("[esl]\nreply_timeout = \"1ms\"\n", "esl.reply_timeout"),
    ] {
        let got = problems(text);
        assert_eq!(got[0].0, key, "{text}: {got:?}");
    }
}

#[test]
fn probes_are_off_by_default_and_validated() {
    use crate::routing::probe::ProbeSettings;
    use std::time::Duration;
    let c = Config::from_toml("", "t").unwrap();
    assert_eq!(c.probes, None);
    let c = Config::from_toml("[probes]\ninterval = \"1s\"\n", "t").unwrap();
    assert_eq!(
        c.probes,
        Some(ProbeSettings::with_interval(Duration::from_secs(1)))
    );
    let c = Config::from_toml(
        "[probes]\ninterval = \"2s\"\ntimeout = \"500ms\"\nfailures = 3\nrecoveries = 2\n",
        "t",
    )
    .unwrap();
    let p = c.probes.unwrap();
    assert_eq!(
        (p.timeout, p.failures, p.recoveries),
        (Duration::from_millis(500), 3, 2)
    );
    for (text, needle) in [
        ("[probes]\nfailures = 2\n", "probes.interval is not"),
        ("[probes]\ninterval = \"10ms\"\n", "from 200ms to 1h"),
        (
            "[probes]\ninterval = \"1s\"\ntimeout = \"2s\"\n",
            "longer than probes.interval",
        ),
        (
            "[probes]\ninterval = \"1s\"\nfailures = 0\n",
            "from 1 to 100",
        ),
        ("[probes]\ninterval = \"1s\"\nping = 1\n", "ping"),
    ] {
        let e = Config::from_toml(text, "t").unwrap_err().to_string();
        assert!(e.contains(needle), "{text}: {e}");
    }
}
