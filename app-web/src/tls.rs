//! TLS for app-web's HTTP clients (the S3 client of the backups, the health check): rustls
//! with ring as the process's crypto provider, which reqwest requires before any client is
//! built.

/// Installs ring as rustls's process-wide provider; later calls do nothing.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
