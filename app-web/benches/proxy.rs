//! Load benchmark of nginx in front of app-web, run by `cargo xtask bench proxy`: the
//! project's nginx configuration over TLS (HTTP/1.1 keep-alive, as wrk speaks it) proxying
//! GET /api/info to release app-web, next to the same nginx serving a static file with the
//! very same bytes, in the same run, and the ratio between them.

use e2e as support;

use clap::Parser;
use support::RunningBinary;
use support::proxy::Proxy;
use support::wrk;

/// Load-test nginx proxying to app-web against nginx serving a static file.
#[derive(Debug, Parser)]
struct Args {
    #[command(flatten)]
    load: wrk::Load,

    /// Passed by `cargo bench`; ignored
    #[arg(long, hide = true)]
    bench: bool,
}

/// wrk sends the URL's host as SNI and cannot be told an address for a name, so the bench
/// serves `localhost`.
const SERVER_NAME: &str = "localhost";

fn main() {
    let args = Args::parse();
    let app = RunningBinary::start(&["--log-filter", "warn,app_web::server=info"]);
    let body = std::process::Command::new("curl")
        .args(["--silent", "--fail"])
        .arg(app.url("/api/info"))
        .output()
        .expect("run curl");
    assert!(body.status.success(), "app-web answers /api/info");

    let static_root = tempfile::tempdir().unwrap();
    std::fs::set_permissions(
        static_root.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    std::fs::write(static_root.path().join("baseline.json"), &body.stdout).unwrap();
    // The baseline goes through the same TLS, headers and rate limiting, but nginx answers
    // from disk instead of asking app-web.
    let baseline = format!(
        "        location = /baseline.json {{\n            limit_req zone=per_client burst=100000 nodelay;\n            include snippets/security-headers.conf;\n            root {};\n        }}\n",
        static_root.path().display()
    );
    // A rate and burst no benchmark reaches (nginx counts in milliseconds, so at tens of
    // thousands of requests a second the burst matters too): this measures the proxy, not
    // the limiter.
    let proxy = Proxy::start_for(app.address, SERVER_NAME, ("1000000r/s", 100_000), &baseline);
    let url = |path: &str| format!("https://{SERVER_NAME}:{}{path}", proxy.https);

    eprintln!(
        "bench proxy: {}-byte answers over TLS; wrk with {} connections for {}s per run",
        body.stdout.len(),
        args.load.connections,
        args.load.duration_secs
    );
    let proxied = wrk::run(&url("/api/info"), &args.load);
    let static_file = wrk::run(&url("/baseline.json"), &args.load);

    wrk::print_against_baseline(
        ("nginx -> app-web /api/info", &proxied),
        ("nginx static file (baseline)", &static_file),
        "proxied / static",
    );
}
