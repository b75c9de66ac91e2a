//! app-web on real PostgreSQL and Redis started by the tests: migrations, the notes API, the
//! cache and its Redis-down fallback, 503s when PostgreSQL is down or its pool is exhausted,
//! and per-client rate limits.

use e2e as support;

use std::time::Duration;

use serde_json::{Value, json};
use support::{Postgres, Redis, RunningBinary, run_binary};

use support::http_client as client;

/// A pool on `postgres` with these settings, as the flags would give them.
fn pool(
    postgres: &Postgres,
    max_connections: u32,
    acquire_timeout_ms: u64,
    statement_timeout_ms: u64,
) -> sqlx::PgPool {
    let database = app_web::config::DatabaseConfig {
        database_url: Some(postgres.url()),
        database_url_file: None,
        database_password_file: None,
    };
    let pool = app_web::config::PoolConfig {
        db_pgbouncer: false,
        db_max_connections: max_connections,
        db_min_connections: 0,
        db_acquire_timeout_ms: acquire_timeout_ms,
        db_statement_timeout_ms: statement_timeout_ms,
    };
    app_web::db::connect(&database, &pool)
        .expect("pool settings")
        .expect("a database URL")
}

async fn metric(server: &RunningBinary, name: &str) -> f64 {
    let text = client()
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .filter(|line| line.starts_with(name))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test]
async fn migrations_apply_once_even_when_replicas_race() {
    let postgres = Postgres::start().expect("start PostgreSQL");
    let url = postgres.url();
    // Four replicas migrating at once: the advisory lock makes them take turns.
    let runs: Vec<_> = (0..4)
        .map(|_| {
            let url = url.clone();
            std::thread::spawn(move || run_binary(&["migrate", "--database-url", &url]))
        })
        .collect();
    for run in runs {
        let output = run.join().unwrap();
        assert!(
            output.status.success(),
            "migrate failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    let applied: i64 = sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations WHERE success")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(applied as usize, app_web::db::MIGRATOR.iter().count());
    let notes: i64 = sqlx::query_scalar("SELECT count(*) FROM notes")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(notes, 0);
}

/// A rollback runs the previous version's `migrate` on a schema a newer version migrated
/// further: the migrations it does not know are left alone, and it starts.
#[tokio::test]
async fn migrate_accepts_a_schema_a_newer_version_migrated_further() {
    let postgres = Postgres::start().expect("start PostgreSQL");
    let url = postgres.url();
    let first = run_binary(&["migrate", "--database-url", &url]);
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    // What a newer version's expand step leaves: a column this version does not know, and its
    // migration's row.
    sqlx::query("ALTER TABLE notes ADD COLUMN pinned boolean")
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES (99990101000001, 'add pinned', true, '\\x00'::bytea, 1)",
    )
    .execute(&pool)
    .await
    .unwrap();
    let again = run_binary(&["migrate", "--database-url", &url]);
    assert!(
        again.status.success(),
        "the previous version refused the newer schema: {}",
        String::from_utf8_lossy(&again.stderr)
    );
    // A migration this version knows whose applied checksum changed is still refused.
    sqlx::query(
        "UPDATE _sqlx_migrations SET checksum = '\\x00'::bytea WHERE version < 99990101000001",
    )
    .execute(&pool)
    .await
    .unwrap();
    let changed = run_binary(&["migrate", "--database-url", &url]);
    assert!(
        !changed.status.success(),
        "a changed migration was accepted"
    );
}

#[tokio::test]
async fn migrate_without_a_database_says_what_to_set() {
    let output = run_binary(&["migrate"]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--database-url"), "{stderr}");
}

#[tokio::test]
async fn the_pool_applies_the_configured_statement_timeout() {
    let postgres = Postgres::start().expect("start PostgreSQL");
    let pool = pool(&postgres, 2, 1000, 1500);
    let timeout: String = sqlx::query_scalar("SHOW statement_timeout")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(timeout, "1500ms");
    let cancelled = sqlx::query("SELECT pg_sleep(3)")
        .execute(&pool)
        .await
        .unwrap_err();
    assert!(
        cancelled.to_string().contains("statement timeout"),
        "{cancelled}"
    );
}

#[tokio::test]
async fn notes_api_creates_reads_lists_updates_and_deletes() {
    let postgres = Postgres::start().expect("start PostgreSQL");
    let redis = Redis::start().expect("start Redis");
    let server = RunningBinary::start_on(&postgres, Some(&redis), &[]);
    let http = client();

    let ready = support::readiness(&http, &server).await;
    assert_eq!(
        ready,
        json!({ "status": "ready", "checks": { "database": "ok", "redis": "ok" } })
    );

    // Create five notes.
    let mut ids = Vec::new();
    for n in 0..5 {
        let created = http
            .post(server.url("/api/notes"))
            .json(&json!({ "title": format!("note {n}"), "body": "text" }))
            .send()
            .await
            .unwrap();
        assert_eq!(created.status(), 201);
        let location = created.headers()["location"].to_str().unwrap().to_owned();
        let note: Value = created.json().await.unwrap();
        assert_eq!(
            location,
            format!("/api/notes/{}", note["id"].as_str().unwrap())
        );
        ids.push(note["id"].as_str().unwrap().to_owned());
    }

    // Get one, twice: the second answer comes from the cache.
    let hits_before = metric(&server, "app_web_cache_hits_total").await;
    for _ in 0..2 {
        let note: Value = support::get(&http, server.url(&format!("/api/notes/{}", ids[2])))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(note["title"], "note 2");
    }
    assert!(
        metric(&server, "app_web_cache_hits_total").await > hits_before,
        "the second read hit the cache"
    );

    // List in pages of two, newest first, with no note twice.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut url = server.url("/api/notes?limit=2");
        if let Some(cursor) = &cursor {
            url.push_str(&format!("&cursor={cursor}"));
        }
        let page: Value = support::get(&http, url).await.json().await.unwrap();
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 2);
        seen.extend(
            items
                .iter()
                .map(|note| note["id"].as_str().unwrap().to_owned()),
        );
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    let newest_first: Vec<String> = ids.iter().rev().cloned().collect();
    assert_eq!(seen, newest_first);

    // Update: the cached copy is replaced, and cached list pages are retired.
    let updated = http
        .put(server.url(&format!("/api/notes/{}", ids[2])))
        .json(&json!({ "title": "renamed", "body": "new text" }))
        .send()
        .await
        .unwrap();
    assert_eq!(updated.status(), 200);
    let note: Value = support::get(&http, server.url(&format!("/api/notes/{}", ids[2])))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(note["title"], "renamed");
    let page: Value = support::get(&http, server.url("/api/notes?limit=5"))
        .await
        .json()
        .await
        .unwrap();
    assert!(
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|note| note["title"] == "renamed")
    );

    // Delete, then it is gone.
    let deleted = support::delete(&http, server.url(&format!("/api/notes/{}", ids[0]))).await;
    assert_eq!(deleted.status(), 204);
    let gone = support::get(&http, server.url(&format!("/api/notes/{}", ids[0]))).await;
    assert_eq!(gone.status(), 404);
    let again = support::delete(&http, server.url(&format!("/api/notes/{}", ids[0]))).await;
    assert_eq!(again.status(), 404);
}

#[tokio::test]
async fn bad_input_is_refused_with_the_field_named() {
    let postgres = Postgres::start().expect("start PostgreSQL");
    let server = RunningBinary::start_on(&postgres, None, &[]);
    let http = client();

    let empty_title = http
        .post(server.url("/api/notes"))
        .json(&json!({ "title": "  " }))
        .send()
        .await
        .unwrap();
    assert_eq!(empty_title.status(), 422);
    let body: Value = empty_title.json().await.unwrap();
    assert_eq!(body["error"], "validation");
    assert_eq!(body["fields"]["title"], "is required");

    let long_body = http
        .post(server.url("/api/notes"))
        .json(&json!({ "title": "ok", "body": "x".repeat(10_001) }))
        .send()
        .await
        .unwrap();
    assert_eq!(long_body.status(), 422);
    assert!(long_body.json::<Value>().await.unwrap()["fields"]["body"].is_string());

    let not_json = http
        .post(server.url("/api/notes"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(not_json.status(), 400);

    let unknown_field = http
        .post(server.url("/api/notes"))
        .json(&json!({ "title": "t", "colour": "red" }))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown_field.status(), 400);

    let bad_id = support::get(&http, server.url("/api/notes/not-a-uuid")).await;
    assert_eq!(bad_id.status(), 400);
    assert_eq!(bad_id.json::<Value>().await.unwrap()["field"], "id");

    let unknown = support::get(
        &http,
        server.url("/api/notes/00000000-0000-4000-8000-000000000000"),
    )
    .await;
    assert_eq!(unknown.status(), 404);

    let bad_limit = support::get(&http, server.url("/api/notes?limit=1000")).await;
    assert_eq!(bad_limit.status(), 422);
    assert!(bad_limit.json::<Value>().await.unwrap()["fields"]["limit"].is_string());

    let bad_cursor = support::get(&http, server.url("/api/notes?cursor=nonsense")).await;
    assert_eq!(bad_cursor.status(), 422);
    assert!(bad_cursor.json::<Value>().await.unwrap()["fields"]["cursor"].is_string());
}

#[tokio::test]
async fn with_redis_down_postgresql_answers_and_the_bypass_is_counted() {
    let postgres = Postgres::start().expect("start PostgreSQL");
    let mut redis = Redis::start().expect("start Redis");
    let server = RunningBinary::start_on(&postgres, Some(&redis), &[]);
    let http = client();
    let created = http
        .post(server.url("/api/notes"))
        .json(&json!({ "title": "survives" }))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);

    redis.stop();
    let bypasses_before = metric(&server, "app_web_cache_bypass_total").await;
    for _ in 0..3 {
        let page = support::get(&http, server.url("/api/notes")).await;
        assert_eq!(page.status(), 200);
        let page: Value = page.json().await.unwrap();
        assert_eq!(page["items"][0]["title"], "survives");
    }
    assert!(
        metric(&server, "app_web_cache_bypass_total").await > bypasses_before,
        "bypasses are counted"
    );
    let ready = support::get(&http, server.url("/readyz")).await;
    assert_eq!(
        ready.status(),
        200,
        "Redis down degrades but does not stop the service"
    );
    let ready: Value = ready.json().await.unwrap();
    assert_eq!(ready["status"], "degraded");
    assert_eq!(ready["checks"]["redis"], "down");

    // Redis back: the cache is used again.
    redis.resume().unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let ready = support::readiness(&http, &server).await;
        if ready["checks"]["redis"] == "ok" {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "app-web did not reconnect to Redis: {ready}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_postgresql_down_data_endpoints_answer_503() {
    let mut postgres = Postgres::start().expect("start PostgreSQL");
    let server = RunningBinary::start_on(&postgres, None, &["--db-acquire-timeout-ms", "1000"]);
    let http = client();
    assert_eq!(
        support::get(&http, server.url("/api/notes")).await.status(),
        200
    );

    postgres.stop();
    let list = http
        .get(server.url("/api/notes"))
        .send()
        .await
        .expect("an answer, not a hang");
    assert_eq!(list.status(), 503);
    assert_eq!(
        list.json::<Value>().await.unwrap()["error"],
        "database_unavailable"
    );
    let create = http
        .post(server.url("/api/notes"))
        .json(&json!({ "title": "t" }))
        .send()
        .await
        .unwrap();
    assert_eq!(create.status(), 503);
    let ready = support::get(&http, server.url("/readyz")).await;
    assert_eq!(ready.status(), 503);
    assert_eq!(
        ready.json::<Value>().await.unwrap()["checks"]["database"],
        "down"
    );
    assert_eq!(
        support::get(&http, server.url("/healthz")).await.status(),
        200,
        "still alive"
    );

    postgres.resume().unwrap();
    let list = support::get(&http, server.url("/api/notes")).await;
    assert_eq!(list.status(), 200, "serving again once PostgreSQL is back");
}

#[tokio::test]
async fn an_exhausted_pool_answers_503_instead_of_queueing_forever() {
    let postgres = Postgres::start().expect("start PostgreSQL");
    let pool = pool(&postgres, 1, 300, 5000);
    app_web::db::migrate(&pool).await.unwrap();
    let state = app_web::state::AppState::new(app_web::ui::UiSource::Embedded)
        .with_database(Some(pool.clone()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let router = app_web::router::router(state);
    let server = tokio::spawn(async move {
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .await
    });

    // Hold the pool's only connection.
    let held = pool.acquire().await.unwrap();
    let busy = client()
        .get(format!("http://{address}/api/notes"))
        .send()
        .await
        .unwrap();
    assert_eq!(busy.status(), 503);
    drop(held);
    let free = client()
        .get(format!("http://{address}/api/notes"))
        .send()
        .await
        .unwrap();
    assert_eq!(free.status(), 200);
    server.abort();
}

#[tokio::test]
async fn each_client_is_rate_limited_with_retry_after() {
    let postgres = Postgres::start().expect("start PostgreSQL");
    let redis = Redis::start().expect("start Redis");
    let server =
        RunningBinary::start_on(&postgres, Some(&redis), &["--rate-limit-per-minute", "5"]);
    let http = client();
    let mut statuses = Vec::new();
    for _ in 0..7 {
        statuses.push(
            support::get(&http, server.url("/api/notes"))
                .await
                .status()
                .as_u16(),
        );
    }
    // The limit may straddle a minute boundary, which resets the window once.
    assert!(statuses.contains(&429), "no 429 in {statuses:?}");
    assert!(
        statuses.iter().filter(|s| **s == 200).count() >= 5,
        "{statuses:?}"
    );
    let limited = support::get(&http, server.url("/api/notes")).await;
    if limited.status() == 429 {
        let retry_after: u64 = limited.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=60).contains(&retry_after));
    }
    // The UI and health endpoints are not limited.
    assert_eq!(
        support::get(&http, server.url("/healthz")).await.status(),
        200
    );
}

#[tokio::test]
async fn healthcheck_command_follows_readiness() {
    let postgres = Postgres::start().expect("start PostgreSQL");
    let server = RunningBinary::start_on(&postgres, None, &[]);
    let listen = server.address.to_string();
    let ok = run_binary(&["healthcheck", "--listen", &listen]);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    drop(server);
    let down = run_binary(&["healthcheck", "--listen", &listen]);
    assert!(!down.status.success());
    assert!(String::from_utf8_lossy(&down.stderr).contains("readyz"));
}
