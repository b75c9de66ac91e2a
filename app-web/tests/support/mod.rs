//! Test helpers that start real servers on free loopback ports and stop them on drop: app-web
//! itself, PostgreSQL (initdb in a temporary folder) and Redis, all from the machine's packages.

#![allow(dead_code)] // Each test file uses its own subset of these helpers.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A port that was free a moment ago on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn wait_for(limit: Duration, what: &str, mut probe: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !probe() {
        assert!(
            Instant::now() < deadline,
            "gave up waiting for {what} after {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|out| out.stdout.starts_with(b"0\n"))
        .unwrap_or(false)
}

/// The folder of the newest PostgreSQL server installed from Debian's packages.
fn postgres_bin_dir() -> PathBuf {
    let mut versions: Vec<u32> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL is not installed (package postgresql); run `cargo xtask setup`")
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    versions.sort();
    let newest = versions
        .last()
        .expect("no PostgreSQL version under /usr/lib/postgresql");
    PathBuf::from(format!("/usr/lib/postgresql/{newest}/bin"))
}

/// A PostgreSQL server in a temporary folder. PostgreSQL refuses to run as root, so when the
/// tests do, the server runs as the `postgres` user the package created.
pub struct Postgres {
    pub port: u16,
    data: tempfile::TempDir,
    server: Option<Child>,
}

impl Postgres {
    fn command(program: &str) -> Command {
        let path = postgres_bin_dir().join(program);
        if is_root() {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(path);
            command
        } else {
            Command::new(path)
        }
    }

    pub fn start() -> Self {
        let data = tempfile::Builder::new()
            .prefix("app-web-pg-")
            .tempdir()
            .unwrap();
        if is_root() {
            let status = Command::new("chown")
                .args(["postgres:postgres"])
                .arg(data.path())
                .status()
                .unwrap();
            assert!(status.success(), "chown the PostgreSQL folder to postgres");
        }
        let output = Self::command("initdb")
            .args([
                "--auth=trust",
                "--username=postgres",
                "--encoding=UTF8",
                "--no-sync",
                "-D",
            ])
            .arg(data.path().join("db"))
            .output()
            .expect("run initdb");
        assert!(
            output.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let mut postgres = Self {
            port: free_port(),
            data,
            server: None,
        };
        postgres.resume();
        postgres
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    fn data_dir(&self) -> PathBuf {
        self.data.path().join("db")
    }

    fn is_ready(&self) -> bool {
        Command::new(postgres_bin_dir().join("pg_isready"))
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-q"])
            .status()
            .is_ok_and(|status| status.success())
    }

    /// Starts (or restarts) the server and waits until it accepts connections.
    pub fn resume(&mut self) {
        assert!(self.server.is_none(), "PostgreSQL is already running");
        let server = Self::command("postgres")
            .arg("-D")
            .arg(self.data_dir())
            .args([
                "-p",
                &self.port.to_string(),
                "-c",
                "listen_addresses=127.0.0.1",
            ])
            .args([
                "-c",
                &format!("unix_socket_directories={}", self.data.path().display()),
            ])
            .args(["-c", "fsync=off", "-c", "max_connections=50"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start postgres");
        self.server = Some(server);
        wait_for(
            Duration::from_secs(30),
            "PostgreSQL to accept connections",
            || self.is_ready(),
        );
    }

    /// Stops the server at once (fast shutdown: open sessions are cut).
    pub fn stop(&mut self) {
        if let Some(mut server) = self.server.take() {
            // SIGINT is PostgreSQL's fast shutdown. It goes to the postmaster itself, whose pid
            // is the first line of postmaster.pid: runuser, between us and it, does not pass
            // SIGINT on.
            let pid = std::fs::read_to_string(self.data_dir().join("postmaster.pid"))
                .ok()
                .and_then(|text| text.lines().next().map(str::to_owned))
                .unwrap_or_else(|| server.id().to_string());
            let _ = Command::new("kill").args(["-INT", &pid]).status();
            let _ = server.wait();
            wait_for(Duration::from_secs(30), "PostgreSQL to stop", || {
                !self.is_ready()
            });
        }
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Pool settings for `postgres`, as the flags would give them.
pub fn database_config(
    postgres: &Postgres,
    max_connections: u32,
    acquire_timeout_ms: u64,
    statement_timeout_ms: u64,
) -> app_web::db::DatabaseConfig {
    app_web::db::DatabaseConfig {
        database_url: Some(postgres.url()),
        database_url_file: None,
        db_max_connections: max_connections,
        db_min_connections: 0,
        db_acquire_timeout_ms: acquire_timeout_ms,
        db_statement_timeout_ms: statement_timeout_ms,
        migrate_on_start: false,
    }
}

/// A Redis server with no persistence, on a free port.
pub struct Redis {
    pub port: u16,
    server: Option<Child>,
}

impl Redis {
    pub fn start() -> Self {
        let mut redis = Self {
            port: free_port(),
            server: None,
        };
        redis.resume();
        redis
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    fn is_ready(&self) -> bool {
        std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok()
    }

    pub fn resume(&mut self) {
        let server = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args([
                "--save",
                "",
                "--appendonly",
                "no",
                "--protected-mode",
                "yes",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server (package redis-server; `cargo xtask setup` installs it)");
        self.server = Some(server);
        wait_for(
            Duration::from_secs(10),
            "Redis to accept connections",
            || self.is_ready(),
        );
    }

    pub fn stop(&mut self) {
        if let Some(mut server) = self.server.take() {
            let _ = server.kill();
            let _ = server.wait();
        }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The app-web binary on a free loopback port, killed on drop.
pub struct RunningBinary {
    pub child: Child,
    pub address: SocketAddr,
}

impl RunningBinary {
    /// Starts the binary with `args` and waits for its "listening" log line, which carries the port.
    pub fn start(args: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_app-web"))
            .args(["--listen", "127.0.0.1:0", "--shutdown-grace-secs", "5"])
            .args(args)
            .env_remove("APP_WEB_UI_DIR")
            .env_remove("APP_WEB_DATABASE_URL")
            .env_remove("APP_WEB_REDIS_URL")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start app-web");
        let stdout = child.stdout.take().expect("app-web stdout");
        let mut lines = BufReader::new(stdout).lines();
        let address = loop {
            let line = lines
                .next()
                .expect("app-web exited before logging its address")
                .expect("read app-web stdout");
            let record: serde_json::Value = serde_json::from_str(&line)
                .unwrap_or_else(|err| panic!("log line {line:?} is not JSON: {err}"));
            if record["message"] == "listening" {
                break record["address"]
                    .as_str()
                    .expect("listening line has an address")
                    .parse()
                    .expect("address parses");
            }
        };
        // Keep draining stdout so the child never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        Self { child, address }
    }

    /// Starts the binary on `postgres` (migrating it) and, when given, `redis`, with `extra`
    /// flags after those.
    pub fn start_on(postgres: &Postgres, redis: Option<&Redis>, extra: &[&str]) -> Self {
        let database_url = postgres.url();
        let redis_url = redis.map(Redis::url);
        let mut args = vec![
            "--database-url",
            database_url.as_str(),
            "--migrate-on-start",
        ];
        if let Some(url) = &redis_url {
            args.extend(["--redis-url", url.as_str()]);
        }
        args.extend_from_slice(extra);
        Self::start(&args)
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }
}

impl Drop for RunningBinary {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// GET `url`; a transport error fails the test.
pub async fn get(client: &reqwest::Client, url: impl reqwest::IntoUrl) -> reqwest::Response {
    client.get(url).send().await.expect("GET request")
}

/// DELETE `url`; a transport error fails the test.
pub async fn delete(client: &reqwest::Client, url: impl reqwest::IntoUrl) -> reqwest::Response {
    client.delete(url).send().await.expect("DELETE request")
}

/// Runs the app-web binary to completion with `args`.
pub fn run_binary(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_app-web"))
        .args(args)
        .env_remove("APP_WEB_DATABASE_URL")
        .env_remove("APP_WEB_REDIS_URL")
        .output()
        .expect("run app-web")
}
