//! `/v1/alerts…`: list, history, acknowledge, resolve, silence, test, handlers.
//!
//! | route | body | answer |
//! | --- | --- | --- |
//! | `GET /v1/alerts?state=firing` | | the alerts, by rule and id |
//! | `GET /v1/alerts/history?since_ms=&after_seq=&limit=` | | stored transitions, oldest first |
//! | `POST /v1/alerts/ack` | `{"id", "by", "note"}` | the transition |
//! | `POST /v1/alerts/resolve` | `{"id"}` | the transition |
//! | `GET /v1/alerts/silences` | | the active silences |
//! | `POST /v1/alerts/silences` | `{"matchers": {"rule": "cpu-hot"}, "for": "2h"}` or `"until_ms"` | the silence |
//! | `DELETE /v1/alerts/silences/{id}` | | `{"removed": true}` |
//! | `POST /v1/alerts/test` | `{"rule"}` | each handler's outcome |
//! | `GET /v1/alerts/handlers` | | each handler's counters and latency |
//!
//! An id may be given in full or as a prefix that names one alert.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use super::{AppState, Input, error};
use crate::alerts::dispatch::HandlerStatus;
use crate::alerts::service::AlertingError;
use crate::alerts::{Alert, AlertState, Labels, Silence};
use crate::sampler::now_ms;
use crate::store::alerts::HistoryEntry;

/// Most history entries one request returns unless it asks for fewer.
pub const HISTORY_LIMIT: usize = 10_000;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/alerts", get(list))
        .route("/v1/alerts/history", get(history))
        .route("/v1/alerts/ack", post(ack))
        .route("/v1/alerts/resolve", post(resolve))
        .route("/v1/alerts/silences", get(silences).post(silence))
        .route("/v1/alerts/silences/{id}", delete(unsilence))
        .route("/v1/alerts/test", post(test))
        .route("/v1/alerts/handlers", get(handlers))
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    pub state: Option<AlertState>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistoryQuery {
    #[serde(default)]
    pub since_ms: u64,
    #[serde(default)]
    pub after_seq: u64,
    pub limit: Option<usize>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AckRequest {
    pub id: String,
    #[serde(default)]
    pub by: String,
    #[serde(default)]
    pub note: String,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResolveRequest {
    pub id: String,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SilenceRequest {
    pub matchers: Labels,
    /// How long, like `2h`; or give `until_ms`.
    #[serde(rename = "for", default, skip_serializing_if = "Option::is_none")]
    pub for_: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until_ms: Option<u64>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestRequest {
    pub rule: String,
}

/// One handler's outcome of `POST /v1/alerts/test`.
#[derive(Debug, Serialize, Deserialize)]
pub struct TestResult {
    pub handler: String,
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Removed {
    pub removed: bool,
}

impl IntoResponse for AlertingError {
    fn into_response(self) -> Response {
        super::failure(&self)
    }
}

/// Runs `f` on the alerting service off the async workers (it may commit).
async fn on_alerting<T: Send + 'static>(
    state: &AppState,
    f: impl FnOnce(&crate::alerts::Alerting) -> Result<T, AlertingError> + Send + 'static,
) -> Result<Json<T>, Response> {
    let alerting = state.alerting.clone();
    match tokio::task::spawn_blocking(move || f(&alerting)).await {
        Ok(Ok(value)) => Ok(Json(value)),
        Ok(Err(e)) => Err(e.into_response()),
        Err(e) => Err(error(StatusCode::INTERNAL_SERVER_ERROR, format!("internal error: {e}"))),
    }
}

async fn list(State(state): State<AppState>, Query(query): Query<ListQuery>) -> Json<Vec<Alert>> {
    let mut alerts = state.alerting.alerts(now_ms());
    if let Some(wanted) = query.state {
        alerts.retain(|a| a.state == wanted);
    }
    Json(alerts)
}

async fn history(
    State(state): State<AppState>,
    Query(query): Query<HistoryQuery>,
) -> Result<Json<Vec<HistoryEntry>>, Response> {
    let limit = query.limit.unwrap_or(HISTORY_LIMIT).min(HISTORY_LIMIT);
    let store = state.store.clone();
    match tokio::task::spawn_blocking(move || store.alerts_history(query.since_ms, query.after_seq, limit)).await {
        Ok(Ok(entries)) => Ok(Json(entries)),
        Ok(Err(e)) => Err(error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())),
        Err(e) => Err(error(StatusCode::INTERNAL_SERVER_ERROR, format!("internal error: {e}"))),
    }
}

async fn ack(State(state): State<AppState>, Input(body): Input<AckRequest>) -> Result<Json<HistoryEntry>, Response> {
    let by = if body.by.is_empty() { "api".to_string() } else { body.by };
    on_alerting(&state, move |a| a.ack(&body.id, &by, &body.note, now_ms())).await
}

async fn resolve(
    State(state): State<AppState>,
    Input(body): Input<ResolveRequest>,
) -> Result<Json<HistoryEntry>, Response> {
    on_alerting(&state, move |a| a.resolve(&body.id, now_ms())).await
}

async fn silences(State(state): State<AppState>) -> Json<Vec<Silence>> {
    Json(state.alerting.silences(now_ms()))
}

async fn silence(State(state): State<AppState>, Input(body): Input<SilenceRequest>) -> Result<Json<Silence>, Response> {
    let now = now_ms();
    let until_ms = match (&body.for_, body.until_ms) {
        (Some(text), None) => match humantime::parse_duration(text) {
            Ok(d) => now.saturating_add(u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
            Err(_) => {
                let message = format!("for '{text}' is not a duration; write one like 30m, 2h or 1d");
                return Err(error(StatusCode::BAD_REQUEST, message));
            }
        },
        (None, Some(until)) => until,
        _ => return Err(error(StatusCode::BAD_REQUEST, "give one of for (like \"2h\") or until_ms".into())),
    };
    on_alerting(&state, move |a| a.silence(body.matchers, until_ms, now)).await
}

async fn unsilence(State(state): State<AppState>, Path(id): Path<u64>) -> Result<Json<Removed>, Response> {
    match on_alerting(&state, move |a| a.unsilence(id)).await? {
        Json(true) => Ok(Json(Removed { removed: true })),
        Json(false) => {
            Err(error(StatusCode::NOT_FOUND, format!("no silence {id}; 'monitor alerts silences' lists them")))
        }
    }
}

async fn test(
    State(state): State<AppState>,
    Input(body): Input<TestRequest>,
) -> Result<Json<Vec<TestResult>>, Response> {
    match state.alerting.test(&body.rule, now_ms()).await {
        Ok(outcomes) => Ok(Json(
            outcomes
                .into_iter()
                .map(|(handler, outcome)| TestResult { handler, ok: outcome.is_ok(), error: outcome.err() })
                .collect(),
        )),
        Err(e) => Err(e.into_response()),
    }
}

async fn handlers(State(state): State<AppState>) -> Json<Vec<HandlerStatus>> {
    Json(state.alerting.handlers())
}
