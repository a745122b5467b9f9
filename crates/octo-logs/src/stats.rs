//! Counters of the log pipeline, read by the server's `/metrics`. Plain atomics: every line
//! touches them, so they must cost no lock.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use crate::raw_store::Transport;

const TRANSPORTS: [Transport; 5] = [Transport::Udp, Transport::Tcp, Transport::Tls, Transport::Relp, Transport::Api];

/// What the pipeline has done since the process started.
#[derive(Debug, Default)]
pub struct LogStats {
    lines: [AtomicU64; 5],
    bytes: [AtomicU64; 5],
    /// Lines made durable in the raw store.
    pub stored: AtomicU64,
    /// Group commits of the raw store.
    pub commits: AtomicU64,
    /// Batches the raw store failed to write (their senders were not acknowledged).
    pub store_errors: AtomicU64,
    /// Lines whose header could not be wholly read.
    pub parse_issues: AtomicU64,
    /// Lines cut at the size limit.
    pub truncated: AtomicU64,
    /// Lines dropped because their sender is no device and new ones are refused.
    pub refused: AtomicU64,
    /// Datagrams the kernel dropped because a UDP socket's buffer was full.
    pub udp_kernel_drops: AtomicU64,
    /// Open TCP, TLS and RELP connections.
    pub connections: AtomicI64,
    /// Lines of active devices classified into a message.
    pub classified: AtomicU64,
    /// Lines of active devices no service of theirs matched.
    pub unknown: AtomicU64,
    /// Stored lines not classified because classification lagged (replay classifies them).
    pub unclassified: AtomicU64,
    /// Evidence for the graph dropped because its consumer lagged or was absent.
    pub evidence_dropped: AtomicU64,
    /// Classified lines that could not be put in their table (the table store failed).
    pub table_errors: AtomicU64,
}

impl LogStats {
    /// Counts one received line.
    pub fn received(&self, t: Transport, bytes: usize) {
        let i = t as usize;
        self.lines[i].fetch_add(1, Ordering::Relaxed);
        self.bytes[i].fetch_add(bytes as u64, Ordering::Relaxed);
    }

    /// Lines and bytes received, by transport.
    pub fn by_transport(&self) -> Vec<(Transport, u64, u64)> {
        TRANSPORTS
            .iter()
            .map(|&t| {
                (t, self.lines[t as usize].load(Ordering::Relaxed), self.bytes[t as usize].load(Ordering::Relaxed))
            })
            .collect()
    }

    /// Every line received, over all transports.
    pub fn total_received(&self) -> u64 {
        self.lines.iter().map(|l| l.load(Ordering::Relaxed)).sum()
    }
}
