//! Desktop crash reports and analytics end to end: app-desktop is bundled as a signed deb with
//! its test hooks (the build's Breakpad symbols beside it) and published to a real app-web on
//! PostgreSQL with `cargo xtask release publish` (twice: a re-run changes nothing), which
//! uploads the symbols; the stripped binary from the deb runs under Xvfb. Without consent it crashes and keeps the report, and a capturing server on
//! loopback sees no request at all; with consent the queued report, a second crash and the
//! analytics events reach app-web, symbolication names the crashing function in the crashing
//! thread's top frames, and a panic arrives with its message.

use e2e as support;

use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use local_servers::Xvfb;
use reqwest::StatusCode;
use serde_json::{Value, json};
use support::update_server::{TOKEN, UpdateServer};
use support::{DesktopRun, assert_success, xtask};

const IDENTIFIER: &str = "dev.app-project.desktop";

/// The password of the updater key the test makes.
const PASSWORD: &str = "updater-key-password-for-crash-tests";

fn file_ending(dir: &Path, suffix: &str) -> PathBuf {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .find(|path| path.to_string_lossy().ends_with(suffix))
        .unwrap_or_else(|| panic!("no *{suffix} in {}", dir.display()))
}

/// A server on loopback that accepts connections and records the first bytes of each; the
/// app is never pointed anywhere else, so anything it sends would land here.
struct Capture {
    address: std::net::SocketAddr,
    seen: Arc<Mutex<Vec<String>>>,
}

impl Capture {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = Arc::clone(&seen);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
                let mut head = [0u8; 256];
                let read = stream.read(&mut head).unwrap_or(0);
                record
                    .lock()
                    .unwrap()
                    .push(String::from_utf8_lossy(&head[..read]).into_owned());
            }
        });
        Self { address, seen }
    }

    fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    fn requests(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}

/// The app under test, talking to loopback past any proxy.
fn start_app(binary: &Path, xvfb: &Xvfb, home: &Path, env: &[(&str, &str)]) -> DesktopRun {
    let mut env = env.to_vec();
    env.push(("NO_PROXY", "127.0.0.1"));
    DesktopRun::start(binary, xvfb, home, &env)
}

/// Waits for the app to end (a crash ends it) and for its monitor to finish.
fn wait_for_exit(run: &mut DesktopRun, limit: Duration) -> std::process::ExitStatus {
    let deadline = std::time::Instant::now() + limit;
    loop {
        if let Some(status) = run.child.try_wait().unwrap() {
            return status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the app did not end; its log:\n{}",
            run.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn queued_reports(home: &Path) -> Vec<PathBuf> {
    let queue = home.join("data").join(IDENTIFIER).join("crash-reports");
    std::fs::read_dir(queue)
        .map(|entries| {
            entries
                .map(|entry| entry.unwrap().path())
                .filter(|path| path.extension().is_some_and(|ext| ext == "dmp"))
                .collect()
        })
        .unwrap_or_default()
}

fn write_consent(home: &Path, crash_reports: bool, analytics: bool) {
    let dir = home.join("config").join(IDENTIFIER);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("privacy.json"),
        json!({ "asked": true, "crash_reports": crash_reports, "analytics": analytics })
            .to_string(),
    )
    .unwrap();
}

/// The ids of the stored reports.
async fn report_ids(server: &UpdateServer) -> Vec<String> {
    let (status, groups) = server.admin_get("/api/admin/crashes/groups").await;
    assert_eq!(status, StatusCode::OK, "{groups}");
    let mut ids = Vec::new();
    for group in groups.as_array().unwrap() {
        let path = format!(
            "/api/admin/crashes/groups/{}",
            group["group_id"].as_str().unwrap()
        );
        let (_, detail) = server.admin_get(&path).await;
        for report in detail["reports"].as_array().unwrap() {
            ids.push(report["id"].as_str().unwrap().to_owned());
        }
    }
    ids
}

/// The symbolicated reports once `count` of them are processed.
async fn processed_reports(server: &UpdateServer, count: usize, log: &str) -> Vec<Value> {
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        let mut reports = Vec::new();
        for id in report_ids(server).await {
            let (_, report) = server
                .admin_get(&format!("/api/admin/crashes/reports/{id}"))
                .await;
            reports.push(report);
        }
        if reports.len() >= count {
            return reports;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{count} processed reports expected, have {}: {reports:?}\nthe app's log:\n{log}",
            reports.len()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn functions(report: &Value) -> Vec<String> {
    report["stack"]
        .as_array()
        .map(|frames| {
            frames
                .iter()
                .map(|frame| frame["function"].as_str().unwrap_or("?").to_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crashes_and_events_reach_app_web_only_with_consent_and_are_symbolicated() {
    let work = tempfile::tempdir().unwrap();

    // One signed build with the test hooks. Only the secret key is given: without the public
    // key built in, the app's updater stays off and asks no server anything.
    let (public_key, secret) = support::updater_keys(&work.path().join("keys"), PASSWORD);
    // The update server checks published signatures against the same key.
    let server = UpdateServer::start_with(
        None,
        &[
            "--crash-dir",
            "{folder}/crashes",
            "--updater-public-key",
            public_key.trim(),
        ],
    );
    let out = work.path().join("bundle");
    let built = xtask(
        &[
            "bundle",
            "--kind",
            "deb",
            "--features",
            "test-hooks",
            "--out",
            out.to_str().unwrap(),
        ],
        &[
            ("TAURI_SIGNING_PRIVATE_KEY", secret.to_str().unwrap()),
            ("TAURI_SIGNING_PRIVATE_KEY_PASSWORD", PASSWORD),
        ],
    );
    assert_success(&built, "cargo xtask bundle --features test-hooks");
    let deb = file_ending(&out, ".deb");
    assert!(file_ending(&out, "-symbols.zip").is_file());

    // Published: the symbols to the symbol store, the release to the update server; twice.
    let token_file = work.path().join("token");
    std::fs::write(&token_file, TOKEN).unwrap();
    let app_web = server.app.url("");
    let unchecked = xtask(
        &[
            "release",
            "publish",
            out.to_str().unwrap(),
            "--server",
            &app_web,
            "--download-url",
            "https://downloads.app.test/releases",
        ],
        &[],
    );
    assert!(!unchecked.status.success());
    assert!(
        String::from_utf8_lossy(&unchecked.stderr).contains("TAURI_SIGNING_PUBLIC_KEY"),
        "publishing without checking the signatures is refused, naming the key"
    );
    let assets = work.path().join("assets");
    for attempt in ["first", "second"] {
        let published = xtask(
            &[
                "release",
                "publish",
                out.to_str().unwrap(),
                "--out",
                assets.to_str().unwrap(),
                "--server",
                &app_web,
                "--token-file",
                token_file.to_str().unwrap(),
                "--download-url",
                "https://downloads.app.test/releases",
                "--updater-pubkey",
                public_key.trim(),
            ],
            &[],
        );
        assert_success(
            &published,
            &format!("the {attempt} cargo xtask release publish"),
        );
    }
    // The release's assets, gathered for the GitHub release.
    for asset in [
        "SHA256SUMS",
        "dist-manifest.json",
        "stable/latest.json",
        "beta/latest.json",
    ] {
        assert!(assets.join(asset).is_file(), "{asset} gathered");
    }
    let latest: Value =
        serde_json::from_str(&std::fs::read_to_string(assets.join("stable/latest.json")).unwrap())
            .unwrap();
    assert!(
        latest["platforms"]["linux-x86_64-deb"]["url"]
            .as_str()
            .unwrap()
            .starts_with("https://downloads.app.test/releases/"),
        "{latest}"
    );
    let version = env!("CARGO_PKG_VERSION");
    let (status, release) = server
        .admin_get(&format!("/api/admin/releases/{version}"))
        .await;
    assert_eq!(status, StatusCode::OK, "{release}");
    let deb_name = deb.file_name().unwrap().to_str().unwrap();
    assert_eq!(
        release["artifacts"].as_array().unwrap().len(),
        1,
        "{release}"
    );
    assert_eq!(
        release["artifacts"][0]["url"],
        format!("https://downloads.app.test/releases/{deb_name}")
    );
    assert_eq!(release["artifacts"][0]["bundle_type"], "deb");
    let stored_symbols = server.folder.path().join("crashes/symbols/app-desktop");
    assert_eq!(
        std::fs::read_dir(&stored_symbols)
            .map(|dir| dir.count())
            .unwrap_or(0),
        1,
        "one debug id's symbols in {}",
        stored_symbols.display()
    );

    // The binary the deb ships: stripped, so names can only come from the uploaded symbols.
    let unpacked = work.path().join("unpacked");
    let extracted = Command::new("dpkg-deb")
        .arg("-x")
        .arg(&deb)
        .arg(&unpacked)
        .output()
        .expect("run dpkg-deb");
    assert_success(&extracted, "dpkg-deb -x");
    let binary = unpacked.join("usr/bin/app-desktop");
    let sections = Command::new("readelf")
        .args(["--section-headers", "--wide"])
        .arg(&binary)
        .output()
        .expect("run readelf (binutils)");
    let sections = String::from_utf8_lossy(&sections.stdout);
    for stripped in [".symtab", ".debug_info", ".debug_line"] {
        assert!(
            !sections.contains(stripped),
            "the shipped binary has {stripped}"
        );
    }
    assert!(sections.contains(".note.gnu.build-id"), "{sections}");

    let xvfb = Xvfb::start().expect("start Xvfb");
    let home = work.path().join("home");
    let capture = Capture::start();
    let capture_url = capture.url();

    // No answer yet to the consent question: nothing leaves the app, even with a crash.
    {
        let run = start_app(
            &binary,
            &xvfb,
            &home,
            &[("APP_DESKTOP_TEST_SERVER", &capture_url)],
        );
        let title = format!("App {}", env!("CARGO_PKG_VERSION"));
        run.wait(Duration::from_secs(90), "the app's window", || {
            !xvfb.windows_titled(&title).unwrap_or_default().is_empty()
        });
        std::thread::sleep(Duration::from_secs(3));
    }
    {
        let mut run = start_app(
            &binary,
            &xvfb,
            &home,
            &[
                ("APP_DESKTOP_TEST_SERVER", &capture_url),
                ("APP_DESKTOP_TEST_CRASH", "segfault"),
            ],
        );
        let status = wait_for_exit(&mut run, Duration::from_secs(90));
        assert!(!status.success(), "the app crashed: {status}");
        run.wait(Duration::from_secs(30), "the report saved", || {
            run.log().contains("crash report") && run.log().contains("saved")
        });
        std::thread::sleep(Duration::from_secs(3));
    }
    assert_eq!(
        queued_reports(&home).len(),
        1,
        "the report waits in the queue"
    );
    assert_eq!(
        capture.requests(),
        Vec::<String>::new(),
        "no request may leave the app without consent"
    );
    assert!(report_ids(&server).await.is_empty());

    // Consent given: the queued report goes out at the next start, with the events.
    write_consent(&home, true, true);
    {
        let run = start_app(
            &binary,
            &xvfb,
            &home,
            &[("APP_DESKTOP_TEST_SERVER", &app_web)],
        );
        run.wait(Duration::from_secs(90), "the queued report sent", || {
            run.log().contains("sent")
        });
        let reports = processed_reports(&server, 1, &run.log()).await;
        let report = &reports[0];
        assert_eq!(report["status"], "done", "{report}");
        let signature = report["signature"].as_str().unwrap();
        assert!(
            signature.contains("app_desktop::test_hooks::write_through_null_pointer"),
            "the crashing function in the top frames: {signature}\n{:?}",
            functions(report)
        );
        assert_eq!(report["version"], env!("CARGO_PKG_VERSION"));
        assert_eq!(report["os"], "linux");
        let events = server
            .postgres
            .psql(
                "SELECT count(*) FROM analytics_events \
                 WHERE app = 'app-desktop' AND name = 'app_started'",
            )
            .unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        let mut events = events.trim().to_owned();
        while events == "0" && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(500));
            events = server
                .postgres
                .psql("SELECT count(*) FROM analytics_events WHERE app = 'app-desktop'")
                .unwrap()
                .trim()
                .to_owned();
        }
        assert_ne!(
            events,
            "0",
            "app_started arrived; the app's log:\n{}",
            run.log()
        );
    }
    assert!(
        queued_reports(&home).is_empty(),
        "the sent report left the queue"
    );

    // A panic, with consent: the monitor sends it with its message.
    {
        let mut run = start_app(
            &binary,
            &xvfb,
            &home,
            &[
                ("APP_DESKTOP_TEST_SERVER", &app_web),
                ("APP_DESKTOP_TEST_CRASH", "panic"),
            ],
        );
        wait_for_exit(&mut run, Duration::from_secs(90));
        let reports = processed_reports(&server, 2, &run.log()).await;
        let panic = reports
            .iter()
            .find(|report| !report["panic_message"].is_null())
            .unwrap_or_else(|| panic!("no report with a panic message: {reports:?}"));
        assert!(
            panic["panic_message"]
                .as_str()
                .unwrap()
                .starts_with("test-hooks panic: index 7 is out of range for 3 items"),
            "{panic}"
        );
        assert!(
            functions(panic)
                .iter()
                .any(|function| function.contains("app_desktop::test_hooks::panic_with_message")),
            "{:?}",
            functions(panic)
        );
    }
    assert_eq!(capture.requests(), Vec::<String>::new());
    let (status, versions) = server.admin_get("/api/admin/crashes/versions").await;
    assert_eq!(status, StatusCode::OK);
    eprintln!("crash-free sessions: {versions}");
}
