//! Prometheus metrics: the recorder, the `/metrics` text, and the names app-web counts under.

use anyhow::Context;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

/// Cache lookups that Redis answered.
pub const CACHE_HITS: &str = "app_web_cache_hits_total";
/// Cache lookups that went to PostgreSQL because Redis had no entry.
pub const CACHE_MISSES: &str = "app_web_cache_misses_total";
/// Cache calls skipped or failed because Redis was unreachable; PostgreSQL answered alone.
pub const CACHE_BYPASSES: &str = "app_web_cache_bypass_total";
/// Requests refused by the per-client rate limit.
pub const RATE_LIMITED: &str = "app_web_rate_limited_total";
/// Rate-limit checks skipped because Redis was unreachable (the request was let through).
pub const RATE_LIMIT_BYPASSES: &str = "app_web_rate_limit_bypass_total";
/// Requests answered 503 because the database was down or its pool exhausted.
pub const DATABASE_UNAVAILABLE: &str = "app_web_database_unavailable_total";

/// Installs the process-wide recorder once and returns the handle that renders it. Later calls
/// (tests start several servers in one process) get a handle to the same recorder.
pub fn install() -> anyhow::Result<PrometheusHandle> {
    static HANDLE: std::sync::OnceLock<PrometheusHandle> = std::sync::OnceLock::new();
    if let Some(handle) = HANDLE.get() {
        return Ok(handle.clone());
    }
    let handle = PrometheusBuilder::new()
        .install_recorder()
        .context("install the metrics recorder")?;
    Ok(HANDLE.get_or_init(|| handle).clone())
}
