//! Tests for the configuration: the shipped example, defaults, and every validation rule with
//! its key path and line.

use super::*;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Parses `text`, expecting failure; returns `(key, line, message)` per problem.
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

const SERVER: &str = "[[servers]]\nname = \"bbb1\"\nsip = \"sip:10.0.0.1\"\n";

#[test]
fn embedded_example_is_valid() {
    let c = Config::embedded_default();
    assert_eq!(c.sip.listen, "127.0.0.1:5060".parse().unwrap());
    assert_eq!(c.sip.advertise, "127.0.0.1".parse::<IpAddr>().unwrap());
    assert_eq!(c.sip.user_agent, "dialin");
    assert_eq!(
        c.media,
        MediaConfig {
            rtp_ports: (20000, 20999),
            timeout: Duration::from_secs(60),
            server_silence: Duration::from_secs(1),
            server_probe: Duration::from_secs(5),
        }
    );
    assert_eq!(c.trunk, TrunkConfig::default());
    assert_eq!(c.ivr, IvrConfig::default());
    assert_eq!(c.servers.len(), 1);
    assert_eq!(
        (c.servers[0].name.as_str(), c.servers[0].host.as_str()),
        ("bbb1", "127.0.0.1")
    );
    assert_eq!(c.servers[0].sip, "127.0.0.1:5080".parse().unwrap());
    assert_eq!(c.routing.default_server.as_deref(), Some("bbb1"));
    assert_eq!(c.pins.len(), 1);
    assert_eq!(
        (c.pins[0].pin.expose(), c.pins[0].conference.expose()),
        ("8675309", "71234")
    );
    assert_eq!(c.pins[0].server.as_deref(), Some("bbb1"));
    assert_eq!(c.warnings(), Vec::<String>::new());
}

#[test]
fn empty_file_takes_defaults_and_warns_about_servers() {
    let c = Config::from_toml("", "t.toml").unwrap();
    assert_eq!(c.sip, SipConfig::default());
    assert_eq!(c.routing, RoutingConfig::default());
    assert!(c.servers.is_empty() && c.pins.is_empty());
    assert!(c.default_server().is_none());
    let warnings = c.warnings();
    assert_eq!(warnings.len(), 1);
    assert!(warnings[0].starts_with("servers: "), "{warnings:?}");
}

#[test]
fn reads_every_key() {
    let text = r#"
sip = { listen = "0.0.0.0:5070", advertise = "203.0.113.5", user_agent = "dialin-test" }
[media]
rtp_ports = "30000-30003"
timeout = "1m"
server_silence = "1500ms"
[trunk]
allow = ["192.0.2.0/24", "2001:db8::/32"]
reject = "silence"
[ivr]
language = "de"
sounds_dir = "/opt/sounds"
pin_min_digits = 4
pin_max_digits = 8
attempts = 5
first_digit_timeout = "15s"
inter_digit_timeout = "2500ms"
echo_pin = ""
[[servers]]
name = "a"
sip = "sip:[2001:db8::7]:5090"
[[servers]]
name = "b_2"
sip = "sip:localhost"
[routing]
pin_is_conference = false
server_answer_timeout = "20s"
rejoin_max = "5m"
"#;
    let c = Config::from_toml(text, "t.toml").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        (c.sip.listen.port(), c.sip.advertise.to_string()),
        (5070, "203.0.113.5".into())
    );
    assert_eq!(c.sip.user_agent, "dialin-test");
    assert_eq!(c.media.rtp_ports, (30000, 30003));
    assert_eq!(c.media.timeout, Duration::from_secs(60));
    assert_eq!(c.trunk.allow.len(), 2);
    assert_eq!(c.trunk.reject, TrunkReject::Silence);
    assert!(c.trunk.acl().allows("192.0.2.77".parse().unwrap()));
    assert_eq!(c.ivr.language.code(), "de");
    assert_eq!(c.ivr.sounds_dir, Some(PathBuf::from("/opt/sounds")));
    assert_eq!(
        (c.ivr.pin_min_digits, c.ivr.pin_max_digits, c.ivr.attempts),
        (4, 8, 5)
    );
    assert_eq!(c.ivr.inter_digit_timeout, Duration::from_millis(2500));
    assert_eq!(c.ivr.echo_pin, None);
    assert_eq!(c.servers[0].sip, "[2001:db8::7]:5090".parse().unwrap());
    assert_eq!(c.servers[1].host, "localhost");
    assert_eq!(c.servers[1].sip.port(), 5060);
    assert!(!c.routing.pin_is_conference);
    assert_eq!(c.routing.server_answer_timeout, Duration::from_secs(20));
    assert_eq!(c.routing.rejoin_max, Duration::from_secs(300));
    assert_eq!(c.media.server_silence, Duration::from_millis(1500));
    assert!(c.warnings().is_empty(), "{:?}", c.warnings());
}

#[test]
fn rejects_each_rule_with_key_and_line() {
    let s = SERVER;
    let cases: Vec<(String, &str, usize, &str)> = vec![
        ("[sip]\nlisten = \"127.0.0.1\"\n".into(), "sip.listen", 2, "with port"),
        ("[sip]\nlisten = \"0.0.0.0:5060\"\n".into(), "sip.advertise", 1, "required"),
        ("[sip]\nadvertise = \"0.0.0.0\"\n".into(), "sip.advertise", 2, "unspecified"),
        ("[sip]\nuser_agent = \"a\\r\\nX-Evil: 1\"\n".into(), "sip.user_agent", 2, "printable"),
        ("[media]\nrtp_ports = \"20000\"\n".into(), "media.rtp_ports", 2, "not a port range"),
        ("[media]\nrtp_ports = \"80-1000\"\n".into(), "media.rtp_ports", 2, "below 1024"),
        ("[media]\nrtp_ports = \"20002-20000\"\n".into(), "media.rtp_ports", 2, "above the last"),
        ("[media]\nrtp_ports = \"20000-20002\"\n".into(), "media.rtp_ports", 2, "at least 4"),
        ("[media]\nrtp_ports = \"20000-70000\"\n".into(), "media.rtp_ports", 2, "not a port range"),
        ("[media]\n\ntimeout = 60\n".into(), "media.timeout", 3, "string"),
        ("[media]\ntimeout = \"0s\"\n".into(), "media.timeout", 2, "longer than 0"),
        ("[trunk]\nallow = []\n".into(), "trunk.allow", 1, "empty"),
        ("[trunk]\nallow = [\n  \"10.0.0.0/8\",\n  \"10.0.0.0/40\",\n]\n".into(), "trunk.allow[1]", 4, "prefix"),
        ("[trunk]\nallow = \"10.0.0.0/8\"\n".into(), "trunk.allow", 2, "list"),
        ("[trunk]\nreject = \"drop\"\n".into(), "trunk.reject", 2, "\"silence\""),
        ("[ivr]\nlanguage = \"fr\"\n".into(), "ivr.language", 2, "\"en\" or \"de\""),
        ("[ivr]\nsounds_dir = \"\"\n".into(), "ivr.sounds_dir", 2, "built-in"),
        ("[ivr]\npin_min_digits = 0\n".into(), "ivr.pin_min_digits", 2, "1 to 20"),
        ("[ivr]\npin_max_digits = 21\n".into(), "ivr.pin_max_digits", 2, "1 to 20"),
        ("[ivr]\npin_max_digits = \"9\"\n".into(), "ivr.pin_max_digits", 2, "whole number"),
        ("[ivr]\npin_min_digits = 9\npin_max_digits = 6\n".into(), "ivr.pin_min_digits", 2, "above"),
        ("[ivr]\nattempts = 0\n".into(), "ivr.attempts", 2, "1 to 10"),
        ("[ivr]\nfirst_digit_timeout = \"10\"\n".into(), "ivr.first_digit_timeout", 2, "unit"),
        ("[ivr]\ninter_digit_timeout = \"5 sec\"\n".into(), "ivr.inter_digit_timeout", 2, "unit"),
        ("[ivr]\necho_pin = \"0000a\"\n".into(), "ivr.echo_pin", 2, "digits only"),
        ("[ivr]\necho_pin = \"000\"\n".into(), "ivr.echo_pin", 2, "3 digits"),
        ("[ivr]\npin_min_digits = 6\n".into(), "ivr.pin_min_digits", 2, "echo_pin has 5 digits"),
        ("[[servers]]\nsip = \"sip:10.0.0.1\"\n".into(), "servers[0].name", 1, "missing"),
        ("[[servers]]\nname = \"bbb1\"\n".into(), "servers[0].sip", 1, "missing"),
        ("[[servers]]\nname = \"BBB 1\"\nsip = \"sip:10.0.0.1\"\n".into(), "servers[0].name", 2, "a-z"),
        (format!("{s}{s}"), "servers[1].name", 5, "unique"),
        ("[[servers]]\nname = \"a\"\nsip = \"10.0.0.1\"\n".into(), "servers[0].sip", 3, "sip:"),
        ("[[servers]]\nname = \"a\"\nsip = \"sip:71234@10.0.0.1\"\n".into(), "servers[0].sip", 3, "user part"),
        ("[[servers]]\nname = \"a\"\nsip = \"sip:10.0.0.1:0\"\n".into(), "servers[0].sip", 3, "bad port"),
        ("[[servers]]\nname = \"a\"\nsip = \"sip:[::1\"\n".into(), "servers[0].sip", 3, "unclosed"),
        ("[[servers]]\nname = \"a\"\nsip = \"sip:host;transport=tcp\"\n".into(), "servers[0].sip", 3, "parameters"),
        ("[[servers]]\nname = \"a\"\nsip = \"sip:no-such-host.invalid\"\n".into(), "servers[0].sip", 3, "resolve"),
        ("[servers]\nname = \"a\"\n".into(), "servers", 1, "[[servers]]"),
        (format!("{s}[routing]\ndefault_server = \"bbb2\"\n"), "routing.default_server", 5, "bbb1"),
        ("[routing]\ndefault_server = \"bbb2\"\n".into(), "routing.default_server", 2, "no [[servers]]"),
        ("[routing]\npin_is_conference = \"yes\"\n".into(), "routing.pin_is_conference", 2, "true or false"),
        ("[routing]\nserver_answer_timeout = \"10x\"\n".into(), "routing.server_answer_timeout", 2, "unit"),
        ("[routing]\nrejoin_max = \"soon\"\n".into(), "routing.rejoin_max", 2, "unit"),
        ("[media]\nserver_silence = \"1\"\n".into(), "media.server_silence", 2, "unit"),
        ("[media]\nserver_silence = \"0s\"\n".into(), "media.server_silence", 2, "longer than 0"),
        (format!("{s}[[pins]]\npin = \"12a45\"\nconference = \"71234\"\n"), "pins[0].pin", 5, "digits only"),
        (format!("{s}[[pins]]\npin = \"1234\"\nconference = \"71234\"\n"), "pins[0].pin", 5, "4 digits"),
        (format!("{s}[[pins]]\npin = \"00000\"\nconference = \"71234\"\n"), "pins[0].pin", 5, "echo_pin"),
        (
            format!("{s}[[pins]]\npin = \"12345\"\nconference = \"71234\"\n[[pins]]\npin = \"12345\"\nconference = \"71235\"\n"),
            "pins[1].pin",
            8,
            "unique",
        ),
        (format!("{s}[[pins]]\npin = \"12345\"\nconference = \"7123\"\n"), "pins[0].conference", 6, "5 to 11"),
        (format!("{s}[[pins]]\npin = \"12345\"\nconference = \"123456789012\"\n"), "pins[0].conference", 6, "5 to 11"),
        (format!("{s}[[pins]]\nconference = \"71234\"\n"), "pins[0].pin", 4, "missing"),
        (format!("{s}[[pins]]\npin = \"12345\"\n"), "pins[0].conference", 4, "missing"),
        (format!("{s}[[pins]]\npin = \"12345\"\nconference = \"71234\"\nserver = \"x\"\n"), "pins[0].server", 7, "bbb1"),
        ("[[pins]]\npin = \"12345\"\nconference = \"71234\"\n".into(), "pins[0].server", 1, "no server"),
        ("pins = [{ pin = \"12345\", conference = \"7\" }]\n".into(), "pins[0].conference", 1, "5 to 11"),
        ("pins = [5]\n".into(), "pins[0]", 1, "table"),
    ];
    for (text, key, line, fragment) in cases {
        let found = problems(&text);
        let hit = found
            .iter()
            .find(|(k, l, m)| k == key && *l == Some(line) && m.contains(fragment));
        assert!(
            hit.is_some(),
            "want {key} at line {line} containing {fragment:?} in:\n{text}\ngot {found:#?}"
        );
    }
}

#[test]
fn unknown_keys_are_errors() {
    let text = "[sip]\nlisten = \"127.0.0.1:5060\"\nlisen = \"x\"\n[sipp]\n[[servers]]\nname = \"a\"\nsip = \"sip:10.0.0.1\"\nweight = 2\n[ivr]\nmax_digits.x = 3\n";
    let found = problems(text);
    let keys: Vec<(&str, Option<usize>)> = found.iter().map(|(k, l, _)| (k.as_str(), *l)).collect();
    assert_eq!(
        keys,
        [
            ("sip.lisen", Some(3)),
            ("sipp", Some(4)),
            ("servers[0].weight", Some(8)),
            ("ivr.max_digits", Some(10))
        ]
    );
    assert!(
        found[0].2.contains("spelling") && found[0].2.contains("listen, advertise, user_agent")
    );
}

#[test]
fn reports_several_problems_at_once_in_file_order() {
    let text = "[ivr]\nattempts = 0\nlanguage = \"xx\"\n[media]\ntimeout = \"forever\"\n[sip]\nlisten = \"nope\"\n";
    let err = Config::from_toml(text, "dialin.toml").unwrap_err();
    let lines: Vec<Option<usize>> = err.iter().map(|e| e.line).collect();
    assert_eq!(lines, [Some(2), Some(3), Some(5), Some(7)]);
    let shown = err.to_string();
    let first = shown.lines().next().unwrap();
    assert_eq!(
        first,
        "dialin.toml:2: ivr.attempts: out of range; use a whole number from 1 to 10"
    );
    assert_eq!(shown.lines().count(), 4);
    assert!(
        shown.lines().all(|l| l.starts_with("dialin.toml:")),
        "{shown}"
    );
}

#[test]
fn syntax_errors_name_their_line() {
    let cases = [
        ("[sip]\nlisten = 127.0.0.1:5060\n", 2),
        (
            "# Grüße, äöü — non-ASCII before the error\n\n[ivr]\nlanguage = \"en\n",
            4,
        ),
        ("[[pins]]\npin = \"8675309\"\npin = \"8675309\"\n", 3),
        ("[sip\n", 1),
    ];
    for (text, line) in cases {
        let err = Config::from_toml(text, "t.toml").unwrap_err();
        assert_eq!(err.len(), 1, "{err}");
        assert_eq!(err.errors[0].line, Some(line), "{text}: {err}");
        assert!(
            err.to_string()
                .starts_with(&format!("t.toml:{line}: TOML syntax error: ")),
            "{err}"
        );
        assert!(!err.to_string().contains("8675309"), "{err}");
    }
}

#[test]
fn messages_never_contain_pins_or_conferences() {
    let text = format!(
        "{SERVER}[ivr]\necho_pin = \"987\"\n[[pins]]\npin = \"8675309123456789012345\"\nconference = \"7123499\"\n\
         [[pins]]\npin = \"86753a\"\nconference = \"71234998877665\"\n[[pins]]\npin = \"55501\"\nconference = \"66601\"\n\
         [[pins]]\npin = \"55501\"\nconference = \"66601\"\n"
    );
    let shown = Config::from_toml(&text, "t.toml").unwrap_err().to_string();
    for secret in [
        "987",
        "8675309",
        "7123499",
        "86753a",
        "71234998877665",
        "55501",
        "66601",
    ] {
        assert!(!shown.contains(secret), "{secret} leaked:\n{shown}");
    }
    assert!(shown.lines().count() >= 5, "{shown}");
}

#[test]
fn durations() {
    let ok = [
        ("500ms", 500),
        ("10s", 10_000),
        ("15m", 900_000),
        ("15min", 900_000),
        ("1h", 3_600_000),
        (" 2s ", 2_000),
        ("10 s", 10_000),
    ];
    for (text, ms) in ok {
        assert_eq!(
            parse_duration(text),
            Ok(Duration::from_millis(ms)),
            "{text}"
        );
    }
    for text in [
        "",
        "s",
        "10",
        "-1s",
        "1.5s",
        "10d",
        "0ms",
        "99999999999999999999s",
        "9000h",
    ] {
        assert!(parse_duration(text).is_err(), "{text}");
    }
}

#[test]
fn load_reads_files_and_reports_read_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dialin.toml");
    std::fs::write(&path, "[ivr]\nattempts = 99\n").unwrap();
    let err = Config::load(&path).unwrap_err();
    assert!(
        err.to_string()
            .starts_with(&format!("{}:2: ivr.attempts: ", path.display())),
        "{err}"
    );
    std::fs::write(&path, SERVER).unwrap();
    assert_eq!(Config::load(&path).unwrap().servers.len(), 1);
    let missing = dir.path().join("missing.toml");
    let err = Config::load(&missing).unwrap_err();
    assert_eq!(err.errors[0].line, None);
    assert!(
        err.to_string()
            .starts_with(&format!("{}: cannot read", missing.display())),
        "{err}"
    );
}

#[test]
fn warnings() {
    let cases = [
        (
            format!("{SERVER}[media]\nrtp_ports = \"20001-20999\"\n"),
            "media.rtp_ports",
        ),
        (
            format!("{SERVER}[trunk]\nallow = [\"0.0.0.0/0\"]\n"),
            "trunk.allow",
        ),
        (
            format!("{SERVER}{}", SERVER.replace("bbb1", "bbb2")),
            "routing.default_server",
        ),
        ("[ivr]\necho_pin = \"\"\n".to_string(), "ivr.echo_pin"),
        (String::new(), "servers"),
    ];
    for (text, key) in cases {
        let warnings = Config::from_toml(&text, "t").unwrap().warnings();
        assert!(
            warnings.iter().any(|w| w.starts_with(&format!("{key}: "))),
            "{key}: {warnings:?}"
        );
    }
}

#[test]
fn answer_delay_accepts_zero_and_durations() {
    let c = Config::from_toml("[sip]\nanswer_delay = \"0s\"\n", "t").unwrap();
    assert_eq!(c.sip.answer_delay, std::time::Duration::ZERO);
    let c = Config::from_toml("[sip]\nanswer_delay = \"1500ms\"\n", "t").unwrap();
    assert_eq!(c.sip.answer_delay, std::time::Duration::from_millis(1500));
    let e = Config::from_toml("[sip]\nanswer_delay = \"soon\"\n", "t").unwrap_err();
    assert!(e.to_string().contains("t:2: sip.answer_delay"), "{e}");
}

#[test]
fn echo_max_is_a_duration_with_a_default() {
    let c = Config::from_toml("", "t").unwrap();
    assert_eq!(c.ivr.echo_max, std::time::Duration::from_secs(300));
    let c = Config::from_toml("[ivr]\necho_max = \"90s\"\n", "t").unwrap();
    assert_eq!(c.ivr.echo_max, std::time::Duration::from_secs(90));
    let e = Config::from_toml("[ivr]\necho_max = \"long\"\n", "t").unwrap_err();
    assert!(e.to_string().contains("t:2: ivr.echo_max"), "{e}");
}

#[test]
fn an_empty_user_agent_means_no_header() {
    let text = format!("[sip]\nuser_agent = \"\"\n{SERVER}");
    let c = Config::from_toml(&text, "t.toml").expect("an empty user_agent is valid");
    assert_eq!(c.sip.user_agent, "");
}

#[test]
fn server_silence_can_be_turned_off() {
    let c = Config::from_toml("[media]\nserver_silence = \"off\"\n", "t.toml")
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.media.server_silence, Duration::ZERO);
    let c = Config::from_toml("", "t.toml").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.media.server_silence, Duration::from_secs(1));
    assert_eq!(c.routing.rejoin_max, Duration::from_secs(120));
}

#[test]
fn server_probe_has_a_default_and_can_be_turned_off() {
    let c = Config::from_toml("", "t.toml").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.media.server_probe, Duration::from_secs(5));
    let c = Config::from_toml("[media]\nserver_probe = \"off\"\n", "t.toml")
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.media.server_probe, Duration::ZERO);
    let c = Config::from_toml("[media]\nserver_probe = \"2s\"\n", "t.toml")
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.media.server_probe, Duration::from_secs(2));
}
