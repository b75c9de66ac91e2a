//! An S3-compatible server for tests and benchmarks: s3s-fs (from crates.io, installed by
//! `cargo xtask setup`), storing each bucket as a folder of a temporary root, on a free
//! loopback port with a fixed test key.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::Context;

use crate::{free_port, wait_until_up};

/// The access key the server accepts.
pub const ACCESS_KEY: &str = "local-test-access-key";
/// The secret key that goes with [`ACCESS_KEY`].
pub const SECRET_KEY: &str = "local-test-secret-key";

/// s3s-fs serving a temporary root, stopped on drop.
pub struct S3Server {
    pub port: u16,
    /// The address it listens on: 127.0.0.1, or a test namespace's.
    pub host: std::net::Ipv4Addr,
    root: tempfile::TempDir,
    log: PathBuf,
    server: Child,
}

/// The s3s-fs binary: on PATH, else in cargo's bin folder where `cargo install` put it.
fn binary() -> anyhow::Result<PathBuf> {
    let on_path = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .unwrap_or_default();
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".cargo")));
    on_path
        .into_iter()
        .chain(cargo_home.map(|home| home.join("bin")))
        .map(|dir| dir.join("s3s-fs"))
        .find(|candidate| candidate.is_file())
        .context(
            "s3s-fs is not installed; run `cargo xtask setup` (it runs `cargo install s3s-fs`)",
        )
}

impl S3Server {
    /// Starts the server with the given buckets created.
    pub fn start(buckets: &[&str]) -> anyhow::Result<Self> {
        Self::start_in(None, buckets)
    }

    /// Starts the server in `netns` (on its address) when given, else on 127.0.0.1.
    pub fn start_in(netns: Option<&crate::Netns>, buckets: &[&str]) -> anyhow::Result<Self> {
        let host = netns.map_or(std::net::Ipv4Addr::LOCALHOST, |netns| netns.address);
        let root = tempfile::Builder::new()
            .prefix("local-s3-")
            .tempdir()
            .context("create a folder for the S3 server")?;
        let data = root.path().join("data");
        for bucket in buckets {
            std::fs::create_dir_all(data.join(bucket))
                .with_context(|| format!("create the bucket {bucket}"))?;
        }
        let port = free_port()?;
        let log = root.path().join("server.log");
        let log_file = std::fs::File::create(&log).context("create the S3 server's log")?;
        let mut command = match netns {
            Some(netns) => netns.command(binary()?),
            None => Command::new(binary()?),
        };
        let mut server = command
            .args(["--host", &host.to_string(), "--port", &port.to_string()])
            .args(["--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY])
            .arg(&data)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .context("start s3s-fs")?;
        let up = wait_until_up(
            &mut server,
            Duration::from_secs(20),
            "s3s-fs to listen",
            || std::net::TcpStream::connect((host, port)).is_ok(),
        );
        let server = Self {
            port,
            host,
            root,
            log,
            server,
        };
        up.with_context(|| format!("s3s-fs's log:\n{}", server.log()))?;
        Ok(server)
    }

    /// The endpoint URL (plain HTTP on loopback).
    pub fn endpoint(&self) -> String {
        format!("http://{}:{}", self.host, self.port)
    }

    /// Where the server keeps `key` of `bucket` on disk, to compare with what was uploaded.
    pub fn object_path(&self, bucket: &str, key: &str) -> PathBuf {
        self.root.path().join("data").join(bucket).join(key)
    }

    /// What the server has logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
    }
}
