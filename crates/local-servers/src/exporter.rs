//! A Prometheus exporter, Alertmanager or Prometheus itself from Debian's packages on a free
//! loopback port: the caller gives the program and its arguments, with `{port}` and `{dir}`
//! standing for the chosen port and a temporary folder of its own; output goes to a log in that
//! folder.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::Context;

use crate::prometheus::http_get;
use crate::{free_port, wait_until_up};

/// The running program, stopped on drop.
pub struct Exporter {
    pub port: u16,
    program: String,
    folder: tempfile::TempDir,
    server: Child,
}

impl Exporter {
    /// Starts `program` with `args` and `env` and waits until `ready_path` answers 200.
    pub fn start(
        program: &str,
        args: &[&str],
        env: &[(&str, &str)],
        ready_path: &str,
    ) -> anyhow::Result<Self> {
        let folder = tempfile::Builder::new()
            .prefix("local-exporter-")
            .tempdir()
            .with_context(|| format!("create a folder for {program}"))?;
        let port = free_port()?;
        let dir = folder.path().display().to_string();
        let log = std::fs::File::create(folder.path().join("server.log"))
            .with_context(|| format!("create {program}'s log"))?;
        let mut server = Command::new(program)
            .args(args.iter().map(|arg| {
                arg.replace("{port}", &port.to_string())
                    .replace("{dir}", &dir)
            }))
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| {
                format!("start {program} (a Debian package; `cargo xtask setup` installs it)")
            })?;
        let up = wait_until_up(
            &mut server,
            Duration::from_secs(30),
            &format!("{program} to answer {ready_path}"),
            || http_get(port, ready_path).is_ok_and(|(status, _)| status == 200),
        );
        let exporter = Self {
            port,
            program: program.to_owned(),
            folder,
            server,
        };
        up.with_context(|| format!("{}'s log:\n{}", exporter.program, exporter.log()))?;
        Ok(exporter)
    }

    /// `127.0.0.1:<port>`, as a scrape target.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// What the program has written so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.folder.path().join("server.log")).unwrap_or_default()
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
    }
}
