//! SIP over TLS (`sip.tls_listen`, usually port 5061): rsipstack's rustls listener with the
//! certificate and key read from files, checked at start-up, and reloadable without a restart
//! (certificates are renewed every few weeks; calls in progress keep their connections).
//!
//! [`TlsReloader::reload`] is the seam for SIGHUP: it re-reads both files and swaps the
//! certificate for new handshakes, or leaves the old one in place and says what is wrong.

use rsipstack::transport::tls::{ReloadableCertResolver, TlsConfig, TlsListenerConnection};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// What the TLS listener needs from the configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsSettings {
    /// `sip.tls_listen`.
    pub listen: SocketAddr,
    /// `sip.tls_cert`: the certificate chain, PEM.
    pub cert: PathBuf,
    /// `sip.tls_key`: the private key, PEM (PKCS#8 or PKCS#1).
    pub key: PathBuf,
}

/// Why TLS could not start or reload; the message says what to fix.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A file could not be read.
    #[error(
        "cannot read {path}: {reason}; check sip.tls_cert / sip.tls_key and the file's permissions"
    )]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        reason: String,
    },
    /// The PEM data is not a usable certificate and matching key.
    #[error("the TLS certificate or key is not usable ({0}); give a PEM certificate chain and its PEM private key")]
    Invalid(String),
    /// The TLS port could not be bound.
    #[error("cannot listen for SIP over TLS on {addr}: {reason}; check sip.tls_listen and that no other server uses the port")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        reason: String,
    },
}

/// Reads the certificate and key and checks that they form a usable pair.
fn read_pair(cert: &Path, key: &Path) -> Result<(Vec<u8>, Vec<u8>), TlsError> {
    let read = |path: &Path| {
        std::fs::read(path).map_err(|e| TlsError::Read {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })
    };
    let (cert, key) = (read(cert)?, read(key)?);
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    ReloadableCertResolver::new(&cert, &key, provider)
        .map_err(|e| TlsError::Invalid(e.to_string()))?;
    Ok((cert, key))
}

/// Builds the TLS listener for `settings` (to be added to the transport layer) and its
/// reloader. `external` is the advertised address, when it differs.
pub async fn tls_listener(
    settings: &TlsSettings,
    external: Option<SocketAddr>,
) -> Result<(TlsListenerConnection, TlsReloader), TlsError> {
    let (cert, key) = read_pair(&settings.cert, &settings.key)?;
    // rsipstack binds when the endpoint starts serving and drops errors there: bind once
    // here so a taken port is reported at start-up.
    std::net::TcpListener::bind(settings.listen)
        .map(drop)
        .map_err(|e| TlsError::Bind {
            addr: settings.listen,
            reason: e.to_string(),
        })?;
    let config = TlsConfig {
        cert: Some(cert),
        key: Some(key),
        ..Default::default()
    };
    let listener = TlsListenerConnection::new(settings.listen, external, config)
        .await
        .map_err(|e| TlsError::Invalid(e.to_string()))?;
    let reloader = TlsReloader {
        listener: listener.clone(),
        cert: settings.cert.clone(),
        key: settings.key.clone(),
    };
    Ok((listener, reloader))
}

/// Re-reads the certificate files into the running TLS listener.
#[derive(Clone)]
pub struct TlsReloader {
    /// The listener whose certificate is swapped.
    listener: TlsListenerConnection,
    /// `sip.tls_cert`.
    cert: PathBuf,
    /// `sip.tls_key`.
    key: PathBuf,
}

impl TlsReloader {
    /// Reloads both files; on any error the old certificate stays in use.
    pub async fn reload(&self) -> Result<(), TlsError> {
        let (cert, key) = read_pair(&self.cert, &self.key)?;
        self.listener
            .reload_tls_config(cert, key)
            .await
            .map_err(|e| TlsError::Invalid(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unreadable_and_invalid_files_are_explained() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        let err = read_pair(&missing, &missing).unwrap_err();
        assert!(err.to_string().contains("cannot read"), "{err}");
        let junk = dir.path().join("junk.pem");
        std::fs::write(&junk, "not a certificate").unwrap();
        let err = read_pair(&junk, &junk).unwrap_err();
        assert!(err.to_string().contains("not usable"), "{err}");
    }
}
