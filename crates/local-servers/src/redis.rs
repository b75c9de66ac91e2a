//! A Redis server without persistence, from Debian's redis-server package.

use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::Duration;

use anyhow::Context;

use crate::{free_port, wait_until_up};

/// How to start Redis beyond the defaults (no password, no persistence, 127.0.0.1 on a free
/// port, a unix socket in its folder).
#[derive(Debug, Clone, Default)]
pub struct RedisOptions {
    /// A `redis.conf` to load; the address, port, socket and data folder still come from here.
    pub config_file: Option<PathBuf>,
    /// A password, given as compose gives it: an included file with `requirepass`.
    pub password: Option<String>,
}

/// A Redis server on 127.0.0.1 and a unix socket, killed on drop.
pub struct Redis {
    pub port: u16,
    folder: tempfile::TempDir,
    options: RedisOptions,
    server: Option<Child>,
}

impl Redis {
    pub fn start() -> anyhow::Result<Self> {
        Self::start_with(RedisOptions::default())
    }

    pub fn start_with(options: RedisOptions) -> anyhow::Result<Self> {
        let folder = tempfile::Builder::new()
            .prefix("local-redis-")
            .tempdir()
            .context("create a folder for Redis")?;
        {
            use std::os::unix::fs::PermissionsExt;
            // Containers connect to the socket in here as another user.
            std::fs::set_permissions(folder.path(), std::fs::Permissions::from_mode(0o755))
                .context("chmod the Redis folder")?;
        }
        if let Some(password) = &options.password {
            std::fs::write(
                folder.path().join("auth.conf"),
                format!("requirepass \"{password}\"\n"),
            )
            .context("write the Redis password file")?;
        }
        let mut redis = Self {
            port: free_port()?,
            folder,
            options,
            server: None,
        };
        redis.resume()?;
        Ok(redis)
    }

    /// A URL for TCP on 127.0.0.1.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// The server's unix socket, open to every local user.
    pub fn socket(&self) -> PathBuf {
        self.folder.path().join("redis.sock")
    }

    pub fn resume(&mut self) -> anyhow::Result<()> {
        anyhow::ensure!(self.server.is_none(), "Redis is already running");
        let log = std::fs::File::create(self.folder.path().join("server.log"))
            .context("create the Redis log")?;
        let mut command = Command::new("redis-server");
        match &self.options.config_file {
            Some(config) => {
                command.arg(config).arg("--dir").arg(self.folder.path());
            }
            None => {
                command.args(["--save", "", "--appendonly", "no"]);
            }
        }
        if self.options.password.is_some() {
            command
                .arg("--include")
                .arg(self.folder.path().join("auth.conf"));
        }
        let server = command
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .arg("--unixsocket")
            .arg(self.socket())
            .args(["--unixsocketperm", "777"])
            .args(["--protected-mode", "yes"])
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context(
                "start redis-server (package redis-server; `cargo xtask setup` installs it)",
            )?;
        let socket = self.socket();
        let up = wait_until_up(
            self.server.insert(server),
            Duration::from_secs(10),
            "Redis to accept connections",
            || std::os::unix::net::UnixStream::connect(&socket).is_ok(),
        );
        up.with_context(|| format!("Redis's log:\n{}", self.log()))
    }

    /// What the server has logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.folder.path().join("server.log")).unwrap_or_default()
    }

    /// Runs one command through redis-cli on the unix socket and returns its output.
    pub fn cli(&self, args: &[&str]) -> anyhow::Result<String> {
        let mut command = Command::new("redis-cli");
        command.arg("-s").arg(self.socket()).args(args);
        if let Some(password) = &self.options.password {
            command.env("REDISCLI_AUTH", password);
        }
        let output = command.output().context("run redis-cli")?;
        anyhow::ensure!(
            output.status.success(),
            "redis-cli {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
    }

    pub fn stop(&mut self) {
        if let Some(mut server) = self.server.take() {
            let _ = server.kill();
            let _ = server.wait();
            let _ = std::fs::remove_file(self.socket());
        }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.stop();
    }
}
