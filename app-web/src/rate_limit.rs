//! Per-client rate limits inside the app, counted in Redis so every replica shares them (nginx
//! adds coarser limits in front). When Redis is down requests go through and a metric counts it.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use ipnet::IpNet;
use sha2::{Digest, Sha256};

use crate::error::ApiError;
use crate::state::AppState;

const WINDOW: Duration = Duration::from_secs(60);

/// The client's address (see [`client_address_from`]).
pub fn client_address(request: &Request, trusted_proxies: &[IpNet]) -> Option<IpAddr> {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| info.0);
    client_address_from(request.headers(), peer, trusted_proxies)
}

/// The client's address: the peer's, unless the peer is a trusted proxy. Then it is the first
/// address in X-Forwarded-For, read from the right, that is not a trusted proxy: each proxy
/// appends the address it was connected from, so the entries a client wrote itself stand to
/// the left of the one our proxy added and are never reached. Without X-Forwarded-For a
/// trusted proxy's X-Real-IP is used. A malformed entry stops the walk at the last trusted hop.
pub fn client_address_from(
    headers: &HeaderMap,
    peer: Option<SocketAddr>,
    trusted_proxies: &[IpNet],
) -> Option<IpAddr> {
    let peer = peer?.ip().to_canonical();
    let trusted = |address: &IpAddr| trusted_proxies.iter().any(|net| net.contains(address));
    if !trusted(&peer) {
        return Some(peer);
    }
    let forwarded: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .collect();
    if forwarded.is_empty() {
        return headers
            .get("x-real-ip")
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.trim().parse::<IpAddr>().ok())
            .map(|address| address.to_canonical())
            .or(Some(peer));
    }
    let mut last_trusted = peer;
    for entry in forwarded.iter().rev() {
        let Ok(address) = entry
            .parse::<IpAddr>()
            .map(|address| address.to_canonical())
        else {
            return Some(last_trusted);
        };
        if !trusted(&address) {
            return Some(address);
        }
        last_trusted = address;
    }
    Some(last_trusted)
}

/// Middleware for an API's routes: a fixed one-minute window per client address, counted in
/// the bucket the state names, so one API's traffic never uses up another's.
pub async fn limit(
    State((state, bucket)): State<(AppState, &'static str)>,
    request: Request,
    next: Next,
) -> Response {
    let config = state.rate_limit();
    let client = client_address(&request, &config.trusted_proxies);
    match refusal(&state, client, bucket, config.rate_limit_per_minute, WINDOW).await {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_proxy;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                axum::http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                value.parse().unwrap(),
            );
        }
        map
    }

    fn from(peer: &str, pairs: &[(&str, &str)], trusted: &[&str]) -> Option<IpAddr> {
        let trusted: Vec<IpNet> = trusted.iter().map(|t| parse_proxy(t).unwrap()).collect();
        client_address_from(&headers(pairs), Some(peer.parse().unwrap()), &trusted)
    }

    fn ip(text: &str) -> Option<IpAddr> {
        Some(text.parse().unwrap())
    }

    #[test]
    fn forwarded_addresses_are_believed_only_from_trusted_proxies() {
        let proxy = ["172.30.101.10"];
        // Nobody is trusted: the peer, whatever it claims.
        assert_eq!(
            from("203.0.113.7:5000", &[("x-real-ip", "1.2.3.4")], &[]),
            ip("203.0.113.7")
        );
        // A client that is not the proxy cannot choose its address.
        assert_eq!(
            from(
                "203.0.113.7:5000",
                &[("x-forwarded-for", "1.2.3.4"), ("x-real-ip", "1.2.3.4")],
                &proxy
            ),
            ip("203.0.113.7")
        );
        // Through the proxy: the address it appended, not what the client wrote before it.
        assert_eq!(
            from(
                "172.30.101.10:4000",
                &[
                    ("x-forwarded-for", "1.2.3.4, 198.51.100.9"),
                    ("x-real-ip", "198.51.100.9")
                ],
                &proxy
            ),
            ip("198.51.100.9")
        );
        // Two headers count as one list, in order.
        assert_eq!(
            from(
                "172.30.101.10:4000",
                &[
                    ("x-forwarded-for", "1.2.3.4"),
                    ("x-forwarded-for", "198.51.100.9")
                ],
                &proxy
            ),
            ip("198.51.100.9")
        );
        // A chain of trusted proxies is skipped; a CIDR range trusts every address in it.
        assert_eq!(
            from(
                "10.0.0.5:4000",
                &[("x-forwarded-for", "198.51.100.9, 10.0.0.7")],
                &["10.0.0.0/8"]
            ),
            ip("198.51.100.9")
        );
        // Without X-Forwarded-For the proxy's X-Real-IP; without either, the proxy itself.
        assert_eq!(
            from(
                "172.30.101.10:4000",
                &[("x-real-ip", "198.51.100.9")],
                &proxy
            ),
            ip("198.51.100.9")
        );
        assert_eq!(from("172.30.101.10:4000", &[], &proxy), ip("172.30.101.10"));
        // Garbage stops the walk at the last trusted hop.
        assert_eq!(
            from(
                "172.30.101.10:4000",
                &[("x-forwarded-for", "1.2.3.4, not-an-address")],
                &proxy
            ),
            ip("172.30.101.10")
        );
        // An IPv4 peer seen through an IPv6 socket is still the IPv4 proxy.
        assert_eq!(
            from(
                "[::ffff:172.30.101.10]:4000",
                &[("x-real-ip", "198.51.100.9")],
                &proxy
            ),
            ip("198.51.100.9")
        );
    }

    #[test]
    fn a_bad_proxy_entry_is_named() {
        assert_eq!(
            parse_proxy("10.0.0.0/8").unwrap(),
            "10.0.0.0/8".parse::<IpNet>().unwrap()
        );
        assert_eq!(
            parse_proxy("127.0.0.1").unwrap(),
            "127.0.0.1/32".parse::<IpNet>().unwrap()
        );
        let err = parse_proxy("nginx").unwrap_err();
        assert!(
            err.contains("\"nginx\" is not an address or CIDR range"),
            "{err}"
        );
        for everyone in ["0.0.0.0/0", "::/0"] {
            assert!(parse_proxy(everyone).unwrap_err().contains("every client"));
        }
        assert_eq!(
            parse_proxy("::ffff:172.30.101.10").unwrap(),
            "172.30.101.10/32".parse::<IpNet>().unwrap()
        );
    }
}
