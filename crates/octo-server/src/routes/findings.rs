//! Findings and their counts by severity.

use axum::extract::{Path, State};
use axum::Json;
use octo_graph::{FindingQuery, SEVERITIES};
use serde_json::Value;

use super::DEFAULT_LIMIT;
use crate::error::{ApiError, ApiResult};
use crate::params::Params;
use crate::{read, AppState};

/// Findings with their severities, paged.
#[utoipa::path(get, path = "/{client}/findings", tag = "Findings",
    params(("client" = String, Path), ("valid_time" = Option<String>, Query), ("exclude_muted" = Option<bool>, Query),
        ("only_muted" = Option<bool>, Query), ("offset" = Option<usize>, Query), ("limit" = Option<usize>, Query),
        ("severities" = Option<Vec<String>>, Query), ("search_string" = Option<String>, Query),
        ("order_by" = Option<String>, Query, description = "score or finding_type"), ("asc_desc" = Option<String>, Query)),
    responses((status = 200, description = "{count, items}", body = serde_json::Value), (status = 422, body = super::ErrorBody)))]
pub(crate) async fn list_findings(
    State(s): State<AppState>,
    Path(client): Path<String>,
    p: Params,
) -> ApiResult<Json<octo_graph::Page<octo_model::Ooi>>> {
    read(&s, &client, move |g| {
        let mut q = FindingQuery::default();
        let severities = p.all("severities");
        if !severities.is_empty() {
            q.severities.clear();
            for sev in severities {
                let sev = sev.to_lowercase();
                if !SEVERITIES.contains(&sev.as_str()) {
                    return Err(ApiError::unprocessable(format!("severity '{sev}' is not one of {SEVERITIES:?}")));
                }
                q.severities.insert(sev);
            }
        }
        q.exclude_muted = p.bool_or("exclude_muted", true)?;
        q.only_muted = p.bool_or("only_muted", false)?;
        q.search = p.get("search_string").filter(|s| !s.is_empty()).map(str::to_owned);
        q.order_by_score = match p.get("order_by").unwrap_or("score") {
            "score" => true,
            "finding_type" => false,
            other => return Err(ApiError::unprocessable(format!("order_by '{other}' is not score or finding_type"))),
        };
        q.descending = match p.get("asc_desc").unwrap_or("desc") {
            "desc" => true,
            "asc" => false,
            other => return Err(ApiError::unprocessable(format!("asc_desc '{other}' is not asc or desc"))),
        };
        q.offset = p.usize_or("offset", 0)?;
        q.limit = p.usize_or("limit", DEFAULT_LIMIT)?;
        Ok(Json(g.list_findings(&q, p.as_of()?)?))
    })
    .await
}

/// How many findings of each severity.
#[utoipa::path(get, path = "/{client}/findings/count_by_severity", tag = "Findings",
    params(("client" = String, Path), ("valid_time" = Option<String>, Query)),
    responses((status = 200, description = "{severity: count}", body = serde_json::Value)))]
pub(crate) async fn count_by_severity(
    State(s): State<AppState>,
    Path(client): Path<String>,
    p: Params,
) -> ApiResult<Json<Value>> {
    read(&s, &client, move |g| {
        let counts = g.count_findings_by_severity(p.as_of()?)?;
        serde_json::to_value(counts).map(Json).map_err(|e| ApiError::internal(e.to_string()))
    })
    .await
}
