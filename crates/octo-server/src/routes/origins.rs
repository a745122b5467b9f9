//! Origins: how objects come to exist (declarations, observations, affirmations) and the
//! origins behind them.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use octo_graph::{Affirmation, Declaration, Observation, OriginQuery, OriginType};
use octo_model::{Catalog, Ooi};
use octo_store::Timestamp;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::{ApiError, ApiResult};
use crate::params::{parse_reference, parse_time, Body, Params};
use crate::{blocking, read, write, AppState};

fn origin_type(s: &str) -> ApiResult<OriginType> {
    match s {
        "declaration" => Ok(OriginType::Declaration),
        "observation" => Ok(OriginType::Observation),
        "inference" => Ok(OriginType::Inference),
        "affirmation" => Ok(OriginType::Affirmation),
        _ => Err(ApiError::unprocessable(format!(
            "origin_type '{s}' is not declaration, observation, inference or affirmation"
        ))),
    }
}

/// List origins by source, result, method, task or kind.
#[utoipa::path(get, path = "/{client}/origins", tag = "Origins",
    params(("client" = String, Path), ("valid_time" = Option<String>, Query), ("offset" = Option<usize>, Query), ("limit" = Option<usize>, Query),
        ("source" = Option<String>, Query), ("result" = Option<String>, Query), ("method" = Option<Vec<String>>, Query),
        ("task_id" = Option<String>, Query), ("origin_type" = Option<String>, Query)),
    responses((status = 200, description = "Origins", body = serde_json::Value), (status = 400, body = super::ErrorBody)))]
pub(crate) async fn list_origins(
    State(s): State<AppState>,
    Path(client): Path<String>,
    p: Params,
) -> ApiResult<Json<Value>> {
    read(&s, &client, move |g| {
        let methods: Vec<String> = p.all("method").into_iter().map(str::to_owned).collect();
        let q = OriginQuery {
            source: p.get("source").map(|k| parse_reference(k, g.catalog())).transpose()?,
            result: p.get("result").map(|k| parse_reference(k, g.catalog())).transpose()?,
            method: if methods.len() == 1 { methods.first().cloned() } else { None },
            task_id: p.get("task_id").map(str::to_owned),
            origin_type: p.get("origin_type").map(origin_type).transpose()?,
        };
        let mut origins = g.list_origins(&q, p.as_of()?)?;
        if methods.len() > 1 {
            origins.retain(|o| methods.contains(&o.method));
        }
        let offset = p.usize_or("offset", 0)?;
        let limit = p.opt_usize("limit")?.unwrap_or(usize::MAX);
        let page: Vec<_> = origins.into_iter().skip(offset).take(limit).collect();
        serde_json::to_value(page).map(Json).map_err(|e| ApiError::internal(e.to_string()))
    })
    .await
}

/// Delete an origin; what only it held goes with it.
#[utoipa::path(delete, path = "/{client}/origins", tag = "Origins",
    params(("client" = String, Path), ("origin_id" = String, Query), ("valid_time" = Option<String>, Query)),
    responses((status = 200, description = "Deleted"), (status = 404, body = super::ErrorBody)))]
pub(crate) async fn delete_origin(
    State(s): State<AppState>,
    Path(client): Path<String>,
    p: Params,
) -> ApiResult<(StatusCode, Json<Value>)> {
    write(&s, &client, move |g| Ok(g.delete_origin(p.required("origin_id")?, Some(p.valid_time()?))?)).await
}

/// The parameter objects of inference origins (found by walking the bit's paths now, not
/// stored).
#[utoipa::path(get, path = "/{client}/origin_parameters", tag = "Origins",
    params(("client" = String, Path), ("origin_id" = Vec<String>, Query), ("valid_time" = Option<String>, Query)),
    responses((status = 200, description = "[{origin_id, reference}]", body = serde_json::Value)))]
pub(crate) async fn origin_parameters(
    State(s): State<AppState>,
    Path(client): Path<String>,
    p: Params,
) -> ApiResult<Json<Value>> {
    let g = s.graph(&client)?;
    let engine = s.shared().engine.clone();
    blocking(move || {
        let at = p.as_of()?;
        let mut out = Vec::new();
        let Some(engine) = engine else { return Ok(Json(json!([]))) };
        for id in p.all("origin_id") {
            let Some(origin) = g.origin(id, at)? else { continue };
            if origin.origin_type != OriginType::Inference {
                continue;
            }
            let run = match engine.dry_run(&g, &origin.method, &origin.source, at) {
                Ok(run) => run,
                Err(octo_graph::GraphError::NotFound(_)) => continue,
                Err(e) => return Err(e.into()),
            };
            for param in run.parameters {
                if let Some(key) = param.get("primary_key").and_then(Value::as_str) {
                    out.push(json!({"origin_id": id, "reference": key}));
                }
            }
        }
        Ok(Json(Value::Array(out)))
    })
    .await
}

fn body_time(field: &str, value: Option<&str>) -> ApiResult<Option<Timestamp>> {
    value.map(|v| parse_time(v).map_err(|m| ApiError::unprocessable(format!("{field}: {m}")))).transpose()
}

fn ooi(catalog: &Catalog, doc: &Value) -> ApiResult<Ooi> {
    Ok(catalog.ooi_from_json(doc)?)
}

/// Octopoes' observation body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub(crate) struct ObservationBody {
    /// The normalizer.
    method: String,
    /// The object looked at (primary key).
    source: String,
    /// The boefje behind it.
    #[serde(default)]
    source_method: Option<String>,
    /// Everything seen (objects in Octopoes' shape).
    #[schema(value_type = Vec<Object>)]
    result: Vec<Value>,
    /// Valid from (default: now).
    #[serde(default)]
    valid_time: Option<String>,
    /// The task behind it.
    #[serde(default)]
    task_id: Option<String>,
}

/// Save what a normalizer saw; what its previous run saw and this one does not is dropped.
#[utoipa::path(post, path = "/{client}/observations", tag = "Origins",
    params(("client" = String, Path)), request_body = ObservationBody,
    responses((status = 200, description = "Saved"), (status = 400, body = super::ErrorBody), (status = 422, body = super::ErrorBody)))]
pub(crate) async fn save_observation(
    State(s): State<AppState>,
    Path(client): Path<String>,
    Body(body): Body<ObservationBody>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    write(&s, &client, move |g| {
        let observation = Observation {
            method: body.method,
            source: parse_reference(&body.source, g.catalog())?,
            source_method: body.source_method,
            result: body.result.iter().map(|d| ooi(g.catalog(), d)).collect::<ApiResult<_>>()?,
            task_id: body.task_id,
            valid_time: body_time("valid_time", body.valid_time.as_deref())?,
        };
        Ok(g.save_observation(observation)?)
    })
    .await
}

/// Octopoes' declaration body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub(crate) struct DeclarationBody {
    /// The object (Octopoes' shape).
    #[schema(value_type = Object)]
    ooi: Value,
    /// Valid from (default: now).
    #[serde(default)]
    valid_time: Option<String>,
    /// Valid until (exclusive).
    #[serde(default)]
    end_valid_time: Option<String>,
    /// Default `manual`.
    #[serde(default)]
    method: Option<String>,
    /// The task behind it.
    #[serde(default)]
    task_id: Option<String>,
}

fn declaration(catalog: &Catalog, body: DeclarationBody) -> ApiResult<Declaration> {
    Ok(Declaration {
        ooi: ooi(catalog, &body.ooi)?,
        method: body.method,
        task_id: body.task_id,
        valid_time: body_time("valid_time", body.valid_time.as_deref())?,
        end_valid_time: body_time("end_valid_time", body.end_valid_time.as_deref())?,
    })
}

/// Declare an object (a user says it exists).
#[utoipa::path(post, path = "/{client}/declarations", tag = "Origins",
    params(("client" = String, Path)), request_body = DeclarationBody,
    responses((status = 200, description = "Saved"), (status = 400, body = super::ErrorBody), (status = 422, body = super::ErrorBody)))]
pub(crate) async fn save_declaration(
    State(s): State<AppState>,
    Path(client): Path<String>,
    Body(body): Body<DeclarationBody>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    write(&s, &client, move |g| Ok(g.save_declaration(declaration(g.catalog(), body)?)?)).await
}

/// Declare many objects in one transaction (all or none).
#[utoipa::path(post, path = "/{client}/declarations/save_many", tag = "Origins",
    params(("client" = String, Path)), request_body = Vec<DeclarationBody>,
    responses((status = 200, description = "Saved"), (status = 400, body = super::ErrorBody), (status = 422, body = super::ErrorBody)))]
pub(crate) async fn save_many_declarations(
    State(s): State<AppState>,
    Path(client): Path<String>,
    Body(body): Body<Vec<DeclarationBody>>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    write(&s, &client, move |g| {
        let declarations: Vec<Declaration> =
            body.into_iter().map(|d| declaration(g.catalog(), d)).collect::<ApiResult<_>>()?;
        Ok(g.save_declarations(&declarations)?)
    })
    .await
}

/// Octopoes' affirmation body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub(crate) struct AffirmationBody {
    /// The object with the fields to add.
    #[schema(value_type = Object)]
    ooi: Value,
    /// Valid from (default: now).
    #[serde(default)]
    valid_time: Option<String>,
    /// Default `hydration`.
    #[serde(default)]
    method: Option<String>,
    /// The tool behind it.
    #[serde(default)]
    source_method: Option<String>,
    /// The task behind it.
    #[serde(default)]
    task_id: Option<String>,
}

/// Add fields to an existing object without keeping it alive.
#[utoipa::path(post, path = "/{client}/affirmations", tag = "Origins",
    params(("client" = String, Path)), request_body = AffirmationBody,
    responses((status = 200, description = "Saved"), (status = 400, body = super::ErrorBody), (status = 422, body = super::ErrorBody)))]
pub(crate) async fn save_affirmation(
    State(s): State<AppState>,
    Path(client): Path<String>,
    Body(body): Body<AffirmationBody>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    write(&s, &client, move |g| {
        let affirmation = Affirmation {
            ooi: ooi(g.catalog(), &body.ooi)?,
            method: body.method.unwrap_or_else(|| "hydration".into()),
            source_method: body.source_method,
            task_id: body.task_id,
            valid_time: body_time("valid_time", body.valid_time.as_deref())?,
        };
        Ok(g.save_affirmation(affirmation)?)
    })
    .await
}
