//! The server on a real socket: a shutdown lets the write in flight finish and be answered.

mod common;

use std::time::{Duration, Instant};

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_finishes_writes_in_flight() {
    let s = common::server(false, &["acme"]);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(octo_server::serve(listener, s.app.clone(), async {
        let _ = stopped.await;
    }));

    // A write large enough to be running when the shutdown comes.
    let mut declarations = vec![json!({"ooi": {"object_type": "Network", "name": "internet"}})];
    for i in 0..2000 {
        declarations.push(json!({"ooi": {"object_type": "Hostname", "network": "Network|internet", "name": format!("h{i}.example.com")}}));
    }
    let body = serde_json::to_vec(&declarations).unwrap();
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST /acme/declarations/save_many HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&body).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let asked = Instant::now();
    stop.send(()).unwrap();

    let mut response = Vec::new();
    let mut buf = [0u8; 4096];
    // Read the status line (the connection may stay open until the server closes it).
    while !response.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(60), stream.read(&mut buf)).await.unwrap().unwrap();
        assert!(n > 0, "the connection closed without an answer");
        response.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&response);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    drop(stream);
    tokio::time::timeout(Duration::from_secs(60), server).await.unwrap().unwrap().unwrap();
    eprintln!("write finished {:?} after the shutdown was asked for", asked.elapsed());

    // Everything was written, and nothing listens any more.
    let (_, v) = s.get("/acme/objects?types=Hostname&limit=1").await;
    assert_eq!(v["count"], 2000);
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_ends_open_change_streams() {
    let s = common::server(false, &["acme"]);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let state = s.state.clone();
    let server = tokio::spawn(octo_server::serve(listener, s.app.clone(), async move {
        let _ = stopped.await;
        state.end_streams();
    }));
    // A consumer connected to the stream, which never ends by itself.
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(b"GET /acme/stream HTTP/1.1\r\nHost: test\r\n\r\n").await.unwrap();
    let mut buf = [0u8; 1024];
    let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf)).await.unwrap().unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).contains("200 OK"));
    stop.send(()).unwrap();
    // The server stops within seconds, and the consumer sees its stream end.
    tokio::time::timeout(Duration::from_secs(10), server).await.expect("the shutdown finishes").unwrap().unwrap();
    let mut rest = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut rest)).await.unwrap().unwrap();
}
