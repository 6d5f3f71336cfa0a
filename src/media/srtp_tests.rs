//! SRTP against the RFC 3711 test vectors (Appendix B.2 and B.3) and libsrtp's reference
//! packet, then the behaviour around them: rollover, replay, tampering, plain RTP.

use super::*;

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn rfc3711_b2_aes_cm_keystream() {
    let key = hex("2B7E151628AED2A6ABF7158809CF4F3C");
    let cipher = Aes128::new(GenericArray::from_slice(&key));
    let iv: [u8; 16] = hex("F0F1F2F3F4F5F6F7F8F9FAFBFCFD0000").try_into().unwrap();
    let mut stream = [0u8; 48];
    aes_cm(&cipher, iv, &mut stream);
    let want = hex(
        "E03EAD0935C95E80E166B16DD92B4EB4 D23513162B02D0F72A43A2FE4A5F97AB \
         41E95B3BB0A2E8DD477901E4FCA894C0",
    );
    assert_eq!(stream.to_vec(), want);
}

#[test]
fn rfc3711_b3_key_derivation() {
    let key: [u8; 16] = hex("E1F97A0D3E018BE0D64FA32C06DE4139").try_into().unwrap();
    let salt: [u8; 14] = hex("0EC675AD498AFEEBB6960B3AABE6").try_into().unwrap();
    let (enc, auth, session_salt) = derive_raw(&key, &salt);
    assert_eq!(enc.to_vec(), hex("C61E7A93744F39EE10734AFE3FF7A087"));
    assert_eq!(session_salt.to_vec(), hex("30CBBC08863D8C85D49DB34A9AE1"));
    assert_eq!(
        auth.to_vec(),
        hex("CEBE321F6FF7716B6FD4AB49AF256A156D38BAA4")
    );
}

/// libsrtp's reference: master key and salt of B.3, SSRC 0xcafebabe, sequence 0x1234.
const INLINE: &str = "E1F97A0D3E018BE0D64FA32C06DE4139 0EC675AD498AFEEBB6960B3AABE6";
const PLAIN: &str = "800f1234decafbadcafebabe abababababababababababababababab";
const PROTECTED: &str = "800f1234decafbadcafebabe 4e55dc4ce79978d88ca4d215949d2402 \
                         b78d6acc99ea179b8dbb";

fn context() -> SrtpContext {
    SrtpContext::new(&hex(INLINE).try_into().unwrap())
}

#[test]
fn libsrtp_reference_packet_both_ways() {
    let plain = hex(PLAIN);
    let mut buf = [0u8; 64];
    buf[..plain.len()].copy_from_slice(&plain);
    let len = context().protect(&mut buf, plain.len()).unwrap();
    assert_eq!(buf[..len].to_vec(), hex(PROTECTED));
    let len = context().unprotect(&mut buf, len).unwrap();
    assert_eq!(buf[..len].to_vec(), plain);
}

/// An RTP packet of `ssrc` with `seq` and an 8-byte payload naming `seq`.
fn packet(seq: u16, ssrc: u32) -> ([u8; 64], usize) {
    let mut buf = [0u8; 64];
    buf[0] = 0x80;
    buf[2..4].copy_from_slice(&seq.to_be_bytes());
    buf[8..12].copy_from_slice(&ssrc.to_be_bytes());
    buf[12..14].copy_from_slice(&seq.to_be_bytes());
    (buf, 20)
}

#[test]
fn rollover_reordering_and_replay() {
    let (mut tx, mut rx) = (context(), context());
    // Across the 16-bit wrap, with one packet late.
    let sent: Vec<u16> = vec![65533, 65534, 65535, 0, 2, 1, 3];
    let mut wire = Vec::new();
    for seq in [65533u16, 65534, 65535, 0, 1, 2, 3] {
        let (mut buf, len) = packet(seq, 7);
        let len = tx.protect(&mut buf, len).unwrap();
        wire.push((seq, buf, len));
    }
    for seq in &sent {
        let (_, mut buf, len) = *wire.iter().find(|(s, ..)| s == seq).unwrap();
        let len = rx
            .unprotect(&mut buf, len)
            .unwrap_or_else(|e| panic!("seq {seq}: {e}"));
        assert_eq!(len, 20);
        assert_eq!(
            &buf[12..14],
            &seq.to_be_bytes(),
            "decrypted payload of {seq}"
        );
    }
    assert_eq!(rx.roc, 1, "the receiver followed the rollover");
    // The same packet again is a replay.
    let (_, mut buf, len) = wire[3];
    assert_eq!(rx.unprotect(&mut buf, len), Err(SrtpError::Replay));
}

#[test]
fn tampered_plain_and_foreign_packets_are_refused() {
    let mut tx = context();
    let (mut buf, len) = packet(10, 7);
    let len = tx.protect(&mut buf, len).unwrap();
    type Change = Box<dyn Fn(&mut [u8; 64]) -> usize>;
    let cases: Vec<(&str, Change)> = vec![
        (
            "payload bit",
            Box::new(move |b| {
                b[13] ^= 1;
                len
            }),
        ),
        (
            "tag bit",
            Box::new(move |b| {
                b[len - 1] ^= 0x80;
                len
            }),
        ),
        (
            "plain RTP",
            Box::new(|b| {
                *b = packet(10, 7).0;
                20
            }),
        ),
        ("too short", Box::new(|_| 15)),
    ];
    for (what, change) in cases {
        let mut copy = buf;
        let n = change(&mut copy);
        let got = context().unprotect(&mut copy, n);
        assert!(
            matches!(got, Err(SrtpError::AuthFailed | SrtpError::Malformed)),
            "{what}: {got:?}"
        );
    }
    let other: [u8; 30] = [9; 30];
    let mut copy = buf;
    assert_eq!(
        SrtpContext::new(&other).unprotect(&mut copy, len),
        Err(SrtpError::AuthFailed),
        "another key"
    );
}

#[test]
fn protect_needs_room_for_the_tag() {
    let (mut buf, len) = packet(1, 7);
    assert_eq!(
        context().protect(&mut buf[..25], len),
        Err(SrtpError::NoRoom)
    );
}
