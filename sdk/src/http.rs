//! Outbound HTTP (the `http` feature; capability `http`, granted per origin:
//! `monitor plugins enable NAME --grant http:https://hooks.example.com`).
//!
//! A small blocking client over `wasi:http/outgoing-handler`. The host sends
//! the request only if a grant reaches its URL (any other is refused with
//! [`Error::Denied`], without a connection), verifies certificates, and caps
//! the time (the call's deadline), the request body (1 MiB), the answer's
//! body (4 MiB) and the requests per call (16).
//!
//! ```no_run
//! let answer = monitor_sdk::http::post_json("https://hooks.example.com/services/T1", r#"{"text":"hello"}"#)?;
//! assert!(answer.status < 300);
//! # Ok::<(), monitor_sdk::http::Error>(())
//! ```

use wasip2::http::outgoing_handler;
use wasip2::http::types::{ErrorCode, Fields, IncomingBody, Method, OutgoingBody, OutgoingRequest, Scheme};
use wasip2::io::streams::StreamError;

/// An answer: its status and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub body: Vec<u8>,
}

/// Why a request has no answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The URL is not one this client can send to (an `http://` or `https://` URL).
    Url(String),
    /// The host refused it: no grant reaches the URL, or too many requests in one call.
    Denied(String),
    /// It was sent, and failed on the way (connection, TLS, time, size).
    Failed(String),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Url(url) => write!(f, "'{}' is not an http:// or https:// URL", origin(url)),
            Error::Denied(url) => write!(
                f,
                "the host refused the request to {url}: grant its origin (monitor plugins enable PLUGIN --grant http:ORIGIN)"
            ),
            Error::Failed(why) => f.write_str(why),
        }
    }
}

impl std::error::Error for Error {}

impl From<Error> for String {
    fn from(e: Error) -> String {
        e.to_string()
    }
}

/// `POST url` with a JSON body.
pub fn post_json(url: &str, json: &str) -> Result<Response, Error> {
    request("POST", url, &[("content-type", "application/json")], json.as_bytes())
}

/// One request: `method` (`GET`, `POST`, …) to `url` with `headers` and `body`.
pub fn request(method: &str, url: &str, headers: &[(&str, &str)], body: &[u8]) -> Result<Response, Error> {
    let (scheme, rest) = match url.split_once("://") {
        Some(("https", rest)) => (Scheme::Https, rest),
        Some(("http", rest)) => (Scheme::Http, rest),
        _ => return Err(Error::Url(url.into())),
    };
    let (authority, path) = match rest.find(['/', '?']) {
        Some(at) => (&rest[..at], &rest[at..]),
        None => (rest, "/"),
    };
    let path = if path.starts_with('?') { format!("/{path}") } else { path.to_string() };
    let mut fields: Vec<(String, Vec<u8>)> =
        headers.iter().map(|(k, v)| (k.to_string(), v.as_bytes().to_vec())).collect();
    // A length up front, 0 included: without one the body goes chunked, which
    // some servers refuse, and a server that answers and closes before the
    // last chunk arrives resets the connection under the answer. (RFC 9110
    // would have a GET carry no length; wasi-http cannot send no body at all,
    // and an empty chunked one is worse.)
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("content-length")) {
        fields.push(("content-length".into(), body.len().to_string().into_bytes()));
    }
    let fields = Fields::from_list(&fields).map_err(|e| Error::Failed(format!("bad header: {e:?}")))?;
    let outgoing = OutgoingRequest::new(fields);
    let method = match method {
        "GET" => Method::Get,
        "POST" => Method::Post,
        "PUT" => Method::Put,
        "DELETE" => Method::Delete,
        "PATCH" => Method::Patch,
        "HEAD" => Method::Head,
        other => Method::Other(other.into()),
    };
    let set = outgoing.set_method(&method).is_ok()
        && outgoing.set_scheme(Some(&scheme)).is_ok()
        && outgoing.set_authority(Some(authority)).is_ok()
        && outgoing.set_path_with_query(Some(&path)).is_ok();
    if !set || authority.is_empty() {
        return Err(Error::Url(url.into()));
    }
    let outgoing_body = outgoing.body().map_err(|()| Error::Failed("no request body".into()))?;
    let shown = origin(url);
    let url = shown.as_str();
    let future = outgoing_handler::handle(outgoing, None).map_err(|e| failed(url, e))?;
    // A body that could not be sent says why in the answer (refused, too large), so that comes first.
    let mut unsent = None;
    {
        let stream = outgoing_body.write().map_err(|()| Error::Failed("no request body stream".into()))?;
        for chunk in body.chunks(4096) {
            if let Err(e) = stream.blocking_write_and_flush(chunk) {
                unsent = Some(Error::Failed(format!("sending the body to {url}: {e:?}")));
                break;
            }
        }
    }
    if let Err(e) = OutgoingBody::finish(outgoing_body, None) {
        unsent.get_or_insert(failed(url, e));
    }
    future.subscribe().block();
    let incoming = match future.get() {
        Some(Ok(Ok(incoming))) => incoming,
        Some(Ok(Err(e))) => return Err(failed(url, e)),
        _ => return Err(unsent.unwrap_or_else(|| Error::Failed(format!("no answer from {url}")))),
    };
    if let Some(e) = unsent {
        return Err(e);
    }
    let status = incoming.status();
    let body = incoming.consume().map_err(|()| Error::Failed("no answer body".into()))?;
    let mut read = Vec::new();
    {
        let stream = body.stream().map_err(|()| Error::Failed("no answer body stream".into()))?;
        loop {
            match stream.blocking_read(64 * 1024) {
                Ok(bytes) => read.extend_from_slice(&bytes),
                Err(StreamError::Closed) => break,
                Err(StreamError::LastOperationFailed(e)) => {
                    return Err(Error::Failed(format!("reading the answer from {url}: {}", e.to_debug_string())));
                }
            }
        }
    }
    let _ = IncomingBody::finish(body);
    Ok(Response { status, body: read })
}

/// `scheme://host[:port]` of `url`: what errors show of it, as its path, query or
/// user may hold a secret (a webhook's token).
fn origin(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
    format!("{scheme}://{host}")
}

fn failed(url: &str, e: ErrorCode) -> Error {
    match e {
        ErrorCode::HttpRequestDenied => Error::Denied(url.into()),
        e => Error::Failed(format!("{url}: {e:?}")),
    }
}
