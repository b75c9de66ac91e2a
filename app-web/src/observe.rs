//! Per-request observation: the RED metrics (requests by method, route template and status,
//! a latency histogram, requests in flight) and one access-log line per request.
//!
//! What goes into either is chosen, not copied: the route template rather than the path (so
//! ids and query strings never become label values or log text), the request id nginx sets,
//! the status and the latency. Headers, query strings, bodies and client addresses are never
//! read here, so passwords, tokens and cookies cannot reach the logs through this layer.

use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

use crate::metrics::{HTTP_IN_FLIGHT, HTTP_REQUEST_DURATION, HTTP_REQUESTS};

/// The label for requests no route matched (the UI's files and unknown paths).
pub const UNMATCHED_ROUTE: &str = "fallback";

/// Counts, times and logs one request; handlers' own log lines carry its request id and
/// route through the span it runs in.
pub async fn observe(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().as_str().to_owned();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or(UNMATCHED_ROUTE, MatchedPath::as_str)
        .to_owned();
    let request_id = request
        .headers()
        .get("x-request-id")
        .and_then(|value| value.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let in_flight = metrics::gauge!(HTTP_IN_FLIGHT);
    in_flight.increment(1.0);
    let span = tracing::info_span!("request", request_id = %request_id, route = %route);
    let response = next.run(request).instrument(span).await;
    in_flight.decrement(1.0);
    let status = response.status().as_u16();
    let elapsed = started.elapsed();
    metrics::counter!(
        HTTP_REQUESTS,
        "method" => method.clone(),
        "route" => route.clone(),
        "status" => status.to_string()
    )
    .increment(1);
    metrics::histogram!(HTTP_REQUEST_DURATION, "method" => method.clone(), "route" => route.clone())
        .record(elapsed.as_secs_f64());
    let latency_ms = elapsed.as_secs_f64() * 1000.0;
    // Health checks and scrapes come every few seconds; they would drown the requests that
    // matter, so they log at debug.
    if matches!(route.as_str(), "/healthz" | "/readyz" | "/metrics") {
        tracing::debug!(
            target: "app_web::access",
            request_id = %request_id, method = %method, route = %route, status, latency_ms,
            "request"
        );
    } else {
        tracing::info!(
            target: "app_web::access",
            request_id = %request_id, method = %method, route = %route, status, latency_ms,
            "request"
        );
    }
    response
}
