//! Tests for SDP offer/answer, against offers as real peers send them.

use super::*;
use rand::{Rng, SeedableRng};

/// An offer as FreeSWITCH sends it on an outbound call.
const FREESWITCH: &str = "v=0\r\n\
o=FreeSWITCH 1700000000 1700000001 IN IP4 192.0.2.10\r\n\
s=FreeSWITCH\r\n\
c=IN IP4 192.0.2.10\r\n\
t=0 0\r\n\
m=audio 16384 RTP/AVP 0 8 9 101 13\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:9 G722/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-16\r\n\
a=rtpmap:13 CN/8000\r\n\
a=ptime:20\r\n\
a=sendrecv\r\n\
a=rtcp:16385 IN IP4 192.0.2.10\r\n";

/// sipp's built-in UAC scenario: bare `\n`, PCMU only.
const SIPP: &str = "v=0\n\
o=user1 53655765 2353687637 IN IP4 127.0.0.1\n\
s=-\n\
c=IN IP4 127.0.0.1\n\
t=0 0\n\
m=audio 6000 RTP/AVP 0\n\
a=rtpmap:0 PCMU/8000\n";

/// A European trunk: PCMA without rtpmap, telephone-event on PT 96, no s=/t=.
const PCMA_ONLY: &str = "v=0\r\n\
o=- 1 1 IN IP4 198.51.100.7\r\n\
c=IN IP4 198.51.100.7\r\n\
m=audio 30000 RTP/AVP 8 96\r\n\
a=rtpmap:96 telephone-event/8000\r\n\
a=fmtp:96 0-15\r\n\
a=x-unknown-attribute:whatever\r\n";

const SPEEX_ONLY: &str =
    "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n\
m=audio 4000 RTP/AVP 97\r\na=rtpmap:97 speex/8000\r\n";

const IPV6: &str = "v=0\r\no=- 1 1 IN IP6 2001:db8::5\r\ns=-\r\nt=0 0\r\n\
m=audio 5004 RTP/AVP 8 0 101\r\nc=IN IP6 2001:db8::5\r\na=rtpmap:101 telephone-event/8000\r\n";

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn parses_freeswitch_offer() {
    let offer = MediaOffer::parse(FREESWITCH).unwrap();
    assert_eq!(offer.addr, ip("192.0.2.10"));
    assert_eq!(offer.port, 16384);
    assert_eq!(offer.payload_types, vec![0, 8, 9, 101, 13]);
    assert_eq!(offer.rtpmaps.len(), 5);
    assert_eq!(offer.telephone_event_pt, Some(101));
    assert_eq!(offer.direction, Direction::SendRecv);
    assert_eq!(offer.ptime, Some(20));
    assert!(offer.other_media.is_empty());
}

#[test]
fn answers_freeswitch_offer() {
    let n = negotiate(
        &MediaOffer::parse(FREESWITCH).unwrap(),
        &[Law::Ulaw, Law::Alaw],
    )
    .unwrap();
    assert_eq!(
        (n.law, n.pt, n.telephone_event_pt),
        (Law::Ulaw, 0, Some(101))
    );
    assert_eq!(n.remote, "192.0.2.10:16384".parse().unwrap());
    let answer = build_answer(ip("203.0.113.5"), 20000, &n, 42, 1, n.direction.answer_to());
    let want = "v=0\r\no=dialin 42 1 IN IP4 203.0.113.5\r\ns=dialin\r\nc=IN IP4 203.0.113.5\r\n\
t=0 0\r\nm=audio 20000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=ptime:20\r\na=sendrecv\r\n";
    assert_eq!(answer, want);
    // Our answer parses back to the same stream.
    let back = MediaOffer::parse(&answer).unwrap();
    assert_eq!(
        (back.port, back.payload_types.clone()),
        (20000, vec![0, 101])
    );
}

#[test]
fn negotiation_table() {
    let u = [Law::Ulaw];
    let a = [Law::Alaw];
    let both = [Law::Ulaw, Law::Alaw];
    let alaw_first = [Law::Alaw, Law::Ulaw];
    type Want = Result<(Law, u8, Option<u8>), SdpError>;
    let cases: [(&str, &[Law], Want); 9] = [
        (SIPP, &both, Ok((Law::Ulaw, 0, None))),
        (SIPP, &a, Err(SdpError::NoCommonCodec)),
        (PCMA_ONLY, &both, Ok((Law::Alaw, 8, Some(96)))),
        (PCMA_ONLY, &u, Err(SdpError::NoCommonCodec)),
        (FREESWITCH, &a, Ok((Law::Alaw, 8, Some(101)))),
        // The offer's order wins over ours.
        (FREESWITCH, &alaw_first, Ok((Law::Ulaw, 0, Some(101)))),
        (IPV6, &both, Ok((Law::Alaw, 8, Some(101)))),
        (SPEEX_ONLY, &both, Err(SdpError::NoCommonCodec)),
        (SPEEX_ONLY, &[], Err(SdpError::NoCommonCodec)),
    ];
    for (i, (sdp, allowed, want)) in cases.into_iter().enumerate() {
        let got = negotiate(&MediaOffer::parse(sdp).unwrap(), allowed)
            .map(|n| (n.law, n.pt, n.telephone_event_pt));
        assert_eq!(got, want, "case {i}");
    }
}

#[test]
fn dynamic_pt_for_pcmu_and_telephone_event_clock() {
    let sdp = "c=IN IP4 192.0.2.1\nm=audio 4000 RTP/AVP 97 98 99\na=rtpmap:97 pcmu/8000\n\
a=rtpmap:98 telephone-event/48000\na=rtpmap:99 telephone-event/8000\n";
    let n = negotiate(&MediaOffer::parse(sdp).unwrap(), &[Law::Ulaw]).unwrap();
    assert_eq!(
        (n.law, n.pt, n.telephone_event_pt),
        (Law::Ulaw, 97, Some(99))
    );
}

#[test]
fn hold_and_direction() {
    let base = "v=0\r\nc=IN IP4 192.0.2.1\r\nm=audio 4000 RTP/AVP 0\r\n";
    let cases = [
        (base.to_string(), Direction::SendRecv, Direction::SendRecv),
        (
            format!("{base}a=sendonly\r\n"),
            Direction::SendOnly,
            Direction::RecvOnly,
        ),
        (
            format!("{base}a=inactive\r\n"),
            Direction::Inactive,
            Direction::Inactive,
        ),
        (
            format!("{base}a=recvonly\r\n"),
            Direction::RecvOnly,
            Direction::SendOnly,
        ),
        // RFC 2543 hold: c=0.0.0.0.
        (
            "c=IN IP4 0.0.0.0\r\nm=audio 4000 RTP/AVP 0\r\n".into(),
            Direction::SendOnly,
            Direction::RecvOnly,
        ),
        (
            "c=IN IP4 0.0.0.0\r\nm=audio 4000 RTP/AVP 0\r\na=recvonly\r\n".into(),
            Direction::Inactive,
            Direction::Inactive,
        ),
        // Session-level direction, overridden at media level.
        (
            "a=sendonly\r\nc=IN IP4 192.0.2.1\r\nm=audio 4000 RTP/AVP 0\r\n".into(),
            Direction::SendOnly,
            Direction::RecvOnly,
        ),
        (
            "a=sendonly\r\nc=IN IP4 192.0.2.1\r\nm=audio 4000 RTP/AVP 0\r\na=sendrecv\r\n".into(),
            Direction::SendRecv,
            Direction::SendRecv,
        ),
    ];
    for (sdp, want, answer) in cases {
        let n = negotiate(&MediaOffer::parse(&sdp).unwrap(), &[Law::Ulaw]).unwrap();
        assert_eq!(n.direction, want, "{sdp}");
        assert_eq!(n.direction.answer_to(), answer, "{sdp}");
        let text = build_answer(ip("192.0.2.9"), 20002, &n, 1, 2, n.direction.answer_to());
        assert!(
            text.contains(&format!("a={}\r\n", answer.attribute())),
            "{text}"
        );
    }
}

#[test]
fn ipv6_offer_and_answer() {
    let n = negotiate(&MediaOffer::parse(IPV6).unwrap(), &[Law::Ulaw, Law::Alaw]).unwrap();
    assert_eq!(n.remote, "[2001:db8::5]:5004".parse().unwrap());
    let answer = build_answer(ip("2001:db8::1"), 20000, &n, 7, 7, Direction::SendRecv);
    assert!(
        answer.contains("o=dialin 7 7 IN IP6 2001:db8::1\r\n"),
        "{answer}"
    );
    assert!(answer.contains("c=IN IP6 2001:db8::1\r\n"), "{answer}");
    assert!(
        answer.contains("m=audio 20000 RTP/AVP 8 101\r\na=rtpmap:8 PCMA/8000\r\n"),
        "{answer}"
    );
}

#[test]
fn other_media_lines_are_rejected_in_place() {
    let sdp = "v=0\r\nc=IN IP4 192.0.2.1\r\nm=video 5000 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n\
m=audio 0 RTP/AVP 0\r\nm=audio 4000/2 RTP/AVP 0\r\nm=audio 4002 RTP/AVP 8\r\nm=application 9 UDP/BFCP *\r\n";
    let offer = MediaOffer::parse(sdp).unwrap();
    assert_eq!((offer.position, offer.port), (2, 4000));
    let n = negotiate(&offer, &[Law::Ulaw, Law::Alaw]).unwrap();
    let answer = build_answer(ip("192.0.2.9"), 20000, &n, 1, 1, Direction::SendRecv);
    let m_lines: Vec<&str> = answer.lines().filter(|l| l.starts_with("m=")).collect();
    assert_eq!(
        m_lines,
        [
            "m=video 0 RTP/AVP 96",
            "m=audio 0 RTP/AVP 0",
            "m=audio 20000 RTP/AVP 0",
            "m=audio 0 RTP/AVP 8",
            "m=application 0 UDP/BFCP *"
        ]
    );
}

#[test]
fn errors() {
    let cases = [
        ("", SdpError::NoAudio),
        (
            "v=0\r\nc=IN IP4 192.0.2.1\r\nm=video 5000 RTP/AVP 96\r\n",
            SdpError::NoAudio,
        ),
        (
            "c=IN IP4 192.0.2.1\r\nm=audio 0 RTP/AVP 0\r\n",
            SdpError::NoAudio,
        ),
        (
            "c=IN IP4 192.0.2.1\r\nm=audio RTP/AVP 0\r\n",
            SdpError::BadPort,
        ),
        (
            "c=IN IP4 192.0.2.1\r\nm=audio 70000 RTP/AVP 0\r\n",
            SdpError::BadPort,
        ),
        ("m=audio 4000 RTP/AVP 0\r\n", SdpError::NoConnection),
        (
            "c=IN IP4 host.example\r\nm=audio 4000 RTP/AVP 0\r\n",
            SdpError::BadConnection,
        ),
        (
            "c=IN IP6 192.0.2.1\r\nm=audio 4000 RTP/AVP 0\r\n",
            SdpError::BadConnection,
        ),
        (
            "c=IN\r\nm=audio 4000 RTP/AVP 0\r\n",
            SdpError::BadConnection,
        ),
    ];
    for (sdp, want) in cases {
        assert_eq!(MediaOffer::parse(sdp), Err(want), "{sdp:?}");
    }
    // A bad session-level c= does not matter when the media level has a good one.
    let ok = "c=garbage\r\nm=audio 4000 RTP/AVP 0\r\nc=IN IP4 224.2.1.1/127\r\n";
    assert_eq!(MediaOffer::parse(ok).unwrap().addr, ip("224.2.1.1"));
}

#[test]
fn builds_offer() {
    let offer = build_offer(
        ip("192.0.2.9"),
        20004,
        Law::Alaw,
        DEFAULT_TELEPHONE_EVENT_PT,
        5,
        6,
    );
    let want =
        "v=0\r\no=dialin 5 6 IN IP4 192.0.2.9\r\ns=dialin\r\nc=IN IP4 192.0.2.9\r\nt=0 0\r\n\
m=audio 20004 RTP/AVP 8 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-16\r\na=ptime:20\r\na=sendrecv\r\n";
    assert_eq!(offer, want);
    let back = negotiate(&MediaOffer::parse(&offer).unwrap(), &[Law::Alaw]).unwrap();
    assert_eq!((back.pt, back.telephone_event_pt), (8, Some(101)));
}

#[test]
fn never_panics_on_garbage() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(4733);
    let alphabet = b"vocmta=:/ \r\n0123456789INP46.RTP/AVPaudio";
    for round in 0..20_000 {
        let len = rng.random_range(0..300);
        let bytes: Vec<u8> = if round % 3 == 0 {
            (0..len).map(|_| rng.random()).collect()
        } else if round % 3 == 1 {
            (0..len)
                .map(|_| alphabet[rng.random_range(0..alphabet.len())])
                .collect()
        } else {
            // A real offer, truncated and with a few bytes flipped.
            let mut b = FREESWITCH.as_bytes().to_vec();
            b.truncate(rng.random_range(0..=b.len()));
            for _ in 0..rng.random_range(0..5) {
                if !b.is_empty() {
                    let i = rng.random_range(0..b.len());
                    b[i] = rng.random();
                }
            }
            b
        };
        if let Ok(offer) = MediaOffer::parse(&bytes) {
            if let Ok(n) = negotiate(&offer, &[Law::Ulaw, Law::Alaw]) {
                let _ = build_answer(ip("::1"), 1, &n, 0, 0, n.direction.answer_to());
            }
        }
    }
}

#[test]
fn malformed_other_lines_are_rejected_well_formed() {
    let sdp = "c=IN IP4 192.0.2.1\r\nm=\r\nm=audio 4000 RTP/AVP 0\r\n";
    let n = negotiate(&MediaOffer::parse(sdp).unwrap(), &[Law::Ulaw]).unwrap();
    let answer = build_answer(ip("192.0.2.9"), 20000, &n, 1, 1, Direction::SendRecv);
    assert!(
        answer.contains("m=audio 0 RTP/AVP 0\r\nm=audio 20000 RTP/AVP 0\r\n"),
        "{answer}"
    );
}

#[test]
fn renegotiation_keeps_the_codec_and_takes_address_and_direction() {
    let first = "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 8 0 101\r\na=rtpmap:101 telephone-event/8000\r\n";
    let current = negotiate(&MediaOffer::parse(first).unwrap(), &[Law::Ulaw, Law::Alaw]).unwrap();
    assert_eq!((current.law, current.pt), (Law::Alaw, 8));
    let hold = "v=0\r\no=- 1 2 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.2\r\nt=0 0\r\nm=audio 4002 RTP/AVP 0 8\r\na=sendonly\r\n";
    let n = renegotiate(&current, hold.as_bytes()).unwrap();
    assert_eq!(
        (n.law, n.pt, n.telephone_event_pt),
        (Law::Alaw, 8, Some(101))
    );
    assert_eq!(n.remote, "10.0.0.2:4002".parse().unwrap());
    assert_eq!(n.direction, Direction::SendOnly);
    assert_eq!(renegotiate(&current, b"").unwrap(), current);
    let ulaw_only = "v=0\r\nc=IN IP4 10.0.0.1\r\nm=audio 4000 RTP/AVP 0\r\n";
    assert!(renegotiate(&current, ulaw_only.as_bytes()).is_err());
}

#[test]
fn a_late_offer_lists_both_laws_and_telephone_event_and_parses_back() {
    let ip: std::net::IpAddr = "192.0.2.7".parse().unwrap();
    let text = build_offer_of(ip, 20000, &[Law::Ulaw, Law::Alaw], 101, 5, 1);
    assert!(text.contains("m=audio 20000 RTP/AVP 0 8 101\r\n"), "{text}");
    assert!(text.contains("a=rtpmap:8 PCMA/8000\r\n"));
    let back = MediaOffer::parse(&text).unwrap();
    assert_eq!(back.payload_types, vec![0, 8, 101]);
    assert_eq!(back.telephone_event_pt, Some(101));
}
