//! The log pipeline's routes: devices, stored lines, counters, auth, bad input.

mod common;

use axum::http::{Method, StatusCode};
use octo_logs::{LogsConfig, Pipeline, RawLine, Transport};
use octo_server::auth::Role;
use serde_json::json;

fn with_logs(s: &common::TestServer) -> std::sync::Arc<Pipeline> {
    let logs = Pipeline::open(&s.dir.path().join("logs.d"), LogsConfig::default()).unwrap();
    s.state.set_logs(logs.clone());
    logs
}

fn line(t: &str, text: &str) -> RawLine {
    RawLine {
        received: t.parse().unwrap(),
        peer: Some("192.0.2.7:40000".parse().unwrap()),
        transport: Transport::Udp,
        bytes: text.to_owned().into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn devices_can_be_declared_changed_listed_and_removed() {
    let s = common::server(false, &[]);
    let (status, body) = s.send(Method::GET, "/logs/devices", None, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "no pipeline yet: {body}");
    assert!(body["detail"].as_str().unwrap().contains("log pipeline"));
    with_logs(&s);
    let fw = json!({"name": "fw1", "address": "192.0.2.1", "type": "Firewall", "model": "ASA 5506", "services": ["Cisco_ASA"]});
    let (status, body) = s.send(Method::POST, "/logs/devices", Some(fw.clone()), None).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["status"], "pending");
    assert_eq!(body["lines_received"], 0);
    let (status, _) = s.send(Method::POST, "/logs/devices", Some(fw), None).await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, body) = s
        .send(
            Method::PATCH,
            "/logs/devices/fw1",
            Some(json!({"status": "active", "model": null, "timezone": "Europe/Amsterdam"})),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        (body["status"].as_str(), body.get("model"), body["timezone"].as_str()),
        (Some("active"), None, Some("Europe/Amsterdam"))
    );
    let (status, body) = s.send(Method::GET, "/logs/devices", None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body.as_array().unwrap().len(), 1);
    let (status, _) = s.send(Method::DELETE, "/logs/devices/fw1", None, None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = s.send(Method::GET, "/logs/devices/fw1", None, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_a_message_and_changes_nothing() {
    let s = common::server(false, &[]);
    let logs = with_logs(&s);
    s.send(Method::POST, "/logs/devices", Some(json!({"name": "ok"})), None).await;
    let before = logs.devices().devices();
    let cases = [
        (Method::POST, "/logs/devices", Some(json!({"name": "../etc"})), StatusCode::BAD_REQUEST),
        (Method::POST, "/logs/devices", Some(json!({"name": "x", "colour": "red"})), StatusCode::UNPROCESSABLE_ENTITY),
        (
            Method::POST,
            "/logs/devices",
            Some(json!({"name": "x", "address": "not-an-ip"})),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (Method::POST, "/logs/devices", Some(json!("{not json")), StatusCode::UNPROCESSABLE_ENTITY),
        (Method::PATCH, "/logs/devices/ok", Some(json!({"status": "sleeping"})), StatusCode::BAD_REQUEST),
        (Method::PATCH, "/logs/devices/ok", Some(json!({"name": "renamed"})), StatusCode::BAD_REQUEST),
        (Method::PATCH, "/logs/devices/ok", Some(json!({"timezone": "Mars/Olympus"})), StatusCode::BAD_REQUEST),
        (Method::PATCH, "/logs/devices/none", Some(json!({"status": "active"})), StatusCode::NOT_FOUND),
        (Method::GET, "/logs/devices/ok/lines?from=yesterday", None, StatusCode::UNPROCESSABLE_ENTITY),
        (Method::GET, "/logs/devices/ok/lines?limit=-1", None, StatusCode::UNPROCESSABLE_ENTITY),
        (Method::GET, "/logs/devices/ok/lines?limit=1000000", None, StatusCode::BAD_REQUEST),
        (Method::GET, "/logs/devices/none/lines", None, StatusCode::NOT_FOUND),
        (Method::DELETE, "/logs/devices/none", None, StatusCode::NOT_FOUND),
    ];
    for (method, uri, body, want) in cases {
        let (status, answer) = s.send(method.clone(), uri, body.clone(), None).await;
        assert_eq!(status, want, "{method} {uri} {body:?}: {answer}");
        assert!(answer["message"].as_str().is_some_and(|m| !m.is_empty()), "{method} {uri}: {answer}");
    }
    assert_eq!(logs.devices().devices(), before);
    // The name `logs` is the pipeline's, not an organisation's.
    let (status, answer) = s.send(Method::POST, "/logs/node", None, None).await;
    assert!(status.is_client_error(), "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stored_lines_by_time_range_with_parsed_headers() {
    let s = common::server(false, &[]);
    let logs = with_logs(&s);
    let lines: Vec<RawLine> = (0..30)
        .map(|i| {
            line(
                &format!("2026-12-01T10:{i:02}:00Z"),
                &format!(
                    "<38>Dec  1 10:{i:02}:00 web1 sshd[42]: Failed password for root from 203.0.113.9 port {i} ssh2"
                ),
            )
        })
        .collect();
    logs.ingest(lines).await.unwrap();
    let (status, body) = s
        .send(
            Method::GET,
            "/logs/devices/web1/lines?from=2026-12-01T10:10:00Z&to=2026-12-01T10:20:00Z&limit=5",
            None,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let got = body["lines"].as_array().unwrap();
    assert_eq!(got.len(), 5);
    assert_eq!(body["more"], true);
    assert_eq!(got[0]["received"], "2026-12-01T10:10:00Z");
    assert_eq!(got[0]["parsed"]["app_name"], "sshd");
    assert_eq!(got[0]["parsed"]["facility"], "auth");
    assert_eq!(got[0]["peer"], "192.0.2.7:40000");
    assert_eq!(got[0]["message"]["id"], "Sshd:failed");
    // A device whose services do not know these lines: they are unknown, in one group.
    s.send(Method::PATCH, "/logs/devices/web1", Some(json!({"services": ["Pam"]})), None).await;
    let (status, groups) = s.send(Method::GET, "/logs/devices/web1/unknown", None, None).await;
    assert_eq!(status, StatusCode::OK, "{groups}");
    assert_eq!(groups.as_array().unwrap().len(), 1, "{groups}");
    assert_eq!(groups[0]["count"], 30);
    assert_eq!(groups[0]["verified"], true);
    assert_eq!(groups[0]["shape"], "Failed password for root from <IP_ADDR> port <NUMBER> <WORD>");
    let (status, _) = s.send(Method::GET, "/logs/devices/nobody/unknown", None, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, body) = s.send(Method::GET, "/logs/devices/web1", None, None).await;
    assert_eq!(body["lines_received"], 30);
    let (_, stats) = s.send(Method::GET, "/logs/stats", None, None).await;
    assert_eq!(stats["received"]["udp"]["lines"], 30);
    assert_eq!(stats["stored_lines"], 30);
    assert!(stats["raw_store_bytes"].as_u64().unwrap() > 0);
    let metrics = s.send(Method::GET, "/metrics", None, None).await.1;
    let text = metrics.as_str().unwrap_or_default().to_owned();
    assert!(text.contains(r#"octograph_syslog_lines{transport="udp"} 30"#), "{text}");
    assert!(text.contains(r#"octograph_syslog{counter="stored_lines"} 30"#), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_reach_logs_only_through_the_logs_organisation() {
    let s = common::server(true, &["acme"]);
    with_logs(&s);
    let acme = s.token(&["acme"], Role::Admin);
    let reader = s.token(&["logs"], Role::Read);
    let writer = s.token(&["logs"], Role::Write);
    let (status, _) = s.send(Method::GET, "/logs/devices", None, Some(&acme)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = s.send(Method::GET, "/logs/devices", None, Some(&reader)).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = s.send(Method::POST, "/logs/devices", Some(json!({"name": "d"})), Some(&reader)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = s.send(Method::POST, "/logs/devices", Some(json!({"name": "d"})), Some(&writer)).await;
    assert_eq!(status, StatusCode::CREATED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_are_managed_through_the_api_and_apply_at_once() {
    let s = common::server(false, &[]);
    let logs = with_logs(&s);
    let (status, list) = s.send(Method::GET, "/logs/services", None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(list.as_array().unwrap().iter().any(|x| x["name"] == "Sshd" && x["origin"] == "builtin"));
    let (status, sshd) = s.send(Method::GET, "/logs/services/Sshd", None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(sshd["messages"].as_array().unwrap().len() > 5);
    // A new service, as TOML, classifies at once.
    let line = "<13>Dec  1 10:00:00 app1 myapp: order 42 shipped to 198.51.100.4";
    let device = octo_logs::Device::named("app1");
    let raw = line_at(line);
    assert!(logs.describe(&device, &raw)["message"].is_null());
    let toml = "name = \"MyApp\"\nprograms = [\"myapp\"]\n[[message]]\nname = \"shipped\"\npattern = \"order <@NUMBER:order@> shipped to <@IP:address@>\"\nlevel = \"info\"\ntaxonomy = \"Application\"\n";
    let (status, saved) = s.send(Method::PUT, "/logs/services/MyApp", Some(json!(toml)), None).await;
    assert_eq!(status, StatusCode::OK, "{saved}");
    assert_eq!(saved["origin"], "imported");
    assert_eq!(logs.describe(&device, &raw)["message"]["id"], "MyApp:shipped");
    // Bad services are refused with the place named, and change nothing.
    let bad = toml.replace("<@NUMBER:order@>", "<@NOPE:order@>");
    let (status, answer) = s.send(Method::PUT, "/logs/services/MyApp", Some(json!(bad)), None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(answer["message"].as_str().unwrap().contains("MyApp:shipped"), "{answer}");
    let (status, _) = s.send(Method::PUT, "/logs/services/Other", Some(json!(toml)), None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "the name in the path must be the service's");
    let (status, _) = s.send(Method::PUT, "/logs/services/MyApp", Some(json!("name = ")), None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(logs.describe(&device, &raw)["message"]["id"], "MyApp:shipped");
    // Removed: unknown again; built-in services cannot be removed.
    let (status, _) = s.send(Method::DELETE, "/logs/services/MyApp", None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(logs.describe(&device, &raw)["message"].is_null());
    let (status, _) = s.send(Method::DELETE, "/logs/services/Sshd", None, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = s.send(Method::GET, "/logs/services/MyApp", None, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

fn line_at(text: &str) -> RawLine {
    line("2026-12-01T10:00:00Z", text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tables_answer_rows_and_grouped_counts() {
    let s = common::server(false, &[]);
    let logs = Pipeline::open(
        &s.dir.path().join("logs.d"),
        LogsConfig { new_devices: octo_logs::device::NewDevices::Active, ..LogsConfig::default() },
    )
    .unwrap();
    s.state.set_logs(logs.clone());
    let lines: Vec<RawLine> = (0..40)
        .map(|i| {
            let text = if i % 4 == 0 {
                format!(
                    "<38>Dec  1 10:{i:02}:00 web1 sshd[42]: Accepted publickey for alice from 192.0.2.1 port {i} ssh2"
                )
            } else {
                format!(
                    "<38>Dec  1 10:{i:02}:00 web1 sshd[42]: Failed password for root from 203.0.113.{} port {i} ssh2",
                    i % 2
                )
            };
            line(&format!("2026-12-01T10:{i:02}:00Z"), &text)
        })
        .collect();
    logs.ingest(lines).await.unwrap();
    tokio::task::spawn_blocking({
        let l = logs.clone();
        move || l.flush_tables()
    })
    .await
    .unwrap()
    .unwrap();
    let (status, body) = s.send(Method::GET, "/logs/tables", None, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let auth = body.as_array().unwrap().iter().find(|t| t["name"] == "Auth").unwrap().clone();
    assert_eq!(auth["rows"], 40);
    assert_eq!(auth["columns"]["src_ip"], "ip");
    let (status, body) = s
        .send(
            Method::GET,
            "/logs/tables/Auth/counts?filter=taxonomy%3DAuth.Failure&group=src_ip&from=2026-12-01",
            None,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["groups"], json!([{"src_ip": "203.0.113.1", "count": 20}, {"src_ip": "203.0.113.0", "count": 10}]));
    assert_eq!(body["matched"], 30);
    let (status, body) =
        s.send(Method::GET, "/logs/tables/Auth/counts?bucket=15m&filter=user%3Dalice", None, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["groups"][0], json!({"time": "2026-12-01T10:00:00Z", "count": 4}));
    let (status, body) = s
        .send(
            Method::GET,
            "/logs/tables/Auth/rows?filter=src_ip~192.0.2.0%2F24&filter=src_port%3E%3D30&limit=2",
            None,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["matched"], 2, "{body}");
    let rows = body["rows"].as_array().unwrap();
    assert_eq!((rows.len(), &rows[0]["src_port"], &rows[0]["time"]), (2, &json!(36), &json!("2026-12-01T10:36:00Z")));
    for (path, status) in [
        ("/logs/tables/Nope/rows", StatusCode::NOT_FOUND),
        ("/logs/tables/Auth/rows?filter=colour%3Dred", StatusCode::BAD_REQUEST),
        ("/logs/tables/Auth/rows?filter=src_port%3Dssh", StatusCode::BAD_REQUEST),
        ("/logs/tables/Auth/rows?last=forever", StatusCode::BAD_REQUEST),
        ("/logs/tables/Auth/rows?group=user", StatusCode::BAD_REQUEST),
        ("/logs/tables/Auth/counts", StatusCode::BAD_REQUEST),
        ("/logs/tables/Auth/counts?group=a,b,c,d,e", StatusCode::BAD_REQUEST),
        ("/logs/tables/Auth/rows?limit=1000000", StatusCode::BAD_REQUEST),
    ] {
        let (got, body) = s.send(Method::GET, path, None, None).await;
        assert_eq!(got, status, "{path}: {body}");
        assert!(body["detail"].is_string(), "{path}: {body}");
    }
}
