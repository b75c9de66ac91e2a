//! Analytics settings: how long raw events are kept, and how often the upkeep job runs.

use clap::Args;

/// What `serve` reads: the retention, and how often its upkeep job runs.
#[derive(Debug, Clone, Args)]
pub struct AnalyticsConfig {
    #[command(flatten)]
    pub retention: RetentionConfig,

    /// Seconds between runs of the job that sums finished days and purges expired events
    #[arg(
        long,
        env = "APP_WEB_ANALYTICS_PURGE_INTERVAL_SECS",
        default_value_t = 3600,
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    pub analytics_purge_interval_secs: u64,
}

/// How long raw events are kept (`serve`'s upkeep job and `analytics purge`).
#[derive(Debug, Clone, Args)]
pub struct RetentionConfig {
    /// Days raw analytics events are kept; older ones are purged, their daily sums stay
    #[arg(
        long,
        env = "APP_WEB_ANALYTICS_RETENTION_DAYS",
        default_value_t = 90,
        value_parser = clap::value_parser!(u32).range(1..=3650)
    )]
    pub analytics_retention_days: u32,
}

impl RetentionConfig {
    /// How long raw events are kept.
    pub fn retention(&self) -> std::time::Duration {
        std::time::Duration::from_secs(u64::from(self.analytics_retention_days) * 86_400)
    }
}
