//! Checks against the Python ecosystem consumers use: every STIX object validates with the
//! `stix2` library and `stix2-validator`, and a real SSE client library (`sseclient-py`) reads
//! and resumes the change stream. The tests make their own virtualenv (under the target
//! directory, kept between runs) with the packages from PyPI; they need `python3`.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use octo_model::Catalog;
use octo_stream::stix::{extension_definition, organisation_identity, to_stix};
use serde_json::{json, Value};

/// The virtualenv's interpreter, made on first use. The tests of this file run on parallel
/// threads, and two pip installs into one venv break each other, so setup is serialised; a venv
/// left half-made by an interrupted run is made again from scratch.
fn python() -> PathBuf {
    static SETUP: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _setup = SETUP.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join("python-venv");
    let python = venv.join("bin/python");
    let ready = venv.join("ready");
    if !ready.exists() {
        if venv.exists() {
            std::fs::remove_dir_all(&venv).unwrap();
        }
        let ok = Command::new("python3").args(["-m", "venv"]).arg(&venv).status().expect("python3 is needed");
        assert!(ok.success(), "python3 -m venv failed");
        let ok = Command::new(&python)
            .args(["-m", "pip", "install", "--quiet", "stix2==3.0.2", "stix2-validator==3.2.0", "sseclient-py==1.9.0"])
            .status()
            .unwrap();
        assert!(ok.success(), "pip install failed");
        std::fs::write(&ready, "").unwrap();
    }
    python
}

const CHECK: &str = r#"
import json, sys
import stix2
from stix2validator import validate_instance, ValidationOptions
objects = json.load(open(sys.argv[1]))
bad = 0
for obj in objects:
    try:
        stix2.parse(obj, allow_custom=True)
    except Exception as e:
        print("stix2.parse", obj["id"], e); bad += 1; continue
    result = validate_instance(obj, ValidationOptions(strict=False))
    if not result.is_valid:
        print("validator", obj["id"], [str(e) for e in result.errors]); bad += 1
print(len(objects), "objects,", bad, "invalid")
sys.exit(1 if bad else 0)
"#;

fn samples(catalog: &Catalog) -> Vec<Value> {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/attack-surface.json");
    let mut docs: Vec<Value> = serde_json::from_str(&std::fs::read_to_string(example).unwrap()).unwrap();
    docs.extend([
        json!({"object_type": "IPAddressV6", "network": "Network|internet", "address": "2001:db8::1"}),
        json!({"object_type": "URL", "network": "Network|internet", "raw": "https://example.com/a"}),
        json!({"object_type": "AutonomousSystem", "number": "64500", "name": "EXAMPLE-AS"}),
        json!({"object_type": "X509Certificate", "issuer": "Example CA", "serial_number": "0a1b2c", "subject": "example.com",
               "valid_from": "2026-01-01T00:00:00", "valid_until": "2027-01-01T00:00:00"}),
        json!({"object_type": "CVEFindingType", "id": "CVE-2021-41773", "description": "Path traversal in Apache 2.4.49"}),
        json!({"object_type": "Finding", "ooi": "Hostname|internet|example.com", "finding_type": "CVEFindingType|CVE-2021-41773",
               "description": "Apache 2.4.49"}),
    ]);
    docs.iter().map(|d| catalog.ooi_from_json(d).unwrap().to_json()).collect()
}

#[test]
fn mapped_objects_validate_with_stix2() {
    let catalog = Catalog::builtin();
    let mut objects = vec![extension_definition(), organisation_identity("acme", "2026-11-23T10:00:00Z")];
    for doc in samples(&catalog) {
        objects.extend(to_stix(&doc, &catalog, "2026-11-23T10:00:00Z"));
    }
    let types: std::collections::BTreeSet<&str> = objects.iter().filter_map(|o| o["type"].as_str()).collect();
    for t in [
        "ipv4-addr",
        "ipv6-addr",
        "domain-name",
        "network-traffic",
        "software",
        "url",
        "x509-certificate",
        "autonomous-system",
        "note",
        "vulnerability",
        "identity",
        "relationship",
        "x-octograph-object",
    ] {
        assert!(types.contains(t), "no {t} among the samples: {types:?}");
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("objects.json");
    std::fs::write(&file, serde_json::to_vec(&objects).unwrap()).unwrap();
    let out = Command::new(python()).args(["-c", CHECK]).arg(&file).output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{text}");
    assert!(text.contains(&format!("{} objects, 0 invalid", objects.len())), "{text}");
}

const SSE_CLIENT: &str = r#"
import json, sys, urllib.request
import sseclient
url, token, last = sys.argv[1], sys.argv[2], sys.argv[3]
headers = {"Authorization": "Bearer " + token, "Accept": "text/event-stream"}
if last:
    headers["Last-Event-ID"] = last
response = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=30)
seen = []
for event in sseclient.SSEClient(response).events():
    if event.event == "heartbeat":
        break
    if event.event == "connected":
        continue
    seen.append({"id": event.id, "event": event.event, "type": json.loads(event.data)["data"]["type"],
                 "value": json.loads(event.data)["data"].get("value")})
response.close()
print(json.dumps(seen))
"#;

#[test]
fn a_real_sse_client_reads_and_resumes_the_stream() {
    let s = common::server(true, &["acme"]);
    s.state.set_heartbeat(std::time::Duration::from_millis(300));
    let token = s.token(&["acme"], octo_server::auth::Role::Write);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let url = format!("http://{}/acme/stream", listener.local_addr().unwrap());
    runtime.spawn(octo_server::serve(listener, s.app.clone(), std::future::pending()));
    let declare = |name: &str| {
        let body = json!({"ooi": {"object_type": "Hostname", "network": "Network|internet", "name": name}});
        let (st, v) =
            runtime.block_on(s.send(axum::http::Method::POST, "/acme/declarations", Some(body), Some(&token)));
        assert_eq!(st, 200, "{v}");
    };
    declare("one.example");
    declare("two.example");
    let read = |query: &str, last: &str| -> Vec<Value> {
        let out =
            Command::new(python()).args(["-c", SSE_CLIENT, &format!("{url}{query}"), &token, last]).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let first = read("?from=0", "");
    let names: Vec<&Value> = first.iter().filter(|e| e["type"] == "domain-name").map(|e| &e["value"]).collect();
    assert_eq!(names, [&json!("one.example"), &json!("two.example")], "{first:?}");
    // The client reconnects with the last id it saw and gets only what came after.
    let last = first.last().unwrap()["id"].as_str().unwrap().to_owned();
    declare("three.example");
    let resumed = read("", &last);
    let names: Vec<&Value> = resumed.iter().filter(|e| e["type"] == "domain-name").map(|e| &e["value"]).collect();
    assert_eq!(names, [&json!("three.example")], "{resumed:?}");
}
