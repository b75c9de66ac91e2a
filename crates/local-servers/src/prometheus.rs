//! A Prometheus server (Debian's package) on a free loopback port with a configuration the
//! caller writes, its data in a temporary folder, and PromQL queries through its HTTP API.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use anyhow::Context;

use crate::Exporter;

/// Prometheus serving on 127.0.0.1, stopped on drop.
pub struct Prometheus {
    pub port: u16,
    server: Exporter,
    /// Holds the configuration file for as long as the server runs.
    _config: tempfile::TempDir,
}

/// A GET on 127.0.0.1:`port` with HTTP/1.0; the status code and body.
pub(crate) fn http_get(port: u16, path: &str) -> anyhow::Result<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    let status = answer
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .context("no HTTP status line")?;
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}

/// `text` with every byte outside the unreserved set percent-encoded, for a query string.
fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (byte as char).to_string()
            }
            _ => format!("%{byte:02X}"),
        })
        .collect()
}

impl Prometheus {
    /// Starts Prometheus on `config` (YAML; rule files given by absolute path).
    pub fn start(config: &str) -> anyhow::Result<Self> {
        let config_dir = tempfile::Builder::new()
            .prefix("local-prometheus-")
            .tempdir()
            .context("create a folder for Prometheus's configuration")?;
        let config_file = config_dir.path().join("prometheus.yml");
        std::fs::write(&config_file, config).context("write the Prometheus configuration")?;
        let server = Exporter::start(
            "prometheus",
            &[
                &format!("--config.file={}", config_file.display()),
                "--storage.tsdb.path={dir}/data",
                "--web.listen-address=127.0.0.1:{port}",
            ],
            &[],
            "/-/ready",
        )?;
        Ok(Self {
            port: server.port,
            server,
            _config: config_dir,
        })
    }

    /// An instant PromQL query; the `data.result` array of the answer.
    pub fn query(&self, promql: &str) -> anyhow::Result<Vec<serde_json::Value>> {
        let (status, body) = http_get(
            self.port,
            &format!("/api/v1/query?query={}", percent_encode(promql)),
        )?;
        anyhow::ensure!(status == 200, "query {promql:?} answered {status}: {body}");
        let answer: serde_json::Value =
            serde_json::from_str(&body).with_context(|| format!("the answer {body:?}"))?;
        Ok(answer["data"]["result"]
            .as_array()
            .cloned()
            .unwrap_or_default())
    }

    /// GET `path` of the HTTP API as JSON.
    pub fn api(&self, path: &str) -> anyhow::Result<serde_json::Value> {
        let (status, body) = http_get(self.port, path)?;
        anyhow::ensure!(status == 200, "{path} answered {status}: {body}");
        serde_json::from_str(&body).with_context(|| format!("the answer {body:?}"))
    }

    /// What Prometheus has logged so far.
    pub fn log(&self) -> String {
        self.server.log()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_are_percent_encoded() {
        assert_eq!(
            percent_encode("up{job=\"a b\"}"),
            "up%7Bjob%3D%22a%20b%22%7D"
        );
    }
}
