//! Clients of the host's live stream, as remote users run them: Server-Sent
//! Events over plain HTTP, and a WebSocket.

use std::io::BufReader;

use monitor_host::client::sse::{Event, next_event};
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
    /// The host ended the response properly (rather than the connection breaking).
    pub closed_by_host: bool,
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
        Sse { lines: BufReader::new(response.into_body().into_reader()), closed_by_host: false }
    }

    /// The next event, unparsed; `None` when the stream ends.
    pub fn next_raw(&mut self) -> Option<Event> {
        let event = next_event(&mut self.lines).ok()?;
        self.closed_by_host = event.is_none();
        event
    }
}

impl Iterator for Ws {
    type Item = Message;

    fn next(&mut self) -> Option<Message> {
        let text = self.next_raw()?;
        let json: serde_json::Value = serde_json::from_str(&text).expect("stream messages are JSON");
        let topic = json["topic"].as_str().unwrap_or_default().to_string();
        Some(Message { topic, cursor: None, json })
    }
}

impl Iterator for Sse {
    type Item = Message;

    fn next(&mut self) -> Option<Message> {
        let Event { event, id, data } = self.next_raw()?;
        let json = serde_json::from_str(&data).expect("stream data is JSON");
        Some(Message { topic: event.unwrap_or_default(), cursor: id, json })
    }
}

pub struct Ws {
    pub socket: tungstenite::WebSocket<MaybeTlsStream<TcpStream>>,
    /// The host sent a close frame (rather than the connection breaking).
    pub closed_by_host: bool,
}

impl Ws {
    /// `GET /v1/stream?QUERY` upgraded to a WebSocket.
    pub fn connect(addr: &str, token: &str, query: &str) -> Ws {
        let mut request = format!("ws://{addr}/v1/stream?{query}").into_client_request().unwrap();
        request.headers_mut().insert("Authorization", format!("Bearer {token}").parse().unwrap());
        let (socket, _) = tungstenite::connect(request).expect("the WebSocket opens");
        Ws { socket, closed_by_host: false }
    }

    /// The next message's text, unparsed; `None` when the socket closes.
    pub fn next_raw(&mut self) -> Option<tungstenite::Utf8Bytes> {
        loop {
            match self.socket.read().ok()? {
                tungstenite::Message::Text(text) => return Some(text),
                tungstenite::Message::Close(_) => {
                    self.closed_by_host = true;
                    return None;
                }
                _ => {}
            }
        }
    }
}

/// A client that asks for the stream (`websocket`: as a WebSocket) and then
/// never reads. Its receive buffer is fixed and small, so the kernel's
/// autotuning cannot let it soak up megabytes first and it stalls at once.
pub fn stalled(addr: &str, token: &str, query: &str, websocket: bool) -> TcpStream {
    let addr: std::net::SocketAddr = addr.parse().unwrap();
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(64 * 1024).unwrap();
    socket.connect(&addr.into()).unwrap();
    let mut stream: TcpStream = socket.into();
    let upgrade = if websocket {
        "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
    } else {
        ""
    };
    let request =
        format!("GET /v1/stream?{query} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n{upgrade}\r\n");
    std::io::Write::write_all(&mut stream, request.as_bytes()).unwrap();
    stream
}
