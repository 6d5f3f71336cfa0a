//! Requests a UAS must refuse with a particular code (RFC 3261 §8.2, as RFC 4475's torture
//! tests expect), sent to the real binary over UDP and TCP. The messages are modelled on RFC
//! 4475's `unkscm`, `novelsc`, `invut`, `sdp01` and its REGISTER to a UAS; each gets its answer,
//! and none becomes a call.

use crate::stuck::no_server;
use crate::support::dialin::TestConfig;
use crate::support::rawsip::RawCall;
use std::net::SocketAddr;
use std::time::Duration;

/// `text` (LF line ends; `VIA` stands for the sender's Via) sent over `transport` to `sip`
/// from a raw caller; the status code of the first final response, if one comes within 3 s.
fn final_code(sip: SocketAddr, transport: &str, text: &str, n: usize) -> Option<u16> {
    let tag = format!("torture-{n}");
    let mut call = match transport {
        "udp" => RawCall::udp(sip, &tag),
        _ => RawCall::tcp(sip, &tag),
    };
    let via = format!("SIP/2.0/{} {}", transport.to_uppercase(), call.local_addr());
    call.send_raw(text.replace("VIA", &via).replace('\n', "\r\n").as_bytes());
    let (got, _) = call.read_until(Duration::from_secs(3), |m| {
        m.status_code().is_some_and(|c| c >= 200)
    });
    got.last()
        .and_then(|m| m.status_code())
        .filter(|c| *c >= 200)
}

const SDP: &str = "v=0\no=- 1 1 IN IP4 127.0.0.1\ns=-\nc=IN IP4 127.0.0.1\nt=0 0\n\
                   m=audio 4000 RTP/AVP 0\na=rtpmap:0 PCMU/8000\n";

/// A request: `start` line, `extra` headers, `body`; `n` makes its Call-ID unique.
fn request(start: &str, extra: &str, body: &str, n: usize) -> String {
    let method = start.split(' ').next().unwrap();
    format!(
        "{start}\nVia: VIA;branch=z9hG4bK-torture-{n}\nTo: <sip:j.user@example.com>\n\
         From: <sip:caller@example.net>;tag=384-{n}\nMax-Forwards: 3\nCall-ID: torture-{n}\n\
         CSeq: 1 {method}\nContact: <sip:caller@127.0.0.1>\n{extra}Content-Length: {}\n\n{body}",
        body.len()
    )
}

#[test]
fn requests_a_uas_must_refuse_get_their_code_over_udp_and_tcp() {
    let cfg = TestConfig::new(no_server());
    let dialin = cfg.start();
    let cases: [(&str, &str, &str, &str, u16); 6] = [
        (
            "unkscm",
            "OPTIONS nobodyknowsthisscheme:totallyopaquecontent SIP/2.0",
            "",
            "",
            416,
        ),
        (
            "novelsc",
            "OPTIONS soap.beep://192.0.2.103:3002 SIP/2.0",
            "",
            "",
            416,
        ),
        (
            "invut",
            "INVITE sip:71234@127.0.0.1 SIP/2.0",
            "Content-Type: application/unknownformat\n",
            "<audio>\n <pcmu port=\"443\"/>\n</audio>\n",
            415,
        ),
        (
            "sdp01",
            "INVITE sip:71234@127.0.0.1 SIP/2.0",
            "Content-Type: application/sdp\nAccept: text/nobodyknowsthis\n",
            SDP,
            406,
        ),
        ("register", "REGISTER sip:127.0.0.1 SIP/2.0", "", "", 405),
        (
            "message",
            "MESSAGE sip:71234@127.0.0.1 SIP/2.0",
            "Content-Type: text/plain\n",
            "hi",
            405,
        ),
    ];
    let mut n = 0;
    for transport in ["udp", "tcp"] {
        for (name, start, extra, body, want) in cases {
            n += 1;
            let got = final_code(cfg.sip, transport, &request(start, extra, body, n), n);
            assert_eq!(
                got,
                Some(want),
                "{name} over {transport}; log:\n{}",
                dialin.log()
            );
        }
    }
    assert!(!dialin.log().contains("incoming call"), "{}", dialin.log());
    dialin.assert_idle(Duration::from_secs(5));
}
