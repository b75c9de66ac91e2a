//! Real servers started on this machine for tests, benchmarks and `cargo xtask docker smoke`:
//! PostgreSQL (initdb in a temporary folder), Redis and nginx from the machine's packages,
//! PgBouncer, Pebble and testssl.sh from Debian 13's, an S3-compatible server (s3s-fs),
//! Prometheus with its exporters and Alertmanager, on free loopback ports and unix sockets,
//! and Xvfb for desktop windows, stopped on drop; and a Docker engine, started when none runs.

mod debian_chroot;
mod docker_engine;
mod exporter;
mod netns;
pub mod nginx;
mod pebble;
mod pgbouncer;
mod postgres;
mod prometheus;
mod redis;
pub mod s3;
pub mod testssl;
mod xvfb;

use std::process::{Child, Command};
use std::time::{Duration, Instant};

pub use docker_engine::{DockerEngine, docker_client};
pub use exporter::Exporter;
pub use netns::Netns;
pub use nginx::Nginx;
pub use pebble::{Pebble, PebbleOptions};
pub use pgbouncer::PgBouncer;
pub use postgres::{Postgres, PostgresOptions};
pub use prometheus::Prometheus;
pub use redis::{Redis, RedisOptions};
pub use s3::S3Server;
pub use xvfb::Xvfb;

/// A child process that is killed and reaped when this goes out of scope, so a failing test
/// leaves nothing running.
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Polls `probe` every 100 ms until it gives a value, or fails naming `what` after `limit`.
pub fn wait_for_value<T>(
    limit: Duration,
    what: &str,
    mut probe: impl FnMut() -> Option<T>,
) -> anyhow::Result<T> {
    let mut value = None;
    wait_for(limit, what, || {
        value = probe();
        value.is_some()
    })?;
    value.ok_or_else(|| anyhow::anyhow!("{what}: the probe gave no value"))
}

/// A port that was free a moment ago on 127.0.0.1.
pub fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// Polls `probe` every 100 ms until it holds, or fails naming `what` after `limit`.
pub fn wait_for(
    limit: Duration,
    what: &str,
    mut probe: impl FnMut() -> bool,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + limit;
    while !probe() {
        anyhow::ensure!(
            Instant::now() < deadline,
            "gave up waiting for {what} after {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}

/// Waits until the just-started `server` is `ready`, failing at once when it exits instead,
/// or after `limit`. Callers add the server's log to the error.
fn wait_until_up(
    server: &mut Child,
    limit: Duration,
    what: &str,
    mut ready: impl FnMut() -> bool,
) -> anyhow::Result<()> {
    let mut exit = None;
    let waited = wait_for(limit, what, || {
        if let Ok(Some(status)) = server.try_wait() {
            exit = Some(status);
            return true;
        }
        ready()
    });
    if let Some(status) = exit {
        anyhow::bail!("gave up waiting for {what}: the process exited ({status})");
    }
    waited
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|out| out.stdout.starts_with(b"0\n"))
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_that_exits_at_start_fails_the_wait_naming_its_exit() {
        let mut server = Command::new("false").spawn().unwrap();
        let err = wait_until_up(
            &mut server,
            Duration::from_secs(30),
            "false to listen",
            || false,
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("gave up waiting for false to listen: the process exited"),
            "{err}"
        );
    }
}
