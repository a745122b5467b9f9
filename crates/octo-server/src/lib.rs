//! Octograph's HTTP API: the routes of OpenKAT's Octopoes (same paths, query parameters, JSON
//! shapes and status codes, so OpenKAT's `OctopoesAPIConnector` works against it unchanged),
//! bearer tokens per organisation, Prometheus metrics and an OpenAPI document built from the
//! handlers themselves.
//!
//! The graph is synchronous (redb), so every graph call runs on tokio's blocking pool; the
//! async threads only parse, route and write responses.

#![warn(missing_docs)]

pub mod auth;
mod bus;
pub mod error;
pub mod metrics;
pub mod params;
mod routes;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use octo_bits::BitEngine;
use octo_graph::{Graph, Organisations};

use crate::auth::{Principal, Role, Tokens};
pub use crate::bus::EventBus;
use crate::error::{ApiError, ApiResult};
use crate::metrics::Metrics;

/// How the server runs.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Where it listens.
    pub listen: SocketAddr,
    /// Whether requests need a token. Off is allowed only on a loopback address.
    pub auth: bool,
    /// The largest request body accepted (imports are the large ones).
    pub max_body_bytes: usize,
    /// How many change events each organisation keeps (`None`: all).
    pub retention_events: Option<u64>,
    /// How long change events are kept (`None`: for ever).
    pub retention_age: Option<std::time::Duration>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8001)),
            auth: true,
            max_body_bytes: 256 << 20,
            retention_events: None,
            retention_age: None,
        }
    }
}

impl ServerConfig {
    /// Refuses a configuration that would expose an unauthenticated API to a network.
    pub fn check(&self) -> Result<(), String> {
        if !self.auth && !self.listen.ip().is_loopback() {
            return Err(format!("authentication can be turned off only on a loopback address, not on {}", self.listen));
        }
        Ok(())
    }
}

/// What every handler shares.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

/// The parts of [`AppState`].
pub struct Shared {
    /// The organisations and their graphs.
    pub organisations: Arc<Organisations>,
    /// The bit engine (for origin parameters and bit metrics), when bits run.
    pub engine: Option<Arc<BitEngine>>,
    /// The accepted tokens; `None` when authentication is off.
    pub tokens: Option<Arc<Tokens>>,
    /// The metrics.
    pub metrics: Arc<Metrics>,
    /// How long a change stream stays silent before it sends a heartbeat, in milliseconds.
    heartbeat_ms: std::sync::atomic::AtomicU64,
    /// What wakes change streams when a log grows.
    pub(crate) watchers: routes::stream::Watchers,
    /// Set when the server shuts down: change streams, which never end by themselves, end then.
    pub(crate) shutting_down: tokio::sync::watch::Sender<bool>,
    /// The log pipeline, when this process receives syslog (`/logs/…` answers 404 otherwise).
    logs: std::sync::OnceLock<Arc<octo_logs::Pipeline>>,
    /// Where change streams read events (the store's log unless a bus is set).
    bus: std::sync::OnceLock<EventBus>,
}

impl AppState {
    /// State over organisations, with or without bits and tokens.
    pub fn new(organisations: Arc<Organisations>, engine: Option<Arc<BitEngine>>, tokens: Option<Arc<Tokens>>) -> Self {
        AppState(Arc::new(Shared {
            organisations,
            engine,
            tokens,
            metrics: Arc::new(Metrics::new()),
            heartbeat_ms: std::sync::atomic::AtomicU64::new(5_000),
            watchers: Default::default(),
            shutting_down: tokio::sync::watch::channel(false).0,
            logs: std::sync::OnceLock::new(),
            bus: std::sync::OnceLock::new(),
        }))
    }

    /// Serves change streams from `bus` and starts forwarding every organisation's events to
    /// it. Set once, before serving; without it streams read the store's own log.
    pub fn set_event_bus(&self, bus: EventBus) {
        if self.0.bus.set(bus.clone()).is_ok() {
            bus.start_forwarding(self.0.organisations.clone(), self.0.shutting_down.subscribe());
        }
    }

    /// Where change streams read events.
    pub(crate) fn bus(&self) -> EventBus {
        self.0.bus.get().cloned().unwrap_or_default()
    }

    /// Serves the log pipeline's devices, stored lines and counters under `/logs/`. Set once.
    pub fn set_logs(&self, pipeline: Arc<octo_logs::Pipeline>) {
        let _ = self.0.logs.set(pipeline);
    }

    /// The log pipeline (404 when this process has none).
    pub(crate) fn logs(&self) -> ApiResult<Arc<octo_logs::Pipeline>> {
        self.0.logs.get().cloned().ok_or_else(|| ApiError::not_found("the log pipeline is not running in this process"))
    }

    /// Starts every organisation's stream framer, which prepares each change event once, in the
    /// background as it is written, and keeps it for consumers catching up (`serve` does this
    /// at start; otherwise a framer starts with its organisation's first stream consumer).
    pub fn prepare_streams(&self) -> ApiResult<()> {
        for name in self.0.organisations.list()? {
            let graph = self.graph(&name)?;
            let directory = self.0.organisations.directory(&name).ok();
            self.0.watchers.subscribe(&name, graph, self.bus(), directory, self.0.shutting_down.subscribe())?;
        }
        Ok(())
    }

    /// The last change event of an organisation that its framer has prepared and stored
    /// (`None` before it has, or when it does not run): how far a catch-up reads prepared
    /// events.
    pub fn stream_prepared_until(&self, organisation: &str) -> Option<octo_store::EventId> {
        self.0.watchers.prepared_until(organisation)
    }

    /// Ends every open change stream (their connections would otherwise keep a graceful shutdown
    /// waiting for ever); call it when the shutdown begins, as [`shutdown_signal_for`] does.
    pub fn end_streams(&self) {
        self.0.shutting_down.send_replace(true);
    }

    /// Sets how long a change stream stays silent before a heartbeat (5 s unless set; OpenCTI's
    /// interval). Streams opened afterwards use it.
    pub fn set_heartbeat(&self, heartbeat: std::time::Duration) {
        let ms = u64::try_from(heartbeat.as_millis()).unwrap_or(u64::MAX).max(1);
        self.0.heartbeat_ms.store(ms, std::sync::atomic::Ordering::Relaxed);
    }

    /// The heartbeat interval of change streams.
    pub fn heartbeat(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.0.heartbeat_ms.load(std::sync::atomic::Ordering::Relaxed))
    }

    /// The shared parts.
    pub fn shared(&self) -> &Shared {
        &self.0
    }

    /// An existing organisation's graph (404 otherwise).
    pub(crate) fn graph(&self, client: &str) -> ApiResult<Arc<Graph>> {
        Ok(self.0.organisations.get(client)?)
    }
}

/// Runs `f` on the blocking pool (graph calls block on the store).
pub(crate) async fn blocking<T: Send + 'static>(f: impl FnOnce() -> ApiResult<T> + Send + 'static) -> ApiResult<T> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "request task failed");
            Err(ApiError::internal("the request failed inside the server"))
        }
    }
}

/// A read of an organisation's graph, on the blocking pool.
pub(crate) async fn read<T: Send + 'static>(
    s: &AppState,
    client: &str,
    f: impl FnOnce(&Graph) -> ApiResult<T> + Send + 'static,
) -> ApiResult<T> {
    let g = s.graph(client)?;
    blocking(move || f(&g)).await
}

/// A write to an organisation's graph, on the blocking pool: what it did is counted in the
/// metrics, and the answer is Octopoes' `null`.
pub(crate) async fn write(
    s: &AppState,
    client: &str,
    f: impl FnOnce(&Graph) -> ApiResult<octo_graph::Outcome> + Send + 'static,
) -> ApiResult<(StatusCode, axum::Json<serde_json::Value>)> {
    let g = s.graph(client)?;
    let (state, client) = (s.clone(), client.to_owned());
    blocking(move || {
        let outcome = f(&g)?;
        state.bus().forward_after_write(&client, &g);
        state.shared().metrics.observe_outcome(&client, &outcome);
        Ok(ok_null())
    })
    .await
}

/// The whole application: routes, `/openapi.json`, metrics and authentication.
pub fn app(state: AppState, config: &ServerConfig) -> Router {
    let (router, api) = routes::router().split_for_parts();
    let api_json = api.to_pretty_json().unwrap_or_else(|_| "{}".into());
    router
        .route(
            "/openapi.json",
            axum::routing::get(move || async move { ([(header::CONTENT_TYPE, "application/json")], api_json) }),
        )
        .route("/metrics", axum::routing::get(metrics_text))
        .fallback(|| async { ApiError::not_found("no such route") })
        .layer(axum::middleware::from_fn_with_state(state.clone(), authorize))
        .layer(axum::middleware::from_fn_with_state(state.clone(), record))
        .layer(DefaultBodyLimit::max(config.max_body_bytes))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(state)
}

/// The runtime the server runs on: one async worker per core, and a bounded pool for the graph
/// calls. Few blocking threads keep each one's memory and caches warm (tokio's default of 512
/// spreads a steady load over dozens of threads); writes queue on the store's single writer, so
/// more threads than cores buys little.
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cores)
        .max_blocking_threads((4 * cores).max(8))
        .thread_name("octograph")
        .enable_all()
        .build()
}

/// Serves `app` on `listener` until `shutdown` resolves, then stops accepting and lets every
/// request in flight (writes included) finish.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use axum::serve::ListenerExt;
    // Change streams write small frames (a heartbeat, one live event); with Nagle's algorithm
    // such a write may wait for the peer's ACK of the one before.
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY");
        }
    });
    axum::serve(listener, app).with_graceful_shutdown(shutdown).await
}

/// Applies the event retention to every organisation once: the oldest events beyond the count
/// and those older than the age go, in batches so graph writes are not held up long. Returns
/// how many went.
pub async fn trim_events(state: &AppState, config: &ServerConfig) -> ApiResult<u64> {
    if config.retention_events.is_none() && config.retention_age.is_none() {
        return Ok(0);
    }
    let before_ms = config.retention_age.map(|age| {
        let now = u64::try_from(octo_store::Timestamp::now().as_millis()).unwrap_or(0);
        now.saturating_sub(u64::try_from(age.as_millis()).unwrap_or(u64::MAX))
    });
    let keep = config.retention_events;
    let mut total = 0;
    let organisations = {
        let s = state.clone();
        blocking(move || Ok(s.shared().organisations.list()?)).await?
    };
    for org in organisations {
        // The bus first: it forwards what it lacks, so nothing the store drops misses it.
        let (s, o) = (state.clone(), org.clone());
        total += blocking(move || s.bus().trim(&o, &*s.graph(&o)?, keep, before_ms)).await?;
        loop {
            let (s, org) = (state.clone(), org.clone());
            let removed = blocking(move || {
                let g = s.shared().organisations.get(&org)?;
                Ok(g.store().trim_events(keep, before_ms, 10_000).map_err(octo_graph::GraphError::from)?)
            })
            .await?;
            total += removed;
            if removed < 10_000 {
                break;
            }
        }
    }
    Ok(total)
}

/// Applies the retention every `every` until the process ends (spawn it beside the server).
pub async fn trim_events_forever(state: AppState, config: ServerConfig, every: std::time::Duration) {
    loop {
        match trim_events(&state, &config).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(events = n, "retention trimmed the change stream"),
            Err(e) => tracing::warn!(error = %e, "retention failed"),
        }
        tokio::time::sleep(every).await;
    }
}

/// Resolves on Ctrl-C or SIGTERM, having ended the change streams of `state` so that the
/// graceful shutdown does not wait on them. Listens from the call on (see [`shutdown_signal`]).
pub fn shutdown_signal_for(state: AppState) -> impl std::future::Future<Output = ()> + Send + 'static {
    let signal = shutdown_signal();
    async move {
        signal.await;
        state.end_streams();
    }
}

/// Resolves on Ctrl-C or SIGTERM. The handlers are installed when this is called, not when
/// the future is first polled: a signal that arrives while the server is still starting (after
/// it said it was ready, before the first poll) stops it gracefully instead of killing it.
/// Call inside the runtime.
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    let (terminate, interrupt) = {
        use tokio::signal::unix::{signal, SignalKind};
        (signal(SignalKind::terminate()).ok(), signal(SignalKind::interrupt()).ok())
    };
    async move {
        #[cfg(unix)]
        {
            let wait = |s: Option<tokio::signal::unix::Signal>| async move {
                match s {
                    Some(mut s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                _ = wait(terminate) => {},
                _ = wait(interrupt) => {},
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
        tracing::info!("shutting down: finishing requests in flight");
    }
}

async fn metrics_text(State(state): State<AppState>) -> Response {
    let s = state.clone();
    let body = blocking(move || {
        let shared = s.shared();
        for org in shared.organisations.list()? {
            if let Ok(bytes) = shared.organisations.store_bytes(&org) {
                shared.metrics.set_store_bytes(&org, bytes);
            }
            if let Some(bytes) = shared.organisations.index_bytes(&org) {
                shared.metrics.set_index_bytes(&org, bytes);
            }
            if let Some(bytes) = shared.organisations.cache_bytes(&org) {
                shared.metrics.set_cache_bytes(&org, bytes);
            }
        }
        if let Some(engine) = &shared.engine {
            shared.metrics.set_bit_stats(&engine.run_stats());
        }
        if let Some(logs) = shared.logs.get() {
            let bytes = logs.store().size().unwrap_or(0);
            shared.metrics.set_log_stats(logs.stats(), logs.devices().list().len(), bytes);
        }
        Ok(shared.metrics.encode())
    })
    .await;
    match body {
        Ok(text) => ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], text).into_response(),
        Err(e) => e.into_response(),
    }
}

/// Counts and times every request under its route template (not its path, which would make a
/// series per object).
async fn record(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().as_str().to_owned();
    let route = req.extensions().get::<MatchedPath>().map_or("unmatched", |m| m.as_str()).to_owned();
    let response = next.run(req).await;
    state.shared().metrics.observe_request(
        &method,
        &route,
        response.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    response
}

/// Paths anyone may read: liveness, metrics and the API description.
fn is_public(path: &str) -> bool {
    matches!(path, "/health" | "/metrics" | "/openapi.json")
}

/// The role a request needs: reads need `read`; organisation management and replacing a whole
/// graph need `admin`; every other write needs `write`.
fn required_role(method: &Method, rest: &str) -> Role {
    match (method.as_str(), rest) {
        ("POST" | "DELETE", "node") | ("POST", "io/import/new") => Role::Admin,
        ("GET" | "HEAD", _) | ("POST", "objects/load_bulk") => Role::Read,
        _ => Role::Write,
    }
}

fn bearer(req: &Request) -> Option<&str> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then_some(token.trim())
}

async fn authorize(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let path = req.uri().path().to_owned();
    if is_public(&path) {
        return next.run(req).await;
    }
    let principal = match &state.shared().tokens {
        None => Principal::unrestricted(),
        Some(tokens) => {
            let Some(token) = bearer(&req).map(str::to_owned) else {
                return unauthorized("an 'Authorization: Bearer <token>' header is required");
            };
            let found = match tokens.is_remembered(&token) {
                Some(p) => Some(p),
                None => {
                    let tokens = tokens.clone();
                    blocking(move || Ok(tokens.authenticate(&token))).await.unwrap_or(None)
                }
            };
            match found {
                Some(p) => p,
                None => return unauthorized("the token is not valid"),
            }
        }
    };
    let trimmed = path.trim_start_matches('/');
    let (client, rest) = trimmed.split_once('/').unwrap_or((trimmed, ""));
    let needed = required_role(req.method(), rest);
    if !principal.may(client, needed) {
        return ApiError::forbidden(format!("this token may not {needed} in organisation '{client}'")).into_response();
    }
    req.extensions_mut().insert(principal);
    next.run(req).await
}

fn unauthorized(message: &str) -> Response {
    let mut response = ApiError::unauthorized(message).into_response();
    response.headers_mut().insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Bearer"));
    response
}

/// A status for handlers that answer with nothing (Octopoes answers `null`).
pub(crate) fn ok_null() -> (StatusCode, axum::Json<serde_json::Value>) {
    (StatusCode::OK, axum::Json(serde_json::Value::Null))
}
