//! SDP offer/answer (RFC 3264) for one G.711 audio stream plus RFC 4733 telephone-events.
//!
//! dialin only ever bridges audio, so a received SDP body (offer or answer) is parsed once at the
//! edge into a [`MediaOffer`] describing the first usable audio stream; [`negotiate`] picks the
//! codec, and [`build_answer`] / [`build_offer`] write our side. Everything here is pure and
//! tolerant: any byte sequence yields a value or an [`SdpError`], never a panic.

use std::net::{IpAddr, SocketAddr};

use crate::media::g711::Law;

mod build;

pub use build::{build_answer, build_offer, build_offer_of};

/// The telephone-event payload type dialin offers on the server leg (FreeSWITCH's default).
pub const DEFAULT_TELEPHONE_EVENT_PT: u8 = 101;

/// The laws dialin speaks, in the order it prefers them when it makes the offer.
pub const SUPPORTED_LAWS: [Law; 2] = [Law::Ulaw, Law::Alaw];

/// Why an SDP body cannot be used; the SIP layer maps these to 488 Not Acceptable Here.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SdpError {
    /// No `m=audio` line with a non-zero port: nothing for dialin to bridge.
    #[error("the SDP has no active audio stream (m=audio with a non-zero port); the peer must offer audio")]
    NoAudio,
    /// The `m=audio` line has no parseable port.
    #[error("the SDP m=audio line has no valid port; the peer's SDP is malformed")]
    BadPort,
    /// The `c=` line that applies to the audio stream is malformed or not an IP address.
    #[error("the SDP c= line for the audio stream is not \"IN IP4|IP6 <address>\"; the peer's SDP is malformed")]
    BadConnection,
    /// Neither the audio stream nor the session has a `c=` line.
    #[error("the SDP has no c= line for the audio stream; the peer's SDP is malformed")]
    NoConnection,
    /// The peer offers neither PCMU nor PCMA (in the allowed set).
    #[error("the peer offers no codec dialin supports; enable PCMU (G.711 µ-law) or PCMA (G.711 A-law) on the trunk")]
    NoCommonCodec,
}

/// A media direction attribute (RFC 3264 §5.1). Hold shows up as `sendonly` or `inactive`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Direction {
    /// Both ways (the default when no attribute is present).
    #[default]
    SendRecv,
    /// The SDP's author only sends (it puts the other side on hold).
    SendOnly,
    /// The SDP's author only receives.
    RecvOnly,
    /// No media either way.
    Inactive,
}

impl Direction {
    /// The direction to answer an offer with: `sendonly` (hold) → `recvonly`, `recvonly` →
    /// `sendonly` (RFC 3264 §6.1), `inactive` → `inactive`, else `sendrecv`.
    pub fn answer_to(self) -> Direction {
        match self {
            Direction::SendRecv => Direction::SendRecv,
            Direction::SendOnly => Direction::RecvOnly,
            Direction::RecvOnly => Direction::SendOnly,
            Direction::Inactive => Direction::Inactive,
        }
    }

    /// The SDP attribute name.
    pub fn attribute(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }

    /// Parses a direction attribute name.
    fn from_attribute(name: &str) -> Option<Direction> {
        Some(match name {
            "sendrecv" => Direction::SendRecv,
            "sendonly" => Direction::SendOnly,
            "recvonly" => Direction::RecvOnly,
            "inactive" => Direction::Inactive,
            _ => return None,
        })
    }

    /// The effective direction when the connection address is `0.0.0.0` (RFC 2543 hold): the
    /// author does not want to receive.
    fn without_receive(self) -> Direction {
        match self {
            Direction::SendRecv | Direction::SendOnly => Direction::SendOnly,
            Direction::RecvOnly | Direction::Inactive => Direction::Inactive,
        }
    }
}

/// An `a=rtpmap` entry (or the static mapping of PT 0/8 and friends when it is missing).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RtpMap {
    /// The payload type.
    pub pt: u8,
    /// The encoding name as written (`PCMU`, `telephone-event`, …).
    pub name: String,
    /// The RTP clock rate in Hz.
    pub clock: u32,
}

/// An m-line dialin does not use; the answer must repeat it with port 0 (RFC 3264 §6).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RejectedMedia {
    /// Its position among the SDP's m-lines.
    pub position: usize,
    /// The media type (`video`, `audio`, …).
    pub media: String,
    /// The transport protocol (`RTP/AVP`, `RTP/SAVP`, …).
    pub proto: String,
    /// The format list as offered.
    pub formats: String,
}

/// The audio stream of a received SDP body (offer or answer), parsed once at the edge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MediaOffer {
    /// Where the peer receives RTP (media-level `c=`, else session-level).
    pub addr: IpAddr,
    /// The peer's RTP port.
    pub port: u16,
    /// The payload types in `m=` order (the peer's preference).
    pub payload_types: Vec<u8>,
    /// Encoding name and clock per payload type, in `m=` order, where known.
    pub rtpmaps: Vec<RtpMap>,
    /// The payload type of `telephone-event/8000`, if offered.
    pub telephone_event_pt: Option<u8>,
    /// The peer's direction (media level overrides session level; `c=0.0.0.0` means hold).
    pub direction: Direction,
    /// `a=ptime` in milliseconds, if given.
    pub ptime: Option<u32>,
    /// The position of this audio stream among the m-lines.
    pub position: usize,
    /// Every other m-line, to be rejected in an answer.
    pub other_media: Vec<RejectedMedia>,
}

/// The outcome of offer/answer for one leg: what to send and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Negotiated {
    /// The G.711 law both sides use.
    pub law: Law,
    /// The payload type the peer uses for it (usually 0 or 8).
    pub pt: u8,
    /// The peer's telephone-event payload type, if any.
    pub telephone_event_pt: Option<u8>,
    /// Where to send RTP.
    pub remote: SocketAddr,
    /// The peer's direction.
    pub direction: Direction,
    /// The position of the audio stream among the offer's m-lines.
    pub position: usize,
    /// The offer's other m-lines, rejected with port 0 in the answer.
    pub other_media: Vec<RejectedMedia>,
}

/// One m-line while parsing, with its raw connection line.
struct Section<'a> {
    media: &'a str,
    port: Option<u16>,
    proto: &'a str,
    formats: &'a str,
    connection: Option<&'a str>,
    direction: Option<Direction>,
    ptime: Option<u32>,
    rtpmaps: Vec<RtpMap>,
}

impl MediaOffer {
    /// Parses an SDP body. Tolerates `\n` or `\r\n`, unknown lines and attributes, missing
    /// `s=`/`t=` and invalid UTF-8; only the first `m=audio` line with a non-zero port counts.
    // Over 80 lines: one pass over the SDP lines with one arm per line type; split, the
    // session- and media-level state would have to travel between the parts.
    pub fn parse(body: impl AsRef<[u8]>) -> Result<MediaOffer, SdpError> {
        let text = String::from_utf8_lossy(body.as_ref());
        let mut session_connection = None;
        let mut session_direction = None;
        let mut session_ptime = None;
        let mut sections: Vec<Section<'_>> = Vec::new();
        for line in text.lines() {
            let line = line.trim_end_matches('\r');
            let Some((kind, value)) = line.split_once('=') else {
                continue;
            };
            match (kind, sections.last_mut()) {
                ("m", _) => sections.push(parse_m_line(value)),
                ("c", None) => session_connection = Some(value),
                ("c", Some(s)) => s.connection = Some(value),
                ("a", current) => {
                    let (name, arg) = value.split_once(':').unwrap_or((value, ""));
                    let (direction, ptime) = match current {
                        Some(s) => {
                            if name == "rtpmap" {
                                s.rtpmaps.extend(parse_rtpmap(arg));
                            }
                            (&mut s.direction, &mut s.ptime)
                        }
                        None => (&mut session_direction, &mut session_ptime),
                    };
                    if let Some(d) = Direction::from_attribute(name) {
                        *direction = Some(d);
                    } else if name == "ptime" {
                        *ptime = arg.trim().parse().ok();
                    }
                }
                _ => {}
            }
        }

        let mut chosen = None;
        let mut other_media = Vec::new();
        for (position, s) in sections.iter().enumerate() {
            let active = s.media == "audio" && s.port != Some(0);
            if active && chosen.is_none() {
                chosen = Some((position, s));
            } else {
                other_media.push(RejectedMedia {
                    position,
                    media: s.media.to_string(),
                    proto: s.proto.to_string(),
                    formats: s.formats.to_string(),
                });
            }
        }
        let (position, s) = chosen.ok_or(SdpError::NoAudio)?;
        let port = s.port.ok_or(SdpError::BadPort)?;
        let addr = parse_connection(
            s.connection
                .or(session_connection)
                .ok_or(SdpError::NoConnection)?,
        )?;
        let payload_types: Vec<u8> = s
            .formats
            .split_whitespace()
            .filter_map(|f| f.parse().ok())
            .collect();
        let rtpmaps: Vec<RtpMap> = payload_types
            .iter()
            .filter_map(|&pt| {
                let explicit = s.rtpmaps.iter().find(|m| m.pt == pt).cloned();
                explicit.or_else(|| static_rtpmap(pt))
            })
            .collect();
        let telephone_event_pt = rtpmaps
            .iter()
            .find(|m| m.name.eq_ignore_ascii_case("telephone-event") && m.clock == 8000)
            .map(|m| m.pt);
        let mut direction = s.direction.or(session_direction).unwrap_or_default();
        if addr.is_unspecified() {
            direction = direction.without_receive();
        }
        Ok(MediaOffer {
            addr,
            port,
            payload_types,
            rtpmaps,
            telephone_event_pt,
            direction,
            ptime: s.ptime.or(session_ptime),
            position,
            other_media,
        })
    }

    /// The G.711 law a payload type stands for in this SDP, if any.
    fn law_of(&self, pt: u8) -> Option<Law> {
        let map = self.rtpmaps.iter().find(|m| m.pt == pt)?;
        if map.clock != 8000 {
            return None;
        }
        [Law::Ulaw, Law::Alaw]
            .into_iter()
            .find(|law| map.name.eq_ignore_ascii_case(law.encoding_name()))
    }
}

/// Splits `m=<media> <port>[/<count>] <proto> <fmt>...`.
fn parse_m_line(value: &str) -> Section<'_> {
    let mut parts = value.splitn(4, ' ');
    let media = parts.next().unwrap_or("");
    let port = parts
        .next()
        .and_then(|p| p.split('/').next())
        .and_then(|p| p.parse().ok());
    let proto = parts.next().unwrap_or("");
    let formats = parts.next().unwrap_or("").trim();
    Section {
        media,
        port,
        proto,
        formats,
        connection: None,
        direction: None,
        ptime: None,
        rtpmaps: Vec::new(),
    }
}

/// Parses the argument of `a=rtpmap:<pt> <name>/<clock>[/<channels>]`.
fn parse_rtpmap(arg: &str) -> Option<RtpMap> {
    let (pt, encoding) = arg.trim().split_once(' ')?;
    let mut parts = encoding.trim().split('/');
    let name = parts.next()?.to_string();
    let clock = parts.next()?.trim().parse().ok()?;
    Some(RtpMap {
        pt: pt.parse().ok()?,
        name,
        clock,
    })
}

/// The static payload types of RFC 3551 a telephone peer may list without an rtpmap.
fn static_rtpmap(pt: u8) -> Option<RtpMap> {
    let name = match pt {
        0 => "PCMU",
        3 => "GSM",
        8 => "PCMA",
        9 => "G722",
        13 => "CN",
        18 => "G729",
        _ => return None,
    };
    Some(RtpMap {
        pt,
        name: name.to_string(),
        clock: 8000,
    })
}

/// Parses `IN IP4 <addr>[/ttl]` or `IN IP6 <addr>`.
fn parse_connection(value: &str) -> Result<IpAddr, SdpError> {
    let mut parts = value.split_whitespace();
    let (Some("IN"), Some(family), Some(addr)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(SdpError::BadConnection);
    };
    let addr: IpAddr = addr
        .split('/')
        .next()
        .unwrap_or("")
        .parse()
        .map_err(|_| SdpError::BadConnection)?;
    match (family, addr) {
        ("IP4", IpAddr::V4(_)) | ("IP6", IpAddr::V6(_)) => Ok(addr),
        _ => Err(SdpError::BadConnection),
    }
}

/// Picks the codec: the first payload type in the offer's order whose law is in `allowed`, plus
/// the offered telephone-event payload type. `allowed` is a set; the offer's order wins, as
/// RFC 3264 §6.1 recommends.
pub fn negotiate(offer: &MediaOffer, allowed: &[Law]) -> Result<Negotiated, SdpError> {
    let (pt, law) = offer
        .payload_types
        .iter()
        .find_map(|&pt| {
            offer
                .law_of(pt)
                .filter(|law| allowed.contains(law))
                .map(|law| (pt, law))
        })
        .ok_or(SdpError::NoCommonCodec)?;
    Ok(Negotiated {
        law,
        pt,
        telephone_event_pt: offer.telephone_event_pt,
        remote: SocketAddr::new(offer.addr, offer.port),
        direction: offer.direction,
        position: offer.position,
        other_media: offer.other_media.clone(),
    })
}

/// A new offer within an established session (re-INVITE): the codec and payload types stay as
/// negotiated, the address, direction and m-line layout come from the new offer. An empty
/// body (a re-INVITE without an offer) keeps `current`. An offer that drops our codec is an
/// error (answer 488 and keep the session as it was).
pub fn renegotiate(current: &Negotiated, body: &[u8]) -> Result<Negotiated, SdpError> {
    if body.is_empty() {
        return Ok(current.clone());
    }
    let fresh = negotiate(&MediaOffer::parse(body)?, &[current.law])?;
    Ok(Negotiated {
        law: current.law,
        pt: current.pt,
        telephone_event_pt: current.telephone_event_pt,
        ..fresh
    })
}

#[cfg(test)]
mod tests;
