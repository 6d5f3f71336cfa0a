//! SDES key exchange (RFC 4568) for SRTP on the trunk leg: the `a=crypto` lines of the caller's
//! offer, the decision whether the call uses SRTP (by the trunk's `srtp` setting), and our
//! answer's crypto line with a fresh key. Only AES_CM_128_HMAC_SHA1_80 without MKI is
//! accepted; parsing is pure and never logs a key.

use crate::media::srtp::INLINE_KEY_LEN;
use base64::Engine as _;

/// A trunk's SRTP setting (`srtp` of `[trunk]` / `[[trunks]]`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum SrtpPolicy {
    /// Use SRTP when the caller offers it, plain RTP otherwise (default).
    #[default]
    Optional,
    /// Refuse calls without SRTP (`488`).
    Required,
    /// Never use SRTP: an offer that insists on it (`RTP/SAVP`) gets `488`.
    Off,
}

/// The suite dialin speaks.
const SUITE: &str = "AES_CM_128_HMAC_SHA1_80";

/// What the caller's offer says about SRTP for its audio stream.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SdesOffer {
    /// The audio stream's profile is `RTP/SAVP` (SRTP only).
    pub savp: bool,
    /// The first usable crypto line: its tag and the caller's inline key.
    pub crypto: Option<(u32, [u8; INLINE_KEY_LEN])>,
}

/// Reads the crypto lines and profile of the first active `m=audio` section of `body`.
pub fn parse_offer(body: &[u8]) -> SdesOffer {
    let text = String::from_utf8_lossy(body);
    let mut offer = SdesOffer::default();
    let mut in_audio = false;
    let mut seen_audio = false;
    for line in text.lines().map(|l| l.trim_end_matches('\r')) {
        if let Some(m) = line.strip_prefix("m=") {
            let mut parts = m.split_whitespace();
            let (media, port, proto) = (parts.next(), parts.next(), parts.next());
            in_audio = !seen_audio && media == Some("audio") && port.is_some_and(|p| p != "0");
            if in_audio {
                seen_audio = true;
                offer.savp = proto.is_some_and(|p| p.eq_ignore_ascii_case("RTP/SAVP"));
            }
        } else if let (true, Some(crypto)) = (in_audio, line.strip_prefix("a=crypto:")) {
            if offer.crypto.is_none() {
                offer.crypto = parse_crypto(crypto);
            }
        }
    }
    offer
}

/// `<tag> AES_CM_128_HMAC_SHA1_80 inline:<base64 key||salt>[|lifetime]` without MKI.
fn parse_crypto(value: &str) -> Option<(u32, [u8; INLINE_KEY_LEN])> {
    let mut parts = value.split_whitespace();
    let tag = parts.next()?.parse().ok()?;
    if parts.next()? != SUITE {
        return None;
    }
    let key_params = parts.next()?.strip_prefix("inline:")?;
    let mut fields = key_params.split('|');
    let key = base64::engine::general_purpose::STANDARD
        .decode(fields.next()?)
        .ok()?;
    // A field with ':' is an MKI, which would add bytes to every packet: not supported.
    if fields.any(|f| f.contains(':')) {
        return None;
    }
    Some((tag, key.try_into().ok()?))
}

/// Why a call's media is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SdesRefusal {
    /// The trunk requires SRTP and the offer has no usable crypto line.
    #[error("the trunk requires SRTP (AES_CM_128_HMAC_SHA1_80) and the offer has none")]
    SrtpRequired,
    /// The offer insists on SRTP and offers nothing dialin can use, or SRTP is off.
    #[error("the offer requires SRTP that dialin cannot use on this trunk")]
    UnusableSrtp,
}

/// The answer side of a call using SRTP: the caller's key, our key and how to write our SDP.
#[derive(Clone, PartialEq, Eq)]
pub struct SdesAnswer {
    /// The crypto tag we answer.
    pub tag: u32,
    /// The caller's key: decrypts what it sends.
    pub remote_key: [u8; INLINE_KEY_LEN],
    /// Our key: encrypts what we send.
    pub local_key: [u8; INLINE_KEY_LEN],
    /// Whether to answer with the `RTP/SAVP` profile (as offered).
    pub savp: bool,
}

impl std::fmt::Debug for SdesAnswer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SdesAnswer(tag {}, keys hidden)", self.tag)
    }
}

/// Decides whether a call uses SRTP: `Ok(None)` for plain RTP, `Ok(Some)` with a fresh key of
/// ours for SRTP.
pub fn decide(offer: &SdesOffer, policy: SrtpPolicy) -> Result<Option<SdesAnswer>, SdesRefusal> {
    match (offer.crypto, policy) {
        (Some((tag, remote_key)), SrtpPolicy::Optional | SrtpPolicy::Required) => {
            Ok(Some(SdesAnswer {
                tag,
                remote_key,
                local_key: rand::random(),
                savp: offer.savp,
            }))
        }
        (_, SrtpPolicy::Required) => Err(SdesRefusal::SrtpRequired),
        (_, _) if offer.savp => Err(SdesRefusal::UnusableSrtp),
        _ => Ok(None),
    }
}

impl SdesAnswer {
    /// Our SDP with SRTP: the audio m-line gets `RTP/SAVP` (when offered so) and our crypto
    /// line follows it.
    pub fn secure(&self, sdp: &str) -> String {
        let key = base64::engine::general_purpose::STANDARD.encode(self.local_key);
        let crypto = format!("a=crypto:{} {SUITE} inline:{key}\r\n", self.tag);
        let mut out = String::with_capacity(sdp.len() + crypto.len());
        let mut done = false;
        for line in sdp.split_inclusive('\n') {
            let audio = !done && line.starts_with("m=audio ") && !line.starts_with("m=audio 0 ");
            if audio && self.savp {
                out.push_str(&line.replacen(" RTP/AVP ", " RTP/SAVP ", 1));
            } else {
                out.push_str(line);
            }
            if audio {
                out.push_str(&crypto);
                done = true;
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "WVNfX19zZWNyZXQgaW5saW5lIGtleSAxMjM0NTY3"; // 30 bytes

    fn offer(proto: &str, crypto: &str) -> String {
        format!(
            "v=0\r\nc=IN IP4 192.0.2.1\r\nm=video 0 RTP/AVP 96\r\nm=audio 4000 {proto} 0 101\r\n{crypto}a=sendrecv\r\n"
        )
    }

    #[test]
    fn parses_the_usable_crypto_line() {
        let table: &[(&str, &str, bool, Option<u32>)] = &[
            ("RTP/SAVP", &format!("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{KEY}\r\n"), true, Some(1)),
            ("RTP/SAVP", &format!("a=crypto:1 AES_CM_128_HMAC_SHA1_32 inline:{KEY}\r\na=crypto:2 AES_CM_128_HMAC_SHA1_80 inline:{KEY}|2^31\r\n"), true, Some(2)),
            ("RTP/SAVP", &format!("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{KEY}|2^20|1:4\r\n"), true, None),
            ("RTP/SAVP", "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:c2hvcnQ=\r\n", true, None),
            ("RTP/AVP", &format!("a=crypto:3 AES_CM_128_HMAC_SHA1_80 inline:{KEY}\r\n"), false, Some(3)),
            ("RTP/AVP", "", false, None),
        ];
        for (proto, crypto, savp, tag) in table {
            let o = parse_offer(offer(proto, crypto).as_bytes());
            assert_eq!(o.savp, *savp, "{crypto}");
            assert_eq!(o.crypto.map(|c| c.0), *tag, "{crypto}");
        }
    }

    #[test]
    fn decisions() {
        let with = parse_offer(
            offer(
                "RTP/SAVP",
                &format!("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{KEY}\r\n"),
            )
            .as_bytes(),
        );
        let plain = parse_offer(offer("RTP/AVP", "").as_bytes());
        let savp_unusable = parse_offer(
            offer("RTP/SAVP", "a=crypto:1 F8_128_HMAC_SHA1_80 inline:x\r\n").as_bytes(),
        );
        use SrtpPolicy::*;
        assert!(decide(&with, Optional).unwrap().is_some());
        assert!(decide(&with, Required).unwrap().is_some());
        assert_eq!(decide(&with, Off), Err(SdesRefusal::UnusableSrtp));
        assert_eq!(decide(&plain, Optional), Ok(None));
        assert_eq!(decide(&plain, Off), Ok(None));
        assert_eq!(decide(&plain, Required), Err(SdesRefusal::SrtpRequired));
        assert_eq!(
            decide(&savp_unusable, Optional),
            Err(SdesRefusal::UnusableSrtp)
        );
        assert_eq!(
            decide(&savp_unusable, Required),
            Err(SdesRefusal::SrtpRequired)
        );
    }

    #[test]
    fn secures_our_sdp_and_round_trips_the_key() {
        let with = parse_offer(
            offer(
                "RTP/SAVP",
                &format!("a=crypto:7 AES_CM_128_HMAC_SHA1_80 inline:{KEY}\r\n"),
            )
            .as_bytes(),
        );
        let answer = decide(&with, SrtpPolicy::Optional).unwrap().unwrap();
        let ours = "v=0\r\nm=video 0 RTP/AVP 96\r\nm=audio 5000 RTP/AVP 0 101\r\na=sendrecv\r\n";
        let secured = answer.secure(ours);
        assert!(secured.contains("m=video 0 RTP/AVP 96\r\n"));
        assert!(secured
            .contains("m=audio 5000 RTP/SAVP 0 101\r\na=crypto:7 AES_CM_128_HMAC_SHA1_80 inline:"));
        let back = parse_offer(secured.as_bytes());
        assert_eq!(back.crypto, Some((7, answer.local_key)));
        assert!(!format!("{answer:?}").contains(KEY));
    }
}
