//! Microbenchmarks of the hot path (`cargo bench`): the relay's per-packet buffer work, the
//! same with real loopback sockets around it, G.711, RFC 4733 decoding, the PIN and call-flow
//! steps, and parsing a typical INVITE and its SDP.
//!
//! The whole-system numbers (CPU per forwarded packet, latency, memory, setup) come from
//! `bench/run`; these show where a packet's time goes inside dialin and guard against
//! regressions in the pure parts.

use criterion::{black_box, criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use dialin::call::flow::{CallFlow, DigitSource, FlowAction, FlowInput, FlowSettings};
use dialin::call::pin::{PinCollector, PinSettings};
use dialin::digit::Digit;
use dialin::ids::ConferenceId;
use dialin::media::call_media::{CallMedia, Leg, LegCodec, Received};
use dialin::media::dtmf::DtmfDecoder;
use dialin::media::g711::{self, Law};
use dialin::routing::{ConferenceTarget, RouteDecision};
use dialin::sip::sdp::MediaOffer;
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

const PCMU: LegCodec = LegCodec {
    law: Law::Ulaw,
    pt: 0,
    telephone_event_pt: Some(101),
};

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("literal address")
}

/// A bridged call's media state, as the driver holds it.
fn bridged(caller: SocketAddr, server: SocketAddr) -> CallMedia {
    let now = Instant::now();
    let mut m = CallMedia::new(Leg::new(caller, PCMU, true), now);
    m.bridge(Leg::new(server, PCMU, false), now);
    m
}

/// Writes a 20 ms PCMU packet with sequence `k` into `buf`; returns its length.
fn packet(buf: &mut [u8], k: u32) -> usize {
    buf[0] = 0x80;
    buf[1] = 0;
    buf[2..4].copy_from_slice(&(k as u16).to_be_bytes());
    buf[4..8].copy_from_slice(&(k * 160).to_be_bytes());
    buf[8..12].copy_from_slice(&0x1234_5678u32.to_be_bytes());
    buf[12..172].fill(0xFF);
    172
}

fn relay(c: &mut Criterion) {
    let caller = addr("127.0.0.1:40000");
    let server = addr("127.0.0.1:40002");
    let mut g = c.benchmark_group("relay");
    g.throughput(Throughput::Elements(1));
    g.bench_function("caller_to_server_in_place", |b| {
        let mut media = bridged(caller, server);
        let mut buf = [0u8; 1500];
        let mut k = 0u32;
        let now = Instant::now();
        b.iter(|| {
            k = k.wrapping_add(1);
            let len = packet(&mut buf, k);
            let r = media.handle_caller_packet(now, caller, &mut buf, len);
            assert!(matches!(r, Received::ToServer { .. }));
            black_box(&buf);
        })
    });
    g.bench_function("server_to_caller_in_place", |b| {
        let mut media = bridged(caller, server);
        let mut buf = [0u8; 1500];
        let mut k = 0u32;
        let now = Instant::now();
        b.iter(|| {
            k = k.wrapping_add(1);
            let len = packet(&mut buf, k);
            let r = media.handle_server_packet(now, server, &mut buf, len);
            assert!(matches!(r, Received::ToCaller { .. }));
            black_box(&buf);
        })
    });
    // The same work with the kernel around it: the phone sends, the relay socket receives,
    // rewrites and sends on, the conference receives. Shows how much of a packet's cost is the
    // kernel's UDP path rather than dialin's own code.
    g.bench_function("loopback_send_recv_rewrite_send_recv", |b| {
        let phone = UdpSocket::bind("127.0.0.1:0").expect("bind");
        let relay_in = UdpSocket::bind("127.0.0.1:0").expect("bind");
        let relay_out = UdpSocket::bind("127.0.0.1:0").expect("bind");
        let conference = UdpSocket::bind("127.0.0.1:0").expect("bind");
        let (phone_addr, conf_addr) = (
            phone.local_addr().unwrap(),
            conference.local_addr().unwrap(),
        );
        let mut media = bridged(phone_addr, conf_addr);
        let to = relay_in.local_addr().unwrap();
        let mut buf = [0u8; 1500];
        let mut out = [0u8; 1500];
        let mut k = 0u32;
        b.iter(|| {
            k = k.wrapping_add(1);
            let len = packet(&mut out, k);
            phone.send_to(&out[..len], to).unwrap();
            let (n, from) = relay_in.recv_from(&mut buf).unwrap();
            let r = media.handle_caller_packet(Instant::now(), from, &mut buf, n);
            let Received::ToServer { len, to } = r else {
                panic!("not relayed: {r:?}")
            };
            relay_out.send_to(&buf[..len], to).unwrap();
            black_box(conference.recv(&mut out).unwrap());
        })
    });
    g.finish();
}

fn g711(c: &mut Criterion) {
    let pcm: Vec<i16> = (0..160)
        .map(|i| ((i * 409) % 65536 - 32768) as i16)
        .collect();
    let mut g = c.benchmark_group("g711_frame");
    g.throughput(Throughput::Elements(160));
    for law in [Law::Ulaw, Law::Alaw] {
        let mut codes = [0u8; 160];
        let mut out = [0i16; 160];
        g.bench_function(format!("encode_{law:?}"), |b| {
            b.iter(|| g711::encode(law, black_box(&pcm), &mut codes))
        });
        g711::encode(law, &pcm, &mut codes);
        g.bench_function(format!("decode_{law:?}"), |b| {
            b.iter(|| g711::decode(law, black_box(&codes), &mut out))
        });
    }
    g.finish();
}

fn rfc4733(c: &mut Criterion) {
    // One key press as a phone sends it: 7 progress packets, then the end packet 3 times.
    let mut packets = Vec::new();
    for d in 1..=7u16 {
        packets.push([5u8, 10, ((d * 160) >> 8) as u8, (d * 160) as u8]);
    }
    for _ in 0..3 {
        packets.push([5u8, 0x80 | 10, (1280u16 >> 8) as u8, 1280u16 as u8]);
    }
    c.bench_function("rfc4733_decode_key_press", |b| {
        let mut dec = DtmfDecoder::new();
        let mut ts = 0u32;
        b.iter(|| {
            ts = ts.wrapping_add(8000);
            let mut found = 0;
            for p in &packets {
                found += dec.handle_packet(ts, black_box(p)).is_some() as u32;
            }
            assert_eq!(found, 1);
        })
    });
}

fn pin_settings() -> PinSettings {
    PinSettings {
        min_digits: 5,
        max_digits: 11,
        first_digit_timeout: Duration::from_secs(10),
        inter_digit_timeout: Duration::from_secs(5),
    }
}

fn flow(c: &mut Criterion) {
    let keys: Vec<Digit> = "7123456#".chars().filter_map(Digit::from_char).collect();
    c.bench_function("pin_collect_7_digits_and_hash", |b| {
        let now = Instant::now();
        b.iter(|| {
            let mut p = PinCollector::new(pin_settings());
            p.arm(now);
            let mut done = None;
            for &k in &keys {
                done = p.handle_digit(now, k).or(done);
            }
            assert!(done.is_some());
        })
    });
    let target = ConferenceTarget {
        conference: ConferenceId("7123456".into()),
        server: "bbb1".into(),
        server_addr: addr("192.0.2.10:5060"),
    };
    c.bench_function("call_flow_answer_to_bridge", |b| {
        let now = Instant::now();
        let settings = FlowSettings {
            pin: pin_settings(),
            attempts: 3,
            server_answer_timeout: Duration::from_secs(10),
            echo_max: Duration::from_secs(300),
            max_wait: Duration::from_secs(900),
            mute_key: None,
            rejoin_max: Duration::from_secs(120),
        };
        b.iter_batched(
            || CallFlow::new(settings),
            |mut f| {
                f.handle_input(now, FlowInput::CallerAnswered);
                for &k in &keys {
                    f.handle_input(now, FlowInput::Digit(k, DigitSource::Rtp));
                }
                f.handle_input(
                    now,
                    FlowInput::Routed(RouteDecision::Conference(target.clone())),
                );
                f.handle_input(now, FlowInput::ServerAnswered);
                let mut bridged = false;
                while let Some(a) = f.poll_action() {
                    bridged |= a == FlowAction::Bridge;
                }
                assert!(bridged);
            },
            BatchSize::SmallInput,
        )
    });
}

/// A typical INVITE from a SIP trunk provider, with its SDP offer.
const INVITE: &str = "INVITE sip:+4930999000@198.51.100.7:5060 SIP/2.0\r\n\
Via: SIP/2.0/UDP 203.0.113.5:5060;branch=z9hG4bK-524287-1---4b4d1c3e6f2a9b8c;rport\r\n\
Max-Forwards: 69\r\n\
Contact: <sip:+4915112345678@203.0.113.5:5060;transport=udp>\r\n\
To: <sip:+4930999000@198.51.100.7>\r\n\
From: \"+4915112345678\" <sip:+4915112345678@203.0.113.5>;tag=7c3f2a91\r\n\
Call-ID: 3c26700b7c4d-9a1b2c3d4e5f@203.0.113.5\r\n\
CSeq: 1 INVITE\r\n\
Allow: INVITE, ACK, CANCEL, OPTIONS, BYE, REFER, NOTIFY, INFO, UPDATE\r\n\
Supported: replaces, timer\r\n\
Session-Expires: 1800\r\n\
P-Asserted-Identity: <sip:+4915112345678@203.0.113.5>\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 297\r\n\r\n\
v=0\r\n\
o=- 1716190834 1716190834 IN IP4 203.0.113.20\r\n\
s=-\r\n\
c=IN IP4 203.0.113.20\r\n\
t=0 0\r\n\
m=audio 31944 RTP/AVP 8 0 18 101\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:18 G729/8000\r\n\
a=fmtp:18 annexb=no\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-16\r\n\
a=ptime:20\r\n\
a=sendrecv\r\n";

fn sip(c: &mut Criterion) {
    c.bench_function("sip_parse_invite", |b| {
        b.iter(|| rsipstack::sip::SipMessage::try_from(black_box(INVITE)).expect("valid INVITE"))
    });
    let body = INVITE.split_once("\r\n\r\n").expect("has body").1;
    c.bench_function("sdp_parse_offer", |b| {
        b.iter(|| MediaOffer::parse(black_box(body)).expect("valid SDP"))
    });
}

criterion_group!(benches, relay, g711, rfc4733, flow, sip);
criterion_main!(benches);
