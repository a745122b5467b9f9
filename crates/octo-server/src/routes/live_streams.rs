//! Live streams: saved filters over an organisation's change stream, managed here and read at
//! `GET /{client}/stream/{id}`. Each is an organisation setting (`live-stream:<id>`), so it is
//! kept bitemporally with the graph and its changes are events like any other.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use octo_store::AsOf;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{ApiError, ApiResult};
use crate::params::Body;
use crate::{read, AppState};

const PREFIX: &str = "live-stream:";

/// A saved live stream.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub(crate) struct LiveStream {
    /// Its id (in `/stream/{id}`).
    pub id: String,
    /// A name for people.
    pub name: String,
    /// What it is for.
    #[serde(default)]
    pub description: Option<String>,
    /// Which changes it carries (OpenCTI's filter-group shape; docs/STREAM.md).
    #[schema(value_type = Object)]
    pub filters: octo_stream::FilterGroup,
}

/// What a client sends to create or replace one.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct LiveStreamBody {
    /// A name for people.
    name: String,
    /// What it is for.
    #[serde(default)]
    description: Option<String>,
    /// Which changes it carries.
    #[schema(value_type = Object)]
    filters: octo_stream::FilterGroup,
}

fn new_id() -> ApiResult<String> {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).map_err(|e| ApiError::internal(format!("no randomness: {e}")))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

fn check_id(id: &str) -> ApiResult<()> {
    if !id.is_empty() && id.len() <= 64 && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!("'{id}' is not a live stream id")))
    }
}

/// A saved live stream (404 when there is none).
pub(crate) async fn load(s: &AppState, client: &str, id: &str) -> ApiResult<LiveStream> {
    check_id(id)?;
    let (id, client_name) = (id.to_owned(), client.to_owned());
    read(s, client, move |g| {
        let value = g
            .setting(&format!("{PREFIX}{id}"), AsOf::now())?
            .ok_or_else(|| ApiError::not_found(format!("no live stream '{id}' in organisation '{client_name}'")))?;
        serde_json::from_value(value).map_err(|e| ApiError::internal(format!("stored live stream {id}: {e}")))
    })
    .await
}

async fn save(s: &AppState, client: &str, id: String, body: LiveStreamBody) -> ApiResult<LiveStream> {
    let stream = LiveStream { id: id.clone(), name: body.name, description: body.description, filters: body.filters };
    let value = serde_json::to_value(&stream).map_err(|e| ApiError::internal(e.to_string()))?;
    let stored = stream.clone();
    let _null = crate::write(s, client, move |g| {
        stored.filters.check(g.catalog()).map_err(ApiError::bad_request)?;
        Ok(g.put_setting(&format!("{PREFIX}{id}"), Some(value), None)?)
    })
    .await?;
    Ok(stream)
}

/// The organisation's live streams.
#[utoipa::path(get, path = "/{client}/streams", tag = "Stream",
    params(("client" = String, Path)),
    responses((status = 200, description = "Live streams", body = Vec<LiveStream>)))]
pub(crate) async fn list(State(s): State<AppState>, Path(client): Path<String>) -> ApiResult<Json<Vec<Value>>> {
    read(&s, &client, |g| Ok(Json(g.settings(PREFIX, AsOf::now())?.into_iter().map(|(_, v)| v).collect()))).await
}

/// Save a new live stream.
#[utoipa::path(post, path = "/{client}/streams", tag = "Stream",
    params(("client" = String, Path)), request_body = LiveStreamBody,
    responses((status = 201, description = "Created", body = LiveStream), (status = 400, body = super::ErrorBody),
        (status = 422, body = super::ErrorBody)))]
pub(crate) async fn create(
    State(s): State<AppState>,
    Path(client): Path<String>,
    Body(body): Body<LiveStreamBody>,
) -> ApiResult<(StatusCode, Json<LiveStream>)> {
    let stream = save(&s, &client, new_id()?, body).await?;
    Ok((StatusCode::CREATED, Json(stream)))
}

/// One live stream.
#[utoipa::path(get, path = "/{client}/streams/{id}", tag = "Stream",
    params(("client" = String, Path), ("id" = String, Path)),
    responses((status = 200, description = "The live stream", body = LiveStream), (status = 404, body = super::ErrorBody)))]
pub(crate) async fn get(
    State(s): State<AppState>,
    Path((client, id)): Path<(String, String)>,
) -> ApiResult<Json<LiveStream>> {
    Ok(Json(load(&s, &client, &id).await?))
}

/// Replace a live stream's name, description and filters (consumers connected to it keep the
/// filter they connected with until they reconnect).
#[utoipa::path(put, path = "/{client}/streams/{id}", tag = "Stream",
    params(("client" = String, Path), ("id" = String, Path)), request_body = LiveStreamBody,
    responses((status = 200, description = "Saved", body = LiveStream), (status = 400, body = super::ErrorBody),
        (status = 404, body = super::ErrorBody)))]
pub(crate) async fn update(
    State(s): State<AppState>,
    Path((client, id)): Path<(String, String)>,
    Body(body): Body<LiveStreamBody>,
) -> ApiResult<Json<LiveStream>> {
    load(&s, &client, &id).await?;
    Ok(Json(save(&s, &client, id, body).await?))
}

/// Delete a live stream.
#[utoipa::path(delete, path = "/{client}/streams/{id}", tag = "Stream",
    params(("client" = String, Path), ("id" = String, Path)),
    responses((status = 200, description = "Deleted"), (status = 404, body = super::ErrorBody)))]
pub(crate) async fn delete(
    State(s): State<AppState>,
    Path((client, id)): Path<(String, String)>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    load(&s, &client, &id).await?;
    crate::write(&s, &client, move |g| Ok(g.put_setting(&format!("{PREFIX}{id}"), None, None)?)).await
}
