//! rtpengine, the relay operators would otherwise use: started in userspace mode (no kernel
//! module, `--table=-1`) and driven over its "ng" control protocol (bencoded dictionaries over
//! UDP), so the same media load runs through it between the same endpoints.

use crate::sip::{sdp, sdp_audio};
use std::net::{SocketAddr, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A bencoded value.
#[derive(Clone, Debug, PartialEq)]
pub enum Bencode {
    /// Byte string (UTF-8 here).
    Str(String),
    /// Integer.
    Int(i64),
    /// List.
    List(Vec<Bencode>),
    /// Dictionary, keys in the order given (the ng protocol does not require sorting).
    Dict(Vec<(String, Bencode)>),
}

impl Bencode {
    /// Encodes into `out`.
    pub fn encode(&self, out: &mut String) {
        match self {
            Bencode::Str(s) => out.push_str(&format!("{}:{s}", s.len())),
            Bencode::Int(i) => out.push_str(&format!("i{i}e")),
            Bencode::List(l) => {
                out.push('l');
                l.iter().for_each(|v| v.encode(out));
                out.push('e');
            }
            Bencode::Dict(d) => {
                out.push('d');
                for (k, v) in d {
                    Bencode::Str(k.clone()).encode(out);
                    v.encode(out);
                }
                out.push('e');
            }
        }
    }

    /// Decodes one value from the front of `s`; returns it and the rest.
    pub fn decode(s: &str) -> Option<(Bencode, &str)> {
        let first = s.chars().next()?;
        match first {
            'i' => {
                let end = s.find('e')?;
                Some((Bencode::Int(s[1..end].parse().ok()?), &s[end + 1..]))
            }
            'l' | 'd' => {
                let mut rest = &s[1..];
                let mut items = Vec::new();
                while !rest.starts_with('e') {
                    let (v, r) = Bencode::decode(rest)?;
                    items.push(v);
                    rest = r;
                }
                let rest = &rest[1..];
                if first == 'l' {
                    return Some((Bencode::List(items), rest));
                }
                let mut dict = Vec::new();
                let mut it = items.into_iter();
                while let (Some(Bencode::Str(k)), Some(v)) = (it.next(), it.next()) {
                    dict.push((k, v));
                }
                Some((Bencode::Dict(dict), rest))
            }
            _ => {
                let colon = s.find(':')?;
                let len: usize = s[..colon].parse().ok()?;
                let body = s.get(colon + 1..colon + 1 + len)?;
                Some((Bencode::Str(body.to_string()), &s[colon + 1 + len..]))
            }
        }
    }

    /// The string under `key` of a dictionary.
    pub fn get_str(&self, key: &str) -> Option<&str> {
        let Bencode::Dict(d) = self else { return None };
        d.iter().find(|(k, _)| k == key).and_then(|(_, v)| match v {
            Bencode::Str(s) => Some(s.as_str()),
            _ => None,
        })
    }
}

fn dict(items: &[(&str, &str)]) -> Bencode {
    Bencode::Dict(
        items
            .iter()
            .map(|(k, v)| (k.to_string(), Bencode::Str(v.to_string())))
            .collect(),
    )
}

/// A running rtpengine and its ng control socket.
pub struct Rtpengine {
    child: Child,
    ng: UdpSocket,
    ng_addr: SocketAddr,
    cookie: u64,
}

impl Rtpengine {
    /// Starts rtpengine in userspace mode with its ng socket on `ng_port` and media ports
    /// `ports`, and waits until it answers `ping`. `reference`, if given, is a command run in
    /// rtpengine's place with the same arguments after its own.
    pub fn start(
        reference: Option<&str>,
        ng_port: u16,
        ports: (u16, u16),
        threads: usize,
    ) -> Result<Rtpengine, String> {
        let mut words = reference.unwrap_or("rtpengine").split_whitespace();
        let program = words.next().unwrap_or("rtpengine");
        let child = Command::new(program)
            .args(words)
            .args([
                "--config-file=none",
                "--table=-1",
                "--interface=127.0.0.1",
                &format!("--listen-ng=127.0.0.1:{ng_port}"),
                &format!("--port-min={}", ports.0),
                &format!("--port-max={}", ports.1),
                &format!("--num-threads={threads}"),
                "--foreground",
                "--log-stderr",
                "--log-level=3",
                "--no-redis-required",
                "--delete-delay=0",
                "--timeout=600",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| match reference {
                None => format!("cannot start rtpengine ({e}): apt-get install rtpengine-daemon"),
                Some(cmd) => format!("cannot start the reference relay {cmd:?}: {e}"),
            })?;
        let ng = UdpSocket::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
        ng.set_read_timeout(Some(Duration::from_millis(200))).ok();
        let mut r = Rtpengine {
            child,
            ng,
            ng_addr: SocketAddr::from(([127, 0, 0, 1], ng_port)),
            cookie: 0,
        };
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(10) {
            if r.command(dict(&[("command", "ping")]))
                .ok()
                .as_ref()
                .and_then(|b| b.get_str("result"))
                == Some("pong")
            {
                return Ok(r);
            }
        }
        Err(format!(
            "{program} did not answer ping on its ng port within 10 s"
        ))
    }

    /// The process id, for CPU and memory readings.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends one ng command and returns the reply dictionary.
    fn command(&mut self, cmd: Bencode) -> Result<Bencode, String> {
        self.cookie += 1;
        let mut msg = format!("{} ", self.cookie);
        cmd.encode(&mut msg);
        self.ng
            .send_to(msg.as_bytes(), self.ng_addr)
            .map_err(|e| e.to_string())?;
        let mut buf = vec![0u8; 65536];
        loop {
            let n = self.ng.recv(&mut buf).map_err(|e| format!("ng: {e}"))?;
            let text = String::from_utf8_lossy(&buf[..n]).to_string();
            let Some((cookie, body)) = text.split_once(' ') else {
                continue;
            };
            if cookie != self.cookie.to_string() {
                continue;
            }
            return Bencode::decode(body)
                .map(|(b, _)| b)
                .ok_or_else(|| "ng: undecodable reply".to_string());
        }
    }

    /// Sets up call `i` between the phone side `caller` and the conference side `server`
    /// (offer, then answer) and returns rtpengine's port for each: (takes the phone's audio,
    /// takes the conference's audio).
    pub fn bridge(
        &mut self,
        i: usize,
        caller: SocketAddr,
        server: SocketAddr,
    ) -> Result<(SocketAddr, SocketAddr), String> {
        let call_id = format!("bench-{i}");
        let offer = self.command(dict(&[
            ("command", "offer"),
            ("call-id", &call_id),
            ("from-tag", "phone"),
            ("sdp", &sdp(caller, i as u64)),
        ]))?;
        let to_server = offer
            .get_str("sdp")
            .and_then(sdp_audio)
            .ok_or_else(|| format!("offer failed: {offer:?}"))?;
        let answer = self.command(dict(&[
            ("command", "answer"),
            ("call-id", &call_id),
            ("from-tag", "phone"),
            ("to-tag", "conference"),
            ("sdp", &sdp(server, i as u64)),
        ]))?;
        let to_caller = answer
            .get_str("sdp")
            .and_then(sdp_audio)
            .ok_or_else(|| format!("answer failed: {answer:?}"))?;
        // The phone sends to the port in the answer, the conference to the port in the offer.
        Ok((to_caller, to_server))
    }

    /// Ends call `i`.
    pub fn delete(&mut self, i: usize) {
        let call_id = format!("bench-{i}");
        self.command(dict(&[
            ("command", "delete"),
            ("call-id", &call_id),
            ("from-tag", "phone"),
        ]))
        .ok();
    }
}

impl Drop for Rtpengine {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bencode_round_trip() {
        let v = Bencode::Dict(vec![
            ("command".into(), Bencode::Str("offer".into())),
            ("n".into(), Bencode::Int(-3)),
            (
                "flags".into(),
                Bencode::List(vec![Bencode::Str("a:b".into())]),
            ),
        ]);
        let mut s = String::new();
        v.encode(&mut s);
        assert_eq!(s, "d7:command5:offer1:ni-3e5:flagsl3:a:bee");
        assert_eq!(Bencode::decode(&s), Some((v.clone(), "")));
        assert_eq!(v.get_str("command"), Some("offer"));
        assert_eq!(v.get_str("n"), None);
        assert_eq!(Bencode::decode("5:ab"), None);
    }
}
