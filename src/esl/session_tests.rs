use super::*;
use crate::esl::frame::parse;
use crate::esl::message::EventKind;

const A1: &[u8] = include_bytes!("../../tests/fixtures/esl/a1-auth-ok.s2c.raw");
const A1_C2S: &[u8] = include_bytes!("../../tests/fixtures/esl/a1-auth-ok.c2s.raw");
const A2: &[u8] = include_bytes!("../../tests/fixtures/esl/a2-auth-wrong-password.s2c.raw");
const A3: &[u8] = include_bytes!("../../tests/fixtures/esl/a3-acl-denied-from-127.0.0.2.s2c.raw");
const B2: &[u8] = include_bytes!(
    "../../tests/fixtures/esl/b2-api-conference-list-one-conference-2-members.s2c.raw"
);
const C1: &[u8] =
    include_bytes!("../../tests/fixtures/esl/c1-event-json-conference-lifecycle.s2c.raw");
const D1: &[u8] = include_bytes!("../../tests/fixtures/esl/d1-shutdown-idle-client.s2c.raw");

fn messages(raw: &[u8]) -> Vec<Message> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < raw.len() {
        let (frame, used) = parse(&raw[at..], 1 << 20).unwrap();
        out.push(Message::from_frame(&frame));
        at += used;
    }
    out
}

fn sent(s: &mut Session) -> Vec<String> {
    let mut out = Vec::new();
    while let Some(o) = s.poll_output() {
        if let SessionOutput::Send(b) = o {
            out.push(String::from_utf8(b).unwrap());
        }
    }
    out
}

fn session(now: Instant) -> Session {
    Session::new(
        now,
        Password::new("fixture-secret"),
        SessionSettings::default(),
    )
}

/// A session through the handshake with the captured replies (auth from a1, subscription from
/// c1, snapshot from b2).
fn ready(now: Instant) -> Session {
    let mut s = session(now);
    let a1 = messages(A1);
    s.handle_message(now, a1[0].clone()).unwrap();
    s.handle_message(now, a1[1].clone()).unwrap();
    s.handle_message(now, messages(C1)[2].clone()).unwrap();
    let snapshot = messages(B2)[2].clone();
    s.handle_message(now, snapshot).unwrap();
    s
}

#[test]
fn handshake_sends_what_the_captured_client_sent() {
    let now = Instant::now();
    let mut s = session(now);
    let a1 = messages(A1);
    s.handle_message(now, a1[0].clone()).unwrap();
    let auth = sent(&mut s);
    assert_eq!(auth, ["auth fixture-secret\n\n"]);
    assert!(A1_C2S.starts_with(auth[0].as_bytes()));
    s.handle_message(now, a1[1].clone()).unwrap();
    assert_eq!(sent(&mut s), [format!("{SUBSCRIPTION}\n\n")]);
    s.handle_message(now, messages(C1)[2].clone()).unwrap();
    assert_eq!(sent(&mut s), ["api conference list\n\n"]);
    assert!(!s.is_ready());
    s.handle_message(now, messages(B2)[2].clone()).unwrap();
    assert!(s.is_ready());
    match s.poll_output() {
        Some(SessionOutput::Ready(list)) => {
            assert_eq!(list.len(), 1);
            assert_eq!(list[0].conference.expose(), "71234");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn refusals_are_clear_errors() {
    let now = Instant::now();
    let mut s = session(now);
    let a2 = messages(A2);
    s.handle_message(now, a2[0].clone()).unwrap();
    assert_eq!(
        s.handle_message(now, a2[1].clone()),
        Err(SessionError::WrongPassword)
    );
    let mut s = session(now);
    assert_eq!(
        s.handle_message(now, messages(A3)[0].clone()),
        Err(SessionError::AccessDenied)
    );
    let mut s = ready(now);
    let d1 = messages(D1);
    let err = s
        .handle_message(now, d1.last().unwrap().clone())
        .unwrap_err();
    assert_eq!(
        err,
        SessionError::Disconnected("The system is being shut down.".into())
    );
    // The password never shows in an error text.
    for e in [SessionError::WrongPassword, SessionError::AccessDenied, err] {
        assert!(!e.to_string().contains("fixture-secret"));
    }
}

#[test]
fn events_flow_after_the_snapshot() {
    let now = Instant::now();
    let mut s = ready(now);
    sent(&mut s);
    for m in messages(C1).into_iter().skip(3) {
        // The capture's own api replies answer requests this session never made.
        if matches!(m, Message::ApiResponse(_)) {
            continue;
        }
        // The capture ends with our `exit` being answered.
        if matches!(m, Message::DisconnectNotice(_)) {
            break;
        }
        s.handle_message(now, m).unwrap();
    }
    let mut kinds = Vec::new();
    while let Some(o) = s.poll_output() {
        if let SessionOutput::Event(Event::Conference(c)) = o {
            kinds.push(c.kind);
        }
    }
    assert_eq!(kinds.first(), Some(&EventKind::Create));
    assert_eq!(kinds.last(), Some(&EventKind::Destroy));
}

#[test]
fn silence_is_an_error_at_each_step() {
    let t0 = Instant::now();
    let timeout = SessionSettings::default().reply_timeout;
    // No auth/request.
    let mut s = session(t0);
    assert_eq!(s.poll_timeout(), t0 + timeout);
    assert_eq!(
        s.handle_timeout(t0 + timeout - Duration::from_millis(1)),
        Ok(())
    );
    assert_eq!(
        s.handle_timeout(t0 + timeout),
        Err(SessionError::Silent(timeout))
    );
    // No answer to auth.
    let mut s = session(t0);
    s.handle_message(t0, messages(A1)[0].clone()).unwrap();
    assert_eq!(
        s.handle_timeout(t0 + timeout),
        Err(SessionError::Silent(timeout))
    );
}

#[test]
fn keepalive_when_idle_and_silence_after_it() {
    let t0 = Instant::now();
    let settings = SessionSettings::default();
    let mut s = ready(t0);
    sent(&mut s);
    let idle = t0 + settings.keepalive;
    assert_eq!(s.poll_timeout(), idle);
    s.handle_timeout(idle).unwrap();
    assert_eq!(sent(&mut s), ["api global_getvar hostname\n\n"]);
    assert_eq!(s.poll_timeout(), idle + settings.reply_timeout);
    // The answer resets the idle clock.
    let later = idle + Duration::from_secs(1);
    s.handle_message(later, Message::ApiResponse("vm".into()))
        .unwrap();
    assert_eq!(s.poll_timeout(), later + settings.keepalive);
    // Unanswered keepalive: silent server.
    s.handle_timeout(later + settings.keepalive).unwrap();
    let due = later + settings.keepalive + settings.reply_timeout;
    assert_eq!(
        s.handle_timeout(due),
        Err(SessionError::Silent(settings.reply_timeout))
    );
}

#[test]
fn api_requests_are_bounded_and_answered_in_order() {
    let now = Instant::now();
    let mut s = session(now);
    assert!(!s.api(now, "status", 1), "refused before the handshake");
    let mut s = ready(now);
    sent(&mut s);
    assert!(s.api(now, "conference 71234 tmute 2", 7));
    assert_eq!(sent(&mut s), ["api conference 71234 tmute 2\n\n"]);
    for tag in 1..MAX_PENDING as u64 {
        assert!(s.api(now, "status", tag));
    }
    assert!(!s.api(now, "status", 99));
    s.handle_message(now, Message::ApiResponse("+OK mute 2\n".into()))
        .unwrap();
    let replies: Vec<_> = std::iter::from_fn(|| s.poll_output())
        .filter(|o| matches!(o, SessionOutput::ApiReply { .. }))
        .collect();
    assert_eq!(replies, [SessionOutput::ApiReply { tag: 7, ok: true }]);
}

#[test]
fn unasked_api_response_is_a_protocol_error() {
    let now = Instant::now();
    let mut s = ready(now);
    assert!(matches!(
        s.handle_message(now, Message::ApiResponse("x".into())),
        Err(SessionError::Protocol(_))
    ));
}

#[test]
fn captured_error_replies_are_not_ok() {
    let now = Instant::now();
    let mut s = ready(now);
    sent(&mut s);
    let a4 = messages(include_bytes!(
        "../../tests/fixtures/esl/a4-error-replies.s2c.raw"
    ));
    // `api conference 99999 tmute 1` got `-ERR Conference 99999 not found`.
    let err = a4
        .into_iter()
        .find(|m| matches!(m, Message::ApiResponse(b) if b.starts_with("-ERR Conference")))
        .unwrap();
    assert!(s.api(now, "conference 99999 tmute 1", 3));
    s.handle_message(now, err).unwrap();
    let replies: Vec<_> = std::iter::from_fn(|| s.poll_output())
        .filter(|o| matches!(o, SessionOutput::ApiReply { .. }))
        .collect();
    assert_eq!(replies, [SessionOutput::ApiReply { tag: 3, ok: false }]);
}

#[test]
fn events_between_subscription_and_snapshot_are_applied_after_it() {
    let now = Instant::now();
    let mut s = session(now);
    let a1 = messages(A1);
    s.handle_message(now, a1[0].clone()).unwrap();
    s.handle_message(now, a1[1].clone()).unwrap();
    let c1 = messages(C1);
    s.handle_message(now, c1[2].clone()).unwrap();
    // conference-create arrives before the list's reply.
    s.handle_message(now, c1[3].clone()).unwrap();
    sent(&mut s);
    s.handle_message(now, messages(B2)[2].clone()).unwrap();
    let out: Vec<_> = std::iter::from_fn(|| s.poll_output()).collect();
    assert!(matches!(out[0], SessionOutput::Ready(_)), "{out:?}");
    assert!(
        matches!(&out[1], SessionOutput::Event(Event::Conference(c)) if c.kind == EventKind::Create),
        "{out:?}"
    );
}

#[test]
fn bgapi_jobs_are_matched_by_job_uuid() {
    let now = Instant::now();
    let mut s = ready(now);
    sent(&mut s);
    assert!(s.bgapi(now, "conference list", 9));
    assert_eq!(sent(&mut s), ["bgapi conference list\n\n"]);
    assert_eq!(
        s.poll_timeout(),
        now + SessionSettings::default().reply_timeout
    );
    let c3 = messages(include_bytes!(
        "../../tests/fixtures/esl/c3-bgapi-conference-list-json.s2c.raw"
    ));
    // c3: the Job-UUID reply, then the BACKGROUND_JOB event.
    s.handle_message(now, c3[3].clone()).unwrap();
    s.handle_message(now, c3[4].clone()).unwrap();
    let out: Vec<_> = std::iter::from_fn(|| s.poll_output()).collect();
    assert_eq!(out, [SessionOutput::ApiReply { tag: 9, ok: true }]);
    // A refused bgapi is a failed reply at once.
    assert!(s.bgapi(now, "nonsense", 10));
    sent(&mut s);
    s.handle_message(
        now,
        Message::CommandReply {
            ok: false,
            text: "-ERR command not found".into(),
        },
    )
    .unwrap();
    assert_eq!(
        s.poll_output(),
        Some(SessionOutput::ApiReply { tag: 10, ok: false })
    );
    // An unanswered bgapi is a silent server.
    assert!(s.bgapi(now, "status", 11));
    let due = now + SessionSettings::default().reply_timeout;
    assert_eq!(
        s.handle_timeout(due),
        Err(SessionError::Silent(
            SessionSettings::default().reply_timeout
        ))
    );
}
