//! WAV prompt files: RIFF/WAVE with 8000 Hz mono 16-bit PCM, the one format dialin plays.
//!
//! Admins record or synthesise their own prompts, so every rejection says what the file is and
//! how to convert it, instead of playing noise. Prompts are loaded once at startup.

use thiserror::Error;

/// The conversion command quoted in every format error.
const CONVERT: &str =
    "dialin needs 8000 Hz mono 16-bit PCM: convert with `sox in.wav -r 8000 -c 1 -b 16 out.wav`";

/// `WAVE_FORMAT_PCM`.
const FORMAT_PCM: u16 = 1;
/// `WAVE_FORMAT_EXTENSIBLE`: the real format is the first two bytes of the sub-format GUID.
const FORMAT_EXTENSIBLE: u16 = 0xFFFE;
/// Bytes 2..16 of the PCM sub-format GUID `00000001-0000-0010-8000-00aa00389b71`.
const GUID_TAIL: [u8; 14] = [0, 0, 0, 0, 0x10, 0, 0x80, 0, 0, 0xAA, 0, 0x38, 0x9B, 0x71];

/// Why a prompt file cannot be played, worded for the admin who supplied it.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum WavError {
    /// Not a RIFF/WAVE file at all.
    #[error("not a WAV file (no RIFF/WAVE header); {CONVERT}")]
    NotWav,
    /// The file ends inside a chunk header or the `fmt ` chunk.
    #[error("WAV file is truncated inside the {0}")]
    Truncated(&'static str),
    /// A `data` chunk came before any `fmt ` chunk, or there was no `fmt ` chunk.
    #[error("WAV file has no `fmt ` chunk before its audio data")]
    MissingFormat,
    /// There was no `data` chunk.
    #[error("WAV file has no `data` chunk")]
    MissingData,
    /// The audio is compressed or floating point.
    #[error("audio format is {name} (format tag {tag:#06x}); {CONVERT}")]
    NotPcm {
        /// The format tag (for extensible files, the sub-format's).
        tag: u16,
        /// A readable name for the common tags.
        name: &'static str,
    },
    /// More than one channel.
    #[error("file has {0} channels; {CONVERT}")]
    Channels(u16),
    /// Another sample rate.
    #[error("sample rate is {0} Hz; {CONVERT}")]
    SampleRate(u32),
    /// Another sample size.
    #[error("samples are {0}-bit; {CONVERT}")]
    BitsPerSample(u16),
    /// The `data` chunk holds no samples.
    #[error("WAV file contains no audio samples")]
    Empty,
}

/// Decodes a WAV file into 16-bit samples at 8 kHz, rejecting every other format.
///
/// Unknown chunks (`LIST`, `fact`, `cue `, …) are skipped. A `data` chunk whose size runs past
/// the end of the file (as streaming writers leave it) is read up to the end of the file.
pub fn parse_wav(bytes: &[u8]) -> Result<Vec<i16>, WavError> {
    if bytes.len() < 12 || &bytes[0..4] != b"RIFF" || &bytes[8..12] != b"WAVE" {
        return Err(WavError::NotWav);
    }
    let mut rest = &bytes[12..];
    let mut format_seen = false;
    while !rest.is_empty() {
        if rest.len() < 8 {
            return Err(WavError::Truncated("chunk header"));
        }
        let id = &rest[0..4];
        let size = u32::from_le_bytes([rest[4], rest[5], rest[6], rest[7]]) as usize;
        let body = &rest[8..];
        if id == b"data" {
            if !format_seen {
                return Err(WavError::MissingFormat);
            }
            let data = &body[..size.min(body.len())];
            let samples: Vec<i16> = data
                .chunks_exact(2)
                .map(|b| i16::from_le_bytes([b[0], b[1]]))
                .collect();
            return if samples.is_empty() {
                Err(WavError::Empty)
            } else {
                Ok(samples)
            };
        }
        if size > body.len() {
            return Err(WavError::Truncated(if id == b"fmt " {
                "`fmt ` chunk"
            } else {
                "a chunk"
            }));
        }
        if id == b"fmt " {
            check_format(&body[..size])?;
            format_seen = true;
        }
        // Chunks are padded to an even length.
        let advance = (size + (size & 1)).min(body.len());
        rest = &body[advance..];
    }
    Err(if format_seen {
        WavError::MissingData
    } else {
        WavError::MissingFormat
    })
}

/// Checks a `fmt ` chunk body: PCM (plain or extensible), mono, 8000 Hz, 16-bit.
fn check_format(fmt: &[u8]) -> Result<(), WavError> {
    if fmt.len() < 16 {
        return Err(WavError::Truncated("`fmt ` chunk"));
    }
    let u16_at = |i: usize| u16::from_le_bytes([fmt[i], fmt[i + 1]]);
    let mut tag = u16_at(0);
    if tag == FORMAT_EXTENSIBLE {
        // cbSize(2) validBits(2) channelMask(4) subFormat GUID(16) follow the basic 16 bytes.
        if fmt.len() < 40 {
            return Err(WavError::Truncated("`fmt ` chunk (WAVE_FORMAT_EXTENSIBLE)"));
        }
        tag = u16_at(24);
        if fmt[26..40] != GUID_TAIL {
            return Err(WavError::NotPcm {
                tag,
                name: "an unknown sub-format",
            });
        }
    }
    if tag != FORMAT_PCM {
        let name = match tag {
            2 => "Microsoft ADPCM",
            3 => "IEEE float",
            6 => "A-law",
            7 => "µ-law",
            0x11 => "IMA ADPCM",
            0x55 => "MP3",
            _ => "not PCM",
        };
        return Err(WavError::NotPcm { tag, name });
    }
    let channels = u16_at(2);
    if channels != 1 {
        return Err(WavError::Channels(channels));
    }
    let rate = u32::from_le_bytes([fmt[4], fmt[5], fmt[6], fmt[7]]);
    if rate != 8000 {
        return Err(WavError::SampleRate(rate));
    }
    let bits = u16_at(14);
    if bits != 16 {
        return Err(WavError::BitsPerSample(bits));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(id: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let mut c = id.to_vec();
        c.extend_from_slice(&(body.len() as u32).to_le_bytes());
        c.extend_from_slice(body);
        if body.len() % 2 == 1 {
            c.push(0);
        }
        c
    }

    fn fmt(tag: u16, channels: u16, rate: u32, bits: u16) -> Vec<u8> {
        let align = channels * bits / 8;
        let mut f = Vec::new();
        f.extend_from_slice(&tag.to_le_bytes());
        f.extend_from_slice(&channels.to_le_bytes());
        f.extend_from_slice(&rate.to_le_bytes());
        f.extend_from_slice(&(rate * align as u32).to_le_bytes());
        f.extend_from_slice(&align.to_le_bytes());
        f.extend_from_slice(&bits.to_le_bytes());
        f
    }

    fn extensible(sub_tag: u16) -> Vec<u8> {
        let mut f = fmt(FORMAT_EXTENSIBLE, 1, 8000, 16);
        f.extend_from_slice(&22u16.to_le_bytes());
        f.extend_from_slice(&16u16.to_le_bytes());
        f.extend_from_slice(&4u32.to_le_bytes());
        f.extend_from_slice(&sub_tag.to_le_bytes());
        f.extend_from_slice(&GUID_TAIL);
        f
    }

    fn wav(chunks: &[Vec<u8>]) -> Vec<u8> {
        let body: Vec<u8> = chunks.concat();
        let mut w = b"RIFF".to_vec();
        w.extend_from_slice(&(body.len() as u32 + 4).to_le_bytes());
        w.extend_from_slice(b"WAVE");
        w.extend_from_slice(&body);
        w
    }

    const PCM: [u8; 6] = [0x01, 0x00, 0xFF, 0xFF, 0x00, 0x80]; // 1, -1, i16::MIN

    #[test]
    fn accepts_pcm_mono_8k() {
        let cases: [(&str, Vec<u8>); 4] = [
            (
                "plain",
                wav(&[chunk(b"fmt ", &fmt(1, 1, 8000, 16)), chunk(b"data", &PCM)]),
            ),
            (
                "LIST and odd-sized chunk skipped",
                wav(&[
                    chunk(b"LIST", b"INFOabc"),
                    chunk(b"fmt ", &fmt(1, 1, 8000, 16)),
                    chunk(b"data", &PCM),
                ]),
            ),
            (
                "extensible PCM",
                wav(&[
                    chunk(b"fmt ", &extensible(1)),
                    chunk(b"fact", &[0; 4]),
                    chunk(b"data", &PCM),
                ]),
            ),
            ("streamed data size", {
                let mut w = wav(&[chunk(b"fmt ", &fmt(1, 1, 8000, 16)), chunk(b"data", &PCM)]);
                let n = w.len();
                w[n - 10..n - 6].copy_from_slice(&u32::MAX.to_le_bytes());
                w
            }),
        ];
        for (name, bytes) in cases {
            assert_eq!(parse_wav(&bytes), Ok(vec![1, -1, i16::MIN]), "{name}");
        }
    }

    #[test]
    fn rejects_with_a_precise_reason() {
        let data = chunk(b"data", &PCM);
        let with_fmt = |f: Vec<u8>| wav(&[chunk(b"fmt ", &f), data.clone()]);
        let cases: Vec<(&str, Vec<u8>, WavError)> = vec![
            ("empty file", vec![], WavError::NotWav),
            (
                "RIFF but not WAVE",
                b"RIFF\0\0\0\0AVI LIST".to_vec(),
                WavError::NotWav,
            ),
            (
                "16 kHz",
                with_fmt(fmt(1, 1, 16000, 16)),
                WavError::SampleRate(16000),
            ),
            (
                "stereo",
                with_fmt(fmt(1, 2, 8000, 16)),
                WavError::Channels(2),
            ),
            (
                "8-bit",
                with_fmt(fmt(1, 1, 8000, 8)),
                WavError::BitsPerSample(8),
            ),
            (
                "float",
                with_fmt(fmt(3, 1, 8000, 32)),
                WavError::NotPcm {
                    tag: 3,
                    name: "IEEE float",
                },
            ),
            (
                "µ-law",
                with_fmt(fmt(7, 1, 8000, 8)),
                WavError::NotPcm {
                    tag: 7,
                    name: "µ-law",
                },
            ),
            (
                "extensible float",
                with_fmt(extensible(3)),
                WavError::NotPcm {
                    tag: 3,
                    name: "IEEE float",
                },
            ),
            (
                "short fmt",
                with_fmt(vec![1, 0, 1, 0]),
                WavError::Truncated("`fmt ` chunk"),
            ),
            (
                "data before fmt",
                wav(&[data.clone(), chunk(b"fmt ", &fmt(1, 1, 8000, 16))]),
                WavError::MissingFormat,
            ),
            (
                "no data",
                wav(&[chunk(b"fmt ", &fmt(1, 1, 8000, 16))]),
                WavError::MissingData,
            ),
            ("no chunks", wav(&[]), WavError::MissingFormat),
            (
                "empty data",
                wav(&[chunk(b"fmt ", &fmt(1, 1, 8000, 16)), chunk(b"data", &[])]),
                WavError::Empty,
            ),
            (
                "cut chunk header",
                wav(&[chunk(b"fmt ", &fmt(1, 1, 8000, 16)), b"dat".to_vec()]),
                WavError::Truncated("chunk header"),
            ),
        ];
        for (name, bytes, want) in cases {
            assert_eq!(parse_wav(&bytes), Err(want), "{name}");
        }
    }

    #[test]
    fn messages_say_what_to_do() {
        let msg = WavError::SampleRate(16000).to_string();
        assert_eq!(
            msg,
            "sample rate is 16000 Hz; dialin needs 8000 Hz mono 16-bit PCM: convert with `sox in.wav -r 8000 -c 1 -b 16 out.wav`"
        );
    }
}
