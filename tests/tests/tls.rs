//! TLS on the API, with real handshakes: the host's own certificate pinned on
//! first use and a changed one refused, a certificate the user gives, and a
//! client that never finishes its handshake holding nothing.

use std::path::Path;
use std::process::{Command, Output};

use monitor_tests::{Sandbox, monitor_bin};

fn config(sandbox: &Sandbox, text: &str) -> String {
    let file = sandbox.root.path().join("host.toml");
    std::fs::write(&file, text).unwrap();
    file.display().to_string()
}

/// `monitor ARGS` against the host at `url` with `token`, pins kept in `known`.
fn remote(url: &str, token: &str, known: &Path, args: &[&str]) -> Output {
    Command::new(monitor_bin())
        .args(["--url", url, "--token", token])
        .args(args)
        .env("MONITOR_KNOWN_HOSTS", known)
        .env_remove("MONITOR_DATA_DIR")
        .output()
        .unwrap()
}

fn curl(args: &[&str]) -> Output {
    Command::new("curl").args(["-sS", "--max-time", "10"]).args(args).output().expect("curl")
}

#[test]
fn the_hosts_own_certificate_is_pinned_on_first_use_and_a_changed_one_is_refused() {
    let sandbox = Sandbox::new();
    let file = config(&sandbox, "[api]\ntls = true\n");
    let host = sandbox.start(&["--config", &file]);
    let (addr, token) = (sandbox.addr(), sandbox.token());
    let url = format!("https://{addr}");

    // This machine's commands trust the host's authority from the data directory.
    let out = sandbox.monitor(&["plugins", "list"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let env = String::from_utf8(sandbox.monitor(&["api-env"]).stdout).unwrap();
    let ca = sandbox.data().join("tls-ca.pem");
    assert!(
        env.contains(&format!("MONITOR_URL={url}")) && env.contains(&format!("MONITOR_CA={}", ca.display())),
        "{env}"
    );
    // A real handshake by another TLS stack: curl, trusting that file, for the address and for localhost.
    let health = curl(&["--cacert", ca.to_str().unwrap(), &format!("{url}/v1/health")]);
    assert!(String::from_utf8_lossy(&health.stdout).contains("\"ok\":true"), "{health:?}");
    let port = addr.rsplit_once(':').unwrap().1;
    let by_name = curl(&["--cacert", ca.to_str().unwrap(), &format!("https://localhost:{port}/v1/health")]);
    assert!(by_name.status.success(), "{by_name:?}");
    // Without trusting it, curl refuses; plain HTTP on the TLS port gets no answer.
    assert!(!curl(&[&format!("{url}/v1/health")]).status.success());
    assert!(!curl(&[&format!("http://{addr}/v1/health")]).status.success());
    let key = sandbox.data().join("tls-ca.key");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&key).unwrap().permissions().mode() & 0o777, 0o600);

    // Elsewhere: pinned on first use, said once, then silently checked.
    let known = sandbox.root.path().join("known-hosts");
    let first = remote(&url, &token, &known, &["list"]);
    let stderr = String::from_utf8_lossy(&first.stderr);
    assert!(first.status.success() && stderr.contains("pinned the TLS certificate of"), "{stderr}");
    let pinned = std::fs::read_to_string(&known).unwrap();
    assert!(pinned.starts_with(&format!("{addr} sha256=")), "{pinned}");
    let again = remote(&url, &token, &known, &["list"]);
    assert!(again.status.success() && again.stderr.is_empty(), "{}", String::from_utf8_lossy(&again.stderr));

    // A new authority on the same address: refused, saying what changed and what to do.
    drop(host);
    std::fs::remove_file(&key).unwrap();
    std::fs::remove_file(&ca).unwrap();
    let _host = sandbox.start(&["--config", &file]);
    assert_eq!(sandbox.addr(), addr, "the host takes its last port again");
    let changed = remote(&url, &token, &known, &["list"]);
    let stderr = String::from_utf8_lossy(&changed.stderr);
    assert_eq!(changed.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("the TLS certificate of {addr} is not the one pinned"))
            && stderr.contains("line 1 of")
            && stderr.contains("delete that line"),
        "{stderr}"
    );
    assert_eq!(std::fs::read_to_string(&known).unwrap(), pinned, "a changed certificate is never pinned by itself");
    // The local commands follow the new authority.
    assert!(sandbox.monitor(&["plugins", "list"]).status.success());
}

#[test]
fn a_certificate_the_user_gives_is_served_and_a_stalled_handshake_holds_nothing() {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    let sandbox = Sandbox::new();
    let dir = sandbox.root.path();
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(rcgen::DnType::CommonName, "team CA");
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
    params.distinguished_name.push(rcgen::DnType::CommonName, "monitor on build-1");
    let cert = params.signed_by(&key, &ca, &ca_key).unwrap();
    std::fs::write(dir.join("fullchain.pem"), format!("{}{}", cert.pem(), ca.pem())).unwrap();
    std::fs::write(dir.join("key.pem"), key.serialize_pem()).unwrap();
    std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();

    // Half a pair is refused before anything starts.
    let half = config(&sandbox, "[api]\ntls = true\ntls_cert = \"fullchain.pem\"\n");
    let out = sandbox.monitor(&["run", "--config", &half]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("api.tls_cert and api.tls_key go together"));

    let file = config(
        &sandbox,
        &format!(
            "[api]\ntls = true\ntls_cert = \"{}\"\ntls_key = \"{}\"\n",
            dir.join("fullchain.pem").display(),
            dir.join("key.pem").display()
        ),
    );
    let _host = sandbox.start(&["--config", &file]);
    let url = format!("https://{}", sandbox.addr());
    let health = curl(&["--cacert", dir.join("ca.pem").to_str().unwrap(), &format!("{url}/v1/health")]);
    assert!(String::from_utf8_lossy(&health.stdout).contains("\"ok\":true"), "{health:?}");
    assert!(!sandbox.data().join("tls-ca.pem").exists(), "the host makes no certificate of its own");

    // A connection that never starts its handshake is waited for on its own:
    // the API answers others meanwhile, and the local commands trust the user's chain.
    let stalled = std::net::TcpStream::connect(sandbox.addr()).unwrap();
    let out = sandbox.monitor(&["plugins", "list"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    drop(stalled);
}
