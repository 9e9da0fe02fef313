//! Alert webhooks over HTTPS: certificates are verified (against a handler's
//! own `ca_file` when it has one), and redirects are not followed.

use monitor_tests::Sandbox;
use monitor_tests::https::{https_server, pki};

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
    let asked: Vec<String> = asked.lock().unwrap().iter().map(|r| r.path.clone()).collect();
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
