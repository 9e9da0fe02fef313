//! `GET /v1/stream`: the live stream of [`crate::stream`], as a WebSocket when
//! the request asks for one (`Upgrade: websocket`), as Server-Sent Events
//! otherwise (`curl -N`).
//!
//! Both take `topics=samples,progress,alerts,plugins,jobs` (all by default),
//! `run=NAME` (that run's progress only), `series=NAME,…` (those metrics only
//! in the samples) and `after=p12.a3` to resume; SSE
//! clients may send the standard `Last-Event-ID` header instead, which carries
//! the same cursor. Every message is the JSON `{"topic","id","data"}`; over SSE
//! the event name is the topic and the event id the client's cursor.

use std::convert::Infallible;

use axum::Router;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{Message as Frame, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures_util::{SinkExt, StreamExt};

use super::{AppState, error};
use crate::stream::{STALLED, Session, StreamQuery, Subscription};

/// Most bytes written to a WebSocket at once.
const BATCH_BYTES: usize = 256 * 1024;
/// The largest message and frame a WebSocket client may send: it only ever
/// needs to say goodbye, so a flood is refused before it is read.
const MAX_CLIENT_MESSAGE: usize = 64 * 1024;
const MAX_CLIENT_FRAME: usize = 16 * 1024;

pub fn routes() -> Router<AppState> {
    Router::new().route("/v1/stream", get(stream))
}

/// The client's subscription, opened; a bad one is a 400 naming the value.
async fn open(state: &AppState, request: &StreamQuery) -> Result<Session, Response> {
    let want = Subscription::parse(request).map_err(|e| error(StatusCode::BAD_REQUEST, e))?;
    Session::open(&state.hub, state.store.clone(), want)
        .await
        .map_err(|e| error(StatusCode::INTERNAL_SERVER_ERROR, format!("cannot open the stream: {e}")))
}

/// A WebSocket when the request asks for one, Server-Sent Events otherwise.
async fn stream(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(mut request): Query<StreamQuery>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    if request.after.is_none() {
        request.after = headers.get("last-event-id").and_then(|v| v.to_str().ok()).map(str::to_string);
    }
    let Ok(room) = state.streams.clone().try_acquire_owned() else {
        let message =
            format!("{} stream clients are connected, the most the host serves; try again later", super::MAX_STREAMS);
        return error(StatusCode::SERVICE_UNAVAILABLE, message);
    };
    let session = match open(&state, &request).await {
        Ok(session) => session,
        Err(response) => return response,
    };
    let Ok(upgrade) = upgrade else {
        return events(session, room);
    };
    upgrade.max_message_size(MAX_CLIENT_MESSAGE).max_frame_size(MAX_CLIENT_FRAME).on_upgrade(move |socket| async move {
        pump(socket, session).await;
        drop(room);
    })
}

fn events(session: Session, room: tokio::sync::OwnedSemaphorePermit) -> Response {
    let events = futures_util::stream::unfold((session, room), |(mut session, room)| async move {
        let message = session.next().await?;
        let mut event = Event::default().event(message.topic).data(message.json().as_str());
        if message.id > 0 {
            event = event.id(session.cursor().to_string());
        }
        Some((Ok::<_, Infallible>(event), (session, room)))
    });
    Sse::new(events).keep_alive(KeepAlive::default()).into_response()
}

/// Sends the session's messages until either side ends, all that is ready
/// at once, so a burst costs one write. What the client sends is read in a
/// task of its own, polled only when something arrives, to notice it leaving
/// (pings are answered underneath).
async fn pump(socket: WebSocket, mut session: Session) {
    let (mut sink, mut incoming) = socket.split();
    let mut reader = tokio::spawn(async move {
        while let Some(Ok(frame)) = incoming.next().await {
            if matches!(frame, Frame::Close(_)) {
                break;
            }
        }
    });
    loop {
        tokio::select! {
            next = session.next() => {
                let Some(first) = next else {
                    let _ = sink.send(Frame::Close(None)).await;
                    break;
                };
                let send = async {
                    let mut bytes = first.json().len();
                    sink.feed(Frame::Text(first.json().clone())).await?;
                    while bytes < BATCH_BYTES && let Some(message) = session.ready() {
                        bytes += message.json().len();
                        sink.feed(Frame::Text(message.json().clone())).await?;
                    }
                    sink.flush().await
                };
                match tokio::time::timeout(STALLED, send).await {
                    Ok(Ok(())) => {}
                    Ok(Err(_)) => break,
                    Err(_) => {
                        session.give_up();
                        break;
                    }
                }
            }
            _ = &mut reader => break,
        }
    }
    reader.abort();
}
