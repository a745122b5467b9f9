//! Every route over HTTP (in-process): the happy path, then bad input.

mod common;

use axum::http::Method;
use common::{q, server};
use serde_json::{json, Value};

const VT: &str = "valid_time=2026-01-01T00:00:00%2B00:00";

fn hostname(name: &str) -> Value {
    json!({"object_type": "Hostname", "network": "Network|internet", "name": name})
}

fn network() -> Value {
    json!({"object_type": "Network", "name": "internet"})
}

async fn declare(s: &common::TestServer, org: &str, ooi: Value) {
    let (st, v) =
        s.post(&format!("/{org}/declarations"), json!({"ooi": ooi, "valid_time": "2026-01-01T00:00:00+00:00"})).await;
    assert_eq!(st, 200, "{v}");
}

#[tokio::test]
async fn health_answers_with_service_health() {
    let s = server(false, &["acme"]);
    let (st, v) = s.get("/health").await;
    assert_eq!(st, 200);
    assert_eq!(v["healthy"], true);
    let (st, v) = s.get("/acme/health").await;
    assert_eq!(st, 200);
    assert_eq!(v["results"][0]["service"], "store");
    s.fails(Method::GET, "/nobody/health", None, 404).await;
    s.fails(Method::GET, "/acme/no-such-route", None, 404).await;
}

#[tokio::test]
async fn declarations_and_objects() {
    let s = server(false, &["acme"]);
    declare(&s, "acme", network()).await;
    declare(&s, "acme", hostname("example.com")).await;
    let (st, v) = s
        .post(
            "/acme/declarations/save_many",
            json!([
                {"ooi": hostname("a.example.com"), "valid_time": "2026-01-01 00:00:00+00:00"},
                {"ooi": hostname("b.example.com"), "valid_time": "2026-01-01T00:00:00Z", "method": "import"}
            ]),
        )
        .await;
    assert_eq!(st, 200, "{v}");

    // One object, then a page of them.
    let key = "Hostname|internet|example.com";
    let (st, v) = s.get(&format!("/acme/object?reference={}&{VT}", q(key))).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["primary_key"], key);
    assert_eq!(v["scan_profile"]["scan_profile_type"], "empty");
    let (_, v) = s.get(&format!("/acme/objects?types=Hostname&{VT}&limit=2")).await;
    assert_eq!(v["count"], 3);
    assert_eq!(v["items"].as_array().unwrap().len(), 2);
    let (_, v) =
        s.get(&format!("/acme/objects?types=Hostname&types=Network&{VT}&asc_desc=desc&search_string=b.ex")).await;
    assert_eq!(v["count"], 1);
    assert_eq!(v["items"][0]["name"], "b.example.com");
    // Before the declarations' valid time there was nothing.
    s.fails(Method::GET, &format!("/acme/object?reference={}&valid_time=2025-01-01T00:00:00Z", q(key)), None, 404)
        .await;

    // load_bulk leaves out what does not exist; random draws from what does.
    let (st, v) =
        s.post(&format!("/acme/objects/load_bulk?{VT}"), json!([key, "Hostname|internet|missing.example.com"])).await;
    assert_eq!(st, 200);
    assert_eq!(v.as_object().unwrap().len(), 1);
    let (_, v) = s.get(&format!("/acme/objects/random?amount=2&{VT}")).await;
    assert_eq!(v.as_array().unwrap().len(), 2);
    let (_, v) = s.get(&format!("/acme/objects/random?amount=10&scan_level=3&{VT}")).await;
    assert_eq!(v.as_array().unwrap().len(), 0);

    // Bad input.
    s.fails(Method::GET, "/acme/object", None, 422).await;
    s.fails(Method::GET, "/acme/object?reference=Nonsense%7Cx", None, 400).await;
    s.fails(Method::GET, &format!("/acme/object?reference={}&valid_time=yesterday", q(key)), None, 422).await;
    s.fails(Method::GET, "/acme/objects?types=Starship", None, 400).await;
    s.fails(Method::GET, "/acme/objects?limit=-1", None, 422).await;
    s.fails(Method::GET, "/acme/objects?order_by=colour", None, 422).await;
    s.fails(Method::GET, "/acme/objects?scan_level=7", None, 422).await;
    s.fails(Method::POST, "/acme/objects/load_bulk", Some(json!({"not": "a list"})), 422).await;
    s.fails(Method::POST, "/acme/declarations", Some(json!({"ooi": {"object_type": "Starship", "name": "x"}})), 400)
        .await;
    s.fails(
        Method::POST,
        "/acme/declarations",
        Some(json!({"ooi": {"object_type": "Hostname", "network": "Network|internet", "name": "x.nl", "colour": 1}})),
        400,
    )
    .await;
    s.fails(Method::POST, "/acme/declarations", Some(json!({"ooi": {"object_type": "IPPort", "address": "IPAddressV4|internet|1.2.3.4", "protocol": "tcp", "port": 70000}})), 400).await;
    s.fails(Method::POST, "/acme/declarations", Some(json!({"valid_time": "2026-01-01T00:00:00Z"})), 422).await;
    s.fails(Method::POST, "/acme/declarations", Some(Value::String("{not json".into())), 422).await;
    s.fails(Method::POST, "/acme/declarations", Some(json!({"ooi": network(), "valid_time": "someday"})), 422).await;
    // save_many is all or nothing.
    let msg = s
        .fails(
            Method::POST,
            "/acme/declarations/save_many",
            Some(json!([{"ooi": hostname("c.example.com")}, {"ooi": {"object_type": "Hostname", "name": "d.nl"}}])),
            400,
        )
        .await;
    assert!(msg.contains("network"), "{msg}");
    s.fails(Method::GET, &format!("/acme/object?reference={}", q("Hostname|internet|c.example.com")), None, 404).await;
    // An organisation that does not exist.
    s.fails(Method::GET, &format!("/ghost/object?reference={}", q(key)), None, 404).await;
    s.fails(Method::POST, "/ghost/declarations", Some(json!({"ooi": network()})), 404).await;
}

#[tokio::test]
async fn observations_origins_and_deletes() {
    let s = server(false, &["acme"]);
    declare(&s, "acme", network()).await;
    declare(&s, "acme", hostname("example.com")).await;
    let source = "Hostname|internet|example.com";
    let observation = json!({
        "method": "kat_dns_normalize", "source": source, "source_method": "dns-records",
        "task_id": "7b6b1ef4-6cd2-4d1c-9d48-7a0c9f3e9c11", "valid_time": "2026-01-01T00:00:00+00:00",
        "result": [
            {"object_type": "IPAddressV4", "network": "Network|internet", "address": "192.0.2.1"},
            {"object_type": "DNSARecord", "hostname": source, "address": "IPAddressV4|internet|192.0.2.1", "value": "192.0.2.1"},
        ]
    });
    let (st, v) = s.post("/acme/observations", observation.clone()).await;
    assert_eq!(st, 200, "{v}");

    let (_, origins) = s.get(&format!("/acme/origins?source={}&{VT}", q(source))).await;
    let observed: Vec<&Value> =
        origins.as_array().unwrap().iter().filter(|o| o["origin_type"] == "observation").collect();
    assert_eq!(observed.len(), 1, "{origins}");
    assert_eq!(observed[0]["result"].as_array().unwrap().len(), 2);
    let (_, by_method) = s.get(&format!("/acme/origins?method=kat_dns_normalize&method=manual&{VT}")).await;
    assert!(by_method.as_array().unwrap().len() >= 2);
    let (_, by_type) = s.get(&format!("/acme/origins?origin_type=declaration&limit=1&{VT}")).await;
    assert_eq!(by_type.as_array().unwrap().len(), 1);
    s.fails(Method::GET, "/acme/origins?origin_type=rumour", None, 422).await;

    // Inference origins have parameters; found by walking.
    let (_, inferred) = s.get(&format!("/acme/origins?origin_type=inference&{VT}")).await;
    let ids: Vec<String> = inferred
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            let sm = o["source_method"].as_str().map(|m| format!("{m}|")).unwrap_or_default();
            format!("Origin|inference|{}|{sm}{}", o["method"].as_str().unwrap(), o["source"].as_str().unwrap())
        })
        .collect();
    let query: String = ids.iter().map(|i| format!("origin_id={}&", q(i))).collect();
    let (st, params) = s.get(&format!("/acme/origin_parameters?{query}{VT}")).await;
    assert_eq!(st, 200);
    assert!(params.as_array().is_some(), "{params}");

    // Bad observations.
    let mut bad = observation.clone();
    bad["source"] = json!("Hostname|internet|nowhere.example.com");
    s.fails(Method::POST, "/acme/observations", Some(bad), 400).await;
    let mut bad = observation.clone();
    bad.as_object_mut().unwrap().remove("method");
    s.fails(Method::POST, "/acme/observations", Some(bad), 422).await;
    let mut bad = observation.clone();
    bad["result"][0]["address"] = json!("999.1.1.1");
    s.fails(Method::POST, "/acme/observations", Some(bad), 400).await;

    // History of the address: one version, with its document when asked.
    let ip = "IPAddressV4|internet|192.0.2.1";
    let (_, h) = s.get(&format!("/acme/object-history?reference={}&with_docs=true", q(ip))).await;
    assert_eq!(h.as_array().unwrap().len(), 1, "{h}");
    assert_eq!(h[0]["doc"]["address"], "192.0.2.1");
    assert!(h[0]["txId"].is_u64() && h[0]["validTime"].is_string() && h[0]["contentHash"].is_string());

    // Deleting the origin drops what only it held.
    let origin_id = format!("Origin|observation|kat_dns_normalize|dns-records|{source}");
    let (st, _) = s.send(Method::DELETE, &format!("/acme/origins?origin_id={}", q(&origin_id)), None, None).await;
    assert_eq!(st, 200);
    s.fails(Method::GET, &format!("/acme/object?reference={}", q(ip)), None, 404).await;
    s.fails(Method::DELETE, &format!("/acme/origins?origin_id={}", q(&origin_id)), None, 404).await;
    s.fails(Method::DELETE, "/acme/origins", None, 422).await;
    let (_, h) = s.get(&format!("/acme/object-history?reference={}&has_doc=false", q(ip))).await;
    assert_eq!(h.as_array().unwrap().len(), 1, "the deletion: {h}");
    assert_eq!(h[0]["contentHash"], "0".repeat(40));
    let (_, h) = s.get(&format!("/acme/object-history?reference={}&indices=-1&sort_order=asc", q(ip))).await;
    assert_eq!(h.as_array().unwrap().len(), 1);
    s.fails(
        Method::GET,
        &format!("/acme/object-history?reference={}", q("Hostname|internet|never.example.com")),
        None,
        404,
    )
    .await;
    s.fails(Method::GET, &format!("/acme/object-history?reference={}&sort_order=up", q(ip)), None, 422).await;

    // Affirmations add fields but do not keep an object alive.
    let (st, v) = s
        .post("/acme/affirmations", json!({"ooi": {"object_type": "Hostname", "network": "Network|internet", "name": "example.com", "registered_domain": "Hostname|internet|example.com"}}))
        .await;
    assert_eq!(st, 200, "{v}");
    s.fails(Method::POST, "/acme/affirmations", Some(json!({"ooi": 5})), 400).await;

    // Delete one object, then many at once (all or none).
    declare(&s, "acme", hostname("a.example.com")).await;
    declare(&s, "acme", hostname("b.example.com")).await;
    let (st, _) =
        s.send(Method::DELETE, &format!("/acme/?reference={}", q("Hostname|internet|a.example.com")), None, None).await;
    assert_eq!(st, 200);
    s.fails(Method::DELETE, &format!("/acme/?reference={}", q("Hostname|internet|a.example.com")), None, 404).await;
    s.fails(
        Method::POST,
        "/acme/objects/delete_many",
        Some(json!(["Hostname|internet|b.example.com", "Hostname|internet|a.example.com"])),
        404,
    )
    .await;
    let (_, v) = s.get("/acme/object?reference=Hostname%7Cinternet%7Cb.example.com").await;
    assert_eq!(v["name"], "b.example.com", "nothing was deleted");
    let (st, _) = s.post("/acme/objects/delete_many", json!(["Hostname|internet|b.example.com", source])).await;
    assert_eq!(st, 200);
    let (_, v) = s.get("/acme/objects?types=Hostname").await;
    assert_eq!(v["count"], 0);
}

#[tokio::test]
async fn scan_profiles_tree_query_findings_and_bits() {
    let s = server(false, &["acme"]);
    declare(&s, "acme", network()).await;
    declare(&s, "acme", hostname("example.com")).await;
    declare(&s, "acme", json!({"object_type": "IPAddressV4", "network": "Network|internet", "address": "192.0.2.7"}))
        .await;
    let ip = "IPAddressV4|internet|192.0.2.7";
    let (st, v) = s
        .send(
            Method::PUT,
            &format!("/acme/scan_profiles?{VT}"),
            Some(json!({"scan_profile_type": "declared", "reference": ip, "level": 2})),
            None,
        )
        .await;
    assert_eq!(st, 200, "{v}");
    let (st, v) = s
        .post(
            "/acme/observations",
            json!({"method": "kat_nmap_normalize", "source": ip, "task_id": "t1", "valid_time": "2026-01-01T00:00:00Z",
                   "result": [{"object_type": "IPPort", "address": ip, "protocol": "tcp", "port": 3306, "state": "open"}]}),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    let port = "IPPort|internet|192.0.2.7|tcp|3306";

    // Levels: declared on the address, inherited by the port.
    let (_, v) = s.get(&format!("/acme/object?reference={}&{VT}", q(port))).await;
    assert_eq!(v["scan_profile"]["scan_profile_type"], "inherited", "{v}");
    let (_, v) = s.get(&format!("/acme/scan_profiles/inheritance?reference={}&{VT}", q(port))).await;
    assert_eq!(v[0]["segment"], Value::Null, "{v}");
    assert_eq!(v[1]["reference"], ip, "{v}");
    assert_eq!(v[1]["segment"], "IPPort.address", "reached by the port's address: {v}");
    assert_eq!(v[1]["scan_profile_type"], "declared", "{v}");
    let (_, v) = s.get(&format!("/acme/scan_profiles?scan_profile_type=declared&{VT}")).await;
    assert_eq!(v.as_array().unwrap().len(), 1);
    let (st, _) = s
        .post(&format!("/acme/scan_profiles/save_many?{VT}"), json!([
            {"scan_profile_type": "declared", "reference": "Hostname|internet|example.com", "level": 1, "user_id": 3},
            {"scan_profile_type": "empty", "reference": "Network|internet", "level": 0},
        ]))
        .await;
    assert_eq!(st, 200);
    let (st, _) = s.get(&format!("/acme/scan_profiles/recalculate?{VT}")).await;
    assert_eq!(st, 200);
    for (body, status) in [
        (json!({"scan_profile_type": "declared", "reference": ip, "level": 9}), 400),
        (json!({"scan_profile_type": "inherited", "reference": ip, "level": 1}), 400),
        (json!({"scan_profile_type": "sideways", "reference": ip, "level": 1}), 422),
        (json!({"scan_profile_type": "declared", "reference": "Hostname|internet|nothing.nl", "level": 1}), 404),
        (json!({"level": 1}), 422),
    ] {
        s.fails(Method::PUT, "/acme/scan_profiles", Some(body), status).await;
    }

    // The tree around the address, two steps out.
    let (st, tree) = s.get(&format!("/acme/tree?reference={}&depth=2&{VT}", q(ip))).await;
    assert_eq!(st, 200, "{tree}");
    assert_eq!(tree["root"]["reference"], ip);
    assert!(tree["store"].get(port).is_some(), "{tree}");
    s.fails(Method::GET, &format!("/acme/tree?reference={}&types=Starship", q(ip)), None, 400).await;
    s.fails(Method::GET, &format!("/acme/tree?reference={}&depth=x", q(ip)), None, 422).await;
    s.fails(Method::GET, &format!("/acme/tree?reference={}", q("Hostname|internet|nothing.nl")), None, 404).await;

    // Path queries.
    let (_, v) =
        s.get(&format!("/acme/query?path={}&source={}&{VT}", q("IPAddressV4.<address[is IPPort]"), q(ip))).await;
    assert_eq!(v.as_array().unwrap().len(), 1, "{v}");
    assert_eq!(v[0]["port"], 3306);
    let (_, v) =
        s.get(&format!("/acme/query-many?path={}&sources={}&{VT}", q("IPAddressV4.<address[is IPPort]"), q(ip))).await;
    assert_eq!(v[0][0], ip, "{v}");
    let (_, v) = s.get(&format!("/acme/query-many?path={}", q("IPAddressV4.<address[is IPPort]"))).await;
    assert_eq!(v, json!([]));
    s.fails(Method::GET, &format!("/acme/query?path={}", q("IPAddressV4.<colour")), None, 400).await;
    s.fails(Method::GET, "/acme/query", None, 422).await;

    // The open database port became a finding through the bits.
    let (_, v) = s.get(&format!("/acme/findings?{VT}")).await;
    let ids: Vec<&str> = v["items"].as_array().unwrap().iter().filter_map(|f| f["finding_type"].as_str()).collect();
    assert!(ids.contains(&"KATFindingType|KAT-OPEN-DATABASE-PORT"), "{v}");
    let (_, v) = s.get(&format!("/acme/findings/count_by_severity?{VT}")).await;
    assert!(v.as_object().unwrap().values().any(|n| n.as_u64().unwrap_or(0) > 0), "{v}");
    s.fails(Method::GET, "/acme/findings?severities=apocalyptic", None, 422).await;
    s.fails(Method::GET, "/acme/findings?only_muted=perhaps", None, 422).await;

    // End to end: declared, observed, inferred, and read back as one tree around the port.
    let (_, tree) = s.get(&format!("/acme/tree?reference={}&depth=1&{VT}", q(port))).await;
    let finding = "Finding|IPPort|internet|192.0.2.7|tcp|3306|KAT-OPEN-DATABASE-PORT";
    assert_eq!(tree["store"][finding]["object_type"], "Finding", "the inferred finding is in the tree: {tree}");
    assert_eq!(tree["store"][ip]["scan_profile"]["level"], 2, "{tree}");
    assert!(tree["root"]["children"]["address"].is_array(), "{tree}");

    let (st, v) = s.post("/acme/bits/recalculate", Value::Null).await;
    assert_eq!(st, 200);
    assert!(v.as_u64().unwrap() > 0, "{v}");
}

#[tokio::test]
async fn organisations_export_and_import() {
    let s = server(false, &["acme"]);
    let (st, _) = s.post("/beta/node", Value::Null).await;
    assert_eq!(st, 200);
    s.fails(Method::POST, "/beta/node", None, 409).await;
    s.fails(Method::POST, "/bad%20name/node", None, 400).await;
    declare(&s, "acme", network()).await;
    declare(&s, "acme", hostname("example.com")).await;

    let (st, export) = s.get("/acme/io/export").await;
    assert_eq!(st, 200);
    assert!(export.as_array().unwrap().len() >= 2, "{export}");
    assert!(export[0]["txOps"][0][1]["xt/id"].is_string(), "{export}");

    // Into an empty organisation: the same objects.
    let raw = serde_json::to_string(&export).unwrap();
    let (st, v) = s.post("/beta/io/import/add", Value::String(raw.clone())).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["detail"], export.as_array().unwrap().len());
    let (_, v) = s.get("/beta/object?reference=Hostname%7Cinternet%7Cexample.com").await;
    assert_eq!(v["name"], "example.com");
    let count = s.get("/acme/objects").await.1["count"].clone();
    assert_eq!(s.get("/beta/objects").await.1["count"], count, "every object, inferred ones too");

    // A bad import is refused and nothing is lost, even when asked to start afresh.
    s.fails(
        Method::POST,
        "/beta/io/import/new",
        Some(Value::String(
            "[{\"txOps\": [[\"put\", {\"object_type\": \"Starship\"}, \"2026-01-01T00:00:00Z\"]]}]".into(),
        )),
        400,
    )
    .await;
    s.fails(Method::POST, "/beta/io/import/new", Some(Value::String("not json".into())), 400).await;
    s.fails(Method::POST, "/beta/io/import/add", Some(json!({"txOps": []})), 400).await;
    assert_eq!(s.get("/beta/objects").await.1["count"], count);

    // Octopoes' own export shape: prefixed fields and typed origins.
    let octopoes = json!([{"txId": 1, "txTime": "2026-01-01T00:00:00Z", "txOps": [
        ["put", {"xt/id": "Network|internet", "object_type": "Network", "Network/primary_key": "Network|internet", "Network/name": "internet"}, "2026-01-01T00:00:00Z"],
        ["put", {"xt/id": "Hostname|internet|kat.example", "object_type": "Hostname", "Hostname/network": "Network|internet", "Hostname/name": "kat.example", "Hostname/primary_key": "Hostname|internet|kat.example"}, "2026-01-01T00:00:00Z"],
        ["put", {"xt/id": "Origin|declaration|manual|Hostname|internet|kat.example", "type": "Origin", "origin_type": "declaration", "method": "manual", "source": "Hostname|internet|kat.example", "result": ["Hostname|internet|kat.example"], "task_id": null}, "2026-01-01T00:00:00Z"],
        ["put", {"xt/id": "OriginParameter|x", "type": "OriginParameter", "origin_id": "x", "reference": "Network|internet"}, "2026-01-01T00:00:00Z"],
    ]}]);
    let (st, v) = s.post("/beta/io/import/new", Value::String(octopoes.to_string())).await;
    assert_eq!(st, 200, "{v}");
    let (_, v) = s.get("/beta/objects?types=Hostname").await;
    assert_eq!(v["count"], 1, "replaced: {v}");
    assert_eq!(v["items"][0]["name"], "kat.example");
    let (_, origins) = s.get("/beta/origins?source=Hostname%7Cinternet%7Ckat.example").await;
    assert_eq!(origins[0]["origin_type"], "declaration", "{origins}");

    let (st, _) = s.send(Method::DELETE, "/beta/node", None, None).await;
    assert_eq!(st, 200);
    s.fails(Method::DELETE, "/beta/node", None, 404).await;
    s.fails(Method::GET, "/beta/objects", None, 404).await;
}

#[tokio::test]
async fn metrics_and_openapi() {
    let s = server(false, &["acme"]);
    s.get("/acme/object?reference=bad").await;
    declare(&s, "acme", network()).await;
    s.get("/acme/objects").await;
    assert_eq!(s.get("/acme/object?reference=Network%7Cinternet").await.0, 200);
    let (st, text) = s.get("/metrics").await;
    assert_eq!(st, 200);
    let text = text.as_str().unwrap().to_owned();
    assert!(
        text.contains(r#"octograph_http_requests_total{method="GET",route="/{client}/objects",status="200"} 1"#),
        "{text}"
    );
    assert!(text.contains(r#"route="/{client}/object",status="400""#), "{text}");
    assert!(text.contains("octograph_http_request_duration_seconds_bucket"), "{text}");
    assert!(text.contains(r#"octograph_events_total{organisation="acme"}"#), "{text}");
    assert!(text.contains(r#"octograph_store_bytes{organisation="acme"}"#), "{text}");
    // The object listed above is held in the key index, and the object read above in the
    // cache of current answers.
    let gauge = |name: &str| -> u64 {
        let prefix = format!(r#"{name}{{organisation="acme"}} "#);
        text.lines()
            .find_map(|l| l.strip_prefix(prefix.as_str()))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in {text}"))
    };
    assert!(gauge("octograph_key_index_bytes") > 0, "{text}");
    assert!(gauge("octograph_current_cache_bytes") > 0, "{text}");
    assert!(text.contains("octograph_bit_runs"), "{text}");

    let (st, api) = s.get("/openapi.json").await;
    assert_eq!(st, 200);
    let paths = api["paths"].as_object().unwrap();
    for p in [
        "/{client}/object",
        "/{client}/objects",
        "/{client}/tree",
        "/{client}/observations",
        "/{client}/scan_profiles",
        "/{client}/io/import/new",
        "/health",
    ] {
        assert!(paths.contains_key(p), "{p} missing from the OpenAPI document");
    }
    assert!(api["paths"]["/{client}/scan_profiles"]["put"].is_object());
    assert!(api["components"]["securitySchemes"]["bearer"].is_object());
}

#[tokio::test]
async fn every_route_refuses_bad_input_with_a_message() {
    let s = server(false, &["acme"]);
    declare(&s, "acme", network()).await;
    let bad_time = "valid_time=last%20tuesday";
    let before = s.get("/acme/io/export").await.1;
    for (method, uri, body, status) in [
        (Method::GET, format!("/acme/objects?{bad_time}"), None, 422),
        (Method::GET, "/acme/objects/random?amount=lots".to_owned(), None, 422),
        (Method::GET, format!("/acme/objects/random?{bad_time}"), None, 422),
        (Method::GET, "/acme/query-many?path=Network&sources=nonsense".to_owned(), None, 400),
        (Method::GET, "/acme/query-many?sources=Network%7Cinternet".to_owned(), None, 422),
        (Method::GET, "/acme/origins?source=nonsense".to_owned(), None, 400),
        (Method::GET, "/acme/origins?limit=x".to_owned(), None, 422),
        (Method::GET, format!("/acme/origin_parameters?{bad_time}"), None, 422),
        (Method::GET, format!("/acme/scan_profiles?{bad_time}"), None, 422),
        (
            Method::POST,
            "/acme/scan_profiles/save_many".to_owned(),
            Some(json!([{"scan_profile_type": "declared", "reference": "Network|internet", "level": 5}])),
            400,
        ),
        (Method::POST, "/acme/scan_profiles/save_many".to_owned(), Some(json!({"not": "a list"})), 422),
        (Method::GET, format!("/acme/scan_profiles/recalculate?{bad_time}"), None, 422),
        (Method::GET, "/acme/scan_profiles/inheritance?reference=Network%7Cnowhere".to_owned(), None, 404),
        (Method::GET, "/acme/scan_profiles/inheritance".to_owned(), None, 422),
        (Method::GET, format!("/acme/findings/count_by_severity?{bad_time}"), None, 422),
        (Method::GET, "/acme/findings?order_by=colour".to_owned(), None, 422),
        (Method::POST, "/ghost/bits/recalculate".to_owned(), None, 404),
        (Method::GET, "/ghost/io/export".to_owned(), None, 404),
        (Method::POST, "/ghost/io/import/add".to_owned(), Some(json!([])), 404),
        (Method::POST, "/acme/declarations/save_many".to_owned(), Some(json!({"ooi": network()})), 422),
        (Method::POST, "/acme/affirmations".to_owned(), Some(json!({})), 422),
        (Method::POST, "/acme/objects/delete_many".to_owned(), Some(json!(["nonsense"])), 400),
        (Method::DELETE, "/acme/".to_owned(), None, 422),
        (Method::GET, "/acme/object-history".to_owned(), None, 422),
        (Method::GET, "/acme/object-history?reference=Network%7Cinternet&indices=first".to_owned(), None, 422),
        (Method::GET, "/acme/tree?reference=Network%7Cinternet&depth=99".to_owned(), None, 400),
    ] {
        s.fails(method, &uri, body, status).await;
    }
    // Nothing above wrote anything: the whole history is as it was.
    assert_eq!(s.get("/acme/io/export").await.1, before);
}
