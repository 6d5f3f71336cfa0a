//! G.711 µ-law and A-law (ITU-T G.711), bit-exact with the ITU-T G.191 reference `g711.c`.
//!
//! Prompts are encoded once at startup and the echo test and any future in-band DTMF detector
//! decode received audio, so both directions are here. Linear samples are 16-bit, exactly as the
//! reference takes them: µ-law only looks at the 14 most significant bits (`x >> 2`), A-law at
//! the 12 most significant bits (`x >> 4`, a 13-bit signed value); negative values are
//! one's-complemented (`!x`), not negated, before the magnitude is companded. Decoding returns the
//! reference's values on the 16-bit scale (µ-law ±32124 at most, A-law ±32256).
//!
//! Sign convention (the reference's, and every decoder's): bit 7 set means a positive sample.
//! So µ-law `0x80` → +32124, `0x00` → −32124, `0xFF` and `0x7F` → 0, and A-law `0xD5` → +8,
//! `0x55` → −8.
//!
//! Encoding is one lookup in a table computed at compile time (16 KiB for µ-law, 4 KiB for
//! A-law); decoding is one lookup in a 256-entry table. Nothing allocates.

/// The G.711 companding law negotiated for a leg (PCMU = µ-law, PT 0; PCMA = A-law, PT 8).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Law {
    /// PCMU, static payload type 0.
    Ulaw,
    /// PCMA, static payload type 8.
    Alaw,
}

impl Law {
    /// The static RTP payload type of this law.
    pub fn payload_type(self) -> u8 {
        match self {
            Law::Ulaw => 0,
            Law::Alaw => 8,
        }
    }

    /// The SDP encoding name (`PCMU`/`PCMA`).
    pub fn encoding_name(self) -> &'static str {
        match self {
            Law::Ulaw => "PCMU",
            Law::Alaw => "PCMA",
        }
    }

    /// The code of digital silence, which the driver sends when no prompt plays so the peer's
    /// jitter buffer and NAT bindings stay alive: `0xFF` for µ-law (decodes to 0), `0xD5` for
    /// A-law (decodes to +8, the smallest A-law level; A-law has no zero).
    pub fn silence_byte(self) -> u8 {
        match self {
            Law::Ulaw => 0xFF,
            Law::Alaw => 0xD5,
        }
    }
}

/// Encodes linear samples with `law` into `out` (one byte per sample), for prompts and echo.
///
/// # Panics
/// If `out.len() != pcm.len()`: the caller sizes the buffer, a mismatch is a bug.
pub fn encode(law: Law, pcm: &[i16], out: &mut [u8]) {
    assert_eq!(
        pcm.len(),
        out.len(),
        "G.711 encode: output length must equal input length"
    );
    match law {
        Law::Ulaw => pcm.iter().zip(out).for_each(|(&x, o)| *o = ulaw_encode(x)),
        Law::Alaw => pcm.iter().zip(out).for_each(|(&x, o)| *o = alaw_encode(x)),
    }
}

/// Decodes `law` bytes into linear samples in `out` (one sample per byte).
///
/// # Panics
/// If `out.len() != codes.len()`: the caller sizes the buffer, a mismatch is a bug.
pub fn decode(law: Law, codes: &[u8], out: &mut [i16]) {
    assert_eq!(
        codes.len(),
        out.len(),
        "G.711 decode: output length must equal input length"
    );
    let table = match law {
        Law::Ulaw => &ULAW_DECODE,
        Law::Alaw => &ALAW_DECODE,
    };
    codes
        .iter()
        .zip(out)
        .for_each(|(&c, o)| *o = table[c as usize]);
}

/// Encodes one sample to µ-law, as G.191 `ulaw_compress` does.
#[inline]
pub fn ulaw_encode(x: i16) -> u8 {
    // `x >> 2` is the 14-bit value the reference uses (for negative x, `!x >> 2 == !(x >> 2)`).
    ULAW_ENCODE[((x >> 2) as i32 + 8192) as usize]
}

/// Encodes one sample to A-law, as G.191 `alaw_compress` does.
#[inline]
pub fn alaw_encode(x: i16) -> u8 {
    ALAW_ENCODE[((x >> 4) as i32 + 2048) as usize]
}

/// Decodes one µ-law byte, as G.191 `ulaw_expand` does.
#[inline]
pub fn ulaw_decode(code: u8) -> i16 {
    ULAW_DECODE[code as usize]
}

/// Decodes one A-law byte, as G.191 `alaw_expand` does.
#[inline]
pub fn alaw_decode(code: u8) -> i16 {
    ALAW_DECODE[code as usize]
}

/// Number of significant bits of `v` (0 for 0): the segment search of the reference, without a loop.
const fn bit_len(v: u32) -> u32 {
    32 - v.leading_zeros()
}

/// µ-law code of a 14-bit signed value `v` (−8192..=8191).
const fn ulaw_from_14bit(v: i32) -> u8 {
    let negative = v < 0;
    let magnitude = if negative { !v } else { v };
    let mut biased = magnitude + 33; // the reference's bias between A-law and µ-law thresholds
    if biased > 0x1FFF {
        biased = 0x1FFF;
    }
    let segment = 1 + bit_len((biased >> 6) as u32) as i32; // 1..=8
    let high = 8 - segment;
    let low = 15 - ((biased >> segment) & 0xF);
    let code = ((high << 4) | low) as u8;
    if negative {
        code
    } else {
        code | 0x80
    }
}

/// A-law code of a 12-bit signed value `v` (−2048..=2047).
const fn alaw_from_12bit(v: i32) -> u8 {
    let negative = v < 0;
    let ix = if negative { !v } else { v };
    let mut code = ix;
    if ix > 15 {
        let exponent = bit_len(ix as u32) as i32 - 4; // 1..=7
        code = (exponent << 4) | ((ix >> (exponent - 1)) & 0xF);
    }
    if !negative {
        code |= 0x80;
    }
    (code ^ 0x55) as u8
}

const fn build_ulaw_encode() -> [u8; 16384] {
    let mut table = [0u8; 16384];
    let mut i = 0;
    while i < 16384 {
        table[i] = ulaw_from_14bit(i as i32 - 8192);
        i += 1;
    }
    table
}

const fn build_alaw_encode() -> [u8; 4096] {
    let mut table = [0u8; 4096];
    let mut i = 0;
    while i < 4096 {
        table[i] = alaw_from_12bit(i as i32 - 2048);
        i += 1;
    }
    table
}

/// `ulaw_expand` of the reference for one code.
const fn ulaw_expand(code: u8) -> i16 {
    let inverted = !code as i32;
    let exponent = (inverted >> 4) & 7;
    let mantissa = inverted & 0xF;
    let step = 4 << (exponent + 1);
    let magnitude = (0x80 << exponent) + step * mantissa + step / 2 - 4 * 33;
    (if code < 0x80 { -magnitude } else { magnitude }) as i16
}

/// `alaw_expand` of the reference for one code.
const fn alaw_expand(code: u8) -> i16 {
    let ix = ((code ^ 0x55) & 0x7F) as i32;
    let exponent = ix >> 4;
    let mut mantissa = ix & 0xF;
    if exponent > 0 {
        mantissa += 16;
    }
    mantissa = (mantissa << 4) + 8;
    if exponent > 1 {
        mantissa <<= exponent - 1;
    }
    (if code > 127 { mantissa } else { -mantissa }) as i16
}

const fn build_decode(law: Law) -> [i16; 256] {
    let mut table = [0i16; 256];
    let mut i = 0;
    while i < 256 {
        table[i] = match law {
            Law::Ulaw => ulaw_expand(i as u8),
            Law::Alaw => alaw_expand(i as u8),
        };
        i += 1;
    }
    table
}

/// µ-law encoder, indexed by `(x >> 2) + 8192`.
static ULAW_ENCODE: [u8; 16384] = build_ulaw_encode();
/// A-law encoder, indexed by `(x >> 4) + 2048`.
static ALAW_ENCODE: [u8; 4096] = build_alaw_encode();
/// µ-law decoder, indexed by the code.
static ULAW_DECODE: [i16; 256] = build_decode(Law::Ulaw);
/// A-law decoder, indexed by the code.
static ALAW_DECODE: [i16; 256] = build_decode(Law::Alaw);

#[cfg(test)]
mod tests {
    use super::*;

    /// The classic decode tables (Sun `g711.c` lineage, identical to G.191 `*_expand`),
    /// transcribed as literals so a slip in the const builders cannot hide.
    #[rustfmt::skip]
    const ULAW_REFERENCE: [i16; 256] = [
        -32124,-31100,-30076,-29052,-28028,-27004,-25980,-24956,
        -23932,-22908,-21884,-20860,-19836,-18812,-17788,-16764,
        -15996,-15484,-14972,-14460,-13948,-13436,-12924,-12412,
        -11900,-11388,-10876,-10364, -9852, -9340, -8828, -8316,
         -7932, -7676, -7420, -7164, -6908, -6652, -6396, -6140,
         -5884, -5628, -5372, -5116, -4860, -4604, -4348, -4092,
         -3900, -3772, -3644, -3516, -3388, -3260, -3132, -3004,
         -2876, -2748, -2620, -2492, -2364, -2236, -2108, -1980,
         -1884, -1820, -1756, -1692, -1628, -1564, -1500, -1436,
         -1372, -1308, -1244, -1180, -1116, -1052,  -988,  -924,
          -876,  -844,  -812,  -780,  -748,  -716,  -684,  -652,
          -620,  -588,  -556,  -524,  -492,  -460,  -428,  -396,
          -372,  -356,  -340,  -324,  -308,  -292,  -276,  -260,
          -244,  -228,  -212,  -196,  -180,  -164,  -148,  -132,
          -120,  -112,  -104,   -96,   -88,   -80,   -72,   -64,
           -56,   -48,   -40,   -32,   -24,   -16,    -8,     0,
         32124, 31100, 30076, 29052, 28028, 27004, 25980, 24956,
         23932, 22908, 21884, 20860, 19836, 18812, 17788, 16764,
         15996, 15484, 14972, 14460, 13948, 13436, 12924, 12412,
         11900, 11388, 10876, 10364,  9852,  9340,  8828,  8316,
          7932,  7676,  7420,  7164,  6908,  6652,  6396,  6140,
          5884,  5628,  5372,  5116,  4860,  4604,  4348,  4092,
          3900,  3772,  3644,  3516,  3388,  3260,  3132,  3004,
          2876,  2748,  2620,  2492,  2364,  2236,  2108,  1980,
          1884,  1820,  1756,  1692,  1628,  1564,  1500,  1436,
          1372,  1308,  1244,  1180,  1116,  1052,   988,   924,
           876,   844,   812,   780,   748,   716,   684,   652,
           620,   588,   556,   524,   492,   460,   428,   396,
           372,   356,   340,   324,   308,   292,   276,   260,
           244,   228,   212,   196,   180,   164,   148,   132,
           120,   112,   104,    96,    88,    80,    72,    64,
            56,    48,    40,    32,    24,    16,     8,     0,
    ];

    #[rustfmt::skip]
    const ALAW_REFERENCE: [i16; 256] = [
         -5504, -5248, -6016, -5760, -4480, -4224, -4992, -4736,
         -7552, -7296, -8064, -7808, -6528, -6272, -7040, -6784,
         -2752, -2624, -3008, -2880, -2240, -2112, -2496, -2368,
         -3776, -3648, -4032, -3904, -3264, -3136, -3520, -3392,
        -22016,-20992,-24064,-23040,-17920,-16896,-19968,-18944,
        -30208,-29184,-32256,-31232,-26112,-25088,-28160,-27136,
        -11008,-10496,-12032,-11520, -8960, -8448, -9984, -9472,
        -15104,-14592,-16128,-15616,-13056,-12544,-14080,-13568,
          -344,  -328,  -376,  -360,  -280,  -264,  -312,  -296,
          -472,  -456,  -504,  -488,  -408,  -392,  -440,  -424,
           -88,   -72,  -120,  -104,   -24,    -8,   -56,   -40,
          -216,  -200,  -248,  -232,  -152,  -136,  -184,  -168,
         -1376, -1312, -1504, -1440, -1120, -1056, -1248, -1184,
         -1888, -1824, -2016, -1952, -1632, -1568, -1760, -1696,
          -688,  -656,  -752,  -720,  -560,  -528,  -624,  -592,
          -944,  -912, -1008,  -976,  -816,  -784,  -880,  -848,
          5504,  5248,  6016,  5760,  4480,  4224,  4992,  4736,
          7552,  7296,  8064,  7808,  6528,  6272,  7040,  6784,
          2752,  2624,  3008,  2880,  2240,  2112,  2496,  2368,
          3776,  3648,  4032,  3904,  3264,  3136,  3520,  3392,
         22016, 20992, 24064, 23040, 17920, 16896, 19968, 18944,
         30208, 29184, 32256, 31232, 26112, 25088, 28160, 27136,
         11008, 10496, 12032, 11520,  8960,  8448,  9984,  9472,
         15104, 14592, 16128, 15616, 13056, 12544, 14080, 13568,
           344,   328,   376,   360,   280,   264,   312,   296,
           472,   456,   504,   488,   408,   392,   440,   424,
            88,    72,   120,   104,    24,     8,    56,    40,
           216,   200,   248,   232,   152,   136,   184,   168,
          1376,  1312,  1504,  1440,  1120,  1056,  1248,  1184,
          1888,  1824,  2016,  1952,  1632,  1568,  1760,  1696,
           688,   656,   752,   720,   560,   528,   624,   592,
           944,   912,  1008,   976,   816,   784,   880,   848,
    ];

    /// G.191 `ulaw_compress`, transcribed line by line (C `short` arithmetic in i32).
    fn reference_ulaw_compress(x: i16) -> u8 {
        let x = x as i32;
        let mut absno = if x < 0 {
            ((!x) >> 2) + 33
        } else {
            (x >> 2) + 33
        };
        if absno > 0x1FFF {
            absno = 0x1FFF;
        }
        let mut i = absno >> 6;
        let mut segno = 1;
        while i != 0 {
            segno += 1;
            i >>= 1;
        }
        let high_nibble = 0x0008 - segno;
        let mut low_nibble = (absno >> segno) & 0x000F;
        low_nibble = 0x000F - low_nibble;
        let mut log = (high_nibble << 4) | low_nibble;
        if x >= 0 {
            log |= 0x0080;
        }
        log as u8
    }

    /// G.191 `alaw_compress`, transcribed line by line.
    fn reference_alaw_compress(x: i16) -> u8 {
        let x = x as i32;
        let mut ix = if x < 0 { (!x) >> 4 } else { x >> 4 };
        if ix > 15 {
            let mut iexp = 1;
            while ix > 16 + 15 {
                ix >>= 1;
                iexp += 1;
            }
            ix -= 16;
            ix += iexp << 4;
        }
        if x >= 0 {
            ix |= 0x0080;
        }
        (ix ^ 0x0055) as u8
    }

    #[test]
    fn decode_matches_reference_tables() {
        for code in 0..=255u8 {
            assert_eq!(
                ulaw_decode(code),
                ULAW_REFERENCE[code as usize],
                "µ-law {code:#04x}"
            );
            assert_eq!(
                alaw_decode(code),
                ALAW_REFERENCE[code as usize],
                "A-law {code:#04x}"
            );
        }
    }

    #[test]
    fn sign_convention() {
        let cases: [(Law, u8, i16); 8] = [
            (Law::Ulaw, 0x00, -32124),
            (Law::Ulaw, 0x7F, 0),
            (Law::Ulaw, 0x80, 32124),
            (Law::Ulaw, 0xFF, 0),
            (Law::Alaw, 0x55, -8),
            (Law::Alaw, 0xD5, 8),
            (Law::Alaw, 0x2A, -32256),
            (Law::Alaw, 0xAA, 32256),
        ];
        for (law, code, want) in cases {
            let mut out = [0i16];
            decode(law, &[code], &mut out);
            assert_eq!(out[0], want, "{law:?} {code:#04x}");
        }
    }

    #[test]
    fn encode_matches_reference_for_every_sample() {
        for x in i16::MIN..=i16::MAX {
            assert_eq!(ulaw_encode(x), reference_ulaw_compress(x), "µ-law of {x}");
            assert_eq!(alaw_encode(x), reference_alaw_compress(x), "A-law of {x}");
        }
    }

    #[test]
    fn decode_then_encode_is_identity() {
        for code in 0..=255u8 {
            let want_ulaw = if code == 0x7F { 0xFF } else { code }; // both zeros encode as +0
            assert_eq!(
                ulaw_encode(ulaw_decode(code)),
                want_ulaw,
                "µ-law {code:#04x}"
            );
            assert_eq!(alaw_encode(alaw_decode(code)), code, "A-law {code:#04x}");
        }
    }

    #[test]
    fn silence_and_slices() {
        assert_eq!(ulaw_decode(Law::Ulaw.silence_byte()), 0);
        assert_eq!(alaw_decode(Law::Alaw.silence_byte()), 8);
        assert_eq!(ulaw_encode(0), Law::Ulaw.silence_byte());
        assert_eq!(alaw_encode(0), Law::Alaw.silence_byte());
        let pcm = [0i16, 1000, -1000, i16::MAX, i16::MIN];
        for law in [Law::Ulaw, Law::Alaw] {
            let mut codes = [0u8; 5];
            encode(law, &pcm, &mut codes);
            let mut back = [0i16; 5];
            decode(law, &codes, &mut back);
            for (a, b) in pcm.iter().zip(back) {
                // G.711 error is at most half a step; the largest step is 1024 (µ) / 1024 (A).
                assert!(
                    (*a as i32 - b as i32).abs() <= 1024 + 132,
                    "{law:?}: {a} -> {b}"
                );
            }
        }
    }
}
