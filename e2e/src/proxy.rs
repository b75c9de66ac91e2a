//! nginx in front of app-web for the tests: the project's template rendered for app.test on
//! free loopback ports, and curl as the client.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

use local_servers::{Nginx, free_port};

pub const SERVER_NAME: &str = "app.test";

pub fn nginx_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .join("nginx")
}

/// nginx in front of `upstream`, rendered from the project's template, starting with the
/// self-signed certificate that nginx/certificate-link.sh makes before any real one exists.
pub struct Proxy {
    pub nginx: Nginx,
    pub http: u16,
    pub https: u16,
    /// Where stub_status answers.
    pub status: u16,
    pub folder: tempfile::TempDir,
}

impl Proxy {
    /// nginx for app.test with the shipped rate limit.
    pub fn start(upstream: SocketAddr) -> Self {
        Self::start_for(upstream, SERVER_NAME, ("20r/s", 40), "")
    }

    /// nginx for `server_name`, limiting each client address to `rate_limit` (a rate and a
    /// burst), with
    /// `extra_locations` added to the HTTPS server before its catch-all location (for the
    /// benchmark's static baseline; the tests add nothing).
    pub fn start_for(
        upstream: SocketAddr,
        server_name: &str,
        rate_limit: (&str, u32),
        extra_locations: &str,
    ) -> Self {
        let folder = tempfile::Builder::new()
            .prefix("nginx-test-")
            .tempdir()
            .unwrap();
        let root = folder.path();
        std::fs::set_permissions(root, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        for sub in [
            "runtime",
            "acme/.well-known/acme-challenge",
            "certs",
            "conf",
        ] {
            std::fs::create_dir_all(root.join(sub)).unwrap();
        }
        let linked = link_certificate(
            &root.join("certs"),
            "self-signed",
            &[("NGINX_SERVER_NAME", server_name)],
        );
        assert!(
            linked.status.success(),
            "{}",
            String::from_utf8_lossy(&linked.stderr)
        );
        let certificate = root.join("certs/current/fullchain.pem");
        let key = root.join("certs/current/privkey.pem");
        let (http, https, status) = (
            free_port().unwrap(),
            free_port().unwrap(),
            free_port().unwrap(),
        );
        let values: BTreeMap<String, String> = [
            ("NGINX_SERVER_NAME", server_name.to_owned()),
            ("NGINX_RATE_LIMIT", rate_limit.0.to_owned()),
            ("NGINX_RATE_BURST", rate_limit.1.to_string()),
            // app-web's defaults for APP_WEB_CRASH_MAX_MIB and APP_WEB_SYMBOLS_MAX_MIB.
            ("NGINX_CRASH_MAX_MIB", "8".to_owned()),
            ("NGINX_SYMBOLS_MAX_MIB", "1024".to_owned()),
            ("NGINX_HTTP_LISTEN", format!("127.0.0.1:{http}")),
            ("NGINX_HTTPS_LISTEN", format!("127.0.0.1:{https}")),
            ("NGINX_STATUS_LISTEN", format!("127.0.0.1:{status}")),
            (
                "NGINX_HTTPS_ORIGIN",
                format!("https://{SERVER_NAME}:{https}"),
            ),
            ("NGINX_UPSTREAM", upstream.to_string()),
            ("NGINX_CERTIFICATE", certificate.display().to_string()),
            ("NGINX_CERTIFICATE_KEY", key.display().to_string()),
            ("NGINX_ACME_ROOT", root.join("acme").display().to_string()),
            (
                "NGINX_RUNTIME_DIR",
                root.join("runtime").display().to_string(),
            ),
        ]
        .into_iter()
        .map(|(name, value)| (name.to_owned(), value))
        .collect();
        local_servers::nginx::render(&nginx_dir(), &root.join("conf"), &values)
            .expect("render the nginx template");
        if !extra_locations.is_empty() {
            let config = root.join("conf/nginx.conf");
            let text = std::fs::read_to_string(&config).unwrap();
            let at = text
                .rfind("        location / {")
                .expect("the HTTPS server has a catch-all location");
            let text = format!("{}{extra_locations}\n{}", &text[..at], &text[at..]);
            std::fs::write(&config, text).unwrap();
        }
        let nginx = Nginx::start(
            &root.join("conf"),
            &root.join("runtime"),
            SocketAddr::from(([127, 0, 0, 1], https)),
        )
        .expect("nginx accepts the project's configuration");
        Self {
            nginx,
            http,
            https,
            status,
            folder,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("https://{SERVER_NAME}:{}{path}", self.https)
    }

    /// The certificate clients trust: the self-signed one.
    pub fn certificate(&self) -> PathBuf {
        self.folder.path().join("certs/self-signed/fullchain.pem")
    }

    pub fn cert_dir(&self) -> PathBuf {
        self.folder.path().join("certs")
    }

    pub fn acme_root(&self) -> PathBuf {
        self.folder.path().join("acme")
    }
}

/// Runs nginx/certificate-link.sh on `cert_dir` with `target`, and `env` on top.
pub fn link_certificate(
    cert_dir: &Path,
    target: &str,
    env: &[(&str, &str)],
) -> std::process::Output {
    Command::new("sh")
        .arg(nginx_dir().join("certificate-link.sh"))
        .arg(target)
        .env("NGINX_CERT_DIR", cert_dir)
        .env("NGINX_SERVER_NAME", SERVER_NAME)
        .envs(env.iter().copied())
        .output()
        .expect("run certificate-link.sh")
}

/// What curl saw: its exit code, the status, the headers (lower-case names, in order) and
/// the negotiated HTTP version.
#[derive(Debug)]
pub struct Answer {
    pub exit: i32,
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub http_version: String,
    pub stderr: String,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    pub fn count(&self, name: &str) -> usize {
        self.headers.iter().filter(|(key, _)| key == name).count()
    }
}

/// One request with curl to app.test (resolved to 127.0.0.1), trusting the self-signed
/// certificate unless `extra` names another `--cacert`.
pub fn curl(proxy: &Proxy, extra: &[&str], url: &str) -> Answer {
    let output = Command::new("curl")
        .args([
            "--silent",
            "--show-error",
            "--max-time",
            "10",
            "--output",
            "/dev/null",
        ])
        .args([
            "--dump-header",
            "-",
            "--write-out",
            "\n%{http_code} %{http_version}",
        ])
        .arg("--resolve")
        .arg(format!("{SERVER_NAME}:{}:127.0.0.1", proxy.https))
        .arg("--resolve")
        .arg(format!("{SERVER_NAME}:{}:127.0.0.1", proxy.http))
        .arg("--cacert")
        .arg(proxy.certificate())
        .args(extra)
        .arg(url)
        .output()
        .expect("run curl");
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let (head, last) = text.rsplit_once('\n').unwrap_or(("", &text));
    let mut fields = last.split_whitespace();
    let status = fields
        .next()
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    let http_version = fields.next().unwrap_or("").to_owned();
    let headers = head
        .lines()
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    Answer {
        exit: output.status.code().unwrap_or(-1),
        status,
        headers,
        http_version,
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// `count` requests to `url` as fast as one client can send them: one curl process, one
/// kept-alive connection. What came back, in order.
pub fn burst(proxy: &Proxy, url: &str, count: usize) -> Vec<Answer> {
    let mut command = Command::new("curl");
    command
        .args(["--silent", "--max-time", "30", "--dump-header", "-"])
        .arg("--resolve")
        .arg(format!("{SERVER_NAME}:{}:127.0.0.1", proxy.https))
        .arg("--cacert")
        .arg(proxy.certificate());
    for _ in 0..count {
        command.args(["--output", "/dev/null", url]);
    }
    let output = command.output().expect("run curl");
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let mut answers: Vec<Answer> = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("HTTP/") {
            let mut fields = rest.split_whitespace();
            let http_version = fields.next().unwrap_or("").to_owned();
            let status = fields
                .next()
                .and_then(|code| code.parse().ok())
                .unwrap_or(0);
            answers.push(Answer {
                exit: output.status.code().unwrap_or(-1),
                status,
                headers: Vec::new(),
                http_version,
                stderr: String::new(),
            });
        } else if let (Some(answer), Some((name, value))) =
            (answers.last_mut(), line.split_once(':'))
        {
            answer
                .headers
                .push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
        }
    }
    answers
}
