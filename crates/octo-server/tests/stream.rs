//! The change stream over HTTP: framing, STIX data, resume without gap or duplicate, live
//! delivery, heartbeats, patches and cascades.

mod common;

use common::Bus;

/// Runs each test twice: on the embedded store's log and on the Redis Streams bus.
macro_rules! on_both_buses {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test]
            async fn store() {
                super::$name(super::Bus::Store).await
            }
            #[tokio::test]
            async fn redis() {
                super::$name(super::Bus::Redis).await
            }
        }
    )*};
}

on_both_buses!(
    replay_then_live_then_resume_anywhere_without_gap_or_duplicate,
    updates_carry_patches_and_deletes_their_cascade,
    dependencies_inferences_and_deletes_as_the_consumer_asks,
    bad_positions_and_unknown_organisations_are_refused,
    recover_sends_the_graph_as_of_a_date_then_what_followed,
    live_streams_filter_and_an_object_leaving_the_view_arrives_as_a_delete,
    a_position_older_than_the_retention_gets_an_error_event,
    markings_decide_who_sees_an_object,
    a_consumer_that_falls_behind_the_retention_is_told,
    a_catch_up_from_prepared_events_is_the_live_stream_again,
);

use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

#[derive(Debug, Clone)]
struct Frame {
    id: Option<String>,
    event: String,
    data: Value,
}

/// An open stream, read frame by frame.
struct Stream {
    body: Body,
    buffer: String,
}

impl Stream {
    async fn open(s: &common::TestServer, query: &str, last_event_id: Option<&str>) -> Stream {
        Self::open_path(s, &format!("/acme/stream{query}"), last_event_id).await
    }

    async fn open_path(s: &common::TestServer, uri: &str, last_event_id: Option<&str>) -> Stream {
        Self::open_as(s, uri, last_event_id, None).await
    }

    async fn open_as(s: &common::TestServer, uri: &str, last_event_id: Option<&str>, token: Option<&str>) -> Stream {
        let mut req = Request::builder().uri(uri);
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        if let Some(id) = last_event_id {
            req = req.header("last-event-id", id);
        }
        let response = s.app.clone().oneshot(req.body(Body::empty()).unwrap()).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["content-type"], "text/event-stream");
        assert_eq!(response.headers()["x-accel-buffering"], "no");
        Stream { body: response.into_body(), buffer: String::new() }
    }

    async fn next(&mut self) -> Option<Frame> {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let raw: String = self.buffer.drain(..end + 2).collect();
                let mut frame = Frame { id: None, event: "message".into(), data: Value::Null };
                for line in raw.lines() {
                    if let Some(v) = line.strip_prefix("id:") {
                        frame.id = Some(v.trim().to_owned());
                    } else if let Some(v) = line.strip_prefix("event:") {
                        frame.event = v.trim().to_owned();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        frame.data = serde_json::from_str(v.trim()).unwrap();
                    }
                }
                return Some(frame);
            }
            let chunk = tokio::time::timeout(Duration::from_secs(10), self.body.frame()).await.ok()??.ok()?;
            if let Ok(data) = chunk.into_data() {
                self.buffer.push_str(&String::from_utf8_lossy(&data));
            }
        }
    }

    /// Data frames until `done` holds for them (heartbeats skipped); panics after 10 s of silence.
    async fn until(&mut self, done: impl Fn(&[Frame]) -> bool) -> Vec<Frame> {
        let mut frames = Vec::new();
        while !done(&frames) {
            let f = self.next().await.expect("the stream goes on");
            if !matches!(f.event.as_str(), "heartbeat" | "connected") {
                frames.push(f);
            }
        }
        frames
    }

    /// Data frames until the first heartbeat (for a stream just opened: it has caught up).
    async fn until_heartbeat(&mut self) -> (Vec<Frame>, Frame) {
        let mut frames = Vec::new();
        loop {
            let f = self.next().await.expect("the stream goes on");
            match f.event.as_str() {
                "heartbeat" => return (frames, f),
                "connected" => {}
                _ => frames.push(f),
            }
        }
    }
}

fn server(bus: Bus) -> common::TestServer {
    let s = common::server_on(false, &["acme"], bus);
    s.state.set_heartbeat(Duration::from_millis(150));
    s
}

async fn declare(s: &common::TestServer, ooi: Value) {
    let (st, v) = s.post("/acme/declarations", json!({"ooi": ooi})).await;
    assert_eq!(st, 200, "{v}");
}

async fn replay_then_live_then_resume_anywhere_without_gap_or_duplicate(bus: Bus) {
    let s = server(bus);
    declare(&s, json!({"object_type": "Network", "name": "internet"})).await;
    declare(&s, json!({"object_type": "IPAddressV4", "network": "Network|internet", "address": "198.51.100.7"})).await;
    declare(&s, json!({"object_type": "Hostname", "network": "Network|internet", "name": "example.com"})).await;

    let mut stream = Stream::open(&s, "?from=0", None).await;
    let connected = stream.next().await.unwrap();
    assert_eq!(connected.event, "connected");
    assert!(connected.id.is_none(), "connected carries no id");
    let (frames, beat) = stream.until_heartbeat().await;
    let ip = frames.iter().find(|f| f.data["data"]["type"] == "ipv4-addr").expect("the address as STIX");
    assert_eq!(ip.event, "create");
    assert_eq!(ip.data["type"], "create");
    assert_eq!(ip.data["version"], "4");
    assert_eq!(ip.data["data"]["id"], "ipv4-addr--12592121-be4c-5a93-a813-5a5af16e50db");
    assert!(ip.data["message"].as_str().unwrap().contains("IPAddressV4|internet|198.51.100.7"));
    assert!(frames.iter().any(|f| f.data["data"]["type"] == "domain-name"));

    // Live: a change made now arrives on the open stream.
    declare(&s, json!({"object_type": "Hostname", "network": "Network|internet", "name": "live.example.com"})).await;
    let live = stream.until(|fs| fs.iter().any(|f| f.data["data"]["value"] == "live.example.com")).await;
    // Heartbeats carry the position reached, past events that made no message.
    let beat2 = loop {
        let f = stream.next().await.unwrap();
        if f.event == "heartbeat" && f.id.as_deref() >= live.last().and_then(|l| l.id.as_deref()) {
            break f;
        }
    };
    assert!(beat2.id.as_deref() > beat.id.as_deref());

    // Resume after every position: what follows it, nothing missed, nothing it had twice. (Without
    // dependencies, which a new consumer is sent afresh.) The frames of one event but the last
    // carry the position before the event, so a consumer cut off inside an event gets the event
    // again whole: that head is all it may see twice.
    let mut full = Stream::open(&s, "?from=0&no-dependencies=true", None).await;
    let (all, _) = full.until_heartbeat().await;
    let key =
        |id: &str| id.split_once('-').map(|(a, b)| (a.parse::<u64>().unwrap(), b.parse::<u64>().unwrap())).unwrap();
    let ids: Vec<(u64, u64)> = all.iter().map(|f| key(f.id.as_deref().unwrap())).collect();
    assert!(ids.windows(2).all(|w| w[0] <= w[1]), "ids never go back: {ids:?}");
    let mut positions: Vec<(u64, u64)> = ids.clone();
    positions.dedup();
    for p in positions {
        let mut resumed = Stream::open(&s, "?no-dependencies=true", Some(&format!("{}-{}", p.0, p.1))).await;
        let (rest, _) = resumed.until_heartbeat().await;
        let frame = |f: &Frame| (f.id.clone().unwrap(), f.data["data"]["id"].clone());
        let got: Vec<_> = rest.iter().map(frame).collect();
        let k = all.len().checked_sub(got.len()).unwrap_or_else(|| panic!("after {p:?}: more than everything"));
        assert_eq!(got, all[k..].iter().map(frame).collect::<Vec<_>>(), "after {p:?}: a suffix of the full stream");
        assert!(ids[..k].iter().all(|id| *id <= p), "after {p:?}: nothing later was skipped");
        let head = ids[k..].iter().take_while(|id| **id <= p).count();
        assert!(head == 0 || k + head < ids.len(), "after {p:?}: a repeated head leads into its event");
        assert!(ids[k..k + head].iter().all(|id| *id == ids[k]), "after {p:?}: only one event's head repeats");
    }
    // `from` as a query parameter and as a millisecond timestamp.
    let first_ms = ids[0].0;
    let mut by_ms = Stream::open(&s, &format!("?from={first_ms}"), None).await;
    let (rest, _) = by_ms.until_heartbeat().await;
    assert!(rest.len() >= all.len(), "every event at or after that millisecond");
    // No position: live only.
    let mut live_only = Stream::open(&s, "", None).await;
    let (nothing, _) = live_only.until_heartbeat().await;
    assert!(nothing.is_empty());
}

async fn updates_carry_patches_and_deletes_their_cascade(bus: Bus) {
    let s = server(bus);
    declare(&s, json!({"object_type": "Network", "name": "internet"})).await;
    declare(&s, json!({"object_type": "IPAddressV4", "network": "Network|internet", "address": "192.0.2.7"})).await;
    let mut stream = Stream::open(&s, "", None).await;
    stream.until_heartbeat().await;

    let ip = "IPAddressV4|internet|192.0.2.7";
    let (st, v) = s
        .post(
            "/acme/observations",
            json!({"method": "nmap", "source": ip, "result": [
            {"object_type": "IPPort", "address": ip, "protocol": "tcp", "port": 22, "state": "open"}]}),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    let (st, _) = s
        .post(
            "/acme/observations",
            json!({"method": "nmap", "source": ip, "result": [
            {"object_type": "IPPort", "address": ip, "protocol": "tcp", "port": 22, "state": "filtered"}]}),
        )
        .await;
    assert_eq!(st, 200);
    let frames = stream.until(|fs| fs.iter().any(|f| f.event == "update")).await;
    let update =
        frames.iter().find(|f| f.event == "update" && f.data["data"]["type"] == "network-traffic").expect("an update");
    let new = update.data["data"].clone();
    let patch: json_patch::Patch = serde_json::from_value(update.data["context"]["patch"].clone()).unwrap();
    let reverse: json_patch::Patch = serde_json::from_value(update.data["context"]["reverse_patch"].clone()).unwrap();
    let mut old = new.clone();
    json_patch::patch(&mut old, &reverse).unwrap();
    let state = |o: &Value| o["extensions"].as_object().unwrap().values().next().unwrap()["fields"]["state"].clone();
    assert_eq!((state(&old), state(&new)), (json!("open"), json!("filtered")), "reverse_patch gives the old object");
    let mut again = old.clone();
    json_patch::patch(&mut again, &patch).unwrap();
    assert_eq!(again, new, "patch turns the old object into the new one exactly");

    // Deleting the address takes the port with it: one delete lists the other.
    let (st, _) =
        s.send(axum::http::Method::DELETE, "/acme/?reference=IPAddressV4%7Cinternet%7C192.0.2.7", None, None).await;
    assert_eq!(st, 200);
    let frames = stream.until(|fs| fs.iter().filter(|f| f.event == "delete").count() >= 2).await;
    let deletes: Vec<&Frame> = frames.iter().filter(|f| f.event == "delete").collect();
    let address = deletes.iter().find(|f| f.data["data"]["type"] == "ipv4-addr").expect("the address's delete");
    let port = deletes.iter().find(|f| f.data["data"]["type"] == "network-traffic").expect("the port's delete");
    let listed: Vec<&Value> = address.data["context"]["deletions"].as_array().unwrap().iter().collect();
    assert!(listed.contains(&&port.data["data"]["id"]), "{listed:?}");
}

async fn dependencies_inferences_and_deletes_as_the_consumer_asks(bus: Bus) {
    let s = server(bus);
    declare(&s, json!({"object_type": "Network", "name": "internet"})).await;
    declare(&s, json!({"object_type": "IPAddressV4", "network": "Network|internet", "address": "192.0.2.9"})).await;
    let (st, _) = s
        .send(
            axum::http::Method::PUT,
            "/acme/scan_profiles",
            Some(json!({"scan_profile_type": "declared",
            "reference": "IPAddressV4|internet|192.0.2.9", "level": 2})),
            None,
        )
        .await;
    assert_eq!(st, 200);
    // Live-only consumers: one with defaults, one with inferences, one without deletes.
    let mut plain = Stream::open(&s, "", None).await;
    let mut inferred = Stream::open(&s, "?with-inferences=true", None).await;
    let mut no_deletes = Stream::open(&s, "?listen-delete=false&no-dependencies=true", None).await;
    for st in [&mut plain, &mut inferred, &mut no_deletes] {
        st.until_heartbeat().await;
    }
    let ip = "IPAddressV4|internet|192.0.2.9";
    let (st, _) = s
        .post(
            "/acme/observations",
            json!({"method": "nmap", "source": ip, "result": [
            {"object_type": "IPPort", "address": ip, "protocol": "tcp", "port": 3306, "state": "open"}]}),
        )
        .await;
    assert_eq!(st, 200);

    // The port's address (and its network) come first, as dependencies, at the position before.
    let frames = plain.until(|fs| fs.iter().any(|f| f.data["data"]["type"] == "network-traffic")).await;
    let kinds: Vec<&str> = frames.iter().map(|f| f.data["data"]["type"].as_str().unwrap()).collect();
    let at = |t: &str| kinds.iter().position(|k| *k == t).unwrap_or_else(|| panic!("no {t} in {kinds:?}"));
    assert!(at("x-octograph-object") < at("ipv4-addr") && at("ipv4-addr") < at("network-traffic"), "{kinds:?}");
    let dep = &frames[at("ipv4-addr")];
    assert_eq!(dep.data["origin"]["cause"], "dependency");
    let port = &frames[at("network-traffic")];
    assert_ne!(dep.id, port.id, "a dependency carries the position before its event");

    // The open database port's finding exists only through a bit: only asked-for inferences carry it.
    let with = inferred.until(|fs| fs.iter().any(|f| f.data["data"]["type"] == "note")).await;
    assert!(with.iter().any(|f| f.data["data"]["abstract"] == "KAT-OPEN-DATABASE-PORT"));
    let (st, _) = s
        .send(axum::http::Method::DELETE, "/acme/?reference=IPPort%7Cinternet%7C192.0.2.9%7Ctcp%7C3306", None, None)
        .await;
    assert_eq!(st, 200);
    let rest = plain.until(|fs| fs.iter().any(|f| f.event == "delete")).await;
    assert!(
        frames.iter().chain(&rest).all(|f| f.data["data"]["type"] != "note"),
        "no inferred finding by default, created or deleted"
    );
    // A consumer without deletes sees the port come but not go.
    declare(&s, json!({"object_type": "Hostname", "network": "Network|internet", "name": "after.example"})).await;
    let seen = no_deletes.until(|fs| fs.iter().any(|f| f.data["data"]["value"] == "after.example")).await;
    assert!(seen.iter().any(|f| f.data["data"]["type"] == "network-traffic"));
    assert!(seen.iter().all(|f| f.event != "delete"), "{:?}", seen.iter().map(|f| &f.event).collect::<Vec<_>>());
}

async fn bad_positions_and_unknown_organisations_are_refused(bus: Bus) {
    let s = server(bus);
    s.fails(axum::http::Method::GET, "/acme/stream?from=yesterday", None, 400).await;
    s.fails(axum::http::Method::GET, "/acme/stream?with-inferences=maybe", None, 400).await;
    s.fails(axum::http::Method::GET, "/ghost/stream", None, 404).await;
}

async fn recover_sends_the_graph_as_of_a_date_then_what_followed(bus: Bus) {
    let s = server(bus);
    declare(&s, json!({"object_type": "Network", "name": "internet"})).await;
    declare(&s, json!({"object_type": "Hostname", "network": "Network|internet", "name": "before.example"})).await;
    tokio::time::sleep(Duration::from_millis(5)).await;
    let date = octo_store::Timestamp::now();
    tokio::time::sleep(Duration::from_millis(5)).await;
    declare(&s, json!({"object_type": "Hostname", "network": "Network|internet", "name": "after.example"})).await;
    let (st, _) =
        s.send(axum::http::Method::DELETE, "/acme/?reference=Hostname%7Cinternet%7Cbefore.example", None, None).await;
    assert_eq!(st, 200);

    let query = format!("?recover={}", common::q(&date.to_string()));
    let mut stream = Stream::open(&s, &query, None).await;
    let (frames, _) = stream.until_heartbeat().await;
    let recovered: Vec<&Frame> = frames
        .iter()
        .filter(|f| f.data["origin"]["cause"] == "recover" || f.data["origin"]["cause"] == "dependency")
        .collect();
    let values: Vec<&Value> = recovered.iter().map(|f| &f.data["data"]["value"]).collect();
    assert!(values.contains(&&json!("before.example")), "the snapshot holds what existed then: {values:?}");
    assert!(!values.contains(&&json!("after.example")), "and not what came later");
    // The snapshot equals the graph as of the date (what is not inferred only).
    let (_, page) = s.get(&format!("/acme/objects?limit=1000&valid_time={}", common::q(&date.to_string()))).await;
    let inferred =
        |key: &str| key.starts_with("Question|") || key.starts_with("Finding|") || key.contains("FindingType|");
    let mut want: Vec<String> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["primary_key"].as_str().unwrap().to_owned())
        .filter(|k| !inferred(k))
        .collect();
    let mut got: Vec<String> = recovered
        .iter()
        .map(|f| {
            let ext = f.data["data"]["extensions"].as_object().unwrap().values().next().unwrap();
            f.data["data"]["primary_key"].as_str().or(ext["primary_key"].as_str()).unwrap().to_owned()
        })
        .collect();
    want.sort();
    got.sort();
    assert_eq!(got, want);
    // Then the changes after the date, in order.
    let after: Vec<(&str, &Value)> = frames
        .iter()
        .filter(|f| f.data["origin"]["cause"] != "recover")
        .map(|f| (f.event.as_str(), &f.data["data"]["value"]))
        .collect();
    assert!(after.contains(&("create", &json!("after.example"))), "{after:?}");
    assert!(after.contains(&("delete", &json!("before.example"))), "{after:?}");
    s.fails(axum::http::Method::GET, "/acme/stream?recover=someday", None, 400).await;
}

async fn live_streams_filter_and_an_object_leaving_the_view_arrives_as_a_delete(bus: Bus) {
    let s = server(bus);
    use axum::http::Method;
    // Management: create, list, get, update, delete, and refusals.
    let body = json!({"name": "open ports", "filters": {"mode": "and", "filters": [
        {"key": "entity_type", "values": ["IPPort"]},
        {"key": "field:state", "values": ["open"]}]}});
    let (st, created) = s.send(Method::POST, "/acme/streams", Some(body.clone()), None).await;
    assert_eq!(st, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    let (_, list) = s.get("/acme/streams").await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    let (_, one) = s.get(&format!("/acme/streams/{id}")).await;
    assert_eq!(one["name"], "open ports");
    let mut renamed = body.clone();
    renamed["name"] = json!("open ports, renamed");
    let (st, _) = s.send(Method::PUT, &format!("/acme/streams/{id}"), Some(renamed), None).await;
    assert_eq!(st, 200);
    assert_eq!(s.get(&format!("/acme/streams/{id}")).await.1["name"], "open ports, renamed");
    for (bad, needle) in [
        (json!({"name": "x", "filters": {"filters": [{"key": "colour", "values": ["red"]}]}}), "unknown filter key"),
        (json!({"name": "x", "filters": {"filters": [{"key": "entity_type", "values": ["Starship"]}]}}), "Starship"),
        (json!({"name": "x", "filters": {"filters": [{"key": "scan_level", "values": [9]}]}}), "0 to 4"),
        (
            json!({"name": "x", "filters": {"filters": [{"key": "origin_method", "values": ["m"], "operator": "gt"}]}}),
            "operator",
        ),
    ] {
        let msg = s.fails(Method::POST, "/acme/streams", Some(bad), 400).await;
        assert!(msg.contains(needle), "{msg}");
    }
    s.fails(Method::POST, "/acme/streams", Some(json!({"filters": {}})), 422).await;
    s.fails(Method::GET, "/acme/streams/nope", None, 404).await;
    s.fails(Method::GET, "/acme/stream/nope", None, 404).await;
    s.fails(Method::PUT, "/acme/streams/nope", Some(body.clone()), 404).await;

    // The stream carries open ports only; a port that closes leaves the view as a delete.
    declare(&s, json!({"object_type": "Network", "name": "internet"})).await;
    declare(&s, json!({"object_type": "IPAddressV4", "network": "Network|internet", "address": "192.0.2.5"})).await;
    let mut stream = Stream::open_path(&s, &format!("/acme/stream/{id}?no-dependencies=true"), None).await;
    stream.until_heartbeat().await;
    let ip = "IPAddressV4|internet|192.0.2.5";
    let observe = |state: &str, port: u16| {
        json!({"method": "nmap", "source": ip, "result": [
        {"object_type": "IPPort", "address": ip, "protocol": "tcp", "port": port, "state": state}]})
    };
    assert_eq!(s.post("/acme/observations", observe("filtered", 80)).await.0, 200);
    assert_eq!(s.post("/acme/observations", observe("open", 22)).await.0, 200);
    let frames = stream.until(|fs| fs.iter().any(|f| f.data["data"]["dst_port"] == 22)).await;
    assert!(
        frames.iter().all(|f| f.data["data"]["type"] == "network-traffic" && f.data["data"]["dst_port"] == 22),
        "only the open port: {frames:?}"
    );
    assert_eq!(s.post("/acme/observations", observe("filtered", 22)).await.0, 200);
    let frames = stream.until(|fs| !fs.is_empty()).await;
    assert_eq!(frames[0].event, "delete", "{frames:?}");
    assert_eq!(frames[0].data["data"]["dst_port"], 22);

    let (st, _) = s.send(Method::DELETE, &format!("/acme/streams/{id}"), None, None).await;
    assert_eq!(st, 200);
    s.fails(Method::GET, &format!("/acme/streams/{id}"), None, 404).await;
}

async fn a_position_older_than_the_retention_gets_an_error_event(bus: Bus) {
    let s = server(bus);
    for name in ["a.example", "b.example", "c.example"] {
        declare(&s, json!({"object_type": "Hostname", "network": "Network|internet", "name": name})).await;
    }
    let mut all = Stream::open(&s, "?from=0&with-inferences=true", None).await;
    let (frames, _) = all.until_heartbeat().await;
    let first = frames.iter().filter_map(|f| f.id.clone()).find(|id| id != "0-0").unwrap();
    let config = octo_server::ServerConfig { retention_events: Some(3), ..Default::default() };
    assert!(octo_server::trim_events(&s.state, &config).await.unwrap() > 0);
    assert_eq!(octo_server::trim_events(&s.state, &config).await.unwrap(), 0, "already trimmed");

    let mut stale = Stream::open(&s, "", Some(&first)).await;
    assert_eq!(stale.next().await.unwrap().event, "connected");
    let error = stale.next().await.unwrap();
    assert_eq!(error.event, "error");
    assert_eq!(error.data["code"], "RETENTION");
    assert!(stale.next().await.is_none(), "and the stream ends");
    // From the start of what is held is fine.
    let mut fresh = Stream::open(&s, "?from=0&with-inferences=true", None).await;
    let (rest, _) = fresh.until_heartbeat().await;
    assert!(!rest.is_empty() && rest.len() < frames.len());
}

async fn markings_decide_who_sees_an_object(bus: Bus) {
    use axum::http::Method;
    use octo_stream::Tlp;
    let s = common::server_on(true, &["acme"], bus);
    s.state.set_heartbeat(Duration::from_millis(150));
    let writer = s.token(&["acme"], octo_server::auth::Role::Write);
    let green = s.token_cleared(&["acme"], octo_server::auth::Role::Read, Some(Tlp::Green));
    let w = Some(writer.as_str());
    for name in ["open.example", "secret.example"] {
        let body = json!({"ooi": {"object_type": "Hostname", "network": "Network|internet", "name": name}});
        assert_eq!(s.send(Method::POST, "/acme/declarations", Some(body), w).await.0, 200);
    }
    // The API: default CLEAR, an object's own marking, refusals.
    let (_, v) = s.send(Method::GET, "/acme/markings/default", None, w).await;
    assert_eq!(v["marking"], "TLP:CLEAR");
    let secret = "Hostname|internet|secret.example";
    let mut green_stream = Stream::open_as(&s, "/acme/stream?from=0", None, Some(&green)).await;
    let (before, _) = green_stream.until_heartbeat().await;
    assert!(before.iter().any(|f| f.data["data"]["value"] == "secret.example"), "CLEAR at first");
    assert_eq!(before[0].data["data"]["object_marking_refs"], json!([Tlp::Clear.stix_id()]));
    let mut red_stream = Stream::open_as(&s, "/acme/stream", None, Some(&writer)).await;
    red_stream.until_heartbeat().await;

    let (st, v) =
        s.send(Method::PUT, "/acme/markings", Some(json!({"reference": secret, "marking": "amber"})), w).await;
    assert_eq!(st, 200, "{v}");
    let (_, v) = s.send(Method::GET, &format!("/acme/markings?reference={}", common::q(secret)), None, w).await;
    assert_eq!((v["marking"].as_str(), v["own"].as_bool()), (Some("TLP:AMBER"), Some(true)));
    for (method, uri, body, status) in [
        (Method::PUT, "/acme/markings".to_owned(), Some(json!({"reference": secret, "marking": "TLP:PURPLE"})), 400),
        (
            Method::PUT,
            "/acme/markings".to_owned(),
            Some(json!({"reference": "Hostname|internet|none.example", "marking": "red"})),
            404,
        ),
        (Method::PUT, "/acme/markings/default".to_owned(), Some(json!({"marking": "blue"})), 400),
        (Method::GET, "/acme/markings".to_owned(), None, 422),
    ] {
        let (st, v) = s.send(method, &uri, body, w).await;
        assert_eq!(st.as_u16(), status, "{uri}: {v}");
    }
    assert_eq!(
        s.send(Method::PUT, "/acme/markings", Some(json!({"reference": secret, "marking": "red"})), Some(&green))
            .await
            .0,
        403,
        "a reader cannot mark"
    );

    // Marked beyond GREEN: gone for the green consumer, an update of its marking for the other.
    let gone = green_stream.until(|fs| !fs.is_empty()).await;
    assert_eq!((gone[0].event.as_str(), &gone[0].data["data"]["value"]), ("delete", &json!("secret.example")));
    let changed = red_stream.until(|fs| !fs.is_empty()).await;
    assert_eq!(changed[0].event, "update");
    assert_eq!(changed[0].data["data"]["object_marking_refs"], json!([Tlp::Amber.stix_id()]));
    // A green consumer starting now never sees it; clearing the marking brings it back.
    let mut late = Stream::open_as(&s, "/acme/stream?from=0", None, Some(&green)).await;
    let (frames, _) = late.until_heartbeat().await;
    let secret_frames: Vec<&str> =
        frames.iter().filter(|f| f.data["data"]["value"] == "secret.example").map(|f| f.event.as_str()).collect();
    assert_eq!(secret_frames, ["create", "delete"], "replayed as it happened: created while CLEAR, then gone");
    let (st, _) = s.send(Method::DELETE, &format!("/acme/markings?reference={}", common::q(secret)), None, w).await;
    assert_eq!(st, 200);
    let back = green_stream.until(|fs| !fs.is_empty()).await;
    assert_eq!((back[0].event.as_str(), &back[0].data["data"]["value"]), ("create", &json!("secret.example")));
}

async fn a_consumer_that_falls_behind_the_retention_is_told(bus: Bus) {
    let s = server(bus);
    declare(&s, json!({"object_type": "Network", "name": "internet"})).await;
    let many: Vec<Value> = (0..1500)
        .map(|i| json!({"ooi": {"object_type": "Hostname", "network": "Network|internet", "name": format!("h{i}.example")}}))
        .collect();
    for chunk in many.chunks(100) {
        let (st, v) = s.post("/acme/declarations/save_many", json!(chunk)).await;
        assert_eq!(st, 200, "{v}");
    }
    // Connected from the start but not reading: the server stops at what its buffers hold.
    let mut slow = Stream::open(&s, "?from=0&with-inferences=true&no-dependencies=true", None).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let config = octo_server::ServerConfig { retention_events: Some(10), ..Default::default() };
    assert!(octo_server::trim_events(&s.state, &config).await.unwrap() > 1000);
    // Reading on, it gets what was buffered, then the error instead of a jump.
    let mut last = None;
    while let Some(f) = slow.next().await {
        if f.event == "error" {
            last = Some(f);
            break;
        }
    }
    let error = last.expect("an error event");
    assert_eq!(error.data["code"], "RETENTION", "{:?}", error.data);
    assert!(slow.next().await.is_none(), "and the stream ends");
}

#[tokio::test]
async fn with_the_bus_streams_read_redis_not_the_store() {
    let s = server(Bus::Redis);
    for name in ["a.example", "b.example"] {
        declare(&s, json!({"object_type": "Hostname", "network": "Network|internet", "name": name})).await;
    }
    let mut all = Stream::open(&s, "?from=0&with-inferences=true", None).await;
    let (before, _) = all.until_heartbeat().await;
    assert!(!before.is_empty());
    // The store's own log emptied behind the bus's back: the bus still has every event.
    let graph = s.state.shared().organisations.get("acme").unwrap();
    assert!(graph.store().trim_events(Some(0), None, 10_000).unwrap() > 0);
    assert!(graph.store().snapshot().unwrap().events(octo_store::EventPosition::Start, 10).unwrap().is_empty());
    let mut again = Stream::open(&s, "?from=0&with-inferences=true", None).await;
    let (replayed, _) = again.until_heartbeat().await;
    let ids = |fs: &[Frame]| {
        fs.iter().map(|f| (f.id.clone(), f.event.clone(), f.data["data"]["id"].clone())).collect::<Vec<_>>()
    };
    assert_eq!(ids(&replayed), ids(&before));
    // A write after it reaches a live consumer through Redis.
    declare(&s, json!({"object_type": "Hostname", "network": "Network|internet", "name": "c.example"})).await;
    let live = again.until(|fs| fs.iter().any(|f| f.data["data"]["value"] == "c.example")).await;
    assert_eq!(live.last().unwrap().event, "create");
}

/// Consumers catching up read events the framer prepared and stored once; what they get must be
/// what a consumer watching live got, under each option, and resuming anywhere in the prepared
/// events must give the rest of it.
async fn a_catch_up_from_prepared_events_is_the_live_stream_again(bus: Bus) {
    let s = server(bus);
    let options = ["", "?with-inferences=true", "?no-dependencies=true", "?listen-delete=false"];
    let mut live = Vec::new();
    for o in options {
        let mut stream = Stream::open(&s, o, None).await;
        stream.until_heartbeat().await;
        live.push(stream);
    }
    // Creates, updates, references (dependencies, relationships), inferences and a cascade.
    declare(&s, json!({"object_type": "Network", "name": "internet"})).await;
    let ip = "IPAddressV4|internet|192.0.2.9";
    declare(&s, json!({"object_type": "IPAddressV4", "network": "Network|internet", "address": "192.0.2.9"})).await;
    declare(&s, json!({"object_type": "Hostname", "network": "Network|internet", "name": "prepared.example"})).await;
    for state in ["open", "filtered"] {
        let result = json!([{"object_type": "IPPort", "address": ip, "protocol": "tcp", "port": 23, "state": state}]);
        let (st, v) = s.post("/acme/observations", json!({"method": "nmap", "source": ip, "result": result})).await;
        assert_eq!(st, 200, "{v}");
    }
    let (st, v) =
        s.send(axum::http::Method::DELETE, "/acme/?reference=IPAddressV4%7Cinternet%7C192.0.2.9", None, None).await;
    assert_eq!(st, 200, "{v}");

    let last = {
        let graph = s.state.shared().organisations.get("acme").unwrap();
        let snapshot = graph.store().snapshot().unwrap();
        snapshot.event_bounds().unwrap().unwrap().1
    };
    let mut waited = 0;
    while s.state.stream_prepared_until("acme") < Some(last) {
        assert!(waited < 200, "the framer prepares what was written");
        tokio::time::sleep(Duration::from_millis(50)).await;
        waited += 1;
    }
    // The frame ids of an event's leading frames (its dependencies) are a position before it,
    // which may name another event live than in a catch-up: both resume before the event.
    let content = |f: &Frame| (f.event.clone(), f.data.clone());
    for (o, stream) in options.iter().zip(&mut live) {
        let mut seen_live = Vec::new();
        loop {
            let f = stream.next().await.expect("the live stream goes on");
            match f.event.as_str() {
                "heartbeat" if f.id.as_deref() == Some(last.to_string().as_str()) => break,
                "heartbeat" => {}
                _ => seen_live.push(f),
            }
        }
        assert!(
            seen_live.iter().any(|f| f.event == "delete") || o.contains("listen-delete=false"),
            "{o}: {seen_live:?}"
        );
        let query = if o.is_empty() { "?from=0".to_owned() } else { format!("{o}&from=0") };
        let mut replay = Stream::open(&s, &query, None).await;
        let (replayed, _) = replay.until_heartbeat().await;
        assert_eq!(
            replayed.iter().map(content).collect::<Vec<_>>(),
            seen_live.iter().map(content).collect::<Vec<_>>(),
            "{o}: the catch-up is the live stream again"
        );
        // Resuming after any event: the rest.
        let pos = |f: &Frame| {
            let (ms, seq) = f.id.as_deref().and_then(|i| i.split_once('-')).unwrap();
            (ms.parse::<u64>().unwrap(), seq.parse::<u64>().unwrap())
        };
        for (k, f) in replayed.iter().enumerate().step_by(3) {
            let (id, at) = (f.id.clone().unwrap(), pos(f));
            let resume = if o.is_empty() { "?no-dependencies=false".to_owned() } else { o.to_string() };
            let mut resumed = Stream::open(&s, &resume, Some(&id)).await;
            let (rest, _) = resumed.until_heartbeat().await;
            let after = |fs: &[Frame]| -> Vec<Value> {
                fs.iter().filter(|g| pos(g) > at).map(|g| g.data["data"]["id"].clone()).collect()
            };
            let (later, got) = (after(&replayed[k..]), after(&rest));
            assert!(!later.is_empty() || k + 3 >= replayed.len() || pos(&replayed[replayed.len() - 1]) == at);
            if o.contains("no-dependencies") {
                assert_eq!(got, later, "{o}: after {id}, the rest");
            } else {
                assert!(later.iter().all(|x| got.contains(x)), "{o}: after {id}, the rest (and dependencies afresh)");
            }
        }
    }
}
