//! SRTP (SDES, AES_CM_128_HMAC_SHA1_80) on the trunk leg through the real `dialin` binary.
//!
//! The caller is a small Rust SIP/SRTP peer (sipp cannot encrypt RTP): it offers `RTP/SAVP`
//! with its key, takes dialin's key from the 200, sends its audio and key presses (the echo
//! test's PIN) as SRTP, and decrypts everything dialin sends: the prompt and then its own audio
//! echoed back. The cipher itself is checked against RFC 3711's vectors in the unit tests.

use crate::support::dialin::TestConfig;
use crate::support::payload;
use crate::support::pcap::CallerStream;
use crate::support::ports::PortBlock;
use crate::support::sipp::{Scenario, Sipp};
use dialin::media::srtp::{SrtpContext, INLINE_KEY_LEN, TAG_LEN};
use dialin::sip::sdes::parse_offer;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

const DIALLED: &str = "4930555000";

/// The caller's SRTP key (key || salt).
const CALLER_KEY: [u8; INLINE_KEY_LEN] = *b"caller-srtp-master-key-and-slt";

fn no_server() -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, PortBlock::take(1).base))
}

/// Base64 of the caller's key, for its crypto line (standard alphabet, 30 bytes → 40 chars).
fn caller_key_b64() -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    CALLER_KEY
        .chunks(3)
        .flat_map(|c| {
            let n = u32::from(c[0]) << 16 | u32::from(c[1]) << 8 | u32::from(c[2]);
            (0..4).map(move |i| ABC[(n >> (18 - 6 * i) & 63) as usize] as char)
        })
        .collect()
}

/// What the SRTP caller saw.
struct CallReport {
    /// Final status of the INVITE.
    invite_status: u16,
    /// Packets from dialin that authenticated and decrypted.
    decrypted: usize,
    /// Packets from dialin that did not.
    failed: usize,
    /// Decrypted packets carrying the caller's own audio (the echo).
    echoed: usize,
}

/// Reads SIP responses on `sip` until a final one for `cseq_method`; returns it.
fn final_response(sip: &UdpSocket, cseq_method: &str) -> String {
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        let Ok((n, _)) = sip.recv_from(&mut buf) else {
            continue;
        };
        let text = String::from_utf8_lossy(&buf[..n]).to_string();
        let final_ = text.starts_with("SIP/2.0 ") && !text.starts_with("SIP/2.0 1");
        if final_ && text.contains(&format!(" {cseq_method}\r\n")) {
            return text;
        }
    }
    panic!("no final response to {cseq_method}");
}

/// A call offering SRTP: PIN `00000#` (echo test), then 2 s of audio, then BYE.
fn srtp_call(dialin: SocketAddr, proto: &str) -> CallReport {
    let sip = UdpSocket::bind("127.0.0.1:0").unwrap();
    sip.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let rtp = UdpSocket::bind("127.0.0.1:0").unwrap();
    rtp.set_read_timeout(Some(Duration::from_millis(5)))
        .unwrap();
    let (me, media) = (sip.local_addr().unwrap(), rtp.local_addr().unwrap());
    let sdp = format!(
        "v=0\r\no=caller 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m=audio {} {proto} 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n\
         a=fmtp:101 0-16\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{}|2^31\r\na=sendrecv\r\n",
        media.port(),
        caller_key_b64()
    );
    let request = |method: &str, cseq: u32, to_tag: &str, body: &str| {
        format!(
            "{method} sip:{DIALLED}@{dialin} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK-s{cseq}{method}\r\n\
             From: <sip:caller@{me}>;tag=s1\r\nTo: <sip:{DIALLED}@{dialin}>{to_tag}\r\nCall-ID: srtp-1@x\r\n\
             CSeq: {cseq} {method}\r\nContact: <sip:caller@{me}>\r\nMax-Forwards: 70\r\n{}Content-Length: {}\r\n\r\n{body}",
            if body.is_empty() { "" } else { "Content-Type: application/sdp\r\n" },
            body.len()
        )
    };
    sip.send_to(request("INVITE", 1, "", &sdp).as_bytes(), dialin)
        .unwrap();
    let answer = final_response(&sip, "INVITE");
    let status: u16 = answer[8..11].parse().unwrap();
    let mut report = CallReport {
        invite_status: status,
        decrypted: 0,
        failed: 0,
        echoed: 0,
    };
    let to_tag = answer
        .lines()
        .find(|l| l.starts_with("To:"))
        .and_then(|l| l.split(";tag=").nth(1))
        .map(|t| format!(";tag={}", t.trim()))
        .unwrap_or_default();
    sip.send_to(request("ACK", 1, &to_tag, "").as_bytes(), dialin)
        .unwrap();
    if status != 200 {
        return report;
    }
    let body = answer.split("\r\n\r\n").nth(1).unwrap_or("");
    assert!(body.contains("m=audio "), "{answer}");
    if proto == "RTP/SAVP" {
        assert!(
            body.contains(" RTP/SAVP "),
            "answered with the offered profile:\n{body}"
        );
    }
    let (_, dialin_key) = parse_offer(body.as_bytes())
        .crypto
        .unwrap_or_else(|| panic!("no usable crypto line in the answer:\n{body}"));
    let dialin_port: u16 = body
        .lines()
        .find_map(|l| l.strip_prefix("m=audio "))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|p| p.parse().ok())
        .unwrap();
    let dialin_media = SocketAddr::from((Ipv4Addr::LOCALHOST, dialin_port));
    let (mut tx, mut rx) = (SrtpContext::new(&CALLER_KEY), SrtpContext::new(&dialin_key));
    let stream = CallerStream::new("00000#").tail(Duration::from_secs(2));
    let start = Instant::now();
    let mut buf = [0u8; 1500];
    for packet in stream.packets() {
        while start.elapsed() < packet.at {
            receive(&rtp, &mut rx, &mut buf, &mut report);
        }
        let mut out = [0u8; 1500];
        out[..packet.rtp.len()].copy_from_slice(&packet.rtp);
        let len = tx.protect(&mut out, packet.rtp.len()).unwrap();
        rtp.send_to(&out[..len], dialin_media).unwrap();
    }
    let drain = Instant::now() + Duration::from_millis(300);
    while Instant::now() < drain {
        receive(&rtp, &mut rx, &mut buf, &mut report);
    }
    sip.send_to(request("BYE", 2, &to_tag, "").as_bytes(), dialin)
        .unwrap();
    assert!(final_response(&sip, "BYE").starts_with("SIP/2.0 200"));
    report
}

/// Receives what is waiting on `rtp` and decrypts it.
fn receive(rtp: &UdpSocket, rx: &mut SrtpContext, buf: &mut [u8], report: &mut CallReport) {
    let Ok((n, _)) = rtp.recv_from(buf) else {
        return;
    };
    match rx.unprotect(buf, n) {
        Ok(len) => {
            report.decrypted += 1;
            assert_eq!(len, n - TAG_LEN);
            if payload::is_caller_audio(&buf[12..len]) {
                report.echoed += 1;
            }
        }
        Err(_) => report.failed += 1,
    }
}

#[test]
fn an_srtp_caller_hears_the_prompt_and_its_echo_encrypted() {
    let cfg = TestConfig::new(no_server());
    let dialin = cfg.start();
    let report = srtp_call(cfg.sip, "RTP/SAVP");
    assert_eq!(report.invite_status, 200);
    assert_eq!(report.failed, 0, "every packet from dialin authenticates");
    assert!(
        report.decrypted >= 100,
        "{} packets decrypted",
        report.decrypted
    );
    // The PIN arrived encrypted (the echo test started) and the echo came back encrypted.
    assert!(report.echoed >= 30, "{} echoed frames", report.echoed);
    assert_eq!(dialin.status_value("echo_tests"), 1);
    dialin.assert_idle(Duration::from_secs(5));
}

#[test]
fn a_trunk_requiring_srtp_refuses_plain_rtp_with_488() {
    let mut cfg = TestConfig::new(no_server());
    cfg.allow = "[\"127.0.0.0/8\"]\nsrtp = \"required\"".into();
    let dialin = cfg.start();
    // sipp's plain RTP/AVP offer.
    let outcome = Sipp::new(Scenario::caller_rejected())
        .remote(cfg.sip)
        .service(DIALLED)
        .spawn()
        .wait();
    outcome.assert_success();
    assert_eq!(outcome.final_response_code(), Some(488));
    dialin.wait_for_line("refusing call: media security", Duration::from_secs(2));
    // The same trunk takes an SRTP call (offered with the plain profile plus a crypto line).
    let report = srtp_call(cfg.sip, "RTP/AVP");
    assert_eq!(report.invite_status, 200);
    assert_eq!(report.failed, 0);
    assert!(report.echoed >= 30, "{} echoed frames", report.echoed);
    dialin.assert_idle(Duration::from_secs(5));
}
