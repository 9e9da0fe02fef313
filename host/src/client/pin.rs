//! Whom a client trusts at an `https://` host: a certificate the Mozilla
//! roots vouch for, or else the one it saw first, pinned like SSH's known
//! hosts. The pins are in `~/.config/monitor/known-hosts` (or
//! `$MONITOR_KNOWN_HOSTS`), one per line: the address, the certificate's
//! SHA-256, and the certificate (base64 DER). The client pins the last
//! certificate the host sends: the host's own authority when it made its
//! certificate itself, so the pin holds when its names change.

use std::io::Write;
use std::net::{TcpStream, ToSocketAddrs};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

use crate::tls::{fingerprint, provider};

pub use crate::tls::{Pin, known_hosts, pinned};

/// Pins `cert` for `addr` in `file` (made owner-only if new).
pub fn pin(file: &Path, addr: &str, cert: &CertificateDer<'_>) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let line =
        format!("{addr} sha256={} {}\n", fingerprint(cert), base64::engine::general_purpose::STANDARD.encode(cert));
    std::fs::OpenOptions::new().append(true).create(true).mode(0o600).open(file)?.write_all(line.as_bytes())
}

/// The certificates `addr` presents, checked only for holding their key: to
/// pin on first use, and to say what changed when a pin no longer matches.
pub fn presented(addr: &str, timeout: Duration) -> Result<Vec<CertificateDer<'static>>, String> {
    let provider = Arc::new(provider());
    let seen = Arc::new(Seen { chain: Mutex::default(), provider: provider.clone() });
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(seen.clone())
        .with_no_client_auth();
    let host = addr.rsplit_once(':').map_or(addr, |(host, _)| host).trim_start_matches('[').trim_end_matches(']');
    let name = ServerName::try_from(host.to_string()).map_err(|e| format!("{host}: {e}"))?;
    let mut tls = rustls::ClientConnection::new(Arc::new(config), name).map_err(|e| e.to_string())?;
    let socket_addr =
        addr.to_socket_addrs().map_err(|e| e.to_string())?.next().ok_or_else(|| format!("{addr}: no address"))?;
    let mut socket = TcpStream::connect_timeout(&socket_addr, timeout).map_err(|e| e.to_string())?;
    socket
        .set_read_timeout(Some(timeout))
        .and_then(|()| socket.set_write_timeout(Some(timeout)))
        .map_err(|e| e.to_string())?;
    while tls.is_handshaking() {
        tls.complete_io(&mut socket).map_err(|e| format!("TLS handshake with {addr}: {e}"))?;
    }
    let chain = seen.chain.lock().expect("chain lock").clone();
    Ok(chain)
}

/// A verifier that keeps the chain it is shown and checks only that the peer
/// holds the certificate's key.
#[derive(Debug)]
struct Seen {
    chain: Mutex<Vec<CertificateDer<'static>>>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Seen {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let chain = std::iter::once(end_entity).chain(intermediates).map(|c| c.clone().into_owned()).collect();
        *self.chain.lock().expect("chain lock") = chain;
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_are_found_by_address_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("deep/known-hosts");
        let (a, b) = (CertificateDer::from(vec![1u8, 2, 3]), CertificateDer::from(vec![9u8; 40]));
        pin(&file, "gpu:8750", &a).unwrap();
        pin(&file, "127.0.0.1:9", &b).unwrap();
        let found = pinned(&file, "127.0.0.1:9").unwrap();
        assert_eq!((found.line, found.cert.as_ref()), (2, b.as_ref()));
        assert_eq!(found.sha256, fingerprint(&b));
        assert!(pinned(&file, "gpu:1").is_none());
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
    }
}
