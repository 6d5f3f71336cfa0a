use super::*;
use crate::esl::frame::parse;

/// Every frame of a capture, typed.
fn messages(raw: &[u8]) -> Vec<Message> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < raw.len() {
        let (frame, used) = parse(&raw[at..], 1 << 20).expect("a capture parses");
        out.push(Message::from_frame(&frame));
        at += used;
    }
    out
}

fn conference_events(raw: &[u8]) -> Vec<(String, EventKind)> {
    messages(raw)
        .into_iter()
        .filter_map(|m| match m {
            Message::Event(Event::Conference(c)) => {
                Some((c.conference.expose().to_string(), c.kind))
            }
            _ => None,
        })
        .collect()
}

fn lifecycle(events: &[(String, EventKind)]) -> Vec<String> {
    events
        .iter()
        .filter(|(_, k)| !matches!(k, EventKind::Other | EventKind::Mute { .. }))
        .map(|(c, k)| match k {
            EventKind::Create => format!("create {c}"),
            EventKind::Destroy => format!("destroy {c}"),
            EventKind::AddMember { member, .. } => format!("add {c} {member}"),
            EventKind::DelMember { member } => format!("del {c} {member}"),
            EventKind::Other | EventKind::Mute { .. } => unreachable!(),
        })
        .collect()
}

#[test]
fn json_lifecycle_from_capture() {
    let raw = include_bytes!("../../tests/fixtures/esl/c1-event-json-conference-lifecycle.s2c.raw");
    let events = conference_events(raw);
    assert_eq!(
        lifecycle(&events),
        [
            "create 71234",
            "add 71234 1",
            "add 71234 2",
            "del 71234 2",
            "del 71234 1",
            "destroy 71234"
        ]
    );
    let EventKind::AddMember { unique_id, .. } = &events[1].1 else {
        panic!("{:?}", events[1])
    };
    assert_eq!(unique_id, "e5b7e040-fe94-4ce9-a84c-4c46abd0a0f4");
    // The interleaved api replies are kept in order.
    let replies: Vec<_> = messages(raw)
        .into_iter()
        .filter_map(|m| match m {
            Message::ApiResponse(b) => Some(b),
            _ => None,
        })
        .collect();
    assert_eq!(replies, ["+OK mute 2\n", "+OK unmute 2\n"]);
    // Those commands' events: member 2 muted, then unmuted (FreeSWITCH mutes it once more
    // as it leaves, before its del-member).
    let mutes: Vec<(u32, bool)> = events
        .iter()
        .filter_map(|(_, k)| match k {
            EventKind::Mute { member, muted } => Some((*member, *muted)),
            _ => None,
        })
        .collect();
    assert_eq!(mutes, [(2, true), (2, false), (2, true)]);
}

#[test]
fn plain_events_from_capture() {
    let raw = include_bytes!("../../tests/fixtures/esl/c2-event-plain-join-dtmf-leave.s2c.raw");
    let events = lifecycle(&conference_events(raw));
    assert_eq!(events.first().map(String::as_str), Some("create 71234"));
    assert_eq!(events.last().map(String::as_str), Some("destroy 71234"));
    assert!(
        events.iter().any(|e| e.starts_with("add 71234 ")),
        "{events:?}"
    );
}

#[test]
fn channel_answer_carries_our_header() {
    let raw =
        include_bytes!("../../tests/fixtures/esl/c7-event-json-channel-answer-dtmf-hangup.s2c.raw");
    let ours: Vec<_> = messages(raw)
        .into_iter()
        .filter_map(|m| match m {
            Message::Event(Event::DialinChannel { unique_id, call }) => Some((unique_id, call)),
            _ => None,
        })
        .collect();
    assert_eq!(
        ours,
        [(
            "e5b7e040-fe94-4ce9-a84c-4c46abd0a0f4".to_string(),
            "abc123".to_string()
        )]
    );
}

#[test]
fn replies_and_notices() {
    let a2 = messages(include_bytes!(
        "../../tests/fixtures/esl/a2-auth-wrong-password.s2c.raw"
    ));
    assert_eq!(a2[0], Message::AuthRequest);
    assert_eq!(
        a2[1],
        Message::CommandReply {
            ok: false,
            text: "-ERR invalid".into()
        }
    );
    assert!(matches!(a2[2], Message::DisconnectNotice(_)));
    let a3 = messages(include_bytes!(
        "../../tests/fixtures/esl/a3-acl-denied-from-127.0.0.2.s2c.raw"
    ));
    assert_eq!(a3[0], Message::RudeRejection);
}

#[test]
fn conference_list_bodies() {
    let body = |raw: &[u8]| {
        messages(raw)
            .into_iter()
            .find_map(|m| match m {
                Message::ApiResponse(b) => Some(b),
                _ => None,
            })
            .unwrap()
    };
    let names = |l: Vec<ListedConference>| {
        l.into_iter()
            .map(|c| {
                (
                    c.conference.expose().to_string(),
                    c.members.iter().map(|m| m.0).collect::<Vec<_>>(),
                )
            })
            .collect::<Vec<_>>()
    };
    let b1 = body(include_bytes!(
        "../../tests/fixtures/esl/b1-api-conference-list-empty.s2c.raw"
    ));
    assert_eq!(parse_conference_list(&b1), Some(vec![]));
    let b2 = body(include_bytes!(
        "../../tests/fixtures/esl/b2-api-conference-list-one-conference-2-members.s2c.raw"
    ));
    assert_eq!(
        names(parse_conference_list(&b2).unwrap()),
        [("71234".to_string(), vec![2, 1])]
    );
    let b3 = body(include_bytes!(
        "../../tests/fixtures/esl/b3-api-conference-list-two-conferences.s2c.raw"
    ));
    assert_eq!(
        names(parse_conference_list(&b3).unwrap()),
        [
            ("71235".to_string(), vec![4]),
            ("71234".to_string(), vec![3])
        ]
    );
    for bad in ["-ERR Conference 99999 not found\n", "", "usage text"] {
        assert_eq!(parse_conference_list(bad), None, "{bad}");
    }
}

#[test]
fn url_decoding() {
    for (input, want) in [
        ("conference%3A%3Amaintenance", "conference::maintenance"),
        ("2026-11-27%2012%3A42", "2026-11-27 12:42"),
        ("50%", "50%"),
        ("%zz", "%zz"),
    ] {
        assert_eq!(url_decode(input), want);
    }
}

#[test]
fn background_jobs_json_and_plain() {
    for raw in [
        include_bytes!("../../tests/fixtures/esl/c3-bgapi-conference-list-json.s2c.raw").as_slice(),
        include_bytes!("../../tests/fixtures/esl/c3-bgapi-conference-list-plain.s2c.raw")
            .as_slice(),
    ] {
        let m = messages(raw);
        assert!(
            m.iter().any(|m| matches!(m, Message::CommandReply { ok: true, text } if text.starts_with("+OK Job-UUID: "))),
            "{m:?}"
        );
        let jobs: Vec<_> = m
            .into_iter()
            .filter_map(|m| match m {
                Message::Event(Event::BackgroundJob { job_uuid, ok }) => Some((job_uuid, ok)),
                _ => None,
            })
            .collect();
        assert_eq!(jobs.len(), 1);
        assert!(jobs[0].1, "+OK No active conferences.");
        assert_eq!(jobs[0].0.len(), 36);
    }
}
