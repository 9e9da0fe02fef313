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

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::serve::ListenerExt;
use tokio::net::TcpListener;
use tokio::runtime::Runtime;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::stream::STALLED;

/// `TCP_USER_TIMEOUT`: three times [`STALLED`], so that the host gives up on a
/// stalled WebSocket client first, and a stalled SSE response, which only the
/// kernel can end, is still seen by its session as stalled (and counted).
const PEER_GONE: Duration = Duration::from_secs(3 * STALLED.as_secs());

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
    task: JoinHandle<std::io::Result<()>>,
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
    /// Binds `listen` (`api.listen`) on the API's own threads.
    pub async fn bind(listen: &str) -> anyhow::Result<Listening> {
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
            .spawn(async move { TcpListener::bind(address).await })
            .await?
            .with_context(|| format!("cannot listen on {listen} (api.listen)"))?;
        Ok(Listening { runtime, listener })
    }

    pub fn addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    pub fn serve(self, router: Router) -> Serving {
        let (stop, stopped) = oneshot::channel::<()>();
        let listener = self.listener.tap_io(close_when_stalled);
        let app = router.into_make_service_with_connect_info::<SocketAddr>();
        let task = self.runtime.spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await
        });
        Serving { _runtime: self.runtime, stop, task }
    }
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
