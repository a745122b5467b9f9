//! Objects: list, get, history, random, query, tree, delete.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use octo_graph::{ListOrder, ListQuery, QueryResult};
use octo_model::{Catalog, Reference};
use serde_json::{json, Map, Value};

use super::DEFAULT_LIMIT;
use crate::error::{ApiError, ApiResult};
use crate::params::{parse_reference, Body, Params};
use crate::{read, write, AppState};

/// Checks type names against the catalogue (400 for an unknown one).
pub(crate) fn check_types(catalog: &Catalog, types: &[&str]) -> ApiResult<Vec<String>> {
    types
        .iter()
        .map(|t| {
            catalog.concrete_types(t).map_err(|_| ApiError::bad_request(format!("unknown object type '{t}'")))?;
            Ok(t.to_string())
        })
        .collect()
}

fn one_of<'a>(p: &'a Params, name: &str, allowed: &[&'a str], default: &'a str) -> ApiResult<&'a str> {
    let v = p.get(name).unwrap_or(default);
    if allowed.contains(&v) {
        Ok(v)
    } else {
        Err(ApiError::unprocessable(format!("query parameter '{name}' must be one of {allowed:?}, not '{v}'")))
    }
}

/// List objects of some types, with Octopoes' filters, paged.
#[utoipa::path(get, path = "/{client}/objects", tag = "Objects",
    params(
        ("client" = String, Path, description = "Organisation"),
        ("valid_time" = Option<String>, Query, description = "Valid time (default: now)"),
        ("types" = Option<Vec<String>>, Query, description = "Types, abstract ones included (default OOI)"),
        ("scan_level" = Option<Vec<u8>>, Query, description = "Only these levels"),
        ("scan_profile_type" = Option<Vec<String>>, Query, description = "declared, inherited or empty"),
        ("offset" = Option<usize>, Query), ("limit" = Option<usize>, Query, description = "Default 20"),
        ("search_string" = Option<String>, Query, description = "Substring of the primary key"),
        ("order_by" = Option<String>, Query, description = "object_type or scan_level"),
        ("asc_desc" = Option<String>, Query, description = "asc or desc"),
    ),
    responses((status = 200, description = "{count, items}", body = serde_json::Value),
        (status = 400, body = super::ErrorBody), (status = 422, body = super::ErrorBody)))]
pub(crate) async fn list_objects(
    State(s): State<AppState>,
    Path(client): Path<String>,
    p: Params,
) -> ApiResult<Json<octo_graph::Page<octo_model::Ooi>>> {
    read(&s, &client, move |g| {
        let types = p.all("types");
        let types = if types.is_empty() { vec!["OOI".to_owned()] } else { check_types(g.catalog(), &types)? };
        let order_by = match one_of(&p, "order_by", &["object_type", "scan_level"], "object_type")? {
            "scan_level" => ListOrder::ScanLevel,
            _ => ListOrder::ObjectType,
        };
        let mut profile_types = std::collections::BTreeSet::new();
        for t in p.all("scan_profile_type") {
            if !["declared", "inherited", "empty"].contains(&t) {
                return Err(ApiError::unprocessable(format!(
                    "scan_profile_type '{t}' is not declared, inherited or empty"
                )));
            }
            profile_types.insert(t.to_owned());
        }
        let q = ListQuery {
            types,
            scan_levels: p.scan_levels("scan_level")?,
            scan_profile_types: profile_types,
            search: p.get("search_string").filter(|s| !s.is_empty()).map(str::to_owned),
            order_by,
            descending: one_of(&p, "asc_desc", &["asc", "desc"], "asc")? == "desc",
            offset: p.usize_or("offset", 0)?,
            limit: p.usize_or("limit", 20)?,
        };
        Ok(Json(g.list_objects(&q, p.as_of()?)?))
    })
    .await
}

fn query_result(r: &QueryResult) -> Value {
    r.to_json()
}

/// Run an Octopoes path query from one object or from every object of the start type.
#[utoipa::path(get, path = "/{client}/query", tag = "Objects",
    params(("client" = String, Path), ("path" = String, Query, description = "e.g. Hostname.<hostname[is ResolvedHostname].address"),
        ("source" = Option<String>, Query, description = "Start object"), ("valid_time" = Option<String>, Query),
        ("offset" = Option<usize>, Query), ("limit" = Option<usize>, Query, description = "Default 50")),
    responses((status = 200, description = "Objects, or field values", body = serde_json::Value),
        (status = 400, body = super::ErrorBody)))]
pub(crate) async fn query(State(s): State<AppState>, Path(client): Path<String>, p: Params) -> ApiResult<Json<Value>> {
    read(&s, &client, move |g| {
        let path = p.required("path")?;
        let source = p.get("source").map(|k| parse_reference(k, g.catalog())).transpose()?;
        let out =
            g.query(path, source.as_ref(), p.usize_or("offset", 0)?, p.usize_or("limit", DEFAULT_LIMIT)?, p.as_of()?)?;
        Ok(Json(Value::Array(out.iter().map(query_result).collect())))
    })
    .await
}

/// Run a path query from many objects; each result comes with its source.
#[utoipa::path(get, path = "/{client}/query-many", tag = "Objects",
    params(("client" = String, Path), ("path" = String, Query), ("sources" = Vec<String>, Query),
        ("valid_time" = Option<String>, Query)),
    responses((status = 200, description = "[[source, result], …]", body = serde_json::Value),
        (status = 400, body = super::ErrorBody)))]
pub(crate) async fn query_many(
    State(s): State<AppState>,
    Path(client): Path<String>,
    p: Params,
) -> ApiResult<Json<Value>> {
    read(&s, &client, move |g| {
        let path = p.required("path")?;
        let sources: Vec<Reference> =
            p.all("sources").into_iter().map(|k| parse_reference(k, g.catalog())).collect::<ApiResult<_>>()?;
        if sources.is_empty() {
            return Ok(Json(json!([])));
        }
        if path.trim().is_empty() {
            return Err(ApiError::bad_request("No path components provided."));
        }
        let out = g.query_many(path, &sources, p.as_of()?)?;
        Ok(Json(Value::Array(out.iter().map(|(src, r)| json!([src.as_str(), query_result(r)])).collect())))
    })
    .await
}

/// Load many objects at once; keys that do not exist are left out.
#[utoipa::path(post, path = "/{client}/objects/load_bulk", tag = "Objects",
    params(("client" = String, Path), ("valid_time" = Option<String>, Query)),
    request_body(content = Vec<String>, description = "Primary keys"),
    responses((status = 200, description = "{primary key: object}", body = serde_json::Value),
        (status = 400, body = super::ErrorBody), (status = 422, body = super::ErrorBody)))]
pub(crate) async fn load_bulk(
    State(s): State<AppState>,
    Path(client): Path<String>,
    p: Params,
    Body(keys): Body<Vec<String>>,
) -> ApiResult<Json<Value>> {
    read(&s, &client, move |g| {
        let at = p.as_of()?;
        let mut out = Map::new();
        for k in keys {
            let r = parse_reference(&k, g.catalog())?;
            match g.get(&r, at) {
                Ok(ooi) => {
                    out.insert(r.to_string(), ooi.to_json());
                }
                Err(octo_graph::GraphError::NotFound(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(Json(Value::Object(out)))
    })
    .await
}

/// One object with its scan profile.
#[utoipa::path(get, path = "/{client}/object", tag = "Objects",
    params(("client" = String, Path), ("reference" = String, Query, description = "Primary key"),
        ("valid_time" = Option<String>, Query)),
    responses((status = 200, description = "The object", body = serde_json::Value),
        (status = 400, body = super::ErrorBody), (status = 404, body = super::ErrorBody)))]
pub(crate) async fn get_object(
    State(s): State<AppState>,
    Path(client): Path<String>,
    p: Params,
) -> ApiResult<Response> {
    read(&s, &client, move |g| {
        let r = p.reference("reference", g.catalog())?;
        Ok(Json(g.get(&r, p.as_of()?)?).into_response())
    })
    .await
}

/// Every version of an object: transaction and valid times, content hash, optionally documents.
#[utoipa::path(get, path = "/{client}/object-history", tag = "Objects",
    params(("client" = String, Path), ("reference" = String, Query), ("sort_order" = Option<String>, Query, description = "asc or desc"),
        ("with_docs" = Option<bool>, Query), ("has_doc" = Option<bool>, Query, description = "Only versions with (true) or without (false) a document"),
        ("offset" = Option<usize>, Query), ("limit" = Option<usize>, Query), ("indices" = Option<Vec<i64>>, Query, description = "Pick versions by position; negative counts from the end")),
    responses((status = 200, description = "[{txTime, txId, validTime, contentHash, doc}]", body = serde_json::Value),
        (status = 404, body = super::ErrorBody)))]
pub(crate) async fn object_history(
    State(s): State<AppState>,
    Path(client): Path<String>,
    p: Params,
) -> ApiResult<Json<Value>> {
    read(&s, &client, move |g| {
        let r = p.reference("reference", g.catalog())?;
        let descending = one_of(&p, "sort_order", &["asc", "desc"], "asc")? == "desc";
        let with_docs = p.bool_or("with_docs", false)?;
        let has_doc = p.opt_bool("has_doc")?;
        let indices: Vec<i64> = p
            .all("indices")
            .into_iter()
            .map(|i| i.parse().map_err(|_| ApiError::unprocessable(format!("indices: '{i}' is not an integer"))))
            .collect::<ApiResult<_>>()?;
        let mut versions = g
            .store()
            .snapshot()
            .map_err(octo_graph::GraphError::from)?
            .history(r.as_str())
            .map_err(octo_graph::GraphError::from)?;
        if versions.is_empty() {
            return Err(ApiError::not_found(format!("object '{r}' has no history")));
        }
        // By valid time, then transaction time, as XTDB's entity history.
        if descending {
            versions.reverse();
        }
        if let Some(has) = has_doc {
            versions.retain(|v| v.is_tombstone() != has);
        }
        let n = versions.len() as i64;
        let picked: Vec<_> = if indices.is_empty() {
            let offset = p.usize_or("offset", 0)?;
            let limit = p.opt_usize("limit")?.unwrap_or(usize::MAX);
            versions.into_iter().skip(offset).take(limit).collect()
        } else {
            versions
                .into_iter()
                .enumerate()
                .filter(|(i, _)| indices.contains(&(*i as i64)) || indices.contains(&(*i as i64 - n)))
                .map(|(_, v)| v)
                .collect()
        };
        let mut out = Vec::with_capacity(picked.len());
        for v in picked {
            let mut rec = json!({
                "txTime": v.tx_time.to_string(),
                "txId": v.tx_id,
                "validTime": v.valid_time.to_string(),
                // XTDB writes forty zeros for a deletion; clients test for it.
                "contentHash": v.content_hash().map_or_else(|| "0".repeat(40), |h| h.to_string()),
            });
            if with_docs {
                let doc: Value = if v.is_tombstone() {
                    Value::Null
                } else {
                    serde_json::from_slice(&v.doc)
                        .map_err(|e| ApiError::internal(format!("stored document of {r}: {e}")))?
                };
                rec["doc"] = doc;
            }
            out.push(rec);
        }
        Ok(Json(Value::Array(out)))
    })
    .await
}

/// Objects drawn at random, optionally only at some scan levels.
#[utoipa::path(get, path = "/{client}/objects/random", tag = "Objects",
    params(("client" = String, Path), ("valid_time" = Option<String>, Query), ("amount" = Option<usize>, Query, description = "Default 1"),
        ("scan_level" = Option<Vec<u8>>, Query)),
    responses((status = 200, description = "Objects", body = serde_json::Value)))]
pub(crate) async fn random_objects(
    State(s): State<AppState>,
    Path(client): Path<String>,
    p: Params,
) -> ApiResult<Json<Value>> {
    read(&s, &client, move |g| {
        let out = g.random_objects(p.usize_or("amount", 1)?, &p.scan_levels("scan_level")?, p.as_of()?)?;
        Ok(Json(Value::Array(out.iter().map(|o| o.to_json()).collect())))
    })
    .await
}

/// Delete an object whatever holds it; what only it held goes too.
#[utoipa::path(delete, path = "/{client}/", tag = "Objects",
    params(("client" = String, Path), ("reference" = String, Query), ("valid_time" = Option<String>, Query)),
    responses((status = 200, description = "Deleted"), (status = 404, body = super::ErrorBody)))]
pub(crate) async fn delete_object(
    State(s): State<AppState>,
    Path(client): Path<String>,
    p: Params,
) -> ApiResult<(axum::http::StatusCode, Json<Value>)> {
    write(&s, &client, move |g| {
        let r = p.reference("reference", g.catalog())?;
        Ok(g.delete_object(&r, Some(p.valid_time()?))?)
    })
    .await
}

/// Delete many objects in one transaction (all or, if one is missing, none).
#[utoipa::path(post, path = "/{client}/objects/delete_many", tag = "Objects",
    params(("client" = String, Path), ("valid_time" = Option<String>, Query)),
    request_body(content = Vec<String>, description = "Primary keys"),
    responses((status = 200, description = "Deleted"), (status = 404, body = super::ErrorBody), (status = 422, body = super::ErrorBody)))]
pub(crate) async fn delete_many(
    State(s): State<AppState>,
    Path(client): Path<String>,
    p: Params,
    Body(keys): Body<Vec<String>>,
) -> ApiResult<(axum::http::StatusCode, Json<Value>)> {
    write(&s, &client, move |g| {
        let refs: Vec<Reference> = keys.iter().map(|k| parse_reference(k, g.catalog())).collect::<ApiResult<_>>()?;
        Ok(g.delete_objects(&refs, Some(p.valid_time()?))?)
    })
    .await
}

/// The objects around one, to a depth, both directions.
#[utoipa::path(get, path = "/{client}/tree", tag = "Objects",
    params(("client" = String, Path), ("reference" = String, Query), ("depth" = Option<usize>, Query, description = "Default 1"),
        ("types" = Option<Vec<String>>, Query, description = "Only neighbours of these types"), ("valid_time" = Option<String>, Query)),
    responses((status = 200, description = "{root, store}", body = serde_json::Value),
        (status = 400, body = super::ErrorBody), (status = 404, body = super::ErrorBody)))]
pub(crate) async fn tree(State(s): State<AppState>, Path(client): Path<String>, p: Params) -> ApiResult<Response> {
    read(&s, &client, move |g| {
        let r = p.reference("reference", g.catalog())?;
        let types: Vec<&str> = p.all("types").into_iter().filter(|t| *t != "OOI").collect();
        let types = check_types(g.catalog(), &types)?;
        let depth = p.usize_or("depth", 1)?;
        if depth > 16 {
            return Err(ApiError::bad_request(format!("depth {depth} is more than 16")));
        }
        let tree = g.tree(&r, depth, &types, p.as_of()?)?;
        // Straight to bytes: a tree is the largest common answer, and building a JSON value
        // first would serialise it twice.
        let bytes = serde_json::to_vec(&tree).map_err(|e| ApiError::internal(e.to_string()))?;
        Ok(([(axum::http::header::CONTENT_TYPE, "application/json")], bytes).into_response())
    })
    .await
}
