//! `serve`'s wiring: settings are checked, then the stores, background jobs, state and router
//! are built and served until a shutdown signal.

use std::time::Duration;

use anyhow::Context;

use crate::config::ServeConfig;

pub async fn serve(config: ServeConfig) -> anyhow::Result<()> {
    // Settings that can be refused are read before anything starts.
    let admin_token = config.admin_token()?;
    let publish_policy = crate::updates::config::PublishPolicy::from_config(&config.updates)?;
    let shutdown = crate::shutdown::shutdown_signal()?;
    let listen = config.listen.listen;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("listen on {listen}"))?;
    let ui = crate::ui::UiSource::from_config(config.ui_dir.as_deref())?;
    let metrics = crate::metrics::install()?;
    let pool = crate::db::connect(&config.database, &config.pool)?;
    if let Some(pool) = &pool {
        if config.migrate_on_start {
            crate::db::check_can_migrate(&config.pool)?;
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
            config.analytics.retention.retention(),
            Duration::from_secs(config.analytics.analytics_purge_interval_secs),
        );
    }
    let state = crate::state::AppState::new(ui)
        .with_crashes(crashes)
        .with_database(pool)
        .with_cache(cache)
        .with_rate_limit(config.rate_limit.clone())
        .with_admin_token(admin_token.as_deref())
        .with_publish_policy(publish_policy)
        .with_metrics(metrics);
    let router = crate::router::router(state.clone());
    crate::server::serve(listener, router, state, shutdown, config.shutdown_grace()).await
}
