//! app-web over real sockets: the binary itself for health, readiness, the UI and SIGTERM, and
//! the library's `serve` for a request that is still running when shutdown starts.

use e2e as support;

use std::process::Command;
use std::time::Duration;

use axum::routing::get;
use support::RunningBinary;

#[tokio::test]
async fn health_readiness_info_and_ui_answer_over_a_real_socket() {
    let server = RunningBinary::start(&[]);
    let client = support::http_client();

    let healthz = support::get(&client, server.url("/healthz")).await;
    assert_eq!(healthz.status(), 200);
    assert_eq!(
        healthz.json::<serde_json::Value>().await.unwrap()["status"],
        "ok"
    );

    let readyz = support::get(&client, server.url("/readyz")).await;
    assert_eq!(readyz.status(), 200);
    assert_eq!(
        readyz.json::<serde_json::Value>().await.unwrap()["status"],
        "ready"
    );

    let info: serde_json::Value = support::get(&client, server.url("/api/info"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(info["version"], env!("CARGO_PKG_VERSION"));

    let index = support::get(&client, server.url("/")).await;
    assert_eq!(index.status(), 200);
    assert_eq!(index.headers()["content-type"], "text/html");
    let etag = index.headers()["etag"].clone();
    assert!(
        index
            .text()
            .await
            .unwrap()
            .contains("<script src=\"app.js\"")
    );

    let revalidated = client
        .get(server.url("/"))
        .header("if-none-match", etag)
        .send()
        .await
        .unwrap();
    assert_eq!(revalidated.status(), 304);

    let script = support::get(&client, server.url("/app.js")).await;
    assert_eq!(script.status(), 200);
    assert!(
        script.headers()["content-type"]
            .to_str()
            .unwrap()
            .contains("javascript")
    );

    let missing = support::get(&client, server.url("/no-such-file.txt")).await;
    assert_eq!(missing.status(), 404);
    let climbing = support::get(&client, server.url("/..%2fCargo.toml")).await;
    assert_eq!(climbing.status(), 404);
}

#[tokio::test]
async fn sigterm_stops_the_binary_cleanly() {
    let mut server = RunningBinary::start(&[]);
    let status = Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success());
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let exit = loop {
        if let Some(exit) = server.child.try_wait().unwrap() {
            break exit;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "app-web still running 10s after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(exit.success(), "app-web exited with {exit} after SIGTERM");
}

#[tokio::test]
async fn graceful_shutdown_lets_an_in_flight_request_finish() {
    let state = app_web::state::AppState::new(app_web::ui::UiSource::Embedded);
    let (entered_tx, entered_rx) = tokio::sync::oneshot::channel::<()>();
    let entered_tx = std::sync::Arc::new(std::sync::Mutex::new(Some(entered_tx)));
    let slow = get(move || {
        if let Some(tx) = entered_tx.lock().unwrap().take() {
            let _ = tx.send(());
        }
        async {
            tokio::time::sleep(Duration::from_millis(700)).await;
            "finished"
        }
    });
    let router = app_web::router::router(state.clone()).route("/slow", slow);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (shutdown_tx, shutdown_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app_web::server::serve(
        listener,
        router,
        state.clone(),
        async {
            let _ = shutdown_rx.await;
        },
        Duration::from_secs(5),
    ));

    let client = support::http_client();
    let in_flight = tokio::spawn(client.get(format!("http://{address}/slow")).send());
    entered_rx.await.expect("the slow handler started");
    shutdown_tx.send(()).unwrap();

    let response = in_flight
        .await
        .unwrap()
        .expect("in-flight request completes");
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "finished");
    assert!(
        state.is_draining(),
        "readiness turns to draining on shutdown"
    );
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .expect("server stops after the in-flight request")
        .unwrap()
        .expect("serve returns Ok");
    let refused = support::http_client()
        .get(format!("http://{address}/healthz"))
        .send()
        .await;
    assert!(refused.is_err(), "the listener is closed after shutdown");
}

#[tokio::test]
async fn readiness_reports_draining_during_shutdown() {
    let state = app_web::state::AppState::new(app_web::ui::UiSource::Embedded);
    state.start_draining();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let router = app_web::router::router(state);
    let server = tokio::spawn(async move { axum::serve(listener, router).await });
    let readyz = support::http_client()
        .get(format!("http://{address}/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(readyz.status(), 503);
    assert_eq!(
        readyz.json::<serde_json::Value>().await.unwrap()["status"],
        "draining"
    );
    server.abort();
}
