//! Command-line flags and environment variables: every setting app-web reads lives here.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};

/// The application's web service.
///
/// Every setting is a flag and an environment variable; with none set, app-web listens on
/// 127.0.0.1:8080 and serves the UI built into the binary.
#[derive(Debug, Parser)]
#[command(name = "app-web", version, about, long_about = None)]
pub struct Cli {
    #[command(flatten)]
    pub config: Config,

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve HTTP until SIGTERM or SIGINT (the default)
    Serve,
    /// Apply the database migrations built into the binary, then exit
    Migrate,
    /// Ask the local server's /readyz and exit 0 when it is ready, 1 when not (for container
    /// health checks in images without a shell or curl)
    Healthcheck {
        /// Seconds to wait for an answer
        #[arg(long, default_value_t = 3)]
        timeout_secs: u64,
    },
    /// Encrypted database backups: run, list, restore, verify, prune, schedule, keygen
    Backup(Box<crate::backup::BackupArgs>),
    /// Analytics upkeep
    #[command(subcommand)]
    Analytics(AnalyticsCommand),
}

#[derive(Debug, Subcommand)]
pub enum AnalyticsCommand {
    /// Sum finished days into the daily table, then delete raw events older than
    /// --analytics-retention-days and the salts of earlier days (what `serve` does every
    /// --analytics-purge-interval-secs)
    Purge {
        /// Print what would be summed and deleted, and change nothing
        #[arg(long)]
        dry_run: bool,
    },
}

/// Settings shared by every command.
#[derive(Debug, Clone, Args)]
pub struct Config {
    /// Address and port to listen on
    #[arg(
        long,
        env = "APP_WEB_LISTEN",
        default_value = "127.0.0.1:8080",
        global = true
    )]
    pub listen: SocketAddr,

    /// Seconds that in-flight requests get to finish after SIGTERM or SIGINT
    #[arg(
        long,
        env = "APP_WEB_SHUTDOWN_GRACE_SECS",
        default_value_t = 30,
        global = true
    )]
    pub shutdown_grace_secs: u64,

    /// Serve the UI from this folder instead of the copy built into the binary
    #[arg(long, env = "APP_WEB_UI_DIR", global = true)]
    pub ui_dir: Option<PathBuf>,

    #[command(flatten)]
    pub log: LogConfig,

    #[command(flatten)]
    pub database: crate::db::DatabaseConfig,

    #[command(flatten)]
    pub redis: crate::cache::RedisConfig,

    #[command(flatten)]
    pub rate_limit: crate::rate_limit::RateLimitConfig,

    #[command(flatten)]
    pub crashes: crate::crashes::CrashConfig,

    #[command(flatten)]
    pub analytics: crate::analytics::AnalyticsConfig,

    #[command(flatten)]
    pub updates: crate::updates::config::UpdatesConfig,

    /// Read the admin API's bearer token from this file (publishing desktop releases, changing
    /// rollouts); without it the admin API answers 403
    #[arg(long, env = "APP_WEB_ADMIN_TOKEN_FILE", global = true)]
    pub admin_token_file: Option<PathBuf>,
}

/// Shortest admin token accepted: a guessable one would hand out releases.
const MIN_ADMIN_TOKEN_CHARS: usize = 32;

impl Config {
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
}

/// Logging settings.
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

impl Config {
    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_secs(self.shutdown_grace_secs)
    }
}

impl Cli {
    pub async fn run(self) -> anyhow::Result<()> {
        match self.command.unwrap_or(Command::Serve) {
            Command::Serve => serve(self.config).await,
            Command::Migrate => {
                crate::db::check_can_migrate(&self.config.database)?;
                let pool = crate::db::connect(&self.config.database)?.context(
                    "migrate needs a database: set --database-url or APP_WEB_DATABASE_URL",
                )?;
                crate::db::migrate(&pool).await
            }
            Command::Healthcheck { timeout_secs } => {
                crate::healthcheck::probe(self.config.listen, Duration::from_secs(timeout_secs))
                    .await
            }
            Command::Backup(backup) => {
                backup
                    .run(&self.config.database, &mut std::io::stdout())
                    .await
            }
            Command::Analytics(AnalyticsCommand::Purge { dry_run }) => {
                let pool = crate::db::connect(&self.config.database)?.context(
                    "analytics purge needs a database: set --database-url or APP_WEB_DATABASE_URL",
                )?;
                let retention = self.config.analytics.retention();
                let done = crate::analytics::retention::run(&pool, retention, dry_run).await?;
                let mut out = std::io::stdout();
                serde_json::to_writer(&mut out, &done)?;
                use std::io::Write;
                writeln!(out)?;
                Ok(())
            }
        }
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    // Settings that can be refused are read before anything starts.
    let admin_token = config.admin_token()?;
    let publish_policy = crate::updates::config::PublishPolicy::from_config(&config.updates)?;
    let shutdown = crate::server::shutdown_signal()?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("listen on {}", config.listen))?;
    let ui = crate::ui::UiSource::from_config(config.ui_dir.as_deref())?;
    let metrics = crate::metrics::install()?;
    let pool = crate::db::connect(&config.database)?;
    if let Some(pool) = &pool {
        if config.database.migrate_on_start {
            crate::db::check_can_migrate(&config.database)?;
            crate::db::migrate(pool).await?;
        }
    } else {
        tracing::warn!("no database configured (--database-url): the notes API answers 503");
    }
    let cache = crate::cache::Cache::new(&config.redis)?;
    let crashes = crate::crashes::Crashes::from_config(&config.crashes)?;
    if let Some(pool) = &pool {
        if let Some(crashes) = &crashes {
            crate::crashes::worker::spawn(pool.clone(), crashes.clone());
        }
        crate::analytics::retention::spawn(
            pool.clone(),
            config.analytics.retention(),
            Duration::from_secs(config.analytics.analytics_purge_interval_secs),
        );
    }
    let state = crate::routes::AppState::new(ui)
        .with_crashes(crashes)
        .with_database(pool)
        .with_cache(cache)
        .with_rate_limit(config.rate_limit.clone())
        .with_admin_token(admin_token.as_deref())
        .with_publish_policy(publish_policy)
        .with_metrics(metrics);
    let router = crate::routes::router(state.clone());
    crate::server::serve(listener, router, state, shutdown, config.shutdown_grace()).await
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
