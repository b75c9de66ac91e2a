//! Crash reports against a real PostgreSQL and Redis: a real minidump (of a running process,
//! written by minidump-writer) uploaded, stored once per report id, symbolicated in the
//! background by rust-minidump and grouped; symbols uploaded later name the top frame; bad,
//! truncated and oversized uploads answered 400 or 413 while the server keeps serving; the
//! hourly limit per client; crash-free session rates from analytics sessions.

use e2e as support;

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use support::Redis;
use support::update_server::{TOKEN, UpdateServer};

/// A minidump of a real process: `sleep` from coreutils, dumped through ptrace while it waits.
fn minidump_of_a_sleeping_process() -> Vec<u8> {
    let mut child = std::process::Command::new("sleep")
        .arg("60")
        .spawn()
        .expect("start sleep");
    std::thread::sleep(Duration::from_millis(300));
    support::minidump_of(&mut child)
}

fn metadata(report_id: &str, version: &str, session: &str) -> Value {
    json!({
        "report_id": report_id,
        "product": "app-desktop",
        "version": version,
        "channel": "stable",
        "os": "linux",
        "arch": "x86_64",
        "session_id": session,
        "panic_message": "index out of bounds: the len is 3 but the index is 7",
        "crashed_at": "2026-11-28T01:02:03Z"
    })
}

/// A multipart body with the given parts, and its content type.
fn multipart(parts: &[(&str, &[u8])]) -> (String, Vec<u8>) {
    let boundary = "crash-test-boundary-7f3a";
    let mut body = Vec::new();
    for (name, bytes) in parts {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{name}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

async fn upload(server: &UpdateServer, content_type: &str, body: Vec<u8>) -> (StatusCode, Value) {
    // A client of its own for each upload: the server may close the connection of a refused
    // upload before reading its whole body, and a pooled connection must not be reused after.
    let answer = support::http_client()
        .post(server.app.url("/api/crashes"))
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .expect("upload");
    let status = answer.status();
    (status, answer.json().await.unwrap_or(Value::Null))
}

async fn upload_report(
    server: &UpdateServer,
    metadata: &Value,
    dump: &[u8],
) -> (StatusCode, Value) {
    let metadata = serde_json::to_vec(metadata).unwrap();
    let (content_type, body) = multipart(&[("metadata", &metadata), ("minidump", dump)]);
    upload(server, &content_type, body).await
}

/// The report once the worker has finished with it.
async fn processed(server: &UpdateServer, id: &str) -> Value {
    let path = format!("/api/admin/crashes/reports/{id}");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let (status, report) = server.admin_get(&path).await;
        assert_eq!(status, StatusCode::OK, "{report}");
        if report["status"] == "done" || report["status"] == "failed" {
            return report;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "report {id} not processed within a minute: {report}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn uploads_are_stored_once_symbolicated_grouped_and_bad_ones_refused() {
    let redis = Redis::start().expect("start Redis");
    let server = UpdateServer::start_with(
        Some(&redis),
        &[
            "--crash-dir",
            "{folder}/crashes",
            "--crash-max-mib",
            "2",
            "--crash-uploads-per-hour",
            "12",
        ],
    );
    let dump = minidump_of_a_sleeping_process();
    assert!(
        dump.len() < 2 * 1024 * 1024 - 64 * 1024,
        "the dump with its metadata fits the 2 MiB limit"
    );
    let session = "5e55105e55105e55105e55105e55105e";

    // Stored once: the same report id again is 200 with the same id, not a second report.
    let first = "0b8f8d52-2a8e-4d0c-9f51-1c2d3e4f5a61";
    let (status, body) = upload_report(&server, &metadata(first, "1.4.2", session), &dump).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["id"], first);
    let (status, body) = upload_report(&server, &metadata(first, "1.4.2", session), &dump).await;
    assert_eq!((status, &body["id"]), (StatusCode::OK, &json!(first)));
    let dumps: Vec<_> = std::fs::read_dir(server.folder.path().join("crashes"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .filter(|name| name.ends_with(".dmp"))
        .collect();
    assert_eq!(dumps, [format!("{first}.dmp")]);

    // Symbolicated in the background: the crashing thread's frames, without symbols yet.
    let report = processed(&server, first).await;
    assert_eq!(report["status"], "done", "{report}");
    assert_eq!(
        report["panic_message"],
        "index out of bounds: the len is 3 but the index is 7"
    );
    let stack = report["stack"].as_array().expect("a stack");
    assert!(!stack.is_empty(), "{report}");
    let missing = report["missing_modules"].as_array().unwrap();
    assert!(!missing.is_empty(), "no symbols are stored yet: {report}");
    let group_id = report["group_id"].as_str().unwrap().to_owned();
    assert_eq!(group_id.len(), 16);

    // A second report of the same crash joins its group, counted per version and platform.
    let second = "0b8f8d52-2a8e-4d0c-9f51-1c2d3e4f5a62";
    let other_session = "0ddba11c0ddba11c0ddba11c0ddba11c";
    let (status, _) =
        upload_report(&server, &metadata(second, "1.5.0", other_session), &dump).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(processed(&server, second).await["group_id"], group_id);
    let (status, groups) = server.admin_get("/api/admin/crashes/groups").await;
    assert_eq!(status, StatusCode::OK);
    let groups = groups.as_array().unwrap();
    assert_eq!(groups.len(), 1, "{groups:?}");
    assert_eq!(groups[0]["reports"], 2);
    assert_eq!(groups[0]["versions"], json!({"1.4.2": 1, "1.5.0": 1}));
    assert_eq!(groups[0]["platforms"], json!({"linux-x86_64": 2}));
    let (status, group) = server
        .admin_get(&format!("/api/admin/crashes/groups/{group_id}"))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(group["reports"].as_array().unwrap().len(), 2);

    // Symbols for the top frame's module, uploaded afterwards: both reports are processed
    // again and their top frame is named from the store.
    let top_module = missing[0].as_str().unwrap();
    let (debug_file, debug_id) = top_module.split_once('/').unwrap();
    let sym = format!(
        "MODULE Linux x86_64 {debug_id} {debug_file}\nFUNC 0 fffffff 0 named_by_uploaded_symbols\n"
    );
    let answer = server
        .client
        .put(
            server
                .app
                .url(&format!("/api/admin/symbols/{debug_file}/{debug_id}")),
        )
        .bearer_auth(TOKEN)
        .body(sym.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::CREATED);
    let answer: Value = answer.json().await.unwrap();
    assert_eq!(answer["requeued_reports"], 2, "{answer}");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let renamed = loop {
        let report = processed(&server, first).await;
        if report["stack"][0]["function"] == "named_by_uploaded_symbols" {
            break report;
        }
        assert!(std::time::Instant::now() < deadline, "{report}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(
        renamed["signature"]
            .as_str()
            .unwrap()
            .contains("named_by_uploaded_symbols"),
        "{renamed}"
    );
    let (status, _) = {
        let answer = server
            .client
            .put(
                server
                    .app
                    .url(&format!("/api/admin/symbols/other/{debug_id}")),
            )
            .bearer_auth(TOKEN)
            .body(sym)
            .send()
            .await
            .unwrap();
        (answer.status(), ())
    };
    assert_eq!(status, StatusCode::BAD_REQUEST, "a file for another module");

    // Crash-free sessions: four sessions started 1.4.2, one of them crashed.
    for session in [
        session,
        "11111111111111111111111111111111",
        "22222222222222222222222222222222",
        "33333333333333333333333333333333",
    ] {
        let batch = json!({"app": "app-desktop", "session_id": session, "app_version": "1.4.2",
                           "os": "linux", "locale": "en", "events": [{"name": "app_started"}]});
        let answer = server
            .client
            .post(server.app.url("/api/events"))
            .json(&batch)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), StatusCode::ACCEPTED);
    }
    let (_, versions) = server.admin_get("/api/admin/crashes/versions").await;
    let by_version = |version: &str| {
        versions
            .as_array()
            .unwrap()
            .iter()
            .find(|row| row["version"] == version)
            .cloned()
            .unwrap_or_else(|| panic!("{version} in {versions}"))
    };
    assert_eq!(by_version("1.4.2")["sessions"], 4);
    assert_eq!(by_version("1.4.2")["crashed_sessions"], 1);
    assert_eq!(by_version("1.4.2")["crash_free_rate"], 0.75);
    assert_eq!(by_version("1.5.0")["crash_free_rate"], Value::Null);

    // Bad uploads: each refused with what is wrong, and nothing stored.
    let good_metadata = serde_json::to_vec(&metadata(
        "0b8f8d52-2a8e-4d0c-9f51-1c2d3e4f5a63",
        "1.4.2",
        session,
    ))
    .unwrap();
    let truncated = &dump[..dump.len() / 3];
    let oversized = vec![0x4du8; 2 * 1024 * 1024 + 1];
    let cases: Vec<(&str, String, Vec<u8>, StatusCode, &str)> = vec![
        {
            let (content_type, body) =
                multipart(&[("metadata", &good_metadata), ("minidump", truncated)]);
            (
                "truncated minidump",
                content_type,
                body,
                StatusCode::BAD_REQUEST,
                "minidump",
            )
        },
        {
            let (content_type, body) =
                multipart(&[("metadata", &good_metadata), ("minidump", b"MDMP\x93\xa7")]);
            (
                "garbage minidump",
                content_type,
                body,
                StatusCode::BAD_REQUEST,
                "minidump",
            )
        },
        {
            let (content_type, body) =
                multipart(&[("metadata", b"{\"report_id\": 7}"), ("minidump", &dump)]);
            (
                "malformed metadata",
                content_type,
                body,
                StatusCode::BAD_REQUEST,
                "metadata",
            )
        },
        {
            let (content_type, body) =
                multipart(&[("metadata", &good_metadata), ("minidump", &dump)]);
            let cut = body[..body.len() - 40].to_vec();
            (
                "truncated body",
                content_type,
                cut,
                StatusCode::BAD_REQUEST,
                "multipart",
            )
        },
        (
            "not multipart",
            "application/json".into(),
            b"{}".to_vec(),
            StatusCode::BAD_REQUEST,
            "content-type",
        ),
        {
            let (content_type, body) =
                multipart(&[("metadata", &good_metadata), ("minidump", &oversized)]);
            (
                "oversized minidump",
                content_type,
                body,
                StatusCode::PAYLOAD_TOO_LARGE,
                "",
            )
        },
        {
            let (content_type, body) = multipart(&[
                ("metadata", &good_metadata),
                ("minidump", &vec![0u8; 3 * 1024 * 1024]),
            ]);
            (
                "oversized body",
                content_type,
                body,
                StatusCode::PAYLOAD_TOO_LARGE,
                "",
            )
        },
    ];
    for (what, content_type, body, expected, field) in cases {
        let (status, answer) = upload(&server, &content_type, body).await;
        assert_eq!(status, expected, "{what}: {answer}");
        if !field.is_empty() {
            assert_eq!(answer["field"], field, "{what}: {answer}");
        }
        let health = server
            .client
            .get(server.app.url("/healthz"))
            .send()
            .await
            .unwrap();
        assert_eq!(
            health.status(),
            StatusCode::OK,
            "still serving after {what}"
        );
    }
    let (_, all) = server.admin_get("/api/admin/crashes/groups").await;
    assert_eq!(all[0]["reports"], 2, "nothing more was stored");

    // The admin routes need the token.
    let answer = server
        .client
        .get(server.app.url("/api/admin/crashes/groups"))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::UNAUTHORIZED);

    // 12 uploads an hour per client: 10 so far; the 13th is refused with Retry-After.
    let mut statuses = Vec::new();
    for n in 0..3 {
        let id = format!("0b8f8d52-2a8e-4d0c-9f51-1c2d3e4f5b6{n}");
        statuses.push(
            upload_report(&server, &metadata(&id, "1.4.2", session), &dump)
                .await
                .0,
        );
    }
    assert_eq!(
        statuses,
        [
            StatusCode::CREATED,
            StatusCode::CREATED,
            StatusCode::TOO_MANY_REQUESTS
        ]
    );
}
