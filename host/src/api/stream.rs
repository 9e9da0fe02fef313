//! `GET /v1/stream`: the live stream of [`crate::stream`], as a WebSocket when
//! the request asks for one (`Upgrade: websocket`), as Server-Sent Events
//! otherwise (`curl -N`).
//!
//! Both take `topics=samples,progress,alerts,plugins,jobs` (all by default),
//! `run=NAME` (that run's progress only) and `after=p12.a3` to resume; SSE
//! clients may send the standard `Last-Event-ID` header instead, which carries
//! the same cursor. Every message is the JSON `{"topic","id","data"}`; over SSE
//! the event name is the topic and the event id the client's cursor.

use std::convert::Infallible;
use std::time::Duration;

use axum::Router;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{Message as Frame, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;

use super::{AppState, error};
use crate::stream::{Hub, Session, Subscription};

/// A WebSocket client that takes longer than this to accept a message is
/// dropped: it has stopped reading.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);

pub fn routes() -> Router<AppState> {
    Router::new().route("/v1/stream", get(stream))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamQuery {
    pub topics: Option<String>,
    pub run: Option<String>,
    pub after: Option<String>,
}

/// The client's subscription, opened; a bad one is a 400 naming the value.
async fn open(state: &AppState, query: &StreamQuery, last_event_id: Option<&str>) -> Result<Session, Response> {
    let after = query.after.as_deref().or(last_event_id);
    let want = Subscription::parse(query.topics.as_deref(), query.run.as_deref(), after)
        .map_err(|e| error(StatusCode::BAD_REQUEST, e))?;
    Session::open(&state.hub, state.store.clone(), want)
        .await
        .map_err(|e| error(StatusCode::INTERNAL_SERVER_ERROR, format!("cannot open the stream: {e}")))
}

/// A WebSocket when the request asks for one, Server-Sent Events otherwise.
async fn stream(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<StreamQuery>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let last = headers.get("last-event-id").and_then(|v| v.to_str().ok());
    let session = match open(&state, &query, last).await {
        Ok(session) => session,
        Err(response) => return response,
    };
    let Ok(upgrade) = upgrade else {
        return events(session);
    };
    let hub = state.hub.clone();
    upgrade.on_upgrade(move |socket| pump(socket, session, hub))
}

fn events(session: Session) -> Response {
    let events = futures_util::stream::unfold(session, |mut session| async move {
        let message = session.next().await?;
        let mut event = Event::default().event(message.topic).data(message.json.as_str());
        if message.id > 0 {
            event = event.id(session.cursor().to_string());
        }
        Some((Ok::<_, Infallible>(event), session))
    });
    Sse::new(events).keep_alive(KeepAlive::default()).into_response()
}

/// Sends the session's messages until either side ends; what the client sends
/// is read only to notice it leaving (pings are answered underneath).
async fn pump(mut socket: WebSocket, mut session: Session, hub: Hub) {
    loop {
        tokio::select! {
            next = session.next() => {
                let Some(message) = next else {
                    let _ = socket.send(Frame::Close(None)).await;
                    return;
                };
                match tokio::time::timeout(SEND_TIMEOUT, socket.send(Frame::Text(message.json.clone()))).await {
                    Ok(Ok(())) => {}
                    Ok(Err(_)) => return,
                    Err(_) => {
                        hub.count_dropped();
                        tracing::info!("stream client dropped: it accepted nothing for {SEND_TIMEOUT:?}");
                        return;
                    }
                }
            }
            incoming = socket.recv() => match incoming {
                Some(Ok(Frame::Close(_)) | Err(_)) | None => return,
                Some(Ok(_)) => {}
            },
        }
    }
}
