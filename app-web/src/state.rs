//! The state every handler shares: the stores, the settings they read, and whether the
//! service is draining.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use metrics_exporter_prometheus::PrometheusHandle;
use sqlx::PgPool;

use crate::cache::Cache;
use crate::config::RateLimitConfig;
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

    pub fn ui(&self) -> &UiSource {
        &self.ui
    }

    /// The Prometheus recorder's handle, when metrics are on.
    pub fn metrics(&self) -> Option<&PrometheusHandle> {
        self.metrics.as_ref()
    }
}
