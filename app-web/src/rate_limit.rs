//! Per-client rate limits inside the app, counted in Redis so every replica shares them (nginx
//! adds coarser limits in front). When Redis is down requests go through and a metric counts it.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use clap::Args;

use crate::error::ApiError;
use crate::routes::AppState;

#[derive(Debug, Clone, Args)]
pub struct RateLimitConfig {
    /// Requests one client may make to the API per minute; 0 turns the limit off
    #[arg(
        long,
        env = "APP_WEB_RATE_LIMIT_PER_MINUTE",
        default_value_t = 600,
        global = true
    )]
    pub rate_limit_per_minute: u64,

    /// Take the client address from X-Real-IP, set by a reverse proxy in front; only enable
    /// this behind one, or clients can choose their own address
    #[arg(long, env = "APP_WEB_TRUST_PROXY_HEADERS", global = true)]
    pub trust_proxy_headers: bool,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            rate_limit_per_minute: 600,
            trust_proxy_headers: false,
        }
    }
}

const WINDOW: Duration = Duration::from_secs(60);

fn client_address(request: &Request, trust_proxy_headers: bool) -> Option<IpAddr> {
    if trust_proxy_headers
        && let Some(real_ip) = request
            .headers()
            .get("x-real-ip")
            .and_then(|value| value.to_str().ok())
        && let Ok(address) = real_ip.trim().parse()
    {
        return Some(address);
    }
    request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| info.0.ip())
}

/// Middleware for the API routes: a fixed one-minute window per client address.
pub async fn limit(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let config = state.rate_limit();
    if config.rate_limit_per_minute == 0 || !state.cache().is_enabled() {
        return next.run(request).await;
    }
    let Some(client) = client_address(&request, config.trust_proxy_headers) else {
        return next.run(request).await;
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let window_index = now / WINDOW.as_secs();
    let key = format!("app-web:rate:{client}:{window_index}");
    match state.cache().count_in_window(&key, WINDOW).await {
        Ok(count) if count > config.rate_limit_per_minute => {
            metrics::counter!(crate::metrics::RATE_LIMITED).increment(1);
            let retry_after_secs = WINDOW.as_secs() - now % WINDOW.as_secs();
            ApiError::RateLimited { retry_after_secs }.into_response()
        }
        Ok(_) => next.run(request).await,
        Err(err) => {
            metrics::counter!(crate::metrics::RATE_LIMIT_BYPASSES).increment(1);
            tracing::debug!(error = %err, "rate limit not checked");
            next.run(request).await
        }
    }
}
