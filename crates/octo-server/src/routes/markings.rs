//! Markings: the TLP 2.0 level of each object (its own, else the organisation's default, else
//! TLP:CLEAR), which decides which tokens see it on the change stream. Kept as organisation
//! settings, so they are bitemporal and their changes are events the stream acts on.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use octo_store::AsOf;
use octo_stream::marking::{setting_name, DEFAULT_SETTING};
use octo_stream::Tlp;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::{ApiError, ApiResult};
use crate::params::{Body, Params};
use crate::{read, write, AppState};

fn parse(marking: &str) -> ApiResult<Tlp> {
    marking.parse().map_err(ApiError::bad_request)
}

fn answer(reference: &str, own: Option<Tlp>, default: Option<Tlp>) -> Value {
    let marking = own.or(default).unwrap_or_default();
    json!({"reference": reference, "marking": marking, "marking_definition": marking.stix_id(), "own": own.is_some()})
}

fn stored(value: Option<Value>) -> Option<Tlp> {
    value.and_then(|v| v.as_str().and_then(|t| t.parse().ok()))
}

/// An object's marking.
#[utoipa::path(get, path = "/{client}/markings", tag = "Markings",
    params(("client" = String, Path), ("reference" = String, Query), ("valid_time" = Option<String>, Query)),
    responses((status = 200, description = "{reference, marking, marking_definition, own}", body = serde_json::Value),
        (status = 404, body = super::ErrorBody)))]
pub(crate) async fn get(State(s): State<AppState>, Path(client): Path<String>, p: Params) -> ApiResult<Json<Value>> {
    read(&s, &client, move |g| {
        let r = p.reference("reference", g.catalog())?;
        let at = p.as_of()?;
        g.get(&r, at)?;
        let own = stored(g.setting(&setting_name(r.as_str()), at)?);
        let default = stored(g.setting(DEFAULT_SETTING, at)?);
        Ok(Json(answer(r.as_str(), own, default)))
    })
    .await
}

/// What a client sends to mark an object.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct MarkingBody {
    /// The object (primary key).
    reference: String,
    /// `TLP:CLEAR`, `TLP:GREEN`, `TLP:AMBER`, `TLP:AMBER+STRICT` or `TLP:RED`.
    marking: String,
}

/// Mark an object.
#[utoipa::path(put, path = "/{client}/markings", tag = "Markings",
    params(("client" = String, Path), ("valid_time" = Option<String>, Query)), request_body = MarkingBody,
    responses((status = 200, description = "Saved"), (status = 400, body = super::ErrorBody), (status = 404, body = super::ErrorBody)))]
pub(crate) async fn put(
    State(s): State<AppState>,
    Path(client): Path<String>,
    p: Params,
    Body(body): Body<MarkingBody>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let marking = parse(&body.marking)?;
    write(&s, &client, move |g| {
        let r = crate::params::parse_reference(&body.reference, g.catalog())?;
        let vt = p.valid_time()?;
        g.get(&r, AsOf::valid(vt))?;
        Ok(g.put_setting(&setting_name(r.as_str()), Some(json!(marking)), Some(vt))?)
    })
    .await
}

/// Clear an object's own marking (it takes the organisation's default again).
#[utoipa::path(delete, path = "/{client}/markings", tag = "Markings",
    params(("client" = String, Path), ("reference" = String, Query), ("valid_time" = Option<String>, Query)),
    responses((status = 200, description = "Cleared"), (status = 404, body = super::ErrorBody)))]
pub(crate) async fn delete(
    State(s): State<AppState>,
    Path(client): Path<String>,
    p: Params,
) -> ApiResult<(StatusCode, Json<Value>)> {
    write(&s, &client, move |g| {
        let r = p.reference("reference", g.catalog())?;
        Ok(g.put_setting(&setting_name(r.as_str()), None, Some(p.valid_time()?))?)
    })
    .await
}

/// The organisation's default marking.
#[utoipa::path(get, path = "/{client}/markings/default", tag = "Markings",
    params(("client" = String, Path)),
    responses((status = 200, description = "{marking, marking_definition}", body = serde_json::Value)))]
pub(crate) async fn get_default(State(s): State<AppState>, Path(client): Path<String>) -> ApiResult<Json<Value>> {
    read(&s, &client, |g| {
        let marking = stored(g.setting(DEFAULT_SETTING, AsOf::now())?).unwrap_or_default();
        Ok(Json(json!({"marking": marking, "marking_definition": marking.stix_id()})))
    })
    .await
}

/// What a client sends to set the default marking.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct DefaultMarkingBody {
    /// The level every object without its own marking has.
    marking: String,
}

/// Set the organisation's default marking.
#[utoipa::path(put, path = "/{client}/markings/default", tag = "Markings",
    params(("client" = String, Path)), request_body = DefaultMarkingBody,
    responses((status = 200, description = "Saved"), (status = 400, body = super::ErrorBody)))]
pub(crate) async fn put_default(
    State(s): State<AppState>,
    Path(client): Path<String>,
    Body(body): Body<DefaultMarkingBody>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let marking = parse(&body.marking)?;
    write(&s, &client, move |g| Ok(g.put_setting(DEFAULT_SETTING, Some(json!(marking)), None)?)).await
}
