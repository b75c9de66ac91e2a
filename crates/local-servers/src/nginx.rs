//! nginx: rendering the project's configuration template (nginx/) and running Debian's nginx
//! on the result, in a temporary folder, stopped on drop.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::Context;

use crate::{wait_for, wait_until_up};

/// The template's file name inside the nginx folder.
pub const TEMPLATE: &str = "nginx.conf.template";

/// nginx/snippets/security-headers.conf, which every location of the stack's nginx includes.
const SECURITY_HEADERS_SNIPPET: &str =
    include_str!("../../../nginx/snippets/security-headers.conf");

/// One header the stack's nginx adds to every answer: its name in lower case, and its value,
/// None when nginx fills it in per request (a `$variable`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecurityHeader {
    pub name: String,
    pub value: Option<String>,
}

/// The headers nginx/snippets/security-headers.conf sets, read from that file: the one list the
/// smoke checks and the tests hold nginx to.
pub fn security_headers() -> Vec<SecurityHeader> {
    parse_add_headers(SECURITY_HEADERS_SNIPPET)
}

fn parse_add_headers(text: &str) -> Vec<SecurityHeader> {
    text.lines()
        .filter_map(|line| line.trim().strip_prefix("add_header "))
        .filter_map(|rest| {
            let rest = rest.trim_end().trim_end_matches(';').trim_end();
            let rest = rest.strip_suffix(" always").unwrap_or(rest);
            let (name, value) = rest.split_once(char::is_whitespace)?;
            let value = value.trim();
            let value = value
                .strip_prefix('"')
                .and_then(|value| value.strip_suffix('"'))
                .unwrap_or(value);
            Some(SecurityHeader {
                name: name.to_ascii_lowercase(),
                value: (!value.contains('$')).then(|| value.to_owned()),
            })
        })
        .collect()
}

/// The `${NGINX_...}` variables `template` uses, sorted.
pub fn template_variables(template: &str) -> Vec<String> {
    let mut names: Vec<String> = template
        .match_indices("${NGINX_")
        .filter_map(|(start, _)| {
            let rest = &template[start + 2..];
            let end = rest.find('}')?;
            let name = &rest[..end];
            name.chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
                .then(|| name.to_owned())
        })
        .collect();
    names.sort();
    names.dedup();
    names
}

/// Renders `source` (the nginx folder: the template and its snippets) into `out`, filling in
/// the template's variables from `values` with envsubst, the same tool the nginx image runs
/// at start, so both render alike. Fails naming every variable without a value.
pub fn render(source: &Path, out: &Path, values: &BTreeMap<String, String>) -> anyhow::Result<()> {
    let template_path = source.join(TEMPLATE);
    let template = std::fs::read_to_string(&template_path)
        .with_context(|| format!("read {}", template_path.display()))?;
    let variables = template_variables(&template);
    let missing: Vec<&str> = variables
        .iter()
        .filter(|name| values.get(*name).is_none_or(|value| value.is_empty()))
        .map(String::as_str)
        .collect();
    anyhow::ensure!(
        missing.is_empty(),
        "the nginx template needs values for {}",
        missing.join(", ")
    );
    let shell_format: Vec<String> = variables
        .iter()
        .map(|name| format!("${{{name}}}"))
        .collect();
    let mut envsubst = Command::new("envsubst")
        .arg(shell_format.join(" "))
        .env_clear()
        .envs(values.iter().filter(|(name, _)| name.starts_with("NGINX_")))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("run envsubst (package gettext-base)")?;
    std::io::Write::write_all(
        &mut envsubst.stdin.take().context("envsubst stdin")?,
        template.as_bytes(),
    )?;
    let output = envsubst.wait_with_output()?;
    anyhow::ensure!(
        output.status.success(),
        "envsubst failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );

    // Staged beside `out` and renamed into place, so a failed render leaves no half a config.
    let parent = out.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).with_context(|| format!("create {}", parent.display()))?;
    let staging = tempfile::Builder::new()
        .prefix(".nginx-render-")
        .tempdir_in(parent)
        .with_context(|| format!("create a staging folder in {}", parent.display()))?;
    std::fs::write(staging.path().join("nginx.conf"), &output.stdout)?;
    let snippets = source.join("snippets");
    std::fs::create_dir(staging.path().join("snippets"))?;
    for entry in
        std::fs::read_dir(&snippets).with_context(|| format!("list {}", snippets.display()))?
    {
        let entry = entry?;
        std::fs::copy(
            entry.path(),
            staging.path().join("snippets").join(entry.file_name()),
        )?;
    }
    if out.exists() {
        std::fs::remove_dir_all(out).with_context(|| format!("replace {}", out.display()))?;
    }
    let staged = staging.keep();
    std::fs::rename(&staged, out).with_context(|| format!("rename into {}", out.display()))?;
    Ok(())
}

/// Debian's nginx running a rendered configuration, stopped on drop.
pub struct Nginx {
    runtime: PathBuf,
    server: Child,
    log: PathBuf,
}

impl Nginx {
    /// Starts nginx on `config_dir/nginx.conf` (as rendered by [`render`]); `runtime_dir` is
    /// the NGINX_RUNTIME_DIR it was rendered with, and `ready` is a TCP address to wait for.
    pub fn start(
        config_dir: &Path,
        runtime_dir: &Path,
        ready: std::net::SocketAddr,
    ) -> anyhow::Result<Self> {
        let config = config_dir.join("nginx.conf");
        let log = runtime_dir.join("nginx.stderr");
        let test = Command::new("nginx")
            .args(["-t", "-q", "-c"])
            .arg(&config)
            .output()
            .context("run nginx -t (package nginx; `cargo xtask setup` installs it)")?;
        anyhow::ensure!(
            test.status.success(),
            "nginx refuses {}: {}",
            config.display(),
            String::from_utf8_lossy(&test.stderr)
        );
        let stderr = std::fs::File::create(&log)?;
        let stdout = std::fs::File::create(runtime_dir.join("nginx.stdout"))?;
        let server = Command::new("nginx")
            .arg("-c")
            .arg(&config)
            .args(["-g", "daemon off;"])
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .context("start nginx")?;
        let mut nginx = Self {
            runtime: runtime_dir.to_path_buf(),
            server,
            log,
        };
        let up = wait_until_up(
            &mut nginx.server,
            Duration::from_secs(10),
            "nginx to listen",
            || std::net::TcpStream::connect(ready).is_ok(),
        );
        up.with_context(|| format!("nginx's error log:\n{}", nginx.log()))?;
        Ok(nginx)
    }

    /// The pid file nginx writes in its runtime folder.
    pub fn pid_file(&self) -> PathBuf {
        self.runtime.join("nginx.pid")
    }

    /// What nginx has written to stdout so far: its access log.
    pub fn access_log(&self) -> String {
        std::fs::read_to_string(self.runtime.join("nginx.stdout")).unwrap_or_default()
    }

    /// What nginx has written to stderr so far (its error log).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // SIGQUIT: a graceful stop; the master waits for its workers.
        let _ = Command::new("kill")
            .args(["-QUIT", &self.server.id().to_string()])
            .status();
        let stopped = wait_for(Duration::from_secs(10), "nginx to stop", || {
            matches!(self.server.try_wait(), Ok(Some(_)))
        });
        if stopped.is_err() {
            let _ = self.server.kill();
        }
        let _ = self.server.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_snippets_headers_are_read_with_their_values() {
        let headers = parse_add_headers(
            "# a comment\nadd_header X-A \"1; b\" always;\nadd_header X-Id $id always;\n",
        );
        assert_eq!(
            headers,
            [
                SecurityHeader {
                    name: "x-a".into(),
                    value: Some("1; b".into())
                },
                SecurityHeader {
                    name: "x-id".into(),
                    value: None
                },
            ]
        );
        let real = security_headers();
        assert!(
            real.iter()
                .any(|h| h.name == "content-security-policy" && h.value.is_some())
        );
        assert!(
            real.iter()
                .any(|h| h.name == "x-request-id" && h.value.is_none())
        );
    }

    #[test]
    fn variables_are_found_once_each_and_sorted() {
        let template =
            "# ${NGINX_...}\nlisten ${NGINX_B}; root ${NGINX_A}; $host ${NGINX_B} ${OTHER}";
        assert_eq!(template_variables(template), ["NGINX_A", "NGINX_B"]);
    }
}
