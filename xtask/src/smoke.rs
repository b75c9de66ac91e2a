//! `cargo xtask smoke --url URL`: the checks a deploy ends with, against a running site:
//! readiness (the database ready), the version when one is expected, TLS (a valid certificate,
//! nothing older than TLS 1.2) and the security headers when the URL is https, and a round trip
//! through the API (a note created, read back and deleted). Requests go through curl, so the
//! machine's own trust store and resolver are what a user's would be; `--cacert` and
//! `--resolve` point it at test certificates and addresses.

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde_json::Value;
use xshell::{Shell, cmd};

use crate::{flags, step};

/// The headers nginx's `snippets/security-headers.conf` sets on every answer.
pub const SECURITY_HEADERS: &[&str] = &[
    "strict-transport-security",
    "content-security-policy",
    "x-content-type-options",
    "referrer-policy",
    "permissions-policy",
    "cross-origin-opener-policy",
    "x-frame-options",
];

/// One answer: its status, headers (names in lower case) and body.
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }
}

/// curl with the options every request of a check shares.
pub struct Client<'a> {
    sh: &'a Shell,
    options: Vec<String>,
}

impl<'a> Client<'a> {
    pub fn new(sh: &'a Shell, cacert: Option<&Path>, resolve: &[String]) -> Self {
        let mut options = Vec::new();
        if let Some(cacert) = cacert {
            options.push("--cacert".to_owned());
            options.push(cacert.display().to_string());
        }
        for entry in resolve {
            options.push("--resolve".to_owned());
            options.push(entry.clone());
        }
        Self { sh, options }
    }

    /// A request; a JSON `body` makes it a JSON request. Transport failures are errors, HTTP
    /// errors are answers.
    pub fn request(&self, method: &str, url: &str, json: Option<&str>) -> anyhow::Result<Answer> {
        self.request_with(method, url, json, &[])
    }

    fn request_with(
        &self,
        method: &str,
        url: &str,
        json: Option<&str>,
        extra: &[&str],
    ) -> anyhow::Result<Answer> {
        let data: Vec<String> = match json {
            Some(body) => vec![
                "--header".into(),
                "content-type: application/json".into(),
                "--data".into(),
                body.into(),
            ],
            None => Vec::new(),
        };
        let options = &self.options;
        let write_out = "\n%{http_code}";
        let output = step::captured(cmd!(
            self.sh,
            "curl --silent --show-error --noproxy * --max-time 10 --dump-header - --request {method} {options...} {extra...} {data...} --write-out {write_out} {url}"
        ))
        .with_context(|| format!("{method} {url}"))?;
        let (rest, status) = output
            .rsplit_once('\n')
            .context("curl printed no status line")?;
        let (head, body) = rest.split_once("\r\n\r\n").unwrap_or((rest, ""));
        let headers = head
            .lines()
            .skip(1)
            .filter_map(|line| line.split_once(':'))
            .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
            .collect();
        Ok(Answer {
            status: status.trim().parse().context("curl printed no status")?,
            headers,
            body: body.to_owned(),
        })
    }
}

/// A note created, read back and deleted through the API.
pub fn check_notes(client: &Client<'_>, base: &str) -> anyhow::Result<()> {
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
        let client = Client::new(sh, cacert.as_deref(), &self.resolve);
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
                let old = client.request_with(
                    "GET",
                    &format!("{base}/healthz"),
                    None,
                    &["--tlsv1.0", "--tls-max", "1.1"],
                );
                anyhow::ensure!(old.is_err(), "the site accepted a TLS 1.1 connection");
                Ok(())
            })?;
        }
        if https || self.expect_headers {
            step::run("security headers", || {
                let answer = client.request("GET", &format!("{base}/"), None)?;
                let missing: Vec<&str> = SECURITY_HEADERS
                    .iter()
                    .copied()
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

/// The `--cacert` file, if given, must exist.
fn existing(path: Option<PathBuf>) -> anyhow::Result<Option<PathBuf>> {
    match path {
        Some(path) if !path.is_file() => {
            anyhow::bail!("--cacert {} does not exist", path.display())
        }
        other => Ok(other),
    }
}
