//! `cargo xtask docker smoke`: the image against real PostgreSQL and Redis. The servers run on
//! this machine and the container reaches them through their unix sockets, mounted read-only,
//! so no traffic leaves loopback; the container's port is published on 127.0.0.1 only. The
//! container runs as compose runs it: read-only root, every capability dropped, no new
//! privileges, secrets as files.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use local_servers::{Postgres, Redis};
use serde_json::Value;
use xshell::{Shell, cmd};

use crate::setup::{self, Purpose};
use crate::step;

/// The user distroless's `nonroot` images run as, and that the Dockerfile sets.
const NONROOT: u32 = 65532;

/// A container removed (with its volumes) on drop, whatever happened.
struct Container<'a> {
    sh: &'a Shell,
    name: String,
}

impl Drop for Container<'_> {
    fn drop(&mut self) {
        let docker = super::client();
        let name = &self.name;
        let _ = step::captured(cmd!(self.sh, "{docker} rm --force --volumes {name}"));
        // The named volume for the crash report folder has the container's name.
        let _ = step::captured(cmd!(self.sh, "{docker} volume rm --force {name}"));
    }
}

pub fn smoke(sh: &Shell, image: &str) -> anyhow::Result<()> {
    setup::require(sh, &[Purpose::WebTests])?;
    super::require_image(sh, image, "build it with `cargo xtask docker build`")?;
    let image_size: u64 = super::inspect(sh, image, "{{.Size}}")?.parse()?;
    let (postgres, redis) = step::run_with_spinner("start PostgreSQL and Redis", || {
        Ok((Postgres::start()?, Redis::start()?))
    })?;

    let secrets = tempfile::Builder::new()
        .prefix("xtask-smoke-secrets-")
        .tempdir()
        .context("create the secrets folder")?;
    let database_url = format!(
        "postgres://postgres@localhost:{}/postgres?host=/run/postgresql",
        postgres.port
    );
    write_secret(&secrets.path().join("database_url"), &database_url)?;
    write_secret(
        &secrets.path().join("redis_url"),
        "redis+unix:///run/redis/redis.sock",
    )?;
    let redis_dir = redis
        .socket()
        .parent()
        .context("the Redis socket has a folder")?
        .to_path_buf();
    let mounts = [
        format!("{}:/run/postgresql:ro", postgres.socket_dir().display()),
        format!("{}:/run/redis:ro", redis_dir.display()),
        format!("{}:/run/secrets:ro", secrets.path().display()),
    ]
    .into_iter()
    .flat_map(|mount| ["--volume".to_owned(), mount]);
    let hardening = [
        "--read-only",
        "--cap-drop=ALL",
        "--security-opt=no-new-privileges",
        "--env=APP_WEB_DATABASE_URL_FILE=/run/secrets/database_url",
        "--env=APP_WEB_REDIS_URL_FILE=/run/secrets/redis_url",
    ]
    .map(str::to_owned);
    let common: Vec<String> = hardening.into_iter().chain(mounts).collect();
    let docker = super::client();

    let started = Instant::now();
    let common = &common;
    step::run("migrate (one-shot container)", || {
        step::captured(cmd!(sh, "{docker} run --rm {common...} {image} migrate"))
    })?;
    let migrate = started.elapsed();

    let container = Container {
        sh,
        name: format!("app-web-smoke-{}", std::process::id()),
    };
    let name = &container.name;
    // A fresh named volume for the crash report folder, as compose gives it: the image's
    // folder, owned by the app's user, must make it writable.
    let state = format!("{name}:/var/lib/app-web");
    let started = Instant::now();
    step::captured(cmd!(
        sh,
        "{docker} run --detach --name {name} {common...} --volume {state} --env APP_WEB_CRASH_DIR=/var/lib/app-web/crashes --publish 127.0.0.1::8080 --health-interval=1s --health-start-period=1s {image}"
    ))
    .context("start the app-web container")?;
    let port = step::captured(cmd!(sh, "{docker} port {name} 8080/tcp"))?;
    let address = port
        .lines()
        .find(|line| line.starts_with("127.0.0.1:"))
        .with_context(|| format!("the container's port is not published on 127.0.0.1: {port}"))?
        .trim()
        .to_owned();
    let base = format!("http://{address}");
    let client = crate::smoke::client(None, &[])?;

    let ready = step::run("wait for /readyz", || {
        local_servers::wait_for_value(Duration::from_secs(60), "app-web to report ready", || {
            client
                .request("GET", &format!("{base}/readyz"), None)
                .ok()
                .filter(|answer| answer.status == 200)
        })
    })
    .with_context(|| logs(sh, name))?;
    let start_to_ready = started.elapsed();
    let readiness: Value = serde_json::from_str(&ready.body).context("/readyz is not JSON")?;
    for store in ["database", "redis"] {
        anyhow::ensure!(
            readiness["checks"][store] == "ok",
            "/readyz reports {store} {}: {readiness}",
            readiness["checks"][store]
        );
    }

    step::run("notes API", || crate::smoke::check_notes(&client, &base))?;
    step::run("crash reports on, in the volume", || {
        let answer = client.request("POST", &format!("{base}/api/crashes"), Some("{}"))?;
        anyhow::ensure!(
            answer.status == 400 && answer.body.contains("multipart"),
            "POST /api/crashes with a JSON body answered {} {}; expected 400 asking for multipart (503 means the crash folder is off)",
            answer.status,
            answer.body
        );
        Ok(())
    })?;
    step::run("docker health check", || {
        local_servers::wait_for_value(Duration::from_secs(60), "the health check to pass", || {
            super::inspect(sh, name, "{{.State.Health.Status}}")
                .ok()
                .filter(|status| status == "healthy")
        })
        .map(drop)
    })?;
    step::run("non-root, read-only, no capabilities", || {
        check_confinement(sh, name)
    })?;
    step::run("graceful stop", || {
        step::captured(cmd!(sh, "{docker} stop --time 20 {name}"))?;
        let code = super::inspect(sh, name, "{{.State.ExitCode}}")?;
        anyhow::ensure!(
            code == "0",
            "app-web exited with {code} on SIGTERM instead of 0\n{}",
            logs(sh, name)
        );
        Ok(())
    })?;
    drop(container);
    drop((postgres, redis));

    eprintln!(
        "xtask: {image} passed: {:.1} MB, migrations {}, start to ready {}",
        image_size as f64 / 1e6,
        step::format_duration(migrate),
        step::format_duration(start_to_ready)
    );
    Ok(())
}

/// Writes a secret readable by the container's user only.
fn write_secret(path: &Path, value: &str) -> anyhow::Result<()> {
    use std::os::unix::fs::{PermissionsExt, chown};
    std::fs::write(path, value).with_context(|| format!("write {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o400))?;
    chown(path, Some(NONROOT), Some(NONROOT))
        .with_context(|| format!("chown {} to {NONROOT} (run as root)", path.display()))
}

/// Reads the container's process from the host: its user, capabilities and root mount.
fn check_confinement(sh: &Shell, name: &str) -> anyhow::Result<()> {
    let user = super::inspect(sh, name, "{{.Config.User}}")?;
    let pid = super::inspect(sh, name, "{{.State.Pid}}")?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("read the status of the container's process {pid}"))?;
    let field = |key: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(key))
            .map(|rest| rest.split_whitespace().collect::<Vec<_>>())
            .unwrap_or_default()
    };
    let uids = field("Uid:");
    anyhow::ensure!(
        !uids.is_empty() && uids.iter().all(|uid| *uid == NONROOT.to_string()),
        "app-web runs with uids {uids:?} (image user {user:?}), not {NONROOT}"
    );
    let capabilities = field("CapEff:");
    anyhow::ensure!(
        capabilities
            .iter()
            .all(|caps| caps.chars().all(|c| c == '0')),
        "app-web keeps capabilities {capabilities:?}"
    );
    let readonly = super::inspect(sh, name, "{{.HostConfig.ReadonlyRootfs}}")?;
    let mountinfo = std::fs::read_to_string(format!("/proc/{pid}/mountinfo"))?;
    // Fields: id, parent, major:minor, root, mount point, options, ...
    let root_options = mountinfo
        .lines()
        .map(|line| line.split(' ').collect::<Vec<_>>())
        .find(|fields| fields.get(4) == Some(&"/"))
        .and_then(|fields| fields.get(5).map(|options| options.to_string()))
        .context("the container has no root mount")?;
    anyhow::ensure!(
        readonly == "true" && root_options.split(',').any(|option| option == "ro"),
        "the root file system is writable (ReadonlyRootfs {readonly}, mount options {root_options})"
    );
    Ok(())
}

fn logs(sh: &Shell, name: &str) -> String {
    let docker = super::client();
    let output = cmd!(sh, "{docker} logs --tail 30 {name}")
        .quiet()
        .ignore_status()
        .output();
    match output {
        Ok(output) => format!(
            "the container's last log lines:\n{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
        Err(err) => format!("no container logs: {err}"),
    }
}
