//! The event log on Redis Streams, so that several Octograph instances can serve one
//! organisation's stream: one stream key per organisation (`<prefix>:<org>:events`), entries with
//! Octograph's own event ids (`<ms>-<seq>` is Redis's id form), fields `tx` (the transaction id)
//! and `p` (the change as the graph wrote it).
//!
//! The embedded log stays the source: [`RedisLog::forward`] copies what the store holds and
//! Redis does not yet, so it can run after every commit or on a timer and resumes where it
//! stopped, even across restarts (Redis knows its last id). Retention is Redis's own
//! (`XADD … MAXLEN ~ N`).

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

/// An organisation-keyed event log on one Redis server.
pub struct RedisLog {
    client: redis::Client,
    prefix: String,
}

fn parse_id(id: &str) -> Option<EventId> {
    let (ms, seq) = id.split_once('-')?;
    Some(EventId { ms: ms.parse().ok()?, seq: seq.parse().ok()? })
}

fn to_event(id: &str, fields: &[Vec<u8>]) -> Result<Event> {
    let foreign = || RedisLogError::Foreign(id.to_owned());
    let id = parse_id(id).ok_or_else(foreign)?;
    let mut tx_id = None;
    let mut payload = None;
    for pair in fields.chunks(2) {
        match pair {
            [k, v] if k == b"tx" => tx_id = std::str::from_utf8(v).ok().and_then(|t| t.parse().ok()),
            [k, v] if k == b"p" => payload = Some(v.clone()),
            _ => {}
        }
    }
    Ok(Event { id, tx_id: tx_id.ok_or_else(foreign)?, payload: payload.ok_or_else(foreign)? })
}

impl RedisLog {
    /// A log on the Redis at `url` (`redis://127.0.0.1:6379/`), its keys starting with `prefix`.
    pub fn open(url: &str, prefix: &str) -> Result<Self> {
        Ok(RedisLog { client: redis::Client::open(url)?, prefix: prefix.to_owned() })
    }

    /// The prefix of this log's keys.
    pub fn key_prefix(&self) -> &str {
        &self.prefix
    }

    fn key(&self, organisation: &str) -> String {
        format!("{}:{organisation}:events", self.prefix)
    }

    fn connection(&self) -> Result<redis::Connection> {
        Ok(self.client.get_connection_with_timeout(Duration::from_secs(5))?)
    }

    /// Appends events (in id order) not yet held, trimming to about `max_len` entries.
    pub fn append(&self, organisation: &str, events: &[Event], max_len: Option<u64>) -> Result<usize> {
        let last = self.last_id(organisation)?;
        let fresh: Vec<&Event> = events.iter().filter(|e| last.is_none_or(|l| e.id > l)).collect();
        if fresh.is_empty() {
            return Ok(0);
        }
        let key = self.key(organisation);
        let mut pipe = redis::pipe();
        for e in &fresh {
            let mut cmd = redis::cmd("XADD");
            cmd.arg(&key);
            if let Some(n) = max_len {
                cmd.arg("MAXLEN").arg("~").arg(n);
            }
            cmd.arg(e.id.to_string()).arg("tx").arg(e.tx_id).arg("p").arg(&e.payload[..]);
            pipe.add_command(cmd).ignore();
        }
        pipe.query::<()>(&mut self.connection()?)?;
        Ok(fresh.len())
    }

    /// The last event held, if any.
    pub fn last_id(&self, organisation: &str) -> Result<Option<EventId>> {
        let entries: Entries = redis::cmd("XREVRANGE")
            .arg(self.key(organisation))
            .arg("+")
            .arg("-")
            .arg("COUNT")
            .arg(1)
            .query(&mut self.connection()?)?;
        Ok(entries.first().and_then(|(id, _)| parse_id(id)))
    }

    /// The first and last events held, if any.
    pub fn bounds(&self, organisation: &str) -> Result<Option<(EventId, EventId)>> {
        let first: Entries = redis::cmd("XRANGE")
            .arg(self.key(organisation))
            .arg("-")
            .arg("+")
            .arg("COUNT")
            .arg(1)
            .query(&mut self.connection()?)?;
        let first = first.first().and_then(|(id, _)| parse_id(id));
        Ok(first.zip(self.last_id(organisation)?))
    }

    /// Up to `limit` events from `from` on, in id order (as the embedded log's `events`).
    pub fn events(&self, organisation: &str, from: EventPosition, limit: usize) -> Result<Vec<Event>> {
        let start = match from {
            EventPosition::Start => "-".to_owned(),
            // `(` makes the start exclusive (Redis 6.2 and later).
            EventPosition::After(id) => format!("({id}"),
            EventPosition::AtOrAfterMillis(ms) => format!("{ms}-0"),
        };
        let entries: Entries = redis::cmd("XRANGE")
            .arg(self.key(organisation))
            .arg(start)
            .arg("+")
            .arg("COUNT")
            .arg(limit)
            .query(&mut self.connection()?)?;
        entries.iter().map(|(id, fields)| to_event(id, fields)).collect()
    }

    /// Blocks until an event after `after` is held or `timeout` passes; returns the last event
    /// then held. Uses a connection of its own with no response timeout shorter than the block
    /// (the client's default would cut a long `XREAD BLOCK`).
    pub fn wait(&self, organisation: &str, after: Option<EventId>, timeout: Duration) -> Result<Option<EventId>> {
        let mut con = self.client.get_connection()?;
        con.set_read_timeout(Some(timeout + Duration::from_secs(5)))?;
        let start = after.map_or_else(|| "0-0".to_owned(), |a| a.to_string());
        let block_ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX).max(1);
        let got: Option<Vec<(String, Entries)>> = redis::cmd("XREAD")
            .arg("COUNT")
            .arg(1)
            .arg("BLOCK")
            .arg(block_ms)
            .arg("STREAMS")
            .arg(self.key(organisation))
            .arg(start)
            .query(&mut con)?;
        match got {
            Some(streams) if streams.iter().any(|(_, entries)| !entries.is_empty()) => self.last_id(organisation),
            _ => Ok(after.or(self.last_id(organisation)?)),
        }
    }

    /// Copies to Redis the events `store` holds after the last one Redis has, in batches;
    /// returns how many. Safe to run from several places at once: an event is added once.
    pub fn forward(&self, organisation: &str, store: &dyn Store, max_len: Option<u64>) -> Result<usize> {
        let mut total = 0;
        loop {
            let from = self.last_id(organisation)?.map_or(EventPosition::Start, EventPosition::After);
            let batch = store.snapshot()?.events(from, 1000)?;
            if batch.is_empty() {
                return Ok(total);
            }
            total += self.append(organisation, &batch, max_len)?;
            if batch.len() < 1000 {
                return Ok(total);
            }
        }
    }

    /// Removes an organisation's stream (tests, and an organisation deleted).
    pub fn delete(&self, organisation: &str) -> Result<()> {
        redis::cmd("DEL").arg(self.key(organisation)).query::<()>(&mut self.connection()?)?;
        Ok(())
    }
}
