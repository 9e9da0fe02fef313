//! A client cannot grow, starve or fool the host: idle connections are shed,
//! what a request can add is capped, every error is `{"error": …}`, and the
//! token goes only to the host that proves it holds it.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use monitor_tests::{Sandbox, wait_for};
use serde_json::{Value, json};

const LIMIT: Duration = Duration::from_secs(30);

fn error_of(status: &str, body: &str, code: &str) -> String {
    assert!(status.contains(&format!(" {code} ")), "{status} {body}");
    let error: Value = serde_json::from_str(body).unwrap_or_else(|_| panic!("not JSON: {status} {body}"));
    error["error"].as_str().unwrap_or_else(|| panic!("no error field: {body}")).to_string()
}

#[test]
fn every_error_is_json_and_unknown_routes_and_methods_say_so() {
    let sandbox = Sandbox::new();
    let _host = sandbox.start(&[]);
    let token = sandbox.token();
    let (status, body) = sandbox.api_get("/v1/nope", Some(&token));
    assert!(error_of(&status, &body, "404").contains("no route /v1/nope"));
    let (status, body) = sandbox.api("DELETE", "/v1/runs", Some(&token), "");
    assert!(error_of(&status, &body, "405").contains("DELETE is not allowed on /v1/runs"));
    let (status, body) = sandbox.api_get("/v1/processes?limit=many", Some(&token));
    assert!(error_of(&status, &body, "400").contains("limit"), "{body}");
    let (status, body) = sandbox.api_get("/v1/processes?bogus=1", Some(&token));
    assert!(error_of(&status, &body, "400").contains("unknown field"), "{body}");
}

#[test]
fn what_a_request_can_add_is_capped() {
    let sandbox = Sandbox::new();
    let _host = sandbox.start(&[]);
    // Metadata: a huge value, and too many keys, are refused; the node keeps what it had.
    let big = json!({"op": "start", "metadata": {"blob": "x".repeat(1 << 20)}}).to_string();
    let (status, body) = sandbox.api_post("/v1/progress/r/a", &big);
    assert!(error_of(&status, &body, "400").contains("a node holds at most 64 keys and 16384 bytes"), "{body}");
    let many: serde_json::Map<String, Value> = (0..65).map(|i| (format!("k{i}"), json!(i))).collect();
    let (status, body) = sandbox.api_post("/v1/progress/r/a", &json!({"op": "start", "metadata": many}).to_string());
    error_of(&status, &body, "400");
    // Silences: too many matchers, or for ever.
    let matchers: serde_json::Map<String, Value> = (0..50).map(|i| (format!("k{i}"), json!("v"))).collect();
    let request = json!({"matchers": matchers, "for": "1h"}).to_string();
    let (status, body) = sandbox.api_post("/v1/alerts/silences", &request);
    assert!(error_of(&status, &body, "400").contains("at most 32 matchers"), "{body}");
    let request = json!({"matchers": {"rule": "x"}, "until_ms": u64::MAX}).to_string();
    let (status, body) = sandbox.api_post("/v1/alerts/silences", &request);
    assert!(error_of(&status, &body, "400").contains("at most a year"), "{body}");
    let request = json!({"matchers": {"rule": "x"}, "for": "1h", "extra": true}).to_string();
    let (status, body) = sandbox.api_post("/v1/alerts/silences", &request);
    assert!(error_of(&status, &body, "422").contains("unknown field"), "{body}");
}

#[test]
fn idle_connections_are_capped_then_closed_and_the_api_answers_again() {
    let sandbox = Sandbox::new();
    let host = sandbox.start(&[]);
    let addr = sandbox.addr();
    // Connections that never send a header: more than the host keeps open.
    let idle: Vec<TcpStream> = (0..600).filter_map(|_| TcpStream::connect(&addr).ok()).collect();
    assert_eq!(idle.len(), 600);
    // The host holds at most its cap of them: its descriptors stay for plugins, jobs, webhooks.
    let fds = || std::fs::read_dir(format!("/proc/{}/fd", host.child.id())).unwrap().count();
    wait_for("the host to accept what it will", LIMIT, || (fds() > 512).then_some(()));
    assert!(fds() < 512 + 100, "{} descriptors open", fds());
    // The silent ones are closed after the header timeout, and the API answers again.
    let mut first = idle.into_iter().next().unwrap();
    first.set_read_timeout(Some(LIMIT)).unwrap();
    let mut buf = [0u8; 16];
    assert!(matches!(first.read(&mut buf), Ok(0) | Err(_)), "the host closed an idle connection");
    wait_for("the API to answer", LIMIT, || {
        let mut stream = TcpStream::connect(&addr).ok()?;
        write!(stream, "GET /v1/health HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").ok()?;
        let mut answer = String::new();
        stream.read_to_string(&mut answer).ok()?;
        answer.starts_with("HTTP/1.1 200").then_some(())
    });
}

#[test]
fn a_websocket_client_cannot_send_a_huge_message() {
    let sandbox = Sandbox::new();
    let _host = sandbox.start(&[]);
    let mut ws = monitor_tests::stream::Ws::connect(&sandbox.addr(), &sandbox.token(), "topics=plugins");
    let socket = &mut ws.socket;
    let big = tungstenite::Message::Text("x".repeat(1 << 20).into());
    let _ = socket.send(big);
    // The host ends the session rather than read it.
    let ended = wait_for("the host to close the socket", LIMIT, || match socket.read() {
        Ok(tungstenite::Message::Close(_)) | Err(_) => Some(true),
        Ok(_) => None,
    });
    assert!(ended);
    let (status, _) = sandbox.api_get("/v1/health", None);
    assert!(status.contains(" 200 "));
}

#[test]
fn the_token_goes_only_to_a_host_that_proves_it_holds_it() {
    let sandbox = Sandbox::new();
    std::fs::create_dir_all(sandbox.data()).unwrap();
    std::fs::write(sandbox.data().join("api-token"), "a".repeat(64)).unwrap();
    // An impostor on the address daemon.json names, claiming the PID there.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let info = json!({"pid": std::process::id(), "addr": addr.to_string()});
    std::fs::write(sandbox.data().join("daemon.json"), info.to_string()).unwrap();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let heard = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut stream = stream;
            let mut buf = [0u8; 4096];
            let n = stream.read(&mut buf).unwrap_or(0);
            heard.lock().unwrap().push_str(&String::from_utf8_lossy(&buf[..n]));
            let body =
                json!({"ok": true, "pid": std::process::id(), "version": "0.1.0", "proof": "forged"}).to_string();
            let _ = write!(stream, "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}", body.len());
        }
    });
    let out = sandbox.monitor(&["list"]);
    assert!(out.status.success(), "offline, on the database: {}", String::from_utf8_lossy(&out.stderr));
    let heard = seen.lock().unwrap().clone();
    assert!(heard.contains("/v1/health?challenge="), "{heard}");
    assert!(!heard.contains(&"a".repeat(64)), "the token was sent: {heard}");
}
