//! The API's listener and the threads that serve it.
//!
//! The API runs on a tokio runtime of its own whose threads are batch work
//! ([`crate::sched::batch`]): waking them never preempts the tick, and when the
//! CPU is short, writing to stream clients and answering requests yields to
//! sampling, the plugins and the alert rules, so the tick keeps its time
//! however many clients read.
//!
//! Every accepted connection gets `TCP_USER_TIMEOUT` ([`PEER_GONE`]): the
//! kernel closes one whose peer has taken none of what was sent for that long
//! (a client that stopped reading, a peer that vanished), which ends the
//! request and frees what it held.
//!
//! No client can hold the API's doors: a connection must send a request's
//! headers within [`HEADER_TIMEOUT`] (a new one, and a kept-alive one between
//! requests), and at most [`MAX_CONNECTIONS`] are open at once; past that a
//! new one is closed at once, so file descriptors stay for plugins, jobs and
//! webhooks. The HTTP server is hyper's own (axum's `serve` sets no header
//! timeout).

use std::net::SocketAddr;
use std::time::Duration;

use std::sync::Arc;

use anyhow::Context;
use axum::Router;
use axum::serve::{Listener, ListenerExt};
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::runtime::Runtime;
use tokio::sync::{Semaphore, oneshot, watch};
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tower_service::Service as _;

use crate::stream::STALLED;

/// `TCP_USER_TIMEOUT`: three times [`STALLED`], so that the host gives up on a
/// stalled WebSocket client first, and a stalled SSE response, which only the
/// kernel can end, is still seen by its session as stalled (and counted).
const PEER_GONE: Duration = Duration::from_secs(3 * STALLED.as_secs());
/// How long a connection may take to send a request's headers.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections open at once; a stream client holds one for as long as it reads.
pub const MAX_CONNECTIONS: usize = 512;

/// The API's listener, bound, not yet serving.
pub struct Listening {
    runtime: Threads,
    listener: TcpListener,
}

/// The API, serving until [`Serving::stop`].
pub struct Serving {
    /// Held until the API stops; dropped, it ends the threads.
    _runtime: Threads,
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

/// The API's runtime, ended without waiting when dropped: it is dropped on the
/// host's own runtime, where waiting for threads is not allowed.
struct Threads(Option<Runtime>);

impl Threads {
    fn spawn<F>(&self, task: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.0.as_ref().expect("running until dropped").spawn(task)
    }
}

impl Drop for Threads {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

impl Listening {
    /// Binds `listen` (`api.listen`) on the API's own threads; `first`, when
    /// given, is tried before it.
    pub async fn bind(listen: &str, first: Option<SocketAddr>) -> anyhow::Result<Listening> {
        let runtime = Threads(Some(
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .thread_name("monitor-api")
                .on_thread_start(|| crate::sched::batch(crate::sched::NICENESS))
                .enable_all()
                .build()
                .context("cannot start the API's threads")?,
        ));
        let address = listen.to_string();
        let listener = runtime
            .spawn(async move {
                if let Some(first) = first
                    && let Ok(listener) = TcpListener::bind(first).await
                {
                    return Ok(listener);
                }
                TcpListener::bind(address).await
            })
            .await?
            .with_context(|| format!("cannot listen on {listen} (api.listen)"))?;
        Ok(Listening { runtime, listener })
    }

    pub fn addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves `router`, over TLS when `tls` is given.
    pub fn serve(self, router: Router, tls: Option<TlsAcceptor>) -> Serving {
        let (stop, stopped) = oneshot::channel::<()>();
        let listener = self.listener.tap_io(close_when_stalled);
        let task = self.runtime.spawn(accept(listener, router, tls, async {
            let _ = stopped.await;
        }));
        Serving { _runtime: self.runtime, stop, task }
    }
}

/// Serves connections from `listener` until `shutdown`, then lets the open
/// ones finish what they are answering.
async fn accept(
    mut listener: impl Listener<Io = tokio::net::TcpStream, Addr = SocketAddr>,
    router: Router,
    tls: Option<TlsAcceptor>,
    shutdown: impl Future<Output = ()>,
) {
    let mut make = router.into_make_service_with_connect_info::<SocketAddr>();
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(HEADER_TIMEOUT).keep_alive(true);
    let open = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    // Dropping `stopping` asks every connection to finish; `done` closes once all have.
    let (stopping, stop_rx) = watch::channel(());
    let (done_tx, done) = watch::channel(());
    let mut shutdown = std::pin::pin!(shutdown);
    let mut refused = 0u64;
    loop {
        let (io, peer) = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        let Ok(permit) = open.clone().try_acquire_owned() else {
            refused += 1;
            if refused.is_power_of_two() {
                tracing::warn!(%peer, refused, "the API has {MAX_CONNECTIONS} connections open; new ones are closed at once");
            }
            continue;
        };
        let service = match make.call(peer).await {
            Ok(service) => service,
            Err(never) => match never {},
        };
        let (mut stop, done, http, tls) = (stop_rx.clone(), done_tx.clone(), http.clone(), tls.clone());
        tokio::spawn(async move {
            // The handshake has the time a request's headers have, on this connection's own task.
            let io: Box<dyn crate::tls::Io> = match tls {
                None => Box::new(io),
                Some(tls) => match tokio::time::timeout(HEADER_TIMEOUT, tls.accept(io)).await {
                    Ok(Ok(stream)) => Box::new(stream),
                    Ok(Err(e)) => return tracing::debug!(%peer, "TLS handshake failed: {e}"),
                    Err(_) => return tracing::debug!(%peer, "TLS handshake took over {HEADER_TIMEOUT:?}"),
                },
            };
            let connection = http.serve_connection(TokioIo::new(io), TowerToHyperService::new(service)).with_upgrades();
            let mut connection = std::pin::pin!(connection);
            tokio::select! {
                ended = connection.as_mut() => {
                    if let Err(e) = ended {
                        tracing::debug!(%peer, "API connection ended: {e}");
                    }
                }
                _ = stop.changed() => {
                    connection.as_mut().graceful_shutdown();
                    let _ = connection.await;
                }
            }
            drop((permit, done));
        });
    }
    drop((stopping, done_tx, listener));
    // Every connection task holds a `done` sender; the channel closes when the last one ends.
    let mut done = done;
    let _ = done.changed().await;
}

impl Serving {
    /// Stops accepting, gives open requests a second, then ends the threads.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        let _ = tokio::time::timeout(Duration::from_secs(1), self.task).await;
    }
}

#[cfg(target_os = "linux")]
fn close_when_stalled(tcp: &mut tokio::net::TcpStream) {
    let millis = PEER_GONE.as_millis() as u32;
    if let Err(e) = rustix::net::sockopt::set_tcp_user_timeout(&*tcp, millis) {
        tracing::debug!("cannot set TCP_USER_TIMEOUT on an API connection: {e}");
    }
}

#[cfg(not(target_os = "linux"))]
fn close_when_stalled(_: &mut tokio::net::TcpStream) {}
