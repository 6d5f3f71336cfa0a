//! `[store]`: where the PIN mappings live. The URL may name a PostgreSQL server with its
//! password, so besides `url` it can come from a file (`url_file`) or an environment variable
//! (`url_env`), read at load time like the Event Socket password; it is never printed.

use super::error::Problems;
use super::reader::Section;

/// `[store]`: the PIN-mapping store.
#[derive(Clone, PartialEq, Eq)]
pub struct StoreConfig {
    /// `sqlite://<path>` or `postgres://...`, from `url`, `url_file` or `url_env`; `None` uses
    /// the default of [`StoreConfig::location`] (a SQLite file in
    /// `$STATE_DIRECTORY` or the working directory). May hold a password: print it only through
    /// [`crate::store::location::Location`], which masks it.
    pub url: Option<String>,
    /// The key that gave `url` (`store.url`, `store.url_file` or `store.url_env`), so a
    /// message about the URL names the key the operator has to change.
    pub url_key: &'static str,
}

impl Default for StoreConfig {
    fn default() -> StoreConfig {
        StoreConfig {
            url: None,
            url_key: "store.url",
        }
    }
}

impl std::fmt::Debug for StoreConfig {
    /// Hides the URL: a PostgreSQL URL may carry a password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreConfig")
            .field("url", &self.url.as_ref().map(|_| "<hidden>"))
            .field("url_key", &self.url_key)
            .finish()
    }
}

/// Why a store URL was refused. The message never echoes the value (it may hold a password).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
enum StoreUrlError {
    /// Neither a SQLite file nor a PostgreSQL URL.
    #[error("must be \"sqlite://<path of a file>\" or \"postgres://user@host/database\"")]
    NotSqliteOrPostgres,
}

/// What a store URL must look like; the check never echoes the value.
fn check_url(t: &str) -> Result<String, StoreUrlError> {
    let t = t.trim();
    let ok = t.starts_with("postgres://")
        || t.starts_with("postgresql://")
        || (t.starts_with("sqlite://") && t.len() > "sqlite://".len());
    ok.then(|| t.to_string())
        .ok_or(StoreUrlError::NotSqliteOrPostgres)
}

/// `[store]`: exactly one of `url`, `url_file`, `url_env`, or none for the default.
pub(super) fn section(root: &Section<'_>, p: &mut Problems<'_>) -> StoreConfig {
    let s = root.table(p, "store", &["url", "url_file", "url_env"]);
    let given: Vec<&str> = ["url", "url_file", "url_env"]
        .into_iter()
        .filter(|k| s.has(k))
        .collect();
    if given.len() > 1 {
        let message = format!("set only one of {}; keep one", given.join(", "));
        p.push(s.line, s.path_of(given[1]), message);
        return StoreConfig::default();
    }
    let mut c = StoreConfig::default();
    if let Some(v) = s.parsed(p, "url", check_url) {
        c.url = Some(v.value);
    }
    if let Some(f) = s.string(p, "url_file") {
        c.url_key = "store.url_file";
        match std::fs::read_to_string(f.value) {
            Ok(text) => match check_url(text.lines().next().unwrap_or("")) {
                Ok(url) => c.url = Some(url),
                Err(why) => p.push(f.line, f.path, format!("the file's first line {why}")),
            },
            Err(e) => p.push(
                f.line,
                f.path,
                format!("cannot read the file ({e}); check the path and that dialin may read it"),
            ),
        }
    }
    if let Some(e) = s.string(p, "url_env") {
        c.url_key = "store.url_env";
        match std::env::var(e.value) {
            Ok(text) if !text.trim().is_empty() => match check_url(&text) {
                Ok(url) => c.url = Some(url),
                Err(why) => p.push(e.line, e.path, format!("the variable's value {why}")),
            },
            _ => p.push(
                e.line,
                e.path,
                "this environment variable is not set or empty; export the store URL in it",
            ),
        }
    }
    c
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    /// The (key, message) of every problem in `text`.
    fn problems(text: &str) -> Vec<(String, String)> {
        match Config::from_toml(text, "t.toml") {
            Ok(_) => panic!("expected errors for:\n{text}"),
            Err(e) => e.errors.into_iter().map(|e| (e.key, e.message)).collect(),
        }
    }

    #[test]
    fn url_inline_from_a_file_or_from_the_environment() {
        let c = Config::from_toml("", "t").unwrap();
        assert_eq!((c.store.url, c.store.url_key), (None, "store.url"));

        let c = Config::from_toml("[store]\nurl = \"postgres://u@h/db\"\n", "t").unwrap();
        assert_eq!(c.store.url.as_deref(), Some("postgres://u@h/db"));

        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("store-url");
        std::fs::write(&file, "postgres://u:s3cret@h/db\n# a comment line\n").unwrap();
        let text = format!("[store]\nurl_file = \"{}\"\n", file.display());
        let c = Config::from_toml(&text, "t").unwrap();
        assert_eq!(c.store.url.as_deref(), Some("postgres://u:s3cret@h/db"));
        assert_eq!(c.store.url_key, "store.url_file");
        assert!(!format!("{c:?}").contains("s3cret"), "Debug shows the URL");

        std::env::set_var("DIALIN_TEST_STORE_URL_OK", " sqlite:///tmp/x.db \n");
        let c =
            Config::from_toml("[store]\nurl_env = \"DIALIN_TEST_STORE_URL_OK\"\n", "t").unwrap();
        assert_eq!(c.store.url.as_deref(), Some("sqlite:///tmp/x.db"));
        assert_eq!(c.store.url_key, "store.url_env");
    }

    #[test]
    fn errors_name_the_key_and_never_show_the_value() {
        let dir = tempfile::tempdir().unwrap();
        let bad_file = dir.path().join("bad");
        std::fs::write(&bad_file, "mysql://u:s3cret@h/db\n").unwrap();
        std::env::set_var("DIALIN_TEST_STORE_URL_BAD", "mysql://u:s3cret@h/db");
        let cases = [
            ("url = \"mysql://x\"".to_string(), "store.url", "must be"),
            ("url = \"sqlite://\"".into(), "store.url", "must be"),
            (
                "url_file = \"/nonexistent/url\"".into(),
                "store.url_file",
                "cannot read the file",
            ),
            (
                format!("url_file = \"{}\"", bad_file.display()),
                "store.url_file",
                "first line must be",
            ),
            (
                "url_env = \"DIALIN_TEST_STORE_URL_UNSET\"".into(),
                "store.url_env",
                "not set or empty",
            ),
            (
                "url_env = \"DIALIN_TEST_STORE_URL_BAD\"".into(),
                "store.url_env",
                "value must be",
            ),
            (
                "url = \"sqlite:///a.db\"\nurl_env = \"X\"".into(),
                "store.url_env",
                "set only one of url, url_env",
            ),
            (
                "url_file = \"/f\"\nurl_env = \"X\"".into(),
                "store.url_env",
                "set only one of url_file, url_env",
            ),
            ("urls = \"sqlite:///a.db\"".into(), "store.urls", ""),
        ];
        for (body, key, message) in cases {
            let found = problems(&format!("[store]\n{body}\n"));
            assert_eq!(found.len(), 1, "{body}: {found:?}");
            assert_eq!(found[0].0, key, "{body}");
            assert!(found[0].1.contains(message), "{body}: {}", found[0].1);
            assert!(!found[0].1.contains("s3cret"), "{body}: {}", found[0].1);
        }
    }
}
