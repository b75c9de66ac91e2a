//! Privacy-respecting usage analytics: batches of events from the desktop app (after the user
//! said yes) and the web UI (unless the browser sends Do Not Track or Global Privacy Control),
//! stored without client addresses, user agents or device ids; unique users counted through a
//! salted hash whose salt changes every day; raw events purged after a retention period, daily
//! sums kept.

pub mod api;
pub mod events;
pub mod retention;

use clap::Args;

/// Analytics settings.
#[derive(Debug, Clone, Args)]
pub struct AnalyticsConfig {
    /// Days raw analytics events are kept; older ones are purged, their daily sums stay
    #[arg(
        long,
        env = "APP_WEB_ANALYTICS_RETENTION_DAYS",
        default_value_t = 90,
        value_parser = clap::value_parser!(u32).range(1..=3650),
        global = true
    )]
    pub analytics_retention_days: u32,

    /// Seconds between runs of the job that sums finished days and purges expired events
    #[arg(
        long,
        env = "APP_WEB_ANALYTICS_PURGE_INTERVAL_SECS",
        default_value_t = 3600,
        value_parser = clap::value_parser!(u64).range(1..),
        global = true
    )]
    pub analytics_purge_interval_secs: u64,
}

impl Default for AnalyticsConfig {
    fn default() -> Self {
        Self {
            analytics_retention_days: 90,
            analytics_purge_interval_secs: 3600,
        }
    }
}

impl AnalyticsConfig {
    /// How long raw events are kept.
    pub fn retention(&self) -> std::time::Duration {
        std::time::Duration::from_secs(u64::from(self.analytics_retention_days) * 86_400)
    }
}
