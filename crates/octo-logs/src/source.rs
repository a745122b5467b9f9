//! The receivers: UDP, TCP, TLS and RELP listeners that feed the [`Pipeline`].
//!
//! Stream receivers read a chunk, cut it into frames, and hand the frames to the pipeline as
//! one batch; they read again only once the batch is durable. So a slow store slows the
//! senders through TCP's own flow control instead of filling memory, and a crash loses at most
//! the batch in flight of each connection (bytes the kernel had accepted but we had not yet
//! read are lost with the process too: plain TCP cannot tell the sender; RELP can). UDP has no
//! flow control: its batches are queued without waiting, and when the queue is full the
//! kernel's socket buffer fills and drops, which the metrics count.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinHandle;

use crate::framing::{Framer, Framing};
use crate::pipeline::{Pipeline, TlsListener};
use crate::raw_store::{RawLine, Transport};
use crate::relp;
use crate::time::LogTime;

/// How many bytes a stream receiver reads at a time (and so the most a batch holds, beyond one
/// over-long line).
const READ_CHUNK: usize = 64 << 10;
/// Datagrams taken in one batch.
const UDP_BATCH: usize = 512;

/// The running receivers.
pub struct Receivers {
    /// What each listens on (with the port the system chose for port 0).
    pub addresses: Vec<(Transport, SocketAddr)>,
    tasks: Vec<JoinHandle<()>>,
    stop: watch::Sender<bool>,
}

impl Receivers {
    /// Stops accepting; open connections finish the batch they hold and close.
    pub async fn shutdown(self) {
        self.stop.send_replace(true);
        for t in self.tasks {
            let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
        }
    }

    /// The address of the first receiver of a transport.
    pub fn address(&self, t: Transport) -> Option<SocketAddr> {
        self.addresses.iter().find(|(tr, _)| *tr == t).map(|(_, a)| *a)
    }
}

/// Binds every configured receiver (failing before any runs if one cannot bind) and starts them.
pub async fn start(pipeline: Arc<Pipeline>) -> io::Result<Receivers> {
    let config = pipeline.config().clone();
    let (stop, stopped) = watch::channel(false);
    let limit = Arc::new(Semaphore::new(config.max_connections.max(1)));
    let mut addresses = Vec::new();
    let mut tasks = Vec::new();
    let mut udp_inodes = Vec::new();
    for addr in &config.udp {
        let socket = bind_udp(*addr, config.udp_receive_buffer_kb << 10)?;
        addresses.push((Transport::Udp, socket.local_addr()?));
        udp_inodes.extend(socket_inode(&socket));
        tasks.push(tokio::spawn(run_udp(socket, pipeline.clone(), stopped.clone())));
    }
    let mut stream_listeners = Vec::new();
    for addr in &config.tcp {
        stream_listeners.push((bind_tcp(*addr).await?, Kind::Plain(Transport::Tcp), None));
    }
    for addr in &config.relp {
        stream_listeners.push((bind_tcp(*addr).await?, Kind::Relp, None));
    }
    for tls in &config.tls {
        let acceptor = tls_acceptor(tls)?;
        let kind = if tls.relp { Kind::Relp } else { Kind::Plain(Transport::Tls) };
        stream_listeners.push((bind_tcp(tls.listen).await?, kind, Some(acceptor)));
    }
    for (listener, kind, tls) in stream_listeners {
        let transport = match (kind, &tls) {
            (Kind::Relp, _) => Transport::Relp,
            (Kind::Plain(t), _) => t,
        };
        addresses.push((transport, listener.local_addr()?));
        tasks.push(tokio::spawn(accept_loop(listener, kind, tls, pipeline.clone(), stopped.clone(), limit.clone())));
    }
    if !udp_inodes.is_empty() {
        tasks.push(tokio::spawn(watch_udp_drops(udp_inodes, pipeline.clone(), stopped.clone())));
    }
    for (t, a) in &addresses {
        tracing::info!(transport = t.name(), listen = %a, "syslog receiver ready");
    }
    Ok(Receivers { addresses, tasks, stop })
}

#[derive(Clone, Copy)]
enum Kind {
    Plain(Transport),
    Relp,
}

fn bind_udp(addr: SocketAddr, buffer: usize) -> io::Result<UdpSocket> {
    let domain = if addr.is_ipv4() { socket2::Domain::IPV4 } else { socket2::Domain::IPV6 };
    let s = socket2::Socket::new(domain, socket2::Type::DGRAM, Some(socket2::Protocol::UDP))?;
    if buffer > 0 {
        // The kernel may grant less (net.core.rmem_max); it is a request.
        let _ = s.set_recv_buffer_size(buffer);
    }
    s.set_nonblocking(true)?;
    s.bind(&addr.into()).map_err(|e| io::Error::new(e.kind(), format!("syslog UDP {addr}: {e}")))?;
    UdpSocket::from_std(s.into())
}

async fn bind_tcp(addr: SocketAddr) -> io::Result<TcpListener> {
    TcpListener::bind(addr).await.map_err(|e| io::Error::new(e.kind(), format!("syslog listener {addr}: {e}")))
}

fn tls_acceptor(t: &TlsListener) -> io::Result<tokio_rustls::TlsAcceptor> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let bad = |what: &str, path: &std::path::Path, e: &dyn std::fmt::Display| {
        io::Error::new(io::ErrorKind::InvalidInput, format!("syslog TLS {}: {what} {}: {e}", t.listen, path.display()))
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&t.cert)
        .map_err(|e| bad("certificate", &t.cert, &e))?
        .collect::<Result<_, _>>()
        .map_err(|e| bad("certificate", &t.cert, &e))?;
    if certs.is_empty() {
        return Err(bad("certificate", &t.cert, &"no certificate in the file"));
    }
    let key = PrivateKeyDer::from_pem_file(&t.key).map_err(|e| bad("key", &t.key, &e))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| bad("protocols", &t.cert, &e))?;
    let builder = match &t.client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for c in CertificateDer::pem_file_iter(ca).map_err(|e| bad("client CA", ca, &e))? {
                roots.add(c.map_err(|e| bad("client CA", ca, &e))?).map_err(|e| bad("client CA", ca, &e))?;
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| bad("client CA", ca, &e))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let config = builder.with_single_cert(certs, key).map_err(|e| bad("certificate and key", &t.cert, &e))?;
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

async fn run_udp(socket: UdpSocket, pipeline: Arc<Pipeline>, mut stop: watch::Receiver<bool>) {
    let mut buf = vec![0u8; 65_536];
    loop {
        let first = tokio::select! {
            r = socket.recv_from(&mut buf) => r,
            _ = stop.changed() => return,
        };
        let mut batch = Vec::new();
        let mut next = first;
        loop {
            match next {
                Ok((n, peer)) => {
                    let bytes = trim_datagram(&buf[..n]);
                    if !bytes.is_empty() {
                        batch.push(RawLine {
                            received: LogTime::now(),
                            peer: Some(peer),
                            transport: Transport::Udp,
                            bytes,
                        });
                    }
                }
                Err(e) => tracing::debug!(error = %e, "UDP receive failed"),
            }
            if batch.len() >= UDP_BATCH {
                break;
            }
            next = match socket.try_recv_from(&mut buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                other => other,
            };
        }
        if let Err(e) = pipeline.submit(batch).await {
            tracing::error!(error = %e, "UDP lines could not be stored");
            if matches!(e, crate::pipeline::PipelineError::Stopped) {
                return;
            }
        }
    }
}

/// One datagram is one message (RFC 5426); a trailing line end is not part of it.
fn trim_datagram(b: &[u8]) -> Bytes {
    let mut end = b.len();
    while end > 0 && matches!(b[end - 1], b'\n' | b'\r' | b'\0') {
        end -= 1;
    }
    Bytes::copy_from_slice(&b[..end])
}

async fn accept_loop(
    listener: TcpListener,
    kind: Kind,
    tls: Option<tokio_rustls::TlsAcceptor>,
    pipeline: Arc<Pipeline>,
    mut stop: watch::Receiver<bool>,
    limit: Arc<Semaphore>,
) {
    loop {
        let permit = tokio::select! {
            p = limit.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => return },
            _ = stop.changed() => return,
        };
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(v) => v,
                Err(e) => {
                    tracing::warn!(error = %e, "accepting a syslog connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stop.changed() => return,
        };
        let _ = stream.set_nodelay(true);
        let (pipeline, stop, tls) = (pipeline.clone(), stop.clone(), tls.clone());
        tokio::spawn(async move {
            pipeline.stats().connections.fetch_add(1, Ordering::Relaxed);
            let result = connection(stream, peer, kind, tls, &pipeline, stop).await;
            pipeline.stats().connections.fetch_sub(1, Ordering::Relaxed);
            if let Err(e) = result {
                tracing::debug!(%peer, error = %e, "syslog connection ended");
            }
            drop(permit);
        });
    }
}

async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    kind: Kind,
    tls: Option<tokio_rustls::TlsAcceptor>,
    pipeline: &Pipeline,
    stop: watch::Receiver<bool>,
) -> io::Result<()> {
    match tls {
        Some(acceptor) => {
            let s = tokio::time::timeout(Duration::from_secs(10), acceptor.accept(stream))
                .await
                .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "TLS handshake timed out"))??;
            session(s, peer, kind, pipeline, stop).await
        }
        None => session(stream, peer, kind, pipeline, stop).await,
    }
}

/// The protocol of a connection, over TCP or TLS alike.
async fn session<S: AsyncRead + AsyncWrite + Unpin>(
    s: S,
    peer: SocketAddr,
    kind: Kind,
    pipeline: &Pipeline,
    stop: watch::Receiver<bool>,
) -> io::Result<()> {
    match kind {
        Kind::Relp => relp_session(s, peer, Transport::Relp, pipeline, stop).await,
        Kind::Plain(t) => read_stream(s, peer, t, pipeline, stop).await,
    }
}

/// Plain syslog over a stream: frames, batch per read, durable before the next read.
async fn read_stream<S: AsyncRead + AsyncWrite + Unpin>(
    mut s: S,
    peer: SocketAddr,
    transport: Transport,
    pipeline: &Pipeline,
    mut stop: watch::Receiver<bool>,
) -> io::Result<()> {
    let max = pipeline.config().max_line_bytes;
    let mut framer = Framer::new(Framing::Detect, max);
    let mut buf = BytesMut::with_capacity(READ_CHUNK);
    loop {
        buf.reserve(READ_CHUNK);
        let n = tokio::select! {
            r = s.read_buf(&mut buf) => r?,
            _ = stop.changed() => 0,
        };
        let received = LogTime::now();
        let mut batch = Vec::new();
        let mut push = |f: crate::framing::Frame| {
            if f.truncated {
                pipeline.stats().truncated.fetch_add(1, Ordering::Relaxed);
            }
            batch.push(RawLine { received, peer: Some(peer), transport, bytes: f.bytes });
        };
        if n == 0 {
            while let Some(f) = framer.finish(&mut buf) {
                push(f);
            }
        } else {
            while let Some(f) = framer.next_frame(&mut buf) {
                push(f);
            }
        }
        if !batch.is_empty() {
            pipeline.ingest(batch).await.map_err(io::Error::other)?;
        }
        if n == 0 {
            // Close politely (TLS sends close_notify).
            let _ = s.shutdown().await;
            return Ok(());
        }
    }
}

/// A RELP session: `open`, then `syslog` frames acknowledged once durable, then `close`.
async fn relp_session<S: AsyncRead + AsyncWrite + Unpin>(
    mut s: S,
    peer: SocketAddr,
    transport: Transport,
    pipeline: &Pipeline,
    mut stop: watch::Receiver<bool>,
) -> io::Result<()> {
    let max = pipeline.config().max_line_bytes;
    let mut buf = BytesMut::with_capacity(READ_CHUNK);
    let mut opened = false;
    loop {
        buf.reserve(READ_CHUNK);
        let n = tokio::select! {
            r = s.read_buf(&mut buf) => r?,
            _ = stop.changed() => {
                let _ = s.write_all(relp::SERVERCLOSE).await;
                return Ok(());
            }
        };
        if n == 0 {
            return Ok(());
        }
        let received = LogTime::now();
        let mut batch = Vec::new();
        let mut acks: Vec<u64> = Vec::new();
        let mut out: Vec<u8> = Vec::new();
        let mut close = None;
        loop {
            let frame = match relp::decode(&mut buf, max) {
                Ok(Some(f)) => f,
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!(%peer, error = %e, "ending a RELP session");
                    let _ = s.write_all(relp::SERVERCLOSE).await;
                    return Err(io::Error::new(io::ErrorKind::InvalidData, e));
                }
            };
            match frame.command.as_str() {
                "open" => {
                    opened = true;
                    out.extend(relp::response(frame.txnr, 200, "OK", Some(&relp::open_offers(max))));
                }
                "syslog" if opened => {
                    let bytes = trim_datagram(&frame.data);
                    if !bytes.is_empty() {
                        batch.push(RawLine { received, peer: Some(peer), transport, bytes });
                    }
                    acks.push(frame.txnr);
                }
                "close" => {
                    close = Some(frame.txnr);
                    break;
                }
                _ if !opened => {
                    let _ = s.write_all(relp::SERVERCLOSE).await;
                    return Err(io::Error::new(io::ErrorKind::InvalidData, "RELP command before open"));
                }
                _ => out.extend(relp::response(frame.txnr, 500, "command not supported", None)),
            }
        }
        // Acknowledge only what is durable; answers keep the order of the requests.
        if !batch.is_empty() {
            if let Err(e) = pipeline.ingest(batch).await {
                let _ = s.write_all(relp::SERVERCLOSE).await;
                return Err(io::Error::other(e));
            }
        }
        for txnr in acks {
            out.extend(relp::response(txnr, 200, "OK", None));
        }
        if let Some(txnr) = close {
            out.extend(format!("{txnr} rsp 0\n").into_bytes());
        }
        if !out.is_empty() {
            s.write_all(&out).await?;
            s.flush().await?;
        }
        if close.is_some() {
            let _ = s.shutdown().await;
            return Ok(());
        }
    }
}

/// The inode of a socket, to find it in /proc/net/udp.
fn socket_inode(socket: &UdpSocket) -> Option<u64> {
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(format!("/proc/self/fd/{}", socket.as_raw_fd())).ok().map(|m| m.ino())
}

/// Reads the kernel's drop counters of our UDP sockets every few seconds.
async fn watch_udp_drops(inodes: Vec<u64>, pipeline: Arc<Pipeline>, mut stop: watch::Receiver<bool>) {
    loop {
        let mut total = 0;
        for file in ["/proc/net/udp", "/proc/net/udp6"] {
            if let Ok(text) = tokio::fs::read_to_string(file).await {
                total += udp_drops(&text, &inodes);
            }
        }
        pipeline.stats().udp_kernel_drops.store(total, Ordering::Relaxed);
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(2)) => {}
            _ = stop.changed() => return,
        }
    }
}

/// The `drops` column of the lines of /proc/net/udp whose inode is one of ours.
fn udp_drops(text: &str, inodes: &[u64]) -> u64 {
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            let inode: u64 = cols.get(9)?.parse().ok()?;
            inodes.contains(&inode).then(|| cols.last()?.parse::<u64>().ok()).flatten()
        })
        .sum()
}

#[cfg(test)]
mod tests {
    #[test]
    fn udp_drop_counters_are_read_for_our_sockets() {
        let text = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n\
                    1: 0100007F:15AA 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 4242 2 0000000000000000 17\n\
                    2: 0100007F:15AB 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 999 2 0000000000000000 5\n";
        assert_eq!(super::udp_drops(text, &[4242]), 17);
        assert_eq!(super::udp_drops(text, &[1]), 0);
    }
}
