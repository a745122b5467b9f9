//! `GET /{client}/stream`: an organisation's change stream as server-sent events, after
//! OpenCTI's live stream: a `connected` event, then every change from the consumer's position
//! (`from`, or the `Last-Event-ID` it reconnects with) as `create`/`update`/`delete` with its
//! STIX object, then live changes as they commit, and a `heartbeat` carrying the position when
//! nothing happens.
//!
//! Each event is prepared once by its organisation's framer ([`framer`]); a consumer
//! ([`consumer`]) applies its options, clearance and filter to prepared events and writes
//! them as SSE text, a batch of frames to a chunk.

mod consumer;
mod framer;

use axum::body::{Body, Bytes};
use axum::extract::{Extension, Path, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::Response;
use octo_store::{AsOf, EventId, EventPosition};
use serde_json::json;
use tokio::sync::mpsc;
use tokio_stream::StreamExt as _;

use crate::auth::Principal;
use crate::error::{ApiError, ApiResult};
use crate::params::Params;
use crate::{blocking, AppState};
use consumer::{frame, options_from, Consumer};
pub(crate) use framer::Watchers;
use framer::{Prepared, BATCH};
use octo_stream::Tlp;

/// Prepared events read from the prepared store per round of a catch-up.
const STORED_BATCH: usize = 2_000;

fn recover_from(p: &Params, headers: &HeaderMap) -> ApiResult<Option<octo_store::Timestamp>> {
    let given = p
        .get("recover")
        .map(str::to_owned)
        .or_else(|| headers.get("recover-date").and_then(|v| v.to_str().ok()).map(str::to_owned));
    given.map(|v| crate::params::parse_time(&v).map_err(|m| ApiError::bad_request(format!("recover: {m}")))).transpose()
}

fn position_from(p: &Params, headers: &HeaderMap) -> ApiResult<Option<EventPosition>> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let given = p.get("from").map(str::to_owned).or_else(|| header("from")).or_else(|| header("last-event-id"));
    given.map(|v| v.trim().parse::<EventPosition>().map_err(|e| ApiError::bad_request(e.to_string()))).transpose()
}

/// The change stream of an organisation.
#[utoipa::path(get, path = "/{client}/stream", tag = "Stream",
    params(("client" = String, Path),
        ("from" = Option<String>, Query, description = "An event id (`1620249512318-0`) to resume after, or a millisecond timestamp; `0` for everything. Also as the `from` or `Last-Event-ID` header. Absent: live only."),
        ("no-dependencies" = Option<bool>, Query, description = "Do not send an object's unseen references before it (default false)"),
        ("listen-delete" = Option<bool>, Query, description = "Send deletes (default true)"),
        ("with-inferences" = Option<bool>, Query, description = "Send objects that exist only through inference (default false)"),
        ("recover" = Option<String>, Query, description = "First send every object as it was at this date (also the recover-date header), then the events from `from` (default: from that date)")),
    responses((status = 200, description = "text/event-stream: connected, create, update, delete, heartbeat", content_type = "text/event-stream"),
        (status = 400, body = super::ErrorBody), (status = 404, body = super::ErrorBody)))]
pub(crate) async fn stream(
    State(s): State<AppState>,
    Path(client): Path<String>,
    Extension(principal): Extension<Principal>,
    headers: HeaderMap,
    p: Params,
) -> ApiResult<Response> {
    open(s, client, principal.clearance, headers, p, None).await
}

/// A live stream: the change stream through a saved filter.
#[utoipa::path(get, path = "/{client}/stream/{id}", tag = "Stream",
    params(("client" = String, Path), ("id" = String, Path, description = "The live stream"),
        ("from" = Option<String>, Query, description = "As for /{client}/stream"),
        ("recover" = Option<String>, Query, description = "As for /{client}/stream")),
    responses((status = 200, description = "text/event-stream", content_type = "text/event-stream"),
        (status = 404, body = super::ErrorBody)))]
pub(crate) async fn live_stream(
    State(s): State<AppState>,
    Path((client, id)): Path<(String, String)>,
    Extension(principal): Extension<Principal>,
    headers: HeaderMap,
    p: Params,
) -> ApiResult<Response> {
    let saved = super::live_streams::load(&s, &client, &id).await?;
    open(s, client, principal.clearance, headers, p, Some(saved.filters)).await
}

async fn open(
    s: AppState,
    client: String,
    clearance: Tlp,
    headers: HeaderMap,
    p: Params,
    filter: Option<octo_stream::FilterGroup>,
) -> ApiResult<Response> {
    let graph = s.graph(&client)?;
    let given = position_from(&p, &headers)?;
    let options = options_from(&p, &headers)?;
    let recover = recover_from(&p, &headers)?;
    let bus = s.bus();
    let (g, b, organisation) = (graph.clone(), bus.clone(), client.clone());
    let (bounds, trimmed) =
        blocking(move || Ok((b.bounds(&organisation, &g)?, b.trimmed_until(&organisation, &g)?))).await?;
    // A position from before what retention removed: the consumer has missed events for good.
    let too_old = match (given, trimmed) {
        (Some(EventPosition::After(id)), Some(t)) => id < t,
        (Some(EventPosition::AtOrAfterMillis(ms)), Some(t)) => ms <= t.ms,
        _ => false,
    };
    let mut position = match (given, recover) {
        (Some(p), _) => p,
        // A snapshot as known at the date, then every event from that millisecond on (an event
        // in the snapshot's millisecond may come twice; none is lost).
        (None, Some(date)) => EventPosition::AtOrAfterMillis(u64::try_from(date.as_millis()).unwrap_or(0)),
        (None, None) => bounds.map_or(EventPosition::Start, |(_, last)| EventPosition::After(last)),
    };
    let mut reached: Option<EventId> = match position {
        EventPosition::After(id) => Some(id),
        _ => None,
    };
    let directory = s.shared().organisations.directory(&client).ok();
    let (g, b, state, organisation) = (graph.clone(), bus.clone(), s.clone(), client.clone());
    let framer = blocking(move || {
        state.shared().watchers.subscribe(&organisation, g, b, directory, state.shared().shutting_down.subscribe())
    })
    .await?;
    let mut wake = framer.published.clone();
    let stored = framer.store.clone();
    let mut stopping = s.shared().shutting_down.subscribe();
    let heartbeat = s.heartbeat();
    let (tx, rx) = mpsc::channel::<Bytes>(16);
    let connected = json!({
        "organisation": client,
        "first_event_id": bounds.map(|(first, _)| first.to_string()),
        "last_event_id": bounds.map(|(_, last)| last.to_string()),
        "from": reached.map(|r| r.to_string()),
    });
    let error_frame = |data: serde_json::Value| frame(None, "error", &data.to_string());
    tokio::spawn(async move {
        if tx.send(frame(None, "connected", &connected.to_string())).await.is_err() {
            return;
        }
        if too_old {
            let message = format!(
                "the position is older than the stream's retention: events up to {} are gone; reconnect with recover to rebuild the state",
                trimmed.map(|t| t.to_string()).unwrap_or_default()
            );
            let _ = tx.send(error_frame(json!({"message": message, "code": "RETENTION"}))).await;
            return;
        }
        let mut consumer = Some(Consumer::new(options, filter.clone(), clearance));
        if let Some(date) = recover {
            let (g, sender) = (graph.clone(), tx.clone());
            let mut c = Consumer::new(options, filter.clone(), clearance);
            let id = reached.map_or_else(|| "0-0".to_owned(), |r| r.to_string());
            let at = AsOf { valid_time: date, tx_time: Some(date) };
            match blocking(move || Ok(c.snapshot(&g, at, &id, &sender).map(|()| c)?)).await {
                Ok(c) => consumer = Some(c),
                Err(e) => {
                    let _ = tx.send(error_frame(json!({"message": e.message}))).await;
                    return;
                }
            }
        }
        // Read the prepared store, then the log, until caught up; then take what the
        // organisation's framer publishes; read again only when a published batch does not
        // follow on (missed, or raced).
        let mut read_log = true;
        loop {
            if *stopping.borrow() {
                return;
            }
            if read_log {
                wake.borrow_and_update();
                let (g, state, organisation, bus) = (graph.clone(), s.clone(), client.clone(), bus.clone());
                let stored = stored.clone();
                let mut c = consumer.take().unwrap_or(Consumer::new(options, filter.clone(), clearance));
                let mut reached_now = reached;
                let read = blocking(move || {
                    let mut out = String::new();
                    // Retention may have removed events this consumer has not had yet.
                    let gone = |t: EventId| {
                        ApiError::conflict(format!(
                            "the stream fell behind its retention: events up to {t} are gone; reconnect with recover"
                        ))
                    };
                    if let Some(store) = &stored {
                        // What the log no longer holds is not sent from the prepared store either
                        // (the framer trims it later).
                        let held = match (position, bus.trimmed_until(&organisation, &g)?) {
                            (EventPosition::After(p), Some(t)) if p < t => return Err(gone(t)),
                            (EventPosition::Start, Some(t)) => EventPosition::After(t),
                            (EventPosition::AtOrAfterMillis(ms), Some(t)) if ms <= t.ms => EventPosition::After(t),
                            (p, _) => p,
                        };
                        let read = store.read(held, STORED_BATCH).map_err(|e| ApiError::internal(e.to_string()))?;
                        if let Some((events, covered)) = read {
                            let prepared: Vec<Prepared> =
                                events.into_iter().map(|(id, e)| Prepared::stored(id, e)).collect();
                            // About the size of the frames: one allocation, not a doubling series.
                            out.reserve(prepared.iter().map(|p| p.event.framed_len()).sum());
                            c.frames(&g, &prepared, &mut reached_now, &mut out)?;
                            return Ok((c, out, Some(covered), reached_now));
                        }
                    }
                    // Not prepared yet (or no prepared store): from the log, prepared here.
                    let batch = bus.events_unless_trimmed(&organisation, &g, position, BATCH)?.map_err(gone)?;
                    let whole = octo_stream::whole_transactions(&batch, batch.len() < BATCH);
                    let last = whole.last().map(|e| e.id);
                    let prepared = state.shared().watchers.prepared.get(&organisation, &g, whole)?;
                    c.frames(&g, prepared.iter().map(|p| &**p), &mut reached_now, &mut out)?;
                    Ok((c, out, last, reached_now))
                })
                .await;
                let (c, out, last) = match read {
                    Ok((c, out, last, r)) => {
                        reached = r.or(reached);
                        (c, out, last)
                    }
                    Err(e) => {
                        let code = if e.status == axum::http::StatusCode::CONFLICT { "RETENTION" } else { "INTERNAL" };
                        let _ = tx.send(error_frame(json!({"message": e.message, "code": code}))).await;
                        return;
                    }
                };
                consumer = Some(c);
                if let Some(last) = last {
                    if !out.is_empty() && tx.send(Bytes::from(out)).await.is_err() {
                        return;
                    }
                    reached = Some(last);
                    position = EventPosition::After(last);
                    continue;
                }
                read_log = false;
            }
            tokio::select! {
                changed = wake.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    let published = wake.borrow_and_update().clone();
                    let follows = published.as_ref().is_some_and(|p| position == p.before.map_or(EventPosition::Start, EventPosition::After));
                    let Some(published) = published.filter(|_| follows) else {
                        read_log = true;
                        continue;
                    };
                    let mut c = consumer.take().unwrap_or(Consumer::new(options, filter.clone(), clearance));
                    let mut reached_now = reached;
                    let mut out = String::new();
                    // Without a filter or dependencies, a consumer reads nothing from the graph
                    // for prepared events (a marking change aside): no need for the blocking pool.
                    let result = if !c.reads_graph(&published.prepared) {
                        c.frames(&graph, published.prepared.iter().map(|p| &**p), &mut reached_now, &mut out)
                            .map(|()| (c, out))
                            .map_err(ApiError::from)
                    } else {
                        let (g, p) = (graph.clone(), published.clone());
                        blocking(move || {
                            c.frames(&g, p.prepared.iter().map(|p| &**p), &mut reached_now, &mut out)?;
                            Ok((c, out, reached_now))
                        })
                        .await
                        .map(|(c, out, r)| {
                            reached_now = r;
                            (c, out)
                        })
                    };
                    let (c, out) = match result {
                        Ok(r) => r,
                        Err(e) => {
                            let _ = tx.send(error_frame(json!({"message": e.message, "code": "INTERNAL"}))).await;
                            return;
                        }
                    };
                    consumer = Some(c);
                    if !out.is_empty() && tx.send(Bytes::from(out)).await.is_err() {
                        return;
                    }
                    reached = Some(published.last);
                    position = EventPosition::After(published.last);
                }
                _ = tokio::time::sleep(heartbeat) => {
                    let id = reached.unwrap_or(EventId::ZERO);
                    let data = json!({"position": id.to_string()}).to_string();
                    if tx.send(frame(Some(&id), "heartbeat", &data)).await.is_err() {
                        return;
                    }
                }
                _ = tx.closed() => return,
                _ = stopping.changed() => return,
            }
        }
    });
    let body =
        Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(rx).map(Ok::<_, std::convert::Infallible>));
    let mut response = Response::new(body);
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(response)
}
