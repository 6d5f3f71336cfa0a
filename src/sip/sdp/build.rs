//! Writing SDP: our answer to a negotiated offer, and our offer for the server leg.

use std::fmt::Write as _;
use std::net::IpAddr;

use super::{Direction, Negotiated};
use crate::media::g711::Law;

/// Writes the session part (`v=`, `o=`, `s=`, `c=`, `t=`).
fn write_session(out: &mut String, ip: IpAddr, session_id: u64, version: u64) {
    let family = if ip.is_ipv4() { "IP4" } else { "IP6" };
    let _ = write!(
        out,
        "v=0\r\no=dialin {session_id} {version} IN {family} {ip}\r\ns=dialin\r\n"
    );
    let _ = write!(out, "c=IN {family} {ip}\r\nt=0 0\r\n");
}

/// Writes our audio m-section with `codecs` (payload type, law) in order of preference.
fn write_audio(
    out: &mut String,
    port: u16,
    codecs: &[(u8, Law)],
    te_pt: Option<u8>,
    direction: Direction,
) {
    let _ = write!(out, "m=audio {port} RTP/AVP");
    for (pt, _) in codecs {
        let _ = write!(out, " {pt}");
    }
    if let Some(te) = te_pt {
        let _ = write!(out, " {te}");
    }
    out.push_str("\r\n");
    for (pt, law) in codecs {
        let _ = write!(out, "a=rtpmap:{pt} {}/8000\r\n", law.encoding_name());
    }
    if let Some(te) = te_pt {
        let _ = write!(
            out,
            "a=rtpmap:{te} telephone-event/8000\r\na=fmtp:{te} 0-16\r\n"
        );
    }
    let _ = write!(out, "a=ptime:20\r\na={}\r\n", direction.attribute());
}

/// Writes the SDP answer to a negotiated offer, with CRLF line endings. The audio stream keeps
/// its position; every other offered m-line is rejected with port 0. Pass
/// `n.direction.answer_to()` as `our_direction` unless we hold the call ourselves.
pub fn build_answer(
    local_ip: IpAddr,
    local_port: u16,
    n: &Negotiated,
    session_id: u64,
    version: u64,
    our_direction: Direction,
) -> String {
    let mut out = String::with_capacity(320);
    write_session(&mut out, local_ip, session_id, version);
    // The audio stream keeps its offered position; rejected lines fill the other slots in order.
    let audio_at = n.position.min(n.other_media.len());
    let mut rejected = n.other_media.iter();
    for slot in 0..=n.other_media.len() {
        if slot == audio_at {
            write_audio(
                &mut out,
                local_port,
                &[(n.pt, n.law)],
                n.telephone_event_pt,
                our_direction,
            );
        } else if let Some(r) = rejected.next() {
            // Keep the line well-formed even when the offered one was not.
            let (media, proto) = (or(&r.media, "audio"), or(&r.proto, "RTP/AVP"));
            let _ = write!(out, "m={media} 0 {proto} {}\r\n", or(&r.formats, "0"));
        }
    }
    out
}

/// Writes the SDP offer for the server leg: the trunk's law and telephone-event, sendrecv,
/// CRLF line endings.
pub fn build_offer(
    local_ip: IpAddr,
    local_port: u16,
    law: Law,
    telephone_event_pt: u8,
    session_id: u64,
    version: u64,
) -> String {
    build_offer_of(
        local_ip,
        local_port,
        &[law],
        telephone_event_pt,
        session_id,
        version,
    )
}

/// Writes an SDP offer of several laws (in order of preference) plus telephone-event: the
/// offer in our 200 OK to an INVITE that came without one (late offer, RFC 3261 §13.2.1).
pub fn build_offer_of(
    local_ip: IpAddr,
    local_port: u16,
    laws: &[Law],
    telephone_event_pt: u8,
    session_id: u64,
    version: u64,
) -> String {
    let mut out = String::with_capacity(256);
    write_session(&mut out, local_ip, session_id, version);
    let codecs: Vec<(u8, Law)> = laws.iter().map(|l| (l.payload_type(), *l)).collect();
    write_audio(
        &mut out,
        local_port,
        &codecs,
        Some(telephone_event_pt),
        Direction::SendRecv,
    );
    out
}

/// `text`, or `default` when it is empty.
fn or<'a>(text: &'a str, default: &'a str) -> &'a str {
    if text.is_empty() {
        default
    } else {
        text
    }
}
