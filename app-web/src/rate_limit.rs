//! Per-client rate limits inside the app, counted in Redis so every replica shares them (nginx
//! adds coarser limits in front). When Redis is down requests go through and a metric counts it.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use clap::Args;
use sha2::{Digest, Sha256};

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

/// The client's address: X-Real-IP when the proxy in front is trusted, else the peer's.
pub fn client_address(request: &Request, trust_proxy_headers: bool) -> Option<IpAddr> {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| info.0);
    client_address_from(request.headers(), peer, trust_proxy_headers)
}

/// [`client_address`] from a request's headers and its peer's address.
pub fn client_address_from(
    headers: &HeaderMap,
    peer: Option<SocketAddr>,
    trust_proxy_headers: bool,
) -> Option<IpAddr> {
    if trust_proxy_headers
        && let Some(real_ip) = headers
            .get("x-real-ip")
            .and_then(|value| value.to_str().ok())
        && let Ok(address) = real_ip.trim().parse()
    {
        return Some(address);
    }
    peer.map(|peer| peer.ip())
}

/// Middleware for the API routes: a fixed one-minute window per client address.
pub async fn limit(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let config = state.rate_limit();
    let client = client_address(&request, config.trust_proxy_headers);
    match refusal(&state, client, "rate", config.rate_limit_per_minute, WINDOW).await {
        Some(refused) => refused,
        None => next.run(request).await,
    }
}

/// The 429 for a client that made more than `allowed` requests counted under `name` in the
/// current fixed `window`, or None to let the request through. Without Redis, without a client
/// address, or with `allowed` 0, every request goes through. Keys hold a hash of the address,
/// not the address.
pub async fn refusal(
    state: &AppState,
    client: Option<IpAddr>,
    name: &str,
    allowed: u64,
    window: Duration,
) -> Option<Response> {
    if allowed == 0 || !state.cache().is_enabled() {
        return None;
    }
    let client = client?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let window_index = now / window.as_secs();
    let client = hex::encode(&Sha256::digest(client.to_string().as_bytes())[..12]);
    let key = format!("app-web:{name}:{client}:{window_index}");
    match state.cache().count_in_window(&key, window).await {
        Ok(count) if count > allowed => {
            metrics::counter!(crate::metrics::RATE_LIMITED).increment(1);
            let retry_after_secs = window.as_secs() - now % window.as_secs();
            Some(ApiError::RateLimited { retry_after_secs }.into_response())
        }
        Ok(_) => None,
        Err(err) => {
            metrics::counter!(crate::metrics::RATE_LIMIT_BYPASSES).increment(1);
            tracing::debug!(error = %err, "rate limit not checked");
            None
        }
    }
}
