//! The retention job: sums each finished day (UTC, by time of receipt) into
//! `analytics_daily`, then deletes raw events older than the retention period and salts of
//! earlier days. Runs on a timer inside `app-web serve` and as `app-web analytics purge`.

use std::time::Duration;

use sqlx::PgPool;

/// What one run did (or, with `dry_run`, would do).
#[derive(Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Purge {
    /// Days summed into the daily table in this run.
    pub days_rolled_up: u64,
    /// Raw events deleted (or, in a dry run, that would be).
    pub events_purged: u64,
    /// Salts of earlier days deleted.
    pub salts_deleted: u64,
}

/// Sums finished days not summed yet, then purges events received more than `retention`
/// ago, in one transaction. A dry run reports the counts and changes nothing.
pub async fn run(pool: &PgPool, retention: Duration, dry_run: bool) -> Result<Purge, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let finished_days = "SELECT DISTINCT (received_at AT TIME ZONE 'UTC')::date AS day \
        FROM analytics_events \
        WHERE received_at < date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' \
        EXCEPT SELECT day FROM analytics_rollups";
    let retention_secs = retention.as_secs_f64();
    let purge = if dry_run {
        let (days,): (i64,) = sqlx::query_as(&format!("SELECT count(*) FROM ({finished_days}) d"))
            .fetch_one(&mut *tx)
            .await?;
        let (events,): (i64,) = sqlx::query_as(
            "SELECT count(*) FROM analytics_events \
             WHERE received_at < now() - make_interval(secs => $1)",
        )
        .bind(retention_secs)
        .fetch_one(&mut *tx)
        .await?;
        let (salts,): (i64,) = sqlx::query_as(
            "SELECT count(*) FROM analytics_salts WHERE day < (now() AT TIME ZONE 'UTC')::date",
        )
        .fetch_one(&mut *tx)
        .await?;
        Purge {
            days_rolled_up: days as u64,
            events_purged: events as u64,
            salts_deleted: salts as u64,
        }
    } else {
        let days = sqlx::query(&format!(
            "WITH days AS ({finished_days}), \
             summed AS (\
                INSERT INTO analytics_daily \
                    (day, app, app_version, name, events, sessions, users, crashed_sessions) \
                SELECT (received_at AT TIME ZONE 'UTC')::date, app, app_version, name, count(*), \
                       count(DISTINCT session_id), count(DISTINCT user_hash), \
                       count(DISTINCT session_id) FILTER (WHERE EXISTS (\
                           SELECT 1 FROM crash_reports c \
                           WHERE c.product = e.app AND c.session_id = e.session_id)) \
                FROM analytics_events e \
                WHERE (received_at AT TIME ZONE 'UTC')::date IN (SELECT day FROM days) \
                GROUP BY 1, 2, 3, 4 \
                ON CONFLICT DO NOTHING) \
             INSERT INTO analytics_rollups (day) SELECT day FROM days"
        ))
        .execute(&mut *tx)
        .await?
        .rows_affected();
        let events = sqlx::query(
            "DELETE FROM analytics_events WHERE received_at < now() - make_interval(secs => $1)",
        )
        .bind(retention_secs)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        let salts =
            sqlx::query("DELETE FROM analytics_salts WHERE day < (now() AT TIME ZONE 'UTC')::date")
                .execute(&mut *tx)
                .await?
                .rows_affected();
        Purge {
            days_rolled_up: days,
            events_purged: events,
            salts_deleted: salts,
        }
    };
    if dry_run {
        tx.rollback().await?;
    } else {
        tx.commit().await?;
    }
    Ok(purge)
}

/// Runs the job every `every` until the process ends, logging what each run did.
pub fn spawn(pool: PgPool, retention: Duration, every: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            match run(&pool, retention, false).await {
                Ok(done) if done == Purge::default() => {}
                Ok(done) => tracing::info!(
                    days_rolled_up = done.days_rolled_up,
                    events_purged = done.events_purged,
                    salts_deleted = done.salts_deleted,
                    "analytics retention"
                ),
                Err(err) => tracing::warn!(error = %err, "analytics retention job failed"),
            }
        }
    })
}
