//! End to end: real senders (`logger` of util-linux, rsyslog's `omfwd` and `omrelp`) and a TLS
//! client deliver lines over every transport into the raw store, dispatched to their devices.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use octo_logs::device::NewDevices;
use octo_logs::pipeline::TlsListener;
use octo_logs::source::{self, Receivers};
use octo_logs::{parse, LogsConfig, ParseContext, Pipeline, Transport};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn local() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

async fn start(dir: &Path, mut config: LogsConfig) -> (Arc<Pipeline>, Receivers) {
    config.udp = vec![local()];
    config.tcp = vec![local()];
    config.relp = vec![local()];
    let pipeline = Pipeline::open(dir, config).unwrap();
    let receivers = source::start(pipeline.clone()).await.unwrap();
    (pipeline, receivers)
}

/// The stored messages of a device, once at least `n` are there (or after 10 s).
async fn wait_for(pipeline: &Pipeline, device: &str, n: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let lines: Vec<String> = match pipeline.store().read(device, None, None) {
            Ok(it) => it.map(|l| String::from_utf8_lossy(&l.unwrap().bytes).into_owned()).collect(),
            Err(_) => Vec::new(),
        };
        if lines.len() >= n || Instant::now() > deadline {
            return lines;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn this_host() -> String {
    let out = Command::new("hostname").output().unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_ascii_lowercase()
}

fn logger(args: &[&str]) {
    let status = Command::new("logger").args(args).status().expect("logger (util-linux) is installed");
    assert!(status.success(), "logger {args:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logger_over_udp_tcp_and_octet_counting_in_both_formats() {
    let dir = tempfile::tempdir().unwrap();
    let (pipeline, receivers) = start(dir.path(), LogsConfig::default()).await;
    let udp = receivers.address(Transport::Udp).unwrap().port().to_string();
    let tcp = receivers.address(Transport::Tcp).unwrap().port().to_string();
    let cases: [(&[&str], &str); 6] = [
        (&["--udp", "--rfc5424"], "udp 5424"),
        (&["--udp", "--rfc3164"], "udp 3164"),
        (&["--tcp", "--rfc5424"], "tcp 5424"),
        (&["--tcp", "--rfc3164"], "tcp 3164"),
        (&["--tcp", "--octet-count", "--rfc5424"], "counted 5424"),
        (&["--tcp", "--octet-count", "--rfc3164"], "counted 3164"),
    ];
    for (flags, text) in cases {
        let port = if flags.contains(&"--udp") { &udp } else { &tcp };
        let mut args = vec!["-n", "127.0.0.1", "-P", port.as_str(), "-t", "octotest", "-p", "auth.warning"];
        args.extend_from_slice(flags);
        let msg = format!("Failed password for root from 203.0.113.9 port 4711 ssh2 ({text})");
        args.push(&msg);
        logger(&args);
    }
    // Structured data too.
    logger(&[
        "-n",
        "127.0.0.1",
        "-P",
        &tcp,
        "--tcp",
        "--rfc5424",
        "--sd-id",
        "origin@32473",
        "--sd-param",
        "ip=\"192.0.2.1\"",
        "-t",
        "octotest",
        "with sd",
    ]);
    let host = this_host();
    let lines = wait_for(&pipeline, &host, 7).await;
    assert_eq!(lines.len(), 7, "{lines:?}");
    let ctx = ParseContext::now();
    for text in ["udp 5424", "udp 3164", "tcp 5424", "tcp 3164", "counted 5424", "counted 3164"] {
        let line =
            lines.iter().find(|l| l.ends_with(&format!("({text})"))).unwrap_or_else(|| panic!("{text}: {lines:?}"));
        let m = parse(line, &ctx);
        assert_eq!(m.app_name, Some("octotest"), "{line}");
        assert_eq!((m.priority.facility().name(), m.priority.severity().name()), ("auth", "warning"), "{line}");
        assert_eq!(m.hostname.map(str::to_ascii_lowercase), Some(host.clone()), "{line}");
        assert!(m.timestamp.is_some(), "{line}");
        assert!(m.issue.is_none(), "{line}: {:?}", m.issue);
    }
    let sd = lines.iter().find(|l| l.ends_with("with sd")).unwrap();
    let m = parse(sd, &ctx);
    assert!(m.structured_data().iter().any(|e| e.id == "origin@32473"), "{sd}");
    // The device was registered, pending, with the sender's address.
    let device = pipeline.devices().get(&host).unwrap();
    assert_eq!(device.device.status, octo_logs::DeviceStatus::Pending);
    assert_eq!(device.device.address, Some("127.0.0.1".parse().unwrap()));
    assert_eq!(pipeline.stats().total_received(), 7);
    receivers.shutdown().await;
}

/// A RELP client as librelp speaks it, for the protocol's corner cases.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relp_acknowledges_durable_lines_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let (pipeline, receivers) = start(dir.path(), LogsConfig::default()).await;
    let addr = receivers.address(Transport::Relp).unwrap();
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let offers = "relp_version=0\nrelp_software=test\ncommands=syslog";
    let mut req = format!("1 open {} {offers}\n", offers.len());
    for i in 2..=50 {
        let msg = format!("<13>Dec  1 10:00:00 relp-host app: message {i}");
        req.push_str(&format!("{i} syslog {} {msg}\n", msg.len()));
    }
    req.push_str("51 close 0\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).await.unwrap();
    let lines: Vec<&str> = answer.lines().collect();
    assert!(lines[0].starts_with("1 rsp ") && lines[0].ends_with("200 OK"), "{answer}");
    assert!(answer.contains("commands=syslog"), "{answer}");
    let acks: Vec<&str> = lines.iter().filter(|l| l.ends_with(" rsp 6 200 OK")).copied().collect();
    assert_eq!(acks.len(), 49);
    for (i, a) in acks.iter().enumerate() {
        assert_eq!(*a, format!("{} rsp 6 200 OK", i + 2));
    }
    assert_eq!(lines.last(), Some(&"51 rsp 0"));
    // Everything acknowledged is stored.
    let stored = wait_for(&pipeline, "relp-host", 49).await;
    assert_eq!(stored.len(), 49);
    // A syslog frame before open ends the session.
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(b"1 syslog 5 <13>x\n").await.unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).await.unwrap();
    assert_eq!(answer, "0 serverclose 0\n");
    receivers.shutdown().await;
}

fn rsyslogd() -> Option<&'static str> {
    let found = ["/usr/sbin/rsyslogd", "/sbin/rsyslogd"].into_iter().find(|p| Path::new(p).exists());
    if found.is_none() {
        assert!(std::env::var_os("CI").is_none(), "CI installs rsyslog (.ci/run); it is missing");
        eprintln!("rsyslogd is not installed (apt-get install rsyslog rsyslog-relp): skipping the rsyslog test");
    }
    found
}

/// rsyslog forwarding with `omfwd` (TCP, octet-counted RFC 5424) and `omrelp`: what a fleet of
/// Linux hosts really sends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rsyslog_forwards_with_omfwd_and_omrelp() {
    let Some(rsyslogd) = rsyslogd() else { return };
    let dir = tempfile::tempdir().unwrap();
    let (pipeline, receivers) = start(&dir.path().join("octo"), LogsConfig::default()).await;
    let tcp = receivers.address(Transport::Tcp).unwrap().port();
    let relp = receivers.address(Transport::Relp).unwrap().port();
    let work = dir.path().join("rsyslog");
    std::fs::create_dir_all(&work).unwrap();
    let sock = work.join("log.sock");
    let conf = format!(
        r#"global(workDirectory="{w}" localHostname="rsyslog-sender")
module(load="imuxsock" SysSock.Use="off")
input(type="imuxsock" Socket="{s}" CreatePath="on")
module(load="omrelp")
if $msg contains "via-fwd" then action(type="omfwd" target="127.0.0.1" port="{tcp}" protocol="tcp" TCP_Framing="octet-counted" template="RSYSLOG_SyslogProtocol23Format")
if $msg contains "via-relp" then action(type="omrelp" target="127.0.0.1" port="{relp}")
"#,
        w = work.display(),
        s = sock.display(),
    );
    let conf_path = work.join("rsyslog.conf");
    std::fs::write(&conf_path, conf).unwrap();
    let mut child = Command::new(rsyslogd)
        .args(["-n", "-f"])
        .arg(&conf_path)
        .arg("-i")
        .arg(work.join("rsyslog.pid"))
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !sock.exists() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for i in 0..20 {
        let path = sock.to_str().unwrap();
        logger(&[
            "-u",
            path,
            "-t",
            "sshd",
            &format!("Accepted publickey for alice from 198.51.100.4 port {i} via-fwd"),
        ]);
        logger(&["-u", path, "-t", "sshd", &format!("Accepted publickey for bob from 198.51.100.5 port {i} via-relp")]);
    }
    let lines = wait_for(&pipeline, "rsyslog-sender", 40).await;
    let _ = child.kill();
    let _ = child.wait();
    let fwd = lines.iter().filter(|l| l.contains("via-fwd")).count();
    let relp_n = lines.iter().filter(|l| l.contains("via-relp")).count();
    assert_eq!((fwd, relp_n), (20, 20), "{lines:?}");
    let ctx = ParseContext::now();
    let fwd_line = lines.iter().find(|l| l.contains("via-fwd")).unwrap();
    let m = parse(fwd_line, &ctx);
    assert_eq!((m.format, m.app_name, m.hostname), (octo_logs::Format::Rfc5424, Some("sshd"), Some("rsyslog-sender")));
    let stats = pipeline.stats().by_transport();
    let relp_count = stats.iter().find(|(t, _, _)| *t == Transport::Relp).unwrap().1;
    assert_eq!(relp_count, 20);
    receivers.shutdown().await;
}

fn certificates(
    dir: &Path,
) -> (std::path::PathBuf, std::path::PathBuf, std::path::PathBuf, rcgen::Issuer<'static, rcgen::KeyPair>) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(rcgen::DnType::CommonName, "octograph test CA");
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let key = rcgen::KeyPair::generate().unwrap();
    let params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    let cert = params.signed_by(&key, &issuer).unwrap();
    let (c, k, a) = (dir.join("server.pem"), dir.join("server.key"), dir.join("ca.pem"));
    std::fs::write(&c, cert.pem()).unwrap();
    std::fs::write(&k, key.serialize_pem()).unwrap();
    std::fs::write(&a, ca.pem()).unwrap();
    (c, k, a, issuer)
}

async fn tls_send(
    addr: SocketAddr,
    ca: &Path,
    client: Option<(Vec<rustls::pki_types::CertificateDer<'static>>, rustls::pki_types::PrivateKeyDer<'static>)>,
    payload: &[u8],
) -> std::io::Result<()> {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls::pki_types::CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let config = match client {
        Some((chain, key)) => builder.with_client_auth_cert(chain, key).unwrap(),
        None => builder.with_no_client_auth(),
    };
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    let mut tls = connector.connect("localhost".try_into().unwrap(), tcp).await?;
    tls.write_all(payload).await?;
    tls.shutdown().await?;
    // Wait for the server to close (TLS 1.3 reports a refused client certificate only here).
    let mut rest = Vec::new();
    tls.read_to_end(&mut rest).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_and_without_client_certificates() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key, ca, issuer) = certificates(dir.path());
    let config = LogsConfig {
        new_devices: NewDevices::Active,
        tls: vec![
            TlsListener { listen: local(), cert: cert.clone(), key: key.clone(), client_ca: None, relp: false },
            TlsListener { listen: local(), cert, key, client_ca: Some(ca.clone()), relp: false },
        ],
        ..LogsConfig::default()
    };
    let (pipeline, receivers) = start(&dir.path().join("octo"), config).await;
    let tls: Vec<SocketAddr> =
        receivers.addresses.iter().filter(|(t, _)| *t == Transport::Tls).map(|(_, a)| *a).collect();
    assert_eq!(tls.len(), 2);
    // RFC 5425 framing: octet counting.
    let msg = "<34>1 2026-12-01T10:00:00Z tls-host app - - - over tls";
    let payload = format!("{} {msg}{} {msg}", msg.len(), msg.len());
    tls_send(tls[0], &ca, None, payload.as_bytes()).await.unwrap();
    assert_eq!(wait_for(&pipeline, "tls-host", 2).await, [msg, msg]);
    // The second listener wants a client certificate: without one nothing is stored …
    let refused = tls_send(tls[1], &ca, None, b"<13>Dec  1 10:00:00 nocert app: x\n").await;
    assert!(refused.is_err(), "a client without a certificate is refused");
    // … with one signed by the CA, the line arrives.
    let client_key = rcgen::KeyPair::generate().unwrap();
    let mut client_params = rcgen::CertificateParams::new(vec!["client.example".to_owned()]).unwrap();
    client_params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    let client = client_params.signed_by(&client_key, &issuer).unwrap();
    let chain = vec![client.der().clone()];
    let key_der = rustls::pki_types::PrivateKeyDer::try_from(client_key.serialize_der()).unwrap();
    tls_send(tls[1], &ca, Some((chain, key_der)), b"<13>Dec  1 10:00:00 withcert app: x\n").await.unwrap();
    let got = wait_for(&pipeline, "withcert", 1).await;
    assert_eq!(got.len(), 1);
    assert!(pipeline.store().read("nocert", None, None).unwrap().next().is_none());
    receivers.shutdown().await;
}

/// RELP over TLS (rsyslog's `omrelp` with `tls="on"`): the same acknowledgements, encrypted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relp_over_tls_acknowledges_durable_lines() {
    use rustls::pki_types::pem::PemObject;
    let dir = tempfile::tempdir().unwrap();
    let (cert, key, ca, _) = certificates(dir.path());
    let config = LogsConfig {
        tls: vec![TlsListener { listen: local(), cert, key, client_ca: None, relp: true }],
        ..LogsConfig::default()
    };
    let pipeline = Pipeline::open(&dir.path().join("octo"), config).unwrap();
    let receivers = source::start(pipeline.clone()).await.unwrap();
    let addr = receivers.address(Transport::Relp).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls::pki_types::CertificateDer::pem_file_iter(&ca).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let client = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut tls =
        tokio_rustls::TlsConnector::from(Arc::new(client)).connect("localhost".try_into().unwrap(), tcp).await.unwrap();
    let offers = "relp_version=0\ncommands=syslog";
    let msg = "<13>Dec  1 10:00:00 relp-tls app: secret";
    let req = format!("1 open {} {offers}\n2 syslog {} {msg}\n3 close 0\n", offers.len(), msg.len());
    tls.write_all(req.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let _ = tls.read_to_end(&mut answer).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.contains("2 rsp 6 200 OK") && answer.contains("3 rsp 0"), "{answer}");
    assert_eq!(wait_for(&pipeline, "relp-tls", 1).await, [msg]);
    receivers.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_tls_settings_fail_at_start_with_the_file_named() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("empty.pem"), "").unwrap();
    let config = LogsConfig {
        tls: vec![TlsListener {
            listen: local(),
            cert: dir.path().join("empty.pem"),
            key: dir.path().join("missing.key"),
            client_ca: None,
            relp: false,
        }],
        ..LogsConfig::default()
    };
    let pipeline = Pipeline::open(&dir.path().join("octo"), config).unwrap();
    let err = match source::start(pipeline).await {
        Err(e) => e.to_string(),
        Ok(_) => panic!("started with an empty certificate file"),
    };
    assert!(err.contains("empty.pem"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_senders_are_counted_not_stored() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogsConfig { new_devices: NewDevices::Refuse, ..LogsConfig::default() };
    let (pipeline, receivers) = start(dir.path(), config).await;
    pipeline.devices().add(octo_logs::Device::named("known")).unwrap();
    let mut s = tokio::net::TcpStream::connect(receivers.address(Transport::Tcp).unwrap()).await.unwrap();
    s.write_all(b"<13>Dec  1 10:00:00 known app: yes\n<13>Dec  1 10:00:00 stranger app: no\n").await.unwrap();
    drop(s);
    assert_eq!(wait_for(&pipeline, "known", 1).await.len(), 1);
    let deadline = Instant::now() + Duration::from_secs(5);
    while pipeline.stats().refused.load(std::sync::atomic::Ordering::Relaxed) == 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(pipeline.stats().refused.load(std::sync::atomic::Ordering::Relaxed), 1);
    assert!(pipeline.devices().get("stranger").is_err());
    receivers.shutdown().await;
}

/// While the store cannot keep up, TCP receivers stop reading: the sender blocks instead of the
/// server's memory growing, and every line arrives once the store catches up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_store_holds_tcp_senders_back_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (pipeline, receivers) = start(dir.path(), LogsConfig::default()).await;
    let addr = receivers.address(Transport::Tcp).unwrap();
    let written = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let total_lines = 400_000u64;
    let paused = pipeline.pause();
    let w = written.clone();
    let sender = std::thread::spawn(move || {
        use std::io::Write;
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        let line = format!("<13>Dec  1 10:00:00 busy app: {}\n", "x".repeat(200));
        let chunk: String = (0..1000).map(|_| line.as_str()).collect();
        for _ in 0..total_lines / 1000 {
            s.write_all(chunk.as_bytes()).unwrap();
            w.fetch_add(chunk.len() as u64, std::sync::atomic::Ordering::Relaxed);
        }
    });
    tokio::time::sleep(Duration::from_secs(2)).await;
    let during = written.load(std::sync::atomic::Ordering::Relaxed);
    let all = total_lines * 229;
    assert!(!sender.is_finished(), "the sender is held back");
    assert!(during < all / 2, "{during} of {all} bytes accepted while the store stalled");
    assert_eq!(pipeline.stats().stored.load(std::sync::atomic::Ordering::Relaxed), 0);
    drop(paused);
    sender.join().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while pipeline.stats().stored.load(std::sync::atomic::Ordering::Relaxed) < total_lines && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(pipeline.stats().stored.load(std::sync::atomic::Ordering::Relaxed), total_lines);
    assert_eq!(pipeline.store().read("busy", None, None).unwrap().count() as u64, total_lines);
    receivers.shutdown().await;
}

/// UDP has no flow control: with the store stalled the kernel's buffer overflows, and the drops
/// are counted (read from /proc/net/udp).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn udp_datagrams_the_kernel_drops_are_counted() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogsConfig { udp_receive_buffer_kb: 64, ..LogsConfig::default() };
    let (pipeline, receivers) = start(dir.path(), config).await;
    let addr = receivers.address(Transport::Udp).unwrap();
    let paused = pipeline.pause();
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let msg = format!("<13>Dec  1 10:00:00 noisy app: {}", "y".repeat(500));
    for _ in 0..300_000 {
        let _ = socket.send_to(msg.as_bytes(), addr);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while pipeline.stats().udp_kernel_drops.load(std::sync::atomic::Ordering::Relaxed) == 0 && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let drops = pipeline.stats().udp_kernel_drops.load(std::sync::atomic::Ordering::Relaxed);
    assert!(drops > 0, "the kernel's drops are counted");
    drop(paused);
    receivers.shutdown().await;
}
