//! Where the store is, worked out once from `[store]` and the environment before anything opens
//! it: so `dialin pins` and `dialin serve` can say which store they use (with any password
//! masked), and a SQLite path is absolute, the same whatever the process does later.

use super::StoreError;
use std::fmt;
use std::path::{Path, PathBuf};

/// Where the URL came from: it decides what an operator must change when it is the wrong store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// No `[store]` URL: `dialin-pins.db` in `$STATE_DIRECTORY` or the working directory.
    Default,
    /// The config key that gave the URL (`store.url`, `store.url_file`, `store.url_env`).
    Configured(&'static str),
}

/// A resolved store location. `Display` shows it with any password masked; [`Location::url`]
/// is the real URL, only for connecting.
#[derive(Clone)]
pub struct Location {
    /// The URL to connect to (a SQLite path made absolute). May hold a password.
    url: String,
    /// `sqlite` or `postgres`.
    kind: &'static str,
    /// The SQLite file (absolute), `None` for PostgreSQL and in-memory SQLite.
    file: Option<PathBuf>,
    /// Whether the path was relative, so it depends on the working directory.
    relative: bool,
    /// Where the URL came from.
    origin: Origin,
}

/// The file name of the default store.
pub const DEFAULT_FILE: &str = "dialin-pins.db";

impl Location {
    /// The location a `[store]` key (`key`: `store.url`, `store.url_file` or `store.url_env`)
    /// names with `url`; errors name that key.
    pub fn configured(url: &str, key: &'static str) -> Result<Location, StoreError> {
        Location::parse(url, Origin::Configured(key))
    }

    /// The default location: `dialin-pins.db` in `$STATE_DIRECTORY` (set by systemd's
    /// `StateDirectory=`), else in the working directory.
    pub fn default_file() -> Result<Location, StoreError> {
        let dir = std::env::var_os("STATE_DIRECTORY").map(PathBuf::from);
        let relative = dir.as_ref().is_none_or(|d| d.is_relative());
        let file = dir.unwrap_or_default().join(DEFAULT_FILE);
        let mut at = Location::parse(&format!("sqlite://{}", file.display()), Origin::Default)?;
        at.relative = relative;
        Ok(at)
    }

    /// Parses `sqlite://<path>[?options]`, `sqlite::memory:` or `postgres://...`.
    pub fn parse(url: &str, origin: Origin) -> Result<Location, StoreError> {
        let key = match origin {
            Origin::Configured(key) => key,
            Origin::Default => "store.url",
        };
        let bad = |why: &str| StoreError::BadUrl {
            key,
            why: why.to_string(),
        };
        if let Some(rest) = url.strip_prefix("sqlite://") {
            let (path, options) = match rest.split_once('?') {
                Some((p, o)) => (p, Some(o)),
                None => (rest, None),
            };
            if path.is_empty() {
                return Err(bad(
                    "sqlite:// needs a file path, like sqlite:///var/lib/dialin/dialin-pins.db",
                ));
            }
            let file = std::path::absolute(path)
                .map_err(|e| bad(&format!("cannot resolve the path ({e})")))?;
            let url = match options {
                Some(o) => format!("sqlite://{}?{o}", file.display()),
                None => format!("sqlite://{}", file.display()),
            };
            Ok(Location {
                url,
                kind: "sqlite",
                relative: Path::new(path).is_relative(),
                file: Some(file),
                origin,
            })
        } else if url == "sqlite::memory:" {
            Ok(Location {
                url: url.to_string(),
                kind: "sqlite",
                file: None,
                relative: false,
                origin,
            })
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Location {
                url: url.to_string(),
                kind: "postgres",
                file: None,
                relative: false,
                origin,
            })
        } else {
            Err(bad(
                "must start with sqlite:// (a file) or postgres:// (a server)",
            ))
        }
    }

    /// The URL to connect with. It may hold a password: never print it (print `self`).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// `sqlite` or `postgres`.
    pub fn kind(&self) -> &'static str {
        self.kind
    }

    /// The SQLite file (an absolute path), if the store is one.
    pub fn file(&self) -> Option<&Path> {
        self.file.as_deref()
    }

    /// Whether the configured path was relative: it then depends on the working directory,
    /// which differs between an admin's shell and the service.
    pub fn is_relative(&self) -> bool {
        self.relative
    }

    /// Where the URL came from.
    pub fn origin(&self) -> Origin {
        self.origin
    }

    /// The config key to name in a message about this location.
    pub fn key(&self) -> &'static str {
        match self.origin {
            Origin::Configured(key) => key,
            Origin::Default => "store.url",
        }
    }
}

impl fmt::Display for Location {
    /// The URL with any password replaced by `***`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&mask_password(&self.url))
    }
}

impl fmt::Debug for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Location({self})")
    }
}

/// `url` with the password of its user-info part (`user:password@`) and any `password=`
/// query option replaced by `***`.
pub fn mask_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (main, query) = match rest.split_once('?') {
        Some((m, q)) => (m, Some(q)),
        None => (rest, None),
    };
    // The user info ends at the last '@' (a password may hold an unescaped '@' or '/').
    let main = match main.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{user}:***@{host}"),
            None => main.to_string(),
        },
        None => main.to_string(),
    };
    let query = query.map(|q| {
        q.split('&')
            .map(|pair| match pair.split_once('=') {
                Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                _ => pair.to_string(),
            })
            .collect::<Vec<_>>()
            .join("&")
    });
    match query {
        Some(q) => format!("{scheme}://{main}?{q}"),
        None => format!("{scheme}://{main}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_masked_and_nothing_else_changes() {
        let cases = [
            (
                "postgres://u:s3cret@db.example:5432/dialin",
                "postgres://u:***@db.example:5432/dialin",
            ),
            ("postgresql://u:s3@cr/et@h/db", "postgresql://u:***@h/db"),
            (
                "postgres://u@h/db?sslmode=require&password=s3cret",
                "postgres://u@h/db?sslmode=require&password=***",
            ),
            ("postgres://h/db", "postgres://h/db"),
            (
                "sqlite:///var/lib/dialin/dialin-pins.db",
                "sqlite:///var/lib/dialin/dialin-pins.db",
            ),
            ("sqlite::memory:", "sqlite::memory:"),
        ];
        for (url, shown) in cases {
            assert_eq!(mask_password(url), shown);
            let at = Location::parse(url, Origin::Configured("store.url")).unwrap();
            assert_eq!(at.to_string(), shown);
            assert_eq!(format!("{at:?}"), format!("Location({shown})"));
            assert_eq!(at.url(), url, "the URL to connect with is unchanged");
        }
    }

    #[test]
    fn sqlite_paths_become_absolute_and_remember_they_were_relative() {
        let cwd = std::env::current_dir().unwrap();
        let at = Location::parse("sqlite://state/p.db?mode=rw", Origin::Default).unwrap();
        assert_eq!(at.file(), Some(cwd.join("state/p.db").as_path()));
        assert_eq!(
            at.url(),
            format!("sqlite://{}?mode=rw", cwd.join("state/p.db").display())
        );
        assert!(at.is_relative());
        let at = Location::parse("sqlite:///var/lib/dialin/p.db", Origin::Default).unwrap();
        assert_eq!(at.file(), Some(Path::new("/var/lib/dialin/p.db")));
        assert!(!at.is_relative());
        assert_eq!(at.kind(), "sqlite");
    }

    #[test]
    fn bad_urls_name_the_key_they_came_from() {
        for (url, key) in [
            ("mysql://x", "store.url_env"),
            ("sqlite://", "store.url_file"),
        ] {
            let e = Location::parse(url, Origin::Configured(key)).unwrap_err();
            assert!(e.to_string().starts_with(&format!("{key}: ")), "{e}");
        }
    }
}
