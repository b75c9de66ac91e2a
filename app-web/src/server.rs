//! Serving with graceful shutdown: on a signal the listener closes, `/readyz` turns 503 and
//! in-flight requests get a grace period to finish.

use std::future::Future;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use tokio::net::TcpListener;

use crate::state::AppState;

/// Serves `router` on `listener` until `shutdown` completes, then waits up to `grace` for
/// in-flight requests. Returns an error when the grace period runs out first.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
    grace: Duration,
) -> anyhow::Result<()> {
    let address = listener
        .local_addr()
        .context("read the listening address")?;
    tracing::info!(%address, version = env!("CARGO_PKG_VERSION"), "listening");

    let (stopping_tx, stopping_rx) = tokio::sync::oneshot::channel::<()>();
    // Connection info gives the rate limiter each client's address.
    let service = router.into_make_service_with_connect_info::<std::net::SocketAddr>();
    let server = axum::serve(listener, service).with_graceful_shutdown(async move {
        shutdown.await;
        state.start_draining();
        tracing::info!(
            grace_secs = grace.as_secs(),
            "shutting down, finishing in-flight requests"
        );
        let _ = stopping_tx.send(());
    });
    let grace_expired = async move {
        if stopping_rx.await.is_ok() {
            tokio::time::sleep(grace).await;
        } else {
            // The server ended without a shutdown signal; let its own result decide.
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        result = server.into_future() => {
            result.context("serve HTTP")?;
            tracing::info!("stopped");
            Ok(())
        }
        () = grace_expired => {
            anyhow::bail!("requests were still running {}s after the shutdown signal; raise --shutdown-grace-secs if they need longer", grace.as_secs())
        }
    }
}
