//! In-band DTMF (issue 23, item 6): key presses as tones in the caller's audio.
//!
//! Talk-off: over ten minutes of speech from espeak-ng (German and English, several voices,
//! speeds and pitches, the texts in `tests/fixtures/talk-off/`) through both G.711 laws gives
//! no key; the same speech followed by a PIN as tones gives exactly the PIN. No free recording
//! of real speech is at hand here: espeak-ng is the closest real source. And through the
//! binary: a caller that offers no telephone-event types the echo test's PIN as tones, after
//! speaking, and reaches the echo test. The audio is put into G.711 by sox, not by dialin's
//! own encoder, so the tests do not share a bug with the code under test.

use crate::stuck::no_server;
use crate::support::dialin::TestConfig;
use crate::support::rawsip::RawCall;
use crate::support::rtp::Rtp;
use dialin::media::g711::{self, Law};
use dialin::media::inband_dtmf::InbandDetector;
use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// `text` spoken by espeak-ng with `voice`, `speed` (words a minute) and `pitch` (0–99), as
/// 8 kHz 16-bit samples (resampled by sox).
fn speech(text: &Path, voice: &str, speed: u32, pitch: u32) -> Vec<i16> {
    let mut espeak = Command::new("espeak-ng")
        .args([
            "-v",
            voice,
            "-s",
            &speed.to_string(),
            "-p",
            &pitch.to_string(),
            "--stdout",
            "-f",
        ])
        .arg(text)
        .stdout(Stdio::piped())
        .spawn()
        .expect("espeak-ng (Debian package espeak-ng)");
    let out = Command::new("sox")
        .args([
            "-t", "wav", "-", "-r", "8000", "-c", "1", "-b", "16", "-e", "signed", "-t", "raw", "-",
        ])
        .stdin(espeak.stdout.take().expect("espeak-ng's output"))
        .output()
        .expect("sox (Debian package sox)");
    assert!(
        espeak.wait().expect("espeak-ng ends").success(),
        "espeak-ng failed"
    );
    assert!(
        out.status.success(),
        "sox: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect()
}

/// Every recording the talk-off test speaks: (text, voice, speed, pitch).
const READINGS: [(&str, &str, u32, u32); 6] = [
    ("de.txt", "de", 175, 50),
    ("de.txt", "de+f3", 140, 70),
    ("de.txt", "de+m3", 220, 35),
    ("en.txt", "en-gb", 175, 50),
    ("en.txt", "en-us+f2", 140, 75),
    ("en.txt", "en-gb+m4", 220, 30),
];

/// `samples` (8 kHz) in G.711 `law`, encoded by sox.
fn encoded(law: Law, samples: &[i16]) -> Vec<u8> {
    let encoding = match law {
        Law::Ulaw => "u-law",
        Law::Alaw => "a-law",
    };
    let mut sox = Command::new("sox")
        .args([
            "-t", "raw", "-r", "8000", "-c", "1", "-b", "16", "-e", "signed", "-",
        ])
        .args([
            "-t", "raw", "-r", "8000", "-c", "1", "-b", "8", "-e", encoding, "-",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("sox (Debian package sox)");
    let pcm: Vec<u8> = samples.iter().flat_map(|s| s.to_le_bytes()).collect();
    let mut input = sox.stdin.take().expect("sox's input");
    let writer = std::thread::spawn(move || {
        use std::io::Write;
        input.write_all(&pcm).expect("feed sox");
    });
    let out = sox.wait_with_output().expect("sox ends");
    writer.join().expect("the writer");
    assert!(out.status.success(), "sox failed to encode {encoding}");
    out.stdout
}

/// What the detector hears in `samples` sent in `law` (encoded by sox, decoded as dialin
/// decodes a caller's packets), in 20 ms packets.
fn heard(law: Law, samples: &[i16]) -> String {
    let mut d = InbandDetector::new();
    let mut pcm = [0i16; 160];
    let mut keys = String::new();
    for chunk in encoded(law, samples).chunks(160) {
        g711::decode(law, chunk, &mut pcm[..chunk.len()]);
        if let Some(k) = d.push(&pcm[..chunk.len()]) {
            keys.push(k.as_char());
        }
    }
    keys
}

/// `keys` as tones: 80 ms each at about −8 dBm0 per tone, 80 ms apart.
fn tones(keys: &str) -> Vec<i16> {
    let mut out = vec![0i16; 640];
    for k in keys.chars() {
        let rows = ["123A", "456B", "789C", "*0#D"];
        let r = rows.iter().position(|row| row.contains(k)).expect("a key");
        let c = rows[r].find(k).expect("a key");
        let (f1, f2) = (
            [697.0, 770.0, 852.0, 941.0][r],
            [1209.0, 1336.0, 1477.0, 1633.0][c],
        );
        for n in 0..640 {
            let t = n as f32 / 8000.0;
            let x = 9000.0 * (2.0 * std::f32::consts::PI * f1 * t).sin()
                + 9000.0 * (2.0 * std::f32::consts::PI * f2 * t).sin();
            out.push(x as i16);
        }
        out.extend(std::iter::repeat_n(0, 640));
    }
    out
}

#[test]
fn ten_minutes_of_speech_give_no_key_and_a_pin_after_speech_is_heard() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/talk-off");
    let mut total = 0usize;
    for (text, voice, speed, pitch) in READINGS {
        let samples = speech(&dir.join(text), voice, speed, pitch);
        total += samples.len();
        for law in [Law::Ulaw, Law::Alaw] {
            assert_eq!(
                heard(law, &samples),
                "",
                "talk-off: keys heard in {text} read by {voice} at {speed} wpm, pitch {pitch}, {law:?}"
            );
        }
        // The PIN right after the speech (no pause but the tones' own lead-in).
        let mut with_pin = samples[samples.len() - 8000 * 5..].to_vec();
        with_pin.extend(tones("71234#"));
        assert_eq!(heard(Law::Ulaw, &with_pin), "71234#", "{voice}");
    }
    let minutes = total as f64 / 8000.0 / 60.0;
    eprintln!("talk-off: {minutes:.1} minutes of speech, no key");
    assert!(minutes >= 10.0, "only {minutes:.1} minutes of speech");
}

/// An SDP offer of `law` alone: no telephone-event.
fn offer_without_events(rtp: SocketAddr, law: Law) -> String {
    let pt = law.payload_type();
    format!(
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m=audio {} RTP/AVP {pt}\r\na=rtpmap:{pt} {}/8000\r\n",
        rtp.port(),
        law.encoding_name()
    )
}

/// Where dialin wants our RTP: the answer's `c=` address and `m=audio` port.
fn answer_rtp(sdp: &str) -> SocketAddr {
    let ip = sdp
        .lines()
        .find_map(|l| l.strip_prefix("c=IN IP4 "))
        .expect("c= in the answer");
    let port = sdp
        .lines()
        .find_map(|l| l.strip_prefix("m=audio "))
        .and_then(|l| l.split(' ').next())
        .expect("m=audio in the answer");
    format!("{}:{}", ip.trim(), port)
        .parse()
        .expect("an address")
}

#[test]
fn a_caller_without_telephone_events_types_its_pin_as_tones() {
    let text = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/talk-off/en.txt");
    let spoken = speech(&text, "en-gb", 175, 50);
    for law in [Law::Ulaw, Law::Alaw] {
        let cfg = TestConfig::new(no_server());
        let dialin = cfg.start();
        let rtp = UdpSocket::bind("127.0.0.1:0").expect("an RTP socket");
        let mut call = RawCall::udp(cfg.sip, &format!("inband-{law:?}"));
        call.invite(&offer_without_events(rtp.local_addr().unwrap(), law));
        let ok = call.expect_response(200, "INVITE", Duration::from_secs(5));
        call.ack("");
        let to = answer_rtp(ok.body());
        assert!(
            !ok.body().contains("telephone-event"),
            "answered telephone-event the caller did not offer:\n{}",
            ok.body()
        );
        // Three seconds of speech, then the echo test's PIN as tones, paced as a phone does.
        let mut audio = spoken[..8000 * 3].to_vec();
        audio.extend(tones("00000#"));
        let start = Instant::now();
        for (i, frame) in encoded(law, &audio).chunks(160).enumerate() {
            let packet = Rtp {
                marker: i == 0,
                payload_type: law.payload_type(),
                seq: i as u16,
                timestamp: (i * 160) as u32,
                ssrc: 7,
                payload: frame,
            };
            rtp.send_to(&packet.to_bytes(), to).expect("send RTP");
            let due = start + Duration::from_millis(20 * (i as u64 + 1));
            std::thread::sleep(due.saturating_duration_since(Instant::now()));
        }
        dialin.wait_for_line("echo test", Duration::from_secs(3));
        call.in_dialog_answered("BYE", Duration::from_secs(3));
        dialin.assert_idle(Duration::from_secs(5));
    }
}
