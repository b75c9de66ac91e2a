//! HTTP routes: liveness, readiness, build information and the UI.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};

use metrics_exporter_prometheus::PrometheusHandle;
use sqlx::PgPool;

use crate::cache::Cache;
use crate::rate_limit::RateLimitConfig;
use crate::ui::UiSource;

/// State shared by every handler.
#[derive(Clone)]
pub struct AppState {
    ui: Arc<UiSource>,
    draining: Arc<AtomicBool>,
    database: Option<PgPool>,
    cache: Cache,
    rate_limit: Arc<RateLimitConfig>,
    metrics: Option<PrometheusHandle>,
    /// SHA-256 of the admin API's bearer token; no token, no admin API.
    admin_token: Option<Arc<[u8; 32]>>,
    releases: crate::updates::store::OfferableCache,
    /// What publishing a release checks its artifacts against.
    publish_policy: Arc<crate::updates::config::PublishPolicy>,
    /// Crash reports, when a crash folder is configured.
    crashes: Option<Arc<crate::crashes::Crashes>>,
}

impl AppState {
    /// State with the UI only: no database, no cache, default rate limits, no metrics.
    pub fn new(ui: UiSource) -> Self {
        Self {
            ui: Arc::new(ui),
            draining: Arc::new(AtomicBool::new(false)),
            database: None,
            cache: Cache::disabled(),
            rate_limit: Arc::new(RateLimitConfig::default()),
            metrics: None,
            admin_token: None,
            releases: crate::updates::store::OfferableCache::default(),
            publish_policy: Arc::new(crate::updates::config::PublishPolicy {
                key: None,
                allow_http_downloads: false,
            }),
            crashes: None,
        }
    }

    pub fn with_publish_policy(mut self, policy: crate::updates::config::PublishPolicy) -> Self {
        self.publish_policy = Arc::new(policy);
        self
    }

    pub fn publish_policy(&self) -> &crate::updates::config::PublishPolicy {
        &self.publish_policy
    }

    /// Turns the admin API on with `token` (kept only as its SHA-256).
    pub fn with_admin_token(mut self, token: Option<&str>) -> Self {
        use sha2::Digest;
        self.admin_token = token.map(|token| Arc::new(sha2::Sha256::digest(token.trim()).into()));
        self
    }

    /// The releases update checks choose among, per platform.
    pub fn releases(&self) -> &crate::updates::store::OfferableCache {
        &self.releases
    }

    pub fn admin_token_digest(&self) -> Option<&[u8]> {
        self.admin_token.as_deref().map(|digest| digest.as_slice())
    }

    pub fn with_crashes(mut self, crashes: Option<Arc<crate::crashes::Crashes>>) -> Self {
        self.crashes = crashes;
        self
    }

    pub fn crashes(&self) -> Option<&Arc<crate::crashes::Crashes>> {
        self.crashes.as_ref()
    }

    pub fn with_database(mut self, database: Option<PgPool>) -> Self {
        self.database = database;
        self
    }

    pub fn with_cache(mut self, cache: Cache) -> Self {
        self.cache = cache;
        self
    }

    pub fn with_rate_limit(mut self, rate_limit: RateLimitConfig) -> Self {
        self.rate_limit = Arc::new(rate_limit);
        self
    }

    pub fn with_metrics(mut self, metrics: PrometheusHandle) -> Self {
        self.metrics = Some(metrics);
        self
    }

    pub fn database(&self) -> Option<&PgPool> {
        self.database.as_ref()
    }

    /// The database pool, or the 503 a request gets when there is none.
    pub fn pool(&self) -> Result<&PgPool, crate::error::ApiError> {
        self.database.as_ref().ok_or_else(|| {
            crate::error::ApiError::DatabaseUnavailable("no database is configured".into())
        })
    }

    pub fn cache(&self) -> &Cache {
        &self.cache
    }

    pub fn rate_limit(&self) -> &RateLimitConfig {
        &self.rate_limit
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
        .route("/metrics", get(metrics))
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

/// Liveness: the process is up and its runtime answers.
async fn healthz() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

/// Readiness, with PostgreSQL and Redis reported separately. Ready (200) needs the database
/// when one is configured; Redis down only degrades the service, since PostgreSQL still answers.
async fn readyz(axum::extract::State(state): axum::extract::State<AppState>) -> Response {
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
async fn metrics(axum::extract::State(state): axum::extract::State<AppState>) -> Response {
    if let Some(pool) = state.database() {
        metrics::gauge!(crate::metrics::DB_POOL_CONNECTIONS).set(f64::from(pool.size()));
        metrics::gauge!(crate::metrics::DB_POOL_IDLE).set(pool.num_idle() as f64);
        metrics::gauge!(crate::metrics::DB_POOL_MAX)
            .set(f64::from(pool.options().get_max_connections()));
    }
    if state.cache.is_enabled() {
        let up = tokio::time::timeout(std::time::Duration::from_secs(1), state.cache.ping())
            .await
            .is_ok_and(|answer| answer.is_ok());
        metrics::gauge!(crate::metrics::REDIS_UP).set(if up { 1.0 } else { 0.0 });
    }
    match &state.metrics {
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

/// Lets a request through only with `Authorization: Bearer <the admin token>`. The token is
/// kept and compared as its SHA-256, so the comparison's timing reveals nothing usable.
pub async fn require_admin(
    axum::extract::State(state): axum::extract::State<AppState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Result<Response, crate::error::ApiError> {
    let Some(expected) = state.admin_token_digest() else {
        return Err(crate::error::ApiError::Forbidden(
            "the admin API is off: start app-web with --admin-token-file (APP_WEB_ADMIN_TOKEN_FILE)"
                .into(),
        ));
    };
    let given = request
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .ok_or(crate::error::ApiError::Unauthorized)?;
    use sha2::Digest;
    if sha2::Sha256::digest(given.trim().as_bytes()).as_slice() != expected {
        return Err(crate::error::ApiError::Unauthorized);
    }
    Ok(next.run(request).await)
}
