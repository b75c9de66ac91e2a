//! `cargo xtask smoke --url URL`: the checks a deploy ends with, against a running site:
//! readiness (the database ready), the version when one is expected, TLS (a valid certificate,
//! nothing older than TLS 1.2) and the security headers when the URL is https, and a round trip
//! through the API (a note created, read back and deleted). Requests go through xtask's HTTP
//! client with the machine's own trust store and resolver, as a user's would; `--cacert` and
//! `--resolve` point it at test certificates and addresses. Only the TLS 1.1 probe is curl's,
//! since a client that cannot speak TLS 1.1 cannot ask a server whether it does.

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde_json::Value;
use xshell::Shell;

use crate::http::{Client, Resolve};
use crate::{flags, step};

/// A client for the smoke checks: loopback and test hosts directly, `cacert` trusted and
/// `resolve` entries applied when given.
pub fn client(cacert: Option<&Path>, resolve: &[Resolve]) -> anyhow::Result<Client> {
    let client = Client::new(10).without_proxy().resolving(resolve);
    match cacert {
        Some(cacert) => client.trusting(cacert),
        None => Ok(client),
    }
}

/// Whether `url` completes a TLS handshake of version 1.1 or older: curl, as rustls speaks
/// nothing older than 1.2, with OpenSSL's security level lowered so that the client side does
/// not refuse first. The certificate is not checked here (the other checks do that): only the
/// protocol the server agrees to.
fn accepts_tls_1_1(sh: &Shell, url: &str, resolve: &[Resolve]) -> anyhow::Result<bool> {
    let mut options = Vec::new();
    for entry in resolve {
        let address = match entry.address {
            std::net::IpAddr::V6(v6) => format!("[{v6}]"),
            v4 => v4.to_string(),
        };
        options.extend([
            "--resolve".to_owned(),
            format!("{}:{}:{address}", entry.host, entry.port),
        ]);
    }
    let output = step::quiet(xshell::cmd!(
        sh,
        "curl --silent --show-error --output /dev/null --max-time 10 --noproxy * --insecure --tlsv1.0 --tls-max 1.1 --ciphers DEFAULT@SECLEVEL=0 {options...} {url}"
    ))
    .ignore_status()
    .output()
    .context("run curl for the TLS 1.1 probe (package curl)")?;
    match output.status.code() {
        Some(0) => Ok(true),
        // CURLE_SSL_CONNECT_ERROR: the handshake failed, the server refused the old protocol.
        Some(35) => Ok(false),
        other => anyhow::bail!(
            "the TLS 1.1 probe could not tell (curl exit {other:?}): {}",
            String::from_utf8_lossy(&output.stderr).trim()
        ),
    }
}

/// A note created, read back and deleted through the API.
pub fn check_notes(client: &Client, base: &str) -> anyhow::Result<()> {
    let created = client.request(
        "POST",
        &format!("{base}/api/notes"),
        Some(r#"{"title":"smoke","body":"from cargo xtask smoke"}"#),
    )?;
    anyhow::ensure!(
        created.status == 201,
        "POST /api/notes answered {}: {}",
        created.status,
        created.body
    );
    let note: Value = serde_json::from_str(&created.body)?;
    let id = note["id"].as_str().context("the new note has no id")?;
    let fetched = client.request("GET", &format!("{base}/api/notes/{id}"), None)?;
    anyhow::ensure!(
        fetched.status == 200,
        "GET /api/notes/{id} answered {}: {}",
        fetched.status,
        fetched.body
    );
    let fetched: Value = serde_json::from_str(&fetched.body)?;
    anyhow::ensure!(
        fetched["title"] == "smoke",
        "the note came back as {fetched}"
    );
    let deleted = client.request("DELETE", &format!("{base}/api/notes/{id}"), None)?;
    anyhow::ensure!(
        deleted.status == 204,
        "DELETE /api/notes/{id} answered {}: {}",
        deleted.status,
        deleted.body
    );
    Ok(())
}

impl flags::Smoke {
    pub fn run(self, sh: &Shell) -> anyhow::Result<()> {
        let base = self.url.trim_end_matches('/').to_owned();
        let https = base.starts_with("https://");
        anyhow::ensure!(
            https || base.starts_with("http://"),
            "--url {base:?} must be an http:// or https:// URL"
        );
        let cacert = existing(self.cacert)?;
        let client = client(cacert.as_deref(), &self.resolve)?;
        if https && self.certificate_wait_secs > 0 {
            step::run("a trusted certificate", || {
                wait_for_trusted_certificate(
                    &client,
                    &base,
                    std::time::Duration::from_secs(self.certificate_wait_secs),
                    cacert.as_deref(),
                )
            })?;
        }
        step::run("readiness", || {
            let answer = client.request("GET", &format!("{base}/readyz"), None)?;
            let body: Value = serde_json::from_str(&answer.body).unwrap_or(Value::Null);
            anyhow::ensure!(
                answer.status == 200 && body["checks"]["database"] == "ok",
                "/readyz answered {}: {}",
                answer.status,
                answer.body
            );
            Ok(())
        })?;
        if let Some(expected) = &self.expect_version {
            step::run("version", || {
                let answer = client.request("GET", &format!("{base}/api/info"), None)?;
                let info: Value = serde_json::from_str(&answer.body)
                    .with_context(|| format!("/api/info answered {}", answer.body))?;
                anyhow::ensure!(
                    info["version"] == expected.as_str(),
                    "the site runs {}, not {expected}",
                    info["version"]
                );
                Ok(())
            })?;
        }
        if https {
            step::run("TLS 1.2 or newer, certificate valid", || {
                // The earlier requests already verified the certificate; TLS 1.1 must fail.
                let old = accepts_tls_1_1(sh, &format!("{base}/healthz"), &self.resolve)?;
                anyhow::ensure!(!old, "the site accepted a TLS 1.1 connection");
                Ok(())
            })?;
        }
        if https || self.expect_headers {
            step::run("security headers", || {
                let answer = client.request("GET", &format!("{base}/"), None)?;
                // The headers nginx/snippets/security-headers.conf sets, as this checkout has them.
                let missing: Vec<String> = local_servers::nginx::security_headers()
                    .into_iter()
                    .map(|header| header.name)
                    .filter(|name| answer.header(name).is_none())
                    .collect();
                anyhow::ensure!(
                    missing.is_empty(),
                    "GET / lacks the headers {}",
                    missing.join(", ")
                );
                Ok(())
            })?;
        }
        step::run("API round trip", || check_notes(&client, &base))?;
        eprintln!("xtask: {base} passed the smoke test");
        Ok(())
    }
}

/// Waits until a request to `base` completes with the certificate verified (any status), for at
/// most `limit`: on a new host nginx serves a self-signed certificate until certbot has the
/// real one and hands it over.
fn wait_for_trusted_certificate(
    client: &Client,
    base: &str,
    limit: std::time::Duration,
    cacert: Option<&Path>,
) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    loop {
        let error = match client.request("GET", &format!("{base}/healthz"), None) {
            Ok(_) => return Ok(()),
            Err(err) => err,
        };
        if started.elapsed() >= limit {
            return Err(error.context(format!(
                "{base} presented no certificate trusted by {} within {}s; is certbot getting \
                 one (`docker-compose logs certbot` on the host)?",
                cacert.map_or_else(
                    || "the system's store".to_owned(),
                    |file| file.display().to_string()
                ),
                limit.as_secs()
            )));
        }
        std::thread::sleep(std::time::Duration::from_secs(2));
    }
}

/// The `--cacert` file, if given, must exist.
fn existing(path: Option<PathBuf>) -> anyhow::Result<Option<PathBuf>> {
    match path {
        Some(path) if !path.is_file() => {
            anyhow::bail!("--cacert {} does not exist", path.display())
        }
        other => Ok(other),
    }
}
