//! API errors: every failure answers with a status and a JSON body carrying the message, under
//! `detail` (what OpenKAT's connector reads, as FastAPI writes it) and `message`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use octo_graph::GraphError;
use serde_json::json;

/// Why a request failed, with the status it answers with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// A sentence for the caller.
    pub message: String,
}

impl ApiError {
    /// A value that does not validate, an unknown type or field (400).
    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError { status: StatusCode::BAD_REQUEST, message: message.into() }
    }

    /// A body or query parameter that is missing or of the wrong shape (422, as FastAPI).
    pub fn unprocessable(message: impl Into<String>) -> Self {
        ApiError { status: StatusCode::UNPROCESSABLE_ENTITY, message: message.into() }
    }

    /// Something that does not exist (404).
    pub fn not_found(message: impl Into<String>) -> Self {
        ApiError { status: StatusCode::NOT_FOUND, message: message.into() }
    }

    /// No valid token (401).
    pub fn unauthorized(message: impl Into<String>) -> Self {
        ApiError { status: StatusCode::UNAUTHORIZED, message: message.into() }
    }

    /// A valid token without the right (403).
    pub fn forbidden(message: impl Into<String>) -> Self {
        ApiError { status: StatusCode::FORBIDDEN, message: message.into() }
    }

    /// The request contradicts what exists, e.g. creating an organisation twice (409).
    pub fn conflict(message: impl Into<String>) -> Self {
        ApiError { status: StatusCode::CONFLICT, message: message.into() }
    }

    /// A service the server depends on (the Redis bus) cannot be reached (503).
    pub fn unavailable(message: impl Into<String>) -> Self {
        ApiError { status: StatusCode::SERVICE_UNAVAILABLE, message: message.into() }
    }

    /// A fault of ours, never of the input (500); logged where it happens.
    pub fn internal(message: impl Into<String>) -> Self {
        ApiError { status: StatusCode::INTERNAL_SERVER_ERROR, message: message.into() }
    }
}

impl From<GraphError> for ApiError {
    fn from(e: GraphError) -> Self {
        let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        if status.is_server_error() {
            tracing::error!(error = %e, "graph failure");
        }
        ApiError { status, message: e.to_string() }
    }
}

impl From<octo_model::ModelError> for ApiError {
    fn from(e: octo_model::ModelError) -> Self {
        ApiError::bad_request(e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(json!({ "detail": self.message, "message": self.message }))).into_response()
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.status, self.message)
    }
}

impl std::error::Error for ApiError {}

/// Result of handlers.
pub type ApiResult<T> = Result<T, ApiError>;
