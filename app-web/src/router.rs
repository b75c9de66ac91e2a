//! The whole application router: every route, the body limits, request ids and request logs.

use axum::Router;
use axum::response::Response;
use axum::routing::get;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};

use crate::state::AppState;

/// The whole application router.
pub fn router(state: AppState) -> Router {
    let request_id = axum::http::HeaderName::from_static("x-request-id");
    Router::new()
        .route("/healthz", get(crate::health::healthz))
        .route("/readyz", get(crate::health::readyz))
        .route("/api/info", get(crate::health::info))
        .route("/metrics", get(crate::health::metrics))
        .merge(
            crate::notes::router().route_layer(axum::middleware::from_fn_with_state(
                (state.clone(), "rate-notes"),
                crate::rate_limit::limit,
            )),
        )
        .merge(crate::updates::api::router(state.clone()))
        .merge(crate::crashes::api::router(state.clone()))
        .merge(crate::analytics::api::router(state.clone()))
        .fallback(get(ui).layer(axum::extract::DefaultBodyLimit::max(
            crate::body_limits::PAGES_BYTES,
        )))
        // The JSON API's limit for every route that sets none of its own (events, crash
        // uploads and symbols do).
        .layer(axum::extract::DefaultBodyLimit::max(
            crate::body_limits::API_BYTES,
        ))
        .with_state(state)
        // Inside the request-id layers, so the id is set when it logs.
        .layer(axum::middleware::from_fn(crate::observe::observe))
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
}

async fn ui(
    axum::extract::State(state): axum::extract::State<AppState>,
    uri: axum::http::Uri,
    headers: axum::http::HeaderMap,
) -> Response {
    state.ui().respond(uri.path(), &headers).await
}
