//! The fixtures the workspace's tests start on free loopback ports and stop on drop: app-web
//! itself, the project's nginx in front of it (`proxy`), the update server with an updater key
//! (`update_server`), wrk, app-desktop runs, headless Chromium (`chromium`), and xtask (`tools`); PostgreSQL, Redis and the
//! other servers come from `local-servers`. app-web's and xtask's own test binaries, app-web's
//! benchmarks and the end-to-end tests in `tests/` all use them.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

pub mod chromium;
pub mod proxy;
pub mod tools;
pub mod update_server;
pub mod wrk;

/// A binary of the workspace as the running test's build made it: `target/<profile>/<name>`,
/// beside the `deps` folder the test binary runs from. `cargo xtask test` (and any
/// `cargo nextest run --workspace`) builds every member's binaries before the tests run.
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the running test's path");
    let profile = exe
        .parent()
        .and_then(Path::parent)
        .expect("the test runs from target/<profile>/deps");
    let path = profile.join(name);
    assert!(
        path.is_file(),
        "{} is missing: build the workspace's binaries first (`cargo xtask test`, or \
         `cargo build -p {name}` before running one package's tests)",
        path.display()
    );
    path
}

pub use local_servers::{Postgres, Redis};

/// The app-web binary on a free loopback port, killed on drop.
pub struct RunningBinary {
    pub child: Child,
    pub address: SocketAddr,
    logs: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl RunningBinary {
    /// Starts the binary with `args` and waits for its "listening" log line, which carries the port.
    pub fn start(args: &[&str]) -> Self {
        let mut child = Command::new(binary("app-web"))
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
        // Keep draining stdout so the child never blocks on a full pipe, and keep what it logs.
        let logs = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let kept = std::sync::Arc::clone(&logs);
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                kept.lock().unwrap().push(line);
            }
        });
        Self {
            child,
            address,
            logs,
        }
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

    /// The log lines written to stdout after the "listening" line, so far.
    pub fn logs(&self) -> Vec<String> {
        self.logs.lock().unwrap().clone()
    }
}

impl Drop for RunningBinary {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTP client for the tests: a hanging request fails the test instead of stalling it.
pub fn http_client() -> reqwest::Client {
    // reqwest's rustls takes the process's provider, as app-web's own client does.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(15))
        .no_proxy()
        .build()
        .unwrap()
}

/// GET `url`; a transport error fails the test.
pub async fn get(client: &reqwest::Client, url: impl reqwest::IntoUrl) -> reqwest::Response {
    client.get(url).send().await.expect("GET request")
}

/// The JSON body of the server's `/readyz`, whatever its status.
pub async fn readiness(client: &reqwest::Client, server: &RunningBinary) -> serde_json::Value {
    get(client, server.url("/readyz"))
        .await
        .json()
        .await
        .expect("/readyz answers JSON")
}

/// DELETE `url`; a transport error fails the test.
pub async fn delete(client: &reqwest::Client, url: impl reqwest::IntoUrl) -> reqwest::Response {
    client.delete(url).send().await.expect("DELETE request")
}

/// Runs the app-web binary to completion with `args`.
pub fn run_binary(args: &[&str]) -> std::process::Output {
    Command::new(binary("app-web"))
        .args(args)
        .env_remove("APP_WEB_DATABASE_URL")
        .env_remove("APP_WEB_REDIS_URL")
        .output()
        .expect("run app-web")
}

/// Fails the test with the command's status and both output streams unless it succeeded.
pub fn assert_success(output: &std::process::Output, what: &str) {
    assert!(
        output.status.success(),
        "{what} failed ({}):\n{}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A plain-HTTP request to `url` with `headers` and an optional body, past any proxy, through
/// ureq as xtask's client: the status (0 when nothing answered) and the body.
pub fn http(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> (u16, String) {
    let agent = ureq::Agent::config_builder()
        .timeout_global(Some(std::time::Duration::from_secs(10)))
        .http_status_as_error(false)
        .max_redirects(0)
        .max_redirects_will_error(false)
        .proxy(None)
        .build()
        .new_agent();
    let mut request = ureq::http::Request::builder().method(method).uri(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request
        .body(body.unwrap_or_default().as_bytes().to_vec())
        .expect("a valid request");
    match agent.run(request) {
        Ok(mut response) => (
            response.status().as_u16(),
            response.body_mut().read_to_string().unwrap_or_default(),
        ),
        Err(_) => (0, String::new()),
    }
}

/// GET `url` (see [`http`]).
pub fn http_get(url: &str) -> (u16, String) {
    http("GET", url, &[], None)
}

/// The passwords [`stack_postgres`] gives the stack's roles, as the secret files would.
pub const STACK_APP_PASSWORD: &str = "app-password-from-a-secret";
pub const STACK_MONITOR_PASSWORD: &str = "monitor-password-from-a-secret";

/// The repository's docker/ folder.
pub fn docker_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .join("docker")
}

/// PostgreSQL on the stack's postgresql.conf, password authentication over TCP, and every
/// script in docker/postgres/initdb run against it in order, as the official image runs them,
/// with the roles' passwords in files in `secrets`.
pub fn stack_postgres(secrets: &std::path::Path) -> Postgres {
    let postgres = Postgres::start_with(local_servers::PostgresOptions {
        config_file: Some(docker_dir().join("postgres/postgresql.conf")),
        host_auth: Some("scram-sha-256".into()),
        ..local_servers::PostgresOptions::default()
    })
    .expect("PostgreSQL starts on docker/postgres/postgresql.conf");
    let app_password = secrets.join("app_db_password");
    std::fs::write(&app_password, format!("{STACK_APP_PASSWORD}\n")).unwrap();
    let monitor_password = secrets.join("monitor_db_password");
    std::fs::write(&monitor_password, format!("{STACK_MONITOR_PASSWORD}\n")).unwrap();
    let mut scripts: Vec<_> = std::fs::read_dir(docker_dir().join("postgres/initdb"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    scripts.sort();
    for script in scripts {
        let output = Command::new("sh")
            .arg(&script)
            .env("APP_DB_PASSWORD_FILE", &app_password)
            .env("MONITOR_DB_PASSWORD_FILE", &monitor_password)
            .env("POSTGRES_USER", "postgres")
            .env("PGHOST", postgres.socket_dir())
            .env("PGPORT", postgres.port.to_string())
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{} failed: {}{}",
            script.display(),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    postgres
}

/// The workspace root, where `cargo xtask` runs.
pub fn workspace_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// `cargo xtask` with `args` and `env`, from the workspace root; signing keys and Tauri
/// configuration from the test's own environment are dropped first.
pub fn xtask(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    Command::new(cargo)
        .args(["run", "--quiet", "--locked", "--package", "xtask", "--"])
        .args(args)
        .env_remove("TAURI_CONFIG")
        .env_remove("TAURI_SIGNING_PRIVATE_KEY")
        .env_remove("TAURI_SIGNING_PUBLIC_KEY")
        .env_remove("APP_GPG_PRIVATE_KEY")
        // Run inside GitHub Actions, these would make a tag build or a GitHub release.
        .env_remove("GITHUB_REPOSITORY")
        .env_remove("GITHUB_REF_TYPE")
        .env_remove("GITHUB_REF_NAME")
        .envs(env.iter().copied())
        .current_dir(workspace_root())
        .output()
        .expect("run cargo xtask")
}

/// A minidump of the running process `child`, written by minidump-writer through ptrace (the
/// tests run as root); the process is killed afterwards either way.
#[cfg(target_os = "linux")]
pub fn minidump_of(child: &mut Child) -> Vec<u8> {
    let pid = child.id() as i32;
    let mut dump = std::io::Cursor::new(Vec::new());
    let written =
        minidump_writer::minidump_writer::MinidumpWriterConfig::new(pid, pid).write(&mut dump);
    let _ = child.kill();
    let _ = child.wait();
    written.expect("minidump-writer dumps the process (it needs ptrace: run as root)");
    dump.into_inner()
}

/// A new updater key pair in `dir` (made by `cargo xtask sign keygen` with `password`): the
/// public key's text and the secret key's path.
pub fn updater_keys(dir: &std::path::Path, password: &str) -> (String, std::path::PathBuf) {
    let made = xtask(
        &["sign", "keygen", "--out", dir.to_str().unwrap()],
        &[("TAURI_SIGNING_PRIVATE_KEY_PASSWORD", password)],
    );
    assert_success(&made, "sign keygen");
    let public_key = std::fs::read_to_string(dir.join("updater.key.pub")).unwrap();
    (public_key.trim().to_owned(), dir.join("updater.key"))
}

/// One run of app-desktop under Xvfb with its own settings, data and cache folders under
/// `home`, `env` on top, and stderr in a log file there; killed on drop.
pub struct DesktopRun {
    pub child: Child,
    log: std::path::PathBuf,
}

impl DesktopRun {
    pub fn start(
        binary: &std::path::Path,
        xvfb: &local_servers::Xvfb,
        home: &std::path::Path,
        env: &[(&str, &str)],
    ) -> Self {
        Self::start_command(Command::new(binary), xvfb, home, env)
    }

    /// [`DesktopRun::start`] of `command` as given, e.g. the app run in a network namespace.
    pub fn start_command(
        mut command: Command,
        xvfb: &local_servers::Xvfb,
        home: &std::path::Path,
        env: &[(&str, &str)],
    ) -> Self {
        std::fs::create_dir_all(home).unwrap();
        let log = home.join(format!(
            "app-desktop-{}.log",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        let program = command.get_program().to_owned();
        let child = command
            .env("DISPLAY", xvfb.display())
            .env("WEBKIT_DISABLE_COMPOSITING_MODE", "1")
            .env("XDG_CONFIG_HOME", home.join("config"))
            .env("XDG_DATA_HOME", home.join("data"))
            .env("XDG_CACHE_HOME", home.join("cache"))
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap_or_else(|err| panic!("start {}: {err}", program.display()));
        Self { child, log }
    }

    /// What the app wrote to stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until `ready` holds, failing with the app's log after `limit`.
    pub fn wait(&self, limit: std::time::Duration, what: &str, ready: impl FnMut() -> bool) {
        if let Err(err) = local_servers::wait_for(limit, what, ready) {
            panic!("{err}; the app's log:\n{}", self.log());
        }
    }
}

impl Drop for DesktopRun {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
