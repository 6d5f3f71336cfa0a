//! The checks on messages modelled on RFC 4475's torture tests (named after them: `unkscm`,
//! `novelsc`, `invut`, `sdp01`), and on ordinary requests that must pass.

use super::*;

fn parse(text: &str) -> Request {
    Request::try_from(text.replace('\n', "\r\n").as_bytes()).expect("a parseable request")
}

/// A request with `start` as its request line, `extra` headers and `body`.
fn request(start: &str, extra: &str, body: &str) -> Request {
    let method = start.split(' ').next().unwrap_or("OPTIONS");
    parse(&format!(
        "{start}\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK-rc\nTo: <sip:j.user@example.com>\n\
         From: <sip:caller@example.net>;tag=384\nMax-Forwards: 3\nCall-ID: rc.1@192.0.2.1\n\
         CSeq: 1 {method}\n{extra}Content-Length: {}\n\n{body}",
        body.len()
    ))
}

const SDP: &str = "v=0\no=- 1 1 IN IP4 192.0.2.1\ns=-\nc=IN IP4 192.0.2.1\nt=0 0\n\
                   m=audio 4000 RTP/AVP 0\na=rtpmap:0 PCMU/8000\n";

fn code(r: Result<(), Refusal>) -> Option<u16> {
    r.err().map(|(c, _)| u16::from(c))
}

#[test]
fn schemes_dialin_does_not_serve_get_416() {
    // unkscm and novelsc: an opaque URI and one of a scheme nobody knows.
    for uri in [
        "nobodyknowsthisscheme:totallyopaquecontent",
        "soap.beep://192.0.2.103:3002",
    ] {
        let req = request(&format!("OPTIONS {uri} SIP/2.0"), "", "");
        assert_eq!(code(check_scheme(&req)), Some(416), "{uri}");
    }
    for uri in [
        "sip:71234@192.0.2.5",
        "sips:71234@192.0.2.5",
        "tel:+4930555100",
    ] {
        let req = request(&format!("INVITE {uri} SIP/2.0"), "", "");
        assert_eq!(code(check_scheme(&req)), None, "{uri}");
    }
}

#[test]
fn an_invite_body_that_is_not_sdp_gets_415_with_accept() {
    // invut: a body of a type nobody knows.
    let req = request(
        "INVITE sip:j_user@example.com SIP/2.0",
        "Content-Type: application/unknownformat\n",
        "<audio>\n <pcmu port=\"443\"/>\n</audio>\n",
    );
    let (status, headers) = check_invite_content(&req).unwrap_err();
    assert_eq!(u16::from(status), 415);
    assert_eq!(headers[0].to_string(), "Accept: application/sdp");
    // SDP, with parameters and in capitals, passes; so does a late offer.
    for ct in ["application/sdp", "Application/SDP; charset=utf-8"] {
        let req = request(
            "INVITE sip:71234@192.0.2.5 SIP/2.0",
            &format!("Content-Type: {ct}\n"),
            SDP,
        );
        assert_eq!(code(check_invite_content(&req)), None, "{ct}");
    }
    let late = request("INVITE sip:71234@192.0.2.5 SIP/2.0", "", "");
    assert_eq!(code(check_invite_content(&late)), None);
}

#[test]
fn an_accept_that_rules_out_sdp_gets_406() {
    // sdp01: the answer must be of a type nobody knows.
    let sdp01 = request(
        "INVITE sip:sdp01@example.com SIP/2.0",
        "Content-Type: application/sdp\nAccept: text/nobodyknowsthis\n",
        SDP,
    );
    assert_eq!(code(check_invite_content(&sdp01)), Some(406));
    for accept in [
        "application/sdp",
        "text/plain, application/sdp;level=1",
        "application/*",
        "*/*",
    ] {
        let req = request(
            "INVITE sip:71234@192.0.2.5 SIP/2.0",
            &format!("Content-Type: application/sdp\nAccept: {accept}\n"),
            SDP,
        );
        assert_eq!(code(check_invite_content(&req)), None, "{accept}");
    }
}

#[test]
fn methods_dialin_never_takes_outside_a_call_get_405_with_allow() {
    for m in [
        Method::Register,
        Method::Message,
        Method::Subscribe,
        Method::Publish,
        Method::Refer,
    ] {
        let (status, headers) = outside_dialog(m);
        assert_eq!(u16::from(status), 405, "{m}");
        assert_eq!(headers[0].to_string(), format!("Allow: {ALLOW}"), "{m}");
    }
    for m in [
        Method::Bye,
        Method::Info,
        Method::Update,
        Method::Notify,
        Method::Cancel,
    ] {
        assert_eq!(u16::from(outside_dialog(m).0), 481, "{m}");
    }
}
