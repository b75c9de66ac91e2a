//! Liveness, readiness, build information and Prometheus metrics.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::state::AppState;

/// Liveness: the process is up and its runtime answers.
pub async fn healthz() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

/// Readiness, with PostgreSQL and Redis reported separately. Ready (200) needs the database
/// when one is configured; Redis down only degrades the service, since PostgreSQL still answers.
pub async fn readyz(State(state): State<AppState>) -> Response {
    if state.is_draining() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "draining" })),
        )
            .into_response();
    }
    let database = match state.database() {
        None => "disabled".to_owned(),
        Some(pool) => match sqlx::query("SELECT 1").execute(pool).await {
            Ok(_) => "ok".to_owned(),
            Err(err) => {
                tracing::warn!(error = %err, "readiness: database check failed");
                "down".to_owned()
            }
        },
    };
    let redis = if state.cache().is_enabled() {
        match state.cache().ping().await {
            Ok(()) => "ok",
            Err(err) => {
                tracing::warn!(error = %err, "readiness: Redis check failed");
                "down"
            }
        }
    } else {
        "disabled"
    };
    let (status, word) = match (database.as_str(), redis) {
        ("down", _) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
        (_, "down") => (StatusCode::OK, "degraded"),
        _ => (StatusCode::OK, "ready"),
    };
    (
        status,
        Json(json!({ "status": word, "checks": { "database": database, "redis": redis } })),
    )
        .into_response()
}

/// Prometheus metrics, in the text format. The pool and Redis gauges are read now, so they
/// describe the moment of the scrape.
pub async fn metrics(State(state): State<AppState>) -> Response {
    if let Some(pool) = state.database() {
        metrics::gauge!(crate::metrics::DB_POOL_CONNECTIONS).set(f64::from(pool.size()));
        metrics::gauge!(crate::metrics::DB_POOL_IDLE).set(pool.num_idle() as f64);
        metrics::gauge!(crate::metrics::DB_POOL_MAX)
            .set(f64::from(pool.options().get_max_connections()));
    }
    if state.cache().is_enabled() {
        let up = tokio::time::timeout(std::time::Duration::from_secs(1), state.cache().ping())
            .await
            .is_ok_and(|answer| answer.is_ok());
        metrics::gauge!(crate::metrics::REDIS_UP).set(if up { 1.0 } else { 0.0 });
    }
    match state.metrics() {
        Some(handle) => (
            [(
                axum::http::header::CONTENT_TYPE,
                "text/plain; version=0.0.4",
            )],
            handle.render(),
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "metrics are not enabled\n").into_response(),
    }
}

/// Build information for the UI and for operators.
pub async fn info() -> Json<serde_json::Value> {
    Json(json!({ "name": env!("CARGO_PKG_NAME"), "version": env!("CARGO_PKG_VERSION") }))
}
