//! HTTP routes: liveness, readiness, build information and the UI.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use crate::ui::UiSource;

/// State shared by every handler.
#[derive(Clone)]
pub struct AppState {
    ui: Arc<UiSource>,
    draining: Arc<AtomicBool>,
}

impl AppState {
    pub fn new(ui: UiSource) -> Self {
        Self {
            ui: Arc::new(ui),
            draining: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Marks the service as shutting down: `/readyz` then answers 503 so that a load
    /// balancer stops sending new work while in-flight requests finish.
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }
}

/// The whole application router.
pub fn router(state: AppState) -> Router {
    let request_id = axum::http::HeaderName::from_static("x-request-id");
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/api/info", get(info))
        .fallback(get(ui))
        .with_state(state)
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(TraceLayer::new_for_http())
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
}

/// Liveness: the process is up and its runtime answers.
async fn healthz() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

/// Readiness: able to serve traffic. Dependencies join these checks as the service grows.
async fn readyz(axum::extract::State(state): axum::extract::State<AppState>) -> Response {
    if state.is_draining() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "draining" })),
        )
            .into_response();
    }
    Json(json!({ "status": "ready" })).into_response()
}

/// Build information for the UI and for operators.
async fn info() -> Json<serde_json::Value> {
    Json(json!({ "name": env!("CARGO_PKG_NAME"), "version": env!("CARGO_PKG_VERSION") }))
}

async fn ui(
    axum::extract::State(state): axum::extract::State<AppState>,
    uri: axum::http::Uri,
    headers: axum::http::HeaderMap,
) -> Response {
    state.ui.respond(uri.path(), &headers).await
}
