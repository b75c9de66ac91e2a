//! Every `APP_WEB_*` setting app-web's commands share, as flags and environment variables, in
//! groups that each command flattens only when it uses them. A feature's own settings live in
//! its folder's `config.rs` (backups, crash reports, analytics, updates).

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use ipnet::IpNet;

/// Everything `serve` (the default command) reads.
#[derive(Debug, Clone, Args)]
pub struct ServeConfig {
    #[command(flatten)]
    pub listen: ListenConfig,

    /// Seconds that in-flight requests get to finish after SIGTERM or SIGINT
    #[arg(long, env = "APP_WEB_SHUTDOWN_GRACE_SECS", default_value_t = 30)]
    pub shutdown_grace_secs: u64,

    /// Serve the UI from this folder instead of the copy built into the binary
    #[arg(long, env = "APP_WEB_UI_DIR")]
    pub ui_dir: Option<PathBuf>,

    /// Read the admin API's bearer token from this file (publishing desktop releases, changing
    /// rollouts); without it the admin API answers 403
    #[arg(long, env = "APP_WEB_ADMIN_TOKEN_FILE")]
    pub admin_token_file: Option<PathBuf>,

    /// Apply pending migrations when serving starts (several replicas may do so at once: an
    /// advisory lock makes them take turns)
    #[arg(long, env = "APP_WEB_MIGRATE_ON_START")]
    pub migrate_on_start: bool,

    #[command(flatten)]
    pub database: DatabaseConfig,

    #[command(flatten)]
    pub pool: PoolConfig,

    #[command(flatten)]
    pub redis: RedisConfig,

    #[command(flatten)]
    pub rate_limit: RateLimitConfig,

    #[command(flatten)]
    pub crashes: crate::crashes::config::CrashConfig,

    #[command(flatten)]
    pub analytics: crate::analytics::config::AnalyticsConfig,

    #[command(flatten)]
    pub updates: crate::updates::config::UpdatesConfig,
}

/// Shortest admin token accepted: a guessable one would hand out releases.
const MIN_ADMIN_TOKEN_CHARS: usize = 32;

impl ServeConfig {
    /// The admin token from its file, refused when empty or short.
    pub fn admin_token(&self) -> anyhow::Result<Option<String>> {
        let Some(token) = value_or_file(None, self.admin_token_file.as_deref(), "admin token")?
        else {
            return Ok(None);
        };
        anyhow::ensure!(
            token.chars().count() >= MIN_ADMIN_TOKEN_CHARS,
            "the admin token in {} has {} characters; use at least {MIN_ADMIN_TOKEN_CHARS} random ones (`cargo xtask docker secrets` makes one)",
            self.admin_token_file
                .as_deref()
                .unwrap_or(std::path::Path::new(""))
                .display(),
            token.chars().count()
        );
        Ok(Some(token))
    }

    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_secs(self.shutdown_grace_secs)
    }
}

/// Where app-web listens (and where `healthcheck` asks it).
#[derive(Debug, Clone, Args)]
pub struct ListenConfig {
    /// Address and port app-web listens on
    #[arg(long, env = "APP_WEB_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
}

/// Logging settings, which every command reads.
#[derive(Debug, Clone, Args)]
pub struct LogConfig {
    /// Log filter in tracing's EnvFilter syntax, e.g. `info` or `app_web=debug,tower_http=info`
    #[arg(
        long = "log-filter",
        env = "APP_WEB_LOG",
        default_value = "info",
        global = true
    )]
    pub filter: String,

    /// Log format: `json` lines for machines, `pretty` for a terminal
    #[arg(long = "log-format", env = "APP_WEB_LOG_FORMAT", value_enum, default_value_t = LogFormat::Json, global = true)]
    pub format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Json,
    Pretty,
}

/// A setting given directly, or read from the file another setting names (for secrets that
/// are mounted as files); surrounding whitespace in the file is dropped.
pub fn value_or_file(
    value: Option<&str>,
    file: Option<&std::path::Path>,
    what: &str,
) -> anyhow::Result<Option<String>> {
    if let Some(value) = value {
        return Ok(Some(value.to_owned()));
    }
    match file {
        None => Ok(None),
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("read the {what} from {}", path.display()))?;
            Ok(Some(text.trim().to_owned()))
        }
    }
}

/// Which database: its URL and password (serving, migrations, backups, analytics upkeep).
#[derive(Debug, Clone, Args)]
pub struct DatabaseConfig {
    /// PostgreSQL URL, e.g. postgres://app@127.0.0.1/app; without it the notes API answers 503
    #[arg(long, env = "APP_WEB_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,

    /// Read the PostgreSQL URL from this file (for secrets mounted as files)
    #[arg(
        long,
        env = "APP_WEB_DATABASE_URL_FILE",
        conflicts_with = "database_url"
    )]
    pub database_url_file: Option<std::path::PathBuf>,

    /// Read the database password from this file; it replaces any password in the URL, so
    /// the URL itself can stay in plain configuration
    #[arg(long, env = "APP_WEB_DATABASE_PASSWORD_FILE")]
    pub database_password_file: Option<std::path::PathBuf>,
}

impl DatabaseConfig {
    /// The configured URL, from the flag or from the file it names.
    pub fn url(&self) -> anyhow::Result<Option<String>> {
        value_or_file(
            self.database_url.as_deref(),
            self.database_url_file.as_deref(),
            "database URL",
        )
    }
}

/// The connection pool: how many connections, how long to wait for one, and PgBouncer. The
/// pool opens connections lazily, so app-web starts (and reports itself not ready) while
/// PostgreSQL is still coming up.
#[derive(Debug, Clone, Args)]
pub struct PoolConfig {
    /// Connect through PgBouncer in transaction mode: send none of the startup options it
    /// refuses (statement_timeout must then be set on the role, e.g. `ALTER ROLE app SET
    /// statement_timeout = '5s'`). sqlx's prepared statements need PgBouncer 1.21 or newer with
    /// max_prepared_statements above 0. Migrations cannot run this way.
    #[arg(long, env = "APP_WEB_DB_PGBOUNCER")]
    pub db_pgbouncer: bool,

    /// Most connections the pool opens; keep the sum over replicas below PostgreSQL's max_connections
    #[arg(long, env = "APP_WEB_DB_MAX_CONNECTIONS", default_value_t = 10)]
    pub db_max_connections: u32,

    /// Connections the pool keeps open when idle
    #[arg(long, env = "APP_WEB_DB_MIN_CONNECTIONS", default_value_t = 0)]
    pub db_min_connections: u32,

    /// Milliseconds a request waits for a free connection before it is answered 503
    #[arg(long, env = "APP_WEB_DB_ACQUIRE_TIMEOUT_MS", default_value_t = 2000)]
    pub db_acquire_timeout_ms: u64,

    /// Milliseconds PostgreSQL lets one statement run before cancelling it (statement_timeout)
    #[arg(long, env = "APP_WEB_DB_STATEMENT_TIMEOUT_MS", default_value_t = 5000)]
    pub db_statement_timeout_ms: u64,
}

/// Redis settings.
#[derive(Debug, Clone, Args)]
pub struct RedisConfig {
    /// Redis URL, e.g. redis://:password@127.0.0.1:6379/0; without it nothing is cached and
    /// rate limits are not enforced
    #[arg(long, env = "APP_WEB_REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<String>,

    /// Read the Redis URL from this file (for secrets mounted as files)
    #[arg(long, env = "APP_WEB_REDIS_URL_FILE", conflicts_with = "redis_url")]
    pub redis_url_file: Option<std::path::PathBuf>,

    /// Read the Redis password from this file; it replaces any password in the URL
    #[arg(long, env = "APP_WEB_REDIS_PASSWORD_FILE")]
    pub redis_password_file: Option<std::path::PathBuf>,

    /// Milliseconds one Redis call may take before it is given up and PostgreSQL answers alone
    #[arg(long, env = "APP_WEB_REDIS_TIMEOUT_MS", default_value_t = 250)]
    pub redis_timeout_ms: u64,

    /// Seconds a cached response lives
    #[arg(long, env = "APP_WEB_CACHE_TTL_SECS", default_value_t = 30)]
    pub cache_ttl_secs: u64,
}

impl RedisConfig {
    pub fn url(&self) -> anyhow::Result<Option<String>> {
        value_or_file(
            self.redis_url.as_deref(),
            self.redis_url_file.as_deref(),
            "Redis URL",
        )
    }
}

/// Per-client rate limits, and whose forwarded address is believed.
#[derive(Debug, Clone, Args)]
pub struct RateLimitConfig {
    /// Requests one client may make per minute to each API (notes, analytics events: a bucket
    /// each); 0 turns the limit off
    #[arg(long, env = "APP_WEB_RATE_LIMIT_PER_MINUTE", default_value_t = 600)]
    pub rate_limit_per_minute: u64,

    /// Reverse proxies whose forwarded client address is believed: addresses or CIDR ranges,
    /// comma-separated (e.g. the stack's nginx, 172.30.101.10). A request from one of them is
    /// counted under the first address of X-Forwarded-For, read from the right, that is not a
    /// trusted proxy; from anyone else under its own address, whatever headers it sends
    #[arg(
        long,
        env = "APP_WEB_TRUSTED_PROXIES",
        value_delimiter = ',',
        value_parser = parse_proxy
    )]
    pub trusted_proxies: Vec<IpNet>,
}

/// One `--trusted-proxies` entry: a CIDR range, or one address (a /32 or /128).
pub(crate) fn parse_proxy(text: &str) -> Result<IpNet, String> {
    let text = text.trim();
    let net = text
        .parse::<IpNet>()
        .or_else(|_| text.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| {
            format!("{text:?} is not an address or CIDR range such as 172.30.101.10 or 10.0.0.0/8")
        })?;
    if net.prefix_len() == 0 {
        return Err(format!(
            "{text:?} would trust every client to name its own address: name the proxies"
        ));
    }
    // Peers are compared in canonical form, so an IPv4-mapped entry is its IPv4 address.
    match net {
        IpNet::V6(v6) => match v6.addr().to_ipv4_mapped() {
            Some(v4) if v6.prefix_len() >= 96 => ipnet::Ipv4Net::new(v4, v6.prefix_len() - 96)
                .map(IpNet::V4)
                .map_err(|err| format!("{text:?}: {err}")),
            _ => Ok(net),
        },
        IpNet::V4(_) => Ok(net),
    }
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            rate_limit_per_minute: 600,
            trusted_proxies: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_wins_over_its_file_and_a_file_is_trimmed() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("secret");
        std::fs::write(&file, "postgres://a@b/c\n").unwrap();
        assert_eq!(
            value_or_file(Some("direct"), Some(&file), "URL")
                .unwrap()
                .as_deref(),
            Some("direct")
        );
        assert_eq!(
            value_or_file(None, Some(&file), "URL").unwrap().as_deref(),
            Some("postgres://a@b/c")
        );
        assert_eq!(value_or_file(None, None, "URL").unwrap(), None);
        let missing =
            value_or_file(None, Some(&dir.path().join("nope")), "database URL").unwrap_err();
        assert!(
            format!("{missing:#}").contains("read the database URL from"),
            "{missing:#}"
        );
    }
}
