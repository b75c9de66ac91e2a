//! The shutdown signal: SIGTERM or SIGINT (Ctrl-C elsewhere), for `serve` and `backup schedule`.

use std::future::Future;

use anyhow::Context;

/// A future that completes on SIGTERM or SIGINT (Ctrl-C). The handlers are installed here,
/// before the future is first polled, so a signal that comes right after start-up (say, from a
/// supervisor as soon as "listening" is logged) is caught instead of killing the process.
#[cfg(unix)]
pub fn shutdown_signal() -> anyhow::Result<impl Future<Output = ()> + Send + 'static> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = signal(SignalKind::terminate()).context("listen for SIGTERM")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("listen for SIGINT")?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => tracing::info!(signal = "SIGINT", "signal received"),
            _ = terminate.recv() => tracing::info!(signal = "SIGTERM", "signal received"),
        }
    })
}

/// A future that completes on Ctrl-C.
#[cfg(not(unix))]
pub fn shutdown_signal() -> anyhow::Result<impl Future<Output = ()> + Send + 'static> {
    Ok(async {
        if tokio::signal::ctrl_c().await.is_ok() {
            tracing::info!(signal = "Ctrl-C", "signal received");
        } else {
            std::future::pending::<()>().await;
        }
    })
}
