//! The desktop updater end to end, on this machine, as root: app-desktop is bundled as a deb at
//! the workspace version and, from the same source with only the version changed through
//! Tauri's configuration, as a signed newer deb; the newer one is published to a real app-web
//! on PostgreSQL, the older one installed with dpkg and launched under Xvfb with automatic
//! installs on. With one byte of the served bundle changed the update is refused and the old
//! version stays; with the real bundle it is downloaded, verified, installed and the app
//! restarts as the new version; offered the older version as a plain update (by a front that
//! stands for a compromised update server) the new version refuses it and stays; with the
//! rollout halted the check gets 204.

use e2e as support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use local_servers::Xvfb;
use reqwest::StatusCode;
use serde_json::{Value, json};
use support::update_server::UpdateServer;
use support::{DesktopRun, assert_success, xtask};

/// The version the second bundle is built at; the first is the workspace's.
const NEXT: &str = "0.2.0";
const PASSWORD: &str = "updater-key-password-for-tests";
const PACKAGE: &str = "app-desktop";

/// The one deb in a bundle folder.
fn deb_in(dir: &Path) -> PathBuf {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .find(|path| path.extension().is_some_and(|ext| ext == "deb"))
        .unwrap_or_else(|| panic!("no deb in {}", dir.display()))
}

/// The version dpkg has installed of app-desktop, if any.
fn installed_version() -> Option<String> {
    let output = Command::new("dpkg-query")
        .args(["--showformat=${Status} ${Version}", "--show", PACKAGE])
        .output()
        .expect("run dpkg-query");
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.strip_prefix("install ok installed ")
        .map(str::to_owned)
}

fn dpkg_install(deb: &Path) {
    let output = Command::new("dpkg")
        .arg("--install")
        .arg(deb)
        .output()
        .expect("run dpkg");
    assert_success(&output, &format!("dpkg --install {}", deb.display()));
}

/// Removes the package this test installed, however the test ends.
struct Uninstall;

impl Drop for Uninstall {
    fn drop(&mut self) {
        let _ = Command::new("dpkg").args(["--purge", PACKAGE]).output();
    }
}

/// The bundles of the update, served over HTTP on loopback as a download server would.
async fn serve_files(dir: PathBuf) -> std::net::SocketAddr {
    use axum::extract::Path as UrlPath;
    use axum::http::StatusCode as Status;
    let app = axum::Router::new().route(
        "/{file}",
        axum::routing::get(move |UrlPath(file): UrlPath<String>| {
            let dir = dir.clone();
            async move {
                if file.contains('/') || file.starts_with('.') {
                    return Err(Status::NOT_FOUND);
                }
                std::fs::read(dir.join(file)).map_err(|_| Status::NOT_FOUND)
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    address
}

/// The update endpoint the bundles are built with: it passes every check on to app-web, unless
/// the test sets an answer of its own, as an update server in an attacker's hands would give.
async fn front(app_web: String, forged: Arc<Mutex<Option<Value>>>) -> std::net::SocketAddr {
    use axum::extract::{OriginalUri, State};
    use axum::http::StatusCode as Status;
    use axum::response::IntoResponse;
    type Forged = Arc<Mutex<Option<Value>>>;
    async fn answer(
        State((app_web, forged)): State<(String, Forged)>,
        OriginalUri(uri): OriginalUri,
    ) -> axum::response::Response {
        if let Some(body) = forged.lock().unwrap().clone() {
            return axum::Json(body).into_response();
        }
        let passed = support::http_client()
            .get(format!("{app_web}{uri}"))
            .send()
            .await
            .unwrap();
        let status = Status::from_u16(passed.status().as_u16()).unwrap();
        let body = passed.bytes().await.unwrap();
        (status, [("content-type", "application/json")], body).into_response()
    }
    let app = axum::Router::new()
        .fallback(answer)
        .with_state((app_web, forged));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    address
}

/// One run of the installed app under Xvfb with its own folders (see [`DesktopRun`]); the app
/// and whatever it restarted into are killed on drop.
struct Launch<'a> {
    xvfb: &'a Xvfb,
    run: DesktopRun,
}

impl<'a> Launch<'a> {
    fn start(xvfb: &'a Xvfb, home: &Path) -> Self {
        let binary = PathBuf::from(format!("/usr/bin/{PACKAGE}"));
        Self {
            xvfb,
            run: DesktopRun::start(&binary, xvfb, home, &[]),
        }
    }

    fn log(&self) -> String {
        self.run.log()
    }

    /// Waits until the app's log holds `line`.
    fn wait_for_log(&self, line: &str, limit: Duration) {
        self.run.wait(limit, &format!("the log line {line:?}"), || {
            self.log().contains(line)
        });
    }

    /// Waits for a window titled "App <version>", which app.js sets once Tauri has answered.
    fn wait_for_version(&self, version: &str, limit: Duration) {
        let title = format!("App {version}");
        self.run
            .wait(limit, &format!("a window titled {title:?}"), || {
                !self.xvfb.windows_titled(&title).unwrap().is_empty()
            });
    }
}

impl Drop for Launch<'_> {
    fn drop(&mut self) {
        let _ = self.run.child.kill();
        let _ = self.run.child.wait();
        // A restarted app is a new process: find it by its window.
        for version in [env!("CARGO_PKG_VERSION"), NEXT] {
            for window in self
                .xvfb
                .windows_titled(&format!("App {version}"))
                .unwrap_or_default()
            {
                if let Ok(pid) = self.xvfb.window_pid(&window) {
                    let _ = Command::new("kill").arg(pid.to_string()).status();
                }
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_desktop_app_updates_itself_from_the_update_server() {
    let id = Command::new("id").arg("-u").output().expect("run id");
    assert_eq!(
        String::from_utf8_lossy(&id.stdout).trim(),
        "0",
        "this test installs app-desktop with dpkg and must run as root"
    );
    assert!(
        Command::new("sudo").arg("--version").output().is_ok(),
        "the updater installs a deb through sudo when pkexec is missing: install sudo (`cargo xtask setup`)"
    );
    assert!(
        installed_version().is_none(),
        "{PACKAGE} is already installed on this machine; this test would replace it"
    );
    let _uninstall = Uninstall;

    let work = tempfile::tempdir().unwrap();
    let served = work.path().join("served");
    std::fs::create_dir_all(&served).unwrap();
    let downloads = serve_files(served.clone()).await;

    // A key pair; the public half is built into both bundles and given to the update server,
    // the secret signs them. The downloads are plain HTTP on loopback, which the server takes
    // only when told (as the test builds allow it, below).
    let (public_key, secret_path) = support::updater_keys(&work.path().join("keys"), PASSWORD);
    let server = UpdateServer::start_with(
        None,
        &[
            "--updater-public-key",
            public_key.trim(),
            "--allow-http-downloads",
        ],
    );
    let signing = [
        ("TAURI_SIGNING_PUBLIC_KEY", public_key.trim()),
        ("TAURI_SIGNING_PRIVATE_KEY", secret_path.to_str().unwrap()),
        ("TAURI_SIGNING_PRIVATE_KEY_PASSWORD", PASSWORD),
    ];
    // The update server on loopback speaks plain HTTP, which the updater takes only when the
    // build allows it; production builds keep the default HTTPS endpoint.
    let forged: Arc<Mutex<Option<Value>>> = Arc::default();
    let front = front(server.app.url(""), forged.clone()).await;
    let endpoint = format!(
        "http://{front}/api/updates/{{{{channel}}}}/{{{{target}}}}/{{{{arch}}}}/{{{{current_version}}}}?bundle_type={{{{bundle_type}}}}&install_id={{{{install_id}}}}"
    );
    let updater = json!({ "endpoints": [endpoint], "dangerousInsecureTransportProtocol": true });
    let bundle = |out: &Path, config: Value| {
        let config = config.to_string();
        let built = xtask(
            &[
                "bundle",
                "--kind",
                "deb",
                "--config",
                &config,
                "--out",
                out.to_str().unwrap(),
            ],
            &signing,
        );
        assert_success(&built, "cargo xtask bundle");
        deb_in(out)
    };
    let current_deb = bundle(
        &work.path().join("current"),
        json!({ "plugins": { "updater": updater } }),
    );
    let next_dir = work.path().join("next");
    let next_deb = bundle(
        &next_dir,
        json!({ "version": NEXT, "plugins": { "updater": updater } }),
    );
    let next_name = next_deb.file_name().unwrap().to_str().unwrap().to_owned();
    assert!(next_name.contains(NEXT), "{next_name}");
    let signature = std::fs::read_to_string(next_dir.join(format!("{next_name}.sig"))).unwrap();
    let verified = xtask(
        &[
            "verify",
            next_dir.to_str().unwrap(),
            "--updater-pubkey",
            public_key.trim(),
        ],
        &[],
    );
    assert_success(&verified, "cargo xtask verify");

    let (status, body) = server
        .publish(&json!({
            "version": NEXT,
            "channel": "stable",
            "notes": "The update under test",
            "pub_date": "2026-11-27T12:00:00Z",
            "rollout_percent": 100,
            "artifacts": [{
                "target": "linux", "arch": "x86_64", "bundle_type": "deb",
                "url": format!("http://{downloads}/{next_name}"),
                "signature": signature.trim(),
            }],
        }))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    dpkg_install(&current_deb);
    let current = env!("CARGO_PKG_VERSION");
    assert_eq!(installed_version().as_deref(), Some(current));
    let home = work.path().join("home");
    let settings_dir = home.join("config/dev.app-project.desktop");
    std::fs::create_dir_all(&settings_dir).unwrap();
    std::fs::write(
        settings_dir.join("settings.json"),
        json!({ "channel": "stable", "auto_check": true, "auto_install": true }).to_string(),
    )
    .unwrap();
    let xvfb = Xvfb::start().expect("start Xvfb");

    // One byte of the served bundle changed: the signature does not match, nothing installs.
    let mut tampered = std::fs::read(&next_deb).unwrap();
    let middle = tampered.len() / 2;
    tampered[middle] ^= 0x01;
    std::fs::write(served.join(&next_name), &tampered).unwrap();
    {
        let launch = Launch::start(&xvfb, &home);
        launch.wait_for_log(
            &format!("update to {NEXT} refused"),
            Duration::from_secs(120),
        );
        assert!(launch.log().contains("signature"), "{}", launch.log());
        launch.wait_for_version(current, Duration::from_secs(60));
        assert_eq!(installed_version().as_deref(), Some(current));
    }

    // The real bundle: downloaded, verified, installed, and the app restarts as the new version.
    std::fs::copy(&next_deb, served.join(&next_name)).unwrap();
    {
        let launch = Launch::start(&xvfb, &home);
        launch.wait_for_log(
            &format!("installed {NEXT}; restarting"),
            Duration::from_secs(180),
        );
        assert_eq!(installed_version().as_deref(), Some(NEXT));
        launch.wait_for_version(NEXT, Duration::from_secs(120));
        let log = launch.log();
        assert!(
            log.contains("no update on stable"),
            "the restarted app checks again and finds nothing newer:\n{log}"
        );
    }

    // A plain offer of the older, validly signed version (as a compromised server could make):
    // the new version refuses it and stays.
    let current_name = current_deb
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    std::fs::copy(&current_deb, served.join(&current_name)).unwrap();
    let current_signature =
        std::fs::read_to_string(current_deb.with_file_name(format!("{current_name}.sig"))).unwrap();
    *forged.lock().unwrap() = Some(json!({
        "version": current,
        "url": format!("http://{downloads}/{current_name}"),
        "signature": current_signature.trim(),
        "notes": "An older build",
        "pub_date": "2026-11-27T12:00:00Z",
    }));
    {
        let launch = Launch::start(&xvfb, &home);
        launch.wait_for_log(
            &format!("refused the offer of {current} on stable"),
            Duration::from_secs(60),
        );
        assert!(
            launch.log().contains("did not mark it as a rollback"),
            "{}",
            launch.log()
        );
        launch.wait_for_version(NEXT, Duration::from_secs(60));
        assert_eq!(installed_version().as_deref(), Some(NEXT));
    }
    *forged.lock().unwrap() = None;

    // The rollout halted: the check gets 204 and the app stays as it is.
    let (status, body) = server.change(NEXT, json!({ "halted": true })).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _, _) = server
        .check(&format!(
            "stable/linux/x86_64/{current}?bundle_type=deb&install_id=0123456789abcdef0123456789abcdef"
        ))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    dpkg_install(&current_deb);
    {
        let launch = Launch::start(&xvfb, &home);
        launch.wait_for_log("no update on stable", Duration::from_secs(60));
        launch.wait_for_version(current, Duration::from_secs(60));
        assert_eq!(installed_version().as_deref(), Some(current));
    }
}
