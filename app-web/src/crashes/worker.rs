//! The background worker: takes pending reports one at a time, symbolicates them and stores
//! the stack and signature. Woken by each upload and each symbol upload, and every
//! [`POLL`] in case another replica stored the report.

use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::PgPool;

use super::Crashes;
use super::store;

/// How often the worker looks at the queue when nothing wakes it.
pub const POLL: Duration = Duration::from_secs(30);

/// Symbolication time per report, a histogram in seconds.
pub const SYMBOLICATION_SECONDS: &str = "app_web_crash_symbolication_seconds";
/// Reports processed, by result (done, retry, failed).
pub const PROCESSED: &str = "app_web_crash_reports_processed_total";

/// Runs until the process ends.
pub fn spawn(pool: PgPool, crashes: Arc<Crashes>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            match drain(&pool, &crashes).await {
                Ok(0) => {}
                Ok(count) => tracing::debug!(count, "crash reports processed"),
                Err(err) => tracing::warn!(error = %err, "crash report queue not read"),
            }
            let _ = tokio::time::timeout(POLL, crashes.wake.notified()).await;
        }
    })
}

/// Processes pending reports until none is left; returns how many it took.
pub async fn drain(pool: &PgPool, crashes: &Crashes) -> Result<usize, sqlx::Error> {
    let mut count = 0;
    while let Some(claimed) = store::claim(pool).await? {
        count += 1;
        let path = crashes.minidump_path(&claimed.minidump_name);
        let started = Instant::now();
        let result = match tokio::fs::read(&path).await {
            Ok(bytes) => crashes.symbolicator.process(&bytes).await,
            Err(err) => Err(anyhow::anyhow!("read {}: {err}", path.display())),
        };
        match result {
            Ok(processed) => {
                metrics::histogram!(SYMBOLICATION_SECONDS).record(started.elapsed().as_secs_f64());
                store::finish(pool, claimed.id, &processed).await?;
                metrics::counter!(PROCESSED, "result" => "done").increment(1);
                tracing::info!(
                    report = %claimed.id,
                    signature = %processed.signature(),
                    missing_symbols = processed.missing_modules.len(),
                    "crash report symbolicated"
                );
            }
            Err(err) => {
                let error = format!("{err:#}");
                store::fail(pool, &claimed, &error).await?;
                let result = if claimed.attempts >= store::MAX_ATTEMPTS {
                    "failed"
                } else {
                    "retry"
                };
                metrics::counter!(PROCESSED, "result" => result).increment(1);
                tracing::warn!(report = %claimed.id, error = %error, result, "crash report not symbolicated");
            }
        }
    }
    Ok(count)
}
