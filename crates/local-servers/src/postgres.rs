//! A PostgreSQL server in a temporary folder, from the newest version of Debian's packages.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::Context;

use crate::{free_port, is_root, wait_for, wait_until_up};

/// How to start the server beyond the defaults (trust authentication, `postgres` superuser,
/// 127.0.0.1 on a free port, a unix socket in [`Postgres::socket_dir`]).
#[derive(Debug, Clone, Default)]
pub struct PostgresOptions {
    /// A `postgresql.conf` to load (a copy of it, so the server's user can read it wherever the
    /// original lives); the listen address, port and socket folder still come from here.
    pub config_file: Option<PathBuf>,
    /// Further `-c name=value` settings, applied after the config file.
    pub settings: Vec<(String, String)>,
    /// Authentication over TCP, e.g. `scram-sha-256` [default: trust]; the unix socket always
    /// trusts, so [`Postgres::psql`] keeps working.
    pub host_auth: Option<String>,
}

/// A PostgreSQL server in a temporary folder, stopped on drop. PostgreSQL refuses to run as
/// root, so when the caller is root the server runs as the `postgres` user the package created.
pub struct Postgres {
    pub port: u16,
    folder: tempfile::TempDir,
    options: PostgresOptions,
    server: Option<Child>,
}

/// The folder of the newest PostgreSQL server installed from Debian's packages.
fn bin_dir() -> anyhow::Result<PathBuf> {
    let root = Path::new("/usr/lib/postgresql");
    let entries = std::fs::read_dir(root).with_context(|| {
        format!(
            "PostgreSQL is not installed ({} is missing); run `cargo xtask setup`",
            root.display()
        )
    })?;
    let newest = entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .max()
        .with_context(|| format!("no PostgreSQL version under {}", root.display()))?;
    Ok(root.join(newest.to_string()).join("bin"))
}

fn command(program: &str) -> anyhow::Result<Command> {
    let path = bin_dir()?.join(program);
    Ok(if is_root() {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(path);
        command
    } else {
        Command::new(path)
    })
}

/// Runs `program` to completion, failing with its output when it fails.
fn run(mut command: Command, what: &str) -> anyhow::Result<String> {
    let output = command.output().with_context(|| format!("run {what}"))?;
    anyhow::ensure!(
        output.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

impl Postgres {
    pub fn start() -> anyhow::Result<Self> {
        Self::start_with(PostgresOptions::default())
    }

    pub fn start_with(options: PostgresOptions) -> anyhow::Result<Self> {
        let folder = tempfile::Builder::new()
            .prefix("local-postgres-")
            .tempdir()
            .context("create a folder for PostgreSQL")?;
        let socket_dir = folder.path().join("socket");
        std::fs::create_dir(&socket_dir).context("create the socket folder")?;
        if let Some(config) = &options.config_file {
            std::fs::copy(config, folder.path().join("postgresql.conf"))
                .with_context(|| format!("copy {}", config.display()))?;
        }
        // Others may pass through to the socket folder (containers connect there), not into
        // the data folder, which initdb makes private.
        set_mode(folder.path(), 0o755)?;
        set_mode(&socket_dir, 0o755)?;
        if is_root() {
            let mut chown = Command::new("chown");
            chown.args(["-R", "postgres:postgres"]).arg(folder.path());
            run(chown, "chown the PostgreSQL folder to postgres")?;
        }
        let mut initdb = command("initdb")?;
        let host_auth = options.host_auth.as_deref().unwrap_or("trust");
        initdb
            .args([
                "--auth-local=trust",
                &format!("--auth-host={host_auth}"),
                "--username=postgres",
                "--encoding=UTF8",
                "--no-sync",
                "-D",
            ])
            .arg(folder.path().join("db"));
        run(initdb, "initdb")?;
        let mut postgres = Self {
            port: free_port()?,
            folder,
            options,
            server: None,
        };
        postgres.resume()?;
        Ok(postgres)
    }

    /// A client program (pg_dump, pg_restore, psql) of the server's version.
    pub fn client_program(program: &str) -> anyhow::Result<PathBuf> {
        Ok(bin_dir()?.join(program))
    }

    /// A URL for TCP on 127.0.0.1, as the `postgres` superuser.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// The folder holding the server's unix socket (`.s.PGSQL.<port>`).
    pub fn socket_dir(&self) -> PathBuf {
        self.folder.path().join("socket")
    }

    fn data_dir(&self) -> PathBuf {
        self.folder.path().join("db")
    }

    fn is_ready(&self) -> bool {
        accepts_connections(&self.socket_dir(), self.port)
    }

    /// Starts (or restarts) the server and waits until it accepts connections.
    pub fn resume(&mut self) -> anyhow::Result<()> {
        anyhow::ensure!(self.server.is_none(), "PostgreSQL is already running");
        let mut postgres = command("postgres")?;
        postgres.arg("-D").arg(self.data_dir());
        if self.options.config_file.is_some() {
            let config = self.folder.path().join("postgresql.conf");
            postgres
                .arg("-c")
                .arg(format!("config_file={}", config.display()));
        }
        postgres
            .args(["-c", &format!("port={}", self.port)])
            .args(["-c", "listen_addresses=127.0.0.1"])
            .arg("-c")
            .arg(format!(
                "unix_socket_directories={}",
                self.socket_dir().display()
            ))
            .args(["-c", "fsync=off"]);
        for (name, value) in &self.options.settings {
            postgres.arg("-c").arg(format!("{name}={value}"));
        }
        let log = std::fs::File::create(self.folder.path().join("server.log"))
            .context("create the PostgreSQL log")?;
        let server = postgres
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .context("start postgres")?;
        let (socket_dir, port) = (self.socket_dir(), self.port);
        let up = wait_until_up(
            self.server.insert(server),
            Duration::from_secs(30),
            "PostgreSQL to accept connections",
            || accepts_connections(&socket_dir, port),
        );
        up.with_context(|| format!("PostgreSQL's log:\n{}", self.log()))
    }

    /// What the server has logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.folder.path().join("server.log")).unwrap_or_default()
    }

    /// Runs `sql` through psql on the unix socket and returns its unaligned output.
    pub fn psql(&self, sql: &str) -> anyhow::Result<String> {
        self.psql_in("postgres", sql)
    }

    /// Runs `sql` through psql in `database`, as the superuser.
    pub fn psql_in(&self, database: &str, sql: &str) -> anyhow::Result<String> {
        let mut psql = Command::new(bin_dir()?.join("psql"));
        psql.arg("-h")
            .arg(self.socket_dir())
            .args([
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
                "-d",
                database,
            ])
            .args(["-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql]);
        run(psql, "psql")
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
            let _ = wait_for(Duration::from_secs(30), "PostgreSQL to stop", || {
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

/// Whether the server on `socket_dir` and `port` accepts connections (pg_isready).
fn accepts_connections(socket_dir: &Path, port: u16) -> bool {
    bin_dir().is_ok_and(|dir| {
        Command::new(dir.join("pg_isready"))
            .arg("-h")
            .arg(socket_dir)
            .args(["-p", &port.to_string(), "-q"])
            .status()
            .is_ok_and(|status| status.success())
    })
}

fn set_mode(path: &Path, mode: u32) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("chmod {}", path.display()))
}
