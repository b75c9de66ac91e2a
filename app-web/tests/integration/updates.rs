//! The update server against a real PostgreSQL: releases published through the admin API,
//! update checks per channel, platform and bundle type, staged rollout, halts, resumes and
//! rollback, idempotent publishing, and bad input answered 400 or 422 naming the field.

use e2e as support;

use reqwest::StatusCode;
use serde_json::{Value, json};
use support::proxy::{Proxy, curl};
use support::update_server::{TOKEN, UpdateServer as Server};
use support::{Postgres, RunningBinary, run_binary};

/// A release with a deb and an AppImage, each signed with the server's updater key.
fn release(server: &Server, version: &str, channel: &str, percent: u8) -> Value {
    json!({
        "version": version,
        "channel": channel,
        "notes": format!("What changed in {version}"),
        "pub_date": "2026-11-20T10:00:00Z",
        "rollout_percent": percent,
        "artifacts": [
            {
                "target": "linux", "arch": "x86_64", "bundle_type": "deb",
                "url": format!("https://downloads.test/app_{version}_amd64.deb"),
                "signature": server.keys.sign(format!("deb {version}").as_bytes(), version),
            },
            {
                "target": "linux", "arch": "x86_64", "bundle_type": "appimage",
                "url": format!("https://downloads.test/app_{version}_amd64.AppImage"),
                "signature": server.keys.sign(format!("appimage {version}").as_bytes(), version),
            },
        ],
    })
}

#[tokio::test]
async fn checks_follow_channels_platforms_rollouts_halts_and_rollbacks() {
    let server = Server::start();
    let mut published = std::collections::BTreeMap::new();
    for (version, channel) in [
        ("0.1.4", "stable"),
        ("0.2.0", "stable"),
        ("0.3.0-beta.1", "beta"),
    ] {
        let release = release(&server, version, channel, 100);
        let (status, body) = server.publish(&release).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        published.insert(version, release);
    }
    let id = "5f0c7c1e-8a1b-4f7e-9d3a-0b6e2a1c9d44";
    let stable_deb =
        |current: &str| format!("stable/linux/x86_64/{current}?bundle_type=deb&install_id={id}");

    // The updater's answer: the newest stable release, the deb's URL and signature.
    let (status, headers, body) = server.check(&stable_deb("0.1.4")).await;
    assert_eq!(
        (status, &body["version"]),
        (StatusCode::OK, &json!("0.2.0"))
    );
    assert_eq!(headers["cache-control"], "public, max-age=60");
    assert_eq!(body["url"], "https://downloads.test/app_0.2.0_amd64.deb");
    assert_eq!(
        body["signature"],
        published["0.2.0"]["artifacts"][0]["signature"]
    );
    assert_eq!(body["rollback"], false);
    assert_eq!(body["notes"], "What changed in 0.2.0");
    assert_eq!(body["pub_date"], "2026-11-20T10:00:00Z");

    let (status, headers, _) = server.check(&stable_deb("0.2.0")).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "nothing newer");
    assert_eq!(headers["cache-control"], "public, max-age=60");
    assert_eq!(
        server
            .offered(&format!(
                "beta/linux/x86_64/0.2.0?bundle_type=deb&install_id={id}"
            ))
            .await
            .as_deref(),
        Some("0.3.0-beta.1")
    );
    assert_eq!(
        server
            .offered("stable/linux/x86_64/0.1.4?bundle_type=rpm")
            .await,
        None,
        "a deb is not offered to an rpm install"
    );
    assert_eq!(server.offered("stable/windows/x86_64/0.1.4").await, None);
    assert_eq!(
        server
            .offered("stable/linux/x86_64/v0.1.4?bundle_type=appimage")
            .await
            .as_deref(),
        Some("0.2.0"),
        "a leading v is accepted"
    );

    // Halted: nobody new gets 0.2.0, and those on it go back to 0.1.4.
    let (status, changed) = server.change("0.2.0", json!({ "halted": true })).await;
    assert_eq!(status, StatusCode::OK, "{changed}");
    assert_eq!(changed["halted"], true);
    assert_eq!(server.offered(&stable_deb("0.1.4")).await, None);
    let (status, _, body) = server.check(&stable_deb("0.2.0")).await;
    assert_eq!(
        (status, &body["version"]),
        (StatusCode::OK, &json!("0.1.4"))
    );
    assert_eq!(body["url"], "https://downloads.test/app_0.1.4_amd64.deb");
    assert_eq!(
        body["rollback"], true,
        "the app installs an older version only when it is marked a rollback"
    );
    // Resumed: offered again, and nobody is sent back.
    server.change("0.2.0", json!({ "halted": false })).await;
    assert_eq!(
        server.offered(&stable_deb("0.1.4")).await.as_deref(),
        Some("0.2.0")
    );
    assert_eq!(server.offered(&stable_deb("0.2.0")).await, None);

    // Staged: at 0% nobody, at 30% some installs and not others, at 100% everybody; a check
    // without an install id waits for 100%.
    server
        .change("0.2.0", json!({ "rollout_percent": 0 }))
        .await;
    assert_eq!(server.offered(&stable_deb("0.1.4")).await, None);
    let (status, changed) = server
        .change("0.2.0", json!({ "rollout_percent": 30 }))
        .await;
    assert_eq!(
        (status, &changed["rollout_percent"]),
        (StatusCode::OK, &json!(30))
    );
    let (_, headers, _) = server.check(&stable_deb("0.1.4")).await;
    assert_eq!(
        headers["cache-control"], "private, max-age=60",
        "an answer that depends on the install is the install's own"
    );
    let mut reached = 0;
    for n in 0..200 {
        let path = format!(
            "stable/linux/x86_64/0.1.4?bundle_type=deb&install_id=install-{n:04}-{}",
            "a".repeat(8)
        );
        if server.offered(&path).await.is_some() {
            reached += 1;
        }
    }
    assert!(
        (20..=100).contains(&reached),
        "30% of 200 installs: {reached}"
    );
    assert_eq!(
        server
            .offered("stable/linux/x86_64/0.1.4?bundle_type=deb")
            .await,
        None
    );
    server
        .change("0.2.0", json!({ "rollout_percent": 100 }))
        .await;
    assert_eq!(
        server
            .offered("stable/linux/x86_64/0.1.4?bundle_type=deb")
            .await
            .as_deref(),
        Some("0.2.0")
    );

    let metrics = support::http_get(&server.app.url("/metrics")).1;
    for outcome in ["update", "rollback", "none"] {
        assert!(
            metrics.contains(&format!(
                "app_web_update_checks_total{{channel=\"stable\",outcome=\"{outcome}\"}}"
            )),
            "{outcome} in:\n{metrics}"
        );
    }
}

#[tokio::test]
async fn publishing_again_changes_nothing_and_a_different_release_is_a_conflict() {
    let server = Server::start();
    let first = release(&server, "1.0.0", "stable", 100);
    assert_eq!(server.publish(&first).await.0, StatusCode::CREATED);
    let (status, body) = server.publish(&first).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "a re-run of the publish job: {body}"
    );
    let mut other = first.clone();
    other["notes"] = json!("Different notes");
    let (status, body) = server.publish(&other).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("1.0.0 is already published"),
        "{body}"
    );
    let listed: Value = server
        .client
        .get(server.app.url("/api/admin/releases"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(listed[0]["notes"], "What changed in 1.0.0");
    assert_eq!(listed[0]["artifacts"].as_array().unwrap().len(), 2);
    let (status, _) = server.change("9.9.9", json!({ "halted": true })).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn bad_input_is_refused_naming_what_is_wrong() {
    let server = Server::start();
    for (path, field, words) in [
        (
            "nightly/linux/x86_64/1.0.0",
            "channel",
            "use stable or beta",
        ),
        (
            "stable/linux/x86_64/1.x",
            "current_version",
            "not a semantic version",
        ),
        (
            "stable/beos/x86_64/1.0.0",
            "target",
            "linux, windows, darwin",
        ),
        ("stable/linux/sparc/1.0.0", "arch", "x86_64"),
        (
            "stable/linux/x86_64/1.0.0?bundle_type=zip",
            "bundle_type",
            "deb",
        ),
        (
            "stable/linux/x86_64/1.0.0?install_id=a%20b",
            "install_id",
            "letters, digits",
        ),
    ] {
        let (status, _, body) = server.check(path).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}");
        assert_eq!(body["field"], field, "{path}: {body}");
        assert!(
            body["message"].as_str().unwrap().contains(words),
            "{path}: {body}"
        );
    }

    let mut bad = release(&server, "1.0.0-rc.1", "stable", 100);
    bad["artifacts"][0]["url"] = json!("ftp://downloads.test/app.deb");
    let (status, body) = server.publish(&bad).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        body["fields"]["version"]
            .as_str()
            .unwrap()
            .contains("beta channel"),
        "{body}"
    );
    assert!(
        body["fields"]["artifacts"]
            .as_str()
            .unwrap()
            .contains("http"),
        "{body}"
    );
    // Artifacts the clients would refuse are refused at publishing, naming the artifact.
    let other_key = support::update_server::UpdaterKeys::generate();
    for (change, words) in [
        (
            ("url", json!("http://downloads.test/app_1.0.0_amd64.deb")),
            "must be https://",
        ),
        (
            ("signature", json!(other_key.sign(b"deb 1.0.0", "1.0.0"))),
            "another key than the updater public key",
        ),
        (
            ("signature", json!("c2lnbmF0dXJl")),
            "not a minisign signature",
        ),
    ] {
        let mut bad = release(&server, "1.0.0", "stable", 100);
        bad["artifacts"][0][change.0] = change.1;
        let (status, body) = server.publish(&bad).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        let message = body["fields"]["artifacts"].as_str().unwrap();
        assert!(
            message.contains("artifact 0 (linux x86_64 deb)") && message.contains(words),
            "{words}: {body}"
        );
    }
    let (status, body) = server
        .change("1.0.0", json!({ "rollout_percent": 150 }))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body["fields"]["rollout_percent"].is_string(), "{body}");
    let answer = server
        .client
        .post(server.app.url("/api/admin/releases"))
        .bearer_auth(TOKEN)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn the_admin_api_wants_the_token_and_is_off_without_one() {
    let server = Server::start();
    let url = server.app.url("/api/admin/releases");
    let missing = server.client.get(&url).send().await.unwrap();
    assert_eq!(missing.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(missing.headers()["www-authenticate"], "Bearer");
    let wrong = server
        .client
        .post(&url)
        .bearer_auth("not-the-token")
        .json(&release(&server, "1.0.0", "stable", 100))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);

    let postgres = Postgres::start().expect("start PostgreSQL");
    let without = RunningBinary::start_on(&postgres, None, &[]);
    let off = server
        .client
        .get(without.url("/api/admin/releases"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(off.status(), StatusCode::FORBIDDEN);
    let body: Value = off.json().await.unwrap();
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("--admin-token-file"),
        "{body}"
    );

    let folder = tempfile::tempdir().unwrap();
    let short = folder.path().join("short");
    std::fs::write(&short, "secret").unwrap();
    let refused = run_binary(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--admin-token-file",
        short.to_str().unwrap(),
    ]);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("at least 32"), "{stderr}");
}

#[tokio::test]
async fn nginx_shares_answers_that_do_not_depend_on_the_install() {
    let server = Server::start();
    assert_eq!(
        server
            .publish(&release(&server, "0.2.0", "stable", 100))
            .await
            .0,
        StatusCode::CREATED
    );
    let proxy = Proxy::start(server.app.address);
    let check = |current: &str, install: &str| {
        curl(
            &proxy,
            &[],
            &proxy.url(&format!(
                "/api/updates/stable/linux/x86_64/{current}?bundle_type=deb&install_id=install-{install}"
            )),
        )
    };
    // Everything at 100%: one copy per version serves every install.
    for (current, status) in [("0.1.4", 200), ("0.2.0", 204)] {
        let first = check(current, "0001-aaaaaaaa");
        let second = check(current, "0002-bbbbbbbb");
        assert_eq!((first.status, second.status), (status, status), "{first:?}");
        assert_eq!(first.header("x-cache-status"), Some("MISS"), "{first:?}");
        assert_eq!(second.header("x-cache-status"), Some("HIT"), "{second:?}");
        assert_eq!(second.header("cache-control"), Some("public, max-age=60"));
        assert!(second.header("strict-transport-security").is_some());
    }
    // A second spelling of bundle_type cannot store the AppImage's answer under the deb's key
    // (while the answers are public, so nginx would keep them):
    // app-web refuses the query, so nginx keeps nothing, and the deb check gets the deb.
    let poison = curl(
        &proxy,
        &[],
        &proxy.url("/api/updates/stable/linux/x86_64/0.1.5?BUNDLE_TYPE=deb&bundle_type=appimage"),
    );
    assert_eq!(poison.status, 400, "{poison:?}");
    let repeated = curl(
        &proxy,
        &[],
        &proxy.url("/api/updates/stable/linux/x86_64/0.1.5?bundle_type=deb&bundle_type=appimage"),
    );
    assert_eq!(repeated.status, 400, "{repeated:?}");
    // Encoded, the key is another one to nginx and to app-web alike: refused too.
    let encoded = curl(
        &proxy,
        &[],
        &proxy.url("/api/updates/stable/linux/x86_64/0.1.5?bundle%5Ftype=appimage"),
    );
    assert_eq!(encoded.status, 400, "{encoded:?}");
    let first_deb = check("0.1.5", "0005-eeeeeeee");
    assert_eq!(
        first_deb.header("x-cache-status"),
        Some("MISS"),
        "nothing was kept for the deb's key: {first_deb:?}"
    );
    let deb = json_through(
        &proxy,
        "/api/updates/stable/linux/x86_64/0.1.5?bundle_type=deb",
    );
    assert_eq!(
        deb["url"], "https://downloads.test/app_0.2.0_amd64.deb",
        "{deb}"
    );

    // A rollout under way: each install is answered for itself, and nginx keeps nothing.
    assert_eq!(
        server
            .publish(&release(&server, "0.3.0", "stable", 50))
            .await
            .0,
        StatusCode::CREATED
    );
    for install in ["0003-cccccccc", "0003-cccccccc"] {
        let answer = check("0.0.9", install);
        assert_eq!(answer.header("x-cache-status"), Some("MISS"), "{answer:?}");
        assert_eq!(answer.header("cache-control"), Some("private, max-age=60"));
    }
    // Only checks go through: the endpoint takes nothing else.
    let posted = curl(
        &proxy,
        &["-X", "POST"],
        &proxy.url("/api/updates/stable/linux/x86_64/0.1.4"),
    );
    assert_eq!(posted.status, 403, "{posted:?}");

    // The release kill switch goes through nginx: PATCH halts 0.3.0.
    let halted = curl(
        &proxy,
        &[
            "--request",
            "PATCH",
            "--header",
            &format!("authorization: Bearer {TOKEN}"),
            "--header",
            "content-type: application/json",
            "--data",
            r#"{"halted":true}"#,
        ],
        &proxy.url("/api/admin/releases/0.3.0"),
    );
    assert_eq!(halted.status, 200, "{halted:?}");
    let (_, stored) = server.admin_get("/api/admin/releases/0.3.0").await;
    assert_eq!(stored["halted"], true, "{stored}");
}

/// The JSON body of a GET through nginx.
fn json_through(proxy: &Proxy, path: &str) -> Value {
    let output = std::process::Command::new("curl")
        .args(["--silent", "--show-error", "--fail", "--max-time", "10"])
        .arg("--resolve")
        .arg(format!(
            "{}:{}:127.0.0.1",
            support::proxy::SERVER_NAME,
            proxy.https
        ))
        .arg("--cacert")
        .arg(proxy.certificate())
        .arg(proxy.url(path))
        .output()
        .expect("run curl");
    assert!(
        output.status.success(),
        "{path}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("a JSON answer")
}
