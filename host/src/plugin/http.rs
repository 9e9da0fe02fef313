//! Outbound HTTP for plugins granted `http:` (`wasi:http/outgoing-handler`, so
//! plugins use standard clients), on the host's terms:
//!
//! - a request goes out only if a grant reaches it (scheme, host, port, path
//!   prefix); any other, a redirect's target included, is answered
//!   `HTTP-request-denied` without a connection being made;
//! - `https` certificates are verified (the Mozilla roots, and the PEM file of
//!   `plugins.http_ca_file` for a private CA);
//! - connecting and the first byte of the answer must come within the call's
//!   deadline; a request body may be at most [`MAX_REQUEST_BYTES`] and an
//!   answer's body [`MAX_RESPONSE_BYTES`];
//! - at most [`MAX_REQUESTS_PER_CALL`] requests a call.
//!
//! wasmtime-wasi-http's own sender trusts only the built-in roots and takes no
//! limits, so requests are sent here: the same steps, with those added.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Poll, ready};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use tokio::net::TcpStream;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

use super::capability::Origin;

/// The largest request body a plugin may send, and answer body it may receive.
pub const MAX_REQUEST_BYTES: usize = 1 << 20;
pub const MAX_RESPONSE_BYTES: usize = 4 << 20;
/// Requests one call may make.
pub const MAX_REQUESTS_PER_CALL: u32 = 16;

/// What one plugin's requests may reach, and how they are sent.
pub struct Hooks {
    plugin: Arc<str>,
    origins: Vec<Origin>,
    tls: Arc<rustls::ClientConfig>,
    /// The running call's deadline (read at its first use of wasi:http), and the requests it made.
    pub deadline: Option<Instant>,
    pub sent: u32,
}

impl Hooks {
    pub fn new(plugin: Arc<str>, origins: Vec<Origin>, tls: Arc<rustls::ClientConfig>) -> Hooks {
        Hooks { plugin, origins, tls, deadline: None, sent: 0 }
    }

    fn allows(&self, uri: &http::Uri) -> bool {
        let https = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => return false,
        };
        let Some(host) = uri.host() else { return false };
        self.origins.iter().any(|o| o.allows(https, host, uri.port_u16(), uri.path()))
    }
}

/// The TLS settings of plugins' requests: the Mozilla roots, and those in `ca_file`.
pub fn client_tls(ca_file: Option<&std::path::Path>) -> anyhow::Result<Arc<rustls::ClientConfig>> {
    let mut roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.into() };
    if let Some(file) = ca_file {
        for cert in crate::tls::read_chain(file)? {
            roots.add(cert).map_err(|e| anyhow::anyhow!("plugins.http_ca_file {}: {e}", file.display()))?;
        }
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(crate::tls::provider()))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

type Sent = Box<
    dyn Future<Output = Result<(http::Response<WasiBody>, Box<dyn Future<Output = Result<(), Error>> + Send>), Error>>
        + Send,
>;

impl WasiHttpHooks for Hooks {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        fut: Box<dyn Future<Output = Result<(), Error>> + Send>,
    ) -> Sent {
        drop(fut);
        let uri = request.uri().clone();
        self.sent += 1;
        if !self.allows(&uri) || self.sent > MAX_REQUESTS_PER_CALL {
            let why = if self.sent > MAX_REQUESTS_PER_CALL {
                format!("more than {MAX_REQUESTS_PER_CALL} requests in one call")
            } else {
                "no http grant reaches it".to_string()
            };
            // The origin alone: a path or query may hold a secret (a webhook's token).
            tracing::warn!(plugin = %self.plugin, "HTTP request to {} refused: {why}", origin(&uri));
            return Box::new(async { Err(Error::HttpRequestDenied) });
        }
        // Everything, the answer's body and the connection included, ends by the
        // call's deadline, whatever the plugin asked for.
        let deadline = tokio::time::Instant::from_std(self.deadline.unwrap_or_else(|| Instant::now() + NO_CALL));
        let connect =
            options.and_then(|o| o.connect_timeout).map_or(deadline, |t| deadline.min(tokio::time::Instant::now() + t));
        let tls = self.tls.clone();
        Box::new(async move {
            let (response, connection) = send(request, connect, deadline, tls).await?;
            let response = response.map(|body| {
                Until {
                    body: Limited::new(body, MAX_RESPONSE_BYTES).map_err(response_too_large),
                    deadline: Box::pin(tokio::time::sleep_until(deadline)),
                }
                .boxed_unsync()
            });
            let connection = async move {
                tokio::time::timeout_at(deadline + GRACE, connection).await.unwrap_or(Err(Error::ConnectionReadTimeout))
            };
            Ok((response, Box::new(connection) as Box<dyn Future<Output = _> + Send>))
        })
    }
}

/// A request made outside a call (none is) has this long.
const NO_CALL: Duration = Duration::from_secs(10);
/// How long a connection may outlive its call's deadline, to close cleanly.
const GRACE: Duration = Duration::from_secs(1);

/// `scheme://host[:port]` of `uri`: what may be shown of it.
fn origin(uri: &http::Uri) -> String {
    let port = uri.port_u16().map_or(String::new(), |p| format!(":{p}"));
    crate::text::line(&format!("{}://{}{port}", uri.scheme_str().unwrap_or("?"), uri.host().unwrap_or("?")), 200)
}

/// A body that fails once `deadline` passes.
struct Until<B> {
    body: B,
    deadline: Pin<Box<tokio::time::Sleep>>,
}

impl<B: http_body::Body<Error = Error> + Unpin> http_body::Body for Until<B> {
    type Data = B::Data;
    type Error = Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Error>>> {
        if self.deadline.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Some(Err(Error::ConnectionReadTimeout)));
        }
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }
}

/// One request on a connection of its own, connected by `connect` and answered
/// by `deadline`; the answer, and the connection's work, which goes on while
/// its body is read.
async fn send(
    request: http::Request<WasiBody>,
    connect: tokio::time::Instant,
    deadline: tokio::time::Instant,
    tls: Arc<rustls::ClientConfig>,
) -> Result<(http::Response<Incoming>, impl Future<Output = Result<(), Error>> + Send), Error> {
    let uri = request.uri().clone();
    let https = uri.scheme_str() == Some("https");
    let host =
        uri.host().ok_or(Error::HttpRequestUriInvalid)?.trim_start_matches('[').trim_end_matches(']').to_string();
    let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
    let tcp = match tokio::time::timeout_at(connect, TcpStream::connect((host.as_str(), port))).await {
        Ok(tcp) => tcp.map_err(Error::Connect)?,
        Err(_) => return Err(Error::ConnectionTimeout),
    };
    let io: Box<dyn crate::tls::Io> = if https {
        let name = rustls::pki_types::ServerName::try_from(host).map_err(|_| Error::HttpRequestUriInvalid)?;
        let stream = tokio::time::timeout_at(connect, tokio_rustls::TlsConnector::from(tls).connect(name, tcp))
            .await
            .map_err(|_| Error::ConnectionTimeout)?
            .map_err(|_| Error::TlsCertificateError)?;
        Box::new(stream)
    } else {
        Box::new(tcp)
    };
    let (mut sender, connection) =
        tokio::time::timeout_at(connect, hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(io)))
            .await
            .map_err(|_| Error::ConnectionTimeout)??;
    // On the wire, the path alone: the scheme and host name a proxy.
    let (mut parts, body) = request.into_parts();
    parts.uri = parts
        .uri
        .path_and_query()
        .map_or_else(|| "/".parse(), |p| p.as_str().parse())
        .map_err(|_| Error::HttpRequestUriInvalid)?;
    let body = Limited::new(body, MAX_REQUEST_BYTES).map_err(request_too_large);
    let answer = tokio::time::timeout_at(deadline, sender.send_request(http::Request::from_parts(parts, body)));
    let mut answer = std::pin::pin!(answer);
    let mut connection = Some(connection);
    // The answer, while the connection does its reading and writing.
    let response = std::future::poll_fn(|cx| {
        if let Poll::Ready(result) = answered(answer.as_mut().poll(cx)) {
            return Poll::Ready(result);
        }
        let Some(running) = connection.as_mut() else { return Poll::Pending };
        let ended = ready!(Pin::new(running).poll(cx));
        connection = None;
        match ended {
            // The connection is done: the answer is ready now, or never will be.
            Ok(()) => answered(answer.as_mut().poll(cx)),
            Err(e) => Poll::Ready(Err(Error::from(e))),
        }
    })
    .await?;
    Ok((response, async move {
        match connection {
            Some(running) => running.await.map_err(Error::from),
            None => Ok(()),
        }
    }))
}

/// The answer, once there is one: the timeout's and hyper's errors as wasi-http's.
fn answered<T, E>(poll: Poll<Result<Result<T, hyper::Error>, E>>) -> Poll<Result<T, Error>> {
    poll.map(|timed| timed.map_err(|_| Error::ConnectionReadTimeout).and_then(|r| r.map_err(Error::from)))
}

fn request_too_large(e: Box<dyn std::error::Error + Send + Sync>) -> Error {
    match e.downcast::<Error>() {
        Ok(e) => *e,
        Err(_) => Error::HttpRequestBodySize(Some(MAX_REQUEST_BYTES as u64)),
    }
}

fn response_too_large(e: Box<dyn std::error::Error + Send + Sync>) -> Error {
    match e.downcast::<hyper::Error>() {
        Ok(e) => Error::from(*e),
        Err(_) => Error::HttpResponseBodySize(Some(MAX_RESPONSE_BYTES as u64)),
    }
}
