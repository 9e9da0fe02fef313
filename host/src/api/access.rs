//! Tokens, scopes and the audit log on the API ([`crate::access`]).
//!
//! | route | body | answer | scope |
//! | --- | --- | --- | --- |
//! | `GET /v1/tokens` | | every token, revoked ones included (never a secret) | admin |
//! | `POST /v1/tokens` | `{"name", "scope", "expires": "30d"}` | the token and its secret, shown this once | admin |
//! | `POST /v1/tokens/{name}/revoke` | | the token | admin |
//! | `GET /v1/audit?since_ms=` | | the changes made, oldest first | read |

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Mutex, RwLock};

use axum::extract::{ConnectInfo, Path, Query, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use super::{ApiError, AppState, Input, error};
use crate::access::{self, AuditEntry, Refused, Scope, Token};
use crate::sampler::now_ms;
use crate::store::Store;
use crate::store::access::NotCreated;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/tokens", get(list).post(create))
        .route("/v1/tokens/{name}/revoke", post(revoke))
        .route("/v1/audit", get(audit))
}

/// Who sent a request, put on it by authentication.
#[derive(Debug, Clone)]
pub struct Identity {
    pub name: String,
    pub scope: Scope,
}

/// The tokens by their secret's hash, read from the store at start and again
/// after each change: authenticating reads no database.
#[derive(Default)]
pub struct Tokens {
    by_hash: RwLock<HashMap<String, Token>>,
    /// One change at a time, store and map together: a revoke that committed
    /// is never undone in the map by a create that read before it.
    changing: Mutex<()>,
}

impl Tokens {
    pub fn load(store: &Store) -> Result<Tokens, crate::store::StoreError> {
        let tokens = Tokens::default();
        *tokens.by_hash.write().expect("tokens lock") = by_hash(store)?;
        Ok(tokens)
    }

    /// The identity `secret` gives at `now_ms`; `None` when no token has it.
    pub fn identify(&self, secret: &str, now_ms: u64) -> Option<Result<Identity, Refused>> {
        let tokens = self.by_hash.read().expect("tokens lock");
        let token = tokens.get(&access::hash(secret))?;
        Some(token.check(now_ms).map(|scope| Identity { name: token.name.clone(), scope }))
    }

    /// Makes `change` to the stored tokens, then takes them as stored.
    fn change<T>(&self, store: &Store, change: impl FnOnce(&Store) -> T) -> T {
        let _turn = self.changing.lock().expect("tokens change lock");
        let out = change(store);
        match by_hash(store) {
            Ok(tokens) => *self.by_hash.write().expect("tokens lock") = tokens,
            Err(e) => tracing::warn!("cannot read the API's tokens again: {e}"),
        }
        out
    }
}

fn by_hash(store: &Store) -> Result<HashMap<String, Token>, crate::store::StoreError> {
    Ok(store.tokens()?.into_iter().map(|(token, hash)| (hash, token)).collect())
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateRequest {
    pub name: String,
    pub scope: String,
    /// How long the token lasts, like `30d`; none: until revoked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Created {
    pub token: Token,
    /// Shown this once; only its hash is kept.
    pub secret: String,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    #[serde(default)]
    pub since_ms: u64,
}

/// Checks a request to make a token; the token, or why not.
pub fn new_token(request: &CreateRequest, now_ms: u64) -> Result<Token, String> {
    access::check_name(&request.name)?;
    let scope = Scope::parse(&request.scope)?;
    let expires_ms = match &request.expires {
        None => None,
        Some(text) => match humantime::parse_duration(text) {
            Ok(d) if !d.is_zero() => Some(now_ms.saturating_add(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))),
            _ => {
                let shown = crate::text::line(text, 40);
                return Err(format!("expires '{shown}' is not a duration; write one like 12h, 30d or 1y"));
            }
        },
    };
    Ok(Token { name: request.name.clone(), scope, created_ms: now_ms, expires_ms, revoked_ms: None })
}

/// Makes a token in `store`: the token and its secret, or why not (a refusal
/// of the request, or the store's error).
pub fn create_in(store: &Store, request: &CreateRequest, now: u64) -> Result<Result<Created, String>, String> {
    let token = match new_token(request, now) {
        Ok(token) => token,
        Err(refusal) => return Ok(Err(refusal)),
    };
    let secret = access::new_secret()?;
    match store.token_create(&token, &access::hash(&secret), now).map_err(|e| e.to_string())? {
        Ok(()) => Ok(Ok(Created { token, secret })),
        Err(NotCreated::Exists) => {
            Ok(Err(format!("token '{}' exists; revoke it first (monitor tokens revoke {0})", token.name)))
        }
        Err(NotCreated::Full) => Ok(Err(format!(
            "{} tokens are kept already; revoke ones no longer used and make new ones under their names",
            crate::store::access::MAX_TOKENS
        ))),
    }
}

async fn list(State(state): State<AppState>) -> Result<Json<Vec<Token>>, Response> {
    read(&state, |store| Ok(store.tokens()?.into_iter().map(|(token, _)| token).collect())).await
}

/// A read of the store, off the API's threads; its error answered by its kind.
async fn read<T: Send + 'static>(
    state: &AppState,
    f: impl FnOnce(&Store) -> Result<T, crate::store::StoreError> + Send + 'static,
) -> Result<Json<T>, Response> {
    let store = state.store.clone();
    match tokio::task::spawn_blocking(move || f(&store)).await {
        Ok(Ok(value)) => Ok(Json(value)),
        Ok(Err(e)) => Err(super::failure(&e)),
        Err(e) => Err(error(StatusCode::INTERNAL_SERVER_ERROR, format!("internal error: {e}"))),
    }
}

async fn create(State(state): State<AppState>, Input(body): Input<CreateRequest>) -> Result<Json<Created>, Response> {
    let (store, tokens) = (state.store.clone(), state.tokens.clone());
    match tokio::task::spawn_blocking(move || tokens.change(&store, |store| create_in(store, &body, now_ms()))).await {
        Ok(Ok(Ok(created))) => Ok(Json(created)),
        Ok(Ok(Err(refusal))) => Err(error(StatusCode::BAD_REQUEST, refusal)),
        Ok(Err(e)) => Err(error(StatusCode::SERVICE_UNAVAILABLE, e)),
        Err(e) => Err(error(StatusCode::INTERNAL_SERVER_ERROR, format!("internal error: {e}"))),
    }
}

async fn revoke(State(state): State<AppState>, Path(name): Path<String>) -> Result<Json<Token>, Response> {
    let (store, tokens) = (state.store.clone(), state.tokens.clone());
    let shown = crate::text::line(&name, 80);
    match tokio::task::spawn_blocking(move || tokens.change(&store, |store| store.token_revoke(&name, now_ms()))).await
    {
        Ok(Ok(Some(token))) => Ok(Json(token)),
        Ok(Ok(None)) if shown == access::LOCAL_ADMIN => Err(error(
            StatusCode::BAD_REQUEST,
            "the local admin token cannot be revoked; to replace it, stop the host, delete api-token in the data directory and start it again".into(),
        )),
        Ok(Ok(None)) => Err(error(StatusCode::NOT_FOUND, format!("no token '{shown}'; 'monitor tokens list' lists them"))),
        Ok(Err(e)) => Err(super::failure(&e)),
        Err(e) => Err(error(StatusCode::INTERNAL_SERVER_ERROR, format!("internal error: {e}"))),
    }
}

async fn audit(
    State(state): State<AppState>,
    Query(query): Query<AuditQuery>,
) -> Result<Json<Vec<AuditEntry>>, Response> {
    // Nothing older than the keep time, whether or not a change trimmed it since.
    let since_ms = query.since_ms.max(now_ms().saturating_sub(state.keep_audit_ms));
    read(&state, move |store| store.audit(since_ms)).await
}

/// Largest request body an audited request may carry; they are small JSON.
const AUDITED_BODY: usize = 1 << 20;

/// Records every change ([`access::audited`]) with who asked, from where, what
/// and how it ended, before the answer leaves: an answered change is on record.
/// (A change refused for its token's scope is recorded by authentication.)
pub async fn record(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let (method, path) = (request.method().as_str().to_string(), crate::text::line(request.uri().path(), 200));
    if !access::audited(&method, &path) {
        return next.run(request).await;
    }
    let token = request.extensions().get::<Identity>().map_or_else(|| "?".into(), |i| i.name.clone());
    let address = address(&request);
    let (parts, body) = request.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, AUDITED_BODY).await else {
        return error(StatusCode::PAYLOAD_TOO_LARGE, format!("this request's body is over {AUDITED_BODY} bytes"));
    };
    let detail = crate::text::line(&String::from_utf8_lossy(&bytes), access::DETAIL_CHARS);
    let response = next.run(Request::from_parts(parts, axum::body::Body::from(bytes))).await;
    let status = response.status();
    let (response, outcome) = if status.is_success() {
        (response, "ok".to_string())
    } else {
        let (parts, body) = response.into_parts();
        let bytes = axum::body::to_bytes(body, 64 << 10).await.unwrap_or_default();
        let outcome = serde_json::from_slice::<ApiError>(&bytes)
            .map_or_else(|_| status.to_string(), |e| crate::text::line(&e.error, access::DETAIL_CHARS));
        (Response::from_parts(parts, axum::body::Body::from(bytes)), outcome)
    };
    let entry = AuditEntry { at_ms: now_ms(), token, address, method, path, detail, status: status.as_u16(), outcome };
    keep(&state, entry).await;
    response.into_response()
}

/// Writes `entry` to the audit log, off the API's threads.
pub async fn keep(state: &AppState, entry: AuditEntry) {
    let (store, keep_ms) = (state.store.clone(), state.keep_audit_ms);
    let written = tokio::task::spawn_blocking(move || store.audit_record(&entry, keep_ms)).await;
    if let Some(e) = written.map_or_else(|e| Some(e.to_string()), |w| w.err().map(|e| e.to_string())) {
        tracing::warn!("a request was answered but could not be written to the audit log: {e}");
    }
}

/// The audit entry of a change refused for its token's scope: who tried, what.
pub fn refused(request: &Request, identity: &Identity, message: &str) -> AuditEntry {
    AuditEntry {
        at_ms: now_ms(),
        token: identity.name.clone(),
        address: address(request),
        method: request.method().to_string(),
        path: crate::text::line(request.uri().path(), 200),
        detail: String::new(),
        status: StatusCode::FORBIDDEN.as_u16(),
        outcome: message.to_string(),
    }
}

fn address(request: &Request) -> String {
    request.extensions().get::<ConnectInfo<SocketAddr>>().map_or_else(|| "?".into(), |c| c.0.ip().to_string())
}
