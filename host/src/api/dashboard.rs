//! The web dashboard: its files, compiled into the binary and served from
//! memory (gzipped once, on first use), the layouts people save in the host,
//! and the guards a browser needs: the `Host` header against DNS rebinding and
//! `Origin` against other sites' pages. The page itself holds no data; it reads
//! everything through the same authenticated API as the CLI.

use std::collections::BTreeSet;
use std::io::Write;
use std::sync::OnceLock;

use axum::Router;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use serde::{Deserialize, Serialize};

use super::{AppState, Input, error, on_store};
use crate::error::{CommandError, ErrorKind};
use crate::store::layouts::Layout;

/// Where the page is; `GET /` leads there.
pub const PATH: &str = "/dashboard/";

/// No script, style or connection but the host's own; no framing, no forms
/// posted elsewhere. The page sets styles through the CSSOM only.
const POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; \
                      frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

struct Asset {
    name: &'static str,
    mime: &'static str,
    body: &'static [u8],
}

const ASSETS: [Asset; 5] = [
    Asset { name: "", mime: "text/html; charset=utf-8", body: include_bytes!("../../dashboard/index.html") },
    Asset { name: "app.js", mime: "text/javascript; charset=utf-8", body: include_bytes!("../../dashboard/app.js") },
    Asset { name: "app.css", mime: "text/css; charset=utf-8", body: include_bytes!("../../dashboard/app.css") },
    // uPlot 1.6.32 (MIT, dashboard/uplot.LICENSE): time-series charts in 50 KB.
    Asset {
        name: "uplot.min.js",
        mime: "text/javascript; charset=utf-8",
        body: include_bytes!("../../dashboard/uplot.min.js"),
    },
    Asset {
        name: "uplot.min.css",
        mime: "text/css; charset=utf-8",
        body: include_bytes!("../../dashboard/uplot.min.css"),
    },
];

/// An asset as served: its ETag and its gzipped bytes.
struct Packed {
    etag: HeaderValue,
    gzip: Vec<u8>,
}

fn packed() -> &'static [Packed] {
    static PACKED: OnceLock<Vec<Packed>> = OnceLock::new();
    PACKED.get_or_init(|| {
        ASSETS
            .iter()
            .map(|a| {
                let hash = blake3::hash(a.body).to_hex();
                let etag = HeaderValue::from_str(&format!("\"{}\"", &hash[..16])).expect("hex is a header value");
                let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
                gz.write_all(a.body).expect("writing to memory");
                Packed { etag, gzip: gz.finish().expect("writing to memory") }
            })
            .collect()
    })
}

/// The page's routes: open to anyone who reaches the host, as they hold no data.
pub fn pages() -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { Redirect::to(PATH) }))
        .route("/dashboard", get(|| async { Redirect::to(PATH) }))
        .route("/dashboard/", get(|headers: HeaderMap| async move { asset("", &headers) }))
        .route(
            "/dashboard/{file}",
            get(|Path(file): Path<String>, headers: HeaderMap| async move { asset(&file, &headers) }),
        )
}

/// The layouts' routes, behind the token like the rest of the API.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/dashboard/layouts", get(layouts))
        .route("/v1/dashboard/layouts/{name}", axum::routing::put(save_layout).delete(remove_layout))
}

fn asset(name: &str, headers: &HeaderMap) -> Response {
    let Some(i) = ASSETS.iter().position(|a| a.name == name) else {
        return error(StatusCode::NOT_FOUND, format!("the dashboard has no file '{}'", crate::text::line(name, 100)));
    };
    let (asset, packed) = (&ASSETS[i], &packed()[i]);
    let mut response = if headers.get(header::IF_NONE_MATCH) == Some(&packed.etag) {
        StatusCode::NOT_MODIFIED.into_response()
    } else if accepts_gzip(headers) {
        ([(header::CONTENT_ENCODING, "gzip")], packed.gzip.clone()).into_response()
    } else {
        asset.body.into_response()
    };
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(asset.mime));
    h.insert(header::ETAG, packed.etag.clone());
    // Kept, but asked about each time: a new binary's page is seen at once.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(POLICY));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}

fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|e| e.trim().split(';').next() == Some("gzip")))
}

/// The host names a request may carry in `Host`, besides IP addresses (a DNS
/// rebinding attack needs a name): `localhost`, this machine's name, and
/// `api.hosts`.
#[derive(Debug, Clone, Default)]
pub struct Hosts(BTreeSet<String>);

impl Hosts {
    pub fn new(configured: &[String]) -> Hosts {
        let mut names: BTreeSet<String> = configured.iter().map(|h| h.to_ascii_lowercase()).collect();
        names.insert("localhost".into());
        names.insert(machine_name().to_ascii_lowercase());
        Hosts(names)
    }

    /// Whether `host` (a `Host` header: a name or address, maybe a port) is ours.
    pub fn allows(&self, host: &str) -> bool {
        let name = match host.strip_prefix('[') {
            Some(rest) => return rest.split(']').next().is_some_and(|ip| ip.parse::<std::net::Ipv6Addr>().is_ok()),
            None => {
                host.rsplit_once(':').map_or(host, |(name, port)| if port.parse::<u16>().is_ok() { name } else { host })
            }
        };
        name.parse::<std::net::Ipv4Addr>().is_ok() || self.0.contains(&name.to_ascii_lowercase())
    }
}

/// This machine's name, as `uname -n` says it.
pub fn machine_name() -> String {
    rustix::system::uname().nodename().to_string_lossy().into_owned()
}

/// Refuses a request whose `Host` is not this host's (DNS rebinding), and a
/// change or a WebSocket from a page of another origin.
pub async fn guard(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let headers = request.headers();
    let host = headers.get(header::HOST).map(text);
    if let Some(host) = host
        && !state.hosts.allows(host)
    {
        let host = crate::text::line(host, 100);
        return error(
            StatusCode::MISDIRECTED_REQUEST,
            format!(
                "this host does not answer to the name '{host}'; add it to api.hosts in the host's configuration if it is one of its names"
            ),
        );
    }
    let changes = !matches!(*request.method(), Method::GET | Method::HEAD);
    let upgrade = headers.contains_key(header::UPGRADE);
    if let Some(origin) = headers.get(header::ORIGIN).map(text)
        && (changes || upgrade)
        && !same_origin(origin, host)
    {
        let origin = crate::text::line(origin, 100);
        return error(
            StatusCode::FORBIDDEN,
            format!("requests from pages of {origin} are refused; use the dashboard this host serves"),
        );
    }
    next.run(request).await
}

/// A header's text; one that is not text is no name and no origin of ours.
fn text(value: &HeaderValue) -> &str {
    value.to_str().unwrap_or("(not text)")
}

fn same_origin(origin: &str, host: Option<&str>) -> bool {
    let Some(host) = host else { return false };
    ["http://", "https://"]
        .iter()
        .any(|scheme| origin.strip_prefix(scheme).is_some_and(|o| o.eq_ignore_ascii_case(host)))
}

/// What `GET /v1/dashboard/layouts` answers for each.
#[derive(Debug, Serialize, Deserialize)]
pub struct SavedLayout {
    pub name: String,
    pub layout: serde_json::Value,
    pub updated_ms: u64,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct RemovedLayout {
    pub removed: bool,
}

async fn layouts(State(state): State<AppState>) -> Result<axum::Json<Vec<SavedLayout>>, Response> {
    on_store(&state, |store| {
        let saved = store.layouts()?;
        Ok(saved
            .into_iter()
            .map(|l: Layout| SavedLayout {
                name: l.name,
                layout: serde_json::from_str(&l.json).unwrap_or(serde_json::Value::Null),
                updated_ms: l.updated_ms,
            })
            .collect())
    })
    .await
}

async fn save_layout(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Input(layout): Input<serde_json::Value>,
) -> Result<axum::Json<SavedLayout>, Response> {
    let json = crate::store::layouts::check(&name, &layout).map_err(|e| error(StatusCode::BAD_REQUEST, e))?;
    on_store(&state, move |store| {
        let updated_ms = crate::sampler::now_ms();
        if !store.layout_save(&name, &json, updated_ms)? {
            return Err(CommandError::new(
                ErrorKind::Conflict,
                format!(
                    "the host keeps at most {} layouts; delete one first (DELETE /v1/dashboard/layouts/NAME)",
                    crate::store::layouts::MAX_LAYOUTS
                ),
            ));
        }
        Ok(SavedLayout { name, layout, updated_ms })
    })
    .await
}

async fn remove_layout(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<axum::Json<RemovedLayout>, Response> {
    on_store(&state, move |store| {
        if !store.layout_remove(&name)? {
            return Err(CommandError::new(
                ErrorKind::NotFound,
                format!("no layout named '{}'", crate::text::line(&name, 100)),
            ));
        }
        Ok(RemovedLayout { removed: true })
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_this_machine_s_names_and_addresses_only() {
        let hosts = Hosts::new(&["gpu-box-1.lan".into()]);
        for ok in ["127.0.0.1:8750", "localhost:8750", "LOCALHOST", "[::1]:8750", "10.0.0.7", "gpu-box-1.lan:80"] {
            assert!(hosts.allows(ok), "{ok}");
        }
        for refused in ["evil.example:8750", "evil.example", "127.0.0.1.evil.example", "[evil]:80", "localhost.evil:1"]
        {
            assert!(!hosts.allows(refused), "{refused}");
        }
    }

    #[test]
    fn same_origin_is_the_same_host_and_port() {
        assert!(same_origin("http://127.0.0.1:8750", Some("127.0.0.1:8750")));
        assert!(!same_origin("http://127.0.0.1:9999", Some("127.0.0.1:8750")));
        assert!(!same_origin("http://evil.example", Some("127.0.0.1:8750")));
        assert!(!same_origin("null", Some("127.0.0.1:8750")));
    }

    #[test]
    fn every_asset_is_packed_and_gzip_gives_it_back() {
        for (asset, packed) in ASSETS.iter().zip(packed()) {
            let mut out = Vec::new();
            std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&packed.gzip[..]), &mut out).unwrap();
            assert_eq!(out, asset.body, "{}", asset.name);
        }
        let total: usize = packed().iter().map(|p| p.gzip.len()).sum();
        assert!(total < 150 * 1024, "a first load moves {total} bytes");
    }
}
