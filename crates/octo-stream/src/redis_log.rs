//! The event log on Redis Streams, so that several Octograph instances can serve one
//! organisation's stream: one stream key per organisation (`<prefix>:<org>:events`), entries with
//! Octograph's own event ids (`<ms>-<seq>` is Redis's id form), fields `tx` (the transaction id),
//! `p` (the change as the graph wrote it) and `prev` (the id of the event before it, when there
//! was one).
//!
//! The embedded log stays the source: [`RedisLog::forward`] copies what the store holds and
//! Redis does not yet, so it can run after every commit or on a timer and resumes where it
//! stopped, even across restarts (Redis knows its last id). Retention is Redis's own
//! (`XADD … MAXLEN ~ N`, `XTRIM`); because every entry names its predecessor, the first entry
//! still held says exactly up to where events were trimmed, however Redis trimmed them.

use std::sync::Mutex;
use std::time::Duration;

use octo_store::{Event, EventId, EventPosition, Store};

/// Why a Redis operation failed.
#[derive(Debug, thiserror::Error)]
pub enum RedisLogError {
    /// Redis answered with an error or could not be reached.
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// The embedded store failed while forwarding.
    #[error(transparent)]
    Store(#[from] octo_store::StoreError),
    /// An entry that is not Octograph's (a foreign id or missing fields).
    #[error("redis stream entry {0} is not an Octograph event")]
    Foreign(String),
}

type Result<T> = std::result::Result<T, RedisLogError>;

/// Raw XRANGE/XREAD entries: `[id, [field, value, …]]`.
type Entries = Vec<(String, Vec<Vec<u8>>)>;

/// Connections kept for reuse (opening one costs a TCP handshake per call otherwise).
const POOLED: usize = 8;

/// How long a pooled connection waits for an answer (a blocking read lengthens it for the call).
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(5);

/// Events read from the store per forwarded batch.
const FORWARD_BATCH: usize = 1000;

/// An organisation-keyed event log on one Redis server.
pub struct RedisLog {
    client: redis::Client,
    prefix: String,
    /// Idle connections with the default response timeout (not for blocking reads).
    pool: Mutex<Vec<redis::Connection>>,
}

fn parse_id(id: &str) -> Option<EventId> {
    let (ms, seq) = id.split_once('-')?;
    Some(EventId { ms: ms.parse().ok()?, seq: seq.parse().ok()? })
}

/// An entry as an event, with the id of the event before it.
fn to_event(id: &str, fields: &[Vec<u8>]) -> Result<(Event, Option<EventId>)> {
    let foreign = || RedisLogError::Foreign(id.to_owned());
    let id = parse_id(id).ok_or_else(foreign)?;
    let mut tx_id = None;
    let mut payload = None;
    let mut prev = None;
    for pair in fields.chunks(2) {
        let [k, v] = pair else { continue };
        let text = || std::str::from_utf8(v).ok();
        match k.as_slice() {
            b"tx" => tx_id = text().and_then(|t| t.parse().ok()),
            b"p" => payload = Some(v.clone()),
            b"prev" => prev = Some(text().and_then(parse_id).ok_or_else(foreign)?),
            _ => {}
        }
    }
    Ok((Event { id, tx_id: tx_id.ok_or_else(foreign)?, payload: payload.ok_or_else(foreign)? }, prev))
}

/// A connection borrowed from the pool, returned to it when dropped (unless it failed).
struct Pooled<'a> {
    log: &'a RedisLog,
    con: Option<redis::Connection>,
}

impl Pooled<'_> {
    /// Runs `f` on the connection; a connection that failed may be half-read, so it is dropped
    /// instead of going back to the pool.
    fn run<T>(&mut self, f: impl FnOnce(&mut redis::Connection) -> redis::RedisResult<T>) -> Result<T> {
        let con = self.con.as_mut().expect("a pooled connection is present until dropped");
        f(con).map_err(|e| {
            self.con = None;
            e.into()
        })
    }

    fn query<T: redis::FromRedisValue>(&mut self, cmd: &redis::Cmd) -> Result<T> {
        self.run(|con| cmd.query(con))
    }

    fn pipe(&mut self, pipe: &redis::Pipeline) -> Result<()> {
        self.run(|con| pipe.query::<()>(con))
    }
}

impl Drop for Pooled<'_> {
    fn drop(&mut self) {
        if let Some(con) = self.con.take() {
            let mut pool = self.log.pool.lock().unwrap_or_else(|p| p.into_inner());
            if pool.len() < POOLED {
                pool.push(con);
            }
        }
    }
}

impl RedisLog {
    /// A log on the Redis at `url` (`redis://127.0.0.1:6379/`), its keys starting with `prefix`.
    pub fn open(url: &str, prefix: &str) -> Result<Self> {
        Ok(RedisLog { client: redis::Client::open(url)?, prefix: prefix.to_owned(), pool: Mutex::new(Vec::new()) })
    }

    /// The prefix of this log's keys.
    pub fn key_prefix(&self) -> &str {
        &self.prefix
    }

    fn key(&self, organisation: &str) -> String {
        format!("{}:{organisation}:events", self.prefix)
    }

    fn connection(&self) -> Result<Pooled<'_>> {
        let idle = self.pool.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let con = match idle {
            Some(c) => c,
            None => {
                let con = self.client.get_connection_with_timeout(RESPONSE_TIMEOUT)?;
                con.set_read_timeout(Some(RESPONSE_TIMEOUT))?;
                con
            }
        };
        Ok(Pooled { log: self, con: Some(con) })
    }

    /// Whether Redis answers.
    pub fn ping(&self) -> Result<()> {
        self.connection()?.query::<String>(&redis::cmd("PING")).map(drop)
    }

    /// `XADD`s `events`, each naming its predecessor, in one round trip.
    fn xadd(
        &self,
        organisation: &str,
        events: &[&Event],
        mut prev: Option<EventId>,
        max_len: Option<u64>,
    ) -> Result<()> {
        if events.is_empty() {
            return Ok(());
        }
        let key = self.key(organisation);
        let mut pipe = redis::pipe();
        for e in events {
            let mut cmd = redis::cmd("XADD");
            cmd.arg(&key);
            if let Some(n) = max_len {
                cmd.arg("MAXLEN").arg("~").arg(n);
            }
            cmd.arg(e.id.to_string()).arg("tx").arg(e.tx_id).arg("p").arg(&e.payload[..]);
            if let Some(p) = prev {
                cmd.arg("prev").arg(p.to_string());
            }
            pipe.add_command(cmd).ignore();
            prev = Some(e.id);
        }
        self.connection()?.pipe(&pipe)
    }

    /// The last event held, if any.
    pub fn last_id(&self, organisation: &str) -> Result<Option<EventId>> {
        let entries: Entries = self
            .connection()?
            .query(redis::cmd("XREVRANGE").arg(self.key(organisation)).arg("+").arg("-").arg("COUNT").arg(1))?;
        Ok(entries.first().and_then(|(id, _)| parse_id(id)))
    }

    /// The first entry held, with its predecessor.
    fn first(&self, organisation: &str) -> Result<Option<(Event, Option<EventId>)>> {
        let entries: Entries = self
            .connection()?
            .query(redis::cmd("XRANGE").arg(self.key(organisation)).arg("-").arg("+").arg("COUNT").arg(1))?;
        entries.first().map(|(id, fields)| to_event(id, fields)).transpose()
    }

    /// How many events are held.
    pub fn len(&self, organisation: &str) -> Result<u64> {
        self.connection()?.query(redis::cmd("XLEN").arg(self.key(organisation)))
    }

    /// The first and last events held, if any.
    pub fn bounds(&self, organisation: &str) -> Result<Option<(EventId, EventId)>> {
        let first = self.first(organisation)?.map(|(e, _)| e.id);
        Ok(first.zip(self.last_id(organisation)?))
    }

    /// The last event no longer held, if events were trimmed (as the embedded log's
    /// `events_trimmed_until`): the predecessor named by the first entry held.
    pub fn trimmed_until(&self, organisation: &str) -> Result<Option<EventId>> {
        Ok(self.first(organisation)?.and_then(|(_, prev)| prev))
    }

    /// Up to `limit` events from `from` on, in id order (as the embedded log's `events`).
    pub fn events(&self, organisation: &str, from: EventPosition, limit: usize) -> Result<Vec<Event>> {
        let start = match from {
            EventPosition::Start => "-".to_owned(),
            // `(` makes the start exclusive (Redis 6.2 and later).
            EventPosition::After(id) => format!("({id}"),
            EventPosition::AtOrAfterMillis(ms) => format!("{ms}-0"),
        };
        let entries: Entries = self
            .connection()?
            .query(redis::cmd("XRANGE").arg(self.key(organisation)).arg(start).arg("+").arg("COUNT").arg(limit))?;
        entries.iter().map(|(id, fields)| to_event(id, fields).map(|(e, _)| e)).collect()
    }

    /// Blocks until an event after `after` is held or `timeout` passes; returns the last event
    /// then held. The connection's response timeout is lengthened past the block for the call
    /// (the client's default would cut a long `XREAD BLOCK`).
    pub fn wait(&self, organisation: &str, after: Option<EventId>, timeout: Duration) -> Result<Option<EventId>> {
        let mut con = self.connection()?;
        con.run(|c| c.set_read_timeout(Some(timeout + Duration::from_secs(5))))?;
        let start = after.map_or_else(|| "0-0".to_owned(), |a| a.to_string());
        let block_ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX).max(1);
        let got: Option<Vec<(String, Entries)>> = con.query(
            redis::cmd("XREAD")
                .arg("COUNT")
                .arg(1)
                .arg("BLOCK")
                .arg(block_ms)
                .arg("STREAMS")
                .arg(self.key(organisation))
                .arg(start),
        )?;
        // Back to the pool's response timeout.
        con.run(|c| c.set_read_timeout(Some(RESPONSE_TIMEOUT)))?;
        drop(con);
        match got {
            Some(streams) if streams.iter().any(|(_, entries)| !entries.is_empty()) => self.last_id(organisation),
            _ => Ok(after.or(self.last_id(organisation)?)),
        }
    }

    /// Copies to Redis the events `store` holds after the last one Redis has, in batches;
    /// returns how many. Safe to run from several places at once: an event is added once.
    pub fn forward(&self, organisation: &str, store: &dyn Store, max_len: Option<u64>) -> Result<usize> {
        let mut known = None;
        self.forward_from(organisation, store, &mut known, max_len)
    }

    /// [`forward`](Self::forward) for a caller that remembers the last id it forwarded in
    /// `known` (saving a round trip per call). When `known` is `None`, or when another writer
    /// appended meanwhile (Redis refuses an id not above its last), Redis's own last id is read.
    /// After such a race the count leaves out what this call added before it noticed.
    pub fn forward_from(
        &self,
        organisation: &str,
        store: &dyn Store,
        known: &mut Option<EventId>,
        max_len: Option<u64>,
    ) -> Result<usize> {
        let mut total = 0;
        let mut retried = false;
        loop {
            let (last, prev) = match *known {
                Some(last) => (Some(last), Some(last)),
                None => {
                    let last = self.last_id(organisation)?;
                    // An empty stream starts where the store's own retention stopped, so a
                    // position before that is known to be gone.
                    let prev = match last {
                        Some(l) => Some(l),
                        None => store.snapshot()?.events_trimmed_until()?,
                    };
                    (last, prev)
                }
            };
            let from = last.map_or(EventPosition::Start, EventPosition::After);
            let batch = store.snapshot()?.events(from, FORWARD_BATCH)?;
            let Some(end) = batch.last().map(|e| e.id) else {
                *known = last;
                return Ok(total);
            };
            let refs: Vec<&Event> = batch.iter().collect();
            match self.xadd(organisation, &refs, prev, max_len) {
                Ok(()) => {}
                Err(RedisLogError::Redis(_)) if known.is_some() && !retried => {
                    // Most likely someone else appended (Redis refuses an id not above its
                    // last; the rest of the pipeline still ran): learn Redis's last id, go again.
                    *known = None;
                    retried = true;
                    continue;
                }
                Err(e) => {
                    *known = None;
                    return Err(e);
                }
            }
            *known = Some(end);
            total += batch.len();
            if batch.len() < FORWARD_BATCH {
                return Ok(total);
            }
        }
    }

    /// Trims to the last `keep_last` events and/or those at or after `before_ms`, exactly;
    /// returns how many went.
    pub fn trim(&self, organisation: &str, keep_last: Option<u64>, before_ms: Option<u64>) -> Result<u64> {
        let key = self.key(organisation);
        let mut con = self.connection()?;
        let mut removed: u64 = 0;
        if let Some(n) = keep_last {
            removed += con.query::<u64>(redis::cmd("XTRIM").arg(&key).arg("MAXLEN").arg("=").arg(n))?;
        }
        if let Some(ms) = before_ms {
            removed += con.query::<u64>(redis::cmd("XTRIM").arg(&key).arg("MINID").arg("=").arg(format!("{ms}-0")))?;
        }
        Ok(removed)
    }

    /// Removes an organisation's stream (tests, and an organisation deleted).
    pub fn delete(&self, organisation: &str) -> Result<()> {
        self.connection()?.query::<()>(redis::cmd("DEL").arg(self.key(organisation)))
    }
}
