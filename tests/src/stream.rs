//! Clients of the host's live stream, as remote users run them: Server-Sent
//! Events over plain HTTP, and a WebSocket.

use std::io::{BufRead, BufReader};
use std::net::TcpStream;

use tungstenite::client::IntoClientRequest;
use tungstenite::stream::MaybeTlsStream;

/// One message: its topic, the SSE event id (the cursor) when it had one, and
/// the JSON as sent (`{"topic", "id", "data"}`).
#[derive(Debug, Clone)]
pub struct Message {
    pub topic: String,
    pub cursor: Option<String>,
    pub json: serde_json::Value,
}

impl Message {
    /// The progress feed id or alert sequence number (0 for other topics).
    pub fn id(&self) -> u64 {
        self.json["id"].as_u64().unwrap_or(0)
    }
}

pub struct Sse {
    lines: BufReader<ureq::BodyReader<'static>>,
}

impl Sse {
    /// `GET /v1/stream?QUERY`, with `Last-Event-ID` when given.
    pub fn connect(addr: &str, token: &str, query: &str, last_event_id: Option<&str>) -> Sse {
        let mut request =
            ureq::get(format!("http://{addr}/v1/stream?{query}")).header("Authorization", format!("Bearer {token}"));
        if let Some(id) = last_event_id {
            request = request.header("Last-Event-ID", id);
        }
        let response = request.call().expect("the stream answers");
        let kind = response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default();
        assert_eq!(kind, "text/event-stream");
        Sse { lines: BufReader::new(response.into_body().into_reader()) }
    }
}

impl Iterator for Sse {
    type Item = Message;

    /// The next message (keep-alive comments skipped); `None` when the stream ends.
    fn next(&mut self) -> Option<Message> {
        let (mut topic, mut cursor, mut data) = (None, None, String::new());
        loop {
            let mut line = String::new();
            if self.lines.read_line(&mut line).ok()? == 0 {
                return None;
            }
            let line = line.trim_end_matches(['\r', '\n']);
            if line.is_empty() {
                if data.is_empty() {
                    continue;
                }
                let json = serde_json::from_str(&data).expect("stream data is JSON");
                return Some(Message { topic: topic.unwrap_or_default(), cursor, json });
            }
            match line.split_once(':') {
                Some(("event", v)) => topic = Some(v.trim_start().to_string()),
                Some(("id", v)) => cursor = Some(v.trim_start().to_string()),
                Some(("data", v)) => data.push_str(v.strip_prefix(' ').unwrap_or(v)),
                _ => {}
            }
        }
    }
}

pub struct Ws {
    socket: tungstenite::WebSocket<MaybeTlsStream<TcpStream>>,
}

impl Ws {
    /// `GET /v1/stream?QUERY` upgraded to a WebSocket.
    pub fn connect(addr: &str, token: &str, query: &str) -> Ws {
        let mut request = format!("ws://{addr}/v1/stream?{query}").into_client_request().unwrap();
        request.headers_mut().insert("Authorization", format!("Bearer {token}").parse().unwrap());
        let (socket, _) = tungstenite::connect(request).expect("the WebSocket opens");
        Ws { socket }
    }
}

impl Iterator for Ws {
    type Item = Message;

    /// The next message; `None` when the host closes the socket.
    fn next(&mut self) -> Option<Message> {
        loop {
            match self.socket.read().ok()? {
                tungstenite::Message::Text(text) => {
                    let json: serde_json::Value = serde_json::from_str(&text).expect("stream messages are JSON");
                    let topic = json["topic"].as_str().unwrap_or_default().to_string();
                    return Some(Message { topic, cursor: None, json });
                }
                tungstenite::Message::Close(_) => return None,
                _ => {}
            }
        }
    }
}
