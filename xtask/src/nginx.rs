//! `cargo xtask nginx render`: nginx/nginx.conf.template filled in for one host, by the same
//! renderer the tests use and the same tool (envsubst) the nginx image runs at start.

use std::collections::BTreeMap;

use anyhow::Context;
use xshell::{Shell, cmd};

use crate::setup::{self, Purpose};
use crate::{flags, path, step};

/// Requests per second one client address may make, in nginx's syntax: the one default the
/// flags, compose.yaml and .env.example share (a tidy test compares them).
pub const RATE_LIMIT: &str = "20r/s";
/// Requests a client may send at once beyond that rate.
pub const RATE_BURST: &str = "40";

impl flags::Nginx {
    pub fn run(self, sh: &Shell) -> anyhow::Result<()> {
        setup::require(sh, &[Purpose::Proxy])?;
        match self.command {
            flags::NginxCommand::Render(settings) => render(sh, *settings),
        }
    }
}

fn render(sh: &Shell, settings: flags::NginxSettings) -> anyhow::Result<()> {
    let live = format!("/etc/letsencrypt/live/{}", settings.server_name);
    let values: BTreeMap<String, String> = [
        ("NGINX_SERVER_NAME", settings.server_name.clone()),
        ("NGINX_HTTP_LISTEN", settings.http_listen),
        ("NGINX_HTTPS_LISTEN", settings.https_listen),
        ("NGINX_STATUS_LISTEN", settings.status_listen),
        (
            "NGINX_HTTPS_ORIGIN",
            settings
                .https_origin
                .unwrap_or_else(|| format!("https://{}", settings.server_name)),
        ),
        ("NGINX_UPSTREAM", settings.upstream),
        ("NGINX_RATE_LIMIT", settings.rate_limit),
        ("NGINX_RATE_BURST", settings.rate_burst),
        ("NGINX_CRASH_MAX_MIB", settings.crash_max_mib.to_string()),
        (
            "NGINX_SYMBOLS_MAX_MIB",
            settings.symbols_max_mib.to_string(),
        ),
        (
            "NGINX_CERTIFICATE",
            settings
                .certificate
                .unwrap_or_else(|| format!("{live}/fullchain.pem")),
        ),
        (
            "NGINX_CERTIFICATE_KEY",
            settings
                .certificate_key
                .unwrap_or_else(|| format!("{live}/privkey.pem")),
        ),
        ("NGINX_ACME_ROOT", settings.acme_root),
        ("NGINX_RUNTIME_DIR", settings.runtime_dir),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_owned(), value))
    .collect();
    let out = settings.out;
    step::run(&format!("render nginx into {}", out.display()), || {
        local_servers::nginx::render(&path::nginx_dir(), &out, &values)
    })?;
    if settings.check {
        let config = out.join("nginx.conf");
        step::run("nginx -t", || {
            step::captured(cmd!(sh, "nginx -t -c {config}"))
                .map(drop)
                .context("nginx refuses the rendered configuration")
        })?;
    }
    Ok(())
}
