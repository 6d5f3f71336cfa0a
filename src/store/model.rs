//! A PIN mapping as admins write it (the JSON/CSV shape) and as the store keeps it, and the
//! validation between the two. Validation errors name the field and the reason but never
//! repeat the value: it may be a PIN or a conference number.

use crate::ids::ConferenceId;
use crate::secret::Pin;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::fmt;

/// BBB voiceBridge numbers have 5 digits by default and at most 11.
const CONFERENCE_DIGITS: std::ops::RangeInclusive<usize> = 5..=11;
/// The longest BBB meeting ID accepted (BBB itself puts no small limit; this bounds the store).
const MEETING_ID_MAX: usize = 256;
/// The longest label.
const LABEL_MAX: usize = 200;

/// Where a mapped PIN leads.
#[derive(Clone, PartialEq, Eq)]
pub enum Target {
    /// A conference number (voiceBridge) on a named server, or on the default server.
    Conference {
        /// The voiceBridge.
        conference: ConferenceId,
        /// A `[[servers]]` name; `None` follows the default-server rule.
        server: Option<String>,
    },
    /// A BBB meeting ID, looked up through the BBB API at call time for its voiceBridge.
    Meeting {
        /// The meeting ID as the frontend created it.
        meeting_id: String,
        /// A `[[servers]]` name to ask; `None` asks every server with an API configured.
        server: Option<String>,
    },
}

impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Conference { server, .. } => write!(f, "Conference(<hidden>, {server:?})"),
            Target::Meeting { server, .. } => write!(f, "Meeting(<meeting>, {server:?})"),
        }
    }
}

/// One stored mapping. `Debug` hides the PIN and the target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mapping {
    /// The PIN callers type.
    pub pin: Pin,
    /// Where it leads.
    pub target: Target,
    /// A free-text label for admins (no personal data).
    pub label: Option<String>,
    /// Unix seconds from which the PIN routes; `None`: always.
    pub valid_from: Option<i64>,
    /// Unix seconds from which the PIN no longer routes; `None`: forever.
    pub valid_until: Option<i64>,
    /// When it was created (Unix seconds).
    pub created_at: i64,
    /// When it was last changed (Unix seconds).
    pub updated_at: i64,
}

impl Mapping {
    /// Whether the mapping routes at `now` (Unix seconds).
    pub fn is_valid_at(&self, now: i64) -> bool {
        self.valid_from.is_none_or(|f| now >= f) && self.valid_until.is_none_or(|u| now < u)
    }

    /// The exchange form (API responses, JSON/CSV export).
    pub fn to_doc(&self) -> MappingDoc {
        let (conference, meeting_id, server) = match &self.target {
            Target::Conference { conference, server } => {
                (Some(conference.expose().to_string()), None, server.clone())
            }
            Target::Meeting { meeting_id, server } => {
                (None, Some(meeting_id.clone()), server.clone())
            }
        };
        MappingDoc {
            pin: Some(self.pin.expose().to_string()),
            conference,
            meeting_id,
            server,
            label: self.label.clone(),
            valid_from: self.valid_from.map(format_time),
            valid_until: self.valid_until.map(format_time),
            created_at: Some(format_time(self.created_at)),
            updated_at: Some(format_time(self.updated_at)),
        }
    }
}

/// A mapping as written in JSON, CSV and the HTTP API: every field a string so that a wrong
/// value becomes a validation error naming the field, not a parser error. Times are RFC 3339.
#[derive(Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct MappingDoc {
    /// The PIN (digits). In `PUT /api/v1/pins/{pin}` the path gives it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pin: Option<String>,
    /// The voiceBridge number (5–11 digits); exactly one of this and `meeting_id`.
    #[serde(default)]
    pub conference: Option<String>,
    /// The BBB meeting ID; exactly one of this and `conference`.
    #[serde(default)]
    pub meeting_id: Option<String>,
    /// A `[[servers]]` name, optional.
    #[serde(default)]
    pub server: Option<String>,
    /// A label for admins, optional (no personal data).
    #[serde(default)]
    pub label: Option<String>,
    /// RFC 3339 time from which the PIN routes, optional.
    #[serde(default)]
    pub valid_from: Option<String>,
    /// RFC 3339 time from which it no longer routes, optional.
    #[serde(default)]
    pub valid_until: Option<String>,
    /// Output only: ignored on input.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
    /// Output only: ignored on input.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<String>,
}

impl fmt::Debug for MappingDoc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MappingDoc(<hidden>)")
    }
}

/// A validated mapping ready to be written (the store sets the times).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewMapping {
    /// The PIN.
    pub pin: Pin,
    /// Where it leads.
    pub target: Target,
    /// Label.
    pub label: Option<String>,
    /// Valid from (Unix seconds).
    pub valid_from: Option<i64>,
    /// Valid until (Unix seconds).
    pub valid_until: Option<i64>,
}

/// One validation problem: which field, and what is wrong (never the value itself).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FieldError {
    /// The field's name as in [`MappingDoc`].
    pub field: String,
    /// What is wrong and what to write instead.
    pub reason: String,
}

impl FieldError {
    /// A problem with `field`.
    pub fn new(field: &str, reason: impl Into<String>) -> FieldError {
        FieldError {
            field: field.to_string(),
            reason: reason.into(),
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.reason)
    }
}

/// What a valid mapping must respect, taken from the configuration (`Config::store_rules`).
#[derive(Clone, Debug)]
pub struct Rules {
    /// `ivr.pin_min_digits..=ivr.pin_max_digits`.
    pub pin_digits: std::ops::RangeInclusive<usize>,
    /// `ivr.echo_pin`: not mappable.
    pub echo_pin: Option<Pin>,
    /// The `[[servers]]` names.
    pub servers: Vec<String>,
    /// PINs of the config file's `[[pins]]`: read-only, so the store may not shadow them.
    pub reserved: HashSet<Pin>,
}

impl Rules {
    /// Checks a PIN alone (path parameters, `pins remove`).
    pub fn check_pin(&self, pin: &str) -> Result<Pin, FieldError> {
        let bad = |r: String| FieldError::new("pin", r);
        let pin = Pin::new(pin).ok_or_else(|| bad("must be digits only (0-9)".into()))?;
        if !self.pin_digits.contains(&pin.len()) {
            return Err(bad(format!(
                "has {} digits, but PINs have {} to {} digits (ivr.pin_min_digits..pin_max_digits)",
                pin.len(),
                self.pin_digits.start(),
                self.pin_digits.end()
            )));
        }
        Ok(pin)
    }

    /// Checks a PIN that is about to be written: also not the echo PIN nor a config PIN.
    pub fn check_writable_pin(&self, pin: &str) -> Result<Pin, FieldError> {
        let pin = self.check_pin(pin)?;
        if self.echo_pin.as_ref() == Some(&pin) {
            return Err(FieldError::new(
                "pin",
                "is the echo test's PIN (ivr.echo_pin); choose another",
            ));
        }
        if self.reserved.contains(&pin) {
            return Err(FieldError::new(
                "pin",
                "is mapped in the config file ([[pins]]), which is read-only here; change it there or choose another",
            ));
        }
        Ok(pin)
    }

    /// Validates a document; `path_pin` is the PIN from a URL path, which wins over (and must
    /// agree with) the body's. Returns every problem, not only the first.
    pub fn validate(
        &self,
        doc: &MappingDoc,
        path_pin: Option<&str>,
    ) -> Result<NewMapping, Vec<FieldError>> {
        let mut errors = Vec::new();
        let pin = self.doc_pin(doc, path_pin, &mut errors);
        let server = match doc.server.as_deref().filter(|s| !s.is_empty()) {
            Some(s) if !self.servers.iter().any(|n| n == s) => {
                let reason = if self.servers.is_empty() {
                    "names a server, but the configuration has no [[servers]]".to_string()
                } else {
                    format!("unknown server; use one of: {}", self.servers.join(", "))
                };
                errors.push(FieldError::new("server", reason));
                None
            }
            s => s.map(str::to_string),
        };
        let conference = doc.conference.as_deref().filter(|s| !s.is_empty());
        let meeting = doc.meeting_id.as_deref().filter(|s| !s.is_empty());
        let target = target_of(conference, meeting, server, &mut errors);
        let label = doc.label.as_deref().filter(|s| !s.is_empty());
        if let Some(l) = label {
            if l.chars().count() > LABEL_MAX || l.chars().any(char::is_control) {
                errors.push(FieldError::new(
                    "label",
                    format!("must be at most {LABEL_MAX} characters on one line"),
                ));
            }
        }
        let mut time =
            |field: &str, v: &Option<String>| match v.as_deref().filter(|s| !s.is_empty()) {
                None => None,
                Some(t) => parse_time(t)
                    .map_err(|_| {
                        errors.push(FieldError::new(
                            field,
                            "not an RFC 3339 time; write it like \"2026-09-01T08:00:00Z\"",
                        ))
                    })
                    .ok(),
            };
        let valid_from = time("valid_from", &doc.valid_from);
        let valid_until = time("valid_until", &doc.valid_until);
        if let (Some(f), Some(u)) = (valid_from, valid_until) {
            if u <= f {
                errors.push(FieldError::new("valid_until", "must be after valid_from"));
            }
        }
        match (pin, target) {
            (Some(pin), Some(target)) if errors.is_empty() => Ok(NewMapping {
                pin,
                target,
                label: label.map(str::to_string),
                valid_from,
                valid_until,
            }),
            _ => Err(errors),
        }
    }

    /// The document's PIN: the URL's wins over (and must agree with) the body's.
    fn doc_pin(
        &self,
        doc: &MappingDoc,
        path_pin: Option<&str>,
        errors: &mut Vec<FieldError>,
    ) -> Option<Pin> {
        let pin_text = match (path_pin, doc.pin.as_deref()) {
            (Some(p), Some(b)) if p != b => {
                errors.push(FieldError::new(
                    "pin",
                    "differs from the PIN in the URL; leave it out or make them equal",
                ));
                None
            }
            (Some(p), _) => Some(p),
            (None, Some(b)) => Some(b),
            (None, None) => {
                errors.push(FieldError::new("pin", "missing; give the PIN callers type"));
                None
            }
        };
        pin_text.and_then(|t| self.check_writable_pin(t).map_err(|e| errors.push(e)).ok())
    }
}

/// The mapping's target: a voiceBridge number or a BBB meeting ID, exactly one of them.
fn target_of(
    conference: Option<&str>,
    meeting: Option<&str>,
    server: Option<String>,
    errors: &mut Vec<FieldError>,
) -> Option<Target> {
    match (conference, meeting) {
        (Some(_), Some(_)) => {
            errors.push(FieldError::new(
                "meeting_id",
                "give either conference or meeting_id, not both",
            ));
            None
        }
        (None, None) => {
            errors.push(FieldError::new(
                "conference",
                "missing; give the meeting's voiceBridge number (conference) or its meeting_id",
            ));
            None
        }
        (Some(c), None) => {
            if c.bytes().all(|b| b.is_ascii_digit()) && CONFERENCE_DIGITS.contains(&c.len()) {
                Some(Target::Conference {
                    conference: ConferenceId(c.to_string()),
                    server,
                })
            } else {
                errors.push(FieldError::new(
                    "conference",
                    "must be the meeting's voiceBridge number: 5 to 11 digits (0-9)",
                ));
                None
            }
        }
        (None, Some(m)) => {
            if m.len() <= MEETING_ID_MAX && m.chars().all(|c| !c.is_control()) {
                Some(Target::Meeting {
                    meeting_id: m.to_string(),
                    server,
                })
            } else {
                errors.push(FieldError::new(
                    "meeting_id",
                    format!(
                        "must be at most {MEETING_ID_MAX} characters without control characters"
                    ),
                ));
                None
            }
        }
    }
}

/// Formats Unix seconds as RFC 3339 UTC (`2026-09-01T08:00:00Z`).
pub fn format_time(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| unix.to_string())
}

/// Parses an RFC 3339 time into Unix seconds.
pub fn parse_time(text: &str) -> Result<i64, time::error::Parse> {
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .map(|t| t.unix_timestamp())
}

/// The current time in Unix seconds.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
#[path = "model_tests.rs"]
mod tests;
