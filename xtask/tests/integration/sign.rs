//! `cargo xtask sign` on a dist folder: the updater signatures it writes verify with Debian's
//! `minisign` after the base64 decoding Tauri's updater does (of the key and the signature), a
//! changed byte is refused, `cargo xtask verify` checks them, and a missing key is an error in
//! release mode and a warning otherwise; the static latest.json made from the signed folder
//! carries the same signature. A real bundle folder made in release mode carries every
//! signature: the updater's, the rpm's own and GnuPG's over the packages and SHA256SUMS, each
//! checked by the tools users have (minisign, gpg, rpmkeys).

use e2e::tools as support;

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
        .env_remove("APP_GPG_PRIVATE_KEY")
        .env_remove("APP_GPG_PASSPHRASE")
        .env_remove("APP_GPG_PUBLIC_KEY")
        .envs(env.iter().copied())
        .output()
        .expect("run xtask")
}

fn decoded(path: &Path) -> Vec<u8> {
    STANDARD
        .decode(std::fs::read_to_string(path).unwrap().trim())
        .unwrap()
}

/// A new updater key pair from `sign keygen` in `dir/keys`, protected by PASSWORD.
fn updater_keys(dir: &Path) -> std::path::PathBuf {
    let keys = dir.join("keys");
    let made = xtask(
        &["sign", "keygen", "--out", keys.to_str().unwrap()],
        &[("TAURI_SIGNING_PRIVATE_KEY_PASSWORD", PASSWORD)],
    );
    assert_success(&made, "sign keygen");
    keys
}

#[test]
fn signatures_verify_with_minisign_and_a_changed_byte_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let keys = updater_keys(dir.path());
    let secret = keys.join("updater.key");
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&secret).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600, "the secret key is its owner's only");
    let again = xtask(&["sign", "keygen", "--out", keys.to_str().unwrap()], &[]);
    assert!(!again.status.success(), "an existing key is kept");

    let dist = dist_with_a_deb(dir.path());
    let signed = xtask(
        &["sign", "--dist", dist.to_str().unwrap()],
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

/// A GnuPG key made for the test in its own home: the armoured secret and public keys.
fn gpg_key(dir: &Path, passphrase: &str) -> (String, String) {
    let home = dir.join("gnupg-maker");
    std::fs::create_dir_all(&home).unwrap();
    std::fs::set_permissions(&home, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    let gpg = |args: &[&str]| {
        let output = Command::new("gpg")
            .arg("--homedir")
            .arg(&home)
            .args([
                "--batch",
                "--pinentry-mode",
                "loopback",
                "--passphrase",
                passphrase,
            ])
            .args(args)
            .output()
            .expect("run gpg (package gnupg; `cargo xtask setup` installs it)");
        assert_success(&output, &format!("gpg {args:?}"));
        String::from_utf8(output.stdout).unwrap()
    };
    gpg(&[
        "--quick-gen-key",
        "App release test <release-test@app.test>",
        "ed25519",
        "sign",
        "never",
    ]);
    (
        gpg(&["--armor", "--export-secret-keys"]),
        gpg(&["--armor", "--export"]),
    )
}

#[test]
fn a_release_bundle_carries_every_signature_and_users_tools_check_them() {
    let dir = tempfile::tempdir().unwrap();
    let keys = updater_keys(dir.path());
    let updater_public = std::fs::read_to_string(keys.join("updater.key.pub")).unwrap();
    let (gpg_secret, gpg_public) = gpg_key(dir.path(), "gpg passphrase");
    let gpg_public_file = dir.path().join("release-key.asc");
    std::fs::write(&gpg_public_file, &gpg_public).unwrap();
    let secret_path = keys.join("updater.key");
    let keys_env = [
        ("TAURI_SIGNING_PRIVATE_KEY", secret_path.to_str().unwrap()),
        ("TAURI_SIGNING_PRIVATE_KEY_PASSWORD", PASSWORD),
        ("TAURI_SIGNING_PUBLIC_KEY", updater_public.trim()),
        ("APP_GPG_PRIVATE_KEY", gpg_secret.as_str()),
        ("APP_GPG_PASSPHRASE", "gpg passphrase"),
    ];

    // A wrong passphrase is named before anything is built.
    let wrong = xtask(
        &[
            "bundle",
            "--kind",
            "deb",
            "--out",
            dir.path().join("never").to_str().unwrap(),
        ],
        &[
            ("APP_GPG_PRIVATE_KEY", gpg_secret.as_str()),
            ("APP_GPG_PASSPHRASE", "not it"),
        ],
    );
    assert!(!wrong.status.success());
    let stderr = String::from_utf8_lossy(&wrong.stderr);
    assert!(stderr.contains("APP_GPG_PASSPHRASE"), "{stderr}");
    assert!(
        !stderr.contains("gpg passphrase"),
        "the passphrase is never printed"
    );

    let out = dir.path().join("bundles");
    let bundled = xtask(
        &[
            "bundle",
            "--kind",
            "deb",
            "--kind",
            "rpm",
            "--release",
            "--download-url",
            "https://downloads.app.test/v2",
            "--out",
            out.to_str().unwrap(),
        ],
        &keys_env,
    );
    assert_success(&bundled, "bundle --release with every key");
    let stderr = String::from_utf8_lossy(&bundled.stderr);
    assert!(!stderr.contains("warning"), "{stderr}");
    assert!(!stderr.contains(PASSWORD) && !stderr.contains("BEGIN PGP PRIVATE"));
    let names: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    let package = |suffix: &str| {
        out.join(
            names
                .iter()
                .find(|name| name.ends_with(suffix))
                .unwrap_or_else(|| panic!("no *{suffix} in {names:?}")),
        )
    };
    let (deb, rpm) = (package(".deb"), package(".rpm"));
    for file in [&deb, &rpm] {
        for suffix in [".sig", ".asc"] {
            let mut signature = file.as_os_str().to_owned();
            signature.push(suffix);
            assert!(
                Path::new(&signature).is_file(),
                "{} has no {suffix} in {names:?}",
                file.display()
            );
        }
    }

    // The static update manifest's fragment for this build names both packages.
    let fragment: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out.join("latest-x86_64-unknown-linux-gnu.json")).unwrap(),
    )
    .unwrap();
    for (key, file) in [("linux-x86_64-deb", &deb), ("linux-x86_64-rpm", &rpm)] {
        let name = file.file_name().unwrap().to_str().unwrap();
        assert_eq!(
            fragment["platforms"][key]["url"],
            format!("https://downloads.app.test/v2/{name}"),
            "{fragment}"
        );
        let mut sig = file.as_os_str().to_owned();
        sig.push(".sig");
        assert_eq!(
            fragment["platforms"][key]["signature"],
            std::fs::read_to_string(&sig).unwrap().trim()
        );
    }

    let verified = xtask(
        &[
            "verify",
            out.to_str().unwrap(),
            "--gpg-pubkey",
            gpg_public_file.to_str().unwrap(),
        ],
        &[("TAURI_SIGNING_PUBLIC_KEY", updater_public.trim())],
    );
    assert_success(&verified, "verify every signature");
    assert!(
        String::from_utf8_lossy(&verified.stderr)
            .contains("2 Linux packages carry a valid GnuPG signature"),
        "{}",
        String::from_utf8_lossy(&verified.stderr)
    );

    // What a user does: gpg with the published key, and rpm with it imported.
    let home = dir.path().join("gnupg-user");
    std::fs::create_dir_all(&home).unwrap();
    std::fs::set_permissions(&home, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    let gpg = |args: &[&std::ffi::OsStr]| {
        Command::new("gpg")
            .arg("--homedir")
            .arg(&home)
            .arg("--batch")
            .args(args)
            .output()
            .unwrap()
    };
    assert_success(
        &gpg(&["--import".as_ref(), gpg_public_file.as_os_str()]),
        "gpg --import",
    );
    let sums = out.join("SHA256SUMS");
    let checked = gpg(&[
        "--verify".as_ref(),
        out.join("SHA256SUMS.asc").as_os_str(),
        sums.as_os_str(),
    ]);
    assert_success(&checked, "gpg --verify SHA256SUMS.asc");
    let rpmdb = dir.path().join("rpmdb");
    let imported = Command::new("rpmkeys")
        .arg("--dbpath")
        .arg(&rpmdb)
        .arg("--import")
        .arg(&gpg_public_file)
        .output()
        .expect("run rpmkeys (package rpm; `cargo xtask setup` installs it)");
    assert_success(&imported, "rpmkeys --import");
    let checked = Command::new("rpmkeys")
        .arg("--dbpath")
        .arg(&rpmdb)
        .arg("--checksig")
        .arg(&rpm)
        .output()
        .unwrap();
    assert_success(&checked, "rpmkeys --checksig");
    let said = String::from_utf8_lossy(&checked.stdout);
    assert!(said.contains("signatures OK"), "{said}");

    // One changed byte in SHA256SUMS: its signature no longer verifies.
    let mut text = std::fs::read(&sums).unwrap();
    text[0] = if text[0] == b'0' { b'1' } else { b'0' };
    std::fs::write(&sums, &text).unwrap();
    let refused = gpg(&[
        "--verify".as_ref(),
        out.join("SHA256SUMS.asc").as_os_str(),
        sums.as_os_str(),
    ]);
    assert!(!refused.status.success());

    // A release without the GnuPG key fails naming it.
    let dist = dist_with_a_deb(dir.path());
    let release = xtask(
        &["sign", "--dist", dist.to_str().unwrap(), "--release"],
        &keys_env[..3],
    );
    assert!(!release.status.success());
    let stderr = String::from_utf8_lossy(&release.stderr);
    assert!(
        stderr.contains("APP_GPG_PRIVATE_KEY is not set"),
        "{stderr}"
    );
}
