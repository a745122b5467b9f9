//! Scan profiles: declared levels, their inheritance, and recalculation.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use octo_model::{Catalog, Reference};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::{ApiError, ApiResult};
use crate::params::{parse_reference, Body, Params};
use crate::{read, write, AppState};

/// A scan profile as Octopoes sends it.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub(crate) struct ScanProfileBody {
    /// `declared` sets the level; `empty` withdraws a declaration so the object inherits again.
    scan_profile_type: String,
    /// The object (primary key).
    reference: String,
    /// 0–4 (ignored for `empty`).
    #[serde(default)]
    level: i64,
    /// Who declares it.
    #[serde(default)]
    user_id: Option<i64>,
}

fn profile(catalog: &Catalog, body: &ScanProfileBody) -> ApiResult<(Reference, Option<u8>, Option<i64>)> {
    let reference = parse_reference(&body.reference, catalog)?;
    let level = match body.scan_profile_type.as_str() {
        "declared" => match u8::try_from(body.level) {
            Ok(l) if l <= 4 => Some(l),
            _ => return Err(ApiError::bad_request(format!("scan level {} is not 0–4", body.level))),
        },
        "empty" => None,
        "inherited" => {
            return Err(ApiError::bad_request("inherited profiles are computed, not saved; declare a level instead"))
        }
        other => {
            return Err(ApiError::unprocessable(format!(
                "scan_profile_type '{other}' is not declared, empty or inherited"
            )))
        }
    };
    Ok((reference, level, body.user_id))
}

/// The stored scan profiles, optionally of one type.
#[utoipa::path(get, path = "/{client}/scan_profiles", tag = "Scan Profiles",
    params(("client" = String, Path), ("valid_time" = Option<String>, Query), ("scan_profile_type" = Option<String>, Query)),
    responses((status = 200, description = "Profiles", body = serde_json::Value)))]
pub(crate) async fn list_scan_profiles(
    State(s): State<AppState>,
    Path(client): Path<String>,
    p: Params,
) -> ApiResult<Json<Value>> {
    read(&s, &client, move |g| {
        let profiles = g.list_scan_profiles(p.get("scan_profile_type"), p.as_of()?)?;
        serde_json::to_value(profiles).map(Json).map_err(|e| ApiError::internal(e.to_string()))
    })
    .await
}

/// Declare (or, with type `empty`, withdraw) one object's scan level.
#[utoipa::path(put, path = "/{client}/scan_profiles", tag = "Scan Profiles",
    params(("client" = String, Path), ("valid_time" = Option<String>, Query)), request_body = ScanProfileBody,
    responses((status = 200, description = "Saved"), (status = 400, body = super::ErrorBody), (status = 404, body = super::ErrorBody)))]
pub(crate) async fn save_scan_profile(
    State(s): State<AppState>,
    Path(client): Path<String>,
    p: Params,
    Body(body): Body<ScanProfileBody>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    save_profiles(s, client, p, vec![body]).await
}

/// Declare many scan levels in one transaction.
#[utoipa::path(post, path = "/{client}/scan_profiles/save_many", tag = "Scan Profiles",
    params(("client" = String, Path), ("valid_time" = Option<String>, Query)), request_body = Vec<ScanProfileBody>,
    responses((status = 200, description = "Saved"), (status = 400, body = super::ErrorBody), (status = 404, body = super::ErrorBody)))]
pub(crate) async fn save_many_scan_profiles(
    State(s): State<AppState>,
    Path(client): Path<String>,
    p: Params,
    Body(body): Body<Vec<ScanProfileBody>>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    save_profiles(s, client, p, body).await
}

async fn save_profiles(
    s: AppState,
    client: String,
    p: Params,
    bodies: Vec<ScanProfileBody>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    write(&s, &client, move |g| {
        let parsed: Vec<_> = bodies.iter().map(|b| profile(g.catalog(), b)).collect::<ApiResult<_>>()?;
        // One user per call in the graph's API; Octopoes' clients send the same one throughout.
        let user_id = parsed.iter().find_map(|(_, _, u)| *u);
        let levels: Vec<(Reference, Option<u8>)> = parsed.into_iter().map(|(r, l, _)| (r, l)).collect();
        Ok(g.set_scan_profiles(&levels, user_id, Some(p.valid_time()?))?)
    })
    .await
}

/// Recompute every inherited level from scratch (writes only what differs).
#[utoipa::path(get, path = "/{client}/scan_profiles/recalculate", tag = "Scan Profiles",
    params(("client" = String, Path), ("valid_time" = Option<String>, Query)),
    responses((status = 200, description = "Done")))]
pub(crate) async fn recalculate_scan_profiles(
    State(s): State<AppState>,
    Path(client): Path<String>,
    p: Params,
) -> ApiResult<(StatusCode, Json<Value>)> {
    write(&s, &client, move |g| Ok(g.recalculate_scan_profiles(Some(p.valid_time()?))?)).await
}

/// The chain of objects that explains an object's level, ending at a declared one.
#[utoipa::path(get, path = "/{client}/scan_profiles/inheritance", tag = "Scan Profiles",
    params(("client" = String, Path), ("reference" = String, Query), ("valid_time" = Option<String>, Query)),
    responses((status = 200, description = "[{reference, level, segment, scan_profile_type}]", body = serde_json::Value),
        (status = 404, body = super::ErrorBody)))]
pub(crate) async fn inheritance(
    State(s): State<AppState>,
    Path(client): Path<String>,
    p: Params,
) -> ApiResult<Json<Value>> {
    read(&s, &client, move |g| {
        let r = p.reference("reference", g.catalog())?;
        let steps = g.inheritance(&r, Some(p.valid_time()?))?;
        // Octopoes names, on each section after the first, the segment it was reached by.
        let out: Vec<Value> = steps
            .iter()
            .enumerate()
            .map(|(i, step)| {
                let segment = i.checked_sub(1).map(|p| steps[p].relation.as_str()).filter(|r| !r.is_empty());
                json!({
                    "reference": step.reference.as_str(),
                    "level": step.level,
                    "segment": segment,
                    "scan_profile_type": if step.declared { "declared" } else { "inherited" },
                })
            })
            .collect();
        Ok(Json(Value::Array(out)))
    })
    .await
}
