//! The log pipeline's API under `/logs/`: devices (list, declare, change, remove), their stored
//! lines by time range, and the pipeline's counters. A token reaches it with the organisation
//! `logs` (or `*`): reading needs `read`, changing devices `write`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use octo_logs::device::DeviceError;
use octo_logs::raw_store::RawStoreError;
use octo_logs::{Device, LogTime};
use serde_json::{json, Value};

use crate::error::{ApiError, ApiResult};
use crate::params::{Body, Params};
use crate::{blocking, AppState};

/// The most lines one request returns.
const MAX_LINES: usize = 10_000;

impl From<DeviceError> for ApiError {
    fn from(e: DeviceError) -> Self {
        match e {
            DeviceError::NotFound(_) => ApiError::not_found(e.to_string()),
            DeviceError::Exists(_) => ApiError::conflict(e.to_string()),
            DeviceError::Invalid(_) => ApiError::bad_request(e.to_string()),
            DeviceError::File { .. } => {
                tracing::error!(error = %e, "device registry failure");
                ApiError::internal(e.to_string())
            }
        }
    }
}

impl From<RawStoreError> for ApiError {
    fn from(e: RawStoreError) -> Self {
        match e {
            RawStoreError::BadDevice(_) => ApiError::bad_request(e.to_string()),
            _ => {
                tracing::error!(error = %e, "raw log store failure");
                ApiError::internal(e.to_string())
            }
        }
    }
}

/// Every device, with its live counters.
#[utoipa::path(get, path = "/logs/devices", tag = "Logs",
    responses((status = 200, description = "[device]", body = serde_json::Value), (status = 404, body = super::ErrorBody)))]
pub(crate) async fn list_devices(State(s): State<AppState>) -> ApiResult<Json<Value>> {
    let logs = s.logs()?;
    Ok(Json(Value::Array(logs.devices().list().iter().map(|d| d.to_json()).collect())))
}

/// Declare a device (`name` required; `address`, `hostnames`, `type`, `model`, `description`,
/// `services`, `status`, `timezone` optional).
#[utoipa::path(post, path = "/logs/devices", tag = "Logs", request_body = serde_json::Value,
    responses((status = 201, description = "The device", body = serde_json::Value), (status = 400, body = super::ErrorBody),
        (status = 409, body = super::ErrorBody), (status = 422, body = super::ErrorBody)))]
pub(crate) async fn add_device(
    State(s): State<AppState>,
    Body(device): Body<Device>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let logs = s.logs()?;
    let name = device.name.clone();
    let answer = blocking(move || {
        logs.devices().add(device)?;
        Ok(logs.devices().get(&name)?.to_json())
    })
    .await?;
    Ok((StatusCode::CREATED, Json(answer)))
}

/// One device.
#[utoipa::path(get, path = "/logs/devices/{name}", tag = "Logs", params(("name" = String, Path)),
    responses((status = 200, description = "The device", body = serde_json::Value), (status = 404, body = super::ErrorBody)))]
pub(crate) async fn get_device(State(s): State<AppState>, Path(name): Path<String>) -> ApiResult<Json<Value>> {
    Ok(Json(s.logs()?.devices().get(&name)?.to_json()))
}

/// Change a device: the body's fields replace the device's (`null` clears one); the name stays.
#[utoipa::path(patch, path = "/logs/devices/{name}", tag = "Logs", params(("name" = String, Path)),
    request_body = serde_json::Value,
    responses((status = 200, description = "The device", body = serde_json::Value), (status = 400, body = super::ErrorBody),
        (status = 404, body = super::ErrorBody), (status = 422, body = super::ErrorBody)))]
pub(crate) async fn update_device(
    State(s): State<AppState>,
    Path(name): Path<String>,
    Body(patch): Body<serde_json::Map<String, Value>>,
) -> ApiResult<Json<Value>> {
    let logs = s.logs()?;
    blocking(move || {
        logs.devices().update(&name, |d| apply_patch(d, &patch))?;
        Ok(Json(logs.devices().get(&name)?.to_json()))
    })
    .await
}

/// Overlays a JSON object on a device, checking the result as a whole.
pub(crate) fn apply_patch(d: &mut Device, patch: &serde_json::Map<String, Value>) -> Result<(), DeviceError> {
    let mut v = serde_json::to_value(&*d).map_err(|e| DeviceError::Invalid(e.to_string()))?;
    if let Some(o) = v.as_object_mut() {
        for (k, val) in patch {
            if val.is_null() {
                o.remove(k);
            } else {
                o.insert(k.clone(), val.clone());
            }
        }
    }
    *d = serde_json::from_value(v).map_err(|e| DeviceError::Invalid(format!("device '{}': {e}", d.name)))?;
    Ok(())
}

/// Remove a device (its stored lines stay; it is registered again if it sends again).
#[utoipa::path(delete, path = "/logs/devices/{name}", tag = "Logs", params(("name" = String, Path)),
    responses((status = 200, description = "Removed"), (status = 404, body = super::ErrorBody)))]
pub(crate) async fn delete_device(
    State(s): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let logs = s.logs()?;
    blocking(move || Ok(logs.devices().remove(&name)?)).await?;
    Ok(crate::ok_null())
}

fn time_param(p: &Params, name: &str) -> ApiResult<Option<LogTime>> {
    p.get(name)
        .map(|v| v.parse::<LogTime>().map_err(|m| ApiError::unprocessable(format!("query parameter '{name}': {m}"))))
        .transpose()
}

/// A device's stored lines received in `[from, to)`, oldest first, each with its parsed header
/// and the message it classifies as (`limit` lines, 100 unless given, at most 10,000).
#[utoipa::path(get, path = "/logs/devices/{name}/lines", tag = "Logs",
    params(("name" = String, Path), ("from" = Option<String>, Query), ("to" = Option<String>, Query), ("limit" = Option<usize>, Query)),
    responses((status = 200, description = "{device, lines: [{received, peer, transport, raw, parsed, message}], more}", body = serde_json::Value),
        (status = 400, body = super::ErrorBody), (status = 404, body = super::ErrorBody), (status = 422, body = super::ErrorBody)))]
pub(crate) async fn device_lines(
    State(s): State<AppState>,
    Path(name): Path<String>,
    p: Params,
) -> ApiResult<Json<Value>> {
    let logs = s.logs()?;
    let (from, to) = (time_param(&p, "from")?, time_param(&p, "to")?);
    let limit = p.usize_or("limit", 100)?;
    if limit > MAX_LINES {
        return Err(ApiError::bad_request(format!("limit is at most {MAX_LINES}")));
    }
    blocking(move || {
        let device = logs.devices().get(&name)?;
        let mut lines = Vec::new();
        let mut more = false;
        for l in logs.store().read(&name, from, to)? {
            let l = l?;
            if lines.len() == limit {
                more = true;
                break;
            }
            lines.push(logs.describe(&device.device, &l));
        }
        Ok(Json(json!({"device": name, "lines": lines, "more": more})))
    })
    .await
}

/// A device's unknown lines received in `[from, to)` (no service of the device matches them),
/// grouped by shape with a proposed pattern per group, largest first.
#[utoipa::path(get, path = "/logs/devices/{name}/unknown", tag = "Logs",
    params(("name" = String, Path), ("from" = Option<String>, Query), ("to" = Option<String>, Query)),
    responses((status = 200, description = "[{program, shape, count, first, last, examples, pattern, verified}]", body = serde_json::Value),
        (status = 404, body = super::ErrorBody), (status = 422, body = super::ErrorBody)))]
pub(crate) async fn device_unknown(
    State(s): State<AppState>,
    Path(name): Path<String>,
    p: Params,
) -> ApiResult<Json<Value>> {
    let logs = s.logs()?;
    let (from, to) = (time_param(&p, "from")?, time_param(&p, "to")?);
    blocking(move || {
        let device = logs.devices().get(&name)?;
        let groups = logs.unknown(&device.device, from, to).map_err(|e| match e {
            octo_logs::pipeline::PipelineError::Store(e) => ApiError::from(e),
            other => ApiError::internal(other.to_string()),
        })?;
        Ok(Json(serde_json::to_value(groups).unwrap_or_default()))
    })
    .await
}

fn pipeline_error(e: octo_logs::pipeline::PipelineError) -> ApiError {
    match e {
        octo_logs::pipeline::PipelineError::Services(e) => ApiError::bad_request(e.to_string()),
        octo_logs::pipeline::PipelineError::Store(e) => ApiError::from(e),
        other => ApiError::internal(other.to_string()),
    }
}

fn service_summary(s: &octo_logs::services::Service, imported: bool) -> Value {
    json!({"name": s.name, "description": s.description, "messages": s.messages.len(),
        "origin": if imported { "imported" } else { "builtin" }})
}

/// The service library: built-in and imported services.
#[utoipa::path(get, path = "/logs/services", tag = "Logs",
    responses((status = 200, description = "[{name, description, messages, origin}]", body = serde_json::Value)))]
pub(crate) async fn list_services(State(s): State<AppState>) -> ApiResult<Json<Value>> {
    let logs = s.logs()?;
    blocking(move || {
        let library = logs.library().map_err(pipeline_error)?;
        Ok(Json(Value::Array(library.iter().map(|x| service_summary(x, logs.is_imported(&x.name))).collect())))
    })
    .await
}

/// One service with its messages.
#[utoipa::path(get, path = "/logs/services/{name}", tag = "Logs", params(("name" = String, Path)),
    responses((status = 200, description = "The service", body = serde_json::Value), (status = 404, body = super::ErrorBody)))]
pub(crate) async fn get_service(State(s): State<AppState>, Path(name): Path<String>) -> ApiResult<Json<Value>> {
    let logs = s.logs()?;
    blocking(move || {
        let library = logs.library().map_err(pipeline_error)?;
        let service = library
            .into_iter()
            .find(|x| x.name == name)
            .ok_or_else(|| ApiError::not_found(format!("no service '{name}'")))?;
        Ok(Json(serde_json::to_value(service).unwrap_or_default()))
    })
    .await
}

/// Save a service: the body is the service in the native format (TOML) or Octopussy's XML.
/// Every pattern is compiled first; the server classifies with it at once.
#[utoipa::path(put, path = "/logs/services/{name}", tag = "Logs", params(("name" = String, Path)),
    request_body(content = String, content_type = "text/plain"),
    responses((status = 200, description = "{name, description, messages, origin}", body = serde_json::Value),
        (status = 400, body = super::ErrorBody)))]
pub(crate) async fn put_service(
    State(s): State<AppState>,
    Path(name): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult<Json<Value>> {
    let logs = s.logs()?;
    let text = String::from_utf8(body.to_vec()).map_err(|_| ApiError::bad_request("the service must be UTF-8 text"))?;
    blocking(move || {
        let source = format!("service '{name}'");
        let service = if text.trim_start().starts_with('<') {
            octo_logs::services::octopussy::parse(&text, &source)
        } else {
            octo_logs::services::native::parse(&text, &source)
        }
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
        if service.name != name {
            return Err(ApiError::bad_request(format!("the body is service '{}', not '{name}'", service.name)));
        }
        logs.save_service(&service).map_err(pipeline_error)?;
        Ok(Json(service_summary(&service, true)))
    })
    .await
}

/// Remove an imported service (a built-in one of its name applies again).
#[utoipa::path(delete, path = "/logs/services/{name}", tag = "Logs", params(("name" = String, Path)),
    responses((status = 200, description = "Removed"), (status = 404, body = super::ErrorBody)))]
pub(crate) async fn delete_service(
    State(s): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let logs = s.logs()?;
    blocking(move || {
        if logs.remove_service(&name).map_err(pipeline_error)? {
            Ok(crate::ok_null())
        } else {
            Err(ApiError::not_found(format!("no imported service '{name}' (built-in services cannot be removed)")))
        }
    })
    .await
}

/// The pipeline's counters since start, and the raw store's size.
#[utoipa::path(get, path = "/logs/stats", tag = "Logs",
    responses((status = 200, description = "Counters", body = serde_json::Value), (status = 404, body = super::ErrorBody)))]
pub(crate) async fn stats(State(s): State<AppState>) -> ApiResult<Json<Value>> {
    use std::sync::atomic::Ordering::Relaxed;
    let logs = s.logs()?;
    blocking(move || {
        let st = logs.stats();
        let transports: serde_json::Map<String, Value> = st
            .by_transport()
            .into_iter()
            .map(|(t, lines, bytes)| (t.name().to_owned(), json!({"lines": lines, "bytes": bytes})))
            .collect();
        Ok(Json(json!({
            "received": transports,
            "stored_lines": st.stored.load(Relaxed),
            "store_commits": st.commits.load(Relaxed),
            "store_errors": st.store_errors.load(Relaxed),
            "parse_issues": st.parse_issues.load(Relaxed),
            "truncated_lines": st.truncated.load(Relaxed),
            "refused_lines": st.refused.load(Relaxed),
            "udp_kernel_drops": st.udp_kernel_drops.load(Relaxed),
            "connections": st.connections.load(Relaxed),
            "classified_lines": st.classified.load(Relaxed),
            "unknown_lines": st.unknown.load(Relaxed),
            "unclassified_lines": st.unclassified.load(Relaxed),
            "table_errors": st.table_errors.load(Relaxed),
            "evidence_dropped": st.evidence_dropped.load(Relaxed),
            "devices": logs.devices().list().len(),
            "raw_store_bytes": logs.store().size()?,
        })))
    })
    .await
}

impl From<octo_tables::TableError> for ApiError {
    fn from(e: octo_tables::TableError) -> Self {
        use octo_tables::TableError;
        match e {
            TableError::NoTable(_) => ApiError::not_found(e.to_string()),
            TableError::BadQuery(_) => ApiError::bad_request(e.to_string()),
            _ => {
                tracing::error!(error = %e, "table store failure");
                ApiError::internal(e.to_string())
            }
        }
    }
}

/// The tables of classified lines: each with its columns and their types, rows and size.
#[utoipa::path(get, path = "/logs/tables", tag = "Logs",
    responses((status = 200, description = "[{name, description, rows, segments, bytes, columns}]", body = serde_json::Value)))]
pub(crate) async fn list_tables(State(s): State<AppState>) -> ApiResult<Json<Value>> {
    let logs = s.logs()?;
    blocking(move || Ok(Json(Value::Array(logs.tables().tables().iter().map(|t| t.summary()).collect())))).await
}

/// One table.
#[utoipa::path(get, path = "/logs/tables/{name}", tag = "Logs", params(("name" = String, Path)),
    responses((status = 200, description = "{name, description, rows, segments, bytes, columns}", body = serde_json::Value),
        (status = 404, body = super::ErrorBody)))]
pub(crate) async fn get_table(State(s): State<AppState>, Path(name): Path<String>) -> ApiResult<Json<Value>> {
    let logs = s.logs()?;
    blocking(move || {
        let tables = logs.tables().tables();
        let t = tables
            .iter()
            .find(|t| t.schema.name == name)
            .ok_or_else(|| ApiError::not_found(format!("no table named '{name}'")))?;
        Ok(Json(t.summary()))
    })
    .await
}

/// Runs a table query given by the query string (see [`octo_logs::tables::query_from_params`]).
async fn run_query(s: AppState, name: String, p: Params, counts: bool) -> ApiResult<Json<Value>> {
    let logs = s.logs()?;
    let pairs = p.0.iter().map(|(k, v)| (k.as_str(), v.as_str()));
    let q = octo_logs::tables::query_from_params(&name, pairs, LogTime::now()).map_err(ApiError::bad_request)?;
    if counts && !q.counts() {
        return Err(ApiError::bad_request("counts need 'group' (columns) or 'bucket' (a span of time), or both"));
    }
    if !counts && q.counts() {
        return Err(ApiError::bad_request("'group' and 'bucket' are for /counts; /rows returns rows"));
    }
    blocking(move || {
        let started = std::time::Instant::now();
        let out = logs.tables().query(&q)?;
        let mut body = json!({
            "matched": out.matched, "scanned": out.scanned,
            "segments": {"read": out.segments.0, "skipped": out.segments.1},
            "elapsed_ms": started.elapsed().as_secs_f64() * 1e3,
        });
        match out.answer {
            octo_tables::Answer::Rows(rows) => {
                body["rows"] = Value::Array(rows.into_iter().map(Value::Object).collect())
            }
            octo_tables::Answer::Groups(groups) => {
                body["groups_total"] = out.groups.into();
                body["groups"] = groups.into_iter().map(octo_tables::Group::to_json).collect();
            }
        }
        Ok(Json(body))
    })
    .await
}

/// A table's rows, newest first: in a time range (`from`, `to`, or `last` = `24h`), passing
/// every `filter` (`src_ip=203.0.113.9`, `src_port<1024`, `user~adm*`, `src_ip~10.0.0.0/8`,
/// `level=warning|error`), at most `limit` (100 unless given, at most 10,000).
#[utoipa::path(get, path = "/logs/tables/{name}/rows", tag = "Logs",
    params(("name" = String, Path), ("from" = Option<String>, Query), ("to" = Option<String>, Query),
        ("last" = Option<String>, Query), ("filter" = Option<Vec<String>>, Query), ("limit" = Option<usize>, Query)),
    responses((status = 200, description = "{rows, matched, scanned, segments, elapsed_ms}", body = serde_json::Value),
        (status = 400, body = super::ErrorBody), (status = 404, body = super::ErrorBody)))]
pub(crate) async fn table_rows(
    State(s): State<AppState>,
    Path(name): Path<String>,
    p: Params,
) -> ApiResult<Json<Value>> {
    run_query(s, name, p, false).await
}

/// Counts of a table's rows grouped by columns (`group=src_ip,user`) and/or by time
/// (`bucket=1h`), with the same range and filters as `/rows`; the largest groups first (by time
/// for a time series), at most `limit`.
#[utoipa::path(get, path = "/logs/tables/{name}/counts", tag = "Logs",
    params(("name" = String, Path), ("group" = Option<String>, Query), ("bucket" = Option<String>, Query),
        ("from" = Option<String>, Query), ("to" = Option<String>, Query), ("last" = Option<String>, Query),
        ("filter" = Option<Vec<String>>, Query), ("limit" = Option<usize>, Query)),
    responses((status = 200, description = "{groups: [{<column>: value, count}], groups_total, matched, scanned, segments, elapsed_ms}", body = serde_json::Value),
        (status = 400, body = super::ErrorBody), (status = 404, body = super::ErrorBody)))]
pub(crate) async fn table_counts(
    State(s): State<AppState>,
    Path(name): Path<String>,
    p: Params,
) -> ApiResult<Json<Value>> {
    run_query(s, name, p, true).await
}
