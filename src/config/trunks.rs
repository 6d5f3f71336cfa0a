//! `[[trunks]]` (named trunks with their own addresses and limits) and `[limits]` (overload and
//! flood protection).

use std::collections::HashSet;

use super::error::Problems;
use super::reader::Section;
use super::values::DurationError;
use super::values::{parse_duration, valid_server_name};
use super::values::{parse_sip_uri, resolve};
use super::{LimitsConfig, NamedTrunk, Password, RegisterConfig};
use crate::sip::acl::IpNet;
use crate::sip::sdes::SrtpPolicy;
use std::time::Duration;

/// `[[trunks]]`.
pub(super) fn trunks(root: &Section<'_>, p: &mut Problems<'_>) -> Vec<NamedTrunk> {
    let mut out = Vec::new();
    let mut names = HashSet::new();
    for s in root.tables(
        p,
        "trunks",
        &["name", "allow", "max_calls", "register", "srtp"],
    ) {
        let name = s.parsed(p, "name", |t| {
            valid_server_name(t)
                .then(|| t.to_string())
                .ok_or("must be 1 to 32 characters of a-z, 0-9, '_' and '-', like \"provider1\"")
        });
        if !s.has("name") {
            let message = "missing; give every trunk a unique name, like name = \"provider1\"";
            p.push(s.line, s.path_of("name"), message);
        }
        let mut allow = Vec::new();
        for entry in s.strings(p, "allow").unwrap_or_default() {
            match entry.value.parse::<IpNet>() {
                Ok(net) => allow.push(net),
                Err(e) => p.push(entry.line, entry.path, e.to_string()),
            }
        }
        let register = s.has("register").then(|| register(&s, p)).flatten();
        if allow.is_empty() && !s.has("allow") && !s.has("register") {
            let message = "missing; list the provider's networks for this trunk, like allow = [\"192.0.2.0/24\"] (optional only with [trunks.register], whose registrar is allowed)";
            p.push(s.line, s.path_of("allow"), message);
        }
        let max_calls = s
            .integer(p, "max_calls", 1..=100_000)
            .map(|v| v.value as usize);
        let srtp = srtp_policy(&s, p);
        let Some(name) = name else { continue };
        if !names.insert(name.value.clone()) {
            let message = "another trunk already has this name; give every trunk a unique name";
            p.push(name.line, name.path, message);
            continue;
        }
        if !allow.is_empty() || register.is_some() {
            out.push(NamedTrunk {
                name: name.value,
                allow,
                max_calls,
                register,
                srtp,
            });
        }
    }
    out
}

/// The `srtp` key of `[trunk]` or a `[[trunks]]` entry (default "optional").
pub(super) fn srtp_policy(s: &Section<'_>, p: &mut Problems<'_>) -> SrtpPolicy {
    s.parsed(p, "srtp", |t| match t {
        "optional" => Ok(SrtpPolicy::Optional),
        "required" => Ok(SrtpPolicy::Required),
        "off" => Ok(SrtpPolicy::Off),
        _ => Err("must be \"optional\" (SRTP when the provider offers it), \"required\" (refuse plain RTP) or \"off\""),
    })
    .map(|v| v.value)
    .unwrap_or_default()
}

/// `[trunks.register]` of one trunk; `None` (with problems recorded) when unusable.
// Over 80 lines: one block per key of `[trunks.register]`, in file order, like every section.
fn register(trunk: &Section<'_>, p: &mut Problems<'_>) -> Option<RegisterConfig> {
    let known = [
        "registrar",
        "username",
        "auth_username",
        "password_file",
        "password_env",
        "expires",
    ];
    let s = trunk.table(p, "register", &known);
    let registrar =
        s.parsed(p, "registrar", parse_sip_uri)
            .and_then(|uri| match resolve(&uri.value) {
                Ok(addr) => Some((uri, addr)),
                Err(message) => {
                    p.push(uri.line, uri.path, message.to_string());
                    None
                }
            });
    for (key, what) in [
        (
            "registrar",
            "the provider's registrar, like registrar = \"sip:sip.provider.example\"",
        ),
        ("username", "the account name the provider gave you"),
    ] {
        if !s.has(key) {
            p.push(
                s.line,
                s.path_of(key),
                format!("missing; set {key} to {what}"),
            );
        }
    }
    let name_rule = |t: &str| {
        let ok = !t.is_empty()
            && t.len() <= 128
            && t.bytes()
                .all(|b| b.is_ascii_graphic() && !b"<>@:;\"".contains(&b));
        ok.then(|| t.to_string())
            .ok_or_else(|| "must be 1 to 128 printable characters without spaces, '<', '>', '@', ':', ';' or '\"'".to_string())
    };
    let username = s.parsed(p, "username", name_rule);
    let auth_username = s.parsed(p, "auth_username", name_rule).map(|v| v.value);
    let password = match (s.string(p, "password_file"), s.string(p, "password_env")) {
        (Some(file), None) => match std::fs::read_to_string(file.value) {
            Ok(text) => Some(Password::new(&text)),
            Err(e) => {
                let message = format!(
                    "cannot read the password file ({}); check the path and its permissions",
                    e.kind()
                );
                p.push(file.line, file.path, message);
                None
            }
        },
        (None, Some(var)) => match std::env::var(var.value) {
            Ok(v) if !v.trim().is_empty() => Some(Password::new(&v)),
            _ => {
                let message = "the environment variable is not set (or empty); export it before starting dialin";
                p.push(var.line, var.path, message);
                None
            }
        },
        (Some(file), Some(_)) => {
            p.push(
                file.line,
                file.path,
                "set either password_file or password_env, not both",
            );
            None
        }
        (None, None) => {
            let message = "missing; set password_file to a file holding the password, or password_env to the name of an environment variable holding it";
            p.push(s.line, s.path_of("password_file"), message);
            None
        }
    };
    let mut expires = Duration::from_secs(3600);
    if let Some(v) = s.parsed(p, "expires", |t| {
        let d = parse_duration(t)?;
        if d.subsec_millis() != 0 || d.as_secs() > 86_400 {
            return Err(DurationError::OutOfRange(
                "must be whole seconds up to a day, like \"1h\"",
            ));
        }
        Ok(d)
    }) {
        expires = v.value;
    }
    let ((uri, registrar_addr), username, password) = (registrar?, username?, password?);
    Some(RegisterConfig {
        registrar: format!("sip:{}", host_port(&uri.value.host, uri.value.port)),
        registrar_addr,
        username: username.value,
        auth_username,
        password,
        expires,
    })
}

/// `host:port`, with brackets for an IPv6 address.
fn host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// `[limits]`.
pub(super) fn limits(root: &Section<'_>, p: &mut Problems<'_>) -> LimitsConfig {
    let s = root.table(
        p,
        "limits",
        &[
            "max_calls",
            "max_ivr_calls",
            "retry_after",
            "sip_rate",
            "sip_burst",
            "tcp_per_source",
            "tcp_total",
            "tcp_idle",
        ],
    );
    let mut c = LimitsConfig::default();
    if let Some(v) = s.integer(p, "max_calls", 1..=100_000) {
        c.max_calls = v.value as usize;
    }
    if let Some(v) = s.integer(p, "max_ivr_calls", 1..=100_000) {
        c.max_ivr_calls = v.value as usize;
    }
    if let Some(v) = s.parsed(p, "retry_after", |t| {
        let d = parse_duration(t)?;
        if d.subsec_millis() != 0 || d.as_secs() > 3600 {
            return Err(DurationError::OutOfRange(
                "must be whole seconds from 1s to 1h, like \"10s\"",
            ));
        }
        Ok(d)
    }) {
        c.retry_after = v.value;
    }
    if let Some(v) = s.integer(p, "sip_rate", 1..=1_000_000) {
        c.sip_rate = v.value as u32;
    }
    if let Some(v) = s.integer(p, "sip_burst", 1..=1_000_000) {
        c.sip_burst = v.value as u32;
    }
    if let Some(v) = s.integer(p, "tcp_per_source", 1..=65_536) {
        c.tcp_per_source = v.value as u32;
    }
    if let Some(v) = s.integer(p, "tcp_total", 1..=65_536) {
        c.tcp_total = v.value as u32;
    }
    if let Some(v) = s.parsed(p, "tcp_idle", |t| {
        let d = parse_duration(t)?;
        if d < Duration::from_millis(100) || d > Duration::from_secs(3600) {
            return Err(DurationError::OutOfRange(
                "must be from 100ms to 1h, like \"30s\"",
            ));
        }
        Ok(d)
    }) {
        c.tcp_idle = v.value;
    }
    c
}

#[cfg(test)]
mod tests {
    use crate::config::Config;
    use std::time::Duration;

    #[test]
    fn reads_trunks_and_limits() {
        let text = "[trunk]\nmax_calls = 7\n[[trunks]]\nname = \"p1\"\nallow = [\"192.0.2.0/24\"]\nmax_calls = 3\n\
                    [[trunks]]\nname = \"p2\"\nallow = [\"198.51.100.1\"]\n\
                    [limits]\nmax_calls = 9\nmax_ivr_calls = 4\nretry_after = \"30s\"\nsip_rate = 50\nsip_burst = 60\n";
        let c = Config::from_toml(text, "t").unwrap();
        assert_eq!(c.trunk.max_calls, Some(7));
        assert_eq!(c.trunks.len(), 2);
        assert_eq!(
            (c.trunks[0].name.as_str(), c.trunks[0].max_calls),
            ("p1", Some(3))
        );
        assert_eq!(c.trunks[1].max_calls, None);
        assert_eq!(c.limits.max_calls, 9);
        assert_eq!(c.limits.max_ivr_calls, 4);
        assert_eq!(c.limits.retry_after, Duration::from_secs(30));
        assert_eq!((c.limits.sip_rate, c.limits.sip_burst), (50, 60));
        assert_eq!(c.limits.tcp_per_source, 64, "the default");
        assert_eq!(c.limits.tcp_idle, Duration::from_secs(30), "the default");
    }

    #[test]
    fn reads_connection_limits_and_refuses_an_idle_time_out_of_range() {
        let text = "[limits]\ntcp_per_source = 5\ntcp_total = 50\ntcp_idle = \"1500ms\"\n";
        let c = Config::from_toml(text, "t").unwrap();
        assert_eq!((c.limits.tcp_per_source, c.limits.tcp_total), (5, 50));
        assert_eq!(c.limits.tcp_idle, Duration::from_millis(1500));
        let err = Config::from_toml("[limits]\ntcp_idle = \"0s\"\n", "t").unwrap_err();
        assert!(err.to_string().contains("tcp_idle"), "{err}");
        let err = Config::from_toml("[limits]\ntcp_total = 0\n", "t").unwrap_err();
        assert!(err.to_string().contains("tcp_total"), "{err}");
    }

    #[test]
    fn warns_about_srtp_without_tls_and_an_ivr_limit_that_never_applies() {
        let c = Config::from_toml(
            "[trunk]\nsrtp = \"required\"\n[limits]\nmax_calls = 5\nmax_ivr_calls = 6\n",
            "t",
        )
        .unwrap();
        let w = c.warnings().join("\n");
        assert!(w.contains("trunk.srtp: SRTP keys travel"), "{w}");
        assert!(w.contains("limits.max_ivr_calls: above"), "{w}");
        assert!(!Config::embedded_default()
            .warnings()
            .join("")
            .contains("srtp"));
    }

    #[test]
    fn reads_a_registration_and_hides_its_password() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("p");
        std::fs::write(&file, "hunter2\n").unwrap();
        let text = format!(
            "[[trunks]]\nname = \"p\"\n[trunks.register]\nregistrar = \"sip:127.0.0.1:5070\"\n\
             username = \"4930\"\npassword_file = \"{}\"\nexpires = \"10m\"\n",
            file.display()
        );
        let c = Config::from_toml(&text, "t").unwrap();
        let r = c.trunks[0].register.as_ref().unwrap();
        assert_eq!(r.registrar, "sip:127.0.0.1:5070");
        assert_eq!(r.registrar_addr, "127.0.0.1:5070".parse().unwrap());
        assert_eq!(r.password.expose(), "hunter2");
        assert_eq!(r.expires, Duration::from_secs(600));
        assert!(c.trunks[0].allow.is_empty());
        assert!(!format!("{c:?}").contains("hunter2"));
    }

    #[test]
    fn rejects_broken_trunks_and_limits_with_key_and_line() {
        let cases: &[(&str, &str, usize, &str)] = &[
            ("[[trunks]]\nallow = [\"10.0.0.0/8\"]\n", "trunks[0].name", 1, "missing"),
            ("[[trunks]]\nname = \"a\"\n", "trunks[0].allow", 1, "missing"),
            ("[[trunks]]\nname = \"a\"\nallow = [\"10.0.0.0/99\"]\n", "trunks[0].allow[0]", 3, "prefix"),
            ("[[trunks]]\nname = \"a\"\nallow = [\"10.0.0.1\"]\n[[trunks]]\nname = \"a\"\nallow = [\"10.0.0.2\"]\n", "trunks[1].name", 5, "unique"),
            ("[[trunks]]\nname = \"a\"\nallow = [\"10.0.0.1\"]\nmax_calls = 0\n", "trunks[0].max_calls", 4, "1 to"),
            ("[trunk]\nmax_calls = -1\n", "trunk.max_calls", 2, "1 to"),
            ("[limits]\nmax_calls = 0\n", "limits.max_calls", 2, "1 to"),
            ("[limits]\nretry_after = \"1500ms\"\n", "limits.retry_after", 2, "whole seconds"),
            ("[limits]\nsip_rate = \"fast\"\n", "limits.sip_rate", 2, "whole number"),
            ("[limits]\nbogus = 1\n", "limits.bogus", 2, "unknown"),
            ("[sip]\ntls_listen = \"127.0.0.1:5061\"\n", "sip.tls_cert", 1, "missing"),
            ("[sip]\ntls_listen = \"5061\"\ntls_cert = \"c\"\ntls_key = \"k\"\n", "sip.tls_listen", 2, "with port"),
            ("[sip]\nsession_min_se = \"1500ms\"\n", "sip.session_min_se", 2, "whole seconds"),
            ("[sip]\nearly_media = \"yes\"\n", "sip.early_media", 2, ""),
            ("[trunk]\nsrtp = \"always\"\n", "trunk.srtp", 2, "required"),
            ("[[trunks]]\nname = \"a\"\nallow = [\"10.0.0.1\"]\nsrtp = 1\n", "trunks[0].srtp", 4, "string"),
            ("[[trunks]]\nname = \"a\"\n[trunks.register]\nregistrar = \"sip:127.0.0.1\"\nusername = \"u\"\n", "trunks[0].register.password_file", 3, "password_env"),
            ("[[trunks]]\nname = \"a\"\n[trunks.register]\nregistrar = \"sip:127.0.0.1\"\nusername = \"u\"\npassword_env = \"DIALIN_NO_SUCH_VARIABLE\"\n", "trunks[0].register.password_env", 6, "not set"),
            ("[[trunks]]\nname = \"a\"\n[trunks.register]\nregistrar = \"sip:127.0.0.1\"\nusername = \"u\"\npassword_file = \"/nonexistent/p\"\n", "trunks[0].register.password_file", 6, "cannot read"),
            ("[[trunks]]\nname = \"a\"\n[trunks.register]\nusername = \"u\"\npassword_env = \"HOME\"\n", "trunks[0].register.registrar", 3, "missing"),
            ("[[trunks]]\nname = \"a\"\n[trunks.register]\nregistrar = \"sip:127.0.0.1\"\nusername = \"a b\"\npassword_env = \"HOME\"\n", "trunks[0].register.username", 5, "printable"),
        ];
        for (text, key, line, needle) in cases {
            let errors = Config::from_toml(text, "t").unwrap_err();
            let hit = errors
                .errors
                .iter()
                .find(|e| e.key == *key)
                .unwrap_or_else(|| panic!("no problem for {key} in {errors:?}"));
            assert_eq!(hit.line, Some(*line), "{key}");
            assert!(hit.message.contains(needle), "{key}: {}", hit.message);
        }
    }
}
