//! Logging: JSON lines on stdout by default, filtered by `APP_WEB_LOG`. Commands whose stdout
//! is their answer (`backup list --json`, ...) log to stderr instead.

use tracing_subscriber::EnvFilter;

use crate::config::{LogConfig, LogFormat};

/// Installs the global subscriber. A filter that does not parse falls back to `info` and says so,
/// rather than leaving the service without logs.
pub fn init(config: &LogConfig, to_stderr: bool) {
    let (filter, filter_error) = match EnvFilter::try_new(&config.filter) {
        Ok(filter) => (filter, None),
        Err(err) => (EnvFilter::new("info"), Some(err)),
    };
    let writer =
        tracing_subscriber::fmt::writer::BoxMakeWriter::new(move || -> Box<dyn std::io::Write> {
            if to_stderr {
                Box::new(std::io::stderr())
            } else {
                Box::new(std::io::stdout())
            }
        });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    match config.format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .init(),
        LogFormat::Pretty => builder.init(),
    }
    if let Some(err) = filter_error {
        tracing::warn!(
            filter = %config.filter,
            error = %err,
            "log filter does not parse, logging at info; fix APP_WEB_LOG or --log-filter"
        );
    }
}
