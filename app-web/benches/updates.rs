//! Load benchmark of the update server, run by `cargo xtask bench updates`: update checks
//! through the project's nginx over TLS to release app-web on a real PostgreSQL holding a
//! release history, next to the same nginx serving a static `latest.json` over the same TLS,
//! in the same run, and the ratios. Each check carries a fresh install id, as a fleet of
//! installs would: while the newest release is part-way through its rollout every answer is
//! the install's own and app-web makes each one; once it reaches 100% one answer serves every
//! install and nginx's cache gives it. A third run sends the rollout checks to app-web
//! directly, to show what nginx and TLS cost.

use e2e as support;

use clap::Parser;
use support::proxy::Proxy;
use support::{Postgres, RunningBinary, wrk};

/// Load-test update checks against a static latest.json.
#[derive(Debug, Parser)]
struct Args {
    #[command(flatten)]
    load: wrk::Load,

    /// Releases published before the load starts
    #[arg(long, default_value_t = 50)]
    releases: u32,

    /// Passed by `cargo bench`; ignored
    #[arg(long, hide = true)]
    bench: bool,
}

/// wrk sends the URL's host as SNI and cannot be told an address for a name.
const SERVER_NAME: &str = "localhost";
const TOKEN: &str = "bench-admin-token-0123456789abcdefghij";
const CHECK: &str = "/api/updates/stable/linux/x86_64/0.0.1?bundle_type=deb";

/// Every request a new install id: a per-thread prefix and a counter.
const UNIQUE_INSTALLS: &str = r#"
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("prefix", string.format("bench-%02d-", threads))
end
local counter = 0
function request()
  counter = counter + 1
  return wrk.format("GET", wrk.path .. "&install_id=" .. prefix .. string.format("%09d", counter))
end
"#;

fn main() {
    let args = Args::parse();
    let postgres = Postgres::start().expect("start PostgreSQL");
    let folder = tempfile::tempdir().unwrap();
    std::fs::set_permissions(
        folder.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let token_file = folder.path().join("admin_token");
    std::fs::write(&token_file, TOKEN).unwrap();
    let keys = support::update_server::UpdaterKeys::generate();
    let app = RunningBinary::start_on(
        &postgres,
        None,
        &[
            "--admin-token-file",
            token_file.to_str().unwrap(),
            "--updater-public-key",
            &keys.public,
            "--log-filter",
            "warn,app_web::server=info",
        ],
    );

    // A release history: every release for two bundle types, the newest at 50%.
    for n in 1..=args.releases {
        let version = format!("0.{n}.0");
        let percent = if n == args.releases { 50 } else { 100 };
        let artifacts: Vec<serde_json::Value> = ["deb", "rpm"]
            .iter()
            .map(|kind| {
                serde_json::json!({
                    "target": "linux", "arch": "x86_64", "bundle_type": kind,
                    "url": format!("https://downloads.test/app-desktop_{version}_amd64.{kind}"),
                    "signature": keys.sign(kind.as_bytes(), &version),
                })
            })
            .collect();
        let release = serde_json::json!({
            "version": version,
            "channel": if n % 5 == 0 && n != args.releases { "beta" } else { "stable" },
            "notes": format!("Release {version}: what changed, in a few lines of text."),
            "rollout_percent": percent,
            "artifacts": artifacts,
        });
        let published = std::process::Command::new("curl")
            .args(["--silent", "--fail", "--noproxy", "*"])
            .args(["-H", &format!("authorization: Bearer {TOKEN}")])
            .args(["-H", "content-type: application/json"])
            .args(["--data", &release.to_string()])
            .arg(app.url("/api/admin/releases"))
            .output()
            .expect("run curl");
        assert!(published.status.success(), "publish {version}");
    }
    let (status, answer) =
        support::http_get(&app.url(&format!("{CHECK}&install_id=bench-probe-1")));
    assert_eq!(status, 200, "an old install is offered an update: {answer}");

    // The static baseline: the same answer as a file, through the same TLS and headers.
    std::fs::write(folder.path().join("latest.json"), &answer).unwrap();
    let baseline = format!(
        "        location = /latest.json {{\n            limit_req zone=per_client burst=100000 nodelay;\n            include snippets/security-headers.conf;\n            root {};\n        }}\n",
        folder.path().display()
    );
    let proxy = Proxy::start_for(app.address, SERVER_NAME, ("1000000r/s", 100_000), &baseline);
    let url = |path: &str| format!("https://{SERVER_NAME}:{}{path}", proxy.https);
    let script = folder.path().join("unique-installs.lua");
    std::fs::write(&script, UNIQUE_INSTALLS).unwrap();

    eprintln!(
        "bench updates: {} releases; wrk with {} connections for {}s per run",
        args.releases, args.load.connections, args.load.duration_secs
    );
    // A rollout under way: every answer is the install's own, so each check reaches app-web.
    let rolling = wrk::run_script(&url(CHECK), &args.load, Some(&script));
    let direct = wrk::run_script(&app.url(CHECK), &args.load, Some(&script));
    // The rollout finished: one answer for every install, which nginx keeps.
    let newest = format!("0.{}.0", args.releases);
    let finished = std::process::Command::new("curl")
        .args(["--silent", "--fail", "--noproxy", "*", "-X", "PATCH"])
        .args(["-H", &format!("authorization: Bearer {TOKEN}")])
        .args(["-H", "content-type: application/json"])
        .args(["--data", r#"{"rollout_percent":100}"#])
        .arg(app.url(&format!("/api/admin/releases/{newest}")))
        .output()
        .expect("run curl");
    assert!(finished.status.success(), "raise {newest} to 100%");
    let settled = wrk::run_script(&url(CHECK), &args.load, Some(&script));
    let static_file = wrk::run(&url("/latest.json"), &args.load);

    for (name, measurement, ratio) in [
        (
            "checks, rollout under way (app-web)",
            &rolling,
            "rollout checks / static",
        ),
        (
            "checks, rollout finished (nginx cache)",
            &settled,
            "settled checks / static",
        ),
        (
            "rollout checks to app-web, no nginx",
            &direct,
            "direct checks / static",
        ),
    ] {
        wrk::print_against_baseline(
            (name, measurement),
            ("nginx static latest.json (baseline)", &static_file),
            ratio,
        );
    }
}
