//! Alert webhooks over HTTPS: certificates are verified (against a handler's
//! own `ca_file` when it has one), and redirects are not followed.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use monitor_tests::Sandbox;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// A certificate authority and a certificate for 127.0.0.1 it signed, as PEM.
struct Pki {
    ca: String,
    cert: String,
    key: String,
}

fn pki() -> Pki {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap().signed_by(&key, &ca, &ca_key).unwrap();
    Pki { ca: ca.pem(), cert: cert.pem(), key: key.serialize_pem() }
}

/// An HTTPS server on 127.0.0.1: `/redirect` answers 302, anything else 200.
/// Keeps the paths it was asked for.
fn https_server(pki: &Pki) -> (String, Arc<Mutex<Vec<String>>>) {
    let certs = vec![CertificateDer::from_pem_slice(pki.cert.as_bytes()).unwrap()];
    let key = PrivateKeyDer::from_pem_slice(pki.key.as_bytes()).unwrap();
    let config = rustls::ServerConfig::builder().with_no_client_auth().with_single_cert(certs, key).unwrap();
    let config = Arc::new(config);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let asked = Arc::new(Mutex::new(Vec::new()));
    let seen = asked.clone();
    std::thread::spawn(move || {
        for tcp in listener.incoming().flatten() {
            let (config, seen) = (config.clone(), seen.clone());
            std::thread::spawn(move || {
                let connection = rustls::ServerConnection::new(config).unwrap();
                let mut tls = rustls::StreamOwned::new(connection, tcp);
                let mut reader = BufReader::new(&mut tls);
                let mut request = String::new();
                if reader.read_line(&mut request).is_err() {
                    return; // the client refused the certificate
                }
                let path = request.split_whitespace().nth(1).unwrap_or_default().to_string();
                let mut length = 0;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        length = v.trim().parse().unwrap_or(0);
                    }
                }
                let mut body = vec![0; length];
                let _ = reader.read_exact(&mut body);
                seen.lock().unwrap().push(path.clone());
                let answer = match path.as_str() {
                    "/redirect" => {
                        "HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:9/elsewhere\r\nContent-Length: 0\r\n\r\n"
                    }
                    _ => "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
                };
                let _ = tls.write_all(answer.as_bytes());
                let _ = tls.flush();
            });
        }
    });
    (format!("https://{addr}"), asked)
}

#[test]
fn https_webhooks_verify_certificates_and_never_follow_a_redirect() {
    let pki = pki();
    let (base, asked) = https_server(&pki);
    let sandbox = Sandbox::new();
    let ca_file = sandbox.root.path().join("ca.pem");
    std::fs::write(&ca_file, &pki.ca).unwrap();
    let config = sandbox.root.path().join("host.toml");
    let handler = |name: &str, path: &str, ca: bool| {
        let ca = if ca { format!("ca_file = \"{}\"\n", ca_file.display()) } else { String::new() };
        format!(
            "[[alerts.handler]]\nname = \"{name}\"\nkind = \"webhook\"\nurl = \"{base}{path}\"\nretries = 0\n{ca}\n"
        )
    };
    let text = [
        "[[alerts.rule]]\nname = \"t\"\nlevel = \"warning\"\nkind = \"threshold\"\nmetric = \"x\"\nop = \">\"\nvalue = 1\n\n"
            .to_string(),
        handler("trusted", "/hook", true),
        handler("untrusted", "/hook", false),
        handler("moved", "/redirect", true),
    ]
    .concat();
    std::fs::write(&config, text).unwrap();
    let _daemon = sandbox.start(&["--config", config.to_str().unwrap()]);
    let (status, body) = sandbox.api_post("/v1/alerts/test", r#"{"rule":"t"}"#);
    assert!(status.contains(" 200 "), "{status} {body}");
    let results: Vec<serde_json::Value> = serde_json::from_str(&body).unwrap();
    let result = |name: &str| results.iter().find(|r| r["handler"] == name).unwrap_or_else(|| panic!("{name}: {body}"));
    assert_eq!(result("trusted")["ok"], true, "{body}");
    let untrusted = result("untrusted")["error"].as_str().unwrap_or_default().to_string();
    assert!(untrusted.to_lowercase().contains("certificate") || untrusted.contains("UnknownIssuer"), "{untrusted}");
    let moved = result("moved")["error"].as_str().unwrap_or_default().to_string();
    assert!(moved.contains("HTTP 302, a redirect, not followed"), "{moved}");
    let asked = asked.lock().unwrap().clone();
    assert_eq!(
        asked.iter().filter(|p| *p == "/hook").count(),
        1,
        "only the trusted handler's request arrived: {asked:?}"
    );
    assert_eq!(asked.iter().filter(|p| *p == "/redirect").count(), 1, "asked once, not followed: {asked:?}");
}

#[test]
fn a_ca_file_without_a_certificate_is_refused_by_name() {
    let sandbox = Sandbox::new();
    let ca_file = sandbox.root.path().join("empty.pem");
    std::fs::write(&ca_file, "not a certificate\n").unwrap();
    let config = sandbox.root.path().join("host.toml");
    let text = format!(
        "[[alerts.handler]]\nname = \"h\"\nkind = \"webhook\"\nurl = \"https://example.org/h\"\nca_file = \"{}\"\n",
        ca_file.display()
    );
    std::fs::write(&config, text).unwrap();
    let out = sandbox.monitor(&["alerts", "check", "--config", config.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("handler 'h': ca_file {} holds no PEM certificate", ca_file.display())), "{err}");
}
