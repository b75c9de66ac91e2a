//! A Docker engine for image tests: the one already running, or `dockerd` started here and
//! stopped again when the guard drops.

use std::ffi::OsString;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::Context;

use crate::{wait_for, wait_until_up};

/// The docker client to run: `$DOCKER` when set, else `docker` from `PATH`.
pub fn docker_client() -> OsString {
    std::env::var_os("DOCKER").unwrap_or_else(|| "docker".into())
}

fn engine_answers() -> bool {
    Command::new(docker_client())
        .args(["version", "--format", "{{.Server.Version}}"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// Exclusive use of a Docker engine. Holders take turns (a lock file), so one test never stops
/// the daemon another is using, nor races it for image tags.
pub struct DockerEngine {
    daemon: Option<Child>,
    log: tempfile::NamedTempFile,
    _turn: std::fs::File,
}

impl DockerEngine {
    /// Waits for its turn, then uses the running engine or starts `dockerd` (package
    /// docker.io) when none answers.
    pub fn ensure() -> anyhow::Result<Self> {
        let lock = std::env::temp_dir().join("local-servers-docker.lock");
        let turn =
            std::fs::File::create(&lock).with_context(|| format!("create {}", lock.display()))?;
        turn.lock()
            .with_context(|| format!("lock {}", lock.display()))?;
        let log = tempfile::NamedTempFile::new().context("create the dockerd log")?;
        let mut engine = Self {
            daemon: None,
            log,
            _turn: turn,
        };
        if engine_answers() {
            return Ok(engine);
        }
        let daemon = Command::new("dockerd")
            .stdin(Stdio::null())
            .stdout(engine.log.reopen()?)
            .stderr(engine.log.reopen()?)
            .spawn()
            .context("no Docker engine answers and dockerd does not start; install docker.io (`cargo xtask setup`) and run as root")?;
        let up = wait_until_up(
            engine.daemon.insert(daemon),
            Duration::from_secs(60),
            "dockerd to answer",
            engine_answers,
        );
        up.with_context(|| format!("dockerd's log:\n{}", engine.log_text()))?;
        Ok(engine)
    }

    /// Whether this guard started the daemon (and will stop it).
    pub fn started_here(&self) -> bool {
        self.daemon.is_some()
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(self.log.path()).unwrap_or_default()
    }
}

impl Drop for DockerEngine {
    fn drop(&mut self) {
        if let Some(mut daemon) = self.daemon.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &daemon.id().to_string()])
                .status();
            let stopped = wait_for(Duration::from_secs(30), "dockerd to stop", || {
                matches!(daemon.try_wait(), Ok(Some(_)))
            });
            if stopped.is_err() {
                let _ = daemon.kill();
            }
            let _ = daemon.wait();
        }
    }
}
