//! CSV and JSON forms of a mapping set, for `dialin pins import|export`. Import is all or
//! nothing: every row is parsed and validated first, and every problem is reported with its
//! row (1-based, not counting the CSV header) and field.

use super::model::{Mapping, MappingDoc, NewMapping, Rules};
use std::collections::HashSet;

/// The file formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Comma-separated with a header row: pin,conference,meeting_id,server,label,valid_from,valid_until.
    Csv,
    /// A JSON array of objects with the same fields.
    Json,
}

/// The CSV columns, in order.
const CSV_COLUMNS: [&str; 7] = [
    "pin",
    "conference",
    "meeting_id",
    "server",
    "label",
    "valid_from",
    "valid_until",
];

/// The most rows one import may hold.
pub const MAX_ROWS: usize = super::MAX_MAPPINGS;

/// Parses and validates `text`; on any problem returns every message (`row N: field: reason`).
pub fn import(text: &str, format: Format, rules: &Rules) -> Result<Vec<NewMapping>, Vec<String>> {
    let docs = match format {
        Format::Json => serde_json::from_str::<Vec<MappingDoc>>(text).map_err(|e| {
            vec![format!(
                "not a JSON array of mappings (line {}, column {}): {}",
                e.line(),
                e.column(),
                json_reason(&e)
            )]
        })?,
        Format::Csv => parse_csv(text)?,
    };
    if docs.len() > MAX_ROWS {
        return Err(vec![format!("more than {MAX_ROWS} rows; split the file")]);
    }
    let mut out = Vec::new();
    let mut errors = Vec::new();
    let mut seen = HashSet::new();
    for (i, doc) in docs.iter().enumerate() {
        let row = i + 1;
        match rules.validate(doc, None) {
            Ok(m) => {
                if !seen.insert(m.pin.clone()) {
                    errors.push(format!(
                        "row {row}: pin: appears in an earlier row; every PIN must be unique"
                    ));
                }
                out.push(m);
            }
            Err(es) => errors.extend(es.into_iter().map(|e| format!("row {row}: {e}"))),
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

/// serde_json's message without any echoed value (it may quote a PIN).
fn json_reason(e: &serde_json::Error) -> &'static str {
    use serde_json::error::Category;
    match e.classify() {
        Category::Syntax | Category::Eof => "JSON syntax error",
        Category::Data => "wrong shape: expected [{\"pin\": \"...\", \"conference\": \"...\"}, ...] with string values and only known fields",
        Category::Io => "read error",
    }
}

/// Reads CSV with a header naming (some of) [`CSV_COLUMNS`].
fn parse_csv(text: &str) -> Result<Vec<MappingDoc>, Vec<String>> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let header: Vec<String> = reader
        .headers()
        .map_err(|_| vec!["cannot read the CSV header row".to_string()])?
        .iter()
        .map(str::to_string)
        .collect();
    if let Some(bad) = header.iter().find(|h| !CSV_COLUMNS.contains(&h.as_str())) {
        return Err(vec![format!(
            "header: unknown column {bad:?}; use {}",
            CSV_COLUMNS.join(",")
        )]);
    }
    let mut docs = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let record = record.map_err(|_| {
            vec![format!(
                "row {}: not valid CSV (a wrong number of fields or broken quotes)",
                i + 1
            )]
        })?;
        let mut doc = MappingDoc::default();
        for (name, value) in header.iter().zip(record.iter()) {
            let v = (!value.is_empty()).then(|| value.to_string());
            match name.as_str() {
                "pin" => doc.pin = v,
                "conference" => doc.conference = v,
                "meeting_id" => doc.meeting_id = v,
                "server" => doc.server = v,
                "label" => doc.label = v,
                "valid_from" => doc.valid_from = v,
                _ => doc.valid_until = v,
            }
        }
        docs.push(doc);
    }
    Ok(docs)
}

/// Writes `mappings` in `format`.
pub fn export(mappings: &[Mapping], format: Format) -> String {
    match format {
        Format::Json => {
            let docs: Vec<MappingDoc> = mappings.iter().map(Mapping::to_doc).collect();
            serde_json::to_string_pretty(&docs).expect("strings always serialise") + "\n"
        }
        Format::Csv => {
            let mut w = csv::Writer::from_writer(Vec::new());
            w.write_record(CSV_COLUMNS).expect("write to memory");
            for m in mappings {
                let d = m.to_doc();
                let f = |v: &Option<String>| v.clone().unwrap_or_default();
                w.write_record([
                    f(&d.pin),
                    f(&d.conference),
                    f(&d.meeting_id),
                    f(&d.server),
                    f(&d.label),
                    f(&d.valid_from),
                    f(&d.valid_until),
                ])
                .expect("write to memory");
            }
            String::from_utf8(w.into_inner().expect("flush to memory"))
                .expect("CSV of UTF-8 is UTF-8")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Pin;

    fn rules() -> Rules {
        Rules {
            pin_digits: 5..=11,
            echo_pin: Pin::new("00000"),
            servers: vec!["bbb1".into()],
            reserved: Default::default(),
        }
    }

    #[test]
    fn csv_errors_name_row_and_field() {
        let text =
            "pin,conference,server\n12345,71234,bbb1\n12a45,71234,\n12345,71234,\n5555,1,nope\n";
        let errors = import(text, Format::Csv, &rules()).unwrap_err();
        let want = [
            "row 2: pin: must be digits only",
            "row 3: pin: appears in an earlier row",
            "row 4: pin: has 4 digits",
            "row 4: server: unknown server",
            "row 4: conference: must be",
        ];
        for w in want {
            assert!(
                errors.iter().any(|e| e.starts_with(w)),
                "{w} not in {errors:?}"
            );
        }
        assert_eq!(errors.len(), want.len(), "{errors:?}");
        let bad_header = import("pin,room\n", Format::Csv, &rules()).unwrap_err();
        assert!(bad_header[0].contains("unknown column"), "{bad_header:?}");
    }

    #[test]
    fn json_round_trip_and_errors() {
        let text = r#"[{"pin":"12345","conference":"71234","label":"Room 1"},
                      {"pin":"23456","meeting_id":"abc-def","server":"bbb1","valid_until":"2030-01-01T00:00:00Z"}]"#;
        let ms = import(text, Format::Json, &rules()).unwrap();
        assert_eq!(ms.len(), 2);
        let stored: Vec<Mapping> = ms
            .iter()
            .map(|m| Mapping {
                pin: m.pin.clone(),
                target: m.target.clone(),
                label: m.label.clone(),
                valid_from: m.valid_from,
                valid_until: m.valid_until,
                created_at: 0,
                updated_at: 0,
            })
            .collect();
        for format in [Format::Json, Format::Csv] {
            let again = import(&export(&stored, format), format, &rules()).unwrap();
            assert_eq!(again, ms, "{format:?}");
        }
        let e = import(r#"[{"pin": 12345}]"#, Format::Json, &rules()).unwrap_err();
        assert!(
            e[0].contains("wrong shape") && !e[0].contains("12345"),
            "{e:?}"
        );
        let e = import(
            r#"[{"pin":"1","conference":"71234"}]"#,
            Format::Json,
            &rules(),
        )
        .unwrap_err();
        assert!(e[0].starts_with("row 1: pin:"), "{e:?}");
    }
}
