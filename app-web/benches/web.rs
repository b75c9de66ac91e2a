//! Load benchmark of the notes list endpoint, run by `cargo xtask bench web`: release app-web
//! on real PostgreSQL and Redis started here, driven by wrk over loopback, once with the Redis
//! cache and once without it in the same run, and the ratio between them.

use e2e as support;

use std::time::Duration;

use clap::Parser;
use support::wrk::{self, Measurement};
use support::{Postgres, Redis, RunningBinary};

/// Load-test GET /api/notes?limit=20 with and without the cache.
#[derive(Debug, Parser)]
struct Args {
    #[command(flatten)]
    load: wrk::Load,

    /// Notes in the database before the run
    #[arg(long, default_value_t = 1000)]
    notes: u32,

    /// Passed by `cargo bench`; ignored
    #[arg(long, hide = true)]
    bench: bool,
}

fn drive(server: &RunningBinary, args: &Args) -> Measurement {
    wrk::run(&server.url("/api/notes?limit=20"), &args.load)
}

fn start_app(postgres: &Postgres, redis: Option<&Redis>) -> RunningBinary {
    RunningBinary::start_on(
        postgres,
        redis,
        // Quiet under load, but the harness reads the "listening" line for the port.
        &[
            "--rate-limit-per-minute",
            "0",
            "--log-filter",
            "warn,app_web::server=info",
        ],
    )
}

fn main() {
    let args = Args::parse();
    let postgres = Postgres::start().expect("start PostgreSQL");
    let redis = Redis::start().expect("start Redis");

    let cached = start_app(&postgres, Some(&redis));
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        app_web::tls::install_crypto_provider();
        let client = reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(10)).build().unwrap();
        for n in 0..args.notes {
            let response = client
                .post(cached.url("/api/notes"))
                .json(&serde_json::json!({ "title": format!("note {n}"), "body": "benchmark ".repeat(20) }))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 201);
        }
    });
    eprintln!(
        "bench web: {} notes; wrk with {} connections for {}s per run on GET /api/notes?limit=20",
        args.notes, args.load.connections, args.load.duration_secs
    );

    let with_cache = drive(&cached, &args);
    drop(cached);
    let uncached = start_app(&postgres, None);
    let without_cache = drive(&uncached, &args);
    drop(uncached);

    wrk::print_against_baseline(
        ("redis cache", &with_cache),
        ("no cache (baseline)", &without_cache),
        "cache / no cache",
    );
}
