//! `backup schedule`: the long-running mode the compose stack's `backup` service runs. On
//! each cron tick it backs up, prunes after a success, and optionally runs a restore drill;
//! Prometheus reads how that went from `/metrics`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context;
use clap::Args;
use croner::Cron;
use croner::parser::{CronParser, Seconds};

use super::config::{DumpConfig, RestoreConfig, RetentionConfig, ScheduleConfig, StoreConfig};
use crate::config::DatabaseConfig;

/// Unix time of the last successful backup's end.
pub const LAST_SUCCESS: &str = "app_backup_last_success_timestamp_seconds";
/// How long the last successful backup took.
pub const LAST_DURATION: &str = "app_backup_last_duration_seconds";
/// Size of the last successful backup's encrypted file.
pub const LAST_SIZE: &str = "app_backup_last_size_bytes";
/// Backup runs by result (`success`, `failure`).
pub const RUNS: &str = "app_backup_runs_total";
/// 1 when the last restore drill matched its manifest, 0 when it did not or failed.
pub const LAST_VERIFY_SUCCESS: &str = "app_backup_last_verify_success";
/// Unix time of the last restore drill's end.
pub const LAST_VERIFY: &str = "app_backup_last_verify_timestamp_seconds";
/// Unix time of the next scheduled run.
pub const NEXT_RUN: &str = "app_backup_next_run_timestamp_seconds";

/// `backup schedule`: what a run, a prune and a drill read, and the schedule.
#[derive(Debug, Args)]
pub struct ScheduleArgs {
    #[command(flatten)]
    pub schedule: ScheduleConfig,
    #[command(flatten)]
    pub store: StoreConfig,
    #[command(flatten)]
    pub dump: DumpConfig,
    #[command(flatten)]
    pub restore: RestoreConfig,
    #[command(flatten)]
    pub retention: RetentionConfig,
    #[command(flatten)]
    pub database: DatabaseConfig,
}

pub fn parse_cron(pattern: &str) -> anyhow::Result<Cron> {
    CronParser::builder()
        .seconds(Seconds::Optional)
        .build()
        .parse(pattern)
        .map_err(|err| {
            anyhow::anyhow!(
                "the schedule {pattern:?} is not a cron expression ({err}); e.g. \"0 3 * * *\" \
                 for 03:00 UTC every day"
            )
        })
}

pub async fn schedule(args: &ScheduleArgs) -> anyhow::Result<()> {
    let cron = parse_cron(&args.schedule.cron)?;
    // Fail at start, not at the first tick, on settings a run would refuse.
    args.dump.recipients()?;
    let folder = super::archive::Folder::open(&args.store.dir()?)?;
    if args.schedule.verify {
        args.restore.identity_file()?;
    }
    let metrics = crate::metrics::install()?;
    describe_metrics();
    if let Some(newest) = folder.list()?.first() {
        let ended = newest.created_at.unix_timestamp() as f64 + newest.duration_seconds;
        metrics::gauge!(LAST_SUCCESS).set(ended);
        metrics::gauge!(LAST_DURATION).set(newest.duration_seconds);
        metrics::gauge!(LAST_SIZE).set(newest.sizes.artifact_bytes as f64);
    }
    let listener = tokio::net::TcpListener::bind(args.schedule.metrics_listen)
        .await
        .with_context(|| format!("listen on {} for metrics", args.schedule.metrics_listen))?;
    // /readyz answers while the schedule runs, for `app-web healthcheck` in the image.
    let router = axum::Router::new()
        .route(
            "/metrics",
            axum::routing::get(move || {
                let metrics = metrics.clone();
                async move { metrics.render() }
            }),
        )
        .route(
            "/readyz",
            axum::routing::get(|| async { axum::Json(serde_json::json!({"status": "ready"})) }),
        );
    tracing::info!(address = %listener.local_addr()?, "serving backup metrics");
    tokio::spawn(async move {
        if let Err(err) = axum::serve(listener, router).await {
            tracing::error!(error = %err, "the metrics server stopped");
        }
    });

    let stopping = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(tokio::sync::Notify::new());
    let signal = crate::shutdown::shutdown_signal()?;
    {
        let (stopping, stop) = (Arc::clone(&stopping), Arc::clone(&stop));
        tokio::spawn(async move {
            signal.await;
            stopping.store(true, Ordering::SeqCst);
            stop.notify_waiters();
        });
    }

    loop {
        let now = chrono::Utc::now();
        let next = cron
            .find_next_occurrence(&now, false)
            .with_context(|| format!("the schedule {:?} has no next time", args.schedule.cron))?;
        metrics::gauge!(NEXT_RUN).set(next.timestamp() as f64);
        tracing::info!(next = %next.to_rfc3339(), "next backup");
        let wait = (next - now).to_std().unwrap_or_default();
        let notified = stop.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if stopping.load(Ordering::SeqCst) {
            break;
        }
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = &mut notified => break,
        }
        // A started cycle runs to its end: stopping mid-dump would only waste it (an
        // interrupted backup leaves nothing listed, so it would be safe, just useless).
        cycle(args).await;
        if stopping.load(Ordering::SeqCst) {
            break;
        }
    }
    tracing::info!("backup schedule stopped");
    Ok(())
}

fn describe_metrics() {
    metrics::describe_gauge!(LAST_SUCCESS, "Unix time the last successful backup ended");
    metrics::describe_gauge!(LAST_DURATION, "Seconds the last successful backup took");
    metrics::describe_gauge!(
        LAST_SIZE,
        "Bytes of the last successful backup's encrypted file"
    );
    metrics::describe_counter!(RUNS, "Backup runs by result");
    metrics::describe_gauge!(LAST_VERIFY_SUCCESS, "1 when the last restore drill matched");
    metrics::describe_gauge!(LAST_VERIFY, "Unix time the last restore drill ended");
    metrics::describe_gauge!(NEXT_RUN, "Unix time of the next scheduled backup");
}

/// One tick: backup, then prune and verify when it succeeded. Failures are logged and
/// counted; the schedule goes on.
async fn cycle(args: &ScheduleArgs) {
    let manifest = match super::run::run_logged(&args.store, &args.dump, &args.database).await {
        Ok(manifest) => manifest,
        Err(_) => {
            // run_logged has logged why.
            metrics::counter!(RUNS, "result" => "failure").increment(1);
            return;
        }
    };
    metrics::counter!(RUNS, "result" => "success").increment(1);
    metrics::gauge!(LAST_SUCCESS).set(time::OffsetDateTime::now_utc().unix_timestamp() as f64);
    metrics::gauge!(LAST_DURATION).set(manifest.duration_seconds);
    metrics::gauge!(LAST_SIZE).set(manifest.sizes.artifact_bytes as f64);
    if args.schedule.prune
        && let Err(err) = super::prune_all(
            &args.store,
            &args.retention,
            &args.dump.prefix,
            false,
            &mut std::io::sink(),
        )
        .await
    {
        tracing::error!(error = format!("{err:#}"), "prune failed");
    }
    if args.schedule.verify {
        let matched = match super::restore::verify(
            &args.store,
            &args.restore,
            &args.database,
            &manifest.name,
        )
        .await
        {
            Ok(report) => {
                if report.matches() {
                    tracing::info!(backup = %report.backup, "{report}");
                } else {
                    tracing::error!(backup = %report.backup, "{report}");
                }
                report.matches()
            }
            Err(err) => {
                tracing::error!(error = format!("{err:#}"), "restore drill failed");
                false
            }
        };
        metrics::gauge!(LAST_VERIFY_SUCCESS).set(if matched { 1.0 } else { 0.0 });
        metrics::gauge!(LAST_VERIFY).set(time::OffsetDateTime::now_utc().unix_timestamp() as f64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_and_six_field_schedules_parse_and_nonsense_is_named() {
        parse_cron("0 3 * * *").unwrap();
        parse_cron("*/5 * * * * *").unwrap();
        let err = parse_cron("every day").unwrap_err();
        assert!(format!("{err:#}").contains("\"every day\""), "{err:#}");
    }
}
