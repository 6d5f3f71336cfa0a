//! Reading typed values out of a span-preserving TOML document, recording a problem (with key
//! path and line) for every value of the wrong type or shape instead of stopping at the first.

use toml_edit::{Item, TableLike};

use super::error::Problems;

/// A value read from the file, with where it was, for checks that involve several keys.
#[derive(Clone, Debug)]
pub(super) struct Spanned<T> {
    /// The value.
    pub value: T,
    /// The full key path, for messages.
    pub path: String,
    /// The 1-based line of its key.
    pub line: Option<usize>,
}

/// One table of the file (`[sip]`, one `[[servers]]` entry, or the root), possibly absent.
pub(super) struct Section<'d> {
    /// The key path of the table (`""`, `"sip"`, `"servers[0]"`).
    path: String,
    /// The table, or `None` when the file leaves it out (every key then takes its default).
    table: Option<&'d dyn TableLike>,
    /// The line of the table's header, for problems about keys that are missing.
    pub line: Option<usize>,
}

impl<'d> Section<'d> {
    /// The document's root table.
    pub(super) fn root(table: &'d dyn TableLike) -> Section<'d> {
        Section {
            path: String::new(),
            table: Some(table),
            line: None,
        }
    }

    /// The key path of `key` in this table.
    pub(super) fn path_of(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    /// The line of `key` (its key, else its value), if present.
    fn line_of(&self, p: &Problems<'_>, key: &str) -> Option<usize> {
        let table = self.table?;
        let span = table
            .key(key)
            .and_then(|k| k.span())
            .or_else(|| table.get(key)?.span());
        p.line(span)
    }

    /// Records every key not in `known`, so typos never pass silently.
    pub(super) fn reject_unknown(&self, p: &mut Problems<'_>, known: &[&str]) {
        let Some(table) = self.table else { return };
        for (key, _) in table.iter() {
            if !known.contains(&key) {
                let what = if self.path.is_empty() {
                    "section"
                } else {
                    "key"
                };
                let line = self.line_of(p, key);
                let message = format!(
                    "unknown {what}; check the spelling (known here: {})",
                    known.join(", ")
                );
                p.push(line, self.path_of(key), message);
            }
        }
    }

    /// Whether the file sets `key` in this table (whatever its value).
    pub(super) fn has(&self, key: &str) -> bool {
        self.table.is_some_and(|t| t.contains_key(key))
    }

    /// The item at `key`, with its path and line.
    fn item(&self, p: &Problems<'_>, key: &str) -> Option<(&'d Item, String, Option<usize>)> {
        let item = self.table?.get(key)?;
        Some((item, self.path_of(key), self.line_of(p, key)))
    }

    /// The sub-table `[<name>]`; checks its keys against `known`. Absent → an empty section.
    pub(super) fn table(&self, p: &mut Problems<'_>, name: &str, known: &[&str]) -> Section<'d> {
        let mut section = Section {
            path: self.path_of(name),
            table: None,
            line: None,
        };
        if let Some((item, path, line)) = self.item(p, name) {
            section.line = line;
            match item.as_table_like() {
                Some(t) => section.table = Some(t),
                None => p.push(line, path, format!("must be a table; write it as [{name}]")),
            }
        }
        section.reject_unknown(p, known);
        section
    }

    /// The entries of `[[<name>]]` (or an inline array of tables), each checked against `known`.
    pub(super) fn tables(
        &self,
        p: &mut Problems<'_>,
        name: &str,
        known: &[&str],
    ) -> Vec<Section<'d>> {
        let Some((item, path, line)) = self.item(p, name) else {
            return Vec::new();
        };
        let entries: Vec<(Option<&'d dyn TableLike>, Option<usize>)> = match item {
            Item::ArrayOfTables(a) => a
                .iter()
                .map(|t| (Some(t as &dyn TableLike), p.line(t.span())))
                .collect(),
            Item::Value(v) if v.is_array() => v
                .as_array()
                .into_iter()
                .flat_map(|a| a.iter())
                .map(|v| {
                    (
                        v.as_inline_table().map(|t| t as &dyn TableLike),
                        p.line(v.span()),
                    )
                })
                .collect(),
            _ => {
                p.push(
                    line,
                    path,
                    format!("must be a list of tables; write each entry as a [[{name}]] block"),
                );
                return Vec::new();
            }
        };
        let mut sections = Vec::new();
        for (i, (table, line)) in entries.into_iter().enumerate() {
            let path = format!("{path}[{i}]");
            if table.is_none() {
                p.push(
                    line,
                    path.clone(),
                    format!("must be a table; write each entry as a [[{name}]] block"),
                );
            }
            let section = Section { path, table, line };
            section.reject_unknown(p, known);
            sections.push(section);
        }
        sections
    }

    /// A string value; records a problem if it has another type.
    pub(super) fn string(&self, p: &mut Problems<'_>, key: &str) -> Option<Spanned<&'d str>> {
        let (item, path, line) = self.item(p, key)?;
        match item.as_str() {
            Some(value) => Some(Spanned { value, path, line }),
            None => {
                p.push(
                    line,
                    path,
                    format!("must be a string in quotes, not {}", item.type_name()),
                );
                None
            }
        }
    }

    /// A string parsed by `parse`, whose error's message is recorded as is (each value's error
    /// type says what to write instead).
    pub(super) fn parsed<T, E: std::fmt::Display>(
        &self,
        p: &mut Problems<'_>,
        key: &str,
        parse: impl FnOnce(&str) -> Result<T, E>,
    ) -> Option<Spanned<T>> {
        let s = self.string(p, key)?;
        match parse(s.value) {
            Ok(value) => Some(Spanned {
                value,
                path: s.path,
                line: s.line,
            }),
            Err(message) => {
                p.push(s.line, s.path, message.to_string());
                None
            }
        }
    }

    /// An integer within `range`; records a problem otherwise.
    pub(super) fn integer(
        &self,
        p: &mut Problems<'_>,
        key: &str,
        range: std::ops::RangeInclusive<i64>,
    ) -> Option<Spanned<i64>> {
        let (item, path, line) = self.item(p, key)?;
        let (lo, hi) = (range.start(), range.end());
        match item.as_integer() {
            Some(value) if range.contains(&value) => Some(Spanned { value, path, line }),
            Some(_) => {
                p.push(
                    line,
                    path,
                    format!("out of range; use a whole number from {lo} to {hi}"),
                );
                None
            }
            None => {
                let message = format!(
                    "must be a whole number from {lo} to {hi}, not {}",
                    item.type_name()
                );
                p.push(line, path, message);
                None
            }
        }
    }

    /// A boolean; records a problem if it has another type.
    pub(super) fn boolean(&self, p: &mut Problems<'_>, key: &str) -> Option<bool> {
        let (item, path, line) = self.item(p, key)?;
        let value = item.as_bool();
        if value.is_none() {
            p.push(
                line,
                path,
                format!(
                    "must be true or false (without quotes), not {}",
                    item.type_name()
                ),
            );
        }
        value
    }

    /// An array of strings, each with its own path (`key[i]`) and line.
    pub(super) fn strings(&self, p: &mut Problems<'_>, key: &str) -> Option<Vec<Spanned<&'d str>>> {
        let (item, path, line) = self.item(p, key)?;
        let Some(array) = item.as_array() else {
            p.push(
                line,
                path,
                format!(
                    "must be a list of strings like [\"a\", \"b\"], not {}",
                    item.type_name()
                ),
            );
            return None;
        };
        let mut out = Vec::new();
        for (i, v) in array.iter().enumerate() {
            let (path, line) = (format!("{path}[{i}]"), p.line(v.span()).or(line));
            match v.as_str() {
                Some(value) => out.push(Spanned { value, path, line }),
                None => p.push(
                    line,
                    path,
                    format!("must be a string in quotes, not {}", v.type_name()),
                ),
            }
        }
        Some(out)
    }
}
