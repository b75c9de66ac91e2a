//! Pebble, Let's Encrypt's ACME test server, from Debian 13's package in the chroot of
//! [`crate::debian_chroot`] (Debian 12's Pebble 2.4 cannot set certificate lifetimes), with
//! pebble-challtestsrv as its DNS server answering 127.0.0.1 (or a chosen address) for every
//! name, so HTTP-01 challenges for any test domain reach a server on this machine's
//! `http_port`. It listens on 127.0.0.1, or in a network namespace of the test's on its address. Its root
//! certificate is made anew at each start and read from its management API.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::Duration;

use anyhow::Context;

use crate::{Netns, free_port, wait_until_up};

/// Where Pebble runs and what it does, for [`Pebble::start_with`].
pub struct PebbleOptions<'a> {
    /// The port HTTP-01 challenges are validated on.
    pub http_port: u16,
    /// How long the certificates it issues live.
    pub validity_days: u32,
    /// The namespace Pebble runs and listens in (on its address); `None`: 127.0.0.1.
    pub netns: Option<&'a Netns>,
    /// The address its DNS server answers for every name, where challenges are validated.
    pub challenge_address: Ipv4Addr,
}

/// Pebble and its DNS server, killed on drop.
pub struct Pebble {
    pub port: u16,
    /// The address Pebble listens on.
    pub host: Ipv4Addr,
    management: u16,
    folder: tempfile::TempDir,
    pebble: Child,
    dns: Child,
}

impl Pebble {
    /// Starts Pebble validating HTTP-01 challenges on port `http_port` of 127.0.0.1 and
    /// issuing certificates that live `validity_days`; `cache` keeps the chroot.
    pub fn start(cache: &Path, http_port: u16, validity_days: u32) -> anyhow::Result<Self> {
        Self::start_with(
            cache,
            &PebbleOptions {
                http_port,
                validity_days,
                netns: None,
                challenge_address: Ipv4Addr::LOCALHOST,
            },
        )
    }

    /// Starts Pebble as `options` say; `cache` keeps the chroot.
    pub fn start_with(cache: &Path, options: &PebbleOptions) -> anyhow::Result<Self> {
        // Its five ports are picked free and then bound by Pebble, so a server another test
        // started in between can take one first: then Pebble exits and is started again on
        // new ports.
        let mut attempt = 1;
        loop {
            match Self::start_once(cache, options) {
                Err(err)
                    if attempt < 3 && format!("{err:#}").contains("address already in use") =>
                {
                    attempt += 1;
                }
                result => return result,
            }
        }
    }

    fn start_once(cache: &Path, options: &PebbleOptions) -> anyhow::Result<Self> {
        let host = options
            .netns
            .map_or(Ipv4Addr::LOCALHOST, |netns| netns.address);
        let root = crate::debian_chroot::trixie_tools(cache)?;
        // `program` of the chroot, run in the namespace when there is one.
        let chrooted = |program: &str| {
            let mut command = match options.netns {
                Some(netns) => netns.command("chroot"),
                None => Command::new("chroot"),
            };
            command.arg(&root).arg(program);
            command
        };
        let (folder, inside) = crate::debian_chroot::work_dir(&root, "local-pebble-")?;
        let dir = folder.path();
        // The certificate Pebble's own API is served with.
        let output = Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
            ])
            .args(["-nodes", "-days", "2", "-subj", "/CN=localhost"])
            .args([
                "-addext",
                &format!("subjectAltName=DNS:localhost,IP:127.0.0.1,IP:{host}"),
            ])
            .arg("-keyout")
            .arg(dir.join("api-key.pem"))
            .arg("-out")
            .arg(dir.join("api-cert.pem"))
            .output()
            .context("run openssl (package openssl)")?;
        anyhow::ensure!(
            output.status.success(),
            "openssl failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let (port, management, dns_port, tls_port, dns_management) = (
            free_port()?,
            free_port()?,
            free_port()?,
            free_port()?,
            free_port()?,
        );
        let config = pebble_config(
            &inside,
            &Listen {
                host,
                port,
                management,
                tls_port,
            },
            options.http_port,
            options.validity_days,
        );
        std::fs::write(dir.join("pebble.json"), config)?;

        let dns_log = std::fs::File::create(dir.join("challtestsrv.log"))?;
        let dns = chrooted("pebble-challtestsrv")
            .args(["-dns01", &format!("127.0.0.1:{dns_port}")])
            .args(["-http01", "", "-https01", "", "-tlsalpn01", ""])
            .args(["-management", &format!("127.0.0.1:{dns_management}")])
            .args([
                "-defaultIPv4",
                &options.challenge_address.to_string(),
                "-defaultIPv6",
                "",
            ])
            .stdout(dns_log.try_clone()?)
            .stderr(dns_log)
            .spawn()
            .context("start pebble-challtestsrv in its chroot (needs root)")?;
        let log = std::fs::File::create(dir.join("pebble.log"))?;
        let pebble = chrooted("pebble")
            .arg("-config")
            .arg(inside.join("pebble.json"))
            .args(["-dnsserver", &format!("127.0.0.1:{dns_port}")])
            // No random sleeps before validating, no nonces rejected on purpose: the tests are
            // about this project, not certbot's retries.
            .env("PEBBLE_VA_NOSLEEP", "1")
            .env("PEBBLE_WFE_NONCEREJECT", "0")
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("start pebble in its chroot (needs root)")?;
        let mut pebble = Self {
            port,
            host,
            management,
            folder,
            pebble,
            dns,
        };
        let up = wait_until_up(
            &mut pebble.pebble,
            Duration::from_secs(15),
            "Pebble to listen",
            || {
                std::net::TcpStream::connect((host, port)).is_ok()
                    && std::net::TcpStream::connect((host, management)).is_ok()
            },
        );
        up.with_context(|| format!("Pebble's log:\n{}", pebble.log()))?;
        Ok(pebble)
    }

    /// The ACME directory URL.
    pub fn directory(&self) -> String {
        format!("https://{}:{}/dir", self.host, self.port)
    }

    /// The certificate Pebble's API is served with: what an ACME client must trust to talk to
    /// it (not the root its certificates chain to).
    pub fn api_certificate(&self) -> PathBuf {
        self.folder.path().join("api-cert.pem")
    }

    /// Writes the root that issued certificates chain to, as PEM, to `destination`.
    pub fn write_root_certificate(&self, destination: &Path) -> anyhow::Result<()> {
        let output = Command::new("curl")
            .args(["--silent", "--show-error", "--fail", "--cacert"])
            .arg(self.api_certificate())
            .arg("--output")
            .arg(destination)
            .arg(format!("https://{}:{}/roots/0", self.host, self.management))
            .output()
            .context("run curl")?;
        anyhow::ensure!(
            output.status.success(),
            "fetch Pebble's root: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        Ok(())
    }

    /// What Pebble has logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.folder.path().join("pebble.log")).unwrap_or_default()
    }
}

/// Where Pebble's API and management API listen.
struct Listen {
    host: Ipv4Addr,
    port: u16,
    management: u16,
    tls_port: u16,
}

/// Pebble's configuration. Its certificates name a revocation URI, as Let's Encrypt's name
/// their CRLs, so that a TLS scanner judges the server and not the test CA; the URI is on
/// loopback and nothing there is asked.
fn pebble_config(dir: &Path, listen: &Listen, http_port: u16, validity_days: u32) -> String {
    let Listen {
        host,
        port,
        management,
        tls_port,
    } = listen;
    let ocsp_port = tls_port;
    serde_json::json!({
        "pebble": {
            "listenAddress": format!("{host}:{port}"),
            "managementListenAddress": format!("{host}:{management}"),
            "certificate": dir.join("api-cert.pem"),
            "privateKey": dir.join("api-key.pem"),
            "httpPort": http_port,
            "tlsPort": tls_port,
            "ocspResponderURL": format!("http://127.0.0.1:{ocsp_port}/"),
            "externalAccountBindingRequired": false,
            "certificateValidityPeriod": u64::from(validity_days) * 24 * 3600,
        }
    })
    .to_string()
}

impl Drop for Pebble {
    fn drop(&mut self) {
        for child in [&mut self.pebble, &mut self.dns] {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
