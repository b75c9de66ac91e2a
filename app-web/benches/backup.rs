//! Backup benchmark, run by `cargo xtask bench backup`: on a generated database of about the
//! requested size, `app-web backup run` (pg_dump → zstd → age, with the per-table checksums
//! read from the same snapshot) against plain `pg_dump -Fc` to a file, and `app-web backup
//! restore` against `pg_restore` of that file, in the same run, with ratios and sizes.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use clap::Parser;
use local_servers::Postgres;

/// Time backup and restore against plain pg_dump and pg_restore.
#[derive(Debug, Parser)]
struct Args {
    /// Size of the generated database in MiB
    #[arg(long, default_value_t = 1024)]
    size_mib: u64,

    /// Passed by `cargo bench`; ignored
    #[arg(long, hide = true)]
    bench: bool,
}

/// Rows of this table take about this many bytes on disk each, indexes included.
const BYTES_PER_ROW: u64 = 190;

fn timed(what: &str, command: &mut Command) -> Duration {
    let started = Instant::now();
    let output = command
        .output()
        .unwrap_or_else(|err| panic!("run {what}: {err}"));
    let elapsed = started.elapsed();
    assert!(
        output.status.success(),
        "{what} failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    eprintln!("bench backup: {what}: {:.1}s", elapsed.as_secs_f64());
    elapsed
}

fn size_of(path: &Path) -> u64 {
    std::fs::metadata(path).unwrap().len()
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / f64::from(1 << 20)
}

fn main() {
    let args = Args::parse();
    let postgres = Postgres::start().expect("start PostgreSQL");
    let rows = args.size_mib * (1 << 20) / BYTES_PER_ROW;
    eprintln!(
        "bench backup: generating {rows} rows (about {} MiB)",
        args.size_mib
    );
    let started = Instant::now();
    postgres.psql("CREATE DATABASE bench").unwrap();
    postgres
        .psql_in(
            "bench",
            &format!(
                "CREATE TABLE events (id bigint PRIMARY KEY, at timestamptz NOT NULL, \
                 kind text NOT NULL, payload text NOT NULL); \
                 INSERT INTO events SELECT i, '2026-01-01'::timestamptz + i * interval '1 second', \
                 (ARRAY['view', 'click', 'purchase', 'signup'])[1 + i % 4], \
                 md5(i::text) || ' ' || md5((i * 7)::text) || ' user-' || (i % 100000) || ' ünïcødé' \
                 FROM generate_series(1, {rows}) AS i; \
                 CREATE INDEX events_at ON events (at); ANALYZE events;"
            ),
        )
        .unwrap();
    let database_bytes: u64 = postgres
        .psql("SELECT pg_database_size('bench')")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    eprintln!(
        "bench backup: generated {:.0} MiB in {:.0}s",
        mib(database_bytes),
        started.elapsed().as_secs_f64()
    );

    let work = tempfile::tempdir().unwrap();
    let pg_dump = Postgres::client_program("pg_dump").unwrap();
    let pg_restore = Postgres::client_program("pg_restore").unwrap();
    let libpq = |command: &mut Command| {
        command
            .env("PGHOST", "127.0.0.1")
            .env("PGPORT", postgres.port.to_string())
            .env("PGUSER", "postgres");
    };

    // Baseline: pg_dump's own compressed custom format to a file, and pg_restore from it.
    let plain = work.path().join("plain.dump");
    let mut dump = Command::new(&pg_dump);
    dump.args(["--format=custom", "--dbname=bench", "--file"])
        .arg(&plain);
    libpq(&mut dump);
    let plain_backup = timed("pg_dump -Fc", &mut dump);

    let app_web = env!("CARGO_BIN_EXE_app-web");
    let identity = work.path().join("identity.txt");
    let keygen = Command::new(app_web)
        .args(["backup", "keygen", "--out"])
        .arg(&identity)
        .output()
        .unwrap();
    assert!(keygen.status.success());
    let recipient = String::from_utf8(keygen.stdout).unwrap();
    let backups = work.path().join("backups");
    let backup = |args: &[&str]| {
        let mut command = Command::new(app_web);
        command
            .arg("backup")
            .args(args)
            .env(
                "APP_WEB_DATABASE_URL",
                format!("postgres://postgres@127.0.0.1:{}/bench", postgres.port),
            )
            .env("APP_WEB_BACKUP_DIR", &backups)
            .env("APP_WEB_BACKUP_RECIPIENTS", recipient.trim())
            .env("APP_WEB_BACKUP_IDENTITY_FILE", &identity)
            .env("APP_WEB_BACKUP_PG_DUMP", &pg_dump)
            .env("APP_WEB_BACKUP_PG_RESTORE", &pg_restore)
            .env("APP_WEB_LOG", "warn");
        command
    };
    let ours_backup = timed("app-web backup run", &mut backup(&["run"]));
    let listed = backup(&["list", "--json"]).output().unwrap();
    let manifests: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    let artifact = backups.join(manifests[0]["artifact"].as_str().unwrap());

    let mut restore = Command::new(&pg_restore);
    restore
        .args([
            "--dbname=plain_restore",
            "--exit-on-error",
            "--single-transaction",
        ])
        .arg(&plain);
    libpq(&mut restore);
    postgres.psql("CREATE DATABASE plain_restore").unwrap();
    let plain_restore = timed("pg_restore", &mut restore);
    let ours_restore = timed(
        "app-web backup restore",
        &mut backup(&["restore", "latest", "--target-database", "ours_restore"]),
    );

    println!(
        "bench backup: a {:.0} MiB database ({rows} rows), on 127.0.0.1",
        mib(database_bytes)
    );
    println!("{:<40} {:>10} {:>12}", "step", "seconds", "size MiB");
    println!(
        "{:<40} {:>10.1} {:>12.1}",
        "app-web backup run (zstd + age)",
        ours_backup.as_secs_f64(),
        mib(size_of(&artifact))
    );
    println!(
        "{:<40} {:>10.1} {:>12.1}",
        "pg_dump -Fc to a file (baseline)",
        plain_backup.as_secs_f64(),
        mib(size_of(&plain))
    );
    println!(
        "{:<40} {:>10.1} {:>12}",
        "app-web backup restore",
        ours_restore.as_secs_f64(),
        ""
    );
    println!(
        "{:<40} {:>10.1} {:>12}",
        "pg_restore (baseline)",
        plain_restore.as_secs_f64(),
        ""
    );
    println!(
        "ratio (ours / baseline): backup {:.2}x time, {:.2}x size; restore {:.2}x time",
        ours_backup.as_secs_f64() / plain_backup.as_secs_f64(),
        size_of(&artifact) as f64 / size_of(&plain) as f64,
        ours_restore.as_secs_f64() / plain_restore.as_secs_f64()
    );
}
