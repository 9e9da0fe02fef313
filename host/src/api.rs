//! The daemon's HTTP API on loopback: what the CLI (and remote clients) speak.
//!
//! Every route but `/v1/health` needs `Authorization: Bearer TOKEN`: the
//! content of `api-token` in the data directory (the local admin), or a token
//! made by `monitor tokens create`, whose scope must cover the route
//! ([`crate::access`]). Every change is recorded in the audit log.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Path, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use crate::access::Scope;
use crate::error::{Classified, CommandResult, ErrorKind};
use crate::metrics::{Board, Sample, parse_labels};
use crate::paths::DataDir;
use crate::plugin::{Grant, Listing, Manager, ManagerError, PluginRecord};
use crate::progress::{Node, NodePath, Update};
use crate::query::{KvEntry, history, series_listing, tree};
use crate::sampler::{ProcessFilter, ProcessSample, SharedProcesses, SharedSnapshot, Snapshot, SortKey, sort};
use crate::status;
use crate::store::Store;
use crate::store::metrics::{SeriesListing, SeriesPoints};
use crate::store::progress::{ProgressEvent, UpdateEffect};
use crate::store::space::{Compacted, Space};
use crate::writer::{MAX_BATCH, WriteError, Writer};

pub mod access;
pub mod alerts;
pub mod dashboard;
mod jobs;
pub mod server;
mod stream;
pub mod tls;

#[derive(Clone)]
pub struct AppState {
    pub manager: Arc<Manager>,
    pub store: Store,
    pub board: Arc<Mutex<Board>>,
    pub snapshot: SharedSnapshot,
    pub processes: SharedProcesses,
    /// The local admin's token, the content of `api-token`.
    pub token: Arc<str>,
    /// The other tokens, by their secret's hash.
    pub tokens: Arc<access::Tokens>,
    /// How long the audit log keeps a change.
    pub keep_audit_ms: u64,
    pub failures: Arc<AuthFailures>,
    /// Requests refused for their token's scope, by address: only so many are audited.
    pub refusals: Arc<AuthFailures>,
    pub writer: Writer,
    pub data: DataDir,
    pub alerting: Arc<crate::alerts::Alerting>,
    /// The watch jobs (none when the config declares none).
    pub jobs: Arc<crate::watch::Jobs>,
    pub hub: crate::stream::Hub,
    /// The metric history's samples not committed yet.
    pub unwritten: crate::history::Unwritten,
    /// Room for stream clients: each holds one of these while it reads.
    pub streams: Arc<tokio::sync::Semaphore>,
    /// The names a request's `Host` may carry.
    pub hosts: Arc<dashboard::Hosts>,
    /// The dashboard's view of other hosts.
    pub fleet: Arc<Fleet>,
}

/// The fleet view of `api.fleet_hosts`: looked at no more often than every
/// [`Fleet::FRESH`], however many clients ask (they wait for one look).
pub struct Fleet {
    file: Option<std::path::PathBuf>,
    last: LastLook,
}

/// The last look, as the JSON every client is sent.
type LastLook = Arc<tokio::sync::Mutex<Option<(std::time::Instant, axum::body::Bytes)>>>;

impl Fleet {
    const FRESH: std::time::Duration = std::time::Duration::from_secs(5);

    pub fn new(file: Option<std::path::PathBuf>) -> Fleet {
        Fleet { file, last: Default::default() }
    }

    /// The last look while it is fresh, else a new one, taken in a task of its
    /// own that holds the lock: a client that goes away does not end it, and
    /// the next one waits for it instead of starting another.
    async fn look(last: LastLook, file: std::path::PathBuf) -> Result<axum::body::Bytes, String> {
        let mut last = last.lock_owned().await;
        if let Some((_, look)) = last.as_ref().filter(|(at, _)| at.elapsed() < Fleet::FRESH) {
            return Ok(look.clone());
        }
        let looked =
            tokio::task::spawn_blocking(move || crate::fleet::read(&file).map(|hosts| crate::fleet::look(&hosts)))
                .await
                .map_err(|_| "looking at the fleet failed".to_string())?;
        let look = serde_json::to_vec(&looked.map_err(|e| e.to_string())?).map_err(|e| e.to_string())?;
        let look = axum::body::Bytes::from(look);
        *last = Some((std::time::Instant::now(), look.clone()));
        Ok(look)
    }
}

/// Stream clients served at once.
pub const MAX_STREAMS: usize = 256;

/// The body of every error answer.
#[derive(Debug, Serialize, Deserialize)]
pub struct ApiError {
    pub error: String,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Health {
    pub ok: bool,
    pub pid: u32,
    pub version: String,
    /// With `?challenge=HEX`: proof that whoever answers holds the API token,
    /// without sending it ([`proof`]); a client checks it before it sends the token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proof: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthQuery {
    pub challenge: Option<String>,
}

/// What a host holding `token` answers to `challenge`: a keyed hash, so the
/// answer proves the token without revealing it.
pub fn proof(token: &str, challenge: &str) -> String {
    let key = blake3::hash(format!("monitor api-token proof\0{token}").as_bytes());
    blake3::keyed_hash(key.as_bytes(), challenge.as_bytes()).to_hex().to_string()
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnableRequest {
    #[serde(default)]
    pub grants: Vec<Grant>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevokeRequest {
    pub grant: String,
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct StatusQuery {
    pub format: Option<String>,
}

pub fn router(state: AppState) -> Router {
    let guarded = Router::new()
        .route("/v1/plugins", get(list))
        .route("/v1/plugins/{name}", get(info))
        .route("/v1/plugins/{name}/enable", post(enable))
        .route("/v1/plugins/{name}/disable", post(disable))
        .route("/v1/plugins/{name}/revoke", post(revoke))
        .route("/v1/plugins/{name}/kv", get(plugin_kv))
        .route("/v1/metrics", get(metrics))
        .route("/v1/metrics/series", get(metric_series))
        .route("/v1/metrics/history", get(metric_history))
        .route("/metrics", get(prometheus))
        .route("/v1/status", get(status_line))
        .route("/v1/resources", get(resources))
        .route("/v1/processes", get(processes))
        .route("/v1/progress", post(report_batch))
        .route("/v1/progress/{*path}", post(report))
        .route("/v1/runs", get(runs))
        .route("/v1/runs/{run}", get(run_tree))
        .route("/v1/runs/{run}/events", get(run_events))
        .route("/v1/db/space", get(db_space))
        .route("/v1/db/compact", post(db_compact))
        .route("/v1/fleet", get(fleet))
        .merge(alerts::routes())
        .merge(jobs::routes())
        .merge(stream::routes())
        .merge(dashboard::routes())
        .merge(access::routes())
        .layer(middleware::from_fn_with_state(state.clone(), access::record))
        .layer(middleware::from_fn_with_state(state.clone(), authenticate));
    Router::new()
        .route("/v1/health", get(health))
        .merge(dashboard::pages())
        .merge(guarded)
        .fallback(not_found)
        .method_not_allowed_fallback(not_allowed)
        .layer(middleware::map_response(json_errors))
        .layer(middleware::from_fn_with_state(state.clone(), dashboard::guard))
        .with_state(state)
}

async fn not_found(request: Request) -> Response {
    let path = crate::text::line(request.uri().path(), 200);
    error(StatusCode::NOT_FOUND, format!("no route {path}; the routes are listed under \"The API\" in the README"))
}

async fn not_allowed(request: Request) -> Response {
    let (method, path) = (request.method().clone(), crate::text::line(request.uri().path(), 200));
    error(StatusCode::METHOD_NOT_ALLOWED, format!("{method} is not allowed on {path}"))
}

/// Every error answer in the documented shape, `{"error": "..."}`: axum's own
/// rejections (a bad query string or path) come as plain text otherwise.
async fn json_errors(response: Response) -> Response {
    let status = response.status();
    let json =
        response.headers().get(header::CONTENT_TYPE).is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !(status.is_client_error() || status.is_server_error()) || json {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, 16 << 10).await.unwrap_or_default();
    let message = match String::from_utf8_lossy(&text).trim() {
        "" => status.canonical_reason().unwrap_or("error").to_lowercase(),
        text => crate::text::line(text, 1024),
    };
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(header::CONTENT_TYPE, header::HeaderValue::from_static("application/json"));
    let body = serde_json::to_vec(&ApiError { error: message }).expect("plain data");
    Response::from_parts(parts, axum::body::Body::from(body))
}

async fn authenticate(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let authorization = request.headers().get(header::AUTHORIZATION).map(|v| v.to_str().unwrap_or_default());
    let presented = authorization.and_then(bearer);
    let identity = match presented {
        Some(t) if constant_time_eq(t.as_bytes(), state.token.as_bytes()) => {
            Some(Ok(access::Identity { name: crate::access::LOCAL_ADMIN.into(), scope: Scope::Admin }))
        }
        Some(t) => state.tokens.identify(t, crate::sampler::now_ms()),
        None => None,
    };
    match identity {
        Some(Ok(identity)) => {
            let needed = crate::access::required(request.method().as_str(), request.uri().path());
            if identity.scope < needed {
                let (method, path) = (request.method(), crate::text::line(request.uri().path(), 200));
                let message = format!(
                    "token '{}' has scope {}; {method} {path} needs {needed} or above: use a token made with --scope {needed}",
                    identity.name, identity.scope
                );
                // On record, but not without end: a token's refusals past ten a
                // minute from one address are not (a read token cannot fill the disk).
                let counted =
                    peer_ip(&request).is_none_or(|ip| state.refusals.record(ip, Instant::now()) != Failed::Limited);
                if counted && crate::access::audited(request.method().as_str(), request.uri().path()) {
                    access::keep(&state, access::refused(&request, &identity, &message)).await;
                }
                return error(StatusCode::FORBIDDEN, message);
            }
            let mut request = request;
            request.extensions_mut().insert(identity);
            return next.run(request).await;
        }
        // A known token refused is no guess: said as it is, and not counted.
        Some(Err(refused)) => return error(StatusCode::UNAUTHORIZED, refused.to_string()),
        None => {}
    }
    let peer = request.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
    let path = request.uri().path();
    let which = match (authorization, presented) {
        (None, _) => "missing token".to_string(),
        (Some(value), None) => malformed(value),
        (Some(_), Some(_)) => "wrong token (not api-token's, nor one 'monitor tokens create' made)".to_string(),
    };
    match peer.map(|ip| (ip, state.failures.record(ip, Instant::now()))) {
        Some((ip, Failed::Limited)) => {
            let message = format!(
                "too many failed authentications from {ip}; wait a minute, then send the token from api-token in the data directory"
            );
            return error(StatusCode::TOO_MANY_REQUESTS, message);
        }
        Some((ip, Failed::LimitReached)) => tracing::warn!(
            %ip, %path,
            "API request refused: {which}; {AUTH_FAILURES} failures from {ip} within a minute, further ones are answered 429 and not logged"
        ),
        _ => tracing::warn!(peer = ?peer, %path, "API request refused: {which}"),
    }
    let message =
        format!("{which}; send 'Authorization: Bearer TOKEN' with the token from api-token in the data directory");
    error(StatusCode::UNAUTHORIZED, message)
}

/// The token of an `Authorization: Bearer TOKEN` header (the scheme in any case, as RFC 9110 has it).
fn bearer(value: &str) -> Option<&str> {
    let (scheme, token) = value.split_once(' ')?;
    Some(token.trim_start()).filter(|t| scheme.eq_ignore_ascii_case("bearer") && !t.is_empty())
}

/// What is wrong with an `Authorization` header that is not `Bearer TOKEN`. It
/// names a scheme only from a list of known ones: anything else may be (part of)
/// a secret, which a refusal never repeats.
fn malformed(value: &str) -> String {
    const SCHEMES: [&str; 6] = ["Basic", "Digest", "Negotiate", "NTLM", "Token", "ApiKey"];
    let scheme = value.split_once(' ').map(|(scheme, _)| scheme);
    if scheme.is_some_and(|s| s.eq_ignore_ascii_case("bearer")) {
        return "malformed Authorization header (no token after 'Bearer')".into();
    }
    match scheme.and_then(|s| SCHEMES.iter().find(|known| known.eq_ignore_ascii_case(s))) {
        Some(known) => format!("malformed Authorization header (scheme '{known}', not 'Bearer')"),
        None => "malformed Authorization header (not 'Bearer TOKEN')".into(),
    }
}

/// Failed authentications per client address allowed within [`AUTH_WINDOW`].
pub const AUTH_FAILURES: u32 = 10;
const AUTH_WINDOW: Duration = Duration::from_secs(60);

/// What a failed authentication counts as.
#[derive(Debug, PartialEq, Eq)]
enum Failed {
    Counted,
    /// The last one allowed in the window: logged as such.
    LimitReached,
    /// Past the limit: answered 429, not logged.
    Limited,
}

/// Failed authentications by client address, so that a client guessing tokens
/// (or misconfigured) is answered 429 and cannot flood the log. A request with
/// the right token always passes.
#[derive(Default)]
pub struct AuthFailures(Mutex<HashMap<IpAddr, (u32, Instant)>>);

impl AuthFailures {
    fn record(&self, ip: IpAddr, now: Instant) -> Failed {
        let mut failures = self.0.lock().expect("auth failures lock");
        if failures.len() > 4096 {
            failures.retain(|_, (_, since)| now.duration_since(*since) < AUTH_WINDOW);
        }
        let entry = failures.entry(ip).or_insert((0, now));
        if now.duration_since(entry.1) >= AUTH_WINDOW {
            *entry = (0, now);
        }
        entry.0 += 1;
        match entry.0 {
            n if n < AUTH_FAILURES => Failed::Counted,
            n if n == AUTH_FAILURES => Failed::LimitReached,
            _ => Failed::Limited,
        }
    }
}

fn peer_ip(request: &Request) -> Option<IpAddr> {
    request.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip())
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn error(status: StatusCode, message: String) -> Response {
    (status, Json(ApiError { error: message })).into_response()
}

/// An error answered with the HTTP status of its kind.
fn failure(e: &(impl Classified + ?Sized)) -> Response {
    error(status(e.kind()), e.to_string())
}

fn status(kind: ErrorKind) -> StatusCode {
    StatusCode::from_u16(kind.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// A JSON body whose rejection (not JSON, wrong types, unknown fields, too
/// large) is an [`ApiError`] like every other error.
pub struct Input<T>(pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> axum::extract::FromRequest<S> for Input<T> {
    type Rejection = Response;

    async fn from_request(request: Request, state: &S) -> Result<Self, Response> {
        match Json::<T>::from_request(request, state).await {
            Ok(Json(value)) => Ok(Input(value)),
            Err(rejection) => Err(error(rejection.status(), rejection.body_text())),
        }
    }
}

impl IntoResponse for ManagerError {
    fn into_response(self) -> Response {
        failure(&self)
    }
}

/// Runs a blocking manager call off the async workers (it may compile plugins).
async fn blocking<T: Send + 'static>(
    state: &AppState,
    f: impl FnOnce(&Manager) -> Result<T, ManagerError> + Send + 'static,
) -> Result<Json<T>, Response> {
    let manager = state.manager.clone();
    match tokio::task::spawn_blocking(move || f(&manager)).await {
        Ok(Ok(value)) => Ok(Json(value)),
        Ok(Err(e)) => Err(e.into_response()),
        Err(e) => Err(error(StatusCode::INTERNAL_SERVER_ERROR, format!("internal error: {e}"))),
    }
}

async fn health(State(state): State<AppState>, Query(query): Query<HealthQuery>) -> Json<Health> {
    // A bounded challenge: the answer costs one hash of at most this much.
    let proof = query.challenge.filter(|c| c.len() <= 128).map(|c| proof(&state.token, &c));
    Json(Health { ok: true, pid: std::process::id(), version: env!("CARGO_PKG_VERSION").into(), proof })
}

async fn list(State(state): State<AppState>) -> Result<Json<Listing>, Response> {
    blocking(&state, |m| m.listing()).await
}

async fn info(State(state): State<AppState>, Path(name): Path<String>) -> Result<Json<PluginRecord>, Response> {
    blocking(&state, move |m| m.view(&name)).await
}

async fn enable(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Input(body): Input<EnableRequest>,
) -> Result<Json<PluginRecord>, Response> {
    blocking(&state, move |m| m.enable(&name, &body.grants)).await
}

async fn disable(State(state): State<AppState>, Path(name): Path<String>) -> Result<Json<PluginRecord>, Response> {
    blocking(&state, move |m| m.disable(&name)).await
}

async fn revoke(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Input(body): Input<RevokeRequest>,
) -> Result<Json<PluginRecord>, Response> {
    blocking(&state, move |m| m.revoke(&name, &body.grant)).await
}

async fn plugin_kv(State(state): State<AppState>, Path(name): Path<String>) -> Result<Json<Vec<KvEntry>>, Response> {
    blocking(&state, move |m| {
        m.view(&name)?;
        let entries = m.store().kv_entries(&name)?;
        Ok(entries.into_iter().map(|(k, v)| KvEntry::new(k, v)).collect())
    })
    .await
}

async fn metrics(State(state): State<AppState>) -> Json<Vec<Sample>> {
    Json(state.board.lock().expect("board lock").samples())
}

/// The board in the Prometheus (OpenMetrics) text format, for scrapers.
/// OpenMetrics, unless the client asks for the Prometheus text format alone
/// (Prometheus asks for OpenMetrics first).
async fn prometheus(State(state): State<AppState>, headers: axum::http::HeaderMap) -> Response {
    let samples = state.board.lock().expect("board lock").samples();
    let text = crate::exposition::scrape(&samples);
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or_default();
    if accept.contains("text/plain") && !accept.contains("application/openmetrics-text") {
        let classic = crate::exposition::classic(&text);
        return ([(header::CONTENT_TYPE, crate::exposition::CLASSIC_CONTENT_TYPE)], classic).into_response();
    }
    ([(header::CONTENT_TYPE, crate::exposition::CONTENT_TYPE)], text).into_response()
}

async fn resources(State(state): State<AppState>) -> Json<Snapshot> {
    Json(Snapshot::clone(&state.snapshot.read().expect("snapshot lock")))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProcessQuery {
    /// A name or command substring, or `user:NAME`.
    pub filter: Option<String>,
    pub sort: Option<SortKey>,
    pub limit: Option<usize>,
}

/// The process table as of the last process tick, filtered and sorted.
async fn processes(State(state): State<AppState>, Query(query): Query<ProcessQuery>) -> Json<Vec<ProcessSample>> {
    let table = state.processes.read().expect("processes lock").clone();
    let mut out: Vec<ProcessSample> = match &query.filter {
        Some(text) => ProcessFilter::parse(text).apply(table.to_vec()),
        None => table.to_vec(),
    };
    sort(&mut out, query.sort.unwrap_or(SortKey::Cpu));
    out.truncate(query.limit.unwrap_or(usize::MAX));
    Json(out)
}

async fn status_line(State(state): State<AppState>, Query(query): Query<StatusQuery>) -> Response {
    let snapshot = state.snapshot.read().expect("snapshot lock").clone();
    let Some(plugin) = query.format else {
        let running = state
            .manager
            .listing()
            .map(|l| l.plugins.iter().filter(|p| p.state == crate::plugin::PluginState::Running).count());
        return status::plain(&snapshot, running.unwrap_or(0), &state.alerting.alerts(crate::sampler::now_ms()))
            .into_response();
    };
    let runs = match on_store(&state, |store| Ok(store.progress_runs()?)).await {
        Ok(Json(runs)) => runs,
        Err(response) => return response,
    };
    match state.manager.format_status(&plugin, &snapshot, &runs, &state.alerting.alerts(crate::sampler::now_ms())).await
    {
        Ok(text) => text.into_response(),
        Err(e) => e.into_response(),
    }
}

/// Every host of `api.fleet_hosts`: its runs and alerts, or why it did not answer.
async fn fleet(State(state): State<AppState>) -> Result<Response, Response> {
    let Some(file) = state.fleet.file.clone() else {
        let why = "no fleet here: set api.fleet_hosts in host.toml to a hosts file (NAME URL TOKEN-FILE a line)";
        return Err(error(StatusCode::NOT_FOUND, why.into()));
    };
    let looked = tokio::spawn(Fleet::look(state.fleet.last.clone(), file)).await;
    let look = looked.unwrap_or_else(|_| Err("looking at the fleet failed".into()));
    let json = look.map_err(|e| error(StatusCode::SERVICE_UNAVAILABLE, e))?;
    Ok(([(header::CONTENT_TYPE, "application/json")], json).into_response())
}

async fn db_space(State(state): State<AppState>) -> Result<Json<Space>, Response> {
    on_store(&state, |store| Ok(store.space()?)).await
}

/// Every other use of the database waits while it runs, the tick's history
/// commit included (the tick itself goes on; its samples wait in memory).
async fn db_compact(State(state): State<AppState>) -> Result<Json<Compacted>, Response> {
    on_store(&state, |store| Ok(store.compact()?)).await
}

async fn metric_series(State(state): State<AppState>) -> Result<Json<SeriesListing>, Response> {
    let data = state.data.clone();
    let pending = state.unwritten.now();
    on_store(&state, move |store| {
        let mut listing = series_listing(store, &data)?;
        pending.add_series(&mut listing.series);
        Ok(listing)
    })
    .await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistoryQuery {
    pub name: String,
    #[serde(default)]
    pub since_ms: u64,
    /// `k=v,k2=v2`.
    #[serde(default)]
    pub labels: String,
}

async fn metric_history(
    State(state): State<AppState>,
    Query(query): Query<HistoryQuery>,
) -> Result<Json<Vec<SeriesPoints>>, Response> {
    let labels = match query.labels.as_str() {
        "" => BTreeMap::new(),
        text => parse_labels(text).map_err(|e| error(StatusCode::BAD_REQUEST, e))?,
    };
    let pending = state.unwritten.now();
    on_store(&state, move |store| {
        let mut found = store.metrics_query(&query.name, &labels, query.since_ms)?;
        pending.complete(&mut found, &query.name, &labels, query.since_ms);
        Ok(found)
    })
    .await
}

/// Runs blocking database work off the async workers.
async fn on_store<T: Send + 'static>(
    state: &AppState,
    f: impl FnOnce(&Store) -> CommandResult<T> + Send + 'static,
) -> Result<Json<T>, Response> {
    let store = state.store.clone();
    match tokio::task::spawn_blocking(move || f(&store)).await {
        Ok(Ok(value)) => Ok(Json(value)),
        Ok(Err(e)) => Err(error(status(e.kind()), e.to_string())),
        Err(e) => Err(error(StatusCode::INTERNAL_SERVER_ERROR, format!("internal error: {e}"))),
    }
}

async fn report(
    State(state): State<AppState>,
    Path(path): Path<String>,
    Input(update): Input<Update>,
) -> Result<Json<Node>, Response> {
    let path = NodePath::parse(&path).map_err(|e| error(StatusCode::BAD_REQUEST, e.to_string()))?;
    let mut replies = state.writer.apply(vec![(path.clone(), update)], true).await.map_err(refused)?;
    match replies.pop().expect("one reply per update") {
        Ok((_, Some(node))) => Ok(Json(node)),
        Ok((_, None)) => Err(error(StatusCode::INTERNAL_SERVER_ERROR, format!("{path}: node unreadable after update"))),
        Err(e) => Err(error(StatusCode::BAD_REQUEST, format!("{path}: {e}"))),
    }
}

/// A batch the writer did not store: 503 while the database cannot take writes.
fn refused(e: WriteError) -> Response {
    failure(&e)
}

/// One update of a batch: the node's path and the update's fields.
#[derive(Debug, Serialize, Deserialize)]
pub struct BatchItem {
    pub path: String,
    #[serde(flatten)]
    pub update: Update,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchRequest {
    pub updates: Vec<BatchItem>,
}

/// Per update, in order: what it did, or why it was refused.
#[derive(Debug, Serialize, Deserialize)]
pub struct BatchResponse {
    pub results: Vec<BatchResult>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum BatchResult {
    Done { applied: UpdateEffect },
    Refused { error: String },
}

/// Applies many updates with one request; each is accepted or refused on its
/// own, and the answer comes once the accepted ones are committed.
async fn report_batch(
    State(state): State<AppState>,
    Input(batch): Input<BatchRequest>,
) -> Result<Json<BatchResponse>, Response> {
    if batch.updates.len() > MAX_BATCH {
        let n = batch.updates.len();
        return Err(error(StatusCode::BAD_REQUEST, format!("{n} updates in one request; send at most {MAX_BATCH}")));
    }
    // Each planned phase is a node to write: they count against the same bound.
    let phases: usize = batch
        .updates
        .iter()
        .map(|item| match &item.update.op {
            crate::progress::Op::Plan { phases, .. } => phases.len(),
            _ => 0,
        })
        .sum();
    if phases > MAX_BATCH {
        return Err(error(
            StatusCode::BAD_REQUEST,
            format!("{phases} phases planned in one request; plan at most {MAX_BATCH}, or send the plans apart"),
        ));
    }
    let mut results: Vec<Option<BatchResult>> = Vec::with_capacity(batch.updates.len());
    let mut valid = Vec::with_capacity(batch.updates.len());
    for item in batch.updates {
        match NodePath::parse(&item.path) {
            Ok(path) => {
                valid.push((path, item.update));
                results.push(None);
            }
            Err(e) => results.push(Some(BatchResult::Refused { error: e.to_string() })),
        }
    }
    let paths: Vec<NodePath> = valid.iter().map(|(p, _)| p.clone()).collect();
    let replies = state.writer.apply(valid, false).await.map_err(refused)?;
    let mut replies = replies.into_iter().zip(paths);
    let results = results
        .into_iter()
        .map(|slot| {
            slot.unwrap_or_else(|| match replies.next().expect("one reply per valid update") {
                (Ok((applied, _)), _) => BatchResult::Done { applied: applied.into() },
                (Err(e), path) => BatchResult::Refused { error: format!("{path}: {e}") },
            })
        })
        .collect();
    Ok(Json(BatchResponse { results }))
}

async fn runs(State(state): State<AppState>) -> Result<Json<Vec<Node>>, Response> {
    on_store(&state, crate::query::runs).await
}

/// A run's nodes as JSON, or as text rendered by `?format=PLUGIN`.
async fn run_tree(
    State(state): State<AppState>,
    Path(run): Path<String>,
    Query(query): Query<StatusQuery>,
) -> Result<Response, Response> {
    let Json(nodes) = on_store(&state, move |store| tree(store, &run)).await?;
    let Some(plugin) = query.format else {
        return Ok(Json(nodes).into_response());
    };
    let text = state.manager.format_progress(&plugin, &nodes).await;
    text.map(IntoResponse::into_response).map_err(IntoResponse::into_response)
}

#[derive(Debug, Default, Deserialize)]
pub struct EventsQuery {
    #[serde(default)]
    pub since: u64,
}

async fn run_events(
    State(state): State<AppState>,
    Path(run): Path<String>,
    Query(query): Query<EventsQuery>,
) -> Result<Json<Vec<ProgressEvent>>, Response> {
    on_store(&state, move |store| history(store, &run, query.since)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bearer_token_is_read_whatever_the_schemes_case() {
        assert_eq!(bearer("Bearer abc"), Some("abc"));
        assert_eq!(bearer("bearer abc"), Some("abc"));
        assert_eq!(bearer("BEARER  abc"), Some("abc"));
        assert_eq!(bearer("Basic abc"), None);
        assert_eq!(bearer("Bearer"), None);
        assert_eq!(bearer("Bearer "), None);
        assert_eq!(bearer(""), None);
    }

    #[test]
    fn a_malformed_header_is_named_without_repeating_it() {
        assert!(malformed("basic dXNlcg==").contains("scheme 'Basic', not 'Bearer'"));
        assert!(malformed("Bearer ").contains("no token after 'Bearer'"));
        for secret in ["0123456789abcdef0123456789abcdef", "s3cr3t part2", "Bearer0123456789"] {
            let said = malformed(secret);
            assert!(!said.contains("0123") && !said.contains("s3cr3t"), "{said}");
            assert!(said.contains("not 'Bearer TOKEN'"), "{said}");
        }
    }

    #[test]
    fn failed_authentications_are_limited_per_address_and_window() {
        let failures = AuthFailures::default();
        let (a, b) = (IpAddr::from([10, 0, 0, 1]), IpAddr::from([10, 0, 0, 2]));
        let t0 = Instant::now();
        for _ in 1..AUTH_FAILURES {
            assert_eq!(failures.record(a, t0), Failed::Counted);
        }
        assert_eq!(failures.record(a, t0), Failed::LimitReached);
        assert_eq!(failures.record(a, t0 + Duration::from_secs(59)), Failed::Limited);
        assert_eq!(failures.record(b, t0), Failed::Counted, "another address has its own count");
        assert_eq!(failures.record(a, t0 + AUTH_WINDOW), Failed::Counted, "a new window starts over");
    }
}
