//! The binary end to end: import, read back at any time, history, delete, and clear errors.

use std::path::Path;
use std::process::{Command, Output};

fn octograph(data: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_octograph"))
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .env_remove("OCTOGRAPH_CONFIG")
        .env_remove("OCTOGRAPH_SCHEMA_DIR")
        .current_dir(data)
        .output()
        .unwrap()
}

fn ok(out: &Output) -> String {
    assert!(out.status.success(), "failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn fails_with(out: &Output, needle: &str) {
    assert!(!out.status.success(), "expected failure, got {}", String::from_utf8_lossy(&out.stdout));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim_end().lines().count(), 1, "one line on stderr: {err}");
    assert!(err.contains(needle), "'{err}' lacks '{needle}'");
}

fn example() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/attack-surface.json").display().to_string()
}

#[test]
fn import_then_read_at_any_time() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out: serde_json::Value = serde_json::from_str(&ok(&octograph(d, &["import", &example()]))).unwrap();
    assert_eq!(out["imported"], 14);
    let imported_at = out["tx_time"].as_str().unwrap().to_owned();

    let doc: serde_json::Value =
        serde_json::from_str(&ok(&octograph(d, &["get", "Hostname|internet|www.example.com"]))).unwrap();
    assert_eq!(doc["name"], "www.example.com");
    assert_eq!(doc["primary_key"], "Hostname|internet|www.example.com");

    // Abstract types list their concrete types' objects.
    let ips = ok(&octograph(d, &["list", "IPAddress"]));
    assert_eq!(ips.lines().count(), 2, "{ips}");
    assert!(ips.contains("2001:db8::10"));
    assert_eq!(ok(&octograph(d, &["list", "OOI", "--limit", "5"])).lines().count(), 5);

    // Delete, then look at the past.
    ok(&octograph(d, &["delete", "IPPort|internet|192.0.2.10|tcp|23"]));
    fails_with(&octograph(d, &["get", "IPPort|internet|192.0.2.10|tcp|23"]), "not found");
    ok(&octograph(d, &["get", "IPPort|internet|192.0.2.10|tcp|23", "--valid-time", &imported_at]));
    let history = ok(&octograph(d, &["history", "IPPort|internet|192.0.2.10|tcp|23"]));
    let versions: Vec<serde_json::Value> = history.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(versions.len(), 2);
    assert_eq!(versions[0]["deleted"], false);
    assert_eq!(versions[1]["deleted"], true);
    assert_eq!(versions[1]["tx_id"], 2);

    // The transaction time alone also travels: as known at import time, now.
    ok(&octograph(d, &["get", "IPPort|internet|192.0.2.10|tcp|23", "--tx-time", &imported_at]));
}

#[test]
fn organisations_are_separate() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    fails_with(&octograph(d, &["--org", "acme", "import", &example()]), "organisation 'acme' does not exist");
    ok(&octograph(d, &["org", "create", "acme"]));
    ok(&octograph(d, &["org", "create", "other"]));
    fails_with(&octograph(d, &["org", "create", "acme"]), "already exists");
    ok(&octograph(d, &["--org", "acme", "import", &example()]));
    assert_eq!(ok(&octograph(d, &["--org", "acme", "list", "Network"])).lines().count(), 1);
    assert_eq!(ok(&octograph(d, &["--org", "other", "list", "Network"])).lines().count(), 0);
    assert_eq!(ok(&octograph(d, &["org", "list"])), "acme\nother\n");
    ok(&octograph(d, &["org", "delete", "other"]));
    fails_with(&octograph(d, &["--org", "other", "list"]), "does not exist");
    fails_with(&octograph(d, &["--org", "../etc", "list", "Network"]), "organisation");
}

#[test]
fn bad_input_is_refused_without_writing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let bad = d.join("bad.json");
    std::fs::write(
        &bad,
        r#"{"object_type": "Network", "name": "internet"}
{"object_type": "IPPort", "address": "IPAddressV4|internet|192.0.2.1", "protocol": "tcp", "port": 99999}"#,
    )
    .unwrap();
    fails_with(&octograph(d, &["import", bad.to_str().unwrap()]), "object 2 of");
    // Nothing of the file was written.
    assert_eq!(ok(&octograph(d, &["list", "Network"])).lines().count(), 0);

    std::fs::write(&bad, "{not json").unwrap();
    fails_with(&octograph(d, &["import", bad.to_str().unwrap()]), "malformed");
    fails_with(&octograph(d, &["import", "/nonexistent.json"]), "reading");
    fails_with(&octograph(d, &["get", "IPPort|internet|192.0.2.1|tcp"]), "too few segments");
    fails_with(&octograph(d, &["list", "NoSuchType"]), "unknown object type");
    fails_with(&octograph(d, &["get", "Network|internet", "--valid-time", "yesterday"]), "RFC 3339");
    fails_with(&octograph(d, &["delete", "Network|nowhere"]), "not found");
    fails_with(&octograph(d, &["scan-level", "Network|internet", "7"]), "not 0–4");
}

#[test]
fn parse_key_and_types() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out: serde_json::Value = serde_json::from_str(&ok(&octograph(
        d,
        &["parse-key", "Finding|IPPort|internet|2001:DB8::1|tcp|22|KAT-OPEN-PORT"],
    )))
    .unwrap();
    assert_eq!(out["primary_key"], "Finding|IPPort|internet|2001:db8::1|tcp|22|KAT-OPEN-PORT");
    assert_eq!(out["tokens"]["ooi"]["address"]["object_type"], "IPAddressV6");
    assert_eq!(out["tokens"]["ooi"]["port"], "22");
    let types = ok(&octograph(d, &["types"]));
    assert!(types.lines().any(|l| l.contains("\"name\":\"IPPort\"")));
}

#[test]
fn user_schema_directory_adds_types() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let schemas = d.join("schemas");
    std::fs::create_dir(&schemas).unwrap();
    std::fs::write(
        schemas.join("vpn.toml"),
        "[VPNGateway]\nnatural_key = [\"address\"]\nfields.address = { ref = \"IPAddress\" }\nfields.vendor = { type = \"string\", optional = true }\n",
    )
    .unwrap();
    std::fs::write(d.join("octograph.toml"), "schema_dir = \"schemas\"\n").unwrap();
    let objects = d.join("vpn.json");
    std::fs::write(
        &objects,
        r#"[{"object_type": "VPNGateway", "address": "IPAddressV4|internet|192.0.2.7", "vendor": "acme"}]"#,
    )
    .unwrap();
    ok(&octograph(d, &["import", objects.to_str().unwrap()]));
    assert_eq!(ok(&octograph(d, &["list", "VPNGateway"])).lines().count(), 1);

    std::fs::write(schemas.join("broken.toml"), "[Broken]\nnatural_key = [\"x\"]\n").unwrap();
    fails_with(&octograph(d, &["types"]), "broken.toml");
}

#[test]
fn tree_origins_findings_and_scan_levels() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(&octograph(d, &["import", &example()]));
    let tree: serde_json::Value =
        serde_json::from_str(&ok(&octograph(d, &["tree", "IPAddressV4|internet|192.0.2.10", "--depth", "1"]))).unwrap();
    assert_eq!(tree["root"]["children"]["ports"].as_array().unwrap().len(), 2);
    assert!(tree["store"]["IPPort|internet|192.0.2.10|tcp|443"].is_object());

    let origins = ok(&octograph(d, &["origins", "IPPort|internet|192.0.2.10|tcp|23"]));
    assert!(origins.contains("Origin|declaration|manual|IPPort|internet|192.0.2.10|tcp|23"), "{origins}");

    let ports = ok(&octograph(
        d,
        &["query", "IPAddressV4.<address[is IPPort].port", "--source", "IPAddressV4|internet|192.0.2.10"],
    ));
    assert_eq!(ports, "23\n443\n");
    fails_with(&octograph(d, &["query", "IPAddressV4.nope"]), "no field 'nope'");

    let findings = ok(&octograph(d, &["findings"]));
    assert_eq!(findings.lines().count(), 1);
    assert_eq!(ok(&octograph(d, &["findings", "--severity", "low"])).lines().count(), 0);

    ok(&octograph(d, &["scan-level", "IPAddressV4|internet|192.0.2.10", "2"]));
    let port: serde_json::Value =
        serde_json::from_str(&ok(&octograph(d, &["get", "IPPort|internet|192.0.2.10|tcp|443"]))).unwrap();
    assert_eq!(port["scan_profile"]["level"], 2);
    assert_eq!(port["scan_profile"]["scan_profile_type"], "inherited");
    // The address, both ports, the IPService, the Website and the HTTPResource that
    // resource-discovery derived; the Service and the SoftwareInstance get 1 (their caps), the
    // Finding and the DNS record nothing (no caps).
    assert_eq!(ok(&octograph(d, &["list", "--scan-level", "2"])).lines().count(), 6);
    let level1 = ok(&octograph(d, &["list", "--scan-level", "1"]));
    assert!(level1.contains("\"Service|https\"") && level1.contains("SoftwareInstance|"), "{level1}");
    ok(&octograph(d, &["scan-level", "IPAddressV4|internet|192.0.2.10", "none"]));
    assert_eq!(ok(&octograph(d, &["list", "--scan-level", "2"])).lines().count(), 0);
}

#[test]
fn bits_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(&octograph(d, &["import", &example()]));
    ok(&octograph(d, &["scan-level", "IPAddressV4|internet|192.0.2.10", "1"]));
    let sysadmin = "Finding|IPPort|internet|192.0.2.10|tcp|23|KAT-OPEN-SYSADMIN-PORT";
    ok(&octograph(d, &["get", sysadmin]));

    // run-bit shows inputs and results without saving.
    let run: serde_json::Value = serde_json::from_str(&ok(&octograph(
        d,
        &["run-bit", "default", "port-classification-ip", "IPAddressV4|internet|192.0.2.10"],
    )))
    .unwrap();
    assert_eq!(run["parameters"].as_array().unwrap().len(), 2);
    assert!(run["results"].as_array().unwrap().iter().any(|r| r["primary_key"] == sysadmin));
    fails_with(
        &octograph(d, &["run-bit", "default", "no-such-bit", "IPAddressV4|internet|192.0.2.10"]),
        "no bit 'no-such-bit'",
    );

    let list = ok(&octograph(d, &["bits", "list"]));
    assert_eq!(list.lines().count(), 36);
    assert!(list.contains(r#"{"id":"port-common","enabled":false"#), "{list}");
    ok(&octograph(d, &["bits", "disable", "port-classification-ip"]));
    fails_with(&octograph(d, &["get", sysadmin]), "not found");
    ok(&octograph(d, &["bits", "reset", "port-classification-ip"]));
    ok(&octograph(d, &["get", sysadmin]));
    let recalculated: serde_json::Value = serde_json::from_str(&ok(&octograph(d, &["bits", "recalculate"]))).unwrap();
    assert_eq!(recalculated["events"], 0);

    // A user rule directory from the config file; a bad rule stops start-up with its place.
    std::fs::create_dir(d.join("rules")).unwrap();
    std::fs::write(d.join("rules/bad.toml"), "[[rule]]\nid = \"x\"\nconsumes = \"Nope\"\nemit = []\n").unwrap();
    std::fs::write(d.join("octograph.toml"), "[bits]\nrules_dir = \"rules\"\n").unwrap();
    fails_with(&octograph(d, &["bits", "list"]), "rules/bad.toml:3");
    std::fs::write(d.join("octograph.toml"), "[bits]\nenabled = [\"no-such-bit\"]\n").unwrap();
    fails_with(&octograph(d, &["bits", "list"]), "no bit 'no-such-bit'");
    // Memory sizes that cannot be: refused by name, before any store opens.
    std::fs::write(d.join("octograph.toml"), "key_index_mb = 18446744073709551615\n").unwrap();
    fails_with(&octograph(d, &["bits", "list"]), "key_index_mb = 18446744073709551615");
    std::fs::write(d.join("octograph.toml"), "key_index_mb = -1\n").unwrap();
    fails_with(&octograph(d, &["bits", "list"]), "key_index_mb");
    std::fs::write(d.join("octograph.toml"), "current_cache_mb = 18446744073709551615\n").unwrap();
    fails_with(&octograph(d, &["bits", "list"]), "current_cache_mb = 18446744073709551615");
    std::fs::write(d.join("octograph.toml"), "current_cache_mb = \"lots\"\n").unwrap();
    fails_with(&octograph(d, &["bits", "list"]), "current_cache_mb");
}

#[test]
fn tokens_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let out = octograph(dir.path(), &["token", "create", "--org", "acme,globex", "--role", "write"]);
    let token = ok(&out).trim().to_owned();
    assert!(token.starts_with("og_"), "{token}");
    let listed = ok(&octograph(dir.path(), &["token", "list"]));
    assert!(listed.contains("\"write\"") && listed.contains("globex"), "{listed}");
    assert!(!listed.contains(&token), "the secret is never listed");
    let id = token.split('_').nth(1).unwrap();
    ok(&octograph(dir.path(), &["token", "revoke", id]));
    fails_with(&octograph(dir.path(), &["token", "revoke", id]), "no token");
    fails_with(&octograph(dir.path(), &["token", "create", "--org", "acme", "--role", "owner"]), "owner");
    fails_with(&octograph(dir.path(), &["token", "create", "--org", "../x", "--role", "read"]), "organisation");
    fails_with(&octograph(dir.path(), &["token", "create", "--org", "acme"]), "--role");
}

/// Starts `serve`; returns it, its API address and the log lines up to "API ready".
fn serve_until_ready(
    data: &Path,
) -> (std::process::Child, String, Vec<String>, std::io::Lines<std::io::BufReader<std::process::ChildStderr>>) {
    let (child, mut lines) = spawn_serve(data, &[]);
    let mut before = Vec::new();
    for l in lines.by_ref().map_while(Result::ok) {
        let ready = l.contains("API ready");
        before.push(l);
        if ready {
            let addr = before.last().unwrap().split("listen=").nth(1).unwrap().split_whitespace().next().unwrap();
            return (child, addr.to_owned(), before, lines);
        }
    }
    panic!("the server did not start: {before:?}");
}

const NOT_CLOSED: &str = "not closed cleanly";

#[test]
fn serve_answers_then_stops_on_sigterm_closing_its_stores() {
    use std::io::{BufRead, BufReader, Read, Write};
    let dir = tempfile::tempdir().unwrap();
    let token =
        ok(&octograph(dir.path(), &["token", "create", "--org", "default", "--role", "read"])).trim().to_owned();
    let (mut child, addr, _, lines) = serve_until_ready(dir.path());
    let mut stream = std::net::TcpStream::connect(&addr).unwrap();
    stream.write_all(b"GET /default/objects HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 401"), "a token is needed by default: {answer}");
    // A consumer on the change stream when the signal comes: its thread holds the graph.
    let mut sse = std::net::TcpStream::connect(&addr).unwrap();
    write!(sse, "GET /default/stream HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\r\n").unwrap();
    let mut sse_lines = BufReader::new(sse.try_clone().unwrap()).lines();
    assert!(sse_lines.by_ref().map_while(Result::ok).any(|l| l.contains("event: connected")));
    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    assert!(child.wait().unwrap().success(), "a clean exit on SIGTERM");
    let after: Vec<String> = lines.map_while(Result::ok).collect();
    assert!(after.iter().any(|l| l.contains("stopped")), "{after:?}");
    assert!(!after.iter().any(|l| l.contains("still in use")), "{after:?}");
    // Closed cleanly: the next start opens the store without a repair.
    let (mut child, _, before, _) = serve_until_ready(dir.path());
    assert!(!before.iter().any(|l| l.contains(NOT_CLOSED)), "{before:?}");
    // Killed, it is not closed: the start after that repairs and says so.
    child.kill().unwrap();
    child.wait().unwrap();
    let (mut child, _, before, lines) = serve_until_ready(dir.path());
    assert!(before.iter().any(|l| l.contains(NOT_CLOSED)), "{before:?}");
    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let after: Vec<String> = lines.map_while(Result::ok).collect();
    assert!(child.wait().unwrap().success(), "{after:?}");
}

#[test]
fn serve_refuses_a_redis_bus_it_cannot_use() {
    let dir = tempfile::tempdir().unwrap();
    // Nothing listens on port 1; and a URL that is not Redis's.
    for (url, needle) in [("redis://127.0.0.1:1/", "does not answer"), ("http://127.0.0.1:6379/", "redis at")] {
        std::fs::write(dir.path().join("octograph.toml"), format!("[stream]\nredis_url = \"{url}\"\n")).unwrap();
        fails_with(&octograph(dir.path(), &["serve", "--listen", "127.0.0.1:0"]), needle);
    }
    // Nothing was written to the default organisation's graph on the way.
    std::fs::remove_file(dir.path().join("octograph.toml")).unwrap();
    assert_eq!(ok(&octograph(dir.path(), &["list"])).trim(), "");
}

#[test]
fn serve_prepares_change_events_from_the_start_unless_told_to_wait() {
    let stop = |mut child: std::process::Child| {
        let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
        assert!(child.wait().unwrap().success());
    };
    let prepared = |dir: &Path| dir.join("default").join("stream.redb").exists();
    // By default the framer of every organisation starts with the server.
    let dir = tempfile::tempdir().unwrap();
    let (child, _, _, _lines) = serve_until_ready(dir.path());
    let started = std::time::Instant::now();
    while !prepared(dir.path()) && started.elapsed() < std::time::Duration::from_secs(10) {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(prepared(dir.path()), "the default organisation's prepared store");
    stop(child);
    // Told to wait, it starts with the first consumer instead.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("octograph.toml"), "[stream]\nprepare_in_background = false\n").unwrap();
    let (child, _, _, _lines) = serve_until_ready(dir.path());
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(!prepared(dir.path()), "nothing prepared before a consumer");
    stop(child);
    std::fs::write(dir.path().join("octograph.toml"), "[stream]\nprepare_in_background = \"sometimes\"\n").unwrap();
    fails_with(&octograph(dir.path(), &["serve", "--listen", "127.0.0.1:0"]), "prepare_in_background");
}

#[test]
fn serve_refuses_auth_off_on_a_network_address() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("octograph.toml"), "[server]\nlisten = \"0.0.0.0:0\"\nauth = false\n").unwrap();
    fails_with(&octograph(dir.path(), &["serve"]), "loopback");
    std::fs::write(dir.path().join("octograph.toml"), "[server]\nlisten = \"127.0.0.1:0\"\nauth = \"maybe\"\n")
        .unwrap();
    fails_with(&octograph(dir.path(), &["serve"]), "auth");
}

/// A server receiving syslog: the address of each receiver, from its log.
struct Syslogd {
    child: std::process::Child,
    tcp: String,
    udp: String,
    api: String,
}

/// `serve` on a data directory with extra arguments, and its log lines.
fn spawn_serve(
    data: &Path,
    extra: &[&str],
) -> (std::process::Child, std::io::Lines<std::io::BufReader<std::process::ChildStderr>>) {
    use std::io::{BufRead, BufReader};
    let mut child = Command::new(env!("CARGO_BIN_EXE_octograph"))
        .args(["--data-dir", data.to_str().unwrap(), "serve", "--listen", "127.0.0.1:0"])
        .args(extra)
        .env_remove("OCTOGRAPH_CONFIG")
        .env("RUST_LOG", "info")
        .current_dir(data)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let lines = BufReader::new(child.stderr.take().unwrap()).lines();
    (child, lines)
}

fn serve_syslog(data: &Path) -> Syslogd {
    let (child, mut lines) = spawn_serve(data, &["--syslog-tcp", "127.0.0.1:0", "--syslog-udp", "127.0.0.1:0"]);
    let (mut tcp, mut udp, mut api) = (String::new(), String::new(), String::new());
    for l in lines.by_ref().map_while(Result::ok) {
        if l.contains("syslog receiver ready") {
            let addr = l.split("listen=").nth(1).unwrap().split_whitespace().next().unwrap().to_owned();
            if l.contains("\"tcp\"") {
                tcp = addr;
            } else if l.contains("\"udp\"") {
                udp = addr;
            }
        }
        if l.contains("API ready") {
            api = l.split("listen=").nth(1).unwrap().split_whitespace().next().unwrap().to_owned();
            break;
        }
    }
    // Keep draining the log so the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines.map_while(Result::ok) {});
    assert!(!tcp.is_empty() && !udp.is_empty(), "both receivers started");
    Syslogd { child, tcp, udp, api }
}

fn port(addr: &str) -> &str {
    addr.rsplit(':').next().unwrap()
}

fn wait_for_lines(data: &Path, device: &str, n: usize) -> Vec<serde_json::Value> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let out = octograph(data, &["replay", "--device", device]);
        let lines: Vec<serde_json::Value> = if out.status.success() {
            String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect()
        } else {
            Vec::new()
        };
        if lines.len() >= n || std::time::Instant::now() > deadline {
            return lines;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[test]
fn syslog_received_by_serve_is_kept_across_kill_9_and_replayed() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = serve_syslog(dir.path());
    for (flag, addr) in [("--tcp", server.tcp.clone()), ("--udp", server.udp.clone())] {
        for i in 0..5 {
            let status = Command::new("logger")
                .args(["-n", "127.0.0.1", "-P", port(&addr), flag, "--rfc3164", "-t", "sshd", "-p", "auth.info"])
                .args(["--", &format!("Invalid user admin{i} from 203.0.113.9 port 22 ({flag})")])
                .status()
                .unwrap();
            assert!(status.success());
        }
    }
    // `logger` puts this machine's name in the header: that is the device.
    let host = String::from_utf8(Command::new("hostname").output().unwrap().stdout).unwrap().trim().to_lowercase();
    let lines = wait_for_lines(dir.path(), &host, 10);
    assert_eq!(lines.len(), 10, "{lines:?}");
    assert_eq!(lines[0]["parsed"]["app_name"], "sshd");
    // Replayed through classification: the device names no services, so the whole library.
    assert_eq!(lines[0]["message"]["id"], "Sshd:invalid_user");
    assert_eq!(lines[0]["message"]["fields"]["src_ip"], "203.0.113.9");
    // Devices from the command line while the server runs.
    let list = ok(&octograph(dir.path(), &["devices", "list"]));
    let device: serde_json::Value = serde_json::from_str(list.lines().next().unwrap()).unwrap();
    assert_eq!((device["name"].as_str(), device["status"].as_str()), (Some(host.as_str()), Some("pending")));
    ok(&octograph(dir.path(), &["devices", "set", &host, "--status", "active", "--type", "Linux System"]));
    ok(&octograph(dir.path(), &["devices", "add", "fw1", "--address", "192.0.2.1", "--service", "Cisco_ASA"]));
    // Unknown lines of a device whose services do not know them, and a service suggested for them.
    ok(&octograph(dir.path(), &["devices", "set", &host, "--service", "Pam"]));
    let groups = ok(&octograph(dir.path(), &["services", "suggest", "--device", &host]));
    let first: serde_json::Value = serde_json::from_str(groups.lines().next().unwrap()).unwrap();
    assert_eq!((first["count"].as_u64(), first["verified"].as_bool()), (Some(5), Some(true)), "{groups}");
    let toml = ok(&octograph(dir.path(), &["services", "suggest", "--device", &host, "--toml", "Mine"]));
    std::fs::write(dir.path().join("mine.toml"), &toml).unwrap();
    ok(&octograph(dir.path(), &["services", "import", dir.path().join("mine.toml").to_str().unwrap()]));
    ok(&octograph(dir.path(), &["devices", "set", &host, "--service", "Mine"]));
    assert_eq!(ok(&octograph(dir.path(), &["services", "suggest", "--device", &host])), "", "nothing unknown any more");
    fails_with(&octograph(dir.path(), &["services", "suggest", "--device", "nobody"]), "nobody");
    // Killed without warning: what was stored stays.
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    let mut server = serve_syslog(dir.path());
    assert_eq!(wait_for_lines(dir.path(), &host, 10).len(), 10);
    let shown: serde_json::Value =
        serde_json::from_str(&ok(&octograph(dir.path(), &["devices", "show", &host]))).unwrap();
    assert_eq!((shown["status"].as_str(), shown["type"].as_str()), (Some("active"), Some("Linux System")));
    // A time range, and raw output.
    let raw = ok(&octograph(
        dir.path(),
        &["replay", "--device", &host, "--raw", "--from", "2000-01-01", "--to", "2999-01-01"],
    ));
    assert_eq!(raw.lines().count(), 10);
    assert!(raw.lines().all(|l| l.contains("sshd")));
    assert_eq!(ok(&octograph(dir.path(), &["replay", "--device", &host, "--to", "2000-01-01"])), "");
    // Bad input: one line on stderr, nothing changed.
    fails_with(&octograph(dir.path(), &["replay", "--device", "nobody"]), "nobody");
    fails_with(&octograph(dir.path(), &["replay", "--device", &host, "--from", "yesterday"]), "yesterday");
    fails_with(
        &octograph(dir.path(), &["replay", "--device", &host, "--from", "2026-02-01", "--to", "2026-01-01"]),
        "--from",
    );
    fails_with(&octograph(dir.path(), &["devices", "add", "../evil"]), "device name");
    fails_with(&octograph(dir.path(), &["devices", "add", "fw1"]), "exists");
    fails_with(&octograph(dir.path(), &["devices", "set", "nobody", "--status", "active"]), "nobody");
    fails_with(&octograph(dir.path(), &["devices", "set", "fw1", "--status", "sleeping"]), "sleeping");
    fails_with(&octograph(dir.path(), &["org", "create", "logs"]), "reserved");
    assert_eq!(ok(&octograph(dir.path(), &["devices", "list"])).lines().count(), 2);
    let _ = Command::new("kill").args(["-TERM", &server.child.id().to_string()]).status();
    assert!(server.child.wait().unwrap().success());
}

fn serve_relp(data: &Path, port: u16) -> std::process::Child {
    let (child, mut lines) = spawn_serve(data, &["--syslog-relp", &format!("127.0.0.1:{port}")]);
    assert!(lines.by_ref().map_while(Result::ok).any(|l| l.contains("API ready")), "the server starts");
    std::thread::spawn(move || for _ in lines.map_while(Result::ok) {});
    child
}

/// The distinct `relp message N` texts stored for a device.
fn raw_messages(data: &Path, device: &str) -> std::collections::BTreeSet<String> {
    let out = octograph(data, &["replay", "--device", device, "--raw"]);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split("relp message ").nth(1).map(str::to_owned))
        .collect()
}

/// rsyslog sends over RELP while Octograph is killed with SIGKILL and started again: every
/// message arrives (RELP resends what was not acknowledged, and we acknowledge only what is
/// durable).
#[test]
fn relp_from_rsyslog_loses_nothing_across_a_kill_9() {
    let Some(rsyslogd) = ["/usr/sbin/rsyslogd", "/sbin/rsyslogd"].into_iter().find(|p| Path::new(p).exists()) else {
        assert!(std::env::var_os("CI").is_none(), "CI installs rsyslog (.ci/run); it is missing");
        eprintln!("rsyslogd is not installed: skipping");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut server = serve_relp(&data, port);
    let work = dir.path().join("rsyslog");
    std::fs::create_dir_all(&work).unwrap();
    let sock = work.join("log.sock");
    let conf = format!(
        r#"global(workDirectory="{w}" localHostname="relp-sender")
module(load="imuxsock" SysSock.Use="off")
input(type="imuxsock" Socket="{s}" CreatePath="on" RateLimit.Interval="0")
module(load="omrelp")
action(type="omrelp" target="127.0.0.1" port="{port}" action.resumeRetryCount="-1" action.resumeInterval="1"
       queue.type="LinkedList" queue.size="100000")
"#,
        w = work.display(),
        s = sock.display()
    );
    std::fs::write(work.join("rsyslog.conf"), conf).unwrap();
    let mut rsyslog = Command::new(rsyslogd)
        .args(["-n", "-f"])
        .arg(work.join("rsyslog.conf"))
        .arg("-i")
        .arg(work.join("rsyslog.pid"))
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !sock.exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let n = 50_000;
    let input = dir.path().join("lines.txt");
    std::fs::write(&input, (0..n).map(|i| format!("relp message {i:05}\n")).collect::<String>()).unwrap();
    let status =
        Command::new("logger").args(["-u", sock.to_str().unwrap(), "-t", "app", "-f"]).arg(&input).status().unwrap();
    assert!(status.success());
    // Kill the receiver while lines are arriving, then start it again on the same port.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while raw_messages(&data, "relp-sender").is_empty() && std::time::Instant::now() < deadline {}
    server.kill().unwrap();
    server.wait().unwrap();
    let before = raw_messages(&data, "relp-sender").len();
    eprintln!("{before} of {n} lines stored when the receiver was killed");
    let mut server = serve_relp(&data, port);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let mut seen = std::collections::BTreeSet::new();
    while seen.len() < n && std::time::Instant::now() < deadline {
        seen = raw_messages(&data, "relp-sender");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let _ = rsyslog.kill();
    let _ = rsyslog.wait();
    let _ = Command::new("kill").args(["-TERM", &server.id().to_string()]).status();
    let _ = server.wait();
    assert_eq!(seen.len(), n, "{before} stored before the kill; {} distinct messages after", seen.len());
}

#[test]
fn services_list_test_and_import() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let list = ok(&octograph(d, &["services", "list"]));
    assert!(list.lines().any(|l| l.contains("\"name\":\"Sshd\"") && l.contains("builtin")), "{list}");
    let line = "<38>Dec 10 06:55:48 LabSZ sshd[24200]: Failed password for root from 173.234.31.186 port 38926 ssh2";
    let hit: serde_json::Value = serde_json::from_str(&ok(&octograph(d, &["services", "test", line]))).unwrap();
    assert_eq!(hit["message"]["id"], "Sshd:failed");
    assert_eq!(hit["message"]["fields"]["user"], "root");
    let unknown: serde_json::Value =
        serde_json::from_str(&ok(&octograph(d, &["services", "test", "<13>nothing known"]))).unwrap();
    assert!(unknown["message"].is_null());
    // Octopussy's own file, unchanged.
    let xml = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus/octopussy/services/Postfix.xml");
    let xml = xml.to_str().unwrap();
    ok(&octograph(d, &["services", "import", xml]));
    let list = ok(&octograph(d, &["services", "list"]));
    assert!(list.lines().any(|l| l.contains("\"name\":\"Postfix\"") && l.contains("imported")), "{list}");
    assert!(ok(&octograph(d, &["services", "show", "Postfix"])).contains("[[message]]"));
    fails_with(&octograph(d, &["services", "import", xml]), "already imported");
    ok(&octograph(d, &["services", "import", "--replace", xml]));
    // Bad input: one line, nothing written.
    std::fs::write(
        d.join("bad.toml"),
        "name = \"Bad\"\n[[message]]\nname = \"m\"\npattern = \"<@NOPE:x@>\"\nlevel = \"info\"\ntaxonomy = \"T\"\n",
    )
    .unwrap();
    fails_with(&octograph(d, &["services", "import", d.join("bad.toml").to_str().unwrap()]), "Bad:m");
    assert!(!ok(&octograph(d, &["services", "list"])).contains("\"Bad\""));
    fails_with(&octograph(d, &["services", "show", "Nope"]), "Nope");
    fails_with(&octograph(d, &["services", "test", "--service", "Nope", "x"]), "Nope");
    fails_with(&octograph(d, &["services", "import", "/nonexistent.xml"]), "nonexistent");
}

fn http_get(addr: &str, path: &str, token: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n").unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    let status = answer.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    (status, answer)
}

/// A failed login from an address, sent by syslog, becomes an observation of that address in
/// the graph (method `syslog/sshd`, sourced on the device's Hostname), within the interval.
#[test]
fn failed_logins_become_observations_in_the_graph() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("octograph.toml"), "[logs]\nevidence_seconds = 1\n").unwrap();
    let host = String::from_utf8(Command::new("hostname").output().unwrap().stdout).unwrap().trim().to_lowercase();
    ok(&octograph(d, &["devices", "add", &host, "--status", "active"]));
    let token = ok(&octograph(d, &["token", "create", "--org", "default", "--role", "read"])).trim().to_owned();
    let mut server = serve_syslog(d);
    for port in [4711, 4712, 4713] {
        let status = Command::new("logger")
            .args([
                "-n",
                "127.0.0.1",
                "-P",
                port_of(&server.tcp),
                "--tcp",
                "--rfc5424",
                "-t",
                "sshd",
                "-p",
                "auth.warning",
            ])
            .args(["--", &format!("Failed password for root from 203.0.113.9 port {port} ssh2")])
            .status()
            .unwrap();
        assert!(status.success());
    }
    let reference = "IPAddressV4%7Cinternet%7C203.0.113.9";
    wait_for_object(&server.api, reference, &token);
    let (status, origins) = http_get(&server.api, &format!("/default/origins?result={reference}"), &token);
    assert_eq!(status, 200);
    assert!(origins.contains("syslog/sshd"), "{origins}");
    assert!(origins.contains(&format!("Hostname|internet|{host}")), "{origins}");
    // An accepted login: the device (here sending from 127.0.0.1) runs OpenSSH's server.
    let status = Command::new("logger")
        .args(["-n", "127.0.0.1", "-P", port_of(&server.tcp), "--tcp", "--rfc5424", "-t", "sshd", "-p", "auth.info"])
        .args(["--", "Accepted publickey for alice from 198.51.100.4 port 5000 ssh2"])
        .status()
        .unwrap();
    assert!(status.success());
    let instance = "SoftwareInstance%7CIPAddressV4%7Cinternet%7C127.0.0.1%7CSoftware%7COpenSSH%7C%7C";
    wait_for_object(&server.api, instance, &token);
    let (status, origins) = http_get(&server.api, &format!("/default/origins?result={instance}"), &token);
    assert_eq!(status, 200);
    assert!(origins.contains("syslog/sshd"), "{origins}");
    let _ = Command::new("kill").args(["-TERM", &server.child.id().to_string()]).status();
    assert!(server.child.wait().unwrap().success());
    // The server sealed its tables on stopping; the command line reads them.
    let counts =
        ok(&octograph(d, &["tables", "query", "Auth", "--where", "taxonomy=Auth.Failure", "--group", "src_ip"]));
    assert_eq!(counts.trim(), r#"{"src_ip":"203.0.113.9","count":3}"#);
    let rows = ok(&octograph(d, &["tables", "query", "Auth", "--last", "1h", "--limit", "1"]));
    assert!(rows.contains(r#""message":"Sshd:accepted""#) && rows.contains(r#""user":"alice""#), "{rows}");
    fails_with(&octograph(d, &["tables", "query", "Auth", "--where", "nonsense"]), "filter");
    fails_with(&octograph(d, &["tables", "query", "Auth", "--where", "src_port=ssh"]), "holds numbers");
    fails_with(&octograph(d, &["tables", "query", "Nope"]), "no table");
    // Octopussy's table files import, typed by their field types.
    let firewall =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus/octopussy/tables/Firewall_Traffic.xml");
    if firewall.exists() {
        ok(&octograph(d, &["tables", "import", firewall.to_str().unwrap()]));
        let list = ok(&octograph(d, &["tables", "list"]));
        assert!(list.contains(r#""name":"Firewall_Traffic""#) && list.contains(r#""src_addr":"ip""#), "{list}");
        fails_with(&octograph(d, &["tables", "import", firewall.to_str().unwrap()]), "already imported");
    }
}

/// Waits up to 15 s for an object (its reference URL-encoded) to be in the default graph.
fn wait_for_object(api: &str, reference: &str, token: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    let mut found = (0, String::new());
    while std::time::Instant::now() < deadline {
        found = http_get(api, &format!("/default/object?reference={reference}"), token);
        if found.0 == 200 {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    panic!("{reference} never appeared: {} {}", found.0, found.1);
}

fn port_of(addr: &str) -> &str {
    addr.rsplit(':').next().unwrap()
}
