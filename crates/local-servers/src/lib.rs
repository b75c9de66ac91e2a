//! Real servers started on this machine for tests, benchmarks and `cargo xtask docker smoke`:
//! PostgreSQL (initdb in a temporary folder) and Redis from the machine's packages, PgBouncer
//! from Debian 13's, on free loopback ports and unix sockets, stopped on drop; and a Docker
//! engine, started when none runs.

mod debian_chroot;
mod docker_engine;
pub mod nginx;
mod pebble;
mod pgbouncer;
mod postgres;
mod redis;
pub mod testssl;

use std::process::Command;
use std::time::{Duration, Instant};

pub use docker_engine::{DockerEngine, docker_client};
pub use nginx::Nginx;
pub use pebble::Pebble;
pub use pgbouncer::PgBouncer;
pub use postgres::{Postgres, PostgresOptions};
pub use redis::{Redis, RedisOptions};

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

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|out| out.stdout.starts_with(b"0\n"))
        .unwrap_or(false)
}
