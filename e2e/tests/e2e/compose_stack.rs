//! The compose stack's server configuration, loaded into real servers: docker/postgres's
//! postgresql.conf and init script, docker/redis's redis.conf with the password included the
//! way compose includes it, and docker/pgbouncer's pgbouncer.ini with app-web behind it in
//! transaction mode, with and without the driver settings PgBouncer needs.

use e2e as support;

use std::path::Path;
use std::process::Command;

use local_servers::{PgBouncer, Redis, RedisOptions};
use serde_json::{Value, json};
use support::{RunningBinary, docker_dir, http_client, run_binary, stack_postgres};

const APP_PASSWORD: &str = support::STACK_APP_PASSWORD;
const REDIS_PASSWORD: &str = "redis-password-from-a-secret";

fn write_secret(dir: &Path, name: &str, value: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, value).unwrap();
    path.to_str().unwrap().to_owned()
}

#[test]
fn postgres_runs_on_the_stack_config_and_the_init_script_makes_the_app_role() {
    let secrets = tempfile::tempdir().unwrap();
    let postgres = stack_postgres(secrets.path());
    for (setting, value) in [
        ("shared_buffers", "512MB"),
        ("max_connections", "100"),
        ("wal_level", "replica"),
        ("random_page_cost", "1.1"),
        ("shared_preload_libraries", "pg_stat_statements"),
        ("password_encryption", "scram-sha-256"),
    ] {
        assert_eq!(
            postgres.psql(&format!("SHOW {setting}")).unwrap().trim(),
            value,
            "{setting}"
        );
    }
    let role_settings = postgres
        .psql("SELECT array_to_string(setconfig, ',') FROM pg_db_role_setting JOIN pg_roles ON oid = setrole WHERE rolname = 'app'")
        .unwrap();
    assert!(
        role_settings.contains("statement_timeout=5s"),
        "{role_settings}"
    );
    let owner = postgres
        .psql("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'app'")
        .unwrap();
    assert_eq!(owner.trim(), "app");
    // The exporter's role reads statistics and nothing else.
    let monitor = postgres
        .psql("SELECT pg_has_role('monitor', 'pg_monitor', 'member'), rolsuper, rolconnlimit FROM pg_roles WHERE rolname = 'monitor'")
        .unwrap();
    assert_eq!(monitor.trim(), "t|f|3", "{monitor}");

    // migrate authenticates as app with the password from its file; a wrong one is refused.
    let url = format!("postgres://app@127.0.0.1:{}/app", postgres.port);
    let good = write_secret(secrets.path(), "good", APP_PASSWORD);
    let migrated = run_binary(&[
        "migrate",
        "--database-url",
        &url,
        "--database-password-file",
        &good,
    ]);
    assert!(
        migrated.status.success(),
        "{}",
        String::from_utf8_lossy(&migrated.stderr)
    );
    let bad = write_secret(secrets.path(), "bad", "not-the-password");
    let refused = run_binary(&[
        "migrate",
        "--database-url",
        &url,
        "--database-password-file",
        &bad,
    ]);
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("password authentication failed"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
}

#[tokio::test]
async fn redis_runs_on_the_stack_config_with_its_password_from_a_file() {
    let redis = Redis::start_with(RedisOptions {
        config_file: Some(docker_dir().join("redis/redis.conf")),
        password: Some(REDIS_PASSWORD.into()),
    })
    .expect("Redis starts on docker/redis/redis.conf");
    assert_eq!(
        redis.cli(&["CONFIG", "GET", "appendonly"]).unwrap(),
        "appendonly\nyes"
    );
    assert_eq!(
        redis.cli(&["CONFIG", "GET", "maxmemory-policy"]).unwrap(),
        "maxmemory-policy\nvolatile-lru"
    );
    let unauthenticated = Command::new("redis-cli")
        .arg("-s")
        .arg(redis.socket())
        .arg("PING")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&unauthenticated.stdout).contains("NOAUTH"));

    let secrets = tempfile::tempdir().unwrap();
    let password_file = write_secret(secrets.path(), "redis_password", REDIS_PASSWORD);
    let server = RunningBinary::start(&[
        "--redis-url",
        &redis.url(),
        "--redis-password-file",
        &password_file,
    ]);
    let ready = support::readiness(&http_client(), &server).await;
    assert_eq!(ready["checks"]["redis"], "ok", "{ready}");
}

#[tokio::test]
async fn app_web_works_through_pgbouncer_in_transaction_mode_with_its_driver_settings() {
    let secrets = tempfile::tempdir().unwrap();
    let postgres = stack_postgres(secrets.path());
    let password_file = write_secret(secrets.path(), "app_db_password", APP_PASSWORD);
    let direct = format!("postgres://app@127.0.0.1:{}/app", postgres.port);
    let migrated = run_binary(&[
        "migrate",
        "--database-url",
        &direct,
        "--database-password-file",
        &password_file,
    ]);
    assert!(
        migrated.status.success(),
        "{}",
        String::from_utf8_lossy(&migrated.stderr)
    );

    let bouncer = PgBouncer::start(
        Path::new(env!("CARGO_TARGET_TMPDIR")),
        &docker_dir().join("pgbouncer/pgbouncer.ini"),
        &format!("app = host=127.0.0.1 port={} dbname=app", postgres.port),
        &format!("\"app\" \"{APP_PASSWORD}\"\n"),
    )
    .expect("PgBouncer starts on docker/pgbouncer/pgbouncer.ini");
    let pooled = format!("postgres://app@127.0.0.1:{}/app", bouncer.port);

    // Without the PgBouncer settings the driver's startup options are refused.
    let plain = RunningBinary::start(&[
        "--database-url",
        &pooled,
        "--database-password-file",
        &password_file,
    ]);
    let http = http_client();
    let ready = support::readiness(&http, &plain).await;
    assert_eq!(ready["checks"]["database"], "down", "{ready}");
    drop(plain);

    // With them, many concurrent requests share PgBouncer's server connections, statements
    // prepared on one reused on another.
    let server = RunningBinary::start(&[
        "--database-url",
        &pooled,
        "--database-password-file",
        &password_file,
        "--db-pgbouncer",
        "--db-max-connections",
        "16",
        "--rate-limit-per-minute",
        "0",
    ]);
    let ready = support::readiness(&http, &server).await;
    assert_eq!(
        ready["checks"]["database"],
        "ok",
        "{ready}\n{}",
        bouncer.log()
    );
    let mut creations = Vec::new();
    for n in 0..48 {
        let http = http.clone();
        let url = server.url("/api/notes");
        creations.push(tokio::spawn(async move {
            http.post(url)
                .json(&json!({ "title": format!("through pgbouncer {n}"), "body": "pooled" }))
                .send()
                .await
                .unwrap()
        }));
    }
    let mut ids = Vec::new();
    for creation in creations {
        let response = creation.await.unwrap();
        assert_eq!(response.status(), 201, "{}", bouncer.log());
        let note: Value = response.json().await.unwrap();
        ids.push(note["id"].as_str().unwrap().to_owned());
    }
    let mut reads = Vec::new();
    for id in &ids {
        let http = http.clone();
        let url = server.url(&format!("/api/notes/{id}"));
        reads.push(tokio::spawn(async move {
            http.get(url).send().await.unwrap().status()
        }));
    }
    for read in reads {
        assert_eq!(read.await.unwrap(), 200, "{}", bouncer.log());
    }
    let page: Value = support::get(&http, server.url("/api/notes?limit=100"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page["items"].as_array().unwrap().len(), 48, "{page}");

    // Migrations refuse to go through PgBouncer rather than run without their lock.
    let refused = run_binary(&[
        "migrate",
        "--database-url",
        &pooled,
        "--database-password-file",
        &password_file,
        "--db-pgbouncer",
    ]);
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr)
            .contains("migrations cannot run through PgBouncer"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
}
