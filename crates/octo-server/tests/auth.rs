//! Tokens: who may do what in which organisation.

mod common;

use axum::http::Method;
use common::server;
use octo_server::auth::Role;
use octo_server::ServerConfig;
use serde_json::json;

#[tokio::test]
async fn tokens_isolate_organisations_and_roles() {
    let s = server(true, &["acme", "globex"]);
    let acme_writer = s.token(&["acme"], Role::Write);
    let acme_reader = s.token(&["acme"], Role::Read);
    let globex_writer = s.token(&["globex"], Role::Write);
    let admin = s.token(&["*"], Role::Admin);
    let network = json!({"ooi": {"object_type": "Network", "name": "internet"}});

    // No token, a bad token, a bad scheme.
    let (st, v) = s.send(Method::GET, "/acme/objects", None, None).await;
    assert_eq!(st, 401, "{v}");
    assert!(v["message"].is_string());
    assert_eq!(s.send(Method::GET, "/acme/objects", None, Some("og_000000000000_deadbeef")).await.0, 401);
    assert_eq!(s.send(Method::GET, "/acme/objects", None, Some(&format!("{acme_writer}x"))).await.0, 401);

    // Each writer writes in its own organisation only.
    assert_eq!(s.send(Method::POST, "/acme/declarations", Some(network.clone()), Some(&acme_writer)).await.0, 200);
    let (st, v) = s.send(Method::POST, "/globex/declarations", Some(network.clone()), Some(&acme_writer)).await;
    assert_eq!(st, 403, "{v}");
    let (st, v) = s.send(Method::GET, "/acme/objects", None, Some(&globex_writer)).await;
    assert_eq!(st, 403, "{v}");
    let (st, v) = s.send(Method::GET, "/globex/objects", None, Some(&globex_writer)).await;
    assert_eq!((st.as_u16(), v["count"].as_u64()), (200, Some(0)), "nothing of acme's shows in globex");

    // A reader reads (load_bulk included) but does not write.
    assert!(s.send(Method::GET, "/acme/objects", None, Some(&acme_reader)).await.1["count"].as_u64() > Some(0));
    assert_eq!(
        s.send(Method::POST, "/acme/objects/load_bulk", Some(json!(["Network|internet"])), Some(&acme_reader)).await.0,
        200
    );
    assert_eq!(s.send(Method::POST, "/acme/declarations", Some(network.clone()), Some(&acme_reader)).await.0, 403);
    assert_eq!(s.send(Method::DELETE, "/acme/?reference=Network%7Cinternet", None, Some(&acme_reader)).await.0, 403);

    // Only admins manage organisations or replace a graph.
    assert_eq!(s.send(Method::POST, "/initech/node", None, Some(&acme_writer)).await.0, 403);
    assert_eq!(s.send(Method::DELETE, "/acme/node", None, Some(&acme_writer)).await.0, 403);
    assert_eq!(s.send(Method::POST, "/acme/io/import/new", Some(json!([])), Some(&acme_writer)).await.0, 403);
    assert_eq!(s.send(Method::POST, "/initech/node", None, Some(&admin)).await.0, 200);
    assert_eq!(s.send(Method::GET, "/initech/objects", None, Some(&admin)).await.0, 200);

    // Public: liveness, metrics and the API description.
    for path in ["/health", "/metrics", "/openapi.json"] {
        assert_eq!(s.send(Method::GET, path, None, None).await.0, 200, "{path}");
    }
}

#[test]
fn authentication_can_be_off_only_on_loopback() {
    let mut c = ServerConfig { auth: false, ..ServerConfig::default() };
    assert!(c.check().is_ok());
    c.listen = "[::1]:8001".parse().unwrap();
    assert!(c.check().is_ok());
    c.listen = "0.0.0.0:8001".parse().unwrap();
    assert!(c.check().unwrap_err().contains("loopback"));
    c.auth = true;
    assert!(c.check().is_ok());
}
