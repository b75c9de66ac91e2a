//! `app-web backup` against a real PostgreSQL seeded with varied data and a real
//! S3-compatible server (s3s-fs), both on loopback: the round trip with its off-site copy,
//! damaged and undecryptable backups refused before any database is touched, failing dumps
//! that leave nothing behind, a dump killed mid-way, retention over a year of backups, and
//! the scheduled mode's metrics.

use e2e as support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use local_servers::{Postgres, PostgresOptions, S3Server, wait_for};
use support::assert_success;

const BUCKET: &str = "backups";

/// Tables of every kind the seed makes: text with non-ASCII characters, bytea, jsonb in a
/// second schema, and a few incompressible multi-megabyte rows.
const SEED: &str = r"
CREATE EXTENSION pgcrypto;
CREATE TABLE notes (id bigint PRIMARY KEY, title text NOT NULL, body text, created timestamptz);
INSERT INTO notes
  SELECT i, 'note ' || i || ' – ünïcødé ✓ 日本語 ' || chr(1024 + i % 200), repeat('body ', i % 50),
         '2026-01-01 00:00:00+00'::timestamptz + i * interval '1 minute'
  FROM generate_series(1, 60000) AS i;
CREATE TABLE blobs (id int PRIMARY KEY, data bytea NOT NULL);
INSERT INTO blobs SELECT i, decode(md5(i::text), 'hex') || '\x00ff'::bytea FROM generate_series(1, 30000) AS i;
CREATE SCHEMA audit;
CREATE TABLE audit.events (id serial PRIMARY KEY, payload jsonb, amount numeric(12, 2), ratio float8);
INSERT INTO audit.events (payload, amount, ratio)
  SELECT jsonb_build_object('n', i, 'tags', jsonb_build_array('a', 'ß', i % 7)), i * 1.25, 1.0 / i
  FROM generate_series(1, 10000) AS i;
CREATE TABLE big (id int PRIMARY KEY, payload bytea NOT NULL);
INSERT INTO big
  SELECT i, (SELECT string_agg(gen_random_bytes(1024), ''::bytea) FROM generate_series(1, 4096 + i - i))
  FROM generate_series(1, 3) AS i;
";

const TABLES: &[&str] = &["public.notes", "public.blobs", "audit.events", "public.big"];

/// A checksum per table computed here, independently of app-web's own: the MD5 of the
/// sorted MD5s of every row.
fn table_fingerprints(postgres: &Postgres, database: &str) -> Vec<String> {
    TABLES
        .iter()
        .map(|table| {
            postgres
                .psql_in(
                    database,
                    &format!(
                        "SET bytea_output = 'hex'; SELECT count(*) || ':' || \
                         md5(string_agg(md5(t::text), ',' ORDER BY md5(t::text))) FROM {table} t"
                    ),
                )
                .unwrap()
                .trim()
                .to_owned()
        })
        .collect()
}

/// A PostgreSQL with the `app` database seeded, a key pair and a backup folder.
struct Setup {
    postgres: Postgres,
    folder: tempfile::TempDir,
    recipient: String,
}

impl Setup {
    fn new() -> Self {
        let postgres = Postgres::start().expect("start PostgreSQL");
        postgres.psql("CREATE DATABASE app").unwrap();
        postgres.psql_in("app", SEED).unwrap();
        let folder = tempfile::tempdir().unwrap();
        let keygen = backup_command(&postgres, folder.path())
            .args(["keygen", "--out"])
            .arg(folder.path().join("identity.txt"))
            .output()
            .unwrap();
        assert_success(&keygen, "backup keygen");
        let recipient = String::from_utf8(keygen.stdout).unwrap().trim().to_owned();
        assert!(recipient.starts_with("age1"), "{recipient}");
        Self {
            postgres,
            folder,
            recipient,
        }
    }

    fn backups(&self) -> PathBuf {
        self.folder.path().join("backups")
    }

    fn identity(&self) -> PathBuf {
        self.folder.path().join("identity.txt")
    }

    /// `app-web backup <args>` with the folder, recipient and identity set.
    fn backup(&self, args: &[&str]) -> Command {
        let mut command = backup_command(&self.postgres, &self.backups());
        command
            .env("APP_WEB_BACKUP_RECIPIENTS", &self.recipient)
            .env("APP_WEB_BACKUP_IDENTITY_FILE", self.identity())
            .args(args);
        command
    }

    fn listed(&self) -> Vec<serde_json::Value> {
        let output = self.backup(&["list", "--json"]).output().unwrap();
        assert_success(&output, "backup list");
        serde_json::from_slice(&output.stdout).unwrap()
    }

    fn database_exists(&self, name: &str) -> bool {
        self.postgres
            .psql(&format!(
                "SELECT count(*) FROM pg_database WHERE datname = '{name}'"
            ))
            .unwrap()
            .trim()
            == "1"
    }
}

/// `app-web backup` for the `app` database of `postgres`, with backups in `dir`.
fn backup_command(postgres: &Postgres, dir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_app-web"));
    command
        .arg("backup")
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env(
            "APP_WEB_DATABASE_URL",
            format!("postgres://postgres@127.0.0.1:{}/app", postgres.port),
        )
        .env("APP_WEB_BACKUP_DIR", dir)
        .env(
            "APP_WEB_BACKUP_PG_DUMP",
            Postgres::client_program("pg_dump").unwrap(),
        )
        .env(
            "APP_WEB_BACKUP_PG_RESTORE",
            Postgres::client_program("pg_restore").unwrap(),
        )
        .env("APP_WEB_LOG_FORMAT", "pretty")
        .env("APP_WEB_LOG", "warn");
    command
}

fn assert_failure<'a>(output: &'a Output, what: &str) -> std::borrow::Cow<'a, str> {
    assert!(
        !output.status.success(),
        "{what} should have failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stderr)
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .filter(|name| name != ".lock")
        .collect();
    names.sort();
    names
}

fn artifact_of(setup: &Setup, backup: &serde_json::Value) -> PathBuf {
    setup.backups().join(backup["artifact"].as_str().unwrap())
}

#[test]
fn a_backup_restores_to_identical_tables_and_its_off_site_copy_matches() {
    let setup = Setup::new();
    let s3 = S3Server::start(&[BUCKET]).expect("start s3s-fs");
    let secret = setup.folder.path().join("s3-secret");
    std::fs::write(&secret, local_servers::s3::SECRET_KEY).unwrap();
    let with_s3 = |command: &mut Command| {
        command
            .env("APP_WEB_BACKUP_S3_BUCKET", BUCKET)
            .env("APP_WEB_BACKUP_S3_ENDPOINT", s3.endpoint())
            .env("APP_WEB_BACKUP_S3_ALLOW_HTTP", "true")
            .env(
                "APP_WEB_BACKUP_S3_ACCESS_KEY_ID",
                local_servers::s3::ACCESS_KEY,
            )
            .env("APP_WEB_BACKUP_S3_SECRET_ACCESS_KEY_FILE", &secret)
            // 5 MiB parts: the 12 MiB of random rows make a multipart upload.
            .env("APP_WEB_BACKUP_S3_PART_SIZE_MIB", "5");
    };
    let before = table_fingerprints(&setup.postgres, "app");

    let mut run = setup.backup(&["run"]);
    with_s3(&mut run);
    let output = run.output().unwrap();
    assert_success(&output, "backup run");
    let listed = setup.listed();
    assert_eq!(listed.len(), 1, "{listed:?}");
    let backup = &listed[0];
    let name = backup["name"].as_str().unwrap();
    assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), name);

    // The manifest: sizes at each stage, versions, and a row count per table.
    let sizes = &backup["sizes"];
    assert!(
        sizes["artifact_bytes"].as_u64().unwrap() > 12 << 20,
        "{sizes}"
    );
    assert!(
        sizes["compressed_bytes"].as_u64().unwrap() < sizes["dump_bytes"].as_u64().unwrap(),
        "{sizes}"
    );
    assert_eq!(
        backup["postgres"]["server_num"].as_i64().unwrap() / 10000,
        15
    );
    let rows: Vec<(String, i64)> = backup["tables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|table| {
            (
                format!(
                    "{}.{}",
                    table["schema"].as_str().unwrap(),
                    table["table"].as_str().unwrap()
                ),
                table["rows"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            ("audit.events".to_owned(), 10000),
            ("public.big".to_owned(), 3),
            ("public.blobs".to_owned(), 30000),
            ("public.notes".to_owned(), 60000),
        ]
    );

    // No plaintext on disk: the artifact is an age file, and no SQL shows through.
    let artifact = artifact_of(&setup, backup);
    let bytes = std::fs::read(&artifact).unwrap();
    assert!(bytes.starts_with(b"age-encryption.org/v1\n"));
    for plaintext in [&b"PGDMP"[..], b"CREATE TABLE", "ünïcødé".as_bytes()] {
        assert!(
            !bytes
                .windows(plaintext.len())
                .any(|window| window == plaintext)
        );
    }
    assert_eq!(
        files_in(&setup.backups()),
        [
            format!("{name}.dump.zst.age"),
            format!("{name}.manifest.json"),
            "runs.jsonl".to_owned(),
        ]
    );

    // The off-site copy, byte for byte, and listed there.
    let remote_artifact = s3.object_path(BUCKET, &format!("backups/{name}.dump.zst.age"));
    assert_eq!(
        std::fs::read(&remote_artifact).unwrap_or_else(|err| panic!(
            "{}: {err}\n{}",
            remote_artifact.display(),
            s3.log()
        )),
        bytes,
        "the off-site copy matches the local artifact"
    );
    let mut remote_list = setup.backup(&["list", "--remote", "--json"]);
    with_s3(&mut remote_list);
    let remote_list = remote_list.output().unwrap();
    assert_success(&remote_list, "backup list --remote");
    let remote: Vec<serde_json::Value> = serde_json::from_slice(&remote_list.stdout).unwrap();
    assert_eq!(remote, listed);

    // The drill passes.
    let verify = setup.backup(&["verify"]).output().unwrap();
    assert_success(&verify, "backup verify");
    assert!(
        String::from_utf8_lossy(&verify.stdout).contains("every count and checksum matches"),
        "{}",
        String::from_utf8_lossy(&verify.stdout)
    );

    // Drop the database, lose the local copy, restore from off-site.
    setup.postgres.psql("DROP DATABASE app").unwrap();
    std::fs::remove_dir_all(setup.backups()).unwrap();
    let mut restore = setup.backup(&[
        "restore",
        "latest",
        "--target-database",
        "app",
        "--from-remote",
    ]);
    with_s3(&mut restore);
    let restore = restore.output().unwrap();
    assert_success(&restore, "backup restore --from-remote");
    assert_eq!(table_fingerprints(&setup.postgres, "app"), before);

    // Into a database with tables: refused, then allowed with --clean.
    let refused = setup
        .backup(&["restore", name, "--target-database", "app"])
        .output()
        .unwrap();
    let message = assert_failure(&refused, "restore into a non-empty database");
    assert!(
        message.contains("is not empty") && message.contains("--clean"),
        "{message}"
    );
    let clean = setup
        .backup(&["restore", name, "--target-database", "app", "--clean"])
        .output()
        .unwrap();
    assert_success(&clean, "restore --clean");
    assert_eq!(table_fingerprints(&setup.postgres, "app"), before);
}

#[test]
fn damaged_or_undecryptable_backups_are_refused_before_any_database_is_touched() {
    let setup = Setup::new();
    assert_success(&setup.backup(&["run"]).output().unwrap(), "backup run");
    let backup = setup.listed().remove(0);
    let artifact = artifact_of(&setup, &backup);
    let original = std::fs::read(&artifact).unwrap();
    let restore = |what: &str| -> String {
        let output = setup
            .backup(&["restore", "latest", "--target-database", "restored"])
            .output()
            .unwrap();
        let message = assert_failure(&output, what).into_owned();
        assert!(
            !setup.database_exists("restored"),
            "{what}: the target database was created"
        );
        message
    };

    let mut flipped = original.clone();
    let middle = flipped.len() / 2;
    flipped[middle] ^= 0x01;
    std::fs::write(&artifact, &flipped).unwrap();
    let message = restore("a flipped byte");
    assert!(
        message.contains("is damaged") && message.contains("SHA-256"),
        "{message}"
    );

    std::fs::write(&artifact, &original[..original.len() - 1000]).unwrap();
    let message = restore("a truncated file");
    assert!(
        message.contains("is damaged") && message.contains("bytes"),
        "{message}"
    );

    std::fs::write(&artifact, &original).unwrap();
    let other = setup.folder.path().join("other-identity.txt");
    assert_success(
        &setup
            .backup(&["keygen", "--out", other.to_str().unwrap()])
            .output()
            .unwrap(),
        "keygen",
    );
    let output = setup
        .backup(&["restore", "latest", "--target-database", "restored"])
        .env("APP_WEB_BACKUP_IDENTITY_FILE", &other)
        .output()
        .unwrap();
    let message = assert_failure(&output, "a wrong identity");
    assert!(
        message.contains("can decrypt") && message.contains(&setup.recipient),
        "{message}"
    );
    assert!(!setup.database_exists("restored"));

    // The intact file with the right identity restores.
    let output = setup
        .backup(&["restore", "latest", "--target-database", "restored"])
        .output()
        .unwrap();
    assert_success(&output, "restore of the intact backup");
    assert_eq!(
        table_fingerprints(&setup.postgres, "restored"),
        table_fingerprints(&setup.postgres, "app")
    );
}

#[test]
fn failing_dumps_leave_no_artifact_record_the_failure_and_prune_nothing() {
    let mut setup = Setup::new();
    // Two good backups of the same day: a prune that keeps one day would drop the older.
    assert_success(&setup.backup(&["run"]).output().unwrap(), "first backup");
    std::thread::sleep(Duration::from_millis(1100));
    assert_success(&setup.backup(&["run"]).output().unwrap(), "second backup");
    let files = files_in(&setup.backups());
    let prune = [
        "run",
        "--prune",
        "--keep-daily",
        "1",
        "--keep-weekly",
        "0",
        "--keep-monthly",
        "0",
    ];

    // pg_dump itself refused mid-way: a role that may read every table but not the sequence
    // behind audit.events.id, which only pg_dump reads.
    setup
        .postgres
        .psql_in(
            "app",
            "CREATE ROLE reader LOGIN; GRANT USAGE ON SCHEMA audit TO reader; \
             GRANT SELECT ON public.notes, public.blobs, public.big, audit.events TO reader",
        )
        .unwrap();
    let output = setup
        .backup(&prune)
        .env(
            "APP_WEB_DATABASE_URL",
            format!("postgres://reader@127.0.0.1:{}/app", setup.postgres.port),
        )
        .output()
        .unwrap();
    let message = assert_failure(&output, "a dump without read access");
    assert!(message.contains("permission denied"), "{message}");
    assert_eq!(files_in(&setup.backups()).len(), files.len(), "{message}");

    // A wrong password (the server asks for one over TCP here).
    let mut secured = Postgres::start_with(PostgresOptions {
        host_auth: Some("scram-sha-256".into()),
        ..Default::default()
    })
    .unwrap();
    secured.psql("CREATE DATABASE app").unwrap();
    secured
        .psql("ALTER ROLE postgres PASSWORD 'right'")
        .unwrap();
    let wrong = setup.folder.path().join("wrong-password");
    std::fs::write(&wrong, "wrong\n").unwrap();
    let output = setup
        .backup(&prune)
        .env(
            "APP_WEB_DATABASE_URL",
            format!("postgres://postgres@127.0.0.1:{}/app", secured.port),
        )
        .env("APP_WEB_DATABASE_PASSWORD_FILE", &wrong)
        .output()
        .unwrap();
    let message = assert_failure(&output, "a wrong password");
    assert!(
        message.contains("password authentication failed"),
        "{message}"
    );
    secured.stop();

    // The server down.
    setup.postgres.stop();
    let output = setup.backup(&prune).output().unwrap();
    let message = assert_failure(&output, "the server down");
    assert!(message.contains("connect to PostgreSQL"), "{message}");

    assert_eq!(
        files_in(&setup.backups()),
        files,
        "nothing written, nothing pruned"
    );
    let log = std::fs::read_to_string(setup.backups().join("runs.jsonl")).unwrap();
    let entries: Vec<serde_json::Value> = log
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let outcomes: Vec<bool> = entries
        .iter()
        .map(|entry| entry["ok"].as_bool().unwrap())
        .collect();
    assert_eq!(outcomes, [true, true, false, false, false], "{log}");
    assert!(
        entries[2]["error"]
            .as_str()
            .unwrap()
            .contains("pg_dump failed"),
        "{log}"
    );

    // The server back: the next run works.
    setup.postgres.resume().unwrap();
    assert_success(
        &setup.backup(&["run"]).output().unwrap(),
        "backup after the failures",
    );
    assert_eq!(setup.listed().len(), 3);
}

#[test]
fn a_backup_killed_mid_dump_leaves_nothing_listed_and_the_next_run_succeeds() {
    let setup = Setup::new();
    // Another session holds a lock pg_dump must wait for, so the backup stops mid-dump.
    let mut holder = Command::new(Postgres::client_program("psql").unwrap())
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &setup.postgres.port.to_string(),
            "-U",
            "postgres",
            "-d",
            "app",
            "-X",
            "-q",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let stdin = holder.stdin.as_mut().unwrap();
        writeln!(
            stdin,
            "BEGIN; LOCK TABLE public.blobs IN ACCESS EXCLUSIVE MODE;"
        )
        .unwrap();
        stdin.flush().unwrap();
    }
    wait_for(Duration::from_secs(10), "the lock to be held", || {
        setup
            .postgres
            .psql_in("app", "SELECT count(*) FROM pg_locks WHERE mode = 'AccessExclusiveLock' AND relation = 'public.blobs'::regclass")
            .unwrap()
            .trim()
            == "1"
    })
    .unwrap();

    let mut backup = setup.backup(&["run"]).spawn().unwrap();
    wait_for(Duration::from_secs(20), "pg_dump to wait for the lock", || {
        setup
            .postgres
            .psql("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'pg_dump' AND wait_event_type = 'Lock'")
            .unwrap()
            .trim()
            == "1"
    })
    .unwrap();
    let partial: Vec<String> = files_in(&setup.backups())
        .into_iter()
        .filter(|name| name.starts_with(".partial-"))
        .collect();
    assert_eq!(partial.len(), 1, "a temporary file is being written");
    backup.kill().unwrap();
    backup.wait().unwrap();
    drop(holder.stdin.take());
    holder.wait().unwrap();

    assert!(
        setup.listed().is_empty(),
        "nothing is listed after the kill"
    );
    assert_success(&setup.backup(&["run"]).output().unwrap(), "the next run");
    let listed = setup.listed();
    assert_eq!(listed.len(), 1);
    let name = listed[0]["name"].as_str().unwrap();
    assert_eq!(
        files_in(&setup.backups()),
        [
            format!("{name}.dump.zst.age"),
            format!("{name}.manifest.json"),
            "runs.jsonl".to_owned(),
        ],
        "the leftover is gone"
    );
}

#[test]
fn prune_over_a_year_of_daily_backups_keeps_exactly_the_policys_set() {
    use app_web::backup::manifest::{Manifest, Sizes, Versions};
    let folder = tempfile::tempdir().unwrap();
    let first = time::macros::datetime!(2025-01-01 03:00 UTC);
    // A year of the schedule's backups, and two a deploy took under a prefix of its own,
    // which the schedule's prune neither deletes nor counts.
    let deploys = [
        (first + time::Duration::days(10), "predeploy"),
        (first + time::Duration::days(200), "predeploy"),
    ];
    let days = (0..365).map(|day| (first + time::Duration::days(day), "app"));
    for (created_at, prefix) in days.chain(deploys) {
        let name = app_web::backup::manifest::backup_name(prefix, created_at);
        let manifest = Manifest {
            format: app_web::backup::manifest::FORMAT,
            artifact: Manifest::artifact_file(&name),
            name: name.clone(),
            created_at,
            duration_seconds: 1.0,
            database: "app".into(),
            postgres: Versions {
                server: "15".into(),
                server_num: 150000,
                pg_dump: "pg_dump (PostgreSQL) 15".into(),
            },
            schema_version: None,
            sha256: "0".repeat(64),
            sizes: Sizes {
                dump_bytes: 1,
                compressed_bytes: 1,
                artifact_bytes: 1,
            },
            compression: "zstd level 3".into(),
            recipients: vec![],
            tables: vec![],
        };
        std::fs::write(folder.path().join(Manifest::artifact_file(&name)), b"x").unwrap();
        std::fs::write(
            folder.path().join(Manifest::manifest_file(&name)),
            manifest.to_json().unwrap(),
        )
        .unwrap();
    }
    let prune = |dry_run: bool| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_app-web"));
        command
            .args(["backup", "prune", "--dir"])
            .arg(folder.path())
            .args([
                "--keep-daily",
                "7",
                "--keep-weekly",
                "4",
                "--keep-monthly",
                "12",
            ]);
        if dry_run {
            command.arg("--dry-run");
        }
        let output = command.output().unwrap();
        assert_success(&output, "backup prune");
        String::from_utf8(output.stdout).unwrap()
    };

    let planned = prune(true);
    assert_eq!(
        planned
            .lines()
            .filter(|line| line.starts_with("would delete "))
            .count(),
        345
    );
    assert_eq!(
        files_in(folder.path()).len(),
        734,
        "a dry run deletes nothing"
    );

    prune(false);
    let kept: Vec<String> = files_in(folder.path())
        .into_iter()
        .filter_map(|name| name.strip_suffix(".manifest.json").map(str::to_owned))
        .collect();
    let expected: Vec<String> = [
        "20250131", "20250228", "20250331", "20250430", "20250531", "20250630", "20250731",
        "20250831", "20250930", "20251031", "20251130", "20251214", "20251221", "20251225",
        "20251226", "20251227", "20251228", "20251229", "20251230", "20251231",
    ]
    .iter()
    .map(|day| format!("app-{day}T030000Z"))
    .chain([
        "predeploy-20250111T030000Z".to_owned(),
        "predeploy-20250720T030000Z".to_owned(),
    ])
    .collect();
    assert_eq!(kept, expected);
    assert_eq!(
        files_in(folder.path()).len(),
        44,
        "each kept backup keeps its artifact"
    );
}

#[test]
fn the_schedule_backs_up_verifies_and_reports_metrics_until_sigterm() {
    let setup = Setup::new();
    let port = local_servers::free_port().unwrap();
    let mut schedule = setup
        .backup(&[
            "schedule",
            "--cron",
            "*/2 * * * * *",
            "--verify",
            "--metrics-listen",
        ])
        .arg(format!("127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let metrics = || support::http_get(&format!("http://127.0.0.1:{port}/metrics")).1;
    let verified = wait_for(
        Duration::from_secs(90),
        "a backup and a passing drill",
        || metrics().contains("app_backup_last_verify_success 1"),
    );
    let text = metrics();
    let _ = Command::new("kill")
        .args(["-TERM", &schedule.id().to_string()])
        .status();
    let status = schedule.wait().unwrap();
    verified.unwrap_or_else(|err| panic!("{err:#}\n{text}"));
    for name in [
        "app_backup_last_success_timestamp_seconds",
        "app_backup_last_duration_seconds",
        "app_backup_last_size_bytes",
        "app_backup_runs_total{result=\"success\"}",
        "app_backup_next_run_timestamp_seconds",
    ] {
        assert!(text.contains(name), "{name} in:\n{text}");
    }
    assert!(
        status.success(),
        "SIGTERM stops the schedule cleanly: {status}"
    );
    assert!(!setup.listed().is_empty());
}

#[test]
fn missing_settings_are_named_with_what_to_set() {
    let setup = Setup::new();
    let output = backup_command(&setup.postgres, &setup.backups())
        .arg("run")
        .output()
        .unwrap();
    let message = assert_failure(&output, "a run without recipients");
    assert!(message.contains("APP_WEB_BACKUP_RECIPIENTS"), "{message}");

    let output = setup
        .backup(&["run"])
        .env("APP_WEB_BACKUP_RECIPIENTS", "age1notakey")
        .output()
        .unwrap();
    let message = assert_failure(&output, "a malformed recipient");
    assert!(message.contains("age1notakey"), "{message}");

    let output = setup
        .backup(&["schedule", "--cron", "at three"])
        .output()
        .unwrap();
    let message = assert_failure(&output, "a malformed schedule");
    assert!(message.contains("\"at three\""), "{message}");
    // The two refused runs are in the run log; the schedule never started one.
    let log = std::fs::read_to_string(setup.backups().join("runs.jsonl")).unwrap();
    assert_eq!(log.lines().count(), 2, "{log}");
    assert!(
        log.lines().all(|line| line.contains("\"ok\":false")),
        "{log}"
    );
}
