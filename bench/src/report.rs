//! The results: one entry per target (value, unit, target, pass) plus the dialin/rtpengine
//! ratios and informational readings, written as JSON and as a Markdown table.

/// One reading.
#[derive(Clone, Debug)]
pub struct Metric {
    /// Stable identifier (snake_case).
    pub name: String,
    /// The measured value; `None` when it could not be measured in this run.
    pub value: Option<f64>,
    /// Unit of `value`.
    pub unit: String,
    /// The target as text (`<= 0.7`), or `None` for a reading without a target.
    pub target: Option<String>,
    /// Whether the target holds; `None` without a target or without a value.
    pub pass: Option<bool>,
    /// What was measured and under which load, in words.
    pub note: String,
}

/// How a target compares.
#[derive(Clone, Copy)]
#[allow(dead_code)] // AtLeast is used by the tests and kept for future targets
pub enum Cmp {
    /// value ≤ limit
    AtMost(f64),
    /// value ≥ limit
    AtLeast(f64),
}

impl Metric {
    /// A reading checked against a target.
    pub fn target(name: &str, value: Option<f64>, unit: &str, cmp: Cmp, note: &str) -> Metric {
        let (text, pass) = match cmp {
            Cmp::AtMost(l) => (format!("<= {l}"), value.map(|v| v <= l)),
            Cmp::AtLeast(l) => (format!(">= {l}"), value.map(|v| v >= l)),
        };
        Metric {
            name: name.into(),
            value,
            unit: unit.into(),
            target: Some(text),
            pass,
            note: note.into(),
        }
    }

    /// A reading without a target.
    pub fn info(name: &str, value: Option<f64>, unit: &str, note: &str) -> Metric {
        Metric {
            name: name.into(),
            value,
            unit: unit.into(),
            target: None,
            pass: None,
            note: note.into(),
        }
    }

    /// A target whose pass/fail is decided by the caller (compound targets).
    pub fn decided(
        name: &str,
        value: Option<f64>,
        unit: &str,
        target: &str,
        pass: bool,
        note: &str,
    ) -> Metric {
        Metric {
            name: name.into(),
            value,
            unit: unit.into(),
            target: Some(target.into()),
            pass: Some(pass),
            note: note.into(),
        }
    }
}

/// A JSON string literal.
pub fn json_str(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn json_num(v: Option<f64>) -> String {
    match v {
        Some(v) if v.is_finite() => {
            let r = (v * 10_000.0).round() / 10_000.0;
            format!("{r}")
        }
        _ => "null".into(),
    }
}

/// The metrics as a JSON list of `{"name","value","unit","target","pass","note"}`.
pub fn to_json(metrics: &[Metric]) -> String {
    let items: Vec<String> = metrics
        .iter()
        .map(|m| {
            format!(
                "  {{\"name\": {}, \"value\": {}, \"unit\": {}, \"target\": {}, \"pass\": {}, \"note\": {}}}",
                json_str(&m.name),
                json_num(m.value),
                json_str(&m.unit),
                m.target.as_deref().map_or("null".into(), json_str),
                m.pass.map_or("null".into(), |p| p.to_string()),
                json_str(&m.note)
            )
        })
        .collect();
    format!("[\n{}\n]\n", items.join(",\n"))
}

/// A value for the table: 3 significant decimals at most.
pub fn show(v: Option<f64>) -> String {
    match v {
        None => "n/a".into(),
        Some(v) if v.abs() >= 100.0 => format!("{v:.0}"),
        Some(v) if v.abs() >= 10.0 => format!("{v:.1}"),
        Some(v) => format!("{v:.3}"),
    }
}

/// The metrics as a Markdown table, headed by the run's context lines.
pub fn to_markdown(context: &[(&str, String)], metrics: &[Metric]) -> String {
    let mut out = String::new();
    for (k, v) in context {
        out.push_str(&format!("- **{k}**: {v}\n"));
    }
    out.push_str(
        "\n| measure | value | unit | target | pass | note |\n|---|---|---|---|---|---|\n",
    );
    for m in metrics {
        let pass = match m.pass {
            Some(true) => "yes",
            Some(false) => "**no**",
            None => "",
        };
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} |\n",
            m.name,
            show(m.value),
            m.unit,
            m.target.as_deref().unwrap_or(""),
            pass,
            m.note
        ));
    }
    out
}

/// Marks the start of the benchmark table in README.md.
pub const README_START: &str = "<!-- bench:start -->";
/// Marks its end.
pub const README_END: &str = "<!-- bench:end -->";

/// The short table for the README: the targets and the ratios, headed by the run's load.
pub fn readme_table(context: &[(&str, String)], metrics: &[Metric]) -> String {
    let mut out = String::new();
    for (k, v) in context.iter().filter(|(k, _)| *k != "note") {
        out.push_str(&format!("{k}: {v}  \n"));
    }
    out.push_str("\n| measure | value | target | pass |\n|---|---|---|---|\n");
    for m in metrics.iter().filter(|m| {
        m.target.is_some() || m.name.contains("_vs_") || m.name.ends_with("cpu_per_packet")
    }) {
        let pass = match m.pass {
            Some(true) => "yes",
            Some(false) => "**no**",
            None => "",
        };
        out.push_str(&format!(
            "| {} | {} {} | {} | {} |\n",
            m.name,
            show(m.value),
            m.unit,
            m.target.as_deref().unwrap_or(""),
            pass
        ));
    }
    out
}

/// `readme` with the text between [`README_START`] and [`README_END`] replaced by `table`;
/// `None` if the markers are missing.
pub fn replace_readme_table(readme: &str, table: &str) -> Option<String> {
    let start = readme.find(README_START)? + README_START.len();
    let end = start + readme[start..].find(README_END)?;
    Some(format!("{}\n{table}{}", &readme[..start], &readme[end..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_has_one_object_per_metric_with_pass() {
        let ms = vec![
            Metric::target("cpu", Some(0.5), "ratio", Cmp::AtMost(0.7), "a \"q\""),
            Metric::target("rate", Some(150.0), "calls/s", Cmp::AtLeast(200.0), ""),
            Metric::info("rss", None, "MB", ""),
        ];
        let j = to_json(&ms);
        assert!(j.starts_with("[\n") && j.ends_with("]\n"), "{j}");
        assert!(j.contains(r#"{"name": "cpu", "value": 0.5, "unit": "ratio", "target": "<= 0.7", "pass": true, "note": "a \"q\""}"#), "{j}");
        assert!(j.contains(r#""name": "rate", "value": 150, "unit": "calls/s", "target": ">= 200", "pass": false"#), "{j}");
        assert!(
            j.contains(
                r#""name": "rss", "value": null, "unit": "MB", "target": null, "pass": null"#
            ),
            "{j}"
        );
        let md = to_markdown(&[("commit", "abc".into())], &ms);
        assert!(md.contains("- **commit**: abc"));
        assert!(
            md.contains("| rate | 150 | calls/s | >= 200 | **no** |"),
            "{md}"
        );
        let table = readme_table(&[("commit", "abc".into())], &ms);
        assert!(
            table.contains("| cpu | 0.500 ratio | <= 0.7 | yes |"),
            "{table}"
        );
        assert!(
            !table.contains("| rss |"),
            "rows without a target stay out: {table}"
        );
    }

    #[test]
    fn readme_table_goes_between_the_markers() {
        let readme = format!("# x\n{README_START}\nold\n{README_END}\nrest\n");
        let new = replace_readme_table(&readme, "new\n").expect("markers present");
        assert_eq!(
            new,
            format!("# x\n{README_START}\nnew\n{README_END}\nrest\n")
        );
        assert_eq!(replace_readme_table("# no markers", "t"), None);
    }
}
