//! A Redis server without persistence, from Debian's redis-server package.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::Context;

use crate::{free_port, wait_for};

/// A Redis server on 127.0.0.1 and a unix socket, killed on drop.
pub struct Redis {
    pub port: u16,
    folder: tempfile::TempDir,
    server: Option<Child>,
}

impl Redis {
    pub fn start() -> anyhow::Result<Self> {
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
        let mut redis = Self {
            port: free_port()?,
            folder,
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

    fn is_ready(&self) -> bool {
        std::os::unix::net::UnixStream::connect(self.socket()).is_ok()
    }

    pub fn resume(&mut self) -> anyhow::Result<()> {
        anyhow::ensure!(self.server.is_none(), "Redis is already running");
        let server = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .arg("--unixsocket")
            .arg(self.socket())
            .args(["--unixsocketperm", "777"])
            .args(["--save", "", "--appendonly", "no"])
            .args(["--protected-mode", "yes"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context(
                "start redis-server (package redis-server; `cargo xtask setup` installs it)",
            )?;
        self.server = Some(server);
        wait_for(
            Duration::from_secs(10),
            "Redis to accept connections",
            || self.is_ready(),
        )
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
