//! PostgreSQL: the connection pool and the migrations built into the binary.

use std::time::Duration;

use anyhow::Context;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

use crate::config::{DatabaseConfig, PoolConfig};

/// The migrations in `app-web/migrations`, compiled in. Migrations this binary does not know,
/// applied by a newer version, are left alone rather than refused: after a rollback (or while
/// a deploy starts the new version beside this one) this version runs on the schema the newer
/// one expanded, which the expand/contract rule on the migrations keeps readable to it. A
/// known migration whose applied checksum differs is still refused.
pub static MIGRATOR: std::sync::LazyLock<sqlx::migrate::Migrator> =
    std::sync::LazyLock::new(|| {
        let mut migrator = sqlx::migrate!("./migrations");
        migrator.set_ignore_missing(true);
        migrator
    });

/// The connection settings from the configuration, or `None` when no database is configured.
pub fn connect_options(
    config: &DatabaseConfig,
    pool: &PoolConfig,
) -> anyhow::Result<Option<PgConnectOptions>> {
    let Some(url) = config.url()? else {
        return Ok(None);
    };
    let mut options: PgConnectOptions = url.parse().context(
        "the database URL does not parse; expected postgres://user[:password]@host[:port]/database",
    )?;
    if let Some(password) = crate::config::value_or_file(
        None,
        config.database_password_file.as_deref(),
        "database password",
    )? {
        options = options.password(&password);
    }
    options = options.application_name("app-web");
    if pool.db_pgbouncer {
        // PgBouncer answers "unsupported startup parameter" to both.
        options = options.extra_float_digits(None);
    } else {
        options = options.options([(
            "statement_timeout",
            pool.db_statement_timeout_ms.to_string(),
        )]);
    }
    Ok(Some(options))
}

/// A lazily connecting pool, or `None` when no database is configured.
pub fn connect(config: &DatabaseConfig, pool: &PoolConfig) -> anyhow::Result<Option<PgPool>> {
    let Some(options) = connect_options(config, pool)? else {
        return Ok(None);
    };
    let pool = PgPoolOptions::new()
        .max_connections(pool.db_max_connections)
        .min_connections(pool.db_min_connections)
        .acquire_timeout(Duration::from_millis(pool.db_acquire_timeout_ms))
        // A connection the server dropped (restart, failover) is found out before it is used.
        .test_before_acquire(true)
        .connect_lazy_with(options);
    Ok(Some(pool))
}

/// Fails when migrations would go through PgBouncer: its transaction mode cannot hold the
/// session-level advisory lock that keeps replicas from migrating at once.
pub fn check_can_migrate(pool: &PoolConfig) -> anyhow::Result<()> {
    anyhow::ensure!(
        !pool.db_pgbouncer,
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
