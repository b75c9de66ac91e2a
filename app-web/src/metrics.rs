//! Prometheus metrics: the recorder, the `/metrics` text, and the names app-web counts under.

use anyhow::Context;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

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

/// HTTP requests by method, route template and status.
pub const HTTP_REQUESTS: &str = "app_web_http_requests_total";
/// HTTP request latency by method and route template, a histogram in seconds.
pub const HTTP_REQUEST_DURATION: &str = "app_web_http_request_duration_seconds";
/// HTTP requests being served.
pub const HTTP_IN_FLIGHT: &str = "app_web_http_requests_in_flight";
/// Connections the database pool holds, and how many of them are idle (set at each scrape).
pub const DB_POOL_CONNECTIONS: &str = "app_web_db_pool_connections";
pub const DB_POOL_IDLE: &str = "app_web_db_pool_idle_connections";
/// The pool's configured ceiling.
pub const DB_POOL_MAX: &str = "app_web_db_pool_max_connections";
/// 1 when Redis answered a PING at the last scrape, 0 when not (absent without Redis).
pub const REDIS_UP: &str = "app_web_redis_up";
/// Desktop update checks by channel and outcome (update, rollback, none).
pub const UPDATE_CHECKS: &str = "app_web_update_checks_total";
/// Always 1, labelled with the version and commit this binary was built from.
pub const BUILD_INFO: &str = "app_web_build_info";

/// Latency buckets in seconds: a 2 ms floor for cached answers up to the 5 s statement timeout.
const LATENCY_BUCKETS: &[f64] = &[
    0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The commit this binary was built from: `cargo xtask dist` sets APP_WEB_COMMIT.
pub fn commit() -> &'static str {
    option_env!("APP_WEB_COMMIT").unwrap_or("unknown")
}

/// Installs the process-wide recorder once and returns the handle that renders it. Later calls
/// (tests start several servers in one process) get a handle to the same recorder.
pub fn install() -> anyhow::Result<PrometheusHandle> {
    static HANDLE: std::sync::OnceLock<PrometheusHandle> = std::sync::OnceLock::new();
    if let Some(handle) = HANDLE.get() {
        return Ok(handle.clone());
    }
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Full(HTTP_REQUEST_DURATION.to_owned()),
            LATENCY_BUCKETS,
        )
        .context("set the latency buckets")?
        .install_recorder()
        .context("install the metrics recorder")?;
    describe();
    // Counters without labels start at zero, so that rate() over them and the dashboards'
    // panels work before the first event, and an absent series means a missing target.
    for counter in [
        CACHE_HITS,
        CACHE_MISSES,
        CACHE_BYPASSES,
        RATE_LIMITED,
        RATE_LIMIT_BYPASSES,
        DATABASE_UNAVAILABLE,
    ] {
        metrics::counter!(counter).absolute(0);
    }
    metrics::gauge!(
        BUILD_INFO,
        "version" => env!("CARGO_PKG_VERSION"),
        "commit" => commit()
    )
    .set(1.0);
    Ok(HANDLE.get_or_init(|| handle).clone())
}

fn describe() {
    metrics::describe_counter!(HTTP_REQUESTS, "HTTP requests by method, route and status");
    metrics::describe_histogram!(
        HTTP_REQUEST_DURATION,
        metrics::Unit::Seconds,
        "HTTP request latency by method and route"
    );
    metrics::describe_gauge!(HTTP_IN_FLIGHT, "HTTP requests being served");
    metrics::describe_gauge!(DB_POOL_CONNECTIONS, "Connections the database pool holds");
    metrics::describe_gauge!(DB_POOL_IDLE, "Idle connections in the database pool");
    metrics::describe_gauge!(DB_POOL_MAX, "Most connections the database pool opens");
    metrics::describe_gauge!(REDIS_UP, "1 when Redis answered a PING at the last scrape");
    metrics::describe_gauge!(BUILD_INFO, "Version and commit of this binary");
    metrics::describe_counter!(CACHE_HITS, "Cache lookups Redis answered");
    metrics::describe_counter!(CACHE_MISSES, "Cache lookups that went to PostgreSQL");
    metrics::describe_counter!(CACHE_BYPASSES, "Cache calls skipped because Redis was down");
    metrics::describe_counter!(
        RATE_LIMITED,
        "Requests refused by the per-client rate limit"
    );
    metrics::describe_counter!(
        RATE_LIMIT_BYPASSES,
        "Rate-limit checks skipped because Redis was down"
    );
    metrics::describe_counter!(
        DATABASE_UNAVAILABLE,
        "Requests answered 503 because the database was unavailable"
    );
    metrics::describe_counter!(
        UPDATE_CHECKS,
        "Desktop update checks by channel and outcome (update, rollback, none)"
    );
}
