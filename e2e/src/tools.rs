//! xtask as its tests run it: the workspace root and version, the xtask binary itself, and
//! Docker helpers for the image and deploy tests.

pub mod docker;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

pub fn workspace_version() -> String {
    let text = std::fs::read_to_string(project_root().join("Cargo.toml")).unwrap();
    let manifest: toml::Table = toml::from_str(&text).unwrap();
    manifest["workspace"]["package"]["version"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// The built xtask binary with `args`, without the caller's `SOURCE_DATE_EPOCH`.
pub fn xtask_command(args: &[&str]) -> Command {
    let mut command = Command::new(crate::binary("xtask"));
    command.args(args).env_remove("SOURCE_DATE_EPOCH");
    command
}

pub fn xtask(args: &[&str]) -> Output {
    xtask_command(args).output().expect("run xtask")
}

pub fn dist_into(out: &Path) -> serde_json::Value {
    dist_into_with(out, &[])
}

/// [`dist_into`] with `env` set, e.g. the updater's signing key. Tauri's configuration and keys
/// from the test's own environment are dropped first: a `TAURI_CONFIG` or public key would
/// make a build of app-desktop that no other test shares.
pub fn dist_into_with(out: &Path, env: &[(&str, &str)]) -> serde_json::Value {
    let output = xtask_command(&["dist", "--out", out.to_str().unwrap()])
        .env_remove("TAURI_CONFIG")
        .env_remove("TAURI_SIGNING_PUBLIC_KEY")
        .env_remove("TAURI_SIGNING_PRIVATE_KEY")
        .env_remove("TAURI_SIGNING_PRIVATE_KEY_PASSWORD")
        .envs(env.iter().copied())
        .output()
        .expect("run xtask");
    assert_success(&output, "xtask dist");
    let text =
        std::fs::read_to_string(out.join("dist-manifest.json")).expect("dist wrote its manifest");
    serde_json::from_str(&text).expect("the manifest is JSON")
}

/// Fails the test with both output streams unless `output` succeeded.
pub fn assert_success(output: &Output, what: &str) {
    assert!(
        output.status.success(),
        "{what} failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
