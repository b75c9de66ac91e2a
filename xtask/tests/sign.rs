//! `cargo xtask sign` on a dist folder: the updater signatures it writes verify with Debian's
//! `minisign` after the base64 decoding Tauri's updater does (of the key and the signature), a
//! changed byte is refused, `cargo xtask verify` checks them, and a missing key is an error in
//! release mode and a warning otherwise; the static latest.json made from the signed folder
//! carries the same signature.

mod support;

use std::path::Path;
use std::process::{Command, Output};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use support::assert_success;

const PASSWORD: &str = "a password for the test key";

/// A dist folder with one deb, its SHA256SUMS and its manifest.
fn dist_with_a_deb(dir: &Path) -> std::path::PathBuf {
    let dist = dir.join("dist");
    std::fs::create_dir(&dist).unwrap();
    let file = "app-desktop_0.2.0_amd64.deb";
    std::fs::write(dist.join(file), b"the deb's final bytes").unwrap();
    let digest = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(b"the deb's final bytes"))
    };
    std::fs::write(dist.join("SHA256SUMS"), format!("{digest}  {file}\n")).unwrap();
    let manifest = serde_json::json!({
        "generated_by": "cargo xtask dist",
        "format_version": 1,
        "product": "app",
        "version": "0.2.0",
        "commit": "a".repeat(40),
        "source_date_epoch": 1,
        "artifacts": [{
            "file": file,
            "kind": "deb",
            "target": "x86_64-unknown-linux-gnu",
            "size": 21,
            "sha256": digest,
        }],
    });
    std::fs::write(
        dist.join("dist-manifest.json"),
        serde_json::to_string_pretty(&manifest).unwrap(),
    )
    .unwrap();
    dist
}

fn xtask(args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(args)
        .env_remove("TAURI_SIGNING_PRIVATE_KEY")
        .env_remove("TAURI_SIGNING_PRIVATE_KEY_PASSWORD")
        .env_remove("TAURI_SIGNING_PUBLIC_KEY")
        .env_remove("GITHUB_REF_TYPE")
        .envs(env.iter().copied())
        .output()
        .expect("run xtask")
}

fn decoded(path: &Path) -> Vec<u8> {
    STANDARD
        .decode(std::fs::read_to_string(path).unwrap().trim())
        .unwrap()
}

#[test]
fn signatures_verify_with_minisign_and_a_changed_byte_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    let made = xtask(
        &["sign", "keygen", "--out", keys.to_str().unwrap()],
        &[("TAURI_SIGNING_PRIVATE_KEY_PASSWORD", PASSWORD)],
    );
    assert_success(&made, "sign keygen");
    let secret = keys.join("updater.key");
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&secret).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600, "the secret key is its owner's only");
    let again = xtask(&["sign", "keygen", "--out", keys.to_str().unwrap()], &[]);
    assert!(!again.status.success(), "an existing key is kept");

    let dist = dist_with_a_deb(dir.path());
    let signed = xtask(
        &["sign", "--dist", dist.to_str().unwrap(), "--release"],
        &[
            ("TAURI_SIGNING_PRIVATE_KEY", secret.to_str().unwrap()),
            ("TAURI_SIGNING_PRIVATE_KEY_PASSWORD", PASSWORD),
        ],
    );
    assert_success(&signed, "sign");
    let stderr = String::from_utf8_lossy(&signed.stderr);
    let secret_text = std::fs::read_to_string(&secret).unwrap();
    assert!(
        !stderr.contains(secret_text.trim()),
        "the key is never printed"
    );
    assert!(!stderr.contains(PASSWORD), "the password is never printed");

    // What the updater does: base64-decode the public key and the signature, then verify.
    let deb = dist.join("app-desktop_0.2.0_amd64.deb");
    let public = dir.path().join("updater.pub");
    std::fs::write(&public, decoded(&keys.join("updater.key.pub"))).unwrap();
    let signature = dir.path().join("deb.minisig");
    std::fs::write(
        &signature,
        decoded(&dist.join("app-desktop_0.2.0_amd64.deb.sig")),
    )
    .unwrap();
    let minisign = |file: &Path| {
        Command::new("minisign")
            .arg("-V")
            .arg("-p")
            .arg(&public)
            .arg("-m")
            .arg(file)
            .arg("-x")
            .arg(&signature)
            .output()
            .expect("run minisign (Debian's minisign; `cargo xtask setup` installs it)")
    };
    let verified = minisign(&deb);
    assert_success(&verified, "minisign -V");
    assert!(
        String::from_utf8_lossy(&verified.stdout).contains("file:app-desktop_0.2.0_amd64.deb"),
        "the trusted comment names the file: {}",
        String::from_utf8_lossy(&verified.stdout)
    );
    let public_key = std::fs::read_to_string(keys.join("updater.key.pub")).unwrap();
    let checked = xtask(
        &["verify", dist.to_str().unwrap()],
        &[("TAURI_SIGNING_PUBLIC_KEY", public_key.trim())],
    );
    assert_success(&checked, "verify with the updater key");

    // The static manifests: a fragment from this dist folder, merged per channel.
    let fragment = xtask(
        &[
            "updater-manifest",
            "fragment",
            "--dist",
            dist.to_str().unwrap(),
            "--base-url",
            "https://downloads.test/v0.2.0",
        ],
        &[],
    );
    assert_success(&fragment, "updater-manifest fragment");
    let hosted = dir.path().join("hosted");
    let merged = xtask(
        &[
            "updater-manifest",
            "merge",
            dist.join("latest-x86_64-unknown-linux-gnu.json")
                .to_str()
                .unwrap(),
            "--out",
            hosted.to_str().unwrap(),
        ],
        &[],
    );
    assert_success(&merged, "updater-manifest merge");
    for channel in ["stable", "beta"] {
        let latest: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(hosted.join(channel).join("latest.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(latest["version"], "0.2.0");
        let deb = &latest["platforms"]["linux-x86_64-deb"];
        assert_eq!(
            deb["url"],
            "https://downloads.test/v0.2.0/app-desktop_0.2.0_amd64.deb"
        );
        assert_eq!(
            deb["signature"].as_str().unwrap(),
            std::fs::read_to_string(dist.join("app-desktop_0.2.0_amd64.deb.sig"))
                .unwrap()
                .trim()
        );
    }

    let changed = dir.path().join("changed.deb");
    let mut bytes = std::fs::read(&deb).unwrap();
    bytes[0] ^= 1;
    std::fs::write(&changed, &bytes).unwrap();
    assert!(
        !minisign(&changed).status.success(),
        "minisign refuses a changed byte"
    );
    std::fs::write(&deb, &bytes).unwrap();
    let refused = xtask(
        &["verify", dist.to_str().unwrap()],
        &[("TAURI_SIGNING_PUBLIC_KEY", public_key.trim())],
    );
    assert!(!refused.status.success());
}

#[test]
fn a_missing_key_fails_a_release_and_warns_otherwise() {
    let dir = tempfile::tempdir().unwrap();
    let dist = dist_with_a_deb(dir.path());
    let release = xtask(
        &["sign", "--dist", dist.to_str().unwrap(), "--release"],
        &[],
    );
    assert!(!release.status.success());
    let stderr = String::from_utf8_lossy(&release.stderr);
    assert!(
        stderr.contains("TAURI_SIGNING_PRIVATE_KEY is not set"),
        "{stderr}"
    );
    let tag = xtask(
        &["sign", "--dist", dist.to_str().unwrap()],
        &[("GITHUB_REF_TYPE", "tag")],
    );
    assert!(!tag.status.success(), "a tag build is a release");

    let local = xtask(&["sign", "--dist", dist.to_str().unwrap()], &[]);
    assert_success(&local, "sign without a key, locally");
    assert!(String::from_utf8_lossy(&local.stderr).contains("stay unsigned"));
    assert!(!dist.join("app-desktop_0.2.0_amd64.deb.sig").exists());

    // Signatures that are missing fail verify when the updater key is given.
    let unsigned = xtask(
        &["verify", dist.to_str().unwrap()],
        &[("TAURI_SIGNING_PUBLIC_KEY", "dW50cnVzdGVk")],
    );
    assert!(!unsigned.status.success());
    assert!(
        String::from_utf8_lossy(&unsigned.stderr).contains("cargo xtask sign"),
        "{}",
        String::from_utf8_lossy(&unsigned.stderr)
    );
}
