//! Ingestion benchmark, run by `cargo xtask bench ingest`.
//!
//! Events: wrk posts batches of analytics events to release app-web's `POST /api/events` on a
//! real PostgreSQL for the run's duration; the events stored per second (counted in the table)
//! are set against a plain `COPY` of the same number of the same rows into the same table, in
//! the same run, as a ratio.
//!
//! Symbolication: a minidump of a running app-desktop release build (written by
//! minidump-writer) is symbolicated with that build's Breakpad symbols, first with a cold symbol
//! cache, then again and again with the cache warm, as app-web's worker does between reports.

use e2e as support;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::Parser;
use support::{Postgres, RunningBinary, wrk};

/// Events per second through the endpoint against COPY; symbolication time per minidump.
#[derive(Debug, Parser)]
struct Args {
    #[command(flatten)]
    load: wrk::Load,

    /// Events in each batch wrk posts
    #[arg(long, default_value_t = 100)]
    batch: usize,

    /// app-desktop release binary with its line tables, to dump and symbolicate
    #[arg(long)]
    desktop_binary: Option<PathBuf>,

    /// Symbol store folder with that binary's symbols (`cargo xtask symbols dump`)
    #[arg(long)]
    symbols: Option<PathBuf>,

    /// Warm symbolications to average
    #[arg(long, default_value_t = 20)]
    repeat: u32,

    /// Passed by `cargo bench`; ignored
    #[arg(long, hide = true)]
    bench: bool,
}

const COLUMNS: &str =
    "occurred_at, name, props, app, session_id, user_hash, app_version, os, locale";

fn batch(size: usize) -> serde_json::Value {
    let names = ["app_started", "feature_used", "update_installed"];
    serde_json::json!({
        "app": "app-desktop",
        "session_id": "0123456789abcdef0123456789abcdef",
        "app_version": "1.4.2",
        "os": "linux",
        "locale": "en-GB",
        "events": (0..size).map(|n| serde_json::json!({
            "name": names[n % names.len()],
            "occurred_at": "2026-11-28T01:02:03Z",
            "props": {"feature": "notes", "n": n},
        })).collect::<Vec<_>>(),
    })
}

fn count_events(postgres: &Postgres) -> u64 {
    postgres
        .psql("SELECT count(*) FROM analytics_events")
        .expect("count events")
        .trim()
        .parse()
        .expect("a count")
}

fn main() {
    let args = Args::parse();
    let postgres = Postgres::start().expect("start PostgreSQL");
    let app = RunningBinary::start_on(
        &postgres,
        None,
        &["--log-filter", "warn,app_web::server=info"],
    );
    let folder = tempfile::tempdir().unwrap();

    // Events through the endpoint.
    let body = batch(args.batch).to_string();
    let script = folder.path().join("events.lua");
    std::fs::write(
        &script,
        format!(
            "wrk.method = \"POST\"\nwrk.headers[\"Content-Type\"] = \"application/json\"\nwrk.headers[\"User-Agent\"] = \"bench\"\nwrk.body = [[{body}]]\n"
        ),
    )
    .unwrap();
    eprintln!(
        "bench ingest: batches of {} events; wrk with {} connections for {}s",
        args.batch, args.load.connections, args.load.duration_secs
    );
    let before = count_events(&postgres);
    let started = Instant::now();
    let measured = wrk::run_script(&app.url("/api/events"), &args.load, Some(&script));
    let elapsed = started.elapsed().as_secs_f64();
    let stored = count_events(&postgres) - before;
    assert_eq!(measured.non_2xx, 0, "every batch accepted");
    let endpoint_rate = stored as f64 / elapsed;

    // The same number of the same rows with COPY.
    let csv = folder.path().join("events.csv");
    {
        use std::io::Write;
        let mut file = std::io::BufWriter::new(std::fs::File::create(&csv).unwrap());
        let events = batch(args.batch);
        let events = events["events"].as_array().unwrap();
        for n in 0..stored as usize {
            let event = &events[n % events.len()];
            let props = event["props"].to_string().replace('"', "\"\"");
            writeln!(
                file,
                "2026-11-28T01:02:03Z,{},\"{props}\",app-desktop,0123456789abcdef0123456789abcdef,\\x{},1.4.2,linux,en-GB",
                event["name"].as_str().unwrap(),
                "ab".repeat(32)
            )
            .unwrap();
        }
    }
    let before = count_events(&postgres);
    let started = Instant::now();
    postgres
        .psql(&format!(
            "\\copy analytics_events ({COLUMNS}) FROM '{}' WITH (FORMAT csv)",
            csv.display()
        ))
        .expect("COPY the same rows");
    let copy_elapsed = started.elapsed().as_secs_f64();
    assert_eq!(
        count_events(&postgres) - before,
        stored,
        "COPY stored every row"
    );
    let copy_rate = stored as f64 / copy_elapsed;

    println!(
        "{:<44} {:>14} {:>10}",
        "configuration", "events/s", "p99 ms"
    );
    println!(
        "{:<44} {:>14.0} {:>10.2}",
        format!("POST /api/events ({} per batch)", args.batch),
        endpoint_rate,
        measured.p99_ms
    );
    println!(
        "{:<44} {:>14.0} {:>10}",
        "plain COPY of the same rows (baseline)", copy_rate, "-"
    );
    println!(
        "ratio (endpoint / COPY): {:.2}x events/s ({stored} events, {:.1} s through the endpoint, {:.2} s by COPY)",
        endpoint_rate / copy_rate,
        elapsed,
        copy_elapsed
    );

    if let (Some(binary), Some(symbols)) = (&args.desktop_binary, &args.symbols) {
        symbolication(binary, symbols, args.repeat);
    } else {
        eprintln!(
            "bench ingest: no --desktop-binary and --symbols, so no symbolication figures (`cargo xtask bench ingest` passes both)"
        );
    }
}

/// Dumps the running app-desktop and times symbolicating the dump, cold and warm.
fn symbolication(binary: &std::path::Path, symbols: &std::path::Path, repeat: u32) {
    let xvfb = local_servers::Xvfb::start().expect("start Xvfb");
    let home = tempfile::tempdir().unwrap();
    let mut app = support::DesktopRun::start(binary, &xvfb, home.path(), &[]);
    let title = format!("App {}", env!("CARGO_PKG_VERSION"));
    app.wait(Duration::from_secs(60), "app-desktop's window", || {
        !xvfb.windows_titled(&title).unwrap_or_default().is_empty()
    });
    let dump = support::minidump_of(&mut app.child);

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let symbolicator = app_web::crashes::symbolicate::Symbolicator::new(symbols.to_owned());
    let started = Instant::now();
    let first = runtime
        .block_on(symbolicator.process(&dump))
        .expect("symbolicate");
    let cold = started.elapsed();
    let started = Instant::now();
    for _ in 0..repeat {
        runtime
            .block_on(symbolicator.process(&dump))
            .expect("symbolicate");
    }
    let warm = started.elapsed() / repeat.max(1);
    let named = first
        .frames
        .iter()
        .filter(|frame| frame.function.is_some())
        .count();
    println!(
        "symbolication of a {} KiB minidump of app-desktop ({} of {} crashing-thread frames named): cold cache {:.1} ms, warm cache {:.1} ms per minidump (mean of {repeat})",
        dump.len() / 1024,
        named,
        first.frames.len(),
        cold.as_secs_f64() * 1000.0,
        warm.as_secs_f64() * 1000.0
    );
}
