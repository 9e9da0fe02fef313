//! A real HTTPS server for tests: a certificate authority, a certificate for
//! 127.0.0.1 it signed, and a server that keeps what it was asked.

use std::io::{BufReader, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// The size of `/big`'s answer.
pub const BIG: usize = 8 << 20;

/// One request as the server read it.
#[derive(Debug, Clone)]
pub struct Request {
    pub path: String,
    pub body: Vec<u8>,
}

/// A certificate authority and a certificate for 127.0.0.1 it signed, as PEM.
pub struct Pki {
    pub ca: String,
    pub cert: String,
    pub key: String,
}

pub fn pki() -> Pki {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap().signed_by(&key, &ca, &ca_key).unwrap();
    Pki { ca: ca.pem(), cert: cert.pem(), key: key.serialize_pem() }
}

/// An HTTPS server on 127.0.0.1: `/redirect` answers 302 (to `URL` with
/// `/redirect?to=URL`, else to a closed port), `/big` 200 with
/// [`BIG`] bytes, `/stall` its headers and then nothing, anything else 200 and
/// nothing. Keeps what it was asked.
pub fn https_server(pki: &Pki) -> (String, Arc<Mutex<Vec<Request>>>) {
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
                // None: the client refused the certificate, or sent nothing.
                let Some((path, body)) = crate::read_request(&mut reader) else { return };
                seen.lock().unwrap().push(Request { path: path.clone(), body });
                let answer = match path.as_str() {
                    "/redirect" => {
                        "HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:9/elsewhere\r\nContent-Length: 0\r\n\r\n"
                            .to_string()
                    }
                    _ if path.starts_with("/redirect?to=") => {
                        let to = &path["/redirect?to=".len()..];
                        format!("HTTP/1.1 302 Found\r\nLocation: {to}\r\nContent-Length: 0\r\n\r\n")
                    }
                    "/big" => format!("HTTP/1.1 200 OK\r\nContent-Length: {BIG}\r\n\r\n"),
                    "/stall" => "HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n".to_string(),
                    _ => "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n".to_string(),
                };
                let _ = tls.write_all(answer.as_bytes());
                if path == "/stall" {
                    // Headers, then nothing, for as long as the test runs.
                    let _ = tls.flush();
                    loop {
                        std::thread::park();
                    }
                }
                if path == "/big" {
                    let chunk = vec![b'x'; 64 << 10];
                    for _ in 0..BIG / chunk.len() {
                        if tls.write_all(&chunk).is_err() {
                            break;
                        }
                    }
                }
                tls.conn.send_close_notify();
                let _ = tls.flush();
            });
        }
    });
    (format!("https://{addr}"), asked)
}
