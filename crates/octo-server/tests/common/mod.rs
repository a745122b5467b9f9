//! A server over a temporary data directory, driven in-process through tower (no socket).

#![allow(dead_code)]

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use octo_bits::{BitEngine, BitSwitches};
use octo_graph::Organisations;
use octo_model::{Catalog, CatalogBuilder};
use octo_server::auth::{create_token, token_file, Role, Tokens};
use octo_server::{app, AppState, ServerConfig};
use octo_store::StoreOptions;
use serde_json::Value;
use tower::ServiceExt;

pub struct TestServer {
    pub dir: tempfile::TempDir,
    pub app: Router,
    pub state: AppState,
    /// The Redis key prefix of its event bus, when it has one (removed when the server goes).
    redis_prefix: Option<(String, Vec<String>)>,
}

/// The Redis the bus tests use (`.ci/run` starts one when none answers).
pub const REDIS_URL: &str = "redis://127.0.0.1:6379/";

/// Where a test server's change streams read events.
#[derive(Debug, Clone, Copy)]
pub enum Bus {
    /// The embedded store's log.
    Store,
    /// A Redis Streams bus under a key prefix of the server's own.
    Redis,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.state.end_streams();
        if let Some((prefix, organisations)) = &self.redis_prefix {
            if let Ok(log) = octo_stream::redis_log::RedisLog::open(REDIS_URL, prefix) {
                for o in organisations {
                    let _ = log.delete(o);
                }
            }
        }
    }
}

pub fn catalog() -> Catalog {
    CatalogBuilder::with_builtin().build().unwrap()
}

/// A server with the built-in bits; `auth` turns tokens on.
pub fn server(auth: bool, organisations: &[&str]) -> TestServer {
    server_on(auth, organisations, Bus::Store)
}

/// [`server`] with its change streams on `bus`.
pub fn server_on(auth: bool, organisations: &[&str], bus: Bus) -> TestServer {
    let dir = tempfile::tempdir().unwrap();
    let catalog = catalog();
    let engine = Arc::new(BitEngine::new(catalog.clone(), octo_bits::builtin::all(), BitSwitches::default()).unwrap());
    let orgs =
        Organisations::open(dir.path(), catalog, StoreOptions { cache_bytes: 16 << 20, ..StoreOptions::default() })
            .unwrap()
            .with_inferrer(engine.clone());
    for o in organisations {
        orgs.create(o).unwrap();
    }
    let tokens = auth.then(|| Arc::new(Tokens::open(&token_file(dir.path())).unwrap()));
    let state = AppState::new(Arc::new(orgs), Some(engine), tokens);
    let redis_prefix = match bus {
        Bus::Store => None,
        Bus::Redis => {
            let name = dir.path().file_name().unwrap().to_string_lossy().into_owned();
            let prefix = format!("octograph-test-{}-{name}", std::process::id());
            let bus = octo_server::EventBus::redis(REDIS_URL, &prefix, None).expect("redis at 127.0.0.1:6379");
            state.set_event_bus(bus);
            Some((prefix, organisations.iter().map(|o| o.to_string()).collect()))
        }
    };
    let app = app(state.clone(), &ServerConfig::default());
    TestServer { dir, app, state, redis_prefix }
}

impl TestServer {
    pub fn token(&self, organisations: &[&str], role: Role) -> String {
        self.token_cleared(organisations, role, None)
    }

    pub fn token_cleared(&self, organisations: &[&str], role: Role, clearance: Option<octo_stream::Tlp>) -> String {
        let orgs: Vec<String> = organisations.iter().map(|s| s.to_string()).collect();
        create_token(&token_file(self.dir.path()), &orgs, role, None, clearance).unwrap().0
    }

    /// Sends a request; the body is JSON (a `Value::String` is sent raw).
    pub async fn send(
        &self,
        method: Method,
        uri: &str,
        body: Option<Value>,
        token: Option<&str>,
    ) -> (StatusCode, Value) {
        let mut req = Request::builder().method(method).uri(uri);
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        let body = match body {
            None => Body::empty(),
            Some(Value::String(raw)) => Body::from(raw),
            Some(v) => {
                req = req.header("content-type", "application/json");
                Body::from(serde_json::to_vec(&v).unwrap())
            }
        };
        let response = self.app.clone().oneshot(req.body(body).unwrap()).await.unwrap();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()))
        };
        (status, value)
    }

    pub async fn get(&self, uri: &str) -> (StatusCode, Value) {
        self.send(Method::GET, uri, None, None).await
    }

    pub async fn post(&self, uri: &str, body: Value) -> (StatusCode, Value) {
        self.send(Method::POST, uri, Some(body), None).await
    }

    /// Asserts an error status with a JSON message.
    pub async fn fails(&self, method: Method, uri: &str, body: Option<Value>, status: u16) -> String {
        let (got, v) = self.send(method.clone(), uri, body, None).await;
        assert_eq!(got.as_u16(), status, "{method} {uri}: {v}");
        let message = v["message"].as_str().unwrap_or_else(|| panic!("{method} {uri}: no message in {v}"));
        assert_eq!(v["detail"].as_str(), Some(message));
        message.to_owned()
    }
}

/// Percent-encodes a query value.
pub fn q(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}
