//! Where change streams read an organisation's events: the embedded store's own log (the
//! default), or a Redis Streams bus that the log is forwarded to. With the bus, consumers read
//! Redis (`XRANGE` to catch up, `XREAD BLOCK` to wait), so any instance that can prepare an
//! organisation's events serves its stream from one shared log with one retention; positions
//! (event ids) are the same on both, so a consumer can move between them.
//!
//! Forwarding runs twice over: right after every API write (so an event is on the bus when the
//! write's answer is sent) and in a thread per organisation woken by the store's commits (for
//! writes from elsewhere: log evidence, bits, imports), both serialised per organisation.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use octo_graph::{Graph, GraphError, Organisations};
use octo_store::{Event, EventId, EventPosition};
use octo_stream::redis_log::{RedisLog, RedisLogError};

use crate::error::{ApiError, ApiResult};

/// The change streams' event log.
#[derive(Clone, Default)]
pub enum EventBus {
    /// The embedded store's log.
    #[default]
    Store,
    /// A Redis Streams log, fed from the store.
    Redis(Arc<RedisBus>),
}

/// The Redis side of [`EventBus`].
pub struct RedisBus {
    log: RedisLog,
    /// `XADD … MAXLEN ~` bound (the count retention).
    max_len: Option<u64>,
    /// Per organisation, the last event forwarded (held while forwarding: one forwarder at a time).
    forwarded: Mutex<HashMap<String, Arc<Mutex<Option<EventId>>>>>,
    /// Organisations with a forwarding thread.
    running: Mutex<HashSet<String>>,
}

fn unavailable(e: RedisLogError) -> ApiError {
    match e {
        RedisLogError::Store(e) => GraphError::from(e).into(),
        other => ApiError::unavailable(format!("the change stream's Redis bus: {other}")),
    }
}

impl EventBus {
    /// A bus on the Redis at `url`, keys under `prefix`, about `max_len` events kept per
    /// organisation; fails when Redis does not answer.
    pub fn redis(url: &str, prefix: &str, max_len: Option<u64>) -> Result<Self, String> {
        let log = RedisLog::open(url, prefix).map_err(|e| format!("redis at {url}: {e}"))?;
        log.ping().map_err(|e| format!("redis at {url} does not answer: {e}"))?;
        Ok(EventBus::Redis(Arc::new(RedisBus { log, max_len, forwarded: Mutex::default(), running: Mutex::default() })))
    }

    /// The first and last events held.
    pub(crate) fn bounds(&self, organisation: &str, graph: &Graph) -> ApiResult<Option<(EventId, EventId)>> {
        match self {
            EventBus::Store => Ok(graph.store().snapshot().and_then(|s| s.event_bounds()).map_err(GraphError::from)?),
            EventBus::Redis(r) => r.log.bounds(organisation).map_err(unavailable),
        }
    }

    /// The last event removed by retention, if any.
    pub(crate) fn trimmed_until(&self, organisation: &str, graph: &Graph) -> ApiResult<Option<EventId>> {
        match self {
            EventBus::Store => {
                Ok(graph.store().snapshot().and_then(|s| s.events_trimmed_until()).map_err(GraphError::from)?)
            }
            EventBus::Redis(r) => r.log.trimmed_until(organisation).map_err(unavailable),
        }
    }

    /// Up to `limit` events from `position` on.
    pub(crate) fn events(
        &self,
        organisation: &str,
        graph: &Graph,
        position: EventPosition,
        limit: usize,
    ) -> ApiResult<Vec<Event>> {
        match self {
            EventBus::Store => {
                Ok(graph.store().snapshot().and_then(|s| s.events(position, limit)).map_err(GraphError::from)?)
            }
            EventBus::Redis(r) => r.log.events(organisation, position, limit).map_err(unavailable),
        }
    }

    /// Up to `limit` events from `position` on, or `Err(t)` when retention has removed events
    /// after `position` (up to `t`) that the caller has not had: never a silent gap.
    pub(crate) fn events_unless_trimmed(
        &self,
        organisation: &str,
        graph: &Graph,
        position: EventPosition,
        limit: usize,
    ) -> ApiResult<Result<Vec<Event>, EventId>> {
        let gone = |trimmed: Option<EventId>| match (position, trimmed) {
            (EventPosition::After(p), Some(t)) if p < t => Some(t),
            _ => None,
        };
        match self {
            EventBus::Store => {
                // One snapshot: the bound and the events agree.
                let snap = graph.store().snapshot().map_err(GraphError::from)?;
                if let Some(t) = gone(snap.events_trimmed_until().map_err(GraphError::from)?) {
                    return Ok(Err(t));
                }
                Ok(Ok(snap.events(position, limit).map_err(GraphError::from)?))
            }
            EventBus::Redis(r) => {
                // The events first, then the bound: a trim in between is reported, not skipped.
                let events = r.log.events(organisation, position, limit).map_err(unavailable)?;
                match gone(r.log.trimmed_until(organisation).map_err(unavailable)?) {
                    Some(t) => Ok(Err(t)),
                    None => Ok(Ok(events)),
                }
            }
        }
    }

    /// Blocks until an event after `after` is held or `timeout` passes; the last event held.
    /// A bus that cannot be reached counts as no news (after the timeout, not in a spin).
    pub(crate) fn wait(
        &self,
        organisation: &str,
        graph: &Graph,
        after: Option<EventId>,
        timeout: Duration,
    ) -> Option<EventId> {
        match self {
            EventBus::Store => graph.store().wait_for_events(after, timeout),
            EventBus::Redis(r) => match r.log.wait(organisation, after, timeout) {
                Ok(last) => last,
                Err(e) => {
                    tracing::warn!(error = %e, organisation, "cannot wait on the Redis bus");
                    std::thread::sleep(timeout);
                    after
                }
            },
        }
    }

    /// Copies what the store holds and the bus does not yet (nothing to do for the store's own
    /// log); returns how many events went.
    pub(crate) fn forward(&self, organisation: &str, graph: &Graph) -> ApiResult<usize> {
        let EventBus::Redis(r) = self else { return Ok(0) };
        let slot =
            r.forwarded.lock().unwrap_or_else(|p| p.into_inner()).entry(organisation.to_owned()).or_default().clone();
        let mut known = slot.lock().unwrap_or_else(|p| p.into_inner());
        r.log.forward_from(organisation, graph.store().as_ref(), &mut known, r.max_len).map_err(unavailable)
    }

    /// Forwards after a write: a failure is logged, not the write's (it committed; the
    /// organisation's forwarding thread tries again).
    pub(crate) fn forward_after_write(&self, organisation: &str, graph: &Graph) {
        if let Err(e) = self.forward(organisation, graph) {
            tracing::warn!(error = %e, organisation, "events not yet on the Redis bus");
        }
    }

    /// Applies the retention to the bus (the store's log is trimmed by the caller); how many
    /// went. Forwards first, so that nothing the store is about to drop misses the bus.
    pub(crate) fn trim(
        &self,
        organisation: &str,
        graph: &Graph,
        keep_last: Option<u64>,
        before_ms: Option<u64>,
    ) -> ApiResult<u64> {
        let EventBus::Redis(r) = self else { return Ok(0) };
        self.forward(organisation, graph)?;
        r.log.trim(organisation, keep_last, before_ms).map_err(unavailable)
    }

    /// Starts a forwarding thread for every organisation, now and as they are created (checked
    /// every second); a thread ends when its organisation is deleted or `stop` is set.
    pub(crate) fn start_forwarding(&self, organisations: Arc<Organisations>, stop: tokio::sync::watch::Receiver<bool>) {
        let EventBus::Redis(r) = self else { return };
        let (bus, r) = (self.clone(), r.clone());
        let spawned = std::thread::Builder::new().name("bus-forwarders".into()).spawn(move || {
            while !*stop.borrow() {
                match organisations.list() {
                    Ok(list) => {
                        for org in list {
                            if r.running.lock().unwrap_or_else(|p| p.into_inner()).insert(org.clone()) {
                                bus.spawn_forwarder(org, organisations.clone(), stop.clone());
                            }
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "cannot list organisations to forward their events"),
                }
                std::thread::sleep(Duration::from_secs(1));
            }
        });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot start forwarding events to Redis");
        }
    }

    fn spawn_forwarder(
        &self,
        organisation: String,
        organisations: Arc<Organisations>,
        stop: tokio::sync::watch::Receiver<bool>,
    ) {
        let EventBus::Redis(redis) = self else { return };
        let (bus, r) = (self.clone(), redis.clone());
        let name = format!("bus-{organisation}");
        let failed_org = organisation.clone();
        let spawned = std::thread::Builder::new().name(name).spawn(move || {
            let mut seen = None;
            let mut failing = false;
            while !*stop.borrow() {
                let Ok(graph) = organisations.get(&organisation) else { break };
                match bus.forward(&organisation, &graph) {
                    Ok(_) if failing => {
                        tracing::info!(organisation, "events reach the Redis bus again");
                        failing = false;
                    }
                    Ok(_) => {}
                    Err(e) => {
                        if !failing {
                            tracing::warn!(error = %e, organisation, "cannot forward events to the Redis bus; retrying");
                        }
                        failing = true;
                        std::thread::sleep(Duration::from_secs(1));
                        continue;
                    }
                }
                seen = graph.store().wait_for_events(seen, Duration::from_secs(1));
            }
            r.running.lock().unwrap_or_else(|p| p.into_inner()).remove(&organisation);
        });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot start forwarding an organisation's events");
            redis.running.lock().unwrap_or_else(|p| p.into_inner()).remove(&failed_org);
        }
    }

    /// Removes an organisation's stream from the bus (the organisation was deleted).
    pub(crate) fn delete(&self, organisation: &str) -> ApiResult<()> {
        let EventBus::Redis(r) = self else { return Ok(()) };
        r.forwarded.lock().unwrap_or_else(|p| p.into_inner()).remove(organisation);
        r.log.delete(organisation).map_err(unavailable)
    }
}
