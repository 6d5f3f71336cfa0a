//! Parsing the XML answers of `getMeetingInfo` and `getMeetings` into the few fields dialin
//! needs. Only direct children of `<response>` / `<meeting>` count, so a `voiceBridge` inside
//! `<metadata>` or `<attendees>` cannot fool it. Sizes are bounded by the client.

use quick_xml::events::Event;
use quick_xml::Reader;

/// One meeting as the API describes it.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct MeetingInfo {
    /// `meetingID`.
    pub meeting_id: String,
    /// `voiceBridge`.
    pub voice_bridge: String,
    /// `running`: whether someone is in it (BBB's meaning; a created meeting may not run yet).
    pub running: bool,
}

/// What an API answer said.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    /// `returncode` SUCCESS with these meetings (one for getMeetingInfo).
    Meetings(Vec<MeetingInfo>),
    /// `returncode` FAILED with this `messageKey` (e.g. `notFound`, `checksumError`).
    Failed(String),
}

/// Why an API answer could not be read. An answer that is not BBB's XML usually means the
/// `[[bbb_api]]` URL reaches something else (a proxy's error page, a login page).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum XmlError {
    /// Not well-formed XML.
    #[error("not XML ({0}); check that the [[bbb_api]] url is BBB's API, like \"https://bbb1.example.org/bigbluebutton/api\"")]
    NotXml(#[source] quick_xml::Error),
    /// Text that does not unescape (a bad entity).
    #[error("bad XML text ({0})")]
    BadText(#[source] quick_xml::Error),
    /// More than 64 nested elements: not a BBB answer.
    #[error("nested too deep")]
    TooDeep,
    /// XML, but without BBB's `<response><returncode>`.
    #[error("no <returncode> in <response>; check that the [[bbb_api]] url is BBB's API, like \"https://bbb1.example.org/bigbluebutton/api\"")]
    NoReturnCode,
}

/// Parses a `getMeetingInfo` or `getMeetings` answer.
pub fn parse(xml: &str) -> Result<Answer, XmlError> {
    let mut reader = Reader::from_str(xml);
    reader.config_mut().trim_text(true);
    let mut path: Vec<String> = Vec::new();
    let mut returncode = None;
    let mut message_key = String::new();
    let mut top = MeetingInfo::default();
    let mut has_top = false;
    let mut meetings = Vec::new();
    let mut current: Option<MeetingInfo> = None;
    // Whether the answer has a <meetings> list (getMeetings), even an empty one.
    let mut listed = false;
    loop {
        match reader.read_event() {
            Err(e) => return Err(XmlError::NotXml(e)),
            Ok(Event::Eof) => break,
            Ok(Event::Empty(e)) => {
                listed |= path.len() == 1 && e.local_name().as_ref() == b"meetings";
            }
            Ok(Event::Start(e)) => {
                let name = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
                listed |= path.len() == 1 && name == "meetings";
                if path.len() == 2 && path[1] == "meetings" && name == "meeting" {
                    current = Some(MeetingInfo::default());
                }
                path.push(name);
                if path.len() > 64 {
                    return Err(XmlError::TooDeep);
                }
            }
            Ok(Event::End(_)) => {
                if path.len() == 3 && path[2] == "meeting" {
                    if let Some(m) = current.take() {
                        meetings.push(m);
                    }
                }
                path.pop();
            }
            Ok(Event::Text(t)) => {
                let text = t.unescape().map_err(XmlError::BadText)?;
                let text = text.trim();
                let fields = match path.as_slice() {
                    [r, f] if r == "response" => {
                        match f.as_str() {
                            "returncode" => returncode = Some(text.to_ascii_uppercase()),
                            "messageKey" => message_key = text.to_string(),
                            _ => {}
                        }
                        has_top = true;
                        Some((&mut top, f.as_str()))
                    }
                    [r, ms, m, f] if r == "response" && ms == "meetings" && m == "meeting" => {
                        current.as_mut().map(|c| (c, f.as_str()))
                    }
                    _ => None,
                };
                if let Some((m, field)) = fields {
                    match field {
                        "meetingID" => m.meeting_id = text.to_string(),
                        "voiceBridge" => m.voice_bridge = text.to_string(),
                        "running" => m.running = text == "true",
                        _ => {}
                    }
                }
            }
            Ok(_) => {}
        }
    }
    match returncode.as_deref() {
        Some("SUCCESS") if listed => Ok(Answer::Meetings(meetings)),
        Some("SUCCESS") if has_top && !top.voice_bridge.is_empty() => {
            Ok(Answer::Meetings(vec![top]))
        }
        Some("SUCCESS") => Ok(Answer::Meetings(Vec::new())),
        Some("FAILED") => Ok(Answer::Failed(message_key)),
        _ => Err(XmlError::NoReturnCode),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documented_get_meeting_info() {
        let a = parse(include_str!("fixtures/getMeetingInfo.xml")).unwrap();
        assert_eq!(
            a,
            Answer::Meetings(vec![MeetingInfo {
                meeting_id: "gbesu6dht08uobpislzqxsizjzihn87cmewqyacs".into(),
                voice_bridge: "66052".into(),
                running: true,
            }])
        );
    }

    #[test]
    fn documented_get_meetings() {
        let Answer::Meetings(ms) = parse(include_str!("fixtures/getMeetings.xml")).unwrap() else {
            panic!("not meetings")
        };
        assert_eq!(ms.len(), 2);
        assert_eq!(
            (
                ms[0].meeting_id.as_str(),
                ms[0].voice_bridge.as_str(),
                ms[0].running
            ),
            ("Demo Meeting", "70066", false)
        );
        // The voiceBridge in <metadata> does not override the meeting's own.
        assert_eq!(
            (
                ms[1].meeting_id.as_str(),
                ms[1].voice_bridge.as_str(),
                ms[1].running
            ),
            ("room-2", "71234", true)
        );
        let empty = "<response><returncode>SUCCESS</returncode><meetings/><messageKey>noMeetings</messageKey></response>";
        assert_eq!(parse(empty).unwrap(), Answer::Meetings(vec![]));
    }

    #[test]
    fn failures() {
        assert_eq!(
            parse(include_str!("fixtures/notFound.xml")).unwrap(),
            Answer::Failed("notFound".into())
        );
        assert!(parse("<html>502 Bad Gateway</html>").is_err());
        assert!(parse("not xml at all <<<").is_err());
    }
}
