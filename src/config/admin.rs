//! `[admin]` and `[[bbb_api]]`: the HTTP admin API, and the BBB API endpoints that turn a
//! meeting ID into the running meeting's voiceBridge. (`[store]` is in `store.rs`.)

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::error::Problems;
use super::reader::Section;
use super::values::parse_duration;

/// `[admin]`: the HTTP admin API.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdminConfig {
    /// Where it listens; `None` (`listen = ""`) switches it off. Default `127.0.0.1:8089`.
    pub listen: Option<SocketAddr>,
    /// A file holding the bearer token (first line).
    pub token_file: Option<PathBuf>,
    /// An environment variable holding the bearer token.
    pub token_env: Option<String>,
}

impl Default for AdminConfig {
    fn default() -> AdminConfig {
        AdminConfig {
            listen: Some(SocketAddr::from(([127, 0, 0, 1], 8089))),
            token_file: None,
            token_env: None,
        }
    }
}

pub use crate::bbb_api::settings::{BbbApiConfig, ChecksumAlgorithm};

/// `[admin]`.
pub(super) fn admin(root: &Section<'_>, p: &mut Problems<'_>) -> AdminConfig {
    let s = root.table(p, "admin", &["listen", "token_file", "token_env"]);
    let mut c = AdminConfig::default();
    if let Some(v) = s.parsed(p, "listen", |t| match t.trim() {
        "" => Ok(None),
        t => t.parse::<SocketAddr>().map(Some).map_err(|_| {
            "not an address with port; write it like \"127.0.0.1:8089\", or \"\" to switch the admin API off"
        }),
    }) {
        c.listen = v.value;
    }
    if let Some(v) = s.parsed(p, "token_file", |t| {
        (!t.trim().is_empty())
            .then(|| PathBuf::from(t))
            .ok_or("empty; name a file that holds the admin token")
    }) {
        c.token_file = Some(v.value);
    }
    if let Some(v) = s.parsed(p, "token_env", |t| {
        let ok = !t.is_empty() && t.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        ok.then(|| t.to_string()).ok_or(
            "must be an environment variable name of A-Z, 0-9 and '_', like \"DIALIN_ADMIN_TOKEN\"",
        )
    }) {
        if c.token_file.is_some() {
            let message = "set only one of token_file and token_env";
            p.push(v.line, v.path.clone(), message);
        }
        c.token_env = Some(v.value);
    }
    c
}

/// `[[bbb_api]]`. `declared` are the `[[servers]]` names.
pub(super) fn bbb_api(
    root: &Section<'_>,
    p: &mut Problems<'_>,
    declared: &[String],
) -> Vec<BbbApiConfig> {
    let mut out = Vec::new();
    let known = [
        "url",
        "secret",
        "secret_file",
        "secret_env",
        "server",
        "checksum",
        "timeout",
    ];
    for s in root.tables(p, "bbb_api", &known) {
        let url = s.parsed(p, "url", |t| {
            let ok = (t.starts_with("https://") || t.starts_with("http://")) && t.len() > 8;
            ok.then(|| t.trim_end_matches('/').to_string()).ok_or(
                "must be the API's base URL, like \"https://bbb1.example.org/bigbluebutton/api\"",
            )
        });
        let secret = secret(&s, p);
        if !s.has("url") {
            p.push(
                s.line,
                s.path_of("url"),
                "missing; set url to the API's base URL",
            );
        }
        let server = s.string(p, "server").and_then(|v| {
            if declared.iter().any(|d| d == v.value) {
                Some(v.value.to_string())
            } else {
                p.push(v.line, v.path, "names no [[servers]] entry");
                None
            }
        });
        let checksum = s
            .parsed(p, "checksum", |t| match t {
                "sha256" => Ok(ChecksumAlgorithm::Sha256),
                "sha1" => Ok(ChecksumAlgorithm::Sha1),
                _ => Err("must be \"sha256\" or \"sha1\""),
            })
            .map_or(ChecksumAlgorithm::Sha256, |v| v.value);
        let timeout = s
            .parsed(p, "timeout", parse_duration)
            .map_or(Duration::from_secs(3), |v| v.value);
        if let (Some(url), Some(secret)) = (url, secret) {
            out.push(BbbApiConfig {
                url: url.value,
                secret,
                server,
                checksum,
                timeout,
            });
        }
    }
    out
}

/// The shared secret of one `[[bbb_api]]` entry: inline (`secret`), from the first line of a
/// file (`secret_file`, so the config file can be world-readable) or from an environment
/// variable (`secret_env`, for containers). Exactly one of them; messages never show the value.
fn secret(s: &Section<'_>, p: &mut Problems<'_>) -> Option<String> {
    const KEYS: [&str; 3] = ["secret", "secret_file", "secret_env"];
    let set: Vec<&str> = KEYS.into_iter().filter(|k| s.has(k)).collect();
    if set.len() > 1 {
        let message = format!("set {}; keep exactly one", set.join(" and "));
        p.push(s.line, s.path_of(set[1]), message);
        return None;
    }
    let (text, line, path) = match set.first().copied() {
        None => {
            let message = "missing; set secret_file (a file holding the shared secret, see bbb-conf --secret), secret_env or secret";
            p.push(s.line, s.path_of("secret"), message);
            return None;
        }
        Some("secret") => {
            let v = s.string(p, "secret")?;
            (v.value.to_string(), v.line, v.path)
        }
        Some("secret_file") => {
            let v = s.string(p, "secret_file")?;
            match std::fs::read_to_string(v.value) {
                Ok(text) => (
                    text.lines().next().unwrap_or("").trim().to_string(),
                    v.line,
                    v.path,
                ),
                Err(e) => {
                    let message = format!("cannot read the secret file ({e}); check the path and that dialin may read it");
                    p.push(v.line, v.path, message);
                    return None;
                }
            }
        }
        Some(_) => {
            let v = s.string(p, "secret_env")?;
            match std::env::var(v.value) {
                Ok(text) if !text.trim().is_empty() => (text.trim().to_string(), v.line, v.path),
                _ => {
                    let message = "this environment variable is not set or empty; export the BBB shared secret in it";
                    p.push(v.line, v.path, message);
                    return None;
                }
            }
        }
    };
    if text.len() < 8 {
        let message = "too short or empty; use the server's shared secret (bbb-conf --secret)";
        p.push(line, path, message);
        return None;
    }
    Some(text)
}

#[cfg(test)]
mod tests {
    use crate::config::{ChecksumAlgorithm, Config};

    fn key_of_error(text: &str) -> Vec<String> {
        match Config::from_toml(text, "t.toml") {
            Ok(_) => panic!("expected errors for:\n{text}"),
            Err(e) => e.errors.into_iter().map(|e| e.key).collect(),
        }
    }

    #[test]
    fn defaults_and_values() {
        let c = Config::from_toml("", "t").unwrap();
        assert_eq!(c.admin.listen, Some("127.0.0.1:8089".parse().unwrap()));
        let text = "[[servers]]\nname = \"bbb1\"\nsip = \"sip:10.0.0.1\"\n[store]\nurl = \"postgres://u@h/db\"\n[admin]\nlisten = \"\"\ntoken_env = \"TOK\"\n[[bbb_api]]\nurl = \"https://b/bigbluebutton/api/\"\nsecret = \"0123456789\"\nserver = \"bbb1\"\nchecksum = \"sha1\"\n";
        let c = Config::from_toml(text, "t").unwrap();
        assert_eq!(c.admin.listen, None);
        assert_eq!(c.admin.token_env.as_deref(), Some("TOK"));
        assert_eq!(c.bbb_api[0].url, "https://b/bigbluebutton/api");
        assert_eq!(c.bbb_api[0].checksum, ChecksumAlgorithm::Sha1);
        assert!(!format!("{:?}", c.bbb_api).contains("0123456789"));
    }

    #[test]
    fn errors_name_the_key() {
        let cases = [
            ("[admin]\nlisten = \"localhost\"\n", "admin.listen"),
            ("[admin]\ntoken_file = \"/t\"\ntoken_env = \"T\"\n", "admin.token_env"),
            ("[admin]\ntoken_env = \"A-B\"\n", "admin.token_env"),
            ("[[bbb_api]]\nurl = \"ftp://x\"\nsecret = \"0123456789\"\n", "bbb_api[0].url"),
            ("[[bbb_api]]\nurl = \"https://x/api\"\n", "bbb_api[0].secret"),
            ("[[bbb_api]]\nurl = \"https://x/api\"\nsecret = \"0123456789\"\nserver = \"zz\"\n", "bbb_api[0].server"),
            ("[[bbb_api]]\nurl = \"https://x/api\"\nsecret = \"0123456789\"\nchecksum = \"md5\"\n", "bbb_api[0].checksum"),
        ];
        for (text, key) in cases {
            assert_eq!(key_of_error(text), [key], "{text}");
        }
    }

    /// A `[[bbb_api]]` entry with `url` and the given secret lines.
    fn api(secret_lines: &str) -> String {
        format!("[[bbb_api]]\nurl = \"https://x/bigbluebutton/api\"\n{secret_lines}")
    }

    #[test]
    fn the_secret_comes_from_a_file_or_the_environment() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("bbb1.secret");
        std::fs::write(&file, "  file-secret-0123\nsecond line ignored\n").unwrap();
        let text = api(&format!("secret_file = \"{}\"\n", file.display()));
        let c = Config::from_toml(&text, "t").unwrap();
        assert_eq!(c.bbb_api[0].secret, "file-secret-0123");
        std::env::set_var("DIALIN_TEST_BBB_SECRET", " env-secret-4567 ");
        let c = Config::from_toml(&api("secret_env = \"DIALIN_TEST_BBB_SECRET\"\n"), "t").unwrap();
        assert_eq!(c.bbb_api[0].secret, "env-secret-4567");
        let c = Config::from_toml(&api("secret = \"inline-0123\"\n"), "t").unwrap();
        assert_eq!(c.bbb_api[0].secret, "inline-0123");
    }

    #[test]
    fn secret_errors_name_the_key_and_never_the_secret() {
        let dir = tempfile::tempdir().unwrap();
        let short = dir.path().join("short");
        std::fs::write(&short, "abc\n").unwrap();
        let short = format!("secret_file = \"{}\"\n", short.display());
        let cases = [
            ("", "bbb_api[0].secret", "missing; set secret_file"),
            (
                "secret = \"0123456789\"\nsecret_env = \"HOME\"\n",
                "bbb_api[0].secret_env",
                "set secret and secret_env; keep exactly one",
            ),
            (
                "secret_file = \"/x\"\nsecret_env = \"HOME\"\n",
                "bbb_api[0].secret_env",
                "keep exactly one",
            ),
            (
                "secret_file = \"/nonexistent/bbb.secret\"\n",
                "bbb_api[0].secret_file",
                "cannot read the secret file",
            ),
            (
                "secret_env = \"DIALIN_TEST_BBB_UNSET\"\n",
                "bbb_api[0].secret_env",
                "not set or empty",
            ),
            (short.as_str(), "bbb_api[0].secret_file", "too short"),
            ("secret = \"abc\"\n", "bbb_api[0].secret", "too short"),
        ];
        for (lines, key, says) in cases {
            let text = api(lines);
            let errors = match Config::from_toml(&text, "t.toml") {
                Ok(_) => panic!("expected an error for:\n{text}"),
                Err(e) => e.errors,
            };
            assert_eq!(errors.len(), 1, "{text}: {errors:?}");
            assert_eq!(errors[0].key, key, "{text}");
            let shown = format!("{errors:?}");
            assert!(shown.contains(says), "{text}: {shown}");
            assert!(
                !shown.contains("0123456789") && !shown.contains("abc\""),
                "{shown}"
            );
        }
    }
}
