//! `GET /{client}/stream`: an organisation's change stream as server-sent events, after
//! OpenCTI's live stream: a `connected` event, then every change from the consumer's position
//! (`from`, or the `Last-Event-ID` it reconnects with) as `create`/`update`/`delete` with its
//! STIX object, then live changes as they commit, and a `heartbeat` carrying the position when
//! nothing happens.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::sse::{Event as SseEvent, Sse};
use axum::response::{IntoResponse, Response};
use octo_graph::Graph;
use octo_store::{EventId, EventPosition};
use serde_json::json;
use tokio::sync::{mpsc, watch};

use crate::error::{ApiError, ApiResult};
use crate::params::Params;
use crate::{blocking, AppState};

/// Events read from the log per round.
const BATCH: usize = 500;

/// Wakes stream tasks when an organisation's log grows. The store's wait blocks a thread, so one
/// thread per organisation waits and publishes the last event id on a watch channel that every
/// consumer of that organisation awaits, instead of a blocked thread per consumer.
#[derive(Default)]
pub(crate) struct Watchers {
    by_organisation: Mutex<HashMap<String, watch::Receiver<Option<EventId>>>>,
}

impl Watchers {
    fn subscribe(&self, organisation: &str, graph: Arc<Graph>) -> ApiResult<watch::Receiver<Option<EventId>>> {
        let mut map = self.by_organisation.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(rx) = map.get(organisation) {
            if rx.has_changed().is_ok() {
                return Ok(rx.clone());
            }
        }
        let last = graph.store().snapshot().and_then(|s| s.event_bounds()).map_err(octo_graph::GraphError::from)?;
        let (tx, rx) = watch::channel(last.map(|(_, last)| last));
        std::thread::Builder::new()
            .name(format!("stream-{organisation}"))
            .spawn(move || {
                let mut seen = *tx.borrow();
                // Ends when the organisation's graph is gone from every consumer (the map keeps
                // one receiver, so in practice it lives as long as the server).
                while !tx.is_closed() {
                    let now = graph.store().wait_for_events(seen, Duration::from_secs(1));
                    if now != seen {
                        seen = now;
                        if tx.send(now).is_err() {
                            break;
                        }
                    }
                }
            })
            .map_err(|e| ApiError::internal(format!("cannot start the stream watcher: {e}")))?;
        map.insert(organisation.to_owned(), rx.clone());
        Ok(rx)
    }
}

fn position_from(p: &Params, headers: &HeaderMap) -> ApiResult<Option<EventPosition>> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let given = p.get("from").map(str::to_owned).or_else(|| header("from")).or_else(|| header("last-event-id"));
    given.map(|v| v.trim().parse::<EventPosition>().map_err(|e| ApiError::bad_request(e.to_string()))).transpose()
}

/// The change stream of an organisation.
#[utoipa::path(get, path = "/{client}/stream", tag = "Stream",
    params(("client" = String, Path),
        ("from" = Option<String>, Query, description = "An event id (`1620249512318-0`) to resume after, or a millisecond timestamp; `0` for everything. Also as the `from` or `Last-Event-ID` header. Absent: live only.")),
    responses((status = 200, description = "text/event-stream: connected, create, update, delete, heartbeat", content_type = "text/event-stream"),
        (status = 400, body = super::ErrorBody), (status = 404, body = super::ErrorBody)))]
pub(crate) async fn stream(
    State(s): State<AppState>,
    Path(client): Path<String>,
    headers: HeaderMap,
    p: Params,
) -> ApiResult<Response> {
    let graph = s.graph(&client)?;
    let given = position_from(&p, &headers)?;
    let g = graph.clone();
    let bounds = blocking(move || {
        Ok(g.store().snapshot().and_then(|s| s.event_bounds()).map_err(octo_graph::GraphError::from)?)
    })
    .await?;
    let mut position = match given {
        Some(p) => p,
        None => bounds.map_or(EventPosition::Start, |(_, last)| EventPosition::After(last)),
    };
    let mut reached: Option<EventId> = match position {
        EventPosition::After(id) => Some(id),
        _ => None,
    };
    let mut wake = s.shared().watchers.subscribe(&client, graph.clone())?;
    let heartbeat = s.heartbeat();
    let (tx, rx) = mpsc::channel::<Result<SseEvent, Infallible>>(256);
    let connected = json!({
        "organisation": client,
        "first_event_id": bounds.map(|(first, _)| first.to_string()),
        "last_event_id": bounds.map(|(_, last)| last.to_string()),
        "from": reached.map(|r| r.to_string()),
    });
    tokio::spawn(async move {
        if tx.send(Ok(SseEvent::default().event("connected").data(connected.to_string()))).await.is_err() {
            return;
        }
        let catalog = graph.catalog().clone();
        loop {
            wake.borrow_and_update();
            let g = graph.clone();
            let read = blocking(move || {
                let batch = g
                    .store()
                    .snapshot()
                    .and_then(|s| s.events(position, BATCH))
                    .map_err(octo_graph::GraphError::from)?;
                Ok(batch)
            })
            .await;
            let batch = match read {
                Ok(b) => b,
                Err(e) => {
                    let _ = tx
                        .send(Ok(SseEvent::default().event("error").data(json!({"message": e.message}).to_string())))
                        .await;
                    return;
                }
            };
            let whole = octo_stream::whole_transactions(&batch, batch.len() < BATCH);
            if let Some(last) = whole.last() {
                for m in octo_stream::messages(whole, &catalog) {
                    let frame = SseEvent::default().id(m.id.to_string()).event(m.kind).data(m.data.to_string());
                    if tx.send(Ok(frame)).await.is_err() {
                        return;
                    }
                }
                reached = Some(last.id);
                position = EventPosition::After(last.id);
                continue;
            }
            tokio::select! {
                changed = wake.changed() => {
                    if changed.is_err() {
                        return;
                    }
                }
                _ = tokio::time::sleep(heartbeat) => {
                    let id = reached.map_or_else(|| "0-0".to_owned(), |r| r.to_string());
                    let frame = SseEvent::default().id(id.clone()).event("heartbeat").data(json!({"position": id}).to_string());
                    if tx.send(Ok(frame)).await.is_err() {
                        return;
                    }
                }
                _ = tx.closed() => return,
            }
        }
    });
    let mut response = Sse::new(tokio_stream::wrappers::ReceiverStream::new(rx)).into_response();
    let h = response.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(response)
}
