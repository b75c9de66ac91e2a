//! API errors and their JSON answers: every failure names what went wrong, and for bad input
//! which field.

use std::collections::BTreeMap;

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request could not be read at all (bad JSON, bad id).
    #[error("{message}")]
    BadRequest {
        field: Option<&'static str>,
        message: String,
    },
    /// The request was read but its values break the rules; one message per field.
    #[error("invalid fields")]
    Validation(BTreeMap<&'static str, String>),
    #[error("not found")]
    NotFound,
    /// No credentials, or the wrong ones.
    #[error("unauthorized")]
    Unauthorized,
    /// The request is understood but not allowed here; the message says why.
    #[error("{0}")]
    Forbidden(String),
    /// The request contradicts what is stored; the message says how.
    #[error("{0}")]
    Conflict(String),
    /// The body, or one part of it, is over its limit; the message names the limit.
    #[error("{0}")]
    PayloadTooLarge(String),
    /// A feature this request needs is turned off on this server; the message says how to turn
    /// it on.
    #[error("{0}")]
    Disabled(String),
    #[error("too many requests")]
    RateLimited { retry_after_secs: u64 },
    /// The database is not configured, down, or has no free connection.
    #[error("database unavailable: {0}")]
    DatabaseUnavailable(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    pub fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        Self::Validation(BTreeMap::from([(field, message.into())]))
    }
}

/// The JSON body axum read, or a 400 saying the body must be `what`.
pub fn read_json<T>(
    body: Result<Json<T>, axum::extract::rejection::JsonRejection>,
    what: &str,
) -> Result<T, ApiError> {
    body.map(|Json(input)| input).map_err(|rejection| {
        if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge(format!(
                "the body is over this route's limit: {}",
                rejection.body_text()
            ))
        } else {
            ApiError::BadRequest {
                field: None,
                message: format!("the body must be {what}: {}", rejection.body_text()),
            }
        }
    })
}

impl From<sqlx::Error> for ApiError {
    fn from(err: sqlx::Error) -> Self {
        match err {
            sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::WorkerCrashed => {
                metrics::counter!(crate::metrics::DATABASE_UNAVAILABLE).increment(1);
                Self::DatabaseUnavailable(err.to_string())
            }
            sqlx::Error::RowNotFound => Self::NotFound,
            other => Self::Internal(other.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, body) = match &self {
            ApiError::BadRequest { field, message } => (
                StatusCode::BAD_REQUEST,
                json!({ "error": "bad_request", "field": field, "message": message }),
            ),
            ApiError::Validation(fields) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                json!({ "error": "validation", "fields": fields }),
            ),
            ApiError::NotFound => (StatusCode::NOT_FOUND, json!({ "error": "not_found" })),
            ApiError::Unauthorized => (
                StatusCode::UNAUTHORIZED,
                json!({ "error": "unauthorized", "message": "send `Authorization: Bearer <admin token>`" }),
            ),
            ApiError::Forbidden(message) => (
                StatusCode::FORBIDDEN,
                json!({ "error": "forbidden", "message": message }),
            ),
            ApiError::Conflict(message) => (
                StatusCode::CONFLICT,
                json!({ "error": "conflict", "message": message }),
            ),
            ApiError::PayloadTooLarge(message) => (
                StatusCode::PAYLOAD_TOO_LARGE,
                json!({ "error": "payload_too_large", "message": message }),
            ),
            ApiError::Disabled(message) => (
                StatusCode::SERVICE_UNAVAILABLE,
                json!({ "error": "disabled", "message": message }),
            ),
            ApiError::RateLimited { retry_after_secs } => (
                StatusCode::TOO_MANY_REQUESTS,
                json!({ "error": "rate_limited", "retry_after_secs": retry_after_secs }),
            ),
            ApiError::DatabaseUnavailable(reason) => {
                tracing::warn!(reason = %reason, "database unavailable");
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    json!({ "error": "database_unavailable" }),
                )
            }
            ApiError::Internal(reason) => {
                tracing::error!(reason = %reason, "internal error");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    json!({ "error": "internal" }),
                )
            }
        };
        let mut response = (status, Json(body)).into_response();
        match self {
            ApiError::RateLimited { retry_after_secs } => {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
            }
            ApiError::Unauthorized => {
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            _ => {}
        }
        response
    }
}
