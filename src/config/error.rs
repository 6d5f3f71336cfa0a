//! Configuration problems, collected rather than thrown, so `dialin check` shows all at once.

use std::fmt;
use std::ops::Range;

/// One problem in a configuration file: where it is and what to do about it.
///
/// Messages never contain a PIN or conference number, so the whole list is safe to print.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// The 1-based line of the offending key, if the problem has a place in the file.
    pub line: Option<usize>,
    /// The key path (`ivr.pin_min_digits`, `servers[1].sip`); empty for whole-file problems.
    pub key: String,
    /// What is wrong and what to do.
    pub message: String,
}

/// Every problem found in one configuration file, in file order.
///
/// `Display` prints one problem per line as `<origin>:<line>: <key.path>: <message>`, the
/// format editors and CI logs link to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigErrors {
    /// Where the text came from (the file path, or a label such as `<embedded>`).
    pub origin: String,
    /// The problems, sorted by line; never empty.
    pub errors: Vec<ConfigError>,
}

impl ConfigErrors {
    /// A single problem without a place in the file (for example: the file cannot be read).
    pub fn whole_file(origin: &str, message: impl Into<String>) -> ConfigErrors {
        ConfigErrors {
            origin: origin.to_string(),
            errors: vec![ConfigError {
                line: None,
                key: String::new(),
                message: message.into(),
            }],
        }
    }

    /// The problems.
    pub fn iter(&self) -> impl Iterator<Item = &ConfigError> {
        self.errors.iter()
    }

    /// How many problems there are.
    pub fn len(&self) -> usize {
        self.errors.len()
    }

    /// Always false for a returned error; present for API completeness.
    pub fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.errors.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{}", self.origin)?;
            if let Some(line) = e.line {
                write!(f, ":{line}")?;
            }
            if !e.key.is_empty() {
                write!(f, ": {}", e.key)?;
            }
            write!(f, ": {}", e.message)?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// Collects problems while the configuration is read, turning byte spans into line numbers.
pub(super) struct Problems<'t> {
    /// The configuration text, to count lines in.
    text: &'t str,
    /// What was found so far.
    found: Vec<ConfigError>,
}

impl<'t> Problems<'t> {
    /// An empty collector over `text`.
    pub(super) fn new(text: &'t str) -> Problems<'t> {
        Problems {
            text,
            found: Vec::new(),
        }
    }

    /// The 1-based line containing byte offset `span.start`.
    pub(super) fn line(&self, span: Option<Range<usize>>) -> Option<usize> {
        let start = span?.start.min(self.text.len());
        let before = self.text.get(..start).unwrap_or(self.text);
        Some(before.bytes().filter(|&b| b == b'\n').count() + 1)
    }

    /// Records a problem.
    pub(super) fn push(
        &mut self,
        line: Option<usize>,
        key: impl Into<String>,
        message: impl Into<String>,
    ) {
        self.found.push(ConfigError {
            line,
            key: key.into(),
            message: message.into(),
        });
    }

    /// Finishes: `Err` with every problem in line order, or `Ok(value)` if there was none.
    pub(super) fn finish<T>(mut self, origin: &str, value: T) -> Result<T, ConfigErrors> {
        if self.found.is_empty() {
            return Ok(value);
        }
        self.found.sort_by_key(|e| e.line);
        Err(ConfigErrors {
            origin: origin.to_string(),
            errors: self.found,
        })
    }
}
