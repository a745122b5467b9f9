//! Health, organisations (Octopoes' "nodes"), bits, export and import.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use octo_graph::{GraphError, OriginQuery, OriginType};
use serde_json::{json, Value};

use crate::error::{ApiError, ApiResult};
use crate::{blocking, ok_null, read, write, AppState};

fn health_json(service: &str, healthy: bool, additional: Value, results: Vec<Value>) -> Value {
    json!({
        "service": service,
        "healthy": healthy,
        "version": env!("CARGO_PKG_VERSION"),
        "additional": additional,
        "results": results,
    })
}

/// Whether the server is up (no token needed).
#[utoipa::path(get, path = "/health", tag = "Health",
    responses((status = 200, description = "ServiceHealth", body = serde_json::Value)))]
pub(crate) async fn root_health() -> Json<Value> {
    Json(health_json("octopoes", true, Value::Null, vec![]))
}

/// Whether an organisation's store answers.
#[utoipa::path(get, path = "/{client}/health", tag = "Health",
    params(("client" = String, Path)),
    responses((status = 200, description = "ServiceHealth", body = serde_json::Value), (status = 404, body = super::ErrorBody)))]
pub(crate) async fn health(State(s): State<AppState>, Path(client): Path<String>) -> ApiResult<Json<Value>> {
    read(&s, &client, move |g| {
        let store = match g.store().snapshot().and_then(|snap| snap.last_tx()) {
            Ok(last) => health_json(
                "store",
                true,
                json!({"last_tx_id": last.map(|t| t.tx_id), "last_tx_time": last.map(|t| t.tx_time.to_string())}),
                vec![],
            ),
            Err(e) => health_json("store", false, Value::String(e.to_string()), vec![]),
        };
        let healthy = store["healthy"].as_bool().unwrap_or(false);
        Ok(Json(health_json("octopoes", healthy, Value::Null, vec![store])))
    })
    .await
}

/// Create an organisation (admin).
#[utoipa::path(post, path = "/{client}/node", tag = "Node",
    params(("client" = String, Path)),
    responses((status = 200, description = "Created"), (status = 400, body = super::ErrorBody), (status = 409, body = super::ErrorBody)))]
pub(crate) async fn create_node(
    State(s): State<AppState>,
    Path(client): Path<String>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    blocking(move || {
        octo_graph::organisations::validate_name(&client)?;
        if s.shared().organisations.exists(&client) {
            return Err(ApiError::conflict(format!("organisation '{client}' already exists")));
        }
        s.shared().organisations.create(&client)?;
        tracing::info!(organisation = %client, "organisation created");
        Ok(ok_null())
    })
    .await
}

/// Delete an organisation and its whole graph (admin).
#[utoipa::path(delete, path = "/{client}/node", tag = "Node",
    params(("client" = String, Path)),
    responses((status = 200, description = "Deleted"), (status = 404, body = super::ErrorBody)))]
pub(crate) async fn delete_node(
    State(s): State<AppState>,
    Path(client): Path<String>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    blocking(move || {
        // Its framer stops and its prepared events go with the directory.
        s.shared().watchers.forget(&client);
        s.shared().organisations.delete(&client)?;
        if let Err(e) = s.bus().delete(&client) {
            tracing::warn!(organisation = %client, error = %e, "the organisation's stream stays on the bus");
        }
        tracing::info!(organisation = %client, "organisation deleted");
        Ok(ok_null())
    })
    .await
}

/// Re-run every bit on every object; answers how many inference origins there are after.
#[utoipa::path(post, path = "/{client}/bits/recalculate", tag = "Bits",
    params(("client" = String, Path)),
    responses((status = 200, description = "Number of inference origins", body = usize)))]
pub(crate) async fn recalculate_bits(State(s): State<AppState>, Path(client): Path<String>) -> ApiResult<Json<usize>> {
    let _null = write(&s, &client, |g| Ok(g.recalculate_bits(None)?)).await?;
    read(&s, &client, |g| {
        let q = OriginQuery { origin_type: Some(OriginType::Inference), ..OriginQuery::default() };
        Ok(Json(g.list_origins(&q, octo_store::AsOf::now())?.len()))
    })
    .await
}

/// Every transaction with its operations (XTDB's tx-log shape).
#[utoipa::path(get, path = "/{client}/io/export", tag = "io",
    params(("client" = String, Path)),
    responses((status = 200, description = "[{txId, txTime, txOps}]", body = serde_json::Value)))]
pub(crate) async fn export(State(s): State<AppState>, Path(client): Path<String>) -> ApiResult<Json<Value>> {
    let g = s.graph(&client)?;
    blocking(move || Ok(Json(g.export()?))).await
}

/// Replay an export on top of the graph.
#[utoipa::path(post, path = "/{client}/io/import/add", tag = "io",
    params(("client" = String, Path)), request_body(content = serde_json::Value, description = "An export"),
    responses((status = 200, description = "{detail: transactions replayed}", body = serde_json::Value),
        (status = 400, body = super::ErrorBody)))]
pub(crate) async fn import_add(
    State(s): State<AppState>,
    Path(client): Path<String>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    import(s, client, body, false).await
}

/// Replace the graph with an export (admin): the organisation is emptied, then the export
/// replayed. A bad export is refused before anything is emptied.
#[utoipa::path(post, path = "/{client}/io/import/new", tag = "io",
    params(("client" = String, Path)), request_body(content = serde_json::Value, description = "An export"),
    responses((status = 200, description = "{detail: transactions replayed}", body = serde_json::Value),
        (status = 400, body = super::ErrorBody)))]
pub(crate) async fn import_new(
    State(s): State<AppState>,
    Path(client): Path<String>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    import(s, client, body, true).await
}

async fn import(s: AppState, client: String, body: Bytes, reset: bool) -> ApiResult<Json<Value>> {
    blocking(move || {
        let orgs = &s.shared().organisations;
        let data: Value =
            serde_json::from_slice(&body).map_err(|e| ApiError::bad_request(format!("Error parsing objects: {e}")))?;
        let g = if reset { orgs.get_or_create(&client)? } else { orgs.get(&client)? };
        let txs = g.parse_import(&data)?;
        let g = if reset {
            drop(g);
            // A new log: what was prepared from the old one goes with it.
            s.shared().watchers.forget(&client);
            orgs.delete(&client)?;
            orgs.create(&client)?
        } else {
            g
        };
        let n = g.import(&txs).map_err(|e| match e {
            GraphError::Invalid(m) => ApiError::bad_request(m),
            other => other.into(),
        })?;
        tracing::info!(organisation = %client, transactions = n, reset, "import");
        Ok(Json(json!({ "detail": n })))
    })
    .await
}
