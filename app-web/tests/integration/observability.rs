//! What operators see of a running app-web: Prometheus metrics per route template with
//! latency histograms and build information, and JSON access logs that carry the request id,
//! route, status and latency but nothing secret a request brought.

use e2e as support;

use std::time::Duration;

use local_servers::wait_for;
use support::RunningBinary;

/// GET `url`; the status.
fn get(url: &str) -> u16 {
    support::http_get(url).0
}

fn scrape(app: &RunningBinary) -> String {
    let (status, body) = support::http_get(&app.url("/metrics"));
    assert_eq!(status, 200, "GET /metrics failed: {body}");
    body
}

/// The value of the sample `name{labels}` whose labels include every pair in `labels`.
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .find(|line| {
            let Some(rest) = line.strip_prefix(name) else {
                return false;
            };
            (rest.starts_with('{') || rest.starts_with(' '))
                && labels
                    .iter()
                    .all(|(label, value)| rest.contains(&format!("{label}=\"{value}\"")))
        })
        .and_then(|line| line.rsplit(' ').next()?.parse().ok())
}

#[test]
fn metrics_count_and_time_requests_by_route_template() {
    let app = RunningBinary::start(&[]);
    for _ in 0..3 {
        assert_eq!(get(&app.url("/healthz")), 200);
    }
    assert_eq!(get(&app.url("/api/info")), 200);
    // Two different ids, one route: the label is the template, never the id.
    let id = "0b6f5c64-1d2f-4b1e-9a53-4a1f7d6e2c10";
    assert_eq!(get(&app.url(&format!("/api/notes/{id}"))), 503);
    assert_eq!(
        get(&app.url("/api/notes/6a0c1a51-8f0e-4b8e-8f7b-3d5e1f0a9b22")),
        503
    );

    let text = scrape(&app);
    let requests = |route: &str, status: &str| {
        sample(
            &text,
            "app_web_http_requests_total",
            &[("method", "GET"), ("route", route), ("status", status)],
        )
    };
    assert_eq!(requests("/healthz", "200"), Some(3.0), "{text}");
    assert_eq!(requests("/api/info", "200"), Some(1.0), "{text}");
    assert_eq!(requests("/api/notes/{id}", "503"), Some(2.0), "{text}");
    assert!(!text.contains(id), "an id became a label value:\n{text}");
    assert_eq!(
        sample(
            &text,
            "app_web_http_request_duration_seconds_count",
            &[("route", "/healthz")]
        ),
        Some(3.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            "app_web_http_request_duration_seconds_bucket",
            &[("route", "/healthz"), ("le", "+Inf")]
        ),
        Some(3.0),
        "a histogram, not a summary:\n{text}"
    );
    assert!(
        sample(&text, "app_web_http_requests_in_flight", &[]).is_some(),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            "app_web_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))]
        ),
        Some(1.0),
        "{text}"
    );
    assert!(
        text.contains("# HELP app_web_http_requests_total "),
        "{text}"
    );
}

#[test]
fn access_logs_are_json_lines_with_request_fields_and_no_secrets() {
    let app = RunningBinary::start(&[]);
    let (status, _) = support::http(
        "GET",
        &app.url("/api/info?password=pw-SECRET-1&token=tok-SECRET-2"),
        &[
            ("X-Request-ID", "req-observability-1"),
            ("Authorization", "Bearer bearer-SECRET-3"),
            ("Cookie", "session=cookie-SECRET-4"),
        ],
        None,
    );
    assert_eq!(status, 200);
    let (status, _) = support::http(
        "POST",
        &app.url("/api/notes"),
        &[("content-type", "application/json")],
        Some(r#"{"title": "t", "body": "password=body-SECRET-5"}"#),
    );
    assert_eq!(status, 503, "no database: the notes API answers 503");

    let mut access = None;
    wait_for(Duration::from_secs(10), "the access log lines", || {
        let logs = app.logs();
        access = logs
            .iter()
            .map(|line| serde_json::from_str::<serde_json::Value>(line).unwrap())
            .find(|record| record["request_id"] == "req-observability-1");
        access.is_some()
            && logs
                .iter()
                .any(|line| line.contains("\"route\":\"/api/notes\""))
    })
    .unwrap_or_else(|err| panic!("{err:#}: {:#?}", app.logs()));
    let access = access.unwrap();
    assert_eq!(access["message"], "request");
    assert_eq!(access["level"], "INFO");
    assert_eq!(access["route"], "/api/info");
    assert_eq!(access["method"], "GET");
    assert_eq!(access["status"], 200);
    assert!(access["latency_ms"].as_f64().unwrap() >= 0.0, "{access}");
    assert!(access["timestamp"].as_str().is_some(), "{access}");

    let logs = app.logs();
    for line in &logs {
        let record: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|err| panic!("log line {line:?} is not JSON: {err}"));
        assert!(
            record["timestamp"].is_string() && record["level"].is_string(),
            "{line}"
        );
        assert!(
            !line.contains("SECRET"),
            "a secret reached the logs: {line}"
        );
        assert!(
            !line.contains("127.0.0.1"),
            "a client address reached the logs: {line}"
        );
    }
}
