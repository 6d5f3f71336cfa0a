//! `sip.tls_listen`, `sip.tls_cert` and `sip.tls_key`: SIP over TLS, all three keys or none.

use std::net::SocketAddr;
use std::path::PathBuf;

use super::error::Problems;
use super::reader::Section;

/// `sip.tls_listen` with `sip.tls_cert` and `sip.tls_key`: all three or none.
pub(super) fn sip_tls(
    s: &Section<'_>,
    p: &mut Problems<'_>,
) -> Option<crate::sip::tls::TlsSettings> {
    let listen = s.parsed(p, "tls_listen", |t| {
        t.trim()
            .parse::<SocketAddr>()
            .map_err(|_| "not an address with port; write it like \"0.0.0.0:5061\"")
    });
    let path = |p: &mut Problems<'_>, key: &str| {
        s.parsed(p, key, |t| {
            (!t.trim().is_empty())
                .then(|| PathBuf::from(t))
                .ok_or("empty; name a PEM file")
        })
    };
    let (cert, key) = (path(p, "tls_cert"), path(p, "tls_key"));
    let any = s.has("tls_listen") || s.has("tls_cert") || s.has("tls_key");
    if any {
        for k in ["tls_listen", "tls_cert", "tls_key"] {
            if !s.has(k) {
                let message = "missing; SIP over TLS needs tls_listen, tls_cert (PEM certificate chain) and tls_key (PEM private key) together";
                p.push(s.line, s.path_of(k), message);
            }
        }
    }
    Some(crate::sip::tls::TlsSettings {
        listen: listen?.value,
        cert: cert?.value,
        key: key?.value,
    })
}
