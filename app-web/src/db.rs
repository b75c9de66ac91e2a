//! PostgreSQL: the connection pool and its settings, and the migrations built into the binary.

use std::time::Duration;

use anyhow::Context;
use clap::Args;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

/// The migrations in `app-web/migrations`, compiled in.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Database settings. The pool opens connections lazily, so app-web starts (and reports itself
/// not ready) while PostgreSQL is still coming up.
#[derive(Debug, Clone, Args)]
pub struct DatabaseConfig {
    /// PostgreSQL URL, e.g. postgres://app@127.0.0.1/app; without it the notes API answers 503
    #[arg(
        long,
        env = "APP_WEB_DATABASE_URL",
        hide_env_values = true,
        global = true
    )]
    pub database_url: Option<String>,

    /// Read the PostgreSQL URL from this file (for secrets mounted as files)
    #[arg(
        long,
        env = "APP_WEB_DATABASE_URL_FILE",
        global = true,
        conflicts_with = "database_url"
    )]
    pub database_url_file: Option<std::path::PathBuf>,

    /// Read the database password from this file; it replaces any password in the URL, so
    /// the URL itself can stay in plain configuration
    #[arg(long, env = "APP_WEB_DATABASE_PASSWORD_FILE", global = true)]
    pub database_password_file: Option<std::path::PathBuf>,

    /// Connect through PgBouncer in transaction mode: send none of the startup options it
    /// refuses (statement_timeout must then be set on the role, e.g. `ALTER ROLE app SET
    /// statement_timeout = '5s'`). sqlx's prepared statements need PgBouncer 1.21 or newer with
    /// max_prepared_statements above 0. Migrations cannot run this way.
    #[arg(long, env = "APP_WEB_DB_PGBOUNCER", global = true)]
    pub db_pgbouncer: bool,

    /// Most connections the pool opens; keep the sum over replicas below PostgreSQL's max_connections
    #[arg(
        long,
        env = "APP_WEB_DB_MAX_CONNECTIONS",
        default_value_t = 10,
        global = true
    )]
    pub db_max_connections: u32,

    /// Connections the pool keeps open when idle
    #[arg(
        long,
        env = "APP_WEB_DB_MIN_CONNECTIONS",
        default_value_t = 0,
        global = true
    )]
    pub db_min_connections: u32,

    /// Milliseconds a request waits for a free connection before it is answered 503
    #[arg(
        long,
        env = "APP_WEB_DB_ACQUIRE_TIMEOUT_MS",
        default_value_t = 2000,
        global = true
    )]
    pub db_acquire_timeout_ms: u64,

    /// Milliseconds PostgreSQL lets one statement run before cancelling it (statement_timeout)
    #[arg(
        long,
        env = "APP_WEB_DB_STATEMENT_TIMEOUT_MS",
        default_value_t = 5000,
        global = true
    )]
    pub db_statement_timeout_ms: u64,

    /// Apply pending migrations when serving starts (several replicas may do so at once: an
    /// advisory lock makes them take turns)
    #[arg(long, env = "APP_WEB_MIGRATE_ON_START", global = true)]
    pub migrate_on_start: bool,
}

impl DatabaseConfig {
    /// The configured URL, from the flag or from the file it names.
    pub fn url(&self) -> anyhow::Result<Option<String>> {
        crate::cli::value_or_file(
            self.database_url.as_deref(),
            self.database_url_file.as_deref(),
            "database URL",
        )
    }
}

/// The connection settings from the configuration, or `None` when no database is configured.
pub fn connect_options(config: &DatabaseConfig) -> anyhow::Result<Option<PgConnectOptions>> {
    let Some(url) = config.url()? else {
        return Ok(None);
    };
    let mut options: PgConnectOptions = url.parse().context(
        "the database URL does not parse; expected postgres://user[:password]@host[:port]/database",
    )?;
    if let Some(password) = crate::cli::value_or_file(
        None,
        config.database_password_file.as_deref(),
        "database password",
    )? {
        options = options.password(&password);
    }
    options = options.application_name("app-web");
    if config.db_pgbouncer {
        // PgBouncer answers "unsupported startup parameter" to both.
        options = options.extra_float_digits(None);
    } else {
        options = options.options([(
            "statement_timeout",
            config.db_statement_timeout_ms.to_string(),
        )]);
    }
    Ok(Some(options))
}

/// A lazily connecting pool, or `None` when no database is configured.
pub fn connect(config: &DatabaseConfig) -> anyhow::Result<Option<PgPool>> {
    let Some(options) = connect_options(config)? else {
        return Ok(None);
    };
    let pool = PgPoolOptions::new()
        .max_connections(config.db_max_connections)
        .min_connections(config.db_min_connections)
        .acquire_timeout(Duration::from_millis(config.db_acquire_timeout_ms))
        // A connection the server dropped (restart, failover) is found out before it is used.
        .test_before_acquire(true)
        .connect_lazy_with(options);
    Ok(Some(pool))
}

/// Fails when migrations would go through PgBouncer: its transaction mode cannot hold the
/// session-level advisory lock that keeps replicas from migrating at once.
pub fn check_can_migrate(config: &DatabaseConfig) -> anyhow::Result<()> {
    anyhow::ensure!(
        !config.db_pgbouncer,
        "migrations cannot run through PgBouncer (--db-pgbouncer): its transaction mode does not \
         keep the advisory lock that serialises replicas; point the migrating process at \
         PostgreSQL itself"
    );
    Ok(())
}

/// Applies pending migrations. sqlx holds a PostgreSQL advisory lock while it migrates, so
/// replicas that start together apply each migration once.
pub async fn migrate(pool: &PgPool) -> anyhow::Result<()> {
    MIGRATOR
        .run(pool)
        .await
        .context("apply database migrations")?;
    tracing::info!(
        migrations = MIGRATOR.iter().count(),
        "database schema is up to date"
    );
    Ok(())
}
