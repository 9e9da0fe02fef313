//! What both ends of TLS share: the crypto provider, certificates read from
//! PEM files, and their fingerprints.

use std::path::{Path, PathBuf};

use base64::Engine as _;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

/// *ring*, the provider ureq already links (aws-lc-rs would add a C build);
/// its lack of post-quantum key exchange is why rustls marks it deprecated.
#[allow(deprecated)]
pub fn provider() -> rustls::crypto::CryptoProvider {
    rustls::crypto::ring::default_provider()
}

/// The certificates in a PEM file, in order.
pub fn read_chain(path: &Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let chain: Vec<_> = CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| anyhow::anyhow!("{}: cannot read PEM certificates: {e}", path.display()))?;
    anyhow::ensure!(!chain.is_empty(), "{} holds no PEM certificate (-----BEGIN CERTIFICATE-----)", path.display());
    Ok(chain)
}

/// SHA-256 of a certificate, as `openssl x509 -fingerprint -sha256` writes it (without colons).
pub fn fingerprint(cert: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, cert).as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// The known-hosts file: pins of hosts' certificates, one per line (the
/// address, `sha256=` its fingerprint, the certificate in base64 DER), which
/// `crate::client::pin` writes.
pub fn known_hosts() -> PathBuf {
    if let Some(path) = std::env::var_os("MONITOR_KNOWN_HOSTS").filter(|p| !p.is_empty()) {
        return path.into();
    }
    crate::paths::config_dir().join("known-hosts")
}

/// A pinned certificate: where it is written, and the certificate.
pub struct Pin {
    pub line: usize,
    pub sha256: String,
    pub cert: CertificateDer<'static>,
}

/// The pin for `addr` in `file`, if any.
pub fn pinned(file: &Path, addr: &str) -> Option<Pin> {
    let text = std::fs::read_to_string(file).ok()?;
    text.lines().enumerate().find_map(|(index, line)| {
        let mut fields = line.split_whitespace();
        if fields.next()? != addr {
            return None;
        }
        let sha256 = fields.next()?.strip_prefix("sha256=")?.to_string();
        let der = base64::engine::general_purpose::STANDARD.decode(fields.next()?).ok()?;
        Some(Pin { line: index + 1, sha256, cert: CertificateDer::from(der) })
    })
}

/// A connection, in clear or over TLS: what both the API and plugins' requests speak over.
pub trait Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + Sync {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + Sync> Io for T {}
