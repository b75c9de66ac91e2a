//! `app-web healthcheck`: asks the local server's /readyz, for container health checks.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use anyhow::Context;

/// The address to probe: the listen address, with an unspecified host (0.0.0.0, ::) replaced by
/// loopback, since that is where a health check inside the container finds the server.
fn probe_address(listen: SocketAddr) -> SocketAddr {
    let host = match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        other => other,
    };
    SocketAddr::new(host, listen.port())
}

/// Succeeds when /readyz answers 200 within `timeout`.
pub async fn probe(listen: SocketAddr, timeout: Duration) -> anyhow::Result<()> {
    let url = format!("http://{}/readyz", probe_address(listen));
    crate::tls::install_crypto_provider();
    // Plain HTTP on loopback: trusting no certificate at all spares the image a CA bundle,
    // which distroless bases may not carry.
    let client = reqwest::Client::builder()
        .tls_certs_only([])
        .timeout(timeout)
        .no_proxy()
        .build()
        .context("build the HTTP client")?;
    let response = client
        .get(&url)
        .send()
        .await
        .with_context(|| format!("no answer from {url}"))?;
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    anyhow::ensure!(status.is_success(), "{url} answered {status}: {body}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unspecified_hosts_are_probed_on_loopback() {
        assert_eq!(
            probe_address("0.0.0.0:8080".parse().unwrap()),
            "127.0.0.1:8080".parse().unwrap()
        );
        assert_eq!(
            probe_address("[::]:8080".parse().unwrap()),
            "[::1]:8080".parse().unwrap()
        );
        assert_eq!(
            probe_address("127.0.0.2:9".parse().unwrap()),
            "127.0.0.2:9".parse().unwrap()
        );
    }
}
