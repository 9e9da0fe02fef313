//! TLS on the API (`api.tls = true`): the certificate and key the user gives
//! (`api.tls_cert`, `api.tls_key`), or ones the host makes.
//!
//! The host's own: a certificate authority made at first start and kept in the
//! data directory (`tls-ca.pem`, and its key `tls-ca.key`, mode 0600), which
//! signs at every start a certificate for every name the host answers to
//! (`localhost`, the machine's name, `api.hosts`, its addresses). Clients pin
//! the authority, so the names can change without breaking the pin.

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use rcgen::{BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, KeyPair, KeyUsagePurpose};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

use crate::config::ApiConfig;
use crate::paths::DataDir;
use crate::tls::{fingerprint, provider, read_chain};

/// The API's TLS: what to accept connections with, and the certificate a
/// client on this machine trusts.
#[derive(Clone)]
pub struct Tls {
    pub acceptor: TlsAcceptor,
    /// The PEM file clients pin: the host's authority, or the user's certificate.
    pub trust: PathBuf,
}

/// The API's TLS as configured; `None` without `api.tls`.
pub fn load(config: &ApiConfig, data: &DataDir, names: &[String]) -> anyhow::Result<Option<Tls>> {
    if !config.tls {
        return Ok(None);
    }
    let (chain, key, trust, which) = match (&config.tls_cert, &config.tls_key) {
        (Some(cert), Some(key_file)) => {
            let chain = read_chain(cert)?;
            let key = PrivateKeyDer::from_pem_file(key_file)
                .with_context(|| format!("api.tls_key {}: no PEM private key could be read", key_file.display()))?;
            let which = format!("api.tls_cert {} and api.tls_key {}", cert.display(), key_file.display());
            (chain, key, cert.clone(), which)
        }
        _ => {
            let (chain, key) = own(data, names)?;
            (chain, key, data.root.join(CA_FILE), format!("{} and its key", data.root.join(CA_FILE).display()))
        }
    };
    let provider = Arc::new(provider());
    let mut server = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .with_context(|| format!("the API's certificate and key do not go together: {which}"))?;
    server.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Some(Tls { acceptor: TlsAcceptor::from(Arc::new(server)), trust }))
}

const CA_FILE: &str = "tls-ca.pem";
const CA_KEY_FILE: &str = "tls-ca.key";

/// The authority's parameters: the same every time, so a certificate signed by
/// the authority rebuilt from its key names the issuer the stored one has.
fn authority() -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut name = DistinguishedName::new();
    // The same name whatever the machine is called now: a renamed machine keeps its pins.
    name.push(DnType::CommonName, "monitor API authority");
    params.distinguished_name = name;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params
}

/// The host's own chain (a certificate for `names`, then the authority) and key.
fn own(data: &DataDir, names: &[String]) -> anyhow::Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)> {
    let (ca_path, key_path) = (data.root.join(CA_FILE), data.root.join(CA_KEY_FILE));
    // Made anew only when neither file is there: one that cannot be read is an
    // error, not a reason to replace the authority every client pinned.
    let ca_key = match std::fs::read_to_string(&key_path) {
        Ok(pem) => KeyPair::from_pem(&pem).with_context(|| {
            format!(
                "{} is not a PEM key; delete it and {} to make new ones (clients will need to pin again)",
                key_path.display(),
                ca_path.display()
            )
        })?,
        Err(e) if e.kind() != std::io::ErrorKind::NotFound || ca_path.exists() => {
            return Err(anyhow::anyhow!(
                "cannot read {} ({e}); the API's certificate authority needs it and {} (delete both to make new ones; clients will need to pin again)",
                key_path.display(),
                ca_path.display()
            ));
        }
        Err(_) => {
            let key = KeyPair::generate().context("cannot make the API's certificate authority")?;
            let ca = authority().self_signed(&key)?;
            crate::paths::write_private(&key_path, key.serialize_pem().as_bytes())
                .with_context(|| format!("cannot write {}", key_path.display()))?;
            crate::paths::write_private(&ca_path, ca.pem().as_bytes())
                .with_context(|| format!("cannot write {}", ca_path.display()))?;
            tracing::info!(
                "made the API's certificate authority {} (sha256 {}); clients pin it on first use",
                ca_path.display(),
                fingerprint(ca.der())
            );
            key
        }
    };
    let ca = authority().self_signed(&ca_key)?;
    let stored = read_chain(&ca_path)?.remove(0);
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(names.to_vec())?;
    params.distinguished_name.push(DnType::CommonName, "monitor API");
    params.is_ca = IsCa::ExplicitNoCa;
    let cert = params.signed_by(&key, &ca, &ca_key)?;
    let key = PrivateKeyDer::try_from(key.serialize_der()).map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok((vec![cert.der().clone(), stored], key))
}

/// The names and addresses the host's certificate is made for.
pub fn names(configured: &[String], listen: IpAddr) -> Vec<String> {
    let mut names = vec!["localhost".to_string(), super::dashboard::machine_name(), "127.0.0.1".into(), "::1".into()];
    names.extend(configured.iter().cloned());
    if !listen.is_unspecified() {
        names.push(listen.to_string());
    }
    let networks = sysinfo::Networks::new_with_refreshed_list();
    for (_, network) in networks.iter() {
        names.extend(network.ip_networks().iter().map(|ip| ip.addr.to_string()));
    }
    names.sort();
    names.dedup();
    names.retain(|n| !n.is_empty());
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(dir: &std::path::Path, cert: &str, key: &str) -> ApiConfig {
        let (cert_path, key_path) = (dir.join("cert.pem"), dir.join("key.pem"));
        std::fs::write(&cert_path, cert).unwrap();
        std::fs::write(&key_path, key).unwrap();
        ApiConfig { tls: true, tls_cert: Some(cert_path), tls_key: Some(key_path), ..ApiConfig::default() }
    }

    #[test]
    fn a_certificate_and_key_that_do_not_go_together_are_refused_naming_both_keys() {
        let dir = tempfile::tempdir().unwrap();
        let data = DataDir::new(dir.path());
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(vec!["localhost".into()]).unwrap().self_signed(&key).unwrap();
        let given = config(dir.path(), &cert.pem(), &key.serialize_pem());
        assert!(load(&given, &data, &[]).unwrap().is_some(), "a matching pair is served");

        let other = KeyPair::generate().unwrap();
        let mismatched = config(dir.path(), &cert.pem(), &other.serialize_pem());
        let error = format!("{:#}", load(&mismatched, &data, &[]).err().expect("refused"));
        assert!(error.contains("do not go together: api.tls_cert") && error.contains("key.pem"), "{error}");

        let not_pem = config(dir.path(), &cert.pem(), "not a key");
        let error = format!("{:#}", load(&not_pem, &data, &[]).err().expect("refused"));
        assert!(error.contains("api.tls_key") && error.contains("no PEM private key"), "{error}");
    }

    #[test]
    fn the_hosts_own_authority_is_made_once_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let data = DataDir::new(dir.path());
        let own = ApiConfig { tls: true, ..ApiConfig::default() };
        let names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
        let first = load(&own, &data, &names).unwrap().expect("on");
        let pinned = std::fs::read(&first.trust).unwrap();
        load(&own, &data, &names).unwrap().expect("on");
        assert_eq!(std::fs::read(&first.trust).unwrap(), pinned, "the authority clients pin stays");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join(CA_KEY_FILE)).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
