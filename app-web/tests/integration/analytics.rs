//! Analytics against a real PostgreSQL: batches stored, Do Not Track and Global Privacy Control
//! honoured, bad batches refused naming the field, no client address or user agent anywhere in
//! the database or the logs, the same client hashed alike within a day and differently after
//! the salt rotates, and the retention job deleting exactly the expired rows while their daily
//! sums stay.

use e2e as support;

use reqwest::StatusCode;
use serde_json::{Value, json};
use support::update_server::UpdateServer;
use support::{assert_success, run_binary};

/// Distinctive values to look for afterwards: the address nginx would pass in X-Real-IP and a
/// user agent no other test sends.
const CLIENT_ADDRESS: &str = "198.51.100.23";
const USER_AGENT: &str = "AnalyticsProbe/7.3 (probe-ua-6b1d0c)";

fn batch(session: &str, names: &[&str]) -> Value {
    json!({
        "app": "app-desktop",
        "session_id": session,
        "app_version": "2.0.1",
        "os": "linux",
        "locale": "en-GB",
        "events": names.iter().map(|name| json!({"name": name, "props": {"feature": "notes"}})).collect::<Vec<_>>(),
    })
}

async fn send(
    server: &UpdateServer,
    body: &Value,
    headers: &[(&str, &str)],
) -> (StatusCode, Value) {
    let mut request = server
        .client
        .post(server.app.url("/api/events"))
        .header("user-agent", USER_AGENT)
        .header("x-real-ip", CLIENT_ADDRESS)
        .json(body);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let answer = request.send().await.unwrap();
    let status = answer.status();
    (status, answer.json().await.unwrap_or(Value::Null))
}

fn psql(server: &UpdateServer, sql: &str) -> String {
    server
        .postgres
        .psql(sql)
        .unwrap_or_else(|err| panic!("{sql}: {err:#}"))
        .trim()
        .to_owned()
}

/// The user hashes stored so far, oldest first, one per batch.
fn hashes(server: &UpdateServer) -> Vec<String> {
    psql(
        server,
        "SELECT encode(user_hash, 'hex') FROM analytics_events GROUP BY session_id, user_hash \
         ORDER BY min(id)",
    )
    .lines()
    .map(str::to_owned)
    .collect()
}

#[tokio::test]
async fn events_are_stored_without_identifying_the_client_and_hashes_change_daily() {
    let server = UpdateServer::start_with(None, &["--trusted-proxies", "127.0.0.1"]);

    let (status, answer) = send(
        &server,
        &batch(
            "aaaaaaaaaaaaaaaa0000000000000001",
            &["app_started", "feature_used"],
        ),
        &[],
    )
    .await;
    assert_eq!(
        (status, &answer["accepted"]),
        (StatusCode::ACCEPTED, &json!(2))
    );

    // The browser's wishes: nothing stored under Do Not Track or Global Privacy Control.
    for header in [("dnt", "1"), ("sec-gpc", "1")] {
        let (status, answer) = send(
            &server,
            &batch("aaaaaaaaaaaaaaaa0000000000000002", &["app_started"]),
            &[header],
        )
        .await;
        assert_eq!(
            (status, &answer["accepted"]),
            (StatusCode::ACCEPTED, &json!(0))
        );
    }
    assert_eq!(psql(&server, "SELECT count(*) FROM analytics_events"), "2");

    // Bad batches are refused naming the field.
    let mut too_many = batch("aaaaaaaaaaaaaaaa0000000000000003", &["app_started"]);
    too_many["events"] = json!(vec![json!({"name": "x"}); 201]);
    for (body, field) in [
        (
            json!({"app": "app-desktop", "session_id": "nope", "events": [{"name": "a"}]}),
            "session_id",
        ),
        (
            json!({"app": "tracker", "session_id": "aaaaaaaaaaaaaaaa0000000000000003", "events": [{"name": "a"}]}),
            "app",
        ),
        (too_many, "events"),
    ] {
        let (status, answer) = send(&server, &body, &[]).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
        assert_eq!(answer["field"], field, "{answer}");
    }
    let (status, _) = send(&server, &json!({"app": "app-desktop"}), &[]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "a batch without events");

    // Same client, same day: the same hash, whatever the session. Another user agent: another.
    send(
        &server,
        &batch("aaaaaaaaaaaaaaaa0000000000000004", &["app_started"]),
        &[],
    )
    .await;
    let answer = server
        .client
        .post(server.app.url("/api/events"))
        .header("user-agent", "SomeOtherAgent/1.0")
        .header("x-real-ip", CLIENT_ADDRESS)
        .json(&batch("aaaaaaaaaaaaaaaa0000000000000005", &["app_started"]))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::ACCEPTED);
    let seen = hashes(&server);
    assert_eq!(seen.len(), 3, "{seen:?}");
    assert_eq!(seen[0], seen[1], "one client, one day, one hash");
    assert_ne!(seen[0], seen[2], "another user agent, another hash");
    assert_eq!(psql(&server, "SELECT count(*) FROM analytics_salts"), "1");

    // The day changes: yesterday's salt is deleted and the same client hashes differently.
    psql(&server, "UPDATE analytics_salts SET day = day - 1");
    send(
        &server,
        &batch("aaaaaaaaaaaaaaaa0000000000000006", &["app_started"]),
        &[],
    )
    .await;
    let after = hashes(&server);
    assert_eq!(after.len(), 4, "{after:?}");
    assert_ne!(
        after[3], after[0],
        "a new salt, a new hash for the same client"
    );
    assert_eq!(
        psql(
            &server,
            "SELECT count(*) FROM analytics_salts WHERE day = (now() AT TIME ZONE 'UTC')::date"
        ),
        "1"
    );
    assert_eq!(
        psql(&server, "SELECT count(*) FROM analytics_salts"),
        "1",
        "only today's salt"
    );

    // Neither the address nor the user agent is in any column of any table, nor in the logs.
    let columns = psql(
        &server,
        "SELECT table_name || '.' || column_name FROM information_schema.columns \
         WHERE table_schema = 'public'",
    );
    let mut scanned = 0;
    for column in columns.lines() {
        let (table, column) = column.split_once('.').unwrap();
        for needle in [CLIENT_ADDRESS, USER_AGENT, "probe-ua-6b1d0c"] {
            let found = psql(
                &server,
                &format!(
                    "SELECT count(*) FROM \"{table}\" WHERE \"{column}\"::text LIKE '%{needle}%' \
                     OR (pg_typeof(\"{column}\") = 'bytea'::regtype \
                         AND position(convert_to('{needle}', 'UTF8') IN \"{column}\"::text::bytea) > 0)"
                ),
            );
            assert_eq!(found, "0", "{needle} found in {table}.{column}");
        }
        scanned += 1;
    }
    assert!(scanned > 20, "scanned {scanned} columns");
    for line in server.app.logs() {
        assert!(
            !line.contains(CLIENT_ADDRESS) && !line.contains("probe-ua"),
            "a log line identifies the client: {line}"
        );
    }
}

#[tokio::test]
async fn the_purge_deletes_exactly_the_expired_rows_and_keeps_daily_sums() {
    let server = UpdateServer::start();
    // Rows received at chosen ages; those past 90 days must go, the rest stay.
    let ages = [
        ("expired_long_ago", "200 days", true),
        ("expired_just", "90 days 1 hour", true),
        ("kept_just", "89 days 23 hours", false),
        ("kept_recent", "10 days", false),
        ("kept_today", "1 minute", false),
    ];
    for (name, age, _) in ages {
        for session in [
            "00000000000000000000000000000001",
            "00000000000000000000000000000002",
        ] {
            psql(
                &server,
                &format!(
                    "INSERT INTO analytics_events (received_at, app, name, session_id, user_hash, app_version) \
                     VALUES (now() - interval '{age}', 'app-desktop', '{name}', '{session}', '\\x01', '3.0.0')"
                ),
            );
        }
    }
    let database_url = server.postgres.url();
    let purge = |extra: &[&str]| {
        let mut args = vec!["analytics", "purge", "--database-url", &database_url];
        args.extend_from_slice(extra);
        let output = run_binary(&args);
        assert_success(&output, "app-web analytics purge");
        serde_json::from_slice::<Value>(&output.stdout).expect("purge prints JSON")
    };

    let dry = purge(&["--dry-run"]);
    assert_eq!(dry["events_purged"], 4, "{dry}");
    assert_eq!(psql(&server, "SELECT count(*) FROM analytics_events"), "10");
    assert_eq!(psql(&server, "SELECT count(*) FROM analytics_daily"), "0");

    // The two rows either side of the limit can share a day (UTC), depending on the hour.
    let finished_days: u64 = psql(
        &server,
        "SELECT count(DISTINCT (received_at AT TIME ZONE 'UTC')::date) FROM analytics_events \
         WHERE (received_at AT TIME ZONE 'UTC')::date < (now() AT TIME ZONE 'UTC')::date",
    )
    .parse()
    .unwrap();
    let done = purge(&[]);
    assert_eq!(done["events_purged"], 4, "{done}");
    assert_eq!(
        done["days_rolled_up"], finished_days,
        "every finished day: {done}"
    );
    let left = psql(
        &server,
        "SELECT DISTINCT name FROM analytics_events ORDER BY 1",
    );
    assert_eq!(left, "kept_just\nkept_recent\nkept_today");
    let sums = psql(
        &server,
        "SELECT name || ' ' || events || ' ' || sessions || ' ' || users FROM analytics_daily \
         ORDER BY name",
    );
    assert_eq!(
        sums, "expired_just 2 2 1\nexpired_long_ago 2 2 1\nkept_just 2 2 1\nkept_recent 2 2 1",
        "finished days are summed, today is not"
    );

    // Nothing more to do on a second run; a shorter retention takes more.
    let again = purge(&[]);
    assert_eq!(
        (
            again["events_purged"].as_u64(),
            again["days_rolled_up"].as_u64()
        ),
        (Some(0), Some(0))
    );
    let shorter = purge(&["--analytics-retention-days", "5"]);
    assert_eq!(shorter["events_purged"], 4, "{shorter}");
    assert_eq!(
        psql(&server, "SELECT count(*) FROM analytics_daily"),
        "4",
        "the sums stay"
    );
}
