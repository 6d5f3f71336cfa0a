//! Frames read once into typed messages: replies, API responses, and the events dialin uses.
//!
//! Only what the directory and the mute key need is kept: conference life-cycle and member
//! events, and the `X-Dialin-Call` header of our own server legs (seen in `CHANNEL_ANSWER`).
//! Everything else becomes [`Message::Other`] or [`EventKind::Other`] and is ignored.

use super::frame::Frame;
use std::collections::HashMap;

/// One frame from FreeSWITCH, typed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    /// `auth/request`: the server waits for our password.
    AuthRequest,
    /// `command/reply`: the answer to `auth`, `event`, `bgapi`, `exit`.
    CommandReply {
        /// `Reply-Text` starts with `+OK`.
        ok: bool,
        /// The `Reply-Text` (safe to log: it never echoes our password).
        text: String,
    },
    /// `api/response`: the output of an `api` command, success or failure alike.
    ApiResponse(String),
    /// `text/event-json` or `text/event-plain`.
    Event(Event),
    /// `text/disconnect-notice`: the server is closing (after a failed auth, `exit`, shutdown).
    DisconnectNotice(String),
    /// `text/rude-rejection`: our address is outside the server's ESL ACL.
    RudeRejection,
    /// Any other content type; ignored.
    Other,
}

/// An event, reduced to what dialin acts on. `Debug` is derived but the fields are hidden
/// types or numbers: no conference number reaches a log through it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// `CUSTOM conference::maintenance`.
    Conference(ConferenceEvent),
    /// `CHANNEL_ANSWER` of a channel that carries our `X-Dialin-Call` header.
    DialinChannel {
        /// The channel's `Unique-ID`.
        unique_id: String,
        /// The value of `variable_sip_h_X-Dialin-Call`.
        call: String,
    },
    /// `BACKGROUND_JOB`: the result of a `bgapi` command.
    BackgroundJob {
        /// The `Job-UUID` that the `bgapi` reply announced.
        job_uuid: String,
        /// Whether the job's output starts with `+OK`.
        ok: bool,
    },
    /// Any other event.
    Other,
}

/// A `conference::maintenance` event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConferenceEvent {
    /// `Conference-Name`: the voiceBridge number.
    pub conference: crate::ids::ConferenceId,
    /// What happened.
    pub kind: EventKind,
}

/// The `Action` of a conference event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EventKind {
    /// `conference-create`.
    Create,
    /// `conference-destroy`.
    Destroy,
    /// `add-member`, with the member's id and channel `Unique-ID`.
    AddMember {
        /// `Member-ID`.
        member: u32,
        /// `Unique-ID`.
        unique_id: String,
    },
    /// `del-member`.
    DelMember {
        /// `Member-ID`.
        member: u32,
    },
    /// `mute-member` (`muted`) or `unmute-member`: by the member's own key or a moderator.
    Mute {
        /// `Member-ID`.
        member: u32,
        /// Whether the member is muted now.
        muted: bool,
    },
    /// Anything else (floor-change, talking …).
    Other,
}

/// The header dialin puts into the server leg's INVITE; FreeSWITCH shows it as a channel
/// variable, which is how a conference member is matched to our call.
pub const DIALIN_CALL_HEADER: &str = "X-Dialin-Call";

impl Message {
    /// Types a frame. Event bodies that cannot be read become [`Event::Other`].
    pub fn from_frame(frame: &Frame) -> Message {
        let body = || String::from_utf8_lossy(&frame.body).into_owned();
        match frame.content_type() {
            "auth/request" => Message::AuthRequest,
            "command/reply" => {
                let text = frame.header("Reply-Text").unwrap_or("").to_string();
                Message::CommandReply {
                    ok: text.starts_with("+OK"),
                    text,
                }
            }
            "api/response" => Message::ApiResponse(body()),
            "text/event-json" => Message::Event(json_event(&frame.body)),
            "text/event-plain" => Message::Event(plain_event(&frame.body)),
            "text/disconnect-notice" => Message::DisconnectNotice(body()),
            "text/rude-rejection" => Message::RudeRejection,
            _ => Message::Other,
        }
    }
}

/// Reads a JSON event body (an object whose values are strings).
fn json_event(body: &[u8]) -> Event {
    let Ok(map) = serde_json::from_slice::<HashMap<String, serde_json::Value>>(body) else {
        return Event::Other;
    };
    // An event's own body (BACKGROUND_JOB output) is the `_body` key.
    event(
        |name| map.get(name).and_then(|v| v.as_str()).map(str::to_string),
        map.get("_body").and_then(|v| v.as_str()).unwrap_or(""),
    )
}

/// Reads a plain event body: `Name: url-encoded value` lines.
fn plain_event(body: &[u8]) -> Event {
    let text = String::from_utf8_lossy(body);
    // Headers, then (for events with a body) an inner blank line and the body.
    let (head, inner) = text.split_once("\n\n").unwrap_or((&text, ""));
    let map: HashMap<&str, &str> = head.lines().filter_map(|l| l.split_once(": ")).collect();
    event(|name| map.get(name).map(|v| url_decode(v)), inner)
}

/// Builds the typed event from a field lookup and the event's own body.
fn event(get: impl Fn(&str) -> Option<String>, body: &str) -> Event {
    match get("Event-Name").as_deref() {
        Some("BACKGROUND_JOB") => match get("Job-UUID") {
            Some(job_uuid) => Event::BackgroundJob {
                job_uuid,
                ok: body.starts_with("+OK"),
            },
            None => Event::Other,
        },
        Some("CUSTOM") if get("Event-Subclass").as_deref() == Some("conference::maintenance") => {
            let Some(conference) = get("Conference-Name") else {
                return Event::Other;
            };
            let member = || get("Member-ID").and_then(|m| m.parse::<u32>().ok());
            let kind = match get("Action").as_deref() {
                Some("conference-create") => EventKind::Create,
                Some("conference-destroy") => EventKind::Destroy,
                Some("add-member") => match (member(), get("Unique-ID")) {
                    (Some(member), Some(unique_id)) => EventKind::AddMember { member, unique_id },
                    _ => EventKind::Other,
                },
                Some("del-member") => match member() {
                    Some(member) => EventKind::DelMember { member },
                    None => EventKind::Other,
                },
                Some(action @ ("mute-member" | "unmute-member")) => match member() {
                    Some(member) => EventKind::Mute {
                        member,
                        muted: action == "mute-member",
                    },
                    None => EventKind::Other,
                },
                _ => EventKind::Other,
            };
            Event::Conference(ConferenceEvent {
                conference: crate::ids::ConferenceId(conference),
                kind,
            })
        }
        Some("CHANNEL_ANSWER") => {
            match (
                get("Unique-ID"),
                get(&format!("variable_sip_h_{DIALIN_CALL_HEADER}")),
            ) {
                (Some(unique_id), Some(call)) => Event::DialinChannel { unique_id, call },
                _ => Event::Other,
            }
        }
        _ => Event::Other,
    }
}

/// Decodes `%XX` escapes (and leaves anything malformed as it is).
fn url_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// One conference from a `conference list` reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListedConference {
    /// Its name (voiceBridge).
    pub conference: crate::ids::ConferenceId,
    /// Its members as `(member id, channel Unique-ID)`.
    pub members: Vec<(u32, String)>,
}

/// Reads the body of `api conference list`: `+OK Conference NAME (…)` header lines each
/// followed by `id;channel;uuid;…` member lines, or `+OK No active conferences.`. `None` for
/// an error or anything else, so a failed snapshot never empties the directory by mistake.
pub fn parse_conference_list(body: &str) -> Option<Vec<ListedConference>> {
    if body.starts_with("+OK No active conferences") {
        return Some(Vec::new());
    }
    if !body.starts_with("+OK Conference ") {
        return None;
    }
    let mut out: Vec<ListedConference> = Vec::new();
    for line in body.lines() {
        if let Some(rest) = line.strip_prefix("+OK Conference ") {
            let name = rest.split(' ').next().unwrap_or("");
            out.push(ListedConference {
                conference: crate::ids::ConferenceId(name.to_string()),
                members: Vec::new(),
            });
        } else if let Some(last) = out.last_mut() {
            let mut fields = line.split(';');
            if let (Some(id), Some(_channel), Some(uuid)) =
                (fields.next(), fields.next(), fields.next())
            {
                if let Ok(id) = id.parse() {
                    last.members.push((id, uuid.to_string()));
                }
            }
        }
    }
    Some(out)
}

#[cfg(test)]
#[path = "message_tests.rs"]
mod tests;
