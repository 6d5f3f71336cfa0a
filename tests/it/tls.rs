//! SIP over TLS through the real `dialin` binary, with a CA and certificates made by openssl at
//! test time: a call over TLS, and a certificate swapped by SIGHUP. The caller is a small Rust
//! TLS client: Debian's sipp is built without OpenSSL (`-t l1` fails with "To use a TLS
//! transport you must compile SIPp with OpenSSL").

use crate::support::dialin::TestConfig;
use crate::support::ports::PortBlock;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

/// Runs openssl with `args`; panics with install advice when it is missing or fails.
fn openssl(args: &[&str]) {
    let status = Command::new("openssl")
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap_or_else(|e| {
            panic!("openssl is needed for the TLS tests (apt-get install openssl): {e}")
        });
    assert!(status.success(), "openssl {args:?} failed");
}

/// A test CA in `dir` (certificate, key) with common name `test-ca`.
fn ca(dir: &Path) -> (PathBuf, PathBuf) {
    let (cert, key) = (dir.join("ca.crt"), dir.join("ca.key"));
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let mut args = vec!["req", "-x509", "-days", "1", "-subj", "/CN=test-ca"];
    args.extend(ec);
    args.extend([
        "-keyout",
        key.to_str().unwrap(),
        "-out",
        cert.to_str().unwrap(),
    ]);
    openssl(&args);
    (cert, key)
}

/// A server certificate for 127.0.0.1 with common name `cn`, signed by `ca`; returns the
/// certificate and key paths.
fn certificate(dir: &Path, ca: &(PathBuf, PathBuf), cn: &str) -> (PathBuf, PathBuf) {
    let p = |ext: &str| dir.join(format!("{cn}.{ext}"));
    let (cert, key, csr, ext) = (p("crt"), p("key"), p("csr"), p("ext"));
    std::fs::write(&ext, "subjectAltName=IP:127.0.0.1\n").unwrap();
    let subj = format!("/CN={cn}");
    let s = |p: &PathBuf| p.to_str().unwrap().to_string();
    let (key_s, csr_s, cert_s, ext_s) = (s(&key), s(&csr), s(&cert), s(&ext));
    let (ca_cert, ca_key) = (s(&ca.0), s(&ca.1));
    openssl(&[
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-subj",
        &subj,
        "-keyout",
        &key_s,
        "-out",
        &csr_s,
    ]);
    openssl(&[
        "x509",
        "-req",
        "-days",
        "1",
        "-in",
        &csr_s,
        "-CA",
        &ca_cert,
        "-CAkey",
        &ca_key,
        "-CAcreateserial",
        "-extfile",
        &ext_s,
        "-out",
        &cert_s,
    ]);
    (cert, key)
}

/// The subject of the certificate the TLS server at `addr` presents.
fn served_subject(addr: SocketAddr) -> String {
    let out = Command::new("openssl")
        .args(["s_client", "-connect", &addr.to_string()])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .expect("run openssl s_client");
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find(|l| l.starts_with("subject="))
        .unwrap_or_else(|| panic!("no certificate from {addr}:\n{text}"))
        .to_string()
}

/// A dialin config with TLS on its own port, using `cert` and `key`.
fn tls_config(cert: &Path, key: &Path) -> (TestConfig, SocketAddr) {
    let server = SocketAddr::from((Ipv4Addr::LOCALHOST, PortBlock::take(1).base));
    let mut cfg = TestConfig::new(server);
    let tls = SocketAddr::from((Ipv4Addr::LOCALHOST, PortBlock::take(1).base));
    cfg.sip_extra = format!(
        "tls_listen = \"{tls}\"\ntls_cert = \"{}\"\ntls_key = \"{}\"",
        cert.display(),
        key.display()
    );
    (cfg, tls)
}

/// One SIP message read from a stream: start line and headers, then the body.
async fn read_message<S: AsyncRead + Unpin>(stream: &mut S, buf: &mut Vec<u8>) -> String {
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_string();
            let len: usize = head
                .lines()
                .find_map(|l| {
                    let (n, v) = l.split_once(':')?;
                    let n = n.trim().to_ascii_lowercase();
                    (n == "content-length" || n == "l").then(|| v.trim().parse().ok())?
                })
                .unwrap_or(0);
            if buf.len() >= end + 4 + len {
                let msg: Vec<u8> = buf.drain(..end + 4 + len).collect();
                return String::from_utf8_lossy(&msg).to_string();
            }
        }
        let mut chunk = [0u8; 4096];
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut chunk))
            .await
            .expect("a SIP message within 10 s")
            .expect("read from the TLS stream");
        assert!(n > 0, "dialin closed the TLS connection");
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Who ends a TLS call.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Ending {
    /// The caller sends BYE after a second.
    CallerHangsUp,
    /// The caller asks for a 3 s session timer and never refreshes: dialin's BYE must reach it
    /// over the TLS connection.
    SessionExpires,
}

/// A caller over TLS trusting `ca`: INVITE → 100 → 200 → ACK, then the `ending`. Returns the
/// start lines it received, in order, and the 200's Contact.
async fn tls_call(dialin: SocketAddr, ca: &Path, ending: Ending) -> (Vec<String>, String) {
    use rustls_pki_types::pem::PemObject;
    let mut roots = tokio_rustls::rustls::RootCertStore::empty();
    for c in rustls_pki_types::CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let config = tokio_rustls::rustls::ClientConfig::builder_with_provider(Arc::new(
        tokio_rustls::rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(dialin).await.unwrap();
    let local = tcp.local_addr().unwrap();
    let name = rustls_pki_types::ServerName::IpAddress(dialin.ip().into());
    let mut tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .expect("TLS handshake with dialin (certificate signed by the test CA)");
    let sdp = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
               m=audio 40000 RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\n";
    let timer = match ending {
        Ending::SessionExpires => "Supported: timer\r\nSession-Expires: 3;refresher=uac\r\n",
        Ending::CallerHangsUp => "",
    };
    let request = |method: &str, cseq: u32, to_tag: &str, body: &str| {
        format!(
            "{method} sip:4930555000@{dialin};transport=tls SIP/2.0\r\n\
             Via: SIP/2.0/TLS {local};branch=z9hG4bK-tls-{cseq}-{method}\r\n\
             From: <sip:caller@{local}>;tag=tls1\r\nTo: <sip:4930555000@{dialin}>{to_tag}\r\n\
             Call-ID: tls-call-1\r\nCSeq: {cseq} {method}\r\n\
             Contact: <sip:caller@{local};transport=tls>\r\nMax-Forwards: 70\r\n{}\
             {}Content-Length: {}\r\n\r\n{body}",
            if method == "INVITE" { timer } else { "" },
            if body.is_empty() {
                ""
            } else {
                "Content-Type: application/sdp\r\n"
            },
            body.len()
        )
    };
    tls.write_all(request("INVITE", 1, "", sdp).as_bytes())
        .await
        .unwrap();
    let mut buf = Vec::new();
    let mut lines = Vec::new();
    let ok = loop {
        let msg = read_message(&mut tls, &mut buf).await;
        let first = msg.lines().next().unwrap().to_string();
        lines.push(first.clone());
        if !first.contains(" 1") || first.contains(" 200 ") {
            break msg;
        }
    };
    assert!(lines.last().unwrap().contains(" 200 "), "{lines:?}");
    let header = |msg: &str, name: &str| {
        msg.lines()
            .find(|l| l.to_ascii_lowercase().starts_with(&format!("{name}:")))
            .map(|l| l.split_once(':').unwrap().1.trim().to_string())
            .unwrap_or_default()
    };
    let contact = header(&ok, "contact");
    let to_tag = format!(
        ";tag={}",
        header(&ok, "to").split(";tag=").nth(1).expect("To tag")
    );
    tls.write_all(request("ACK", 1, &to_tag, "").as_bytes())
        .await
        .unwrap();
    match ending {
        Ending::CallerHangsUp => {
            // The call lasts a second before the caller hangs up: part of the call, not a wait.
            tokio::time::sleep(Duration::from_secs(1)).await;
            tls.write_all(request("BYE", 2, &to_tag, "").as_bytes())
                .await
                .unwrap();
            loop {
                let msg = read_message(&mut tls, &mut buf).await;
                if msg.contains("CSeq: 2 BYE") {
                    lines.push(msg.lines().next().unwrap().to_string());
                    break;
                }
            }
        }
        Ending::SessionExpires => loop {
            let msg = read_message(&mut tls, &mut buf).await;
            let first = msg.lines().next().unwrap().to_string();
            if first.starts_with("BYE ") {
                lines.push(first);
                let reply = format!(
                    "SIP/2.0 200 OK\r\nVia: {}\r\nFrom: {}\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: {}\r\nContent-Length: 0\r\n\r\n",
                    header(&msg, "via"),
                    header(&msg, "from"),
                    header(&msg, "to"),
                    header(&msg, "call-id"),
                    header(&msg, "cseq"),
                );
                tls.write_all(reply.as_bytes()).await.unwrap();
                break;
            }
        },
    }
    (lines, contact)
}

#[test]
fn a_caller_over_tls_is_answered_and_hangs_up() {
    let dir = tempfile::tempdir().unwrap();
    let ca = ca(dir.path());
    let (cert, key) = certificate(dir.path(), &ca, "dialin.test");
    let (cfg, tls) = tls_config(&cert, &key);
    let dialin = cfg.start();
    // The start-up log says where TLS listens, as it does for UDP and TCP.
    dialin.wait_for_line(
        &format!("SIP over TLS listening listen={tls}"),
        Duration::from_secs(5),
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (lines, contact) = rt.block_on(tls_call(tls, &ca.0, Ending::CallerHangsUp));
    assert!(lines[0].contains(" 100 "), "{lines:?}");
    assert!(
        lines.last().unwrap().contains(" 200 "),
        "BYE answered: {lines:?}"
    );
    assert!(
        contact
            .to_ascii_lowercase()
            .contains(&format!(":{};transport=tls", tls.port())),
        "our Contact asks for TLS: {contact}"
    );
    assert_eq!(dialin.status_value("calls_started"), 1);
    dialin.assert_idle(Duration::from_secs(5));
}

#[test]
fn dialin_ends_a_tls_call_over_the_same_connection() {
    let dir = tempfile::tempdir().unwrap();
    let ca = ca(dir.path());
    let (cert, key) = certificate(dir.path(), &ca, "dialin.test");
    let (mut cfg, tls) = tls_config(&cert, &key);
    cfg.sip_extra.push_str("\nsession_min_se = \"2s\"");
    let dialin = cfg.start();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (lines, _) = rt.block_on(tls_call(tls, &ca.0, Ending::SessionExpires));
    assert!(lines.last().unwrap().starts_with("BYE "), "{lines:?}");
    dialin.wait_for_line("session timer expired", Duration::from_secs(1));
    dialin.assert_idle(Duration::from_secs(5));
}

#[test]
fn sighup_reloads_the_certificate_and_a_broken_one_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let ca = ca(dir.path());
    let (cert, key) = certificate(dir.path(), &ca, "first.dialin.test");
    let (cfg, tls) = tls_config(&cert, &key);
    let dialin = cfg.start();
    assert!(served_subject(tls).contains("first.dialin.test"));
    // Renewed in place, as certbot does.
    let (new_cert, new_key) = certificate(dir.path(), &ca, "second.dialin.test");
    std::fs::copy(&new_cert, &cert).unwrap();
    std::fs::copy(&new_key, &key).unwrap();
    let hup = |n: usize, needle: &str| {
        let ok = Command::new("kill")
            .args(["-HUP", &dialin.pid().to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
        dialin.wait_for_nth_line(needle, n, Duration::from_secs(5));
    };
    hup(1, "TLS certificate reloaded");
    assert!(served_subject(tls).contains("second.dialin.test"));
    // A broken file is refused and the certificate in use stays.
    std::fs::write(&key, "not a key").unwrap();
    hup(1, "TLS certificate not reloaded");
    assert!(served_subject(tls).contains("second.dialin.test"));
}

#[test]
fn silent_tls_connections_are_capped_and_dropped_before_the_handshake_ends() {
    use crate::overload::{idle_connections, is_open};
    let dir = tempfile::tempdir().unwrap();
    let ca = ca(dir.path());
    let (cert, key) = certificate(dir.path(), &ca, "dialin.test");
    let (mut cfg, tls) = tls_config(&cert, &key);
    cfg.extra = "[limits]\ntcp_per_source = 5\ntcp_idle = \"1500ms\"\n".into();
    let dialin = cfg.start();
    dialin.wait_for_line("SIP over TLS listening", Duration::from_secs(5));
    let rt = tokio::runtime::Runtime::new().unwrap();
    let opened = std::time::Instant::now();
    let silent = idle_connections(&rt, tls, 20);
    // Beyond the cap: closed at once; within it: held until tcp_idle without a handshake.
    let deadline = opened + Duration::from_secs(1);
    while silent.iter().filter(|s| is_open(s)).count() > 5 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        silent.iter().filter(|s| is_open(s)).count(),
        5,
        "the per-source cap"
    );
    assert!(opened.elapsed() < Duration::from_millis(1400));
    // A caller from another address completes a call over TLS meanwhile.
    let (lines, _) = rt.block_on(tls_call(tls, &ca.0, Ending::CallerHangsUp));
    assert!(lines.last().unwrap().contains(" 200 "), "{lines:?}");
    let deadline = opened + Duration::from_secs(5);
    while silent.iter().any(is_open) && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        opened.elapsed() >= Duration::from_millis(1500),
        "closed before tcp_idle"
    );
    assert!(
        !silent.iter().any(is_open),
        "silent TLS connections stay open"
    );
    let (_, text) = crate::support::dialin::http(cfg.admin, "GET", "/metrics");
    let refused = crate::support::dialin::metric(
        &text,
        "dialin_connections_refused_total",
        "listener=\"sip_tls\"",
    );
    assert_eq!(refused, 15.0, "{text}");
}
