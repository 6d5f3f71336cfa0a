//! Requests a UAS must refuse with a particular code (RFC 3261 §8.2, as RFC 4475's torture
//! tests expect), sent to the real binary over UDP and TCP. The messages are modelled on RFC
//! 4475's `unkscm`, `novelsc`, `invut`, `sdp01` and its REGISTER to a UAS; each gets its answer,
//! and none becomes a call.

use crate::stuck::no_server;
use crate::support::dialin::TestConfig;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

/// `text` (LF line ends) as a SIP message over `transport` to `sip`; the status code of the
/// first final response, if one comes within 3 s.
fn final_code(sip: SocketAddr, transport: &str, text: &str) -> Option<u16> {
    let local = "127.0.0.1";
    let via = format!("SIP/2.0/{} {local}", transport.to_uppercase());
    let msg = text.replace("VIA", &via).replace('\n', "\r\n");
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut buf = [0u8; 4096];
    if transport == "udp" {
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        let msg = msg.replace(local, &sock.local_addr().unwrap().to_string());
        sock.send_to(msg.as_bytes(), sip).unwrap();
        while Instant::now() < deadline {
            sock.set_read_timeout(Some(Duration::from_millis(200)))
                .unwrap();
            if let Ok((n, _)) = sock.recv_from(&mut buf) {
                got.push(String::from_utf8_lossy(&buf[..n]).to_string());
                if let Some(c) = code_of(got.last().unwrap()) {
                    return Some(c);
                }
            }
        }
        return None;
    }
    let mut stream = TcpStream::connect(sip).unwrap();
    let msg = msg.replace(local, &stream.local_addr().unwrap().to_string());
    stream.write_all(msg.as_bytes()).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut text = String::new();
    while Instant::now() < deadline {
        if let Ok(n) = stream.read(&mut buf) {
            if n == 0 {
                break;
            }
            text.push_str(&String::from_utf8_lossy(&buf[..n]));
            for part in text.split("SIP/2.0 ").skip(1) {
                if let Some(c) = code_of(&format!("SIP/2.0 {part}")) {
                    return Some(c);
                }
            }
        }
    }
    None
}

/// The code of a final response.
fn code_of(text: &str) -> Option<u16> {
    let code: u16 = text.strip_prefix("SIP/2.0 ")?.get(..3)?.parse().ok()?;
    (code >= 200).then_some(code)
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
            let got = final_code(cfg.sip, transport, &request(start, extra, body, n));
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
